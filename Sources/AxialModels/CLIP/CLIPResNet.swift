import AxialNN
import AxialTensor
import Foundation

// CLIP ModifiedResNet (OpenAI RN50 family) with open_clip's names (keys under `visual.` in a CLIP
// checkpoint):
//
//   stem: conv1 3×3 s2 → bn1 → ReLU → conv2 3×3 → bn2 → ReLU → conv3 3×3 → bn3 → ReLU → avgpool 2
//   layer1…4: Bottleneck blocks (1×1 → 3×3 → [avgpool s] → 1×1 ×4, BN after each conv); strides
//       1, 2, 2, 2 done by average pooling ("anti-aliased" strides), the shortcut likewise
//       (downsample = avgpool s → conv 1×1 → BN, keys `downsample.0/1`)
//   attnpool: tokens = [mean; HW positions] + positional_embedding, multi-head attention with q
//       from token 0 (`q_proj`, `k_proj`, `v_proj`, `c_proj`) → the global feature [B, out]
//
// PsPG's dense tokens (REFERENCE §5): c_proj(v_proj(tokens)) for all 1 + HW tokens (50 at 224²),
// token 0 then replaced by the global feature.

/// Hyper-parameters (open_clip `CLIPVisionCfg` with `layers` as a 4-tuple).
public struct CLIPResNetConfig: Codable, Sendable, Equatable {
    public var layers: [Int]
    public var width: Int
    public var heads: Int
    public var outputDimensions: Int
    public var imageSize: Int
    public init(layers: [Int], width: Int = 64, heads: Int, outputDimensions: Int, imageSize: Int = 224) {
        precondition(layers.count == 4, "CLIPResNetConfig: layers \(layers) must have 4 stages")
        self.layers = layers; self.width = width; self.heads = heads; self.outputDimensions = outputDimensions; self.imageSize = imageSize
    }
    /// Channels entering the attention pool (width · 32).
    public var embedWidth: Int { width * 32 }
    /// Positions per side at the attention pool (imageSize / 32).
    public var gridSize: Int { imageSize / 32 }

    /// OpenAI RN50: layers (3, 4, 6, 3), width 64, 32 heads, 1024-d output, 224² → 7×7 (+1) tokens.
    public static let rn50 = CLIPResNetConfig(layers: [3, 4, 6, 3], width: 64, heads: 32, outputDimensions: 1024)
    /// OpenAI RN101: layers (3, 4, 23, 3), 512-d output.
    public static let rn101 = CLIPResNetConfig(layers: [3, 4, 23, 3], width: 64, heads: 32, outputDimensions: 512)
}

/// `downsample`: avgpool(stride) (no parameters, key "-1") → conv 1×1 (`0`) → BN (`1`).
public final class CLIPDownsample: Module, UnaryLayer {
    public let stride: Int
    public let conv: Conv2d
    public let bn: BatchNorm
    init(_ inChannels: Int, _ outChannels: Int, stride: Int, generator: inout RandomGenerator) {
        self.stride = stride
        conv = Conv2d(inChannels, outChannels, kernelSize: 1, bias: false, generator: &generator)
        bn = BatchNorm(outChannels)
        super.init()
    }
    override public func namedChildren() -> [(String, ModuleChild)] { [("0", .module(conv)), ("1", .module(bn))] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        bn(conv(stride > 1 ? avgPool2d(x, kernelSize: Size2D(stride, stride)) : x))
    }
}

/// open_clip `Bottleneck` (expansion 4).
public final class CLIPBottleneck: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm
    public let conv2: Conv2d, bn2: BatchNorm
    public let conv3: Conv2d, bn3: BatchNorm
    public let downsample: CLIPDownsample?
    public let stride: Int

    init(_ inplanes: Int, _ planes: Int, stride: Int, generator: inout RandomGenerator) {
        self.stride = stride
        conv1 = Conv2d(inplanes, planes, kernelSize: 1, bias: false, generator: &generator); bn1 = BatchNorm(planes)
        conv2 = Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false, generator: &generator); bn2 = BatchNorm(planes)
        conv3 = Conv2d(planes, planes * 4, kernelSize: 1, bias: false, generator: &generator); bn3 = BatchNorm(planes * 4)
        downsample = (stride > 1 || inplanes != planes * 4) ? CLIPDownsample(inplanes, planes * 4, stride: stride, generator: &generator) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var out = relu(bn1(conv1(x)))
        out = relu(bn2(conv2(out)))
        if stride > 1 { out = avgPool2d(out, kernelSize: Size2D(stride, stride)) }
        out = bn3(conv3(out))
        return relu(out + (downsample.map { $0(x) } ?? x))
    }
}

/// CRIS's residual around its spatial attention pool: conv 1×1 (no bias) → BN (keys `0.weight`, `1.*`).
public final class CLIPPoolConnect: Module, UnaryLayer {
    public let conv: Conv2d
    public let bn: BatchNorm
    init(_ inChannels: Int, _ outChannels: Int, generator: inout RandomGenerator) {
        conv = Conv2d(inChannels, outChannels, kernelSize: 1, bias: false, generator: &generator)
        bn = BatchNorm(outChannels)
        super.init()
    }
    override public func namedChildren() -> [(String, ModuleChild)] { [("0", .module(conv)), ("1", .module(bn))] }
    public func callAsFunction(_ x: Tensor) -> Tensor { bn(conv(x)) }
}

/// open_clip `AttentionPool2d` (keys `positional_embedding` [HW + 1, C], `q_proj`, `k_proj`, `v_proj`, `c_proj`;
/// with `connect`, CRIS's `attnpool.connect.{0,1}` too — see `spatial`).
public final class CLIPAttentionPool: Module {
    public let positionalEmbedding: Parameter
    public let kProj: Linear, qProj: Linear, vProj: Linear, cProj: Linear
    public let heads: Int
    /// CRIS only (nil in CLIP): the 1×1 conv + BN residual of the spatial pool.
    public let connect: CLIPPoolConnect?

    init(grid: Int, width: Int, heads: Int, outputDimensions: Int, connect: Bool = false, generator: inout RandomGenerator) {
        positionalEmbedding = Parameter(Tensor.normal([grid * grid + 1, width], generator: &generator) / Float(width).squareRoot())
        kProj = Linear(width, width, generator: &generator)
        qProj = Linear(width, width, generator: &generator)
        vProj = Linear(width, width, generator: &generator)
        cProj = Linear(width, outputDimensions, generator: &generator)
        self.heads = heads
        self.connect = connect ? CLIPPoolConnect(width, outputDimensions, generator: &generator) : nil
        super.init()
    }

    /// CRIS's pool (DerrickWang005/CRIS.pytorch model/clip.py `AttentionPool2d.forward`): no mean token;
    /// the g×g grid rows of `positional_embedding` (row 0 unused) resized to H×W (bicubic,
    /// align_corners=False, not antialiased) and added; every position attends to every position
    /// (q/k/v projections, c_proj); + connect(x); ReLU. [B, C, H, W] → [B, out, H, W]. Needs `connect`.
    public func spatial(_ x: Tensor) -> Tensor {
        guard let connect else { preconditionFailure("CLIPAttentionPool.spatial: built without connect (CRIS's pool)") }
        precondition(x.rank == 4, "CLIP spatial pool: input \(x.shape) must be [B, C, H, W]")
        let B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
        let rows = positionalEmbedding.shape[0] - 1
        let g = Int(Double(rows).squareRoot().rounded())
        precondition(g * g == rows && positionalEmbedding.shape[1] == C,
                     "CLIP spatial pool: positional embedding \(positionalEmbedding.shape) for features \(x.shape)")
        let grid = positionalEmbedding.value.narrow(axis: 0, start: 1, length: rows).reshaped([1, g, g, C]).permuted([0, 3, 1, 2])
        let pe = (H == g && W == g ? grid : interpolate(grid, size: Size2D(H, W), mode: .bicubic, alignCorners: false))
            .reshaped([1, C, H * W])
        let t = (x.reshaped([B, C, H * W]) + pe).transposed(1, 2)                 // [B, HW, C]
        let y = cProj(multiHeadAttention(qProj(t), kProj(t), vProj(t), heads: heads))  // [B, HW, out]
        let out = y.shape[2]
        return relu(y.transposed(1, 2).reshaped([B, out, H, W]) + connect(x))
    }
    override public var propertyKeys: [String: String] { ["kProj": "k_proj", "qProj": "q_proj", "vProj": "v_proj", "cProj": "c_proj"] }

    /// [B, C, H, W] → the pool's input tokens [B, 1 + HW, C]: [mean; positions] + positional_embedding.
    public func tokens(_ x: Tensor) -> Tensor {
        let B = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3]
        precondition(HW + 1 == positionalEmbedding.shape[0],
                     "CLIP attention pool: feature map \(x.shape) needs \(HW + 1) position rows, has \(positionalEmbedding.shape[0])")
        let t = x.reshaped([B, C, HW]).transposed(1, 2)                     // [B, HW, C]
        return concat([t.mean(axis: 1, keepDims: true), t], axis: 1) + positionalEmbedding.value
    }

    /// The global feature [B, out] (attention output at token 0).
    public func callAsFunction(_ x: Tensor) -> Tensor { pool(tokens(x)) }

    /// From the pool's tokens [B, 1 + HW, C]: multi-head attention with q from token 0 → c_proj.
    public func pool(_ t: Tensor) -> Tensor {
        let q = qProj(t.narrow(axis: 1, start: 0, length: 1))
        return cProj(multiHeadAttention(q, kProj(t), vProj(t), heads: heads)).squeezed(1)
    }

    /// c_proj(v_proj(t)) for every token: [B, 1 + HW, out] (PsPG's dense tokens before token 0 is replaced).
    public func denseTokens(_ t: Tensor) -> Tensor { cProj(vProj(t)) }
}

/// open_clip / OpenAI `ModifiedResNet` (keys under `visual.`).
public final class CLIPModifiedResNet: Module {
    /// How token 0 of the dense tokens is filled.
    public enum GlobalToken: Sendable {
        /// The global feature as the attention pool returns it.
        case raw
        /// L2-normalised, as PsPG passes it (its `encode_image` normalises before the splice).
        case normalized
    }

    public let config: CLIPResNetConfig
    public let conv1: Conv2d, bn1: BatchNorm
    public let conv2: Conv2d, bn2: BatchNorm
    public let conv3: Conv2d, bn3: BatchNorm
    public let layer1: [CLIPBottleneck], layer2: [CLIPBottleneck], layer3: [CLIPBottleneck], layer4: [CLIPBottleneck]
    public let attnpool: CLIPAttentionPool

    /// `spatialPool`: CRIS's variant of the attention pool (with `attnpool.connect`; see
    /// `CLIPAttentionPool.spatial` and `stageOutputs`).
    public init(_ c: CLIPResNetConfig, spatialPool: Bool = false, generator: inout RandomGenerator) {
        config = c
        let w = c.width
        conv1 = Conv2d(3, w / 2, kernelSize: 3, stride: 2, padding: 1, bias: false, generator: &generator); bn1 = BatchNorm(w / 2)
        conv2 = Conv2d(w / 2, w / 2, kernelSize: 3, padding: 1, bias: false, generator: &generator); bn2 = BatchNorm(w / 2)
        conv3 = Conv2d(w / 2, w, kernelSize: 3, padding: 1, bias: false, generator: &generator); bn3 = BatchNorm(w)
        var inplanes = w
        func stage(_ planes: Int, _ blocks: Int, _ stride: Int, _ g: inout RandomGenerator) -> [CLIPBottleneck] {
            var out = [CLIPBottleneck(inplanes, planes, stride: stride, generator: &g)]
            inplanes = planes * 4
            for _ in 1..<max(blocks, 1) { out.append(CLIPBottleneck(inplanes, planes, stride: 1, generator: &g)) }
            return out
        }
        layer1 = stage(w, c.layers[0], 1, &generator)
        layer2 = stage(w * 2, c.layers[1], 2, &generator)
        layer3 = stage(w * 4, c.layers[2], 2, &generator)
        layer4 = stage(w * 8, c.layers[3], 2, &generator)
        attnpool = CLIPAttentionPool(grid: c.gridSize, width: c.embedWidth, heads: c.heads, outputDimensions: c.outputDimensions,
                                     connect: spatialPool, generator: &generator)
        super.init()
    }

    public convenience init(_ c: CLIPResNetConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(c, generator: &g)
    }

    /// Stem and the four stages: [B, 3, S, S] → layer4 output [B, 32·width, S/32, S/32].
    public func features(_ images: Tensor) -> Tensor { stageOutputs(images)[3] }

    /// The outputs of layer1…layer4: [B, 4w, S/4], [B, 8w, S/8], [B, 16w, S/16], [B, 32w, S/32].
    public func stageOutputs(_ images: Tensor) -> [Tensor] {
        precondition(images.rank == 4 && images.shape[1] == 3, "CLIP ResNet: images \(images.shape) must be [B, 3, H, W]")
        var x = relu(bn1(conv1(images)))
        x = relu(bn2(conv2(x)))
        x = relu(bn3(conv3(x)))
        x = avgPool2d(x, kernelSize: 2)
        var outs: [Tensor] = []
        for stage in [layer1, layer2, layer3, layer4] {
            for block in stage { x = block(x) }
            outs.append(x)
        }
        return outs
    }

    /// CRIS's `encode_image` (needs `spatialPool`): C3 = layer2, C4 = layer3, C5 = the spatial pool
    /// of layer4 ([B, out, S/32, S/32]).
    public func crisFeatures(_ images: Tensor) -> (c3: Tensor, c4: Tensor, c5: Tensor) {
        let s = stageOutputs(images)
        return (s[1], s[2], attnpool.spatial(s[3]))
    }

    /// open_clip `encode_image` before L2 normalisation: the attention pool's output [B, out].
    public func callAsFunction(_ images: Tensor) -> Tensor { attnpool(features(images)) }

    /// The global feature and PsPG's dense tokens [B, 1 + HW, out] (50 at 224²): c_proj(v_proj(·))
    /// of every pool token, token 0 replaced by the global feature (`globalToken`).
    public func encodeDense(_ images: Tensor, globalToken: GlobalToken = .raw) -> (global: Tensor, tokens: Tensor) {
        let t = attnpool.tokens(features(images))
        let global = attnpool.pool(t)
        let dense = attnpool.denseTokens(t)
        let first = globalToken == .raw ? global : l2Normalize(global, axis: -1)
        let tokens = concat([first.unsqueezed(1), dense.narrow(axis: 1, start: 1, length: dense.shape[1] - 1)], axis: 1)
        return (global, tokens)
    }

    // MARK: Weights

    /// The one place names are adapted: keys under `prefix` (default `visual.`, as in a CLIP
    /// checkpoint; pass "" for a bare ModifiedResNet state dict); BatchNorm `num_batches_tracked`
    /// (unused in eval) is filled with 0 where the file leaves it out.
    public func remap(_ state: [String: Tensor], prefix: String = "visual.") -> [String: Tensor] {
        var s = EncoderWeights.subtree(state, prefix: prefix)
        for (k, b) in namedBuffers() where k.hasSuffix("num_batches_tracked") && s[k] == nil { s[k] = Tensor(zeros: b.shape) }
        return s
    }

    /// Loads the `visual.*` keys of an OpenAI / open_clip RN checkpoint (`.safetensors`; OpenAI's
    /// `RN50.pt` through Tools/convert_weights.py first). Text-tower keys are ignored.
    public static func load(_ config: CLIPResNetConfig = .rn50, weights url: URL, prefix: String = "visual.") throws -> CLIPModifiedResNet {
        let m = CLIPModifiedResNet(config)
        let all = try EncoderWeights.read(url)
        let s = m.remap(all, prefix: prefix)
        if s.isEmpty { throw EncoderError.noKeys(file: url.path, prefix: prefix, sample: all.keys.sorted()) }
        try EncoderWeights.load(m, s, file: url.path, model: "CLIP ModifiedResNet")
        m.eval()
        return m
    }
}
