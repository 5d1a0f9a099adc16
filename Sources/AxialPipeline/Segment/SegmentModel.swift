import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// The model of `axial segment`: CLIPSeg (transformers-exact) with or without VLSM adapters, or CRIS
/// (medvlsm's), the prompt tokenizer, and its saved form (`model.safetensors`: the module's state dict
/// under the reference names — transformers' for plain CLIPSeg, vlsm-adapter's with adapters, CRIS's for
/// CRIS — plus metadata `segment.model`, `segment.adapters`, `segment.variant`, `segment.adapter_dim`).
public final class PromptSegmenter: @unchecked Sendable {
    public enum Adapters: String, Sendable, CaseIterable { case none, shallow, dense }
    /// The model family behind a `--model` name.
    public enum Family: String, Sendable { case clipseg, cris }

    public let modelName: String
    public let family: Family
    public let adapters: Adapters
    public let variant: String
    /// CLIPSeg (family `.clipseg`).
    public let clipseg: CLIPSeg?
    public let adapted: VLSMCLIPSeg?
    /// CRIS (family `.cris`).
    public let cris: CRIS?
    let tokenizer: CLIPTokenizer

    /// The module whose state is saved / checkpointed.
    public var module: Module { adapted ?? clipseg ?? cris! }

    public static let modelNames = ["clipseg", "clipseg_test", "cris", "cris_test"]

    public static func family(named name: String) throws -> Family {
        switch name {
        case "clipseg", "clipseg_test": return .clipseg
        case "cris", "cris_test": return .cris
        default: throw SegmentError.badOption("unknown --model '\(name)' (known: \(modelNames.joined(separator: ", ")))")
        }
    }

    public static func config(named name: String) throws -> CLIPSegConfig {
        switch name {
        case "clipseg": return .rd64Refined
        case "clipseg_test": return .clipsegTest
        default: throw SegmentError.badOption("unknown CLIPSeg --model '\(name)' (known: clipseg, clipseg_test)")
        }
    }

    public static func crisConfig(named name: String) throws -> CRISConfig {
        switch name {
        case "cris": return .cris
        case "cris_test": return .crisTest
        default: throw SegmentError.badOption("unknown CRIS --model '\(name)' (known: cris, cris_test)")
        }
    }

    /// The input size of a model name (352 CLIPSeg, 416 CRIS; tiny models 96).
    public static func inputSize(named name: String) throws -> Int {
        try family(named: name) == .cris ? crisConfig(named: name).inputSize : config(named: name).inputSize
    }

    /// Builds the model (random init from `seed`), then loads `weights` if given: a transformers
    /// CLIPSeg file (`clip.*` + `decoder.*`), a CRIS checkpoint (`backbone.*`, `neck.*`, …), an OpenAI /
    /// open_clip RN CLIP for CRIS's backbone (`visual.*`, CRIS's own initialisation), or a
    /// `model.safetensors` written by `axial segment train`.
    public init(model name: String, adapters: Adapters, variant: String = "vlc", adapterDim: Int? = nil,
                weights: URL?, seed: UInt64) throws {
        modelName = name
        family = try Self.family(named: name)
        self.adapters = adapters
        self.variant = variant
        var g = RandomGenerator(seed: seed)
        switch family {
        case .clipseg:
            let c = CLIPSeg(try Self.config(named: name), generator: &g)
            clipseg = c
            cris = nil
            switch adapters {
            case .none: adapted = nil
            case .shallow, .dense:
                let kind: VLSMAdapterOptions.Kind = adapters == .shallow ? .shallow : .dense
                do {
                    adapted = VLSMCLIPSeg(c, options: try VLSMAdapterOptions.variant(kind, variant, dim: adapterDim), generator: &g)
                } catch { throw SegmentError.badOption("--variant: \(error)") }
            }
        case .cris:
            guard adapters == .none else { throw SegmentError.badOption("--adapters \(adapters.rawValue): VLSM adapters exist for CLIPSeg only, not \(name)") }
            clipseg = nil
            adapted = nil
            cris = CRIS(try Self.crisConfig(named: name), generator: &g)
        }
        tokenizer = try CLIPTokenizer.shared()
        if let weights { try load(weights) }
    }

    /// The square input size.
    public var inputSize: Int { cris?.config.inputSize ?? clipseg!.config.inputSize }
    /// Foreground where logit > this (CLIPSeg: sigmoid > 0.5; CRIS: sigmoid > 0.35).
    public var logitThreshold: Float { cris?.config.logitThreshold ?? 0 }
    /// Pixel normalisation: ImageNet's for CLIPSeg (its processor), CLIP's for CRIS (medvlsm's cris.yaml).
    public var normalization: SegmentDataset.Normalization { Self.normalization(family) }
    public static func normalization(_ family: Family) -> SegmentDataset.Normalization { family == .cris ? .clip : .imageNet }
    /// Training batches must hold ≥ 2 samples (BatchNorm batch statistics; torch refuses one).
    public var needsBatchOfTwo: Bool { family == .cris }
    var contextLength: Int { min(cris?.config.text.contextLength ?? clipseg!.config.maxPositions, CLIPTokenizer.defaultContextLength) }
    var vocabSize: Int { cris?.config.text.vocabSize ?? clipseg!.config.vocabSize }

    /// Loads weights: transformers CLIPSeg keys (`clip.`, `decoder.`) go into CLIPSeg; a saved
    /// adapted model (`clipseg.` keys) into the whole module; CRIS keys (`backbone.` …) into CRIS, an RN
    /// CLIP (`visual.` keys) into CRIS's backbone.
    public func load(_ url: URL) throws {
        let state = try EncoderWeights.read(url)
        if let cris {
            if state.keys.contains(where: { $0.hasPrefix("backbone.") || $0.hasPrefix("module.backbone.") }) {
                try cris.load(state: state, file: url.path)
            } else if state.keys.contains(where: { $0.hasPrefix("visual.attnpool.") }) {
                try cris.loadCLIPBackbone(state: state, file: url.path)
            } else {
                throw SegmentError.badModelFile(path: url.path, reason: "neither a CRIS checkpoint (backbone.* / neck.* keys) nor an RN CLIP (visual.attnpool.* keys)")
            }
            return
        }
        let clipseg = clipseg!
        if state.keys.contains(where: { $0.hasPrefix("clipseg.") }) {
            guard let adapted else {
                throw SegmentError.badModelFile(path: url.path, reason: "holds VLSM adapters (clipseg.* keys) but --adapters is none")
            }
            try adapted.load(state: state, file: url.path)
        } else {
            try clipseg.load(state: state, file: url.path)
            if adapted != nil { clipseg.freeze() }
        }
    }

    /// Metadata for a saved model.
    public var metadata: [String: String] {
        ["segment.model": modelName, "segment.adapters": adapters.rawValue, "segment.variant": variant,
         "segment.adapter_dim": adapted.map { String($0.options.dim) } ?? ""]
    }

    /// Whether `url` is a model written by `save` (has the segment metadata).
    public static func isSavedModel(_ url: URL) -> Bool {
        (try? SafeTensors.read(url).metadata["segment.model"]) != nil
    }

    /// Rebuilds a model saved by `save` (reads its metadata).
    public static func open(_ url: URL) throws -> PromptSegmenter {
        let meta: [String: String]
        do { meta = try SafeTensors.read(url).metadata } catch {
            throw SegmentError.badModelFile(path: url.path, reason: "\(error)")
        }
        guard let name = meta["segment.model"], let a = meta["segment.adapters"].flatMap(Adapters.init(rawValue:)) else {
            throw SegmentError.badModelFile(path: url.path, reason: "no segment.model / segment.adapters metadata (not written by axial segment train; pass --model and --weights)")
        }
        return try PromptSegmenter(model: name, adapters: a, variant: meta["segment.variant"] ?? "vlc",
                                   adapterDim: meta["segment.adapter_dim"].flatMap { Int($0) }, weights: url, seed: 0)
    }

    public func save(to url: URL) throws {
        try SafeTensors.write(module.stateDict(), metadata: metadata, to: url)
    }

    /// Prompt ids [B, L]: CLIP BPE (open_clip's tokenizer, 77 tokens, EOT 49407, zero padding; CRIS
    /// masks the id-0 words out of its cross-attention). A test model's
    /// 99-token vocabulary takes id % 95 + 2 for ordinary tokens, 97 for the start and 98 for the end
    /// token (so its EOT pooling works as the real one).
    public func tokenize(_ prompts: [String]) -> Tensor {
        let L = contextLength, V = vocabSize
        var rows: [[Int]] = prompts.map { tokenizer.tokenize($0, contextLength: L) }
        if V < tokenizer.vocabularySize {
            rows = rows.map { r in
                r.map { id in
                    id == 0 ? 0 : id == tokenizer.startOfTextID ? V - 2 : id == tokenizer.endOfTextID ? V - 1 : id % (V - 4) + 2
                }
            }
        }
        // Trim the padding after the batch's last EOT (causal mask: the pooled rows do not change;
        // CRIS masks padded words out of its cross-attention).
        let eot = V < tokenizer.vocabularySize ? V - 1 : tokenizer.endOfTextID
        let last = rows.map { $0.lastIndex(of: eot) ?? ($0.count - 1) }.max() ?? 0
        let trimmed = rows.map { Array($0.prefix(last + 1)) }
        return Tensor(shape: [prompts.count, last + 1], scalars: trimmed.flatMap { $0.map(Float.init) })
    }

    /// Logits [B, S, S].
    public func logits(_ pixels: Tensor, prompts: [String]) -> Tensor {
        let ids = tokenize(prompts)
        if let cris { return cris(pixels, ids: ids) }
        if let adapted { return adapted(pixels, ids: ids) }
        return clipseg!(pixels, condition: .text(ids: ids, attentionMask: nil))
    }

    /// Which parts train: adapters (always, when present), the decoder (CRIS: neck, decoder and
    /// projector), the encoders (CRIS: the backbone).
    public func setTrainable(decoder: Bool, encoders: Bool) {
        if let cris { cris.setTrainable(backbone: encoders, head: decoder) } else { clipseg!.setTrainable(encoders: encoders, decoder: decoder) }
    }

    public var trainableParameters: [Parameter] { module.trainableParameters() }
}
