import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// The model of `axial segment`: CLIPSeg (transformers-exact) with or without VLSM adapters, the
/// prompt tokenizer, and its saved form (`model.safetensors`: the module's state dict under the
/// reference names — transformers' for plain CLIPSeg, vlsm-adapter's with adapters — plus metadata
/// `segment.model`, `segment.adapters`, `segment.variant`, `segment.adapter_dim`).
public final class PromptSegmenter: @unchecked Sendable {
    public enum Adapters: String, Sendable, CaseIterable { case none, shallow, dense }

    public let modelName: String
    public let config: CLIPSegConfig
    public let adapters: Adapters
    public let variant: String
    public let clipseg: CLIPSeg
    public let adapted: VLSMCLIPSeg?
    let tokenizer: CLIPTokenizer

    /// The module whose state is saved / checkpointed.
    public var module: Module { adapted ?? clipseg }

    public static let modelNames = ["clipseg", "clipseg_test"]

    public static func config(named name: String) throws -> CLIPSegConfig {
        switch name {
        case "clipseg": return .rd64Refined
        case "clipseg_test": return .clipsegTest
        default: throw SegmentError.badOption("unknown --model '\(name)' (known: \(modelNames.joined(separator: ", ")))")
        }
    }

    /// Builds the model (random init from `seed`), then loads `weights` if given: a transformers
    /// CLIPSeg file (`clip.*` + `decoder.*`) or a `model.safetensors` written by `axial segment train`.
    public init(model name: String, adapters: Adapters, variant: String = "vlc", adapterDim: Int? = nil,
                weights: URL?, seed: UInt64) throws {
        modelName = name
        config = try Self.config(named: name)
        self.adapters = adapters
        self.variant = variant
        var g = RandomGenerator(seed: seed)
        clipseg = CLIPSeg(config, generator: &g)
        switch adapters {
        case .none: adapted = nil
        case .shallow, .dense:
            let kind: VLSMAdapterOptions.Kind = adapters == .shallow ? .shallow : .dense
            do {
                adapted = VLSMCLIPSeg(clipseg, options: try VLSMAdapterOptions.variant(kind, variant, dim: adapterDim), generator: &g)
            } catch { throw SegmentError.badOption("--variant: \(error)") }
        }
        tokenizer = try CLIPTokenizer.shared()
        if let weights { try load(weights) }
    }

    /// Loads weights: transformers CLIPSeg keys (`clip.`, `decoder.`) go into CLIPSeg; a saved
    /// adapted model (`clipseg.` keys) into the whole module.
    public func load(_ url: URL) throws {
        let state = try EncoderWeights.read(url)
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

    /// Prompt ids [B, L]: CLIP BPE (open_clip's tokenizer, 77 tokens, EOT 49407, zero padding). The
    /// test model's 99-token vocabulary takes id % 95 + 2 for ordinary tokens, 97 for the start and
    /// 98 for the end token (so its EOT pooling works as CLIPSeg's).
    public func tokenize(_ prompts: [String]) -> Tensor {
        let L = min(config.maxPositions, CLIPTokenizer.defaultContextLength)
        var rows: [[Int]] = prompts.map { tokenizer.tokenize($0, contextLength: L) }
        if config.vocabSize < tokenizer.vocabularySize {
            rows = rows.map { r in
                r.map { id in
                    id == 0 ? 0 : id == tokenizer.startOfTextID ? config.vocabSize - 2 : id == tokenizer.endOfTextID ? config.vocabSize - 1
                        : id % (config.vocabSize - 4) + 2
                }
            }
        }
        // Trim the padding after the batch's last EOT (causal mask: the pooled rows do not change).
        let eot = config.vocabSize < tokenizer.vocabularySize ? config.vocabSize - 1 : tokenizer.endOfTextID
        let last = rows.map { $0.lastIndex(of: eot) ?? ($0.count - 1) }.max() ?? 0
        let trimmed = rows.map { Array($0.prefix(last + 1)) }
        return Tensor(shape: [prompts.count, last + 1], scalars: trimmed.flatMap { $0.map(Float.init) })
    }

    /// Logits [B, S, S].
    public func logits(_ pixels: Tensor, prompts: [String]) -> Tensor {
        let ids = tokenize(prompts)
        if let adapted { return adapted(pixels, ids: ids) }
        return clipseg(pixels, condition: .text(ids: ids, attentionMask: nil))
    }

    /// Which parts train: adapters (always, when present), the decoder, the encoders.
    public func setTrainable(decoder: Bool, encoders: Bool) {
        clipseg.setTrainable(encoders: encoders, decoder: decoder)
    }

    public var trainableParameters: [Parameter] { module.trainableParameters() }
}
