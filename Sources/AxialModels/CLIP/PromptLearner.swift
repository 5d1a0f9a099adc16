import AxialNN
import AxialTensor
import Foundation

// Text side of MVFA / MLA-LP (REFERENCE.md §2): two class embeddings T [E, 2] (column 0 normal,
// column 1 abnormal) from the frozen CLIP text tower.
//
// - MVFA fixed ensemble (MVFA-AD utils.encode_text_with_prompt_ensemble): every state × template
//   sentence with the object name → encode_text → L2 per sentence → mean → L2.
// - MLA-LP learned prompts (mla-pl CLIP/learnable_prompt.py, PromptMaker with n_ctx 8, CSC, class
//   token at the end): "X X X X X X X X <descriptor>." tokenised; the 8 X token embeddings are
//   replaced by a learned context per descriptor (`ctx.normal_end` [10, 8, width],
//   `ctx.abnormal_end` [11, 8, width], N(0, 0.02)); through the text transformer, EOT pooling,
//   text_projection; unnormalised mean per class → L2. Axial runs the transformer with CLIP's causal
//   mask (mla-pl's TextEncoder omits attn_mask, unlike CoOp and CLIP's own encode_text).

/// Rows of token ids, each ending with <end_of_text> (the largest id) and zero-padded to one length.
public typealias PromptTokenizer = ([String]) throws -> [[Int]]

public enum AnomalyPrompts {
    /// MVFA's normal states ("{}" is the object name).
    public static let normalStates = ["{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw", "{} without defect",
                                      "{} without damage"]
    /// MVFA's abnormal states.
    public static let abnormalStates = ["damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage"]
    /// MVFA's 35 templates ("{}" is the state).
    public static let templates = [
        "a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.", "a cropped photo of the {}.",
        "a bright photo of a {}.", "a dark photo of the {}.", "a photo of my {}.", "a photo of the cool {}.",
        "a close-up photo of a {}.", "a black and white photo of the {}.", "a bright photo of the {}.",
        "a cropped photo of a {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.", "a photo of the {}.",
        "a good photo of the {}.", "a photo of one {}.", "a close-up photo of the {}.", "a photo of a {}.",
        "a low resolution photo of a {}.", "a photo of a large {}.", "a blurry photo of a {}.",
        "a jpeg corrupted photo of the {}.", "a good photo of a {}.", "a photo of the small {}.", "a photo of the large {}.",
        "a black and white photo of a {}.", "a dark photo of a {}.", "a photo of a cool {}.", "a photo of a small {}.",
        "there is a {} in the scene.", "there is the {} in the scene.", "this is a {} in the scene.",
        "this is the {} in the scene.", "this is one {} in the scene.",
    ]
    /// MVFA's object names for the BMAD datasets (prompt.py REAL_NAME).
    public static let objectNames = ["Brain": "Brain", "Liver": "Liver", "Retina_RESC": "retinal OCT", "Chest": "Chest X-ray film",
                                     "Retina_OCT2017": "retinal OCT", "Histopathology": "histopathological image"]
    /// MLA-LP's 10 normal descriptors.
    public static let normalDescriptors = ["normal", "healthy", "negative", "unremarkable", "clear", "asymptomatic", "normal findings",
                                           "no findings", "in good health", "no evidence of disease"]
    /// MLA-LP's 11 abnormal descriptors.
    public static let abnormalDescriptors = ["abnormal", "positive", "symptomatic", "disease", "lesion", "pathological", "impaired",
                                             "evidence of disease", "abnormal finding", "pathological condition",
                                             "pathological abnormality"]

    /// The MVFA sentences for `object`: (normal: 7 × 35, abnormal: 5 × 35), state-major.
    public static func templateSentences(object: String, normalStates: [String] = normalStates,
                                         abnormalStates: [String] = abnormalStates,
                                         templates: [String] = templates) -> (normal: [String], abnormal: [String]) {
        func fill(_ pattern: String, _ value: String) -> String { pattern.replacingOccurrences(of: "{}", with: value) }
        func sentences(_ states: [String]) -> [String] {
            states.flatMap { s in templates.map { fill($0, fill(s, object)) } }
        }
        return (sentences(normalStates), sentences(abnormalStates))
    }

    /// CLIP's BPE tokenizer padded to `contextLength`.
    public static func clipTokenizer(contextLength: Int = CLIPTokenizer.defaultContextLength) -> PromptTokenizer {
        { texts in try CLIPTokenizer.shared()(texts, contextLength: contextLength) }
    }

    /// MVFA's fixed text features T [E, 2] for `object` (no gradient).
    public static func templateFeatures(text: CLIPTextTransformer, object: String, tokenizer: PromptTokenizer,
                                        normalStates: [String] = normalStates, abnormalStates: [String] = abnormalStates,
                                        templates: [String] = templates) throws -> Tensor {
        let s = templateSentences(object: object, normalStates: normalStates, abnormalStates: abnormalStates, templates: templates)
        return try withNoGrad {
            let columns = try [s.normal, s.abnormal].map { sentences -> Tensor in
                let ids = try idTensor(tokenizer(sentences), what: "template sentences")
                let e = l2Normalize(text(ids), axis: -1).mean(axis: 0)
                return l2Normalize(e, axis: 0)
            }
            return stack(columns, axis: 1)
        }
    }

    static func idTensor(_ rows: [[Int]], what: String) throws -> Tensor {
        guard let L = rows.first?.count, L > 0, rows.allSatisfy({ $0.count == L }) else {
            throw AnomalyModelError.badPrompt("\(what): the tokenizer returned rows of unequal or zero length")
        }
        return Tensor(shape: [rows.count, L], scalars: rows.flatMap { $0.map(Float.init) })
    }
}

/// The learned contexts (keys `normal_end`, `abnormal_end`: torch ParameterDict `ctx` of mla-pl).
public final class PromptContext: Module {
    public let normalEnd: Parameter
    public let abnormalEnd: Parameter
    init(normal: Tensor, abnormal: Tensor) {
        normalEnd = Parameter(normal); abnormalEnd = Parameter(abnormal)
        super.init()
    }
}

/// MLA-LP's CoOp prompt learner, class-specific contexts, class token at the end (keys
/// `ctx.normal_end`, `ctx.abnormal_end`; saved under `prompt_learner.`).
public final class PromptLearner: Module {
    public let ctx: PromptContext
    public let contextLength: Int
    public let normalDescriptors: [String]
    public let abnormalDescriptors: [String]
    /// Token ids [n, L] of "X…X <descriptor>." per class, trimmed after the last EOT.
    let ids: [Tensor]
    let eot: [[Int]]

    /// `width` = the text tower's width; contexts drawn from N(0, 0.02) with `generator`.
    public init(width: Int, contextLength nCtx: Int = 8, normal: [String] = AnomalyPrompts.normalDescriptors,
                abnormal: [String] = AnomalyPrompts.abnormalDescriptors, tokenizer: PromptTokenizer,
                generator: inout RandomGenerator) throws {
        guard nCtx > 0 else { throw AnomalyModelError.badPrompt("context length \(nCtx) must be positive") }
        guard !normal.isEmpty, !abnormal.isEmpty else { throw AnomalyModelError.badPrompt("empty normal or abnormal descriptor list") }
        contextLength = nCtx; normalDescriptors = normal; abnormalDescriptors = abnormal
        let prefix = [String](repeating: "X", count: nCtx).joined(separator: " ")
        var ids: [Tensor] = [], eot: [[Int]] = []
        for (cls, descs) in [("normal", normal), ("abnormal", abnormal)] {
            let rows = try tokenizer(descs.map { "\(prefix) \($0.replacingOccurrences(of: "_", with: " "))." })
            let t = try AnomalyPrompts.idTensor(rows, what: "\(cls) prompts")
            let e = CLIPTextTransformer.eotPositions(t)
            for (i, p) in e.enumerated() where p <= nCtx + 1 || Set(rows[i][1...nCtx]).count != 1 {
                throw AnomalyModelError.badPrompt("\(cls) descriptor '\(descs[i])': the tokenizer did not give \(nCtx) context tokens, the descriptor and <end_of_text> (ids \(rows[i].prefix(p + 1)))")
            }
            let L = e.max()! + 1
            ids.append(t.narrow(axis: 1, start: 0, length: L)); eot.append(e)
        }
        self.ids = ids; self.eot = eot
        ctx = PromptContext(normal: Tensor.normal([normal.count, nCtx, width], generator: &generator) * 0.02,
                            abnormal: Tensor.normal([abnormal.count, nCtx, width], generator: &generator) * 0.02)
        super.init()
    }

    /// T [E, 2] through the frozen `text` tower (differentiable in the contexts).
    public func textFeatures(text: CLIPTextTransformer) -> Tensor {
        precondition(ctx.normalEnd.value.shape[2] == text.config.width,
                     "prompt learner width \(ctx.normalEnd.value.shape[2]) vs text tower width \(text.config.width)")
        let columns = [ctx.normalEnd.value, ctx.abnormalEnd.value].enumerated().map { c, context -> Tensor in
            let ids = self.ids[c], L = ids.shape[1]
            let emb = withNoGrad { text.tokenEmbedding(ids) }
            let x = concat([emb.narrow(axis: 1, start: 0, length: 1), context,
                            emb.narrow(axis: 1, start: 1 + contextLength, length: L - 1 - contextLength)], axis: 1)
                + text.positionalEmbedding.value.narrow(axis: 0, start: 0, length: L)
            let f = text.encode(embeddings: x, eotPositions: eot[c]).mean(axis: 0)
            return l2Normalize(f, axis: 0)
        }
        return stack(columns, axis: 1)
    }
}

public enum AnomalyModelError: Error, CustomStringConvertible, Equatable {
    case badPrompt(String)
    case badConfig(String)
    case badInput(String)
    public var description: String {
        switch self {
        case .badPrompt(let s): return "anomaly prompts: \(s)"
        case .badConfig(let s): return "anomaly model: \(s)"
        case .badInput(let s): return "anomaly model: \(s)"
        }
    }
}
