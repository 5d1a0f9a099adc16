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
public final class PMA: MILHead {
    public let config: HeadConfig
    public let parameters = ParameterSet()
    let encoder, feedForward, classifier: LinearParameters
    let seeds: Tensor
    let attention: AttentionParameters
    let norm0, norm1: LayerNormParameters

    public init(_ config: HeadConfig, generator g: inout RandomGenerator) {
        self.config = config
        let d = config.hidden
        encoder = Init.linear(parameters, "encoder", input: config.inputDimension, output: d, &g)
        seeds = parameters.add("seeds", Tensor.normal([config.seeds, d], std: 0.02, generator: &g))
        attention = Init.attention(parameters, "mab.attention", dim: d, heads: config.heads, &g)
        norm0 = Init.layerNorm(parameters, "mab.norm0", d)
        feedForward = Init.linear(parameters, "mab.ff", input: d, output: d, &g)
        norm1 = Init.layerNorm(parameters, "mab.norm1", d)
        classifier = Init.linear(parameters, "classifier", input: config.seeds * d, output: config.classes, &g)
    }

    public func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng g: inout RandomGenerator) -> HeadOutput {
        precondition(bags.rank == 3 && bags.shape[2] == config.inputDimension, "PMA: bags \(bags.shape) must be [B, N, \(config.inputDimension)]")
        let b = bags.shape[0], k = config.seeds, d = config.hidden
        let h = Heads.drop(relu(encoder(bags)), config.inputDropout, training, &g)
        let s = seeds.reshaped([1, k, d]).expand(to: [b, k, d])
        let (mha, w) = attention(query: s, keyValue: h, keyMask: mask, weights: true)
        var o = norm0(s + mha)
        o = norm1(o + relu(feedForward(o)))
        let logits = classifier(o.reshaped([b, k * d]))
        return HeadOutput(logits: logits, attention: w!.mean(axis: 1).detached())
    }
}
