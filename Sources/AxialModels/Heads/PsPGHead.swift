import AxialNN
import AxialTensor
import Foundation

/// PsPG (pseudo-prompt generation, PRCV 2024) as a MIL head over slice features. Classes are given
/// by name embeddings `e_c` ([C, E], from a text tower or any given matrix; not trained), so a label
/// never seen in training is scored from its name embedding alone (zero-shot).
///
/// Instances (slices play the role of PsPG's 50 CLIP tokens):
///
///     f = l2normalize(Linear(D, P)(x)) ⊙ mask                         [B, N, P]    encoder.*
///     u = mean_c f,  m = max_c f                                       [B, N]
///     a = σ(conv(u) + conv(m)),  conv = Conv1d(1, 1, k = 3, pad 1, no bias) over the instances,
///         shared by both pools (exactly 3 parameters)                              eca.weight [1, 1, 3]
///     g = Σₙ aₙ fₙ / n_valid                                           [B, P]  (mean of the fused tokens)
///
/// Prompts, one decoder per polarity s ∈ {pos, neg} (`decoder.pos.*`, `decoder.neg.*`), over T steps
/// (default 16) for all classes at once, per sample:
///
///     x₀ = e_c, h₀ = 0
///     h = GRUCell(x_t, h)                                                           gru.*
///     h = h + MHA(h, h, h)           self-attention across the C classes            self_attention.*
///     ctx = MHA(h, M, M)             cross-attention to THAT sample's instances,
///                                    M = Linear(P, H)(f), padding masked            memory.*, cross_attention.*
///     x_{t+1} = Linear(H, E)(h + ctx)    fed back                                   fc.*
///     token_t = Linear(E, P)(Dropout(x_{t+1}))                                      proj.*
///     prompt = l2normalize(mean_t token_t [+ Linear(E, P)(e_c) when namePrefix])    [B, C, P]
///
///     logit_s[b, c] = exp(logit_scale) · ⟨g_b, prompt_s[b, c]⟩                   logit_scale (init log 1/0.07)
///
/// Differences from the reference, on purpose: cross-attention looks at the sample's own
/// instances (PsPG attends across the batch, [Q]); the CLIP text transformer that turns the 16
/// tokens into a text feature is replaced by the token mean (the text tower is not part of this
/// head); tokens are averaged over the real instances rather than summed (bags vary in length).
/// Per-instance attention = a over the real instances, normalised to sum 1.
///
/// Dense tokens (`config.tokensPerInstance` = K > 1; `axial crossval --head pspg --tokens dense` on
/// files from `axial extract --tokens dense`): each instance (slice) row holds K tokens of width D
/// (bags [B, N, K·D], D = `inputDimension`), and the tokens are the instances above, with two
/// changes: the fusion conv runs over each slice's own K tokens (zero padding at the slice's ends,
/// never across two slices — exactly the paper's fusion over the 50 RN50 tokens of one image), and
///
///     g = Σₙ Σₖ aₙₖ fₙₖ / n_valid_slices      (the paper's sum over a slice's tokens, averaged over slices)
///
/// Cross-attention looks at all K·N real tokens of the sample. Per-slice attention = Σₖ aₙₖ,
/// normalised to sum 1 over the real slices.
public final class PsPGHead: Module, MILHead, @unchecked Sendable {
    public let config: HeadConfig
    /// [C, E], not trained (not in the state dict). Replace with `withClassEmbeddings` to score other labels.
    public private(set) var classEmbeddings: Tensor
    public let encoder: Linear
    /// Conv1d(1, 1, k = 3, padding 1, no bias): the 3 fusion parameters.
    public let eca: Conv1d
    public let logitScale: Parameter
    /// Positive and negative prompt decoders.
    public let decoders: [PromptDecoder]

    /// One polarity's GRU pseudo-prompt decoder (keys `gru.* self_attention.* cross_attention.*
    /// memory.* fc.* proj.*`).
    public final class PromptDecoder: Module {
        public let gru: GRUCell
        public let selfAttention, crossAttention: MultiheadAttention
        public let memory, fc, proj: Linear

        init(_ config: HeadConfig, generator g: inout RandomGenerator) {
            let p = config.hidden, e = config.embeddingDimension, hd = config.decoderHidden
            gru = GRUCell(e, hd, generator: &g)
            selfAttention = MultiheadAttention(embedDimensions: hd, numHeads: config.decoderHeads, generator: &g)
            crossAttention = MultiheadAttention(embedDimensions: hd, numHeads: config.decoderHeads, generator: &g)
            memory = Linear(p, hd, generator: &g)
            fc = Linear(hd, e, generator: &g)
            proj = Linear(e, p, generator: &g)
            super.init()
        }
    }

    public init(_ config: HeadConfig, classEmbeddings: Tensor, generator g: inout RandomGenerator) {
        self.config = config
        self.classEmbeddings = classEmbeddings.detached()
        encoder = Linear(config.inputDimension, config.hidden, generator: &g)
        eca = Conv1d(1, 1, kernelSize: 3, padding: 1, bias: false, generator: &g)
        logitScale = Parameter(Tensor([Float(Foundation.log(1 / 0.07))]))
        decoders = [PromptDecoder(config, generator: &g), PromptDecoder(config, generator: &g)]
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("encoder", .module(encoder)), ("eca", .module(eca)), ("logit_scale", .parameter(logitScale)),
         ("decoder.pos", .module(decoders[0])), ("decoder.neg", .module(decoders[1]))]
    }

    /// The same head scoring another label set (zero-shot): new `[C′, E]` name embeddings, same parameters.
    public func withClassEmbeddings(_ embeddings: Tensor) -> PsPGHead {
        precondition(embeddings.rank == 2 && embeddings.shape[1] == config.embeddingDimension,
                     "PsPG: class embeddings \(embeddings.shape) must be [C, \(config.embeddingDimension)]")
        var c = config; c.classes = embeddings.shape[0]
        var g = RandomGenerator(seed: 0)
        let other = PsPGHead(c, classEmbeddings: embeddings, generator: &g)
        try! other.copyWeights(from: self)
        return other
    }

    /// Spatial fusion weights a [B, N] from the instance features f [B, N, P]: the shared Conv1d
    /// over instances applied to the channel mean and the channel max, summed, sigmoid.
    func fusionWeights(_ f: Tensor) -> Tensor {
        let b = f.shape[0], n = f.shape[1]
        let pools = concat([f.mean(axis: 2), f.max(axis: 2)], axis: 0).reshaped([2 * b, 1, n])
        let c = eca(pools).reshaped([2, b, n])
        return sigmoid(c.select(axis: 0, index: 0) + c.select(axis: 0, index: 1))
    }

    public func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng g: inout RandomGenerator) -> HeadOutput {
        let k = config.tokensPerInstance ?? 1
        precondition(bags.rank == 3 && bags.shape[2] == k * config.inputDimension,
                     "PsPG: bags \(bags.shape) must be [B, N, \(k == 1 ? "" : "\(k) tokens × ")\(config.inputDimension)]")
        let b = bags.shape[0], slices = bags.shape[1], n = slices * k, c = classEmbeddings.shape[0], e = config.embeddingDimension
        let p = config.hidden, hd = config.decoderHidden
        let sliceMask = mask.detached()
        // Instances = tokens (slice-major); every token of a slice shares its mask.
        let m = k == 1 ? sliceMask : sliceMask.reshaped([b, slices, 1]).expand(to: [b, slices, k]).reshaped([b, n])
        let x = k == 1 ? bags : bags.reshaped([b, n, config.inputDimension])
        let f = l2Normalize(encoder(x), axis: -1) * m.reshaped([b, n, 1])
        let a = k == 1 ? fusionWeights(f) : fusionWeights(f.reshaped([b * slices, k, p])).reshaped([b, n])   // [B, N·K]
        let am = a * m
        let counts = sliceMask.sum(axis: 1, keepDims: true)               // [B, 1] real slices
        let pooled = matmul(am.reshaped([b, 1, n]), f).reshaped([b, p]) / counts
        let perSlice = k == 1 ? am : am.reshaped([b, slices, k]).sum(axis: 2)
        let attention = (perSlice / perSlice.sum(axis: 1, keepDims: true)).detached()
        let padding = Heads.paddingMask(m)

        let e0 = classEmbeddings.reshaped([1, c, e]).expand(to: [b, c, e])
        var prompts: [Tensor] = []
        for dec in decoders {
            let memory = dec.memory(f)                                     // [B, N, H]
            var x = e0
            var h = Tensor(zeros: [b * c, hd])
            var tokens: Tensor? = nil
            for _ in 0..<config.promptSteps {
                var hs = dec.gru(x.reshaped([b * c, e]), hidden: h).reshaped([b, c, hd])
                hs = hs + dec.selfAttention(hs)
                let ctx = dec.crossAttention(hs, memory, memory, keyPaddingMask: padding, needWeights: false).output
                x = dec.fc(hs + ctx)
                h = hs.reshaped([b * c, hd])
                let tok = dec.proj(Heads.drop(x, config.promptDropout, training, &g))
                tokens = tokens.map { $0 + tok } ?? tok
            }
            var prompt = tokens! * (1 / Float(config.promptSteps))
            if config.namePrefix { prompt = prompt + dec.proj(e0) }
            prompts.append(l2Normalize(prompt, axis: -1))                  // [B, C, P]
        }
        let scale = logitScale.value.exp()
        let q = pooled.reshaped([b, p, 1])
        let pos = matmul(prompts[0], q).reshaped([b, c]) * scale
        let neg = matmul(prompts[1], q).reshaped([b, c]) * scale
        return HeadOutput(logits: pos - neg, attention: attention, pairLogits: stack([pos, neg], axis: 1),
                          prompts: prompts[0], pooled: pooled, scale: scale)
    }
}
