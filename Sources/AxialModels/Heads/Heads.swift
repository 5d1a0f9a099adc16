import AxialNN
import AxialTensor
import Foundation

/// The MIL aggregation heads: a bag of instance (slice) features → class logits + per-instance
/// attention. Bags are batched as a zero-padded `[B, N, D]` tensor with a `[B, N]` mask (1 = real
/// instance, 0 = padding); every head masks padding out of its pooling, so padded rows get zero
/// attention and do not change the output.
public enum HeadKind: String, Codable, Sendable, CaseIterable {
    /// CLEAR's ABMIL: non-gated attention, LayerNorm/SiLU head.
    case abmil
    /// Ilse et al. / CLAM gated attention (tanh ⊙ sigmoid), linear classifier.
    case abmilGated = "abmil-gated"
    /// Set Transformer pooling by multi-head attention (k seeds).
    case pma
    /// PsPG: pseudo-prompt generation from class-name embeddings (multi-label, zero-shot capable).
    case pspg
}

/// Everything needed to rebuild a head (stored as JSON in the checkpoint metadata).
public struct HeadConfig: Codable, Sendable, Equatable {
    public var kind: HeadKind
    /// Instance feature width D.
    public var inputDimension: Int
    /// Output classes C (binary: 1).
    public var classes: Int
    /// Width after the instance encoder Linear(D, hidden) (+ReLU). ABMIL/PMA: 256.
    public var hidden = 256
    /// Attention MLP width: 256 (CLEAR non-gated), 128 (gated, as CLAM / peers).
    public var attentionHidden = 256
    /// Dropout after the instance encoder (peers: 0.25; CLEAR: 0).
    public var inputDropout: Float = 0
    /// CLEAR's head dropout (LayerNorm → Linear → Dropout → SiLU → Linear).
    public var headDropout: Float = 0.5
    /// PMA: seeds k ≥ 1 and attention heads.
    public var seeds = 1
    public var heads = 8
    /// PsPG: class-name embedding width E, decoder hidden size, autoregressive steps, attention
    /// heads of the decoder, prompt dropout, and whether the (projected) class embedding is added
    /// to the prompt (PsPG's ENABLE_PREFIX).
    public var embeddingDimension = 0
    public var decoderHidden = 64
    public var promptSteps = 16
    public var decoderHeads = 4
    public var promptDropout: Float = 0.2
    public var namePrefix = true
    /// PsPG on dense tokens: K tokens per instance row (bags [B, N, K·D]); nil = one pooled vector per row.
    /// Optional so that the JSON of older models (without the key) still decodes.
    public var tokensPerInstance: Int? = nil

    public init(kind: HeadKind, inputDimension: Int, classes: Int) {
        self.kind = kind; self.inputDimension = inputDimension; self.classes = classes
        if kind == .abmilGated { attentionHidden = 128; inputDropout = 0.25 }
        if kind == .pma { inputDropout = 0.25 }
        if kind == .pspg { hidden = 64; embeddingDimension = 32 }
    }

    public func validate() throws {
        guard inputDimension > 0, classes > 0, hidden > 0, attentionHidden > 0 else {
            throw HeadError.badConfig("input dimension, classes, hidden and attention sizes must be > 0")
        }
        for (name, p) in [("input dropout", inputDropout), ("head dropout", headDropout), ("prompt dropout", promptDropout)] where !(p >= 0 && p < 1) {
            throw HeadError.badConfig("\(name) \(p) must be in [0, 1)")
        }
        if kind == .pma {
            guard seeds >= 1 else { throw HeadError.badConfig("PMA needs k ≥ 1 seeds, got \(seeds)") }
            guard heads >= 1, hidden % heads == 0 else { throw HeadError.badConfig("PMA: hidden \(hidden) must be divisible by heads \(heads)") }
        }
        if kind == .pspg {
            guard embeddingDimension > 0, promptSteps >= 1 else { throw HeadError.badConfig("PsPG needs an embedding dimension and ≥ 1 prompt step") }
            guard decoderHidden % decoderHeads == 0 else { throw HeadError.badConfig("PsPG: decoder hidden \(decoderHidden) must be divisible by decoder heads \(decoderHeads)") }
        }
        if let k = tokensPerInstance {
            guard kind == .pspg else { throw HeadError.badConfig("dense tokens per instance are for the PsPG head only, not \(kind.rawValue)") }
            guard k >= 1 && k <= 4096 else { throw HeadError.badConfig("tokens per instance must be 1…4096, got \(k)") }
        }
    }

    public var json: String {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }

    public static func fromJSON(_ text: String) throws -> HeadConfig {
        do { return try JSONDecoder().decode(HeadConfig.self, from: Data(text.utf8)) } catch {
            throw HeadError.badConfig("cannot read the head config JSON: \(error)")
        }
    }
}

/// A head's forward result.
public struct HeadOutput {
    /// [B, C]. Binary / multi-label: sigmoid gives the probability; multi-class: softmax.
    /// PsPG: logit_pos − logit_neg (the pos/neg pair softmax equals its sigmoid).
    public var logits: Tensor
    /// [B, N], each row sums to 1 over the real instances, 0 on padding.
    public var attention: Tensor
    /// PsPG only: [B, 2, C] positive / negative prompt logits.
    public var pairLogits: Tensor?
    /// PsPG only: positive prompt embeddings [B, C, P] (for the pair co-occurrence term).
    public var prompts: Tensor?
    /// PsPG only: pooled fused instance feature [B, P] and the logit scale, for the pair term.
    public var pooled: Tensor?
    public var scale: Tensor?
}

/// A MIL head: an AxialNN `Module` (parameters under PyTorch's names: `stateDict()`,
/// `loadStateDict`, `parameters()` for the optimizers), forward on padded bags.
public protocol MILHead: Module, Sendable {
    var config: HeadConfig { get }
    /// bags [B, N, D], mask [B, N] (1 real, 0 padding). `training` turns dropout on (masks from `rng`).
    func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng: inout RandomGenerator) -> HeadOutput
}

extension MILHead {
    public func forward(_ bags: Tensor, mask: Tensor) -> HeadOutput {
        var g = RandomGenerator(seed: 0)
        return forward(bags, mask: mask, training: false, rng: &g)
    }
}

public enum Heads {
    /// A freshly initialised head (PyTorch-default initialisers drawn from `seed`). PsPG needs the
    /// class-name embeddings `[C, E]`.
    public static func make(_ config: HeadConfig, seed: UInt64, classEmbeddings: Tensor? = nil) throws -> MILHead {
        try config.validate()
        var g = RandomGenerator(seed: seed)
        switch config.kind {
        case .abmil: return ABMIL(config, generator: &g)
        case .abmilGated: return GatedABMIL(config, generator: &g)
        case .pma: return PMA(config, generator: &g)
        case .pspg:
            guard let e = classEmbeddings else { throw HeadError.badConfig("PsPG needs class-name embeddings [C, E]") }
            guard e.shape == [config.classes, config.embeddingDimension] else {
                throw HeadError.badConfig("class embeddings \(e.shape) != [\(config.classes), \(config.embeddingDimension)]")
            }
            return PsPGHead(config, classEmbeddings: e, generator: &g)
        }
    }

    /// Masked softmax over instances: scores [B, N] → weights with exactly 0 on padding.
    public static func maskedSoftmax(_ scores: Tensor, mask: Tensor) -> Tensor {
        softmax(scores.maskedFill(paddingMask(mask), -.infinity), axis: -1)
    }

    /// torch's key_padding_mask from a [B, N] instance mask: 1 where the mask is 0 (padding). No graph.
    public static func paddingMask(_ mask: Tensor) -> Tensor {
        let m = mask.detached()
        return Tensor(shape: m.shape) { p in m.withUnsafeBufferPointer { s in for i in 0..<s.count { p[i] = s[i] != 0 ? 0 : 1 } } }
    }

    /// Per-instance dropout helper (identity when not training or p = 0).
    static func drop(_ x: Tensor, _ p: Float, _ training: Bool, _ g: inout RandomGenerator) -> Tensor {
        training && p > 0 ? dropout(x, p: p, training: true, generator: &g) : x
    }
}
