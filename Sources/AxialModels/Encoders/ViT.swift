import AxialNN
import AxialTensor
import Foundation

// Vision Transformer with timm's parameter names (timm `VisionTransformer`, MoCo v3 `vits.py`).
//
//   x [B, 3, H, W] ─patch_embed─▶ [B, Np, D] ─cat cls_token, + pos_embed─▶ [B, 1+Np, D]
//     ─blocks (pre-norm: x + attn(norm1(x)); x + mlp(norm2(x)))─▶ norm ─▶ forward_features
//   feature = forward_head(pre_logits: true): the class token after `norm` (global_pool 'token'),
//   or `fc_norm(mean of the patch tokens)` (global_pool 'avg', where `norm` is the identity).
//
// Keys: patch_embed.proj.weight [D, 3, p, p] / .bias (or MoCo's ConvStem patch_embed.proj.{0..12}),
// cls_token [1, 1, D], pos_embed [1, 1+Np, D], blocks.N.{norm1, attn.qkv, attn.proj, norm2,
// mlp.fc1, mlp.fc2}.{weight, bias}, norm.* (token pool) or fc_norm.* (avg pool), head.* (classes > 0).
// GELU is the exact (erf) form; LayerNorm eps 1e-6.
//
// Two paths, same numbers: with grad mode on, the forward composes AxialTensor's differentiable
// ops (MoCo pretraining trains through it); under `withNoGrad` it runs the tape-free kernels of
// EncoderKernels on pooled buffers (row-partitioned GEMMs with fused bias/GELU/residual,
// attention per (batch, head) in parallel).

/// Configuration of a ViT (timm / MoCo v3 names in comments).
public struct ViTConfig: Codable, Sendable, Equatable {
    public enum Pool: String, Codable, Sendable { case token, avg }
    public enum PositionEmbedding: String, Codable, Sendable {
        /// A trained parameter (timm).
        case learned
        /// MoCo v3's fixed 2-D sin-cos table (temperature 10000, zero class-token row), frozen.
        case sincos
    }
    public enum Stem: String, Codable, Sendable {
        /// One p×p stride-p convolution (done as a reshape + GEMM).
        case patch
        /// MoCo v3 ConvStem: 4 × [conv3×3 s2, BN, ReLU] then conv1×1 (patch size 16 only).
        case conv
    }

    public var imageSize: Int = 224
    public var patchSize: Int = 16
    public var inChannels: Int = 3
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    public var mlpRatio: Double = 4
    public var qkvBias: Bool = true
    public var layerNormEps: Float = 1e-6
    /// Classifier width (`head`); 0 = no head (features only).
    public var numClasses: Int = 0
    public var globalPool: Pool = .token
    public var positionEmbedding: PositionEmbedding = .learned
    public var stem: Stem = .patch

    public init(imageSize: Int = 224, patchSize: Int = 16, inChannels: Int = 3, embedDim: Int, depth: Int, numHeads: Int,
                mlpRatio: Double = 4, qkvBias: Bool = true, layerNormEps: Float = 1e-6, numClasses: Int = 0,
                globalPool: Pool = .token, positionEmbedding: PositionEmbedding = .learned, stem: Stem = .patch) {
        self.imageSize = imageSize; self.patchSize = patchSize; self.inChannels = inChannels
        self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads; self.mlpRatio = mlpRatio
        self.qkvBias = qkvBias; self.layerNormEps = layerNormEps; self.numClasses = numClasses
        self.globalPool = globalPool; self.positionEmbedding = positionEmbedding; self.stem = stem
    }

    /// Patches per side, patch count, tokens (class token + patches).
    public var gridSize: Int { imageSize / patchSize }
    public var numPatches: Int { gridSize * gridSize }
    public var numTokens: Int { numPatches + 1 }
    public var headDim: Int { embedDim / numHeads }
    /// MLP hidden width: int(embed_dim · mlp_ratio), as timm.
    public var mlpHidden: Int { Int(Double(embedDim) * mlpRatio) }
    /// Width of the feature (forward_head with pre_logits).
    public var featureDimension: Int { embedDim }

    // Named configurations. timm: vit_small_patch16_224 (6 heads), vit_base_patch16_224.
    // MoCo v3 (vits.py): vit_small with 12 heads, fixed sin-cos positions; conv-stem variants
    // have one block fewer (depth 11).
    public static let vitSmall = ViTConfig(embedDim: 384, depth: 12, numHeads: 6)
    public static let vitBase = ViTConfig(embedDim: 768, depth: 12, numHeads: 12)
    public static let vitSmallMoCo = ViTConfig(embedDim: 384, depth: 12, numHeads: 12, positionEmbedding: .sincos)
    public static let vitBaseMoCo = ViTConfig(embedDim: 768, depth: 12, numHeads: 12, positionEmbedding: .sincos)
    public static let vitConvSmall = ViTConfig(embedDim: 384, depth: 11, numHeads: 12, positionEmbedding: .sincos, stem: .conv)
    public static let vitConvBase = ViTConfig(embedDim: 768, depth: 11, numHeads: 12, positionEmbedding: .sincos, stem: .conv)
    /// Tiny configurations for tests and the demo.
    public static let vitTest = ViTConfig(imageSize: 32, patchSize: 8, embedDim: 32, depth: 3, numHeads: 4)
    public static let vitConvTest = ViTConfig(imageSize: 32, patchSize: 16, embedDim: 32, depth: 2, numHeads: 4,
                                              positionEmbedding: .sincos, stem: .conv)

    func validate() {
        precondition(embedDim % numHeads == 0, "ViTConfig: embedDim \(embedDim) not divisible by numHeads \(numHeads)")
        precondition(imageSize % patchSize == 0, "ViTConfig: imageSize \(imageSize) not divisible by patchSize \(patchSize)")
        if positionEmbedding == .sincos { precondition(embedDim % 4 == 0, "ViTConfig: sin-cos positions need embedDim % 4 == 0, got \(embedDim)") }
        if stem == .conv { precondition(patchSize == 16 && embedDim % 8 == 0, "ViTConfig: ConvStem needs patch 16 and embedDim % 8 == 0") }
    }
}

/// MoCo v3's fixed 2-D sin-cos position table [1, 1 + h·w, dim]: row 0 (class token) zero; for
/// token m (meshgrid over (w, h) in 'ij' order, flattened: gw = m / h, gh = m mod h) and
/// ω_d = 1 / temperature^(d / (dim/4)), d < dim/4: [sin(gw·ω), cos(gw·ω), sin(gh·ω), cos(gh·ω)].
public func sinCosPositionEmbedding2D(gridHeight h: Int, gridWidth w: Int, dim: Int, temperature: Float = 10000) -> Tensor {
    precondition(dim % 4 == 0, "sin-cos position embedding: dim \(dim) must be divisible by 4")
    let q = dim / 4
    var out = [Float](repeating: 0, count: (1 + h * w) * dim)
    // omega in Float as torch computes it: arange/pos_dim, then 1/(T**omega)
    let omega: [Float] = (0..<q).map { 1 / Float(pow(Double(temperature), Double(Float($0) / Float(q)))) }
    for m in 0..<(h * w) {
        let gw = Float(m / h), gh = Float(m % h)
        let row = (1 + m) * dim
        for d in 0..<q {
            let aw = gw * omega[d], ah = gh * omega[d]
            out[row + d] = Float(sin(Double(aw)))
            out[row + q + d] = Float(cos(Double(aw)))
            out[row + 2 * q + d] = Float(sin(Double(ah)))
            out[row + 3 * q + d] = Float(cos(Double(ah)))
        }
    }
    return Tensor(shape: [1, 1 + h * w, dim], scalars: out)
}

/// The plain patch embedding: a p×p, stride-p convolution done as reshape + GEMM. Keys
/// `proj.weight` [D, C, p, p], `proj.bias` [D]. Init as timm (conv default: U(±1/√(C·p·p))).
public final class PatchEmbedding: Module {
    /// The convolution's parameters (key `proj`).
    public final class Projection: Module {
        public let weight: Parameter
        public let bias: Parameter
        init(weight: Tensor, bias: Tensor) { self.weight = Parameter(weight); self.bias = Parameter(bias); super.init() }
    }
    public let proj: Projection
    public let patchSize: Int

    public init(inChannels: Int, embedDim: Int, patchSize: Int, generator: inout RandomGenerator) {
        let shape = [embedDim, inChannels, patchSize, patchSize]
        let bound = 1 / Float(inChannels * patchSize * patchSize).squareRoot()
        proj = Projection(weight: Initializer.kaimingUniform(shape, generator: &generator),
                          bias: Initializer.uniform([embedDim], bound: bound, generator: &generator))
        self.patchSize = patchSize
        super.init()
    }

    /// [B, C, H, W] → [B, (H/p)·(W/p), D] (differentiable).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, c, hh, ww) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let p = patchSize, gh = hh / p, gw = ww / p, d = proj.weight.shape[0]
        let patches = x.reshaped([b, c, gh, p, gw, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([b * gh * gw, c * p * p])
        return linear(patches, weight: proj.weight.value.reshaped([d, c * p * p]), bias: proj.bias.value).reshaped([b, gh * gw, d])
    }
}

/// Multi-head self-attention with a packed `qkv` Linear [3D, D] and an output `proj` [D, D].
public final class ViTAttention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let numHeads: Int

    public init(dim: Int, numHeads: Int, qkvBias: Bool, generator: inout RandomGenerator) {
        qkv = Linear(dim, 3 * dim, bias: qkvBias, generator: &generator)
        proj = Linear(dim, dim, generator: &generator)
        self.numHeads = numHeads
        super.init()
    }

    /// [B, N, D] → [B, N, D]: softmax(q·kᵀ/√hd)·v per head, heads concatenated, projected.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, n, d) = (x.shape[0], x.shape[1], x.shape[2])
        let hd = d / numHeads
        precondition(d % numHeads == 0 && hd > 0, "ViTAttention: width \(d) not divisible by \(numHeads) heads")
        // The packed [B, N, 3·D] projection read in place (no permuted copies); the backward keeps
        // one log-sum-exp per score row instead of the [B, H, N, N] probabilities.
        return proj(packedSelfAttention(qkv(x), heads: numHeads).reshaped([b, n, d]))
    }
}

/// timm `Mlp`: fc1 → GELU (erf) → fc2.
public final class ViTMLP: Module, UnaryLayer {
    public let fc1: Linear
    public let fc2: Linear
    public init(dim: Int, hidden: Int, generator: inout RandomGenerator) {
        fc1 = Linear(dim, hidden, generator: &generator)
        fc2 = Linear(hidden, dim, generator: &generator)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(gelu(fc1(x))) }
}

/// Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)).
public final class ViTBlock: Module {
    public let norm1: LayerNorm
    public let attn: ViTAttention
    public let norm2: LayerNorm
    public let mlp: ViTMLP

    public init(_ c: ViTConfig, generator: inout RandomGenerator) {
        norm1 = LayerNorm(c.embedDim, eps: c.layerNormEps)
        attn = ViTAttention(dim: c.embedDim, numHeads: c.numHeads, qkvBias: c.qkvBias, generator: &generator)
        norm2 = LayerNorm(c.embedDim, eps: c.layerNormEps)
        mlp = ViTMLP(dim: c.embedDim, hidden: c.mlpHidden, generator: &generator)
        super.init()
    }

    /// Each half is one fused op (`preNormAttentionResidual`, `preNormMLPResidual`): the same numbers
    /// as composing norm1, attn, norm2, mlp and the residual adds, with a backward that keeps only
    /// x, the row statistics, qkv, the attention output and its log-sum-exp, and fc1's output.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == norm1.dimensions, "ViTBlock: input \(x.shape) must be [B, N, \(norm1.dimensions)]")
        let h = preNormAttentionResidual(x, normWeight: norm1.weight?.value, normBias: norm1.bias?.value, eps: norm1.eps,
                                         qkvWeight: attn.qkv.weight.value, qkvBias: attn.qkv.bias?.value,
                                         projWeight: attn.proj.weight.value, projBias: attn.proj.bias?.value, heads: attn.numHeads)
        return preNormMLPResidual(h, normWeight: norm2.weight?.value, normBias: norm2.bias?.value, eps: norm2.eps,
                                  fc1Weight: mlp.fc1.weight.value, fc1Bias: mlp.fc1.bias?.value,
                                  fc2Weight: mlp.fc2.weight.value, fc2Bias: mlp.fc2.bias?.value)
    }
}

/// A Vision Transformer (timm `VisionTransformer` / MoCo v3 `VisionTransformerMoCo`).
public final class VisionTransformer: Module, ImageEncoder {
    public let config: ViTConfig
    /// `PatchEmbedding` or `ConvStem` (key `patch_embed`).
    public let patchEmbed: Module
    public let clsToken: Parameter
    public let posEmbed: Parameter
    public let blocks: [ViTBlock]
    /// Final norm (token pool) — absent for avg pool, where `fcNorm` is applied after pooling.
    public let norm: LayerNorm?
    public let fcNorm: LayerNorm?
    public let head: Linear?
    let pool = ActivationPool()

    public init(_ config: ViTConfig, generator: inout RandomGenerator) {
        config.validate()
        self.config = config
        let d = config.embedDim
        switch config.stem {
        case .patch: patchEmbed = PatchEmbedding(inChannels: config.inChannels, embedDim: d, patchSize: config.patchSize, generator: &generator)
        case .conv: patchEmbed = ConvStem(inChannels: config.inChannels, embedDim: d, generator: &generator)
        }
        clsToken = Parameter(Initializer.truncatedNormal([1, 1, d], std: 1e-6, generator: &generator))
        switch config.positionEmbedding {
        case .learned: posEmbed = Parameter(Initializer.truncatedNormal([1, config.numTokens, d], std: 0.02, generator: &generator))
        case .sincos: posEmbed = Parameter(sinCosPositionEmbedding2D(gridHeight: config.gridSize, gridWidth: config.gridSize, dim: d), frozen: true)
        }
        var bs: [ViTBlock] = []
        for _ in 0..<config.depth { bs.append(ViTBlock(config, generator: &generator)) }
        blocks = bs
        norm = config.globalPool == .token ? LayerNorm(d, eps: config.layerNormEps) : nil
        fcNorm = config.globalPool == .avg ? LayerNorm(d, eps: config.layerNormEps) : nil
        head = config.numClasses > 0 ? Linear(d, config.numClasses, generator: &generator) : nil
        super.init()
    }

    public convenience init(_ config: ViTConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    public var featureDimension: Int { config.featureDimension }
    public var inputSize: Int { config.imageSize }

    // MARK: Differentiable forward

    func checkInput(_ x: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == config.inChannels && x.shape[2] == config.imageSize && x.shape[3] == config.imageSize,
                     "VisionTransformer: input \(x.shape) must be [B, \(config.inChannels), \(config.imageSize), \(config.imageSize)]")
    }

    /// Patch tokens with the class token and positions: [B, 1 + Np, D] (timm `_pos_embed`).
    public func embed(_ x: Tensor) -> Tensor {
        checkInput(x)
        let b = x.shape[0], d = config.embedDim
        let tokens: Tensor
        if let pe = patchEmbed as? PatchEmbedding { tokens = pe(x) } else { tokens = (patchEmbed as! ConvStem)(x) }
        let cls = clsToken.value.expand(to: [b, 1, d])
        return concat([cls, tokens], axis: 1) + posEmbed.value
    }

    /// timm `forward_features`: all tokens after the blocks and the final norm, [B, 1 + Np, D].
    /// `intermediates`: block indices whose outputs (before the final norm) are returned too.
    public func forwardFeatures(_ x: Tensor, intermediates: [Int] = []) -> (tokens: Tensor, intermediates: [Tensor]) {
        if !Tensor.isGradEnabled {
            let r = inferenceForward(x, intermediates: intermediates, allTokens: true)
            return (r.tokens!, r.intermediates)
        }
        var h = embed(x)
        var taps: [Tensor] = []
        for (i, blk) in blocks.enumerated() {
            h = blk(h)
            if intermediates.contains(i) { taps.append(h) }
        }
        if let norm { h = norm(h) }
        return (h, taps)
    }

    /// timm `forward_head`: pooled (class token, or mean of patch tokens + fc_norm); with
    /// `preLogits` false, through `head` as well (when there is one).
    public func forwardHead(_ tokens: Tensor, preLogits: Bool = true) -> Tensor {
        var f: Tensor
        switch config.globalPool {
        case .token: f = tokens.select(axis: 1, index: 0)
        case .avg: f = fcNorm!(tokens.narrow(axis: 1, start: 1, length: tokens.shape[1] - 1).mean(axis: 1))
        }
        if !preLogits, let head { f = head(f) }
        return f
    }

    /// The slice feature: forward_head(forward_features(x), pre_logits: true), [B, D].
    public func encode(_ x: Tensor) -> Tensor {
        if !Tensor.isGradEnabled { return inferenceForward(x, intermediates: [], allTokens: false).features }
        return forwardHead(forwardFeatures(x).tokens, preLogits: true)
    }

    /// Logits through `head` (or the features when there is no head).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let f = encode(x)
        return head.map { $0(f) } ?? f
    }

    // MARK: Tape-free inference

    /// Tape-free forward on pooled buffers. Returns the pooled feature [B, D], the normed tokens
    /// when `allTokens`, and the requested block outputs.
    func inferenceForward(_ x: Tensor, intermediates: [Int], allTokens: Bool) -> (features: Tensor, tokens: Tensor?, intermediates: [Tensor]) {
        checkInput(x)
        pool.lock.lock(); defer { pool.lock.unlock() }
        let c = config
        let b = x.shape[0], n = c.numTokens, np = c.numPatches, d = c.embedDim, hid = c.mlpHidden
        // The buffers below are sized from the config; the tensors read through raw pointers must
        // fit them (a model built for another size than its input or its loaded weights stops here
        // with the shapes, never reads or writes past a buffer).
        precondition(x.count == b * c.inChannels * c.imageSize * c.imageSize, "VisionTransformer: input \(x.shape) vs image size \(c.imageSize)")
        precondition(posEmbed.value.shape == [1, n, d], "VisionTransformer: pos_embed \(posEmbed.value.shape) != [1, \(n), \(d)] (image size \(c.imageSize), patch \(c.patchSize))")
        precondition(clsToken.value.shape == [1, 1, d], "VisionTransformer: cls_token \(clsToken.value.shape) != [1, 1, \(d)]")
        let m = b * n
        let xs = pool.buffer("x", m * d), hs = pool.buffer("h", m * d)
        let qkv = pool.buffer("qkv", m * 3 * d), att = pool.buffer("attn", m * d), u = pool.buffer("u", m * hid)
        let xr = UnsafeBufferPointer(xs), hr = UnsafeBufferPointer(hs)
        // Patch tokens [B·Np, D] into `h`, then x = [cls; tokens] + pos.
        if let pe = patchEmbed as? PatchEmbedding {
            let p = c.patchSize, g = c.gridSize, ch = c.inChannels, k = ch * p * p
            let patches = pool.buffer("patches", b * np * k)
            let src = SendablePointer(x.storage.pointer), dst = SendablePointer(patches.baseAddress!)
            let hw = c.imageSize
            parallelFor(b * np, grain: 16) { r in
                for row in r {
                    let bi = row / np, t = row % np, ty = t / g, tx = t % g
                    let o = dst.p + row * k
                    for ci in 0..<ch {
                        for ky in 0..<p {
                            let s = src.p + ((bi * ch + ci) * hw + ty * p + ky) * hw + tx * p
                            (o + (ci * p + ky) * p).update(from: s, count: p)
                        }
                    }
                }
            }
            EncoderKernels.linear(m: b * np, n: d, k: k, a: UnsafeBufferPointer(patches), lda: k, weight: pe.proj.weight.value.reshaped([d, k]),
                                  bias: pe.proj.bias.value, c: hs, ldc: d)
        } else {
            let t = (patchEmbed as! ConvStem)(x)  // no tape under withNoGrad
            precondition(t.shape == [b, np, d], "VisionTransformer: ConvStem tokens \(t.shape) != [\(b), \(np), \(d)]")
            t.withUnsafeBufferPointer { hs.baseAddress!.update(from: $0.baseAddress!, count: b * np * d) }
        }
        do {
            let hp = SendablePointer(hs.baseAddress!), xp = SendablePointer(xs.baseAddress!)
            let pos = SendablePointer(posEmbed.value.storage.pointer), cls = SendablePointer(clsToken.value.storage.pointer)
            parallelFor(m, grain: 64) { r in
                for row in r {
                    let bi = row / n, t = row % n
                    let o = xp.p + row * d, pp = pos.p + t * d
                    let s = t == 0 ? cls.p : hp.p + (bi * np + t - 1) * d
                    for j in 0..<d { o[j] = s[j] + pp[j] }
                }
            }
        }
        var taps: [Tensor] = []
        for (i, blk) in blocks.enumerated() {
            EncoderKernels.layerNorm(rows: m, d: d, x: xr, ldx: d, weight: blk.norm1.weight?.value, bias: blk.norm1.bias?.value,
                                     eps: blk.norm1.eps, out: hs, ldo: d)
            EncoderKernels.linear(m: m, n: 3 * d, k: d, a: hr, lda: d, weight: blk.attn.qkv.weight.value, bias: blk.attn.qkv.bias?.value,
                                  c: qkv, ldc: 3 * d)
            EncoderKernels.attention(batch: b, tokens: n, heads: c.numHeads, headDim: c.headDim, qkv: UnsafeBufferPointer(qkv), out: att)
            EncoderKernels.linear(m: m, n: d, k: d, a: UnsafeBufferPointer(att), lda: d, weight: blk.attn.proj.weight.value, bias: blk.attn.proj.bias?.value,
                                  c: xs, ldc: d, accumulate: true)
            EncoderKernels.layerNorm(rows: m, d: d, x: xr, ldx: d, weight: blk.norm2.weight?.value, bias: blk.norm2.bias?.value,
                                     eps: blk.norm2.eps, out: hs, ldo: d)
            EncoderKernels.linear(m: m, n: hid, k: d, a: hr, lda: d, weight: blk.mlp.fc1.weight.value, bias: blk.mlp.fc1.bias?.value,
                                  c: u, ldc: hid, gelu: true)
            EncoderKernels.linear(m: m, n: d, k: hid, a: UnsafeBufferPointer(u), lda: hid, weight: blk.mlp.fc2.weight.value, bias: blk.mlp.fc2.bias?.value,
                                  c: xs, ldc: d, accumulate: true)
            if intermediates.contains(i) {
                taps.append(Tensor(shape: [b, n, d]) { $0.baseAddress!.update(from: xs.baseAddress!, count: m * d) })
            }
        }
        var tokens: Tensor? = nil
        if allTokens {
            if let norm {
                tokens = Tensor(shape: [b, n, d]) { o in
                    EncoderKernels.layerNorm(rows: m, d: d, x: xr, ldx: d, weight: norm.weight?.value, bias: norm.bias?.value, eps: norm.eps,
                                             out: o, ldo: d)
                }
            } else {
                tokens = Tensor(shape: [b, n, d]) { $0.baseAddress!.update(from: xs.baseAddress!, count: m * d) }
            }
        }
        let features: Tensor
        switch c.globalPool {
        case .token:
            let nrm = norm!
            features = Tensor(shape: [b, d]) { o in
                // class-token rows only: row stride n·d
                EncoderKernels.layerNorm(rows: b, d: d, x: xr, ldx: n * d, weight: nrm.weight?.value, bias: nrm.bias?.value, eps: nrm.eps,
                                         out: o, ldo: d)
            }
        case .avg:
            let mean = Tensor(shape: [b, d]) { o in
                for bi in 0..<b {
                    let out = o.baseAddress! + bi * d
                    for j in 0..<d { out[j] = 0 }
                    for t in 1..<n { let s = xs.baseAddress! + (bi * n + t) * d; for j in 0..<d { out[j] += s[j] } }
                    for j in 0..<d { out[j] /= Float(np) }
                }
            }
            let fn = fcNorm!
            features = Tensor(shape: [b, d]) { o in
                mean.withUnsafeBufferPointer { mp in
                    EncoderKernels.layerNorm(rows: b, d: d, x: mp, ldx: d, weight: fn.weight?.value, bias: fn.bias?.value,
                                             eps: fn.eps, out: o, ldo: d)
                }
            }
        }
        return (features, tokens, taps)
    }

    /// Frees the pooled inference buffers.
    public func releaseBuffers() { pool.lock.lock(); pool.clear(); pool.lock.unlock() }

    // MARK: Weights

    /// Maps a checkpoint's keys onto this model's (the one place ViT key names are translated):
    /// MoCo v3 / CLEAR checkpoints keep only `module.base_encoder.*` (also `base_encoder.*`,
    /// `module.*`) with the prefix stripped; `head.*` is dropped when the model has no classifier
    /// (timm classifier, MoCo projection MLP); `num_batches_tracked` is dropped where the model has none.
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        let own = Set(stateDict().keys)
        var s = state
        for prefix in ["module.base_encoder.", "base_encoder.", "module."] where s.keys.contains(where: { $0.hasPrefix(prefix) }) {
            var t: [String: Tensor] = [:]
            for (k, v) in s where k.hasPrefix(prefix) { t[String(k.dropFirst(prefix.count))] = v }
            s = t
            break
        }
        var out: [String: Tensor] = [:]
        for (k, v) in s {
            if head == nil && (k == "head.weight" || k == "head.bias" || k.hasPrefix("head.")) { continue }
            if k.hasSuffix("num_batches_tracked") && !own.contains(k) { continue }
            out[k] = v
        }
        // A checkpoint made at another input size: timm's checkpoint_filter_fn resamples a learned
        // pos_embed to the model's grid (bicubic, antialias); a fixed sin-cos table is the model's own.
        if let pe = out["pos_embed"], pe.shape != posEmbed.value.shape, pe.rank == 3, pe.shape[2] == config.embedDim {
            let n = pe.shape[1] - 1, g0 = Int(Double(max(n, 0)).squareRoot())
            if n > 0 && g0 * g0 == n {
                switch config.positionEmbedding {
                case .learned: out["pos_embed"] = ViTPositionEmbedding.resample(pe, toGrid: (config.gridSize, config.gridSize))
                case .sincos: out["pos_embed"] = posEmbed.value
                }
            }
        }
        return out
    }

}

/// MoCo v3 ConvStem (Xiao et al., "Early Convolutions Help Transformers See Better"): 4 ×
/// [conv3×3 stride 2 pad 1 (no bias), BatchNorm, ReLU] with widths D/8, D/4, D/2, D, then a
/// conv1×1 (with bias) to D; 16× downsampling, tokens [B, (H/16)·(W/16), D].
/// Keys as the PyTorch `nn.Sequential`: `proj.0` conv, `proj.1` BN, `proj.3`, `proj.4`, `proj.6`,
/// `proj.7`, `proj.9`, `proj.10`, `proj.12` (ReLUs hold no state).
public final class ConvStem: Module {
    /// The stem's layers, named by their index in MoCo's `nn.Sequential`.
    public final class Layers: Module {
        public let convs: [Conv2d]       // indices 0, 3, 6, 9, 12
        public let norms: [BatchNorm]    // indices 1, 4, 7, 10
        init(convs: [Conv2d], norms: [BatchNorm]) { self.convs = convs; self.norms = norms; super.init() }
        override public func namedChildren() -> [(String, ModuleChild)] {
            var out: [(String, ModuleChild)] = []
            for i in 0..<4 { out.append((String(3 * i), .module(convs[i]))); out.append((String(3 * i + 1), .module(norms[i]))) }
            out.append(("12", .module(convs[4])))
            return out
        }
    }
    public let proj: Layers

    public init(inChannels: Int, embedDim: Int, generator: inout RandomGenerator) {
        var convs: [Conv2d] = [], norms: [BatchNorm] = []
        var cin = inChannels, cout = embedDim / 8
        for _ in 0..<4 {
            convs.append(Conv2d(cin, cout, kernelSize: 3, stride: 2, padding: 1, bias: false, generator: &generator))
            norms.append(BatchNorm(cout))
            cin = cout; cout *= 2
        }
        convs.append(Conv2d(cin, embedDim, kernelSize: 1, generator: &generator))
        proj = Layers(convs: convs, norms: norms)
        super.init()
    }

    /// [B, C, H, W] → [B, (H/16)·(W/16), D] (differentiable; BN uses batch statistics in training mode).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for i in 0..<4 { h = relu(proj.norms[i](proj.convs[i](h))) }
        h = proj.convs[4](h)
        let (b, d) = (h.shape[0], h.shape[1])
        return h.reshaped([b, d, h.shape[2] * h.shape[3]]).transposed(1, 2)
    }
}
