import AxialNN
import AxialTensor

/// Pooling by Multi-head Attention (Set Transformer, Lee et al. 2019) as a MIL head. CLEAR imports
/// a `PMA_Classification` it never defines ([Q]); this follows the paper and peers/mil.py:
///
///     H = Dropout(ReLU(Linear(D, d)(x)))                         [B, N, d]     encoder.*
///     S = k learnable seeds                                      [k, d]        seeds (init N(0, 0.02²))
///     O = LayerNorm(S + MHA(S, H, H; key padding masked))         [B, k, d]     mab.attention.*, mab.norm0.*
///     O = LayerNorm(O + ReLU(Linear(d, d)(O)))                                  mab.ff.*, mab.norm1.*
///     logits = Linear(k·d, C)(flatten(O))                                       classifier.*
///
/// The classifier reads the k pooled seeds flattened in seed order (k = 1: the seed itself, as
/// peers/mil.py). Per-instance attention = MHA weights averaged over heads and seeds.
public final class PMA: Module, MILHead, @unchecked Sendable {
    public let config: HeadConfig
    public let encoder, feedForward, classifier: Linear
    public let seeds: Parameter
    public let attention: MultiheadAttention
    public let norm0, norm1: LayerNorm

    public init(_ config: HeadConfig, generator g: inout RandomGenerator) {
        self.config = config
        let d = config.hidden
        encoder = Linear(config.inputDimension, d, generator: &g)
        seeds = Parameter(Tensor.normal([config.seeds, d], std: 0.02, generator: &g))
        attention = MultiheadAttention(embedDimensions: d, numHeads: config.heads, generator: &g)
        norm0 = LayerNorm(d)
        feedForward = Linear(d, d, generator: &g)
        norm1 = LayerNorm(d)
        classifier = Linear(config.seeds * d, config.classes, generator: &g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("encoder", .module(encoder)), ("seeds", .parameter(seeds)), ("mab.attention", .module(attention)),
         ("mab.norm0", .module(norm0)), ("mab.ff", .module(feedForward)), ("mab.norm1", .module(norm1)),
         ("classifier", .module(classifier))]
    }

    public func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng g: inout RandomGenerator) -> HeadOutput {
        precondition(bags.rank == 3 && bags.shape[2] == config.inputDimension, "PMA: bags \(bags.shape) must be [B, N, \(config.inputDimension)]")
        let b = bags.shape[0], k = config.seeds, d = config.hidden
        let h = Heads.encode(bags, encoder, config.inputDropout, training, &g)
        let s = seeds.value.reshaped([1, k, d]).expand(to: [b, k, d])
        let (mha, w) = attention(s, h, h, keyPaddingMask: Heads.paddingMask(mask), needWeights: true)
        var o = norm0(s + mha)
        o = norm1(o + relu(feedForward(o)))
        let logits = classifier(o.reshaped([b, k * d]))
        return HeadOutput(logits: logits, attention: w!.mean(axis: 1).detached())
    }
}
