import AxialNN
import AxialTensor
import Foundation

// CRIS (Wang et al., CVPR 2022) as medvlsm runs it (DerrickWang005/CRIS.pytorch model/{clip,layers,
// segmenter}.py; naamiinepal/medvlsm src/models/cris_model/, which adds the final upsampling), under
// CRIS's key names (`backbone.*`, `neck.*`, `decoder.*`, `proj.*`), so a CRIS / medvlsm checkpoint
// (`.pth` → Tools/convert_weights.py → .safetensors) loads as is.
//
//   backbone: CLIP RN50 (`CLIPModifiedResNet` with the spatial pool: C3 = layer2 [512, S/8],
//     C4 = layer3 [1024, S/16], C5 = pool(layer4) [1024, S/32] — no class token, the 7×7 position
//     grid resized bicubically to S/32, + `connect` conv-BN residual, ReLU) and the CLIP text tower
//     (`encodeWords`: every word after ln_final, 512 wide, and the EOT state projected, 1024).
//   neck (FPN): state → Linear-BN1d-ReLU; f5 = BN-ReLU(cbr(C5) · state); f4 = cbr(cbr₃(C4) ‖ up₂(f5));
//     f3 = cbr(avgpool₂(cbr₃(C3)) ‖ f4); aggr(cbr₃(f3) ‖ cbr₃(f4) ‖ up₂(cbr₃(f5))) → CoordConv → cbr₃
//     → fq [B, 512, S/16] (cbr = conv (no bias) → BN → ReLU, up₂ = bilinear ×2, align_corners=False).
//   decoder: pre-norm layers over the S/16² visual tokens: self-attention (q = k = norm1(x) + pos2d,
//     v = norm1(x)) → self_attn_norm → + x; cross-attention to the words (q + pos2d, k = words + pos1d,
//     v = words, key_padding_mask on id-0 words) → cross_attn_norm → + x; FFN (Linear, ReLU, dropout,
//     LayerNorm, Linear) on norm3(x) → + x; final LayerNorm. Sin/cos positions as CRIS's pos2d/pos1d.
//   projector: x → up₂ → cbr₃(2d→2d) → up₂ → cbr₃(2d→d) → conv 1×1 (d = vis_dim/2) [B, d, S/4];
//     state → Linear → a per-sample 3×3 kernel [d, 3, 3] + bias → grouped conv (groups = B) → [B, 1, S/4].
//   medvlsm: logits upsampled bicubically (align_corners=True) to S; prediction = sigmoid > 0.35.
//
// BatchNorm layers use batch statistics in training mode (torch's, running stats updated). A frozen
// backbone (`setTrainable(backbone: false)`, medvlsm's default freeze_encoder) runs tape-free with its
// running statistics (medvlsm would still update them in train mode).

/// CRIS hyper-parameters (CRIS's `cfg.TRAIN`, medvlsm's `configs/model/cris.yaml`).
public struct CRISConfig: Codable, Sendable, Equatable {
    /// The RN image tower; its `imageSize` is the pretraining size (224: a 7×7 pool position grid).
    public var vision: CLIPResNetConfig
    public var text: CLIPTextConfig
    /// fpn_out (fpn_in is derived: [8·width, 16·width, vision.outputDimensions]).
    public var fpnOut: [Int]
    /// Decoder width (= fpn_out[1] = the text tower's width).
    public var visDim: Int
    public var decoderLayers: Int
    public var decoderHeads: Int
    public var feedForward: Int
    public var dropout: Float
    /// Training / inference size (416).
    public var inputSize: Int
    /// Foreground where sigmoid(logit) > threshold (medvlsm: 0.35).
    public var threshold: Float

    public init(vision: CLIPResNetConfig, text: CLIPTextConfig, fpnOut: [Int], visDim: Int, decoderLayers: Int, decoderHeads: Int,
                feedForward: Int, dropout: Float, inputSize: Int, threshold: Float = 0.35) {
        self.vision = vision; self.text = text; self.fpnOut = fpnOut; self.visDim = visDim; self.decoderLayers = decoderLayers
        self.decoderHeads = decoderHeads; self.feedForward = feedForward; self.dropout = dropout; self.inputSize = inputSize
        self.threshold = threshold
    }

    /// fpn_in: channels of C3, C4, C5.
    public var fpnIn: [Int] { [vision.width * 8, vision.width * 16, vision.outputDimensions] }
    /// word_dim: the projected text state (= the RN output width).
    public var wordDim: Int { vision.outputDimensions }
    /// The logit above which a pixel is foreground: log(t / (1 − t)).
    public var logitThreshold: Float { Foundation.log(threshold / (1 - threshold)) }

    /// medvlsm's CRIS: CLIP RN50 (text 512 wide, 8 heads, 12 layers, context 77 = medvlsm's word_len;
    /// CRIS itself uses 17), fpn_in [512, 1024, 1024], fpn_out [256, 512, 1024], vis_dim 512, 3 decoder
    /// layers, 8 heads, FFN 2048, dropout 0.2 (CRIS: 0.1), input 416, threshold 0.35.
    public static let cris = CRISConfig(
        vision: .rn50, text: CLIPTextConfig(contextLength: 77, width: 512, heads: 8, layers: 12), fpnOut: [256, 512, 1024],
        visDim: 512, decoderLayers: 3, decoderHeads: 8, feedForward: 2048, dropout: 0.2, inputSize: 416)

    /// Tiny shapes for tests (= Tools/goldens/make_cris_goldens.py TINY): RN [1, 1, 1, 1] width 4,
    /// 2 pool heads, embed 32, pool grid 2×2 (pretrained at 64) resized to 3×3 at 96; text 24 wide,
    /// 2 heads, 2 layers, vocab 99, context 16; fpn_out [16, 24, 32]; vis_dim 24, 2 layers, 4 heads,
    /// FFN 40; input 96.
    public static let crisTest = CRISConfig(
        vision: CLIPResNetConfig(layers: [1, 1, 1, 1], width: 4, heads: 2, outputDimensions: 32, imageSize: 64),
        text: CLIPTextConfig(contextLength: 16, vocabSize: 99, width: 24, heads: 2, layers: 2), fpnOut: [16, 24, 32],
        visDim: 24, decoderLayers: 2, decoderHeads: 4, feedForward: 40, dropout: 0.1, inputSize: 96)

    /// Why this configuration cannot be built (nil when it can).
    public var problem: String? {
        if fpnOut.count != 3 { return "fpn_out \(fpnOut) must have 3 entries" }
        if fpnOut[2] != wordDim { return "fpn_out[2] = \(fpnOut[2]) must equal the text state width \(wordDim) (f5 · state)" }
        if fpnOut[1] != visDim || text.width != visDim {
            return "vis_dim \(visDim) must equal fpn_out[1] = \(fpnOut[1]) and the text width \(text.width)"
        }
        if visDim % 4 != 0 || visDim % decoderHeads != 0 { return "vis_dim \(visDim) must be divisible by 4 and by \(decoderHeads) heads" }
        if inputSize % 32 != 0 || inputSize < 32 { return "input size \(inputSize) must be a positive multiple of 32" }
        if !(threshold > 0 && threshold < 1) { return "threshold \(threshold) must be in (0, 1)" }
        return nil
    }
}

// MARK: Blocks

/// CRIS `conv_layer`: Conv2d (no bias) → BatchNorm2d → ReLU (keys `0.weight`, `1.*`).
public final class CRISConvBN: Module, UnaryLayer {
    public let conv: Conv2d
    public let bn: BatchNorm
    init(_ cin: Int, _ cout: Int, kernel: Int, padding: Int, generator: inout RandomGenerator) {
        conv = Conv2d(cin, cout, kernelSize: Size2D(kernel, kernel), padding: Size2D(padding, padding), bias: false, generator: &generator)
        bn = BatchNorm(cout)
        super.init()
    }
    override public func namedChildren() -> [(String, ModuleChild)] { [("0", .module(conv)), ("1", .module(bn))] }
    public func callAsFunction(_ x: Tensor) -> Tensor { relu(bn(conv(x))) }
}

/// CRIS `linear_layer`: Linear (no bias) → BatchNorm1d → ReLU (keys `0.weight`, `1.*`).
public final class CRISLinearBN: Module, UnaryLayer {
    public let linear: Linear
    public let bn: BatchNorm
    init(_ din: Int, _ dout: Int, generator: inout RandomGenerator) {
        linear = Linear(din, dout, bias: false, generator: &generator)
        bn = BatchNorm(dout)
        super.init()
    }
    override public func namedChildren() -> [(String, ModuleChild)] { [("0", .module(linear)), ("1", .module(bn))] }
    public func callAsFunction(_ x: Tensor) -> Tensor { relu(bn(linear(x))) }
}

/// CRIS `CoordConv`: x ‖ (x, y) coordinates in [−1, 1] (torch.linspace) → conv_layer (key `conv1.*`).
public final class CRISCoordConv: Module, UnaryLayer {
    public let conv1: CRISConvBN
    init(_ cin: Int, _ cout: Int, generator: inout RandomGenerator) {
        conv1 = CRISConvBN(cin + 2, cout, kernel: 3, padding: 1, generator: &generator)
        super.init()
    }
    /// The two coordinate planes [1, 2, H, W]: channel 0 = x (along W), 1 = y (along H).
    static func coordinates(height h: Int, width w: Int) -> Tensor {
        func linspace(_ n: Int) -> [Float] {
            guard n > 1 else { return [-1] }
            let step = 2 / Float(n - 1)
            // torch.linspace: start + i·step for the first half, end − (n − 1 − i)·step after.
            return (0..<n).map { i in i < n / 2 ? -1 + Float(i) * step : 1 - Float(n - 1 - i) * step }
        }
        let xs = linspace(w), ys = linspace(h)
        var out = [Float](repeating: 0, count: 2 * h * w)
        for y in 0..<h { for x in 0..<w { out[y * w + x] = xs[x]; out[h * w + y * w + x] = ys[y] } }
        return Tensor(shape: [1, 2, h, w], scalars: out)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let B = x.shape[0], H = x.shape[2], W = x.shape[3]
        return conv1(concat([x, Self.coordinates(height: H, width: W).expand(to: [B, 2, H, W])], axis: 1))
    }
}

/// CRIS `FPN` (keys `txt_proj`, `f1_v_proj`, `norm_layer.0`, `f2_v_proj`, `f2_cat`, `f3_v_proj`, `f3_cat`,
/// `f4_proj5`, `f4_proj4`, `f4_proj3`, `aggr`, `coordconv.0.conv1`, `coordconv.1`).
public final class CRISFPN: Module {
    public let txtProj: CRISLinearBN
    public let f1VProj: CRISConvBN
    public let normBN: BatchNorm
    public let f2VProj: CRISConvBN, f2Cat: CRISConvBN
    public let f3VProj: CRISConvBN, f3Cat: CRISConvBN
    public let f4Proj5: CRISConvBN, f4Proj4: CRISConvBN, f4Proj3: CRISConvBN
    public let aggr: CRISConvBN
    public let coord: CRISCoordConv, coordOut: CRISConvBN

    init(in fin: [Int], out fout: [Int], generator g: inout RandomGenerator) {
        txtProj = CRISLinearBN(fin[2], fout[2], generator: &g)
        f1VProj = CRISConvBN(fin[2], fout[2], kernel: 1, padding: 0, generator: &g)
        normBN = BatchNorm(fout[2])
        f2VProj = CRISConvBN(fin[1], fout[1], kernel: 3, padding: 1, generator: &g)
        f2Cat = CRISConvBN(fout[2] + fout[1], fout[1], kernel: 1, padding: 0, generator: &g)
        f3VProj = CRISConvBN(fin[0], fout[0], kernel: 3, padding: 1, generator: &g)
        f3Cat = CRISConvBN(fout[0] + fout[1], fout[1], kernel: 1, padding: 0, generator: &g)
        f4Proj5 = CRISConvBN(fout[2], fout[1], kernel: 3, padding: 1, generator: &g)
        f4Proj4 = CRISConvBN(fout[1], fout[1], kernel: 3, padding: 1, generator: &g)
        f4Proj3 = CRISConvBN(fout[1], fout[1], kernel: 3, padding: 1, generator: &g)
        aggr = CRISConvBN(3 * fout[1], fout[1], kernel: 1, padding: 0, generator: &g)
        coord = CRISCoordConv(fout[1], fout[1], generator: &g)
        coordOut = CRISConvBN(fout[1], fout[1], kernel: 3, padding: 1, generator: &g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("txt_proj", .module(txtProj)), ("f1_v_proj", .module(f1VProj)), ("norm_layer.0", .module(normBN)),
         ("f2_v_proj", .module(f2VProj)), ("f2_cat", .module(f2Cat)), ("f3_v_proj", .module(f3VProj)), ("f3_cat", .module(f3Cat)),
         ("f4_proj5", .module(f4Proj5)), ("f4_proj4", .module(f4Proj4)), ("f4_proj3", .module(f4Proj3)), ("aggr", .module(aggr)),
         ("coordconv.0", .module(coord)), ("coordconv.1", .module(coordOut))]
    }

    /// (C3, C4, C5), state [B, word] → fq [B, fpn_out[1], H4, W4].
    public func callAsFunction(_ c3: Tensor, _ c4: Tensor, _ c5: Tensor, state: Tensor) -> Tensor {
        let s = txtProj(state)
        let f5 = relu(normBN(f1VProj(c5) * s.reshaped([s.shape[0], s.shape[1], 1, 1])))
        let f4 = f2Cat(concat([f2VProj(c4), interpolate(f5, scaleFactor: 2, mode: .bilinear)], axis: 1))
        let f3 = f3Cat(concat([avgPool2d(f3VProj(c3), kernelSize: 2, stride: 2), f4], axis: 1))
        let fq5 = interpolate(f4Proj5(f5), scaleFactor: 2, mode: .bilinear)
        let fq = aggr(concat([f4Proj3(f3), f4Proj4(f4), fq5], axis: 1))
        return coordOut(coord(fq))
    }
}

/// CRIS `TransformerDecoderLayer` (keys `self_attn_norm`, `cross_attn_norm`, `self_attn.*`,
/// `multihead_attn.*`, `ffn.{0,3,4}`, `norm1..3`).
public final class CRISDecoderLayer: Module {
    public let selfAttnNorm: LayerNorm, crossAttnNorm: LayerNorm
    public let selfAttn: MultiheadAttention, multiheadAttn: MultiheadAttention
    public let ffnIn: Linear, ffnNorm: LayerNorm, ffnOut: Linear
    public let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    public let drop: Dropout

    init(width d: Int, heads: Int, feedForward: Int, dropout: Float, generator g: inout RandomGenerator) {
        selfAttnNorm = LayerNorm(d); crossAttnNorm = LayerNorm(d)
        selfAttn = MultiheadAttention(embedDimensions: d, numHeads: heads, dropout: dropout, generator: &g)
        multiheadAttn = MultiheadAttention(embedDimensions: d, numHeads: heads, dropout: dropout, generator: &g)
        ffnIn = Linear(d, feedForward, generator: &g); ffnNorm = LayerNorm(feedForward); ffnOut = Linear(feedForward, d, generator: &g)
        norm1 = LayerNorm(d); norm2 = LayerNorm(d); norm3 = LayerNorm(d)
        drop = Dropout(dropout)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("self_attn_norm", .module(selfAttnNorm)), ("cross_attn_norm", .module(crossAttnNorm)), ("self_attn", .module(selfAttn)),
         ("multihead_attn", .module(multiheadAttn)), ("ffn.0", .module(ffnIn)), ("ffn.3", .module(ffnNorm)), ("ffn.4", .module(ffnOut)),
         ("norm1", .module(norm1)), ("norm2", .module(norm2)), ("norm3", .module(norm3)),
         ("dropout", .module(drop))]   // no keys; listed so train() / eval() reach it
    }

    /// vis [B, HW, d], words [B, L, d], positions [1, HW, d] / [1, L, d], pad [B, L] (1 = padding).
    public func callAsFunction(_ vis: Tensor, words: Tensor, visPos: Tensor, wordPos: Tensor, pad: Tensor) -> Tensor {
        var x = vis
        let n1 = norm1(x), q = n1 + visPos
        x = x + drop(selfAttnNorm(selfAttn(q, q, n1, needWeights: false).output))
        let n2 = norm2(x)
        let c = multiheadAttn(n2 + visPos, words + wordPos, words, keyPaddingMask: pad, needWeights: false).output
        x = x + drop(crossAttnNorm(c))
        return x + drop(ffnOut(ffnNorm(drop(relu(ffnIn(norm3(x)))))))
    }
}

/// CRIS `TransformerDecoder` (keys `layers.N.*`, `norm.*`).
public final class CRISDecoder: Module {
    public let layers: [CRISDecoderLayer]
    public let norm: LayerNorm

    init(_ c: CRISConfig, generator g: inout RandomGenerator) {
        layers = (0..<c.decoderLayers).map { _ in
            CRISDecoderLayer(width: c.visDim, heads: c.decoderHeads, feedForward: c.feedForward, dropout: c.dropout, generator: &g)
        }
        norm = LayerNorm(c.visDim)
        super.init()
    }

    /// CRIS `pos1d`: [L, d], even channels sin(p·ω_i), odd cos, ω_i = 10000^(−2i/d).
    public static func positions1D(width d: Int, length: Int) -> Tensor {
        var pe = [Float](repeating: 0, count: length * d)
        for p in 0..<length {
            for i in stride(from: 0, to: d, by: 2) {
                let a = Double(p) * Foundation.exp(Double(i) * -(Foundation.log(10000.0) / Double(d)))
                pe[p * d + i] = Float(Foundation.sin(a))
                if i + 1 < d { pe[p * d + i + 1] = Float(Foundation.cos(a)) }
            }
        }
        return Tensor(shape: [length, d], scalars: pe)
    }

    /// CRIS `pos2d` as [HW, d]: channels [0, d/2) encode the column (sin even, cos odd), [d/2, d) the row,
    /// ω_i = 10000^(−2i/(d/2)).
    public static func positions2D(width d: Int, height h: Int, width w: Int) -> Tensor {
        let half = d / 2
        var pe = [Float](repeating: 0, count: h * w * d)
        for i in stride(from: 0, to: half, by: 2) {
            let omega = Foundation.exp(Double(i) * -(Foundation.log(10000.0) / Double(half)))
            for y in 0..<h {
                for x in 0..<w {
                    let base = (y * w + x) * d
                    pe[base + i] = Float(Foundation.sin(Double(x) * omega))
                    pe[base + i + 1] = Float(Foundation.cos(Double(x) * omega))
                    pe[base + half + i] = Float(Foundation.sin(Double(y) * omega))
                    pe[base + half + i + 1] = Float(Foundation.cos(Double(y) * omega))
                }
            }
        }
        return Tensor(shape: [h * w, d], scalars: pe)
    }

    /// fq [B, d, H, W], words [B, L, d], pad [B, L] → [B, d, H, W].
    public func callAsFunction(_ fq: Tensor, words: Tensor, pad: Tensor) -> Tensor {
        let B = fq.shape[0], C = fq.shape[1], H = fq.shape[2], W = fq.shape[3]
        let visPos = Self.positions2D(width: C, height: H, width: W).unsqueezed(0)
        let wordPos = Self.positions1D(width: words.shape[2], length: words.shape[1]).unsqueezed(0)
        var x = fq.reshaped([B, C, H * W]).transposed(1, 2)
        for layer in layers { x = layer(x, words: words, visPos: visPos, wordPos: wordPos, pad: pad) }
        return norm(x).transposed(1, 2).reshaped([B, C, H, W])
    }
}

/// CRIS `Projector` (keys `vis.1`, `vis.3` (conv_layer), `vis.4` (Conv2d 1×1 with bias), `txt`).
public final class CRISProjector: Module {
    public let vis1: CRISConvBN, vis3: CRISConvBN
    public let vis4: Conv2d
    public let txt: Linear
    public let inDim: Int, kernel: Int

    init(wordDim: Int, inDim: Int, kernel: Int = 3, generator g: inout RandomGenerator) {
        self.inDim = inDim; self.kernel = kernel
        vis1 = CRISConvBN(2 * inDim, 2 * inDim, kernel: 3, padding: 1, generator: &g)
        vis3 = CRISConvBN(2 * inDim, inDim, kernel: 3, padding: 1, generator: &g)
        vis4 = Conv2d(inDim, inDim, kernelSize: 1, generator: &g)
        txt = Linear(wordDim, inDim * kernel * kernel + 1, generator: &g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("vis.1", .module(vis1)), ("vis.3", .module(vis3)), ("vis.4", .module(vis4)), ("txt", .module(txt))]
    }

    /// x [B, 2d, H, W], state [B, word] → [B, 1, 4H, 4W]: one 3×3 kernel per sample (grouped conv).
    public func callAsFunction(_ x: Tensor, state: Tensor) -> Tensor {
        var v = vis1(interpolate(x, scaleFactor: 2, mode: .bilinear))
        v = vis4(vis3(interpolate(v, scaleFactor: 2, mode: .bilinear)))
        let B = v.shape[0], C = v.shape[1], H = v.shape[2], W = v.shape[3]
        let t = txt(state)                                                     // [B, C·k² + 1]
        let weight = t.narrow(axis: 1, start: 0, length: C * kernel * kernel).reshaped([B, C, kernel, kernel])
        let bias = t.narrow(axis: 1, start: C * kernel * kernel, length: 1).reshaped([B])
        let out = conv2d(v.reshaped([1, B * C, H, W]), weight: weight, bias: bias, padding: Size2D(kernel / 2, kernel / 2), groups: B)
        return out.reshaped([B, 1, H, W])
    }
}

/// CRIS's CLIP (`backbone.*`): `visual.*` (RN with the spatial pool), the text tower at the top level
/// (`token_embedding`, `positional_embedding`, `transformer.*`, `ln_final`, `text_projection`), `logit_scale`.
public final class CRISBackbone: Module {
    public let visual: CLIPModifiedResNet
    public let text: CLIPTextTransformer
    public let logitScale: Parameter

    init(_ c: CRISConfig, generator g: inout RandomGenerator) {
        visual = CLIPModifiedResNet(c.vision, spatialPool: true, generator: &g)
        text = CLIPTextTransformer(c.text, outputDimensions: c.wordDim, activation: .quickGelu, generator: &g)
        logitScale = Parameter(Tensor(Float(Foundation.log(1 / 0.07))))
        super.init()
    }
    override public var propertyKeys: [String: String] { ["text": ""] }
}

/// The intermediates of one CRIS forward.
public struct CRISOutput {
    /// [B, S, S] (medvlsm's bicubic upsampling of `pred`).
    public var logits: Tensor
    /// The projector's output [B, S/4, S/4].
    public var pred: Tensor
    public var c3: Tensor, c4: Tensor, c5: Tensor
    public var words: Tensor, state: Tensor
    public var fq: Tensor, decoded: Tensor
}

/// CRIS with medvlsm's output upsampling (keys `backbone.*`, `neck.*`, `decoder.*`, `proj.*`).
public final class CRIS: Module {
    public let config: CRISConfig
    public let backbone: CRISBackbone
    public let neck: CRISFPN
    public let decoder: CRISDecoder
    public let proj: CRISProjector

    public init(_ config: CRISConfig, generator g: inout RandomGenerator) {
        if let p = config.problem { preconditionFailure("CRISConfig: \(p)") }
        self.config = config
        backbone = CRISBackbone(config, generator: &g)
        neck = CRISFPN(in: config.fpnIn, out: config.fpnOut, generator: &g)
        decoder = CRISDecoder(config, generator: &g)
        proj = CRISProjector(wordDim: config.wordDim, inDim: config.visDim / 2, generator: &g)
        super.init()
    }

    public convenience init(_ config: CRISConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    /// Whether the backbone trains (medvlsm's `freeze_encoder: false` for its CRIS runs).
    public var backboneTrains: Bool { backbone.parameters().contains { !$0.isFrozen } }

    /// Freezes / unfreezes the backbone and the rest (neck, decoder, projector). `logit_scale` (unused
    /// by segmentation) stays frozen.
    public func setTrainable(backbone trainBackbone: Bool, head: Bool = true) {
        if trainBackbone { backbone.unfreeze() } else { backbone.freeze() }
        backbone.logitScale.freeze()
        for m in [neck, decoder, proj] as [Module] { if head { m.unfreeze() } else { m.freeze() } }
    }

    /// Checks pixels [B, 3, S, S] (S a multiple of 32) and ids [B, L ≤ context].
    public func check(_ pixels: Tensor, ids: Tensor) throws {
        guard pixels.rank == 4, pixels.shape[1] == 3, pixels.shape[2] == pixels.shape[3], pixels.shape[2] % 32 == 0, pixels.shape[2] > 0 else {
            throw EncoderError.badInput(model: "CRIS", reason: "pixels \(pixels.shape) must be [B, 3, S, S] with S a multiple of 32")
        }
        guard ids.rank == 2, ids.shape[0] == pixels.shape[0], ids.shape[1] >= 1, ids.shape[1] <= config.text.contextLength else {
            throw EncoderError.badInput(model: "CRIS", reason: "ids \(ids.shape) must be [\(pixels.shape[0]), L ≤ \(config.text.contextLength)]")
        }
        guard ids.scalars.allSatisfy({ $0 >= 0 && $0 < Float(config.text.vocabSize) && $0 == $0.rounded() }) else {
            throw EncoderError.badInput(model: "CRIS", reason: "ids must be integers in 0..<\(config.text.vocabSize)")
        }
    }

    /// Logits [B, S, S] for pixels [B, 3, S, S] (CLIP-normalised) and ids [B, L] (0 = padding, EOT the largest id).
    public func callAsFunction(_ pixels: Tensor, ids: Tensor) -> Tensor { forward(pixels, ids: ids).logits }

    /// The whole forward. `trimPadding`: columns after the batch's last EOT are dropped first — the
    /// text mask is causal and padded words are masked out of the cross-attention, so nothing changes.
    public func forward(_ pixels: Tensor, ids: Tensor, trimPadding: Bool = true) -> CRISOutput {
        try! check(pixels, ids: ids)
        var ids = ids
        if trimPadding, let last = CLIPTextTransformer.eotPositions(ids).max(), last + 1 < ids.shape[1] {
            ids = ids.narrow(axis: 1, start: 0, length: last + 1)
        }
        let pad = Tensor(shape: ids.shape, scalars: ids.scalars.map { $0 == 0 ? 1 : 0 })
        let encode = { [self] () -> ((c3: Tensor, c4: Tensor, c5: Tensor), (words: Tensor, state: Tensor)) in
            (backbone.visual.crisFeatures(pixels), backbone.text.encodeWords(ids))
        }
        let v: (c3: Tensor, c4: Tensor, c5: Tensor), t: (words: Tensor, state: Tensor)
        if backboneTrains {
            (v, t) = encode()
        } else {
            // A frozen backbone uses its running statistics and records no tape.
            if backbone.isTraining { backbone.eval() }
            (v, t) = withNoGrad(encode)
        }
        let fq = neck(v.c3, v.c4, v.c5, state: t.state)
        let decoded = decoder(fq, words: t.words, pad: pad)
        let pred = proj(decoded, state: t.state)
        let S = pixels.shape[2]
        let logits = interpolate(pred, size: Size2D(S, S), mode: .bicubic, alignCorners: true).squeezed(1)
        return CRISOutput(logits: logits, pred: pred.squeezed(1), c3: v.c3, c4: v.c4, c5: v.c5, words: t.words, state: t.state,
                          fq: fq, decoded: decoded)
    }

    // MARK: Weights

    /// Builds the model and loads a CRIS / medvlsm checkpoint (see `load(state:file:)`).
    public static func load(_ config: CRISConfig, weights url: URL) throws -> CRIS {
        let m = CRIS(config)
        try m.load(state: EncoderWeights.read(url), file: url.path)
        return m
    }

    /// Loads a CRIS state dict strictly under its key names; a DDP `module.` prefix is dropped and
    /// BatchNorm `num_batches_tracked` counters left out by the converter are filled with 0.
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        var s: [String: Tensor] = [:]
        for (k, v) in state { s[k.hasPrefix("module.") ? String(k.dropFirst(7)) : k] = v }
        for (k, b) in namedBuffers() where k.hasSuffix("num_batches_tracked") && s[k] == nil { s[k] = Tensor(zeros: b.shape) }
        try EncoderWeights.load(self, s, file: file, model: "CRIS")
    }

    /// CRIS's initialisation from an OpenAI / open_clip RN CLIP state dict (`visual.*`, text keys at
    /// the top level): as CRIS's `load_state_dict(strict=False)`, every backbone key but
    /// `visual.attnpool.connect.*` comes from the file (the neck, decoder and projector keep their
    /// random init); the file's pool position grid is used as is (it is resized at run time).
    public func loadCLIPBackbone(state: [String: Tensor], file: String = "<state dict>") throws {
        var s = state
        for k in ["input_resolution", "context_length", "vocab_size"] { s[k] = nil }
        let mine = backbone.stateDict()
        var merged: [String: Tensor] = [:]
        for (k, v) in mine {
            if k.hasPrefix("visual.attnpool.connect.") { merged[k] = v; continue }
            if let f = s[k] { merged[k] = f }
            else if k.hasSuffix("num_batches_tracked") { merged[k] = v }
        }
        let unexpected = s.keys.filter { mine[$0] == nil }.sorted()
        if !unexpected.isEmpty {
            throw EncoderError.weightMismatch(file: file, model: "CRIS backbone (CLIP RN)",
                                              details: "unexpected keys: \(unexpected.prefix(8).joined(separator: ", "))")
        }
        try EncoderWeights.load(backbone, merged, file: file, model: "CRIS backbone (CLIP RN)")
    }
}
