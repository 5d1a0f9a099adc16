import AxialNN
import AxialTensor
import Foundation

// CLIP (OpenAI / open_clip) ViT image tower and causal text tower with open_clip's parameter names.
//
//   image [B, 3, H, W] → conv1 (patch p, no bias) → [cls; patches] + positional_embedding → ln_pre
//        → resblocks (pre-LN: x += attn(ln_1 x); x += mlp(ln_2 x)) → ln_post → token 0 @ proj
//   text ids [B, L] → token_embedding + positional_embedding → resblocks with a causal mask
//        → ln_final → row at argmax(id) (the EOT token, the largest id) @ text_projection
//
// `encodeImage` / `encodeText` are open_clip's `encode_image` / `encode_text` with normalize=False.
// Residual streams are batch-first [B, L, D]. Every block loop takes a `CLIPBlockHook`, called after
// each block with its 1-based number, which may read or replace the stream (taps after blocks
// 6/12/18/24 for MVFA, 3/6/9 for CLIPSeg; adapters insert themselves there).

/// Called after block `block` (1-based) with the residual stream [B, L, D]; returns the stream
/// that continues (return `x` unchanged to only read it).
public typealias CLIPBlockHook = (_ block: Int, _ x: Tensor) -> Tensor

/// Image tower hyper-parameters (open_clip's `CLIPVisionCfg`).
public struct CLIPVisionConfig: Codable, Sendable, Equatable {
    public var imageSize: Int
    public var patchSize: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpRatio: Double = 4
    public init(imageSize: Int, patchSize: Int, width: Int, layers: Int, heads: Int, mlpRatio: Double = 4) {
        self.imageSize = imageSize; self.patchSize = patchSize; self.width = width; self.layers = layers
        self.heads = heads; self.mlpRatio = mlpRatio
    }
    /// Patches per side (`imageSize / patchSize`).
    public var gridSize: Int { imageSize / patchSize }
}

/// Text tower hyper-parameters (open_clip's `CLIPTextCfg`).
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var contextLength: Int = 77
    public var vocabSize: Int = 49408
    public var width: Int
    public var heads: Int
    public var layers: Int
    public var mlpRatio: Double = 4
    public init(contextLength: Int = 77, vocabSize: Int = 49408, width: Int, heads: Int, layers: Int, mlpRatio: Double = 4) {
        self.contextLength = contextLength; self.vocabSize = vocabSize; self.width = width; self.heads = heads
        self.layers = layers; self.mlpRatio = mlpRatio
    }
}

/// A whole CLIP model: joint embedding width, both towers, the MLP activation.
public struct CLIPConfig: Codable, Sendable, Equatable {
    public var embedDimensions: Int
    public var vision: CLIPVisionConfig
    public var text: CLIPTextConfig
    /// `.quickGelu` for OpenAI's original weights (open_clip `*-quickgelu` / `pretrained='openai'`),
    /// `.gelu` for open_clip's own trainings.
    public var activation: Activation
    public init(embedDimensions: Int, vision: CLIPVisionConfig, text: CLIPTextConfig, activation: Activation = .quickGelu) {
        self.embedDimensions = embedDimensions; self.vision = vision; self.text = text; self.activation = activation
    }

    /// OpenAI ViT-B/16 (224², 14×14 patches, embed 512).
    public static let vitB16 = CLIPConfig(
        embedDimensions: 512, vision: .init(imageSize: 224, patchSize: 16, width: 768, layers: 12, heads: 12),
        text: .init(width: 512, heads: 8, layers: 12))
    /// open_clip `ViT-B-16` (the LAION-2B / DataComp / … ViT-B/16 weights): OpenAI's shapes with
    /// exact GELU instead of QuickGELU (same keys, so only the registry name tells them apart).
    public static let vitB16GELU: CLIPConfig = { var c = vitB16; c.activation = .gelu; return c }()
    /// OpenAI ViT-L/14 (224², 16×16 patches, embed 768).
    public static let vitL14 = CLIPConfig(
        embedDimensions: 768, vision: .init(imageSize: 224, patchSize: 14, width: 1024, layers: 24, heads: 16),
        text: .init(width: 768, heads: 12, layers: 12))
    /// OpenAI ViT-L/14@336 (24×24 patches).
    public static let vitL14_336 = vitL14.withImageSize(336)
    /// OpenAI ViT-B/32 (224², 7×7 patches) — its text tower is the same as ViT-B/16's.
    public static let vitB32 = CLIPConfig(
        embedDimensions: 512, vision: .init(imageSize: 224, patchSize: 32, width: 768, layers: 12, heads: 12),
        text: .init(width: 512, heads: 8, layers: 12))

    /// The same model at another input size (the position embedding is resized when weights load:
    /// e.g. ViT-L/14@336 at 240 → 17×17 patches, as MVFA runs it).
    public func withImageSize(_ size: Int) -> CLIPConfig {
        var c = self; c.vision.imageSize = size; return c
    }
}

// MARK: Blocks

/// torch.nn.MultiheadAttention as CLIP uses it (self-attention, packed in-projection).
/// Keys: `in_proj_weight` [3E, E], `in_proj_bias` [3E], `out_proj.weight` [E, E], `out_proj.bias` [E].
public final class CLIPAttention: Module {
    public let inProjWeight: Parameter
    public let inProjBias: Parameter
    public let outProj: Linear
    public let heads: Int

    public init(width: Int, heads: Int, generator: inout RandomGenerator) {
        precondition(width % heads == 0, "CLIPAttention: width \(width) not divisible by \(heads) heads")
        self.heads = heads
        inProjWeight = Parameter(Initializer.xavierUniform([3 * width, width], generator: &generator))
        inProjBias = Parameter(Tensor(zeros: [3 * width]))
        outProj = Linear(width, width, generator: &generator)
        super.init()
    }

    /// x [B, L, E] → [B, L, E]; `mask` additive/boolean over [L, L] (broadcast to [B, H, L, L]).
    public func callAsFunction(_ x: Tensor, mask: AttentionMask? = nil) -> Tensor {
        let E = x.shape[2]
        let packed = linear(x, weight: inProjWeight.value, bias: inProjBias.value)
        // Unmasked: the memory-efficient core (no [B, H, L, L] probabilities kept for backward).
        if mask == nil { return outProj(packedSelfAttention(packed, heads: heads)) }
        let qkv = packed.split(sizes: [E, E, E], axis: 2)
        return outProj(multiHeadAttention(qkv[0], qkv[1], qkv[2], heads: heads, mask: mask))
    }
}

/// c_fc → activation → c_proj (keys `c_fc.*`, `c_proj.*`).
public final class CLIPMLP: Module, UnaryLayer {
    public let cFc: Linear
    public let cProj: Linear
    public let activation: Activation
    public init(width: Int, hidden: Int, activation: Activation, generator: inout RandomGenerator) {
        cFc = Linear(width, hidden, generator: &generator)
        cProj = Linear(hidden, width, generator: &generator)
        self.activation = activation
        super.init()
    }
    override public var propertyKeys: [String: String] { ["cFc": "c_fc", "cProj": "c_proj"] }
    public func callAsFunction(_ x: Tensor) -> Tensor { cProj(activation(cFc(x))) }
}

/// open_clip's `ResidualAttentionBlock`: x += attn(ln_1 x); x += mlp(ln_2 x).
public final class CLIPResidualBlock: Module {
    public let ln1: LayerNorm
    public let attn: CLIPAttention
    public let ln2: LayerNorm
    public let mlp: CLIPMLP

    public init(width: Int, heads: Int, mlpRatio: Double, activation: Activation, generator: inout RandomGenerator) {
        ln1 = LayerNorm(width)
        attn = CLIPAttention(width: width, heads: heads, generator: &generator)
        ln2 = LayerNorm(width)
        mlp = CLIPMLP(width: width, hidden: Int(Double(width) * mlpRatio), activation: activation, generator: &generator)
        super.init()
    }
    override public var propertyKeys: [String: String] { ["ln1": "ln_1", "ln2": "ln_2"] }

    /// Without a mask (the image towers) the attention half is one fused op
    /// (`preNormAttentionResidual`: its backward keeps qkv, the output and a log-sum-exp per row,
    /// never the [B, heads, L, L] probabilities), and a GELU MLP half too (`preNormMLPResidual`);
    /// QuickGELU MLPs and masked (text) blocks compose the differentiable ops. Same numbers up to
    /// float rounding (the fused ops' goldens against torch).
    public func callAsFunction(_ x: Tensor, mask: AttentionMask? = nil) -> Tensor {
        guard mask == nil && x.rank == 3 && x.shape[2] == ln1.dimensions else {
            let h = x + attn(ln1(x), mask: mask)
            return h + mlp(ln2(h))
        }
        let h = preNormAttentionResidual(x, normWeight: ln1.weight?.value, normBias: ln1.bias?.value, eps: ln1.eps,
                                         qkvWeight: attn.inProjWeight.value, qkvBias: attn.inProjBias.value,
                                         projWeight: attn.outProj.weight.value, projBias: attn.outProj.bias?.value, heads: attn.heads)
        if mlp.activation == .gelu {
            return preNormMLPResidual(h, normWeight: ln2.weight?.value, normBias: ln2.bias?.value, eps: ln2.eps,
                                      fc1Weight: mlp.cFc.weight.value, fc1Bias: mlp.cFc.bias?.value,
                                      fc2Weight: mlp.cProj.weight.value, fc2Bias: mlp.cProj.bias?.value)
        }
        return h + mlp(ln2(h))
    }
}

/// A stack of residual blocks (`resblocks.N.*`).
public final class CLIPTransformer: Module {
    public let resblocks: [CLIPResidualBlock]
    public init(width: Int, layers: Int, heads: Int, mlpRatio: Double, activation: Activation, generator: inout RandomGenerator) {
        resblocks = (0..<layers).map { _ in
            CLIPResidualBlock(width: width, heads: heads, mlpRatio: mlpRatio, activation: activation, generator: &generator)
        }
        super.init()
    }

    /// Pooled buffers of the tape-free path (one forward at a time, under its lock).
    let pool = ActivationPool()

    /// Runs the blocks (all, or the first `upTo`), calling `hook` after each. With grad mode off
    /// and no mask (the image towers), the blocks run tape-free on pooled buffers
    /// (`inferenceForward`: fused GEMM epilogues, packed attention); otherwise as differentiable ops.
    public func callAsFunction(_ x: Tensor, mask: AttentionMask? = nil, upTo: Int? = nil, hook: CLIPBlockHook? = nil) -> Tensor {
        let count = upTo ?? resblocks.count
        precondition(count >= 0 && count <= resblocks.count, "CLIPTransformer: upTo \(count) of \(resblocks.count) blocks")
        if !Tensor.isGradEnabled && mask == nil && x.rank == 3 && count > 0 && inferenceSupported {
            return inferenceForward(x, count: count, hook: hook)
        }
        var h = x
        for (i, block) in resblocks.prefix(count).enumerated() {
            h = block(h, mask: mask)
            if let hook { h = hook(i + 1, h) }
        }
        return h
    }

    /// The tape-free path covers open_clip's blocks as built here: GELU (erf) or QuickGELU MLPs.
    var inferenceSupported: Bool {
        resblocks.allSatisfy { [.gelu, .quickGelu].contains($0.mlp.activation) }
    }

    /// The blocks without a tape: per block LayerNorm → packed qkv GEMM (+ in_proj bias) → attention
    /// per (batch, head) → out_proj GEMM accumulated into the stream (+ bias), LayerNorm → c_fc GEMM
    /// with bias + activation fused → c_proj GEMM accumulated into the stream. The same arithmetic
    /// as the differentiable blocks (float32, other summation order). `hook` sees each block's
    /// output as a tensor and what it returns continues.
    func inferenceForward(_ x: Tensor, count: Int, hook: CLIPBlockHook?) -> Tensor {
        let b = x.shape[0], n = x.shape[1], d = x.shape[2]
        let first = resblocks[0]
        let heads = first.attn.heads, hid = first.mlp.cFc.weight.value.shape[0]
        precondition(d == first.ln1.dimensions && d % heads == 0,
                     "CLIPTransformer: stream \(x.shape) does not fit blocks of width \(first.ln1.dimensions) with \(heads) heads")
        pool.lock.lock(); defer { pool.lock.unlock() }
        let m = b * n
        let xs = pool.buffer("x", m * d), hs = pool.buffer("h", m * d)
        let qkv = pool.buffer("qkv", m * 3 * d), att = pool.buffer("attn", m * d), u = pool.buffer("u", m * hid)
        let xr = UnsafeBufferPointer(xs), hr = UnsafeBufferPointer(hs)
        x.withUnsafeBufferPointer { xs.baseAddress!.update(from: $0.baseAddress!, count: m * d) }
        for (i, blk) in resblocks.prefix(count).enumerated() {
            precondition(blk.ln1.dimensions == d && blk.attn.heads == heads && blk.mlp.cFc.weight.value.shape == [hid, d],
                         "CLIPTransformer: block \(i + 1) differs in shape from block 1")
            EncoderKernels.layerNorm(rows: m, d: d, x: xr, ldx: d, weight: blk.ln1.weight?.value, bias: blk.ln1.bias?.value,
                                     eps: blk.ln1.eps, out: hs, ldo: d)
            EncoderKernels.linear(m: m, n: 3 * d, k: d, a: hr, lda: d, weight: blk.attn.inProjWeight.value, bias: blk.attn.inProjBias.value,
                                  c: qkv, ldc: 3 * d)
            EncoderKernels.attention(batch: b, tokens: n, heads: heads, headDim: d / heads, qkv: UnsafeBufferPointer(qkv), out: att)
            EncoderKernels.linear(m: m, n: d, k: d, a: UnsafeBufferPointer(att), lda: d, weight: blk.attn.outProj.weight.value,
                                  bias: blk.attn.outProj.bias?.value, c: xs, ldc: d, accumulate: true)
            EncoderKernels.layerNorm(rows: m, d: d, x: xr, ldx: d, weight: blk.ln2.weight?.value, bias: blk.ln2.bias?.value,
                                     eps: blk.ln2.eps, out: hs, ldo: d)
            EncoderKernels.linear(m: m, n: hid, k: d, a: hr, lda: d, weight: blk.mlp.cFc.weight.value, bias: blk.mlp.cFc.bias?.value,
                                  c: u, ldc: hid, activation: blk.mlp.activation == .quickGelu ? .quickGELU : .gelu)
            EncoderKernels.linear(m: m, n: d, k: hid, a: UnsafeBufferPointer(u), lda: hid, weight: blk.mlp.cProj.weight.value,
                                  bias: blk.mlp.cProj.bias?.value, c: xs, ldc: d, accumulate: true)
            if let hook {
                let t = Tensor(shape: [b, n, d], unsafeUninitialized: { $0.baseAddress!.update(from: xs.baseAddress!, count: m * d) })
                let r = hook(i + 1, t)
                precondition(r.shape == [b, n, d], "CLIPTransformer: the hook after block \(i + 1) returned \(r.shape), not \([b, n, d])")
                r.withUnsafeBufferPointer { xs.baseAddress!.update(from: $0.baseAddress!, count: m * d) }
            }
        }
        return Tensor(shape: [b, n, d], unsafeUninitialized: { $0.baseAddress!.update(from: xs.baseAddress!, count: m * d) })
    }

    /// Frees the pooled buffers of the tape-free path.
    public func releaseBuffers() { pool.lock.lock(); pool.clear(); pool.lock.unlock() }
}

/// Hook helper: records the stream after the given blocks (1-based) into `outputs`.
public final class BlockTaps: @unchecked Sendable {
    public let blocks: Set<Int>
    public private(set) var outputs: [Int: Tensor] = [:]
    public init(_ blocks: [Int]) { self.blocks = Set(blocks) }
    /// Use as the hook: `model.visual(x, hook: taps.hook)`.
    public var hook: CLIPBlockHook {
        { [self] block, x in
            if blocks.contains(block) { outputs[block] = x }
            return x
        }
    }
}

// MARK: Image tower

/// The patch projection `conv1` (key `conv1.weight` [width, 3, p, p], no bias).
public final class CLIPPatchConv: Module {
    public let weight: Parameter
    init(width: Int, patch: Int, generator: inout RandomGenerator) {
        weight = Parameter(Initializer.kaimingUniform([width, 3, patch, patch], generator: &generator))
        super.init()
    }
}

/// open_clip's `VisionTransformer` (keys under `visual.` in a CLIP checkpoint).
public final class CLIPVisionTransformer: Module {
    public let config: CLIPVisionConfig
    public let conv1: CLIPPatchConv
    public let classEmbedding: Parameter        // [width]
    public let positionalEmbedding: Parameter   // [grid² + 1, width]
    public let lnPre: LayerNorm
    public let transformer: CLIPTransformer
    public let lnPost: LayerNorm
    public let proj: Parameter                  // [width, outputDimensions]

    public init(_ config: CLIPVisionConfig, outputDimensions: Int, activation: Activation, generator: inout RandomGenerator) {
        self.config = config
        let w = config.width, scale = 1 / Float(w).squareRoot()
        conv1 = CLIPPatchConv(width: w, patch: config.patchSize, generator: &generator)
        classEmbedding = Parameter(Tensor.normal([w], generator: &generator) * scale)
        positionalEmbedding = Parameter(Tensor.normal([config.gridSize * config.gridSize + 1, w], generator: &generator) * scale)
        lnPre = LayerNorm(w)
        transformer = CLIPTransformer(width: w, layers: config.layers, heads: config.heads, mlpRatio: config.mlpRatio,
                                      activation: activation, generator: &generator)
        lnPost = LayerNorm(w)
        proj = Parameter(Tensor.normal([w, outputDimensions], generator: &generator) * scale)
        super.init()
    }

    /// Tokens entering the first block: [B, grid² + 1, width] (after ln_pre).
    public func embed(_ images: Tensor) -> Tensor {
        let c = config
        precondition(images.rank == 4 && images.shape[1] == 3,
                     "CLIP image tower: images \(images.shape) must be [B, 3, \(c.imageSize), \(c.imageSize)]")
        precondition(images.shape[2] / c.patchSize == c.gridSize && images.shape[3] / c.patchSize == c.gridSize,
                     "CLIP image tower built for \(c.imageSize)² (\(c.gridSize)² patches of \(c.patchSize)); got images \(images.shape) — build with CLIPConfig.withImageSize")
        let B = images.shape[0], w = c.width
        let patches = patchEmbed(images, weight: conv1.weight.value, bias: nil)                 // [B, N, w]
        let cls = classEmbedding.value.reshaped([1, 1, w]).expand(to: [B, 1, w])
        let x = concat([cls, patches], axis: 1) + positionalEmbedding.value
        return lnPre(x)
    }

    /// Full forward: pooled = ln_post(x)[:, 0] @ proj [B, out]; tokens = ln_post(x)[:, 1:] [B, N, width].
    public func callAsFunction(_ images: Tensor, hook: CLIPBlockHook? = nil) -> (pooled: Tensor, tokens: Tensor) {
        let x = lnPost(transformer(embed(images), hook: hook))
        let L = x.shape[1]
        let pooled = matmul(x.select(axis: 1, index: 0), proj.value)
        return (pooled, x.narrow(axis: 1, start: 1, length: L - 1))
    }

    /// The residual stream after the given blocks (1-based), without the head.
    public func blockOutputs(_ images: Tensor, blocks: [Int]) -> [Int: Tensor] {
        let taps = BlockTaps(blocks)
        _ = transformer(embed(images), upTo: blocks.max(), hook: taps.hook)
        return taps.outputs
    }
}

// MARK: Text tower

/// open_clip's text tower (keys at the top level of a CLIP checkpoint: `token_embedding.weight`,
/// `positional_embedding`, `transformer.*`, `ln_final.*`, `text_projection`).
public final class CLIPTextTransformer: Module {
    public let config: CLIPTextConfig
    public let tokenEmbedding: Embedding
    public let positionalEmbedding: Parameter   // [context, width]
    public let transformer: CLIPTransformer
    public let lnFinal: LayerNorm
    public let textProjection: Parameter        // [width, embed]

    public init(_ config: CLIPTextConfig, outputDimensions: Int, activation: Activation, generator: inout RandomGenerator) {
        self.config = config
        let w = config.width
        tokenEmbedding = Embedding(config.vocabSize, w, generator: &generator)
        tokenEmbedding.weight.assign(tokenEmbedding.weight.value * 0.02)
        positionalEmbedding = Parameter(Tensor.normal([config.contextLength, w], generator: &generator) * 0.01)
        transformer = CLIPTransformer(width: w, layers: config.layers, heads: config.heads, mlpRatio: config.mlpRatio,
                                      activation: activation, generator: &generator)
        lnFinal = LayerNorm(w)
        textProjection = Parameter(Tensor.normal([w, outputDimensions], generator: &generator) / Float(w).squareRoot())
        super.init()
    }

    /// Additive causal mask [L, L]: 0 on and below the diagonal, −∞ above.
    public static func causalMask(_ L: Int) -> Tensor {
        var m = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in (i + 1)..<max(L, i + 1) { m[i * L + j] = -.infinity } }
        return Tensor(shape: [L, L], scalars: m)
    }

    /// Token embeddings + position embeddings [B, L, width] for ids [B, L] (L ≤ context).
    public func embed(_ ids: Tensor) -> Tensor {
        precondition(ids.rank == 2 && ids.shape[1] <= config.contextLength,
                     "CLIP text tower: ids \(ids.shape) must be [B, L ≤ \(config.contextLength)]")
        let L = ids.shape[1]
        return tokenEmbedding(ids) + positionalEmbedding.value.narrow(axis: 0, start: 0, length: L)
    }

    /// From token-level inputs `x` [B, L, width] (already including position embeddings — e.g. a
    /// learned prompt spliced into `embed(ids)`), pool at `eotPositions` and project: [B, embed].
    public func encode(embeddings x: Tensor, eotPositions: [Int], hook: CLIPBlockHook? = nil) -> Tensor {
        let B = x.shape[0], L = x.shape[1]
        precondition(eotPositions.count == B && eotPositions.allSatisfy { $0 >= 0 && $0 < L },
                     "CLIP text tower: EOT positions \(eotPositions) for \(B) sequences of length \(L)")
        let h = lnFinal(transformer(x, mask: .additive(Self.causalMask(L)), hook: hook))
        let rows = (0..<B).map { b in h.select(axis: 0, index: b).select(axis: 0, index: eotPositions[b]) }
        return matmul(stack(rows, axis: 0), textProjection.value)
    }

    /// open_clip `encode_text` (normalize=False): ids [B, L] (integer-valued) → [B, embed].
    /// With `trimPadding`, positions after the last EOT of the batch are dropped first: under the
    /// causal mask they cannot change the pooled rows, so the result is the same, sooner.
    public func callAsFunction(_ ids: Tensor, trimPadding: Bool = true, hook: CLIPBlockHook? = nil) -> Tensor {
        let eot = Self.eotPositions(ids)
        var x = ids
        if trimPadding, hook == nil, let last = eot.max(), last + 1 < ids.shape[1] {
            x = ids.narrow(axis: 1, start: 0, length: last + 1)
        }
        return encode(embeddings: embed(x), eotPositions: eot, hook: hook)
    }

    /// argmax of each row (the first maximal id: the EOT token, the largest id in CLIP's vocabulary).
    public static func eotPositions(_ ids: Tensor) -> [Int] {
        let B = ids.shape[0], L = ids.shape[1], s = ids.scalars
        return (0..<B).map { b in
            var best = 0
            for j in 1..<max(L, 1) where s[b * L + j] > s[b * L + best] { best = j }
            return best
        }
    }

    /// CRIS's `encode_text`: every position after ln_final (not projected) [B, L, width] and the EOT
    /// row projected, the state [B, embed]. No trimming (the caller may drop trailing padding: the
    /// mask is causal).
    public func encodeWords(_ ids: Tensor) -> (words: Tensor, state: Tensor) {
        let eot = Self.eotPositions(ids)
        let h = lnFinal(transformer(embed(ids), mask: .additive(Self.causalMask(ids.shape[1]))))
        let rows = eot.enumerated().map { b, p in h.select(axis: 0, index: b).select(axis: 0, index: p) }
        return (h, matmul(stack(rows, axis: 0), textProjection.value))
    }

    /// The residual stream after the given blocks (1-based) for ids [B, L] (full context, no trim).
    public func blockOutputs(_ ids: Tensor, blocks: [Int]) -> [Int: Tensor] {
        let taps = BlockTaps(blocks)
        let x = embed(ids)
        _ = transformer(x, mask: .additive(Self.causalMask(ids.shape[1])), upTo: blocks.max(), hook: taps.hook)
        return taps.outputs
    }
}

// MARK: Model

/// A CLIP model with open_clip's state-dict layout: `visual.*`, the text tower at the top level,
/// `logit_scale`.
public final class CLIPModel: Module {
    public let config: CLIPConfig
    public let visual: CLIPVisionTransformer
    public let text: CLIPTextTransformer
    public let logitScale: Parameter            // [] (log of 1/temperature)

    public init(_ config: CLIPConfig, generator: inout RandomGenerator) {
        self.config = config
        visual = CLIPVisionTransformer(config.vision, outputDimensions: config.embedDimensions, activation: config.activation,
                                       generator: &generator)
        text = CLIPTextTransformer(config.text, outputDimensions: config.embedDimensions, activation: config.activation,
                                   generator: &generator)
        logitScale = Parameter(Tensor(Float(Foundation.log(1 / 0.07))))
        super.init()
    }

    public convenience init(_ config: CLIPConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    /// The text tower's keys sit at the top level (open_clip's CLIP class).
    override public var propertyKeys: [String: String] { ["text": ""] }

    /// open_clip `encode_image(x)` before L2 normalisation: [B, 3, H, W] → [B, embed].
    public func encodeImage(_ images: Tensor, hook: CLIPBlockHook? = nil) -> Tensor { visual(images, hook: hook).pooled }
    /// open_clip `encode_text(ids)` before L2 normalisation: [B, L] → [B, embed].
    public func encodeText(_ ids: Tensor, hook: CLIPBlockHook? = nil) -> Tensor { text(ids, hook: hook) }

    // MARK: Weights

    /// Builds the model and loads an open_clip / OpenAI state dict (`.safetensors` under open_clip's
    /// names; OpenAI `.pt` files go through Tools/convert_weights.py first). The checkpoint's
    /// position embedding is resized to `config.vision.imageSize` when its grid differs.
    public static func load(_ config: CLIPConfig, weights url: URL) throws -> CLIPModel {
        let model = CLIPModel(config)
        try model.load(state: EncoderWeights.read(url), file: url.path)
        return model
    }

    /// Loads a full CLIP state dict (see `remap`); throws `EncoderError.weightMismatch` listing keys.
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        try EncoderWeights.load(self, Self.remap(state, vision: config.vision), file: file, model: "CLIP")
    }

    /// The one place names are adapted: drops OpenAI's non-tensor leftovers (`input_resolution`,
    /// `context_length`, `vocab_size`) and resizes `visual.positional_embedding` to the grid of
    /// `vision` (open_clip `resize_pos_embed`: bicubic, antialiased).
    public static func remap(_ state: [String: Tensor], vision: CLIPVisionConfig, prefix: String = "visual.") -> [String: Tensor] {
        var s = state
        for k in ["input_resolution", "context_length", "vocab_size"] { s[k] = nil }
        let key = prefix + "positional_embedding"
        if let pe = s[key], pe.rank == 2, pe.shape[0] != vision.gridSize * vision.gridSize + 1 {
            s[key] = CLIPPositionEmbedding.resize(pe, toGrid: (vision.gridSize, vision.gridSize))
        }
        return s
    }
}

extension CLIPVisionTransformer {
    /// Builds the image tower alone and loads the `visual.*` keys of a CLIP checkpoint (other keys
    /// are ignored; the position embedding is resized to `config.vision.imageSize` if needed).
    public static func load(_ config: CLIPConfig, weights url: URL) throws -> CLIPVisionTransformer {
        var g = DefaultGenerator.splitOff()
        let tower = CLIPVisionTransformer(config.vision, outputDimensions: config.embedDimensions, activation: config.activation,
                                          generator: &g)
        let all = try EncoderWeights.read(url)
        let sub = EncoderWeights.subtree(CLIPModel.remap(all, vision: config.vision), prefix: "visual.")
        if sub.isEmpty { throw EncoderError.noKeys(file: url.path, prefix: "visual.", sample: all.keys.sorted()) }
        try EncoderWeights.load(tower, sub, file: url.path, model: "CLIP image tower")
        return tower
    }
}

// MARK: Position-embedding interpolation

/// open_clip's `resize_pos_embed`: the class-token row is kept, the g₀×g₀ grid rows are resampled to
/// the new grid with `F.interpolate(mode='bicubic', antialias=True, align_corners=False)`.
public enum CLIPPositionEmbedding {
    /// pe [1 + g₀², D] → [1 + h·w, D].
    public static func resize(_ pe: Tensor, toGrid grid: (Int, Int)) -> Tensor {
        precondition(pe.rank == 2, "position embedding \(pe.shape) must be [1 + g², D]")
        let n = pe.shape[0] - 1, D = pe.shape[1]
        let g0 = Int(Double(n).squareRoot())
        precondition(g0 * g0 == n, "position embedding \(pe.shape): \(n) grid rows is not a square")
        let (gh, gw) = grid
        if gh == g0 && gw == g0 { return pe }
        let src = pe.scalars
        let wy = antialiasedCubicWeights(inputSize: g0, outputSize: gh)
        let wx = antialiasedCubicWeights(inputSize: g0, outputSize: gw)
        // Width pass: [g0, g0, D] → [g0, gw, D], then height pass → [gh, gw, D].
        var tmp = [Double](repeating: 0, count: g0 * gw * D)
        for y in 0..<g0 {
            for (ox, (start, ws)) in wx.enumerated() {
                for (j, w) in ws.enumerated() {
                    let row = 1 + y * g0 + start + j
                    for d in 0..<D { tmp[(y * gw + ox) * D + d] += w * Double(src[row * D + d]) }
                }
            }
        }
        var out = [Float](repeating: 0, count: (1 + gh * gw) * D)
        for d in 0..<D { out[d] = src[d] }
        for (oy, (start, ws)) in wy.enumerated() {
            for ox in 0..<gw {
                for d in 0..<D {
                    var acc = 0.0
                    for (j, w) in ws.enumerated() { acc += w * tmp[((start + j) * gw + ox) * D + d] }
                    out[(1 + oy * gw + ox) * D + d] = Float(acc)
                }
            }
        }
        return Tensor(shape: [1 + gh * gw, D], scalars: out)
    }

    /// PyTorch's antialiased bicubic weights (Keys cubic a = −0.5, support 2·max(scale, 1),
    /// normalised to sum 1, clipped at the borders) for each output index: (first input index, weights).
    static func antialiasedCubicWeights(inputSize: Int, outputSize: Int) -> [(Int, [Double])] {
        let scale = Double(inputSize) / Double(outputSize)
        let support = scale >= 1 ? 2 * scale : 2
        let invScale = scale >= 1 ? 1 / scale : 1
        func cubic(_ t: Double) -> Double {
            let a = -0.5, x = Swift.abs(t)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
        return (0..<outputSize).map { i in
            let center = scale * (Double(i) + 0.5)
            let lo = Swift.max(Int(center - support + 0.5), 0)
            let hi = Swift.min(Int(center + support + 0.5), inputSize)
            var ws = (lo..<hi).map { cubic((Double($0) - center + 0.5) * invScale) }
            let total = ws.reduce(0, +)
            if total != 0 { ws = ws.map { $0 / total } }
            return (lo, ws)
        }
    }
}
