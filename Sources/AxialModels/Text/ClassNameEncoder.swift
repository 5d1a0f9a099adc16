import AxialNN
import AxialTensor
import Foundation

/// Class-name embeddings for the PsPG head from a real text tower: each class name is put into a
/// prompt template ("a CT slice showing {name}"), tokenized, encoded by the CLIP or BiomedCLIP
/// text tower (open_clip `encode_text`) and L2-normalised (`normalize=True`, as open_clip's
/// zero-shot classifiers), giving the `[C, E]` matrix.
///
/// Only the text tower is built and loaded from the whole open_clip checkpoint (CLIP: the top-level
/// keys outside `visual.*` and `logit_scale`; BiomedCLIP: `text.*`), strictly: a missing or
/// mis-shaped key is an `EncoderError.weightMismatch` naming the file.
public final class ClassNameEncoder {
    /// The registry names accepted by `axial crossval --text-encoder`.
    public enum Kind: String, CaseIterable, Sendable {
        case clipViTB16 = "clip_vit_b16"
        /// open_clip `ViT-B-16` (GELU; LAION / DataComp weights).
        case clipViTB16GELU = "clip_vit_b16_gelu"
        case biomedclip
        /// The tiny random-init CLIP of `clip_test` (`CLIPConfig.test`, E = 48): tests and demos only.
        case clipTest = "clip_test"
    }

    public static let defaultTemplate = "a CT slice showing {name}"

    /// Width E of the embeddings.
    public let embedDimensions: Int
    private let tokenize: ([String]) -> [[Int]]
    private let tower: (Tensor) -> Tensor

    /// A CLIP text tower (open_clip keys at the top level) with the bundled BPE tokenizer.
    public init(clip config: CLIPConfig, weights url: URL, tokenizer: CLIPTokenizer? = nil) throws {
        let tok = try tokenizer ?? CLIPTokenizer.shared()
        var g = DefaultGenerator.splitOff()
        let text = CLIPTextTransformer(config.text, outputDimensions: config.embedDimensions, activation: config.activation, generator: &g)
        let all = try EncoderWeights.read(url)
        var sub = all.filter { k, _ in !k.hasPrefix("visual.") && k != "logit_scale" }
        for k in ["input_resolution", "context_length", "vocab_size"] { sub[k] = nil }
        if sub.isEmpty { throw EncoderError.noKeys(file: url.path, prefix: "(top level: token_embedding, transformer, …)", sample: all.keys.sorted()) }
        try EncoderWeights.load(text, sub, file: url.path, model: "CLIP text tower")
        embedDimensions = config.embedDimensions
        let context = config.text.contextLength
        tokenize = { tok($0, contextLength: context) }
        tower = { text($0) }
    }

    /// BiomedCLIP's text tower (`text.*` keys: PubMedBERT + mlp projection) with a WordPiece
    /// tokenizer over the user's `vocab.txt`.
    public init(biomedCLIP config: BiomedCLIPConfig, weights url: URL, vocabulary: URL) throws {
        let tok = try WordPieceTokenizer(vocabularyURL: vocabulary, contextLength: config.text.contextLength)
        var g = DefaultGenerator.splitOff()
        let text = BiomedCLIPText(config, generator: &g)
        let all = try EncoderWeights.read(url)
        let sub = EncoderWeights.subtree(BiomedCLIPModel.remap(all), prefix: "text.")
        if sub.isEmpty { throw EncoderError.noKeys(file: url.path, prefix: "text.", sample: all.keys.sorted()) }
        try EncoderWeights.load(text, sub, file: url.path, model: "BiomedCLIP text tower")
        embedDimensions = config.embedDimensions
        tokenize = { tok($0) }
        tower = { text($0) }
    }

    /// The published tower of `kind` (`clip_vit_b16`: OpenAI ViT-B/16, E = 512; `clip_vit_b16_gelu`: open_clip ViT-B-16 (GELU); `biomedclip`:
    /// BiomedCLIP-PubMedBERT_256-vit_base_patch16_224, E = 512, needs `vocabulary`).
    public static func load(_ kind: Kind, weights: URL, vocabulary: URL? = nil) throws -> ClassNameEncoder {
        switch kind {
        case .clipViTB16: return try ClassNameEncoder(clip: .vitB16, weights: weights)
        case .clipViTB16GELU: return try ClassNameEncoder(clip: .vitB16GELU, weights: weights)
        case .clipTest: return try ClassNameEncoder(clip: .test, weights: weights)
        case .biomedclip:
            guard let vocabulary else {
                throw EncoderError.unreadableWeights(file: weights.path, reason: "the BiomedCLIP text tower needs its WordPiece vocab.txt (--text-vocab)")
            }
            return try ClassNameEncoder(biomedCLIP: .base, weights: weights, vocabulary: vocabulary)
        }
    }

    /// `template` with every `{name}` replaced by each name.
    public static func prompts(_ names: [String], template: String = defaultTemplate) -> [String] {
        names.map { template.replacingOccurrences(of: "{name}", with: $0) }
    }

    /// L2-normalised text features [T, E] of `texts` (no gradient).
    public func encode(_ texts: [String]) -> Tensor {
        withNoGrad {
            let rows = tokenize(texts)
            let ids = Tensor(shape: [rows.count, rows.first?.count ?? 0], scalars: rows.flatMap { $0.map(Float.init) })
            return l2Normalize(tower(ids), axis: -1).detached()
        }
    }

    /// The class-name embedding matrix [C, E]: `encode(prompts(names, template:))`.
    public func encodeClassNames(_ names: [String], template: String = defaultTemplate) -> Tensor {
        encode(Self.prompts(names, template: template))
    }
}
