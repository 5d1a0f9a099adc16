import AxialNN
import AxialTensor
import Foundation

// BiomedCLIP (microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224) as open_clip builds it from
// its open_clip_config.json: a `CustomTextCLIP` with
//
//   visual = TimmModel('vit_base_patch16_224', timm_pool '', timm_proj 'linear'):
//       trunk = timm ViT-B/16 (keys `visual.trunk.*`: patch_embed.proj, cls_token, pos_embed,
//       blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm; LayerNorm eps 1e-6,
//       GELU erf), pooled at the class token after `norm`; then `visual.head.proj` (Linear, no bias).
//   text = HFTextEncoder(BiomedBERT-base, hf_pooler_type 'cls_last_hidden_state_pooler',
//       hf_proj_type 'mlp'): BERT-base (keys `text.transformer.*`, post-LN, LayerNorm eps 1e-12,
//       GELU erf, attention mask = ids != pad (0)), the last hidden state at [CLS] (position 0),
//       then `text.proj` = Linear(768, 640, no bias) → GELU → Linear(640, 512, no bias)
//       (keys `text.proj.0.weight`, `text.proj.2.weight`).
//
// Context length 256 (the tokenizer pads/truncates); any L ≤ max positions works here.

/// BiomedCLIP's image and text tower sizes.
public struct BiomedCLIPConfig: Codable, Sendable, Equatable {
    public struct Vision: Codable, Sendable, Equatable {
        public var imageSize = 224, patchSize = 16, width = 768, layers = 12, heads = 12
        public var mlpRatio = 4.0
        public var layerNormEps: Float = 1e-6
        public var gridSize: Int { imageSize / patchSize }
        public init(imageSize: Int = 224, patchSize: Int = 16, width: Int = 768, layers: Int = 12, heads: Int = 12, mlpRatio: Double = 4) {
            self.imageSize = imageSize; self.patchSize = patchSize; self.width = width; self.layers = layers
            self.heads = heads; self.mlpRatio = mlpRatio
        }
    }
    public struct Text: Codable, Sendable, Equatable {
        public var vocabSize = 30522, width = 768, layers = 12, heads = 12, intermediate = 3072
        public var maxPositions = 512, typeVocabSize = 2, padTokenId = 0, contextLength = 256
        public var layerNormEps: Float = 1e-12
        public init(vocabSize: Int = 30522, width: Int = 768, layers: Int = 12, heads: Int = 12, intermediate: Int = 3072,
                    maxPositions: Int = 512, typeVocabSize: Int = 2, padTokenId: Int = 0, contextLength: Int = 256) {
            self.vocabSize = vocabSize; self.width = width; self.layers = layers; self.heads = heads
            self.intermediate = intermediate; self.maxPositions = maxPositions; self.typeVocabSize = typeVocabSize
            self.padTokenId = padTokenId; self.contextLength = contextLength
        }
    }
    /// open_clip `hf_proj_type`: `linear` (key `proj.weight`) or `mlp` (`proj.0/2.weight`, hidden (d + e)/2).
    public enum TextProjection: String, Codable, Sendable { case linear, mlp }

    public var embedDimensions = 512
    public var vision = Vision()
    public var text = Text()
    public var textProjection = TextProjection.mlp

    public init(embedDimensions: Int = 512, vision: Vision = Vision(), text: Text = Text(), textProjection: TextProjection = .mlp) {
        self.embedDimensions = embedDimensions; self.vision = vision; self.text = text; self.textProjection = textProjection
    }

    /// The published BiomedCLIP-PubMedBERT_256-vit_base_patch16_224.
    public static let base = BiomedCLIPConfig()
}

// MARK: Vision: timm ViT trunk + linear head

/// timm `Attention`: fused qkv Linear, then proj (keys `qkv.*`, `proj.*`).
public final class TimmAttention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int
    init(width: Int, heads: Int, generator: inout RandomGenerator) {
        qkv = Linear(width, 3 * width, generator: &generator)
        proj = Linear(width, width, generator: &generator)
        self.heads = heads
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        proj(packedSelfAttention(qkv(x), heads: heads))   // memory-efficient core: no [B, H, L, L] kept
    }
}

/// timm `Mlp` (fc1 → GELU(erf) → fc2): the same module as the ViT's.
public typealias TimmMlp = ViTMLP

/// timm `Block` (pre-norm, no layer scale): x += attn(norm1 x); x += mlp(norm2 x).
public final class TimmBlock: Module {
    public let norm1: LayerNorm
    public let attn: TimmAttention
    public let norm2: LayerNorm
    public let mlp: TimmMlp
    init(_ c: BiomedCLIPConfig.Vision, generator: inout RandomGenerator) {
        norm1 = LayerNorm(c.width, eps: c.layerNormEps)
        attn = TimmAttention(width: c.width, heads: c.heads, generator: &generator)
        norm2 = LayerNorm(c.width, eps: c.layerNormEps)
        mlp = ViTMLP(dim: c.width, hidden: Int(Double(c.width) * c.mlpRatio), generator: &generator)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x + attn(norm1(x))
        return h + mlp(norm2(h))
    }
}

/// timm `PatchEmbed` projection (keys `proj.weight` [D, 3, p, p], `proj.bias` [D]).
public final class TimmPatchEmbed: Module {
    public final class Projection: Module {
        public let weight: Parameter
        public let bias: Parameter
        init(width: Int, patch: Int, generator: inout RandomGenerator) {
            weight = Parameter(Initializer.kaimingUniform([width, 3, patch, patch], generator: &generator))
            bias = Parameter(Tensor(zeros: [width]))
            super.init()
        }
    }
    public let proj: Projection
    init(width: Int, patch: Int, generator: inout RandomGenerator) {
        proj = Projection(width: width, patch: patch, generator: &generator)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { patchEmbed(x, weight: proj.weight.value, bias: proj.bias.value) }
}

/// The timm ViT trunk of BiomedCLIP's image tower (keys under `visual.trunk.`).
public final class BiomedCLIPVisionTrunk: Module {
    public let config: BiomedCLIPConfig.Vision
    public let patchEmbed: TimmPatchEmbed
    public let clsToken: Parameter      // [1, 1, D]
    public let posEmbed: Parameter      // [1, 1 + N, D]
    public let blocks: [TimmBlock]
    public let norm: LayerNorm

    init(_ c: BiomedCLIPConfig.Vision, generator: inout RandomGenerator) {
        config = c
        patchEmbed = TimmPatchEmbed(width: c.width, patch: c.patchSize, generator: &generator)
        clsToken = Parameter(Tensor.normal([1, 1, c.width], std: 1e-6, generator: &generator))
        posEmbed = Parameter(Tensor.truncatedNormal([1, c.gridSize * c.gridSize + 1, c.width], std: 0.02, generator: &generator))
        blocks = (0..<c.layers).map { _ in TimmBlock(c, generator: &generator) }
        norm = LayerNorm(c.width, eps: c.layerNormEps)
        super.init()
    }

    /// timm `forward_features` with a hook after each block: [B, 3, S, S] → norm(x) [B, 1 + N, D].
    public func forwardFeatures(_ images: Tensor, upTo: Int? = nil, hook: CLIPBlockHook? = nil) -> Tensor {
        let c = config
        precondition(images.rank == 4 && images.shape[1] == 3 && images.shape[2] / c.patchSize == c.gridSize
                     && images.shape[3] / c.patchSize == c.gridSize,
                     "BiomedCLIP image tower: images \(images.shape) must be [B, 3, \(c.imageSize), \(c.imageSize)]")
        let B = images.shape[0]
        let patches = patchEmbed(images)
        var x = concat([clsToken.value.expand(to: [B, 1, c.width]), patches], axis: 1) + posEmbed.value
        for (i, block) in blocks.prefix(upTo ?? blocks.count).enumerated() {
            x = block(x)
            if let hook { x = hook(i + 1, x) }
        }
        return norm(x)
    }
}

/// open_clip `TimmModel` head with `proj='linear'` (key `proj.weight` [embed, D], no bias).
public final class TimmProjectionHead: Module {
    public let proj: Linear
    init(width: Int, embed: Int, generator: inout RandomGenerator) {
        proj = Linear(width, embed, bias: false, generator: &generator)
        super.init()
    }
}

/// BiomedCLIP's image tower (keys under `visual.`): trunk + head.
public final class BiomedCLIPVision: Module {
    public let trunk: BiomedCLIPVisionTrunk
    public let head: TimmProjectionHead
    init(_ c: BiomedCLIPConfig, generator: inout RandomGenerator) {
        trunk = BiomedCLIPVisionTrunk(c.vision, generator: &generator)
        head = TimmProjectionHead(width: c.vision.width, embed: c.embedDimensions, generator: &generator)
        super.init()
    }
    /// open_clip `encode_image` before normalisation: class token after `norm` → head.proj: [B, embed].
    public func callAsFunction(_ images: Tensor, hook: CLIPBlockHook? = nil) -> Tensor {
        head.proj(trunk.forwardFeatures(images, hook: hook).select(axis: 1, index: 0))
    }
    /// The residual stream [B, 1 + N, D] after the given blocks (1-based).
    public func blockOutputs(_ images: Tensor, blocks: [Int]) -> [Int: Tensor] {
        let taps = BlockTaps(blocks)
        _ = trunk.forwardFeatures(images, upTo: blocks.max(), hook: taps.hook)
        return taps.outputs
    }
}

// MARK: Text: Hugging Face BERT (post-LN) + CLS pooling + projection

/// HF `BertEmbeddings`: word + position + token-type (type 0) embeddings, then LayerNorm.
public final class BERTEmbeddings: Module {
    public let wordEmbeddings: Embedding
    public let positionEmbeddings: Embedding
    public let tokenTypeEmbeddings: Embedding
    public let layerNorm: LayerNorm
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        wordEmbeddings = Embedding(c.vocabSize, c.width, generator: &generator)
        positionEmbeddings = Embedding(c.maxPositions, c.width, generator: &generator)
        tokenTypeEmbeddings = Embedding(c.typeVocabSize, c.width, generator: &generator)
        layerNorm = LayerNorm(c.width, eps: c.layerNormEps)
        super.init()
    }
    override public var propertyKeys: [String: String] { ["layerNorm": "LayerNorm"] }

    /// ids [B, L] → [B, L, D] (token type 0 everywhere, positions 0..<L).
    public func callAsFunction(_ ids: Tensor) -> Tensor {
        let L = ids.shape[1]
        let pos = positionEmbeddings.weight.value.narrow(axis: 0, start: 0, length: L)
        let type0 = tokenTypeEmbeddings.weight.value.narrow(axis: 0, start: 0, length: 1)
        return layerNorm(wordEmbeddings(ids) + pos + type0)
    }
}

/// HF `BertSelfAttention` (keys `query`, `key`, `value`).
public final class BERTSelfAttention: Module {
    public let query: Linear, key: Linear, value: Linear
    public let heads: Int
    init(width: Int, heads: Int, generator: inout RandomGenerator) {
        query = Linear(width, width, generator: &generator)
        key = Linear(width, width, generator: &generator)
        value = Linear(width, width, generator: &generator)
        self.heads = heads
        super.init()
    }
    func callAsFunction(_ x: Tensor, mask: AttentionMask?) -> Tensor {
        multiHeadAttention(query(x), key(x), value(x), heads: heads, mask: mask)
    }
}

/// HF `BertSelfOutput` / `BertOutput`: LayerNorm(dense(h) + residual) (keys `dense`, `LayerNorm`).
public final class BERTResidualOutput: Module {
    public let dense: Linear
    public let layerNorm: LayerNorm
    init(_ inWidth: Int, _ width: Int, eps: Float, generator: inout RandomGenerator) {
        dense = Linear(inWidth, width, generator: &generator)
        layerNorm = LayerNorm(width, eps: eps)
        super.init()
    }
    override public var propertyKeys: [String: String] { ["layerNorm": "LayerNorm"] }
    func callAsFunction(_ h: Tensor, residual: Tensor) -> Tensor { layerNorm(dense(h) + residual) }
}

/// HF `BertAttention` (keys `self.*`, `output.*`).
public final class BERTAttention: Module {
    public let selfAttention: BERTSelfAttention
    public let output: BERTResidualOutput
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        selfAttention = BERTSelfAttention(width: c.width, heads: c.heads, generator: &generator)
        output = BERTResidualOutput(c.width, c.width, eps: c.layerNormEps, generator: &generator)
        super.init()
    }
    override public var propertyKeys: [String: String] { ["selfAttention": "self"] }
}

/// HF `BertIntermediate` (key `dense`), GELU erf.
public final class BERTIntermediate: Module {
    public let dense: Linear
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        dense = Linear(c.width, c.intermediate, generator: &generator)
        super.init()
    }
}

/// HF `BertLayer` (post-LN): h = LN(attn(x) W_o + x); y = LN(GELU(h W_i) W_o2 + h).
public final class BERTLayer: Module {
    public let attention: BERTAttention
    public let intermediate: BERTIntermediate
    public let output: BERTResidualOutput
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        attention = BERTAttention(c, generator: &generator)
        intermediate = BERTIntermediate(c, generator: &generator)
        output = BERTResidualOutput(c.intermediate, c.width, eps: c.layerNormEps, generator: &generator)
        super.init()
    }
    public func callAsFunction(_ x: Tensor, mask: AttentionMask?) -> Tensor {
        let h = attention.output(attention.selfAttention(x, mask: mask), residual: x)
        return output(gelu(intermediate.dense(h)), residual: h)
    }
}

/// HF `BertEncoder` (keys `layer.N.*`).
public final class BERTEncoder: Module {
    public let layer: [BERTLayer]
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        layer = (0..<c.layers).map { _ in BERTLayer(c, generator: &generator) }
        super.init()
    }
}

/// HF `BertModel` without the pooler (keys `embeddings.*`, `encoder.*`).
public final class BERTModel: Module {
    public let config: BiomedCLIPConfig.Text
    public let embeddings: BERTEmbeddings
    public let encoder: BERTEncoder
    init(_ c: BiomedCLIPConfig.Text, generator: inout RandomGenerator) {
        config = c
        embeddings = BERTEmbeddings(c, generator: &generator)
        encoder = BERTEncoder(c, generator: &generator)
        super.init()
    }

    /// last_hidden_state [B, L, D] for ids [B, L]; padding (`padTokenId`) is masked out of the keys.
    public func callAsFunction(_ ids: Tensor, upTo: Int? = nil, hook: CLIPBlockHook? = nil) -> Tensor {
        precondition(ids.rank == 2 && ids.shape[1] <= config.maxPositions,
                     "BERT: ids \(ids.shape) must be [B, L ≤ \(config.maxPositions)]")
        let B = ids.shape[0], L = ids.shape[1]
        let pad = Float(config.padTokenId)
        let keep = Tensor(shape: [B, 1, 1, L], scalars: ids.scalars.map { $0 != pad ? 1 : 0 })
        var x = embeddings(ids)
        for (i, l) in encoder.layer.prefix(upTo ?? encoder.layer.count).enumerated() {
            x = l(x, mask: .boolean(keep))
            if let hook { x = hook(i + 1, x) }
        }
        return x
    }
}

/// open_clip `HFTextEncoder.proj`: `linear` (key `weight`) or `mlp` (keys `0.weight`, `2.weight`).
public final class HFTextProjection: Module, UnaryLayer {
    public let layers: [Linear]
    init(_ kind: BiomedCLIPConfig.TextProjection, width: Int, embed: Int, generator: inout RandomGenerator) {
        switch kind {
        case .linear: layers = [Linear(width, embed, bias: false, generator: &generator)]
        case .mlp:
            let hidden = (width + embed) / 2
            layers = [Linear(width, hidden, bias: false, generator: &generator), Linear(hidden, embed, bias: false, generator: &generator)]
        }
        super.init()
    }
    override public func namedChildren() -> [(String, ModuleChild)] {
        if layers.count == 1 { return [("weight", .parameter(layers[0].weight))] }
        return [("0", .module(layers[0])), ("2", .module(layers[1]))]
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { layers.count == 1 ? layers[0](x) : layers[1](gelu(layers[0](x))) }
}

/// BiomedCLIP's text tower (keys under `text.`): `transformer.*` (BERT) and `proj.*`.
public final class BiomedCLIPText: Module {
    public let transformer: BERTModel
    public let proj: HFTextProjection
    init(_ c: BiomedCLIPConfig, generator: inout RandomGenerator) {
        transformer = BERTModel(c.text, generator: &generator)
        proj = HFTextProjection(c.textProjection, width: c.text.width, embed: c.embedDimensions, generator: &generator)
        super.init()
    }
    /// open_clip `encode_text` before normalisation: ids [B, L] → proj(last_hidden_state[:, 0]) [B, embed].
    public func callAsFunction(_ ids: Tensor, hook: CLIPBlockHook? = nil) -> Tensor {
        proj(transformer(ids, hook: hook).select(axis: 1, index: 0))
    }
    /// Each BERT layer's output [B, L, D] (1-based).
    public func blockOutputs(_ ids: Tensor, blocks: [Int]) -> [Int: Tensor] {
        let taps = BlockTaps(blocks)
        _ = transformer(ids, upTo: blocks.max(), hook: taps.hook)
        return taps.outputs
    }
}

/// BiomedCLIP with open_clip `CustomTextCLIP` keys: `visual.*`, `text.*`, `logit_scale`.
public final class BiomedCLIPModel: Module {
    public let config: BiomedCLIPConfig
    public let visual: BiomedCLIPVision
    public let text: BiomedCLIPText
    public let logitScale: Parameter

    public init(_ config: BiomedCLIPConfig, generator: inout RandomGenerator) {
        self.config = config
        visual = BiomedCLIPVision(config, generator: &generator)
        text = BiomedCLIPText(config, generator: &generator)
        logitScale = Parameter(Tensor(Float(Foundation.log(1 / 0.07))))
        super.init()
    }
    public convenience init(_ config: BiomedCLIPConfig = .base) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    public func encodeImage(_ images: Tensor, hook: CLIPBlockHook? = nil) -> Tensor { visual(images, hook: hook) }
    public func encodeText(_ ids: Tensor, hook: CLIPBlockHook? = nil) -> Tensor { text(ids, hook: hook) }

    /// The one place names are adapted: drops buffers HF / timm may save that the model does not
    /// use (`text.transformer.embeddings.position_ids`, `…token_type_ids`) and BERT's pooler
    /// (`text.transformer.pooler.*`, unused by BiomedCLIP's CLS-last-hidden-state pooling).
    public static func remap(_ state: [String: Tensor]) -> [String: Tensor] {
        state.filter { k, _ in
            !(k.hasSuffix("embeddings.position_ids") || k.hasSuffix("embeddings.token_type_ids") || k.contains("transformer.pooler."))
        }
    }

    /// Loads a BiomedCLIP state dict (open_clip names); throws `EncoderError.weightMismatch` listing keys.
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        try EncoderWeights.load(self, Self.remap(state), file: file, model: "BiomedCLIP")
    }

    /// Builds the model and loads a `.safetensors` (open_clip's `open_clip_pytorch_model.bin`
    /// converted with Tools/convert_weights.py).
    public static func load(_ config: BiomedCLIPConfig = .base, weights url: URL) throws -> BiomedCLIPModel {
        let m = BiomedCLIPModel(config)
        try m.load(state: EncoderWeights.read(url), file: url.path)
        return m
    }
}
