import AxialNN
import AxialTensor
import Foundation

// CLIPSeg (Lüddecke & Ecker, CVPR 2022) as Hugging Face transformers' `CLIPSegForImageSegmentation`
// (modeling_clipseg.py, transformers 5.25), under its parameter names (`clip.vision_model.*`,
// `clip.text_model.*`, `clip.visual_projection.weight`, `clip.text_projection.weight`,
// `clip.logit_scale`, `decoder.*`), so a `CIDAS/clipseg-rd64-refined` safetensors file loads as is.
//
//   pixels [B, 3, S, S] → patch conv (no bias) → [cls; patches] + position embedding (bicubic-
//     interpolated from the 14×14 training grid when S/p differs, align_corners=False, no antialias)
//     → pre_layrnorm → pre-LN encoder layers (quick_gelu MLP).
//     hidden_states[0] = the stream entering layer 0, hidden_states[i+1] = the output of layer i;
//     the decoder takes hidden_states[i + 1] for i in `extractLayers` ([3, 6, 9]: the outputs of
//     the 4th, 7th and 10th layers), deepest first.
//   condition: text ids → causal text encoder → final_layer_norm → row at the EOT → text_projection
//     (`get_text_features`), or a prompt image → vision encoder → post_layernorm(cls) →
//     visual_projection (`get_image_features`), or a given [B, projection] embedding.
//   decoder: out = reduce₀(act₀); FiLM at step `conditionalLayer` (out·film_mul(c) + film_add(c));
//     post-LN layer; out = reduceᵢ(actᵢ) + out; layer … → drop cls → [B, reduce, g, g] →
//     refined upsampler Conv3×3 → ReLU → ConvT(k=s=p/4) → ReLU → ConvT(k=s=p/4) (or one ConvT(k=s=p))
//     → logits [B, S, S].
//
// Unlike transformers, nothing runs under no_grad: with the encoders unfrozen, gradients reach them
// (medvlsm's "full fine-tuning" silently trains only the decoder because of the no_grad). When every
// encoder parameter is frozen and nothing inside the encoders trains, the encoders run without a tape.

/// One tower's transformer shape (transformers `CLIPSegTextConfig` / `CLIPSegVisionConfig`).
public struct CLIPSegTowerConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var layerNormEps: Float = 1e-5
    public init(hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, layerNormEps: Float = 1e-5) {
        self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize; self.layers = layers; self.heads = heads
        self.layerNormEps = layerNormEps
    }
}

/// transformers `CLIPSegConfig` (the fields the segmentation model uses).
public struct CLIPSegConfig: Codable, Sendable, Equatable {
    public var text: CLIPSegTowerConfig
    public var vocabSize: Int
    public var maxPositions: Int
    /// transformers' pooling rule: 2 (the id in old configs) → argmax of the ids (the EOT is the
    /// largest id), any other value → the first position holding that id.
    public var eosTokenId: Int
    public var vision: CLIPSegTowerConfig
    /// The image size the position embedding was trained at (224 for CLIPSeg).
    public var imageSize: Int
    public var patchSize: Int
    /// Encoder MLP activation (`quick_gelu` for CLIPSeg).
    public var activation: Activation
    public var projectionDim: Int
    public var extractLayers: [Int]
    public var reduceDim: Int
    public var decoderHeads: Int
    public var decoderIntermediateSize: Int
    public var conditionalLayer: Int
    /// "refined": Conv3×3 + two transposed convolutions instead of one.
    public var complexTransposedConvolution: Bool
    /// The input size the model is run at (352 for rd64-refined; a multiple of `patchSize`).
    public var inputSize: Int

    public init(text: CLIPSegTowerConfig, vocabSize: Int, maxPositions: Int, eosTokenId: Int, vision: CLIPSegTowerConfig,
                imageSize: Int, patchSize: Int, activation: Activation = .quickGelu, projectionDim: Int, extractLayers: [Int],
                reduceDim: Int, decoderHeads: Int, decoderIntermediateSize: Int, conditionalLayer: Int = 0,
                complexTransposedConvolution: Bool, inputSize: Int) {
        self.text = text; self.vocabSize = vocabSize; self.maxPositions = maxPositions; self.eosTokenId = eosTokenId
        self.vision = vision; self.imageSize = imageSize; self.patchSize = patchSize; self.activation = activation
        self.projectionDim = projectionDim; self.extractLayers = extractLayers; self.reduceDim = reduceDim
        self.decoderHeads = decoderHeads; self.decoderIntermediateSize = decoderIntermediateSize
        self.conditionalLayer = conditionalLayer; self.complexTransposedConvolution = complexTransposedConvolution
        self.inputSize = inputSize
    }

    /// `CIDAS/clipseg-rd64-refined`: CLIP ViT-B/16 (trained at 224, run at 352 → 22² patches),
    /// text 512 wide, projection 512, taps [3, 6, 9] → 64, 4 decoder heads, FFN 2048, refined upsampler.
    public static let rd64Refined = CLIPSegConfig(
        text: .init(hiddenSize: 512, intermediateSize: 2048, layers: 12, heads: 8), vocabSize: 49408, maxPositions: 77,
        eosTokenId: 2,
        vision: .init(hiddenSize: 768, intermediateSize: 3072, layers: 12, heads: 12), imageSize: 224, patchSize: 16,
        projectionDim: 512, extractLayers: [3, 6, 9], reduceDim: 64, decoderHeads: 4, decoderIntermediateSize: 2048,
        complexTransposedConvolution: true, inputSize: 352)

    /// A tiny configuration for tests and the learning checks (also the fixture's configuration:
    /// Tools/goldens/make_clipseg_goldens.py builds transformers' model with the same numbers).
    /// Text width = projection so the shallow text adapters can add into the condition.
    public static let clipsegTest = CLIPSegConfig(
        text: .init(hiddenSize: 32, intermediateSize: 48, layers: 4, heads: 4), vocabSize: 99, maxPositions: 16,
        eosTokenId: 98,
        vision: .init(hiddenSize: 24, intermediateSize: 40, layers: 5, heads: 4), imageSize: 64, patchSize: 16,
        projectionDim: 32, extractLayers: [1, 2, 3], reduceDim: 16, decoderHeads: 2, decoderIntermediateSize: 20,
        complexTransposedConvolution: true, inputSize: 96)

    /// Patches per side at `inputSize`.
    public var gridSize: Int { inputSize / patchSize }
    /// Encoder layers the decoder needs (the last tap + 1).
    public var visionLayersUsed: Int { (extractLayers.max() ?? -1) + 1 }
}

// MARK: Layers (transformers names)

/// transformers `CLIPSegAttention`: separate q/k/v/out projections (`k_proj v_proj q_proj out_proj`),
/// scale head_dim^−½.
public final class CLIPSegAttention: Module {
    public let kProj: Linear, vProj: Linear, qProj: Linear, outProj: Linear
    public let heads: Int
    public init(width: Int, heads: Int, generator: inout RandomGenerator) {
        precondition(width % heads == 0, "CLIPSegAttention: width \(width) not divisible by \(heads) heads")
        self.heads = heads
        kProj = Linear(width, width, generator: &generator)
        vProj = Linear(width, width, generator: &generator)
        qProj = Linear(width, width, generator: &generator)
        outProj = Linear(width, width, generator: &generator)
        super.init()
    }
    /// x [B, L, E] → [B, L, E]; `mask` over the scores [B, H, L, L] (broadcast). Unmasked (the
    /// vision tower, the decoder): one GEMM with the three projections stacked (a differentiable
    /// concat, so fine-tuning still reaches q/k/v) and the memory-efficient attention core, which
    /// keeps no [B, H, L, L] probabilities for backward.
    public func callAsFunction(_ x: Tensor, mask: AttentionMask? = nil) -> Tensor {
        guard mask == nil, x.rank == 3 else {
            return outProj(multiHeadAttention(qProj(x), kProj(x), vProj(x), heads: heads, mask: mask))
        }
        let w = concat([qProj.weight.value, kProj.weight.value, vProj.weight.value], axis: 0)
        var b: Tensor? = nil
        if let q = qProj.bias, let k = kProj.bias, let v = vProj.bias { b = concat([q.value, k.value, v.value], axis: 0) }
        else if qProj.bias != nil || kProj.bias != nil || vProj.bias != nil {
            return outProj(multiHeadAttention(qProj(x), kProj(x), vProj(x), heads: heads, mask: mask))
        }
        return outProj(packedSelfAttention(linear(x, weight: w, bias: b), heads: heads))
    }
}

/// transformers `CLIPSegMLP`: fc1 → activation → fc2.
public final class CLIPSegMLP: Module, UnaryLayer {
    public let fc1: Linear, fc2: Linear
    public let activation: Activation
    public init(width: Int, hidden: Int, activation: Activation, generator: inout RandomGenerator) {
        fc1 = Linear(width, hidden, generator: &generator)
        fc2 = Linear(hidden, width, generator: &generator)
        self.activation = activation
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}

/// Adapters spliced into one encoder layer before its residual adds (VLSM dense adapters).
public struct CLIPSegLayerAdapters {
    public var attention: VLSMAdapter?
    public var mlp: VLSMAdapter?
    public init(attention: VLSMAdapter?, mlp: VLSMAdapter?) { self.attention = attention; self.mlp = mlp }
}

/// transformers `CLIPSegEncoderLayer` (pre-LN) or, with `postNorm`, `CLIPSegDecoderLayer`
/// (x = ln1(x + attn(x)); x = ln2(x + mlp(x))). Keys `self_attn.* layer_norm1.* mlp.* layer_norm2.*`.
public final class CLIPSegLayer: Module {
    public let selfAttn: CLIPSegAttention
    public let layerNorm1: LayerNorm
    public let mlp: CLIPSegMLP
    public let layerNorm2: LayerNorm
    public let postNorm: Bool

    public init(width: Int, heads: Int, intermediate: Int, activation: Activation, eps: Float, postNorm: Bool,
                generator: inout RandomGenerator) {
        selfAttn = CLIPSegAttention(width: width, heads: heads, generator: &generator)
        layerNorm1 = LayerNorm(width, eps: eps)
        mlp = CLIPSegMLP(width: width, hidden: intermediate, activation: activation, generator: &generator)
        layerNorm2 = LayerNorm(width, eps: eps)
        self.postNorm = postNorm
        super.init()
    }
    override public var propertyKeys: [String: String] { ["layerNorm1": "layer_norm1", "layerNorm2": "layer_norm2"] }

    public func callAsFunction(_ x: Tensor, mask: AttentionMask? = nil, adapters: CLIPSegLayerAdapters? = nil) -> Tensor {
        if postNorm {
            let h = layerNorm1(x + selfAttn(x, mask: mask))
            return layerNorm2(h + mlp(h))
        }
        var a = selfAttn(layerNorm1(x), mask: mask)
        if let ad = adapters?.attention { a = ad(a) }
        let h = x + a
        var m = mlp(layerNorm2(h))
        if let ad = adapters?.mlp { m = ad(m) }
        return h + m
    }
}

/// transformers `CLIPSegEncoder` (`layers.N.*`).
public final class CLIPSegEncoder: Module {
    public let layers: [CLIPSegLayer]
    public init(_ c: CLIPSegTowerConfig, activation: Activation, generator: inout RandomGenerator) {
        layers = (0..<c.layers).map { _ in
            CLIPSegLayer(width: c.hiddenSize, heads: c.heads, intermediate: c.intermediateSize, activation: activation,
                         eps: c.layerNormEps, postNorm: false, generator: &generator)
        }
        super.init()
    }

    /// transformers' `hidden_states` for the first `upTo` layers: [x, out₀, …, out_{upTo−1}];
    /// `adapters[i]` (if present) is spliced into layer i.
    public func hiddenStates(_ x: Tensor, mask: AttentionMask? = nil, upTo: Int? = nil,
                             adapters: [CLIPSegLayerAdapters] = []) -> [Tensor] {
        tappedStates(x, taps: Array(0...Swift.min(upTo ?? layers.count, layers.count)), mask: mask, adapters: adapters)
    }

    /// hidden_states[t] for t in `taps` (in that order), through layer max(taps) − 1 only; the
    /// other states are not kept, so without a tape each is freed when the next layer is done
    /// (batch 8 at 352: 12 MB per state, 8 of the 11 are not needed by the decoder).
    public func tappedStates(_ x: Tensor, taps: [Int], mask: AttentionMask? = nil,
                             adapters: [CLIPSegLayerAdapters] = []) -> [Tensor] {
        precondition(taps.allSatisfy { $0 >= 0 && $0 <= layers.count }, "CLIPSeg encoder: taps \(taps) outside 0…\(layers.count)")
        var kept: [Int: Tensor] = [:]
        if taps.contains(0) { kept[0] = x }
        var h = x
        for (i, layer) in layers.prefix(taps.max() ?? 0).enumerated() {
            h = layer(h, mask: mask, adapters: i < adapters.count ? adapters[i] : nil)
            if taps.contains(i + 1) { kept[i + 1] = h }
        }
        return taps.map { kept[$0]! }
    }
}

// MARK: Vision tower

/// transformers `CLIPSegVisionEmbeddings`: `class_embedding` [D], `patch_embedding.weight`
/// [D, 3, p, p] (no bias), `position_embedding.weight` [(image/p)² + 1, D].
public final class CLIPSegVisionEmbeddings: Module {
    public let classEmbedding: Parameter
    public let patchEmbedding: CLIPPatchConv
    public let positionEmbedding: Embedding
    public let patchSize: Int

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        let D = config.vision.hiddenSize, g = config.imageSize / config.patchSize
        patchSize = config.patchSize
        classEmbedding = Parameter(Tensor.normal([D], generator: &generator) * (1 / Float(D).squareRoot()))
        patchEmbedding = CLIPPatchConv(width: D, patch: config.patchSize, generator: &generator)
        positionEmbedding = Embedding(g * g + 1, D, generator: &generator)
        positionEmbedding.weight.assign(positionEmbedding.weight.value * 0.02)
        super.init()
    }

    /// The position embedding for an H×W input [1 + (H/p)(W/p), D]: the stored one when the patch
    /// count matches and H = W, else the grid rows resampled bicubically (align_corners=False) as
    /// transformers' `interpolate_pos_encoding`.
    public func positions(height: Int, width: Int) -> Tensor {
        let pe = positionEmbedding.weight.value
        let n0 = pe.shape[0] - 1, D = pe.shape[1]
        let gh = height / patchSize, gw = width / patchSize
        if gh * gw == n0 && height == width { return pe }
        let g0 = Int(Double(n0).squareRoot())
        let grid = pe.narrow(axis: 0, start: 1, length: n0).reshaped([1, g0, g0, D]).permuted([0, 3, 1, 2])
        let resized = interpolate(grid, size: Size2D(gh, gw), mode: .bicubic, alignCorners: false)
        let rows = resized.permuted([0, 2, 3, 1]).reshaped([gh * gw, D])
        return concat([pe.narrow(axis: 0, start: 0, length: 1), rows], axis: 0)
    }

    /// pixels [B, 3, H, W] → [B, 1 + (H/p)(W/p), D].
    public func callAsFunction(_ pixels: Tensor) -> Tensor {
        let B = pixels.shape[0], D = classEmbedding.shape[0]
        let patches = patchEmbed(pixels, weight: patchEmbedding.weight.value, bias: nil)
        let cls = classEmbedding.value.reshaped([1, 1, D]).expand(to: [B, 1, D])
        return concat([cls, patches], axis: 1) + positions(height: pixels.shape[2], width: pixels.shape[3])
    }
}

/// transformers `CLIPSegVisionModel` (`embeddings.* pre_layrnorm.* encoder.* post_layernorm.*`).
public final class CLIPSegVisionModel: Module {
    public let embeddings: CLIPSegVisionEmbeddings
    public let preLayrnorm: LayerNorm
    public let encoder: CLIPSegEncoder
    public let postLayernorm: LayerNorm

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        embeddings = CLIPSegVisionEmbeddings(config, generator: &generator)
        preLayrnorm = LayerNorm(config.vision.hiddenSize, eps: config.vision.layerNormEps)
        encoder = CLIPSegEncoder(config.vision, activation: config.activation, generator: &generator)
        postLayernorm = LayerNorm(config.vision.hiddenSize, eps: config.vision.layerNormEps)
        super.init()
    }

    /// hidden_states for the first `upTo` layers (see `CLIPSegEncoder.hiddenStates`).
    public func hiddenStates(_ pixels: Tensor, upTo: Int? = nil, adapters: [CLIPSegLayerAdapters] = []) -> [Tensor] {
        encoder.hiddenStates(preLayrnorm(embeddings(pixels)), upTo: upTo, adapters: adapters)
    }

    /// pooler_output: post_layernorm of the class token after all layers [B, D].
    public func pooled(_ pixels: Tensor) -> Tensor {
        postLayernorm(encoder.tappedStates(preLayrnorm(embeddings(pixels)), taps: [encoder.layers.count])[0].select(axis: 1, index: 0))
    }
}

// MARK: Text tower

/// transformers `CLIPSegTextEmbeddings` (`token_embedding.weight`, `position_embedding.weight`).
public final class CLIPSegTextEmbeddings: Module {
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        tokenEmbedding = Embedding(config.vocabSize, config.text.hiddenSize, generator: &generator)
        tokenEmbedding.weight.assign(tokenEmbedding.weight.value * 0.02)
        positionEmbedding = Embedding(config.maxPositions, config.text.hiddenSize, generator: &generator)
        positionEmbedding.weight.assign(positionEmbedding.weight.value * 0.02)
        super.init()
    }
    public func callAsFunction(_ ids: Tensor) -> Tensor {
        let L = ids.shape[1]
        return tokenEmbedding(ids) + positionEmbedding.weight.value.narrow(axis: 0, start: 0, length: L)
    }
}

/// transformers `CLIPSegTextModel` (`embeddings.* encoder.* final_layer_norm.*`).
public final class CLIPSegTextModel: Module {
    public let embeddings: CLIPSegTextEmbeddings
    public let encoder: CLIPSegEncoder
    public let finalLayerNorm: LayerNorm
    public let eosTokenId: Int
    public let maxPositions: Int

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        embeddings = CLIPSegTextEmbeddings(config, generator: &generator)
        encoder = CLIPSegEncoder(config.text, activation: config.activation, generator: &generator)
        finalLayerNorm = LayerNorm(config.text.hiddenSize, eps: config.text.layerNormEps)
        eosTokenId = config.eosTokenId
        maxPositions = config.maxPositions
        super.init()
    }

    /// The pooled position per row: argmax of the ids when `eosTokenId` is 2, else the first position
    /// holding `eosTokenId` (0 when absent, as torch's argmax of an all-zero row).
    public func poolPositions(_ ids: Tensor) -> [Int] {
        let B = ids.shape[0], L = ids.shape[1], s = ids.scalars
        return (0..<B).map { b in
            let row = s[(b * L)..<(b * L + L)]
            if eosTokenId == 2 {
                var best = 0
                for j in 1..<max(L, 1) where row[b * L + j] > row[b * L + best] { best = j }
                return best
            }
            return row.firstIndex(of: Float(eosTokenId)).map { $0 - b * L } ?? 0
        }
    }

    /// Additive mask [B or 1, 1, L, L]: causal, plus padding (`attentionMask` [B, L], 0 = padding)
    /// when given; masked entries hold −3.4e38 (torch.finfo(float32).min, as transformers).
    public static func mask(length L: Int, attentionMask: Tensor?) -> Tensor {
        let minValue = -Float.greatestFiniteMagnitude
        guard let am = attentionMask else {
            var m = [Float](repeating: 0, count: L * L)
            for i in 0..<L { for j in (i + 1)..<max(L, i + 1) { m[i * L + j] = minValue } }
            return Tensor(shape: [1, 1, L, L], scalars: m)
        }
        let B = am.shape[0], a = am.scalars
        var m = [Float](repeating: 0, count: B * L * L)
        for b in 0..<B { for i in 0..<L { for j in 0..<L where j > i || a[b * L + j] == 0 { m[(b * L + i) * L + j] = minValue } } }
        return Tensor(shape: [B, 1, L, L], scalars: m)
    }

    /// ids (and the attention mask) cut after the last position any pooling reads — the pool position
    /// (`poolPositions`) and the argmax id (the VLSM adapters' EOT row) of every row. Under the causal mask
    /// later positions cannot change those rows, so pooled results are exactly those of the full length
    /// (transformers runs all 77 positions of a padded prompt).
    public func trimmedForPooling(_ ids: Tensor, attentionMask: Tensor?) -> (ids: Tensor, attentionMask: Tensor?) {
        guard ids.rank == 2, ids.shape[1] > 1 else { return (ids, attentionMask) }
        let last = max(poolPositions(ids).max() ?? 0, CLIPTextTransformer.eotPositions(ids).max() ?? 0)
        guard last + 1 < ids.shape[1] else { return (ids, attentionMask) }
        let cut = { (t: Tensor) in t.narrow(axis: 1, start: 0, length: last + 1) }
        return (cut(ids), attentionMask.map { $0.shape == ids.shape ? cut($0) : $0 })
    }

    /// (hidden_states [x, out₀, …], last_hidden_state after final_layer_norm, pool positions).
    public func forward(_ ids: Tensor, attentionMask: Tensor? = nil, adapters: [CLIPSegLayerAdapters] = [])
        -> (hiddenStates: [Tensor], lastHiddenState: Tensor, poolPositions: [Int]) {
        precondition(ids.rank == 2 && ids.shape[1] <= maxPositions,
                     "CLIPSeg text tower: ids \(ids.shape) must be [B, L ≤ \(maxPositions)]")
        if let am = attentionMask {
            precondition(am.shape == ids.shape, "CLIPSeg text tower: attention mask \(am.shape) != ids \(ids.shape)")
        }
        let hs = encoder.hiddenStates(embeddings(ids), mask: .additive(Self.mask(length: ids.shape[1], attentionMask: attentionMask)),
                                      adapters: adapters)
        return (hs, finalLayerNorm(hs.last!), poolPositions(ids))
    }
}

/// Rows `positions[b]` of x [B, L, D] → [B, D].
func gatherRows(_ x: Tensor, _ positions: [Int]) -> Tensor {
    stack(positions.enumerated().map { b, p in x.select(axis: 0, index: b).select(axis: 0, index: p) }, axis: 0)
}

/// transformers `CLIPSegModel` (both towers, the two projections without bias, `logit_scale`).
public final class CLIPSegCLIP: Module {
    public let textModel: CLIPSegTextModel
    public let visionModel: CLIPSegVisionModel
    public let visualProjection: Linear
    public let textProjection: Linear
    public let logitScale: Parameter

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        textModel = CLIPSegTextModel(config, generator: &generator)
        visionModel = CLIPSegVisionModel(config, generator: &generator)
        visualProjection = Linear(config.vision.hiddenSize, config.projectionDim, bias: false, generator: &generator)
        textProjection = Linear(config.text.hiddenSize, config.projectionDim, bias: false, generator: &generator)
        logitScale = Parameter(Tensor(Float(2.6592)))
        super.init()
    }

    /// `get_text_features(...).pooler_output`: [B, projection].
    /// The prompt is cut after its pooled position first (`trimmedForPooling`: the same result, sooner).
    public func textFeatures(_ ids: Tensor, attentionMask: Tensor? = nil) -> Tensor {
        let (ids, attentionMask) = textModel.trimmedForPooling(ids, attentionMask: attentionMask)
        let t = textModel.forward(ids, attentionMask: attentionMask)
        return textProjection(gatherRows(t.lastHiddenState, t.poolPositions))
    }

    /// `get_image_features(...).pooler_output`: [B, projection].
    public func imageFeatures(_ pixels: Tensor) -> Tensor { visualProjection(visionModel.pooled(pixels)) }
}

// MARK: Decoder

/// transformers `CLIPSegDecoder`: `film_mul film_add reduces.N layers.N transposed_convolution.*`.
public final class CLIPSegDecoder: Module {
    public let filmMul: Linear, filmAdd: Linear
    public let transposedConvolution: any UnaryLayer
    public let reduces: [Linear]
    public let layers: [CLIPSegLayer]
    public let conditionalLayer: Int

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        let r = config.reduceDim
        filmMul = Linear(config.projectionDim, r, generator: &generator)
        filmAdd = Linear(config.projectionDim, r, generator: &generator)
        if config.complexTransposedConvolution {
            let k = config.patchSize / 4
            precondition(k >= 1 && config.patchSize % 4 == 0, "CLIPSeg refined upsampler needs a patch size divisible by 4")
            transposedConvolution = Sequential([
                Conv2d(r, r, kernelSize: 3, padding: 1, generator: &generator), ActivationLayer(.relu),
                ConvTranspose2d(r, r / 2, kernelSize: Size2D(k, k), stride: Size2D(k, k), generator: &generator), ActivationLayer(.relu),
                ConvTranspose2d(r / 2, 1, kernelSize: Size2D(k, k), stride: Size2D(k, k), generator: &generator),
            ])
        } else {
            transposedConvolution = ConvTranspose2d(r, 1, kernelSize: Size2D(config.patchSize, config.patchSize), stride: Size2D(config.patchSize, config.patchSize),
                                                    generator: &generator)
        }
        reduces = config.extractLayers.map { _ in Linear(config.vision.hiddenSize, r, generator: &generator) }
        layers = config.extractLayers.map { _ in
            CLIPSegLayer(width: r, heads: config.decoderHeads, intermediate: config.decoderIntermediateSize, activation: .relu,
                         eps: config.vision.layerNormEps, postNorm: true, generator: &generator)
        }
        conditionalLayer = config.conditionalLayer
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        var out: [(String, ModuleChild)] = [("film_mul", .module(filmMul)), ("film_add", .module(filmAdd)),
                                            ("transposed_convolution", .module(transposedConvolution))]
        for (i, m) in reduces.enumerated() { out.append(("reduces.\(i)", .module(m))) }
        for (i, m) in layers.enumerated() { out.append(("layers.\(i)", .module(m))) }
        return out
    }

    /// The decoder's stream after each decoder layer (`[B, 1 + g², reduce]`, deepest tap first) and
    /// the logits [B, H, W]. `activations` in extract order (shallow first), as transformers.
    public func forward(_ activations: [Tensor], condition: Tensor) -> (layerOutputs: [Tensor], logits: Tensor) {
        precondition(activations.count == layers.count, "CLIPSeg decoder: \(activations.count) activations for \(layers.count) layers")
        var output: Tensor? = nil
        var outs: [Tensor] = []
        for (i, act) in activations.reversed().enumerated() {
            var o = output.map { reduces[i](act) + $0 } ?? reduces[i](act)
            if i == conditionalLayer {
                o = filmMul(condition).unsqueezed(1) * o + filmAdd(condition).unsqueezed(1)
            }
            o = layers[i](o)
            outs.append(o)
            output = o
        }
        let h = output!
        let B = h.shape[0], L = h.shape[1], r = h.shape[2]
        let g = Int(Double(L - 1).squareRoot())
        precondition(g * g == L - 1, "CLIPSeg decoder: \(L - 1) patch tokens is not a square grid")
        let grid = h.narrow(axis: 1, start: 1, length: L - 1).transposed(1, 2).reshaped([B, r, g, g])
        let logits = transposedConvolution(grid)
        return (outs, logits.reshaped([B, logits.shape[2], logits.shape[3]]))
    }
}

// MARK: Model

/// What a query image is segmented for.
public enum CLIPSegCondition {
    /// Token ids [B, L] (CLIP BPE, EOT = 49407) and optionally transformers' attention mask [B, L].
    case text(ids: Tensor, attentionMask: Tensor?)
    /// Prompt images [B, 3, S, S] (visual prompting: `conditional_pixel_values`).
    case image(Tensor)
    /// A ready conditional embedding [B, projection].
    case embedding(Tensor)
}

/// transformers `CLIPSegForImageSegmentation` (keys `clip.*`, `decoder.*`).
public final class CLIPSeg: Module {
    public let config: CLIPSegConfig
    public let clip: CLIPSegCLIP
    public let decoder: CLIPSegDecoder

    public init(_ config: CLIPSegConfig, generator: inout RandomGenerator) {
        precondition(config.inputSize % config.patchSize == 0, "CLIPSeg: input size \(config.inputSize) must be a multiple of the patch size \(config.patchSize)")
        precondition(config.extractLayers.allSatisfy { $0 >= 0 && $0 < config.vision.layers },
                     "CLIPSeg: extract layers \(config.extractLayers) outside 0..<\(config.vision.layers)")
        self.config = config
        clip = CLIPSegCLIP(config, generator: &generator)
        decoder = CLIPSegDecoder(config, generator: &generator)
        super.init()
    }

    public convenience init(_ config: CLIPSegConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    /// True when some encoder parameter trains (then the encoders run on the tape).
    public var encodersTrain: Bool { clip.parameters().contains { !$0.isFrozen } }

    /// Freezes / unfreezes the two parts (VLSM: both frozen with adapters; medvlsm CLIPSeg: both
    /// trained — and here the encoders really are).
    public func setTrainable(encoders: Bool, decoder trainDecoder: Bool) {
        if encoders { clip.unfreeze() } else { clip.freeze() }
        if trainDecoder { decoder.unfreeze() } else { decoder.freeze() }
    }

    /// The tapped vision states hidden_states[i + 1], i in `extractLayers` ([B, 1 + g², D] each).
    public func visionActivations(_ pixels: Tensor, adapters: [CLIPSegLayerAdapters] = []) -> [Tensor] {
        try! checkPixels(pixels)
        let vision = clip.visionModel
        return vision.encoder.tappedStates(vision.preLayrnorm(vision.embeddings(pixels)), taps: config.extractLayers.map { $0 + 1 },
                                           adapters: adapters)
    }

    /// The conditional embedding [B, projection] (`get_conditional_embeddings`).
    public func conditionalEmbedding(_ condition: CLIPSegCondition, batch: Int) -> Tensor {
        let c: Tensor
        switch condition {
        case let .text(ids, mask): c = clip.textFeatures(ids, attentionMask: mask)
        case let .image(px): c = clip.imageFeatures(px)
        case let .embedding(e): c = e
        }
        precondition(c.rank == 2 && c.shape[0] == batch && c.shape[1] == config.projectionDim,
                     "CLIPSeg: conditional embedding \(c.shape) for \(batch) query images must be [\(batch), \(config.projectionDim)]")
        return c
    }

    /// Input check: [B, 3, S, S] with S a multiple of the patch size (the decoder needs a square grid).
    public func checkPixels(_ pixels: Tensor) throws {
        guard pixels.rank == 4, pixels.shape[1] == 3, pixels.shape[2] == pixels.shape[3], pixels.shape[2] % config.patchSize == 0,
              pixels.shape[2] > 0 else {
            throw EncoderError.badInput(model: "CLIPSeg", reason: "pixels \(pixels.shape) must be [B, 3, S, S] with S a multiple of \(config.patchSize)")
        }
    }

    /// Logits [B, S, S] for pixels [B, 3, S, S] (ImageNet/CLIP-normalised) and a condition.
    public func callAsFunction(_ pixels: Tensor, condition: CLIPSegCondition) -> Tensor {
        forward(pixels, condition: condition).logits
    }

    /// Logits plus the decoder's per-layer streams (for parity tests).
    public func forward(_ pixels: Tensor, condition: CLIPSegCondition) -> (logits: Tensor, decoderStates: [Tensor], activations: [Tensor]) {
        let encode = { [self] () -> ([Tensor], Tensor) in
            (visionActivations(pixels), conditionalEmbedding(condition, batch: pixels.shape[0]))
        }
        let (acts, cond) = encodersTrain ? encode() : withNoGrad(encode)
        let d = decoder.forward(acts, condition: cond)
        return (d.logits, d.layerOutputs, acts)
    }

    // MARK: Weights

    /// Builds the model and loads a transformers `CLIPSegForImageSegmentation` safetensors file
    /// (`model.safetensors` of `CIDAS/clipseg-rd64-refined`) strictly by its key names.
    public static func load(_ config: CLIPSegConfig, weights url: URL) throws -> CLIPSeg {
        let model = CLIPSeg(config)
        try model.load(state: EncoderWeights.read(url), file: url.path)
        return model
    }

    /// Loads a transformers state dict (drops the non-persistent `position_ids` buffers if present).
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        var s = state
        for k in s.keys where k.hasSuffix("position_ids") { s[k] = nil }
        try EncoderWeights.load(self, s, file: file, model: "CLIPSeg")
    }
}
