import AxialNN
import AxialTensor
import Foundation

// MambaOut (Yu & Wang 2024) with timm's parameter names (timm/models/mambaout.py, default
// variants with the MLP head). Activations are channels-last (NHWC) between layers, as timm:
//
//   x [B, 3, H, W] ─stem: conv1 3×3 s2 → LN → GELU → conv2 3×3 s2 → LN─▶ [B, H/4, W/4, d0]
//   ─stages.i: (i > 0: downsample conv 3×3 s2 → LN) then gated CNN blocks─▶ [B, H/32, W/32, d3]
//   head: mean over (H, W) → norm ─▶ pooled [B, d3]  (timm num_features)
//         → pre_logits.fc (d3 → 4·d3) → GELU → pre_logits.norm ─▶ feature [B, 4·d3]
//         → fc (classes).
//
// Gated CNN block: y = x + fc2(GELU(g) · [i, dwconv7×7(c)]) where [g, i, c] = split(fc1(norm(x)))
// with widths (hidden, hidden − conv, conv), hidden = int(8/3 · dim), conv = int(conv_ratio · dim).
// LayerNorm eps 1e-6 (timm.layers.LayerNorm). timm's forward_head(pre_logits=True) returns the
// 4·d3 vector AFTER the head's MLP block (femto/kobe 1152, tiny/small 2304, base 3072), not the
// pooled stage width (288 / 576 / 768 = timm `num_features`); `FeatureMode` picks either.

/// Configuration of a MambaOut model.
public struct MambaOutConfig: Codable, Sendable, Equatable {
    /// What `encode` returns.
    public enum FeatureMode: String, Codable, Sendable {
        /// timm forward_head(pre_logits=True): after head.pre_logits (fc → GELU → norm), 4·d3 wide.
        case preLogits = "pre_logits"
        /// The pooled, normed last-stage feature (timm `num_features` wide).
        case pooled
    }
    public var imageSize: Int = 224
    public var inChannels: Int = 3
    public var depths: [Int]
    public var dims: [Int]
    public var expansionRatio: Double = 8.0 / 3.0
    public var kernelSize: Int = 7
    public var convRatio: Double = 1.0
    public var headMLPRatio: Int = 4
    public var layerNormEps: Float = 1e-6
    public var numClasses: Int = 0
    public var featureMode: FeatureMode = .preLogits

    public init(imageSize: Int = 224, inChannels: Int = 3, depths: [Int], dims: [Int], expansionRatio: Double = 8.0 / 3.0,
                kernelSize: Int = 7, convRatio: Double = 1.0, headMLPRatio: Int = 4, layerNormEps: Float = 1e-6,
                numClasses: Int = 0, featureMode: FeatureMode = .preLogits) {
        self.imageSize = imageSize; self.inChannels = inChannels; self.depths = depths; self.dims = dims
        self.expansionRatio = expansionRatio; self.kernelSize = kernelSize; self.convRatio = convRatio
        self.headMLPRatio = headMLPRatio; self.layerNormEps = layerNormEps; self.numClasses = numClasses
        self.featureMode = featureMode
    }

    /// Width of the pooled last stage (timm `num_features`).
    public var numFeatures: Int { dims.last! }
    /// Width of head.pre_logits (timm `head_hidden_size`).
    public var headHiddenSize: Int { headMLPRatio * dims.last! }
    /// Width of `encode`'s output.
    public var featureDimension: Int { featureMode == .preLogits ? headHiddenSize : numFeatures }

    public static let femto = MambaOutConfig(depths: [3, 3, 9, 3], dims: [48, 96, 192, 288])
    public static let kobe = MambaOutConfig(depths: [3, 3, 15, 3], dims: [48, 96, 192, 288])
    public static let tiny = MambaOutConfig(depths: [3, 3, 9, 3], dims: [96, 192, 384, 576])
    public static let small = MambaOutConfig(depths: [3, 4, 27, 3], dims: [96, 192, 384, 576])
    public static let base = MambaOutConfig(depths: [3, 4, 27, 3], dims: [128, 256, 512, 768])
    /// Tiny configuration for tests and the demo.
    public static let test = MambaOutConfig(imageSize: 32, depths: [1, 1, 2, 1], dims: [8, 16, 24, 32])
}

/// Stem: conv1 (C → d0/2, 3×3 s2 p1) → norm1 (channels-last) → GELU → conv2 (→ d0, 3×3 s2 p1) → norm2.
/// Input NCHW, output NHWC.
public final class MambaOutStem: Module {
    public let conv1: Conv2d
    public let norm1: LayerNorm
    public let conv2: Conv2d
    public let norm2: LayerNorm
    init(_ c: MambaOutConfig, generator: inout RandomGenerator) {
        let d = c.dims[0]
        conv1 = Conv2d(c.inChannels, d / 2, kernelSize: 3, stride: 2, padding: 1, generator: &generator)
        norm1 = LayerNorm(d / 2, eps: c.layerNormEps)
        conv2 = Conv2d(d / 2, d, kernelSize: 3, stride: 2, padding: 1, generator: &generator)
        norm2 = LayerNorm(d, eps: c.layerNormEps)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = gelu(norm1(conv1(x).permuted([0, 2, 3, 1])).permuted([0, 3, 1, 2]))
        return norm2(conv2(h).permuted([0, 2, 3, 1]))
    }
}

/// Downsample between stages: conv 3×3 s2 p1 on NCHW, then a channels-last LayerNorm (NHWC in/out).
public final class MambaOutDownsample: Module {
    public let conv: Conv2d
    public let norm: LayerNorm
    init(_ cin: Int, _ cout: Int, eps: Float, generator: inout RandomGenerator) {
        conv = Conv2d(cin, cout, kernelSize: 3, stride: 2, padding: 1, generator: &generator)
        norm = LayerNorm(cout, eps: eps)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        norm(conv(x.permuted([0, 3, 1, 2])).permuted([0, 2, 3, 1]))
    }
}

/// Gated CNN block (NHWC in/out): x + fc2(GELU(g) · [i, dwconv(c)]), [g, i, c] = split(fc1(norm(x))).
public final class GatedConvBlock: Module {
    public let norm: LayerNorm
    public let fc1: Linear
    public let conv: Conv2d
    public let fc2: Linear
    public let hidden: Int, convChannels: Int

    init(dim: Int, _ c: MambaOutConfig, generator: inout RandomGenerator) {
        hidden = Int(c.expansionRatio * Double(dim))
        convChannels = Int(c.convRatio * Double(dim))
        norm = LayerNorm(dim, eps: c.layerNormEps)
        fc1 = Linear(dim, 2 * hidden, generator: &generator)
        conv = Conv2d(convChannels, convChannels, kernelSize: Size2D(c.kernelSize, c.kernelSize), padding: Size2D(c.kernelSize / 2, c.kernelSize / 2),
                      groups: convChannels, generator: &generator)
        fc2 = Linear(hidden, dim, generator: &generator)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = fc1(norm(x))
        let parts = h.split(sizes: [hidden, hidden - convChannels, convChannels], axis: -1)
        let cOut = conv(parts[2].permuted([0, 3, 1, 2])).permuted([0, 2, 3, 1])
        let ic = hidden == convChannels ? cOut : concat([parts[1], cOut], axis: -1)
        return x + fc2(gelu(parts[0]) * ic)
    }
}

/// A stage: optional downsample, then blocks (keys `downsample.*`, `blocks.M.*`).
public final class MambaOutStage: Module {
    public let downsample: MambaOutDownsample?
    public let blocks: [GatedConvBlock]
    init(dim: Int, dimOut: Int, depth: Int, downsample: Bool, _ c: MambaOutConfig, generator: inout RandomGenerator) {
        self.downsample = downsample ? MambaOutDownsample(dim, dimOut, eps: c.layerNormEps, generator: &generator) : nil
        var bs: [GatedConvBlock] = []
        for _ in 0..<depth { bs.append(GatedConvBlock(dim: dimOut, c, generator: &generator)) }
        blocks = bs
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = downsample.map { $0(x) } ?? x
        for b in blocks { h = b(h) }
        return h
    }
}

/// timm `MlpHead`: mean over (H, W) → norm → pre_logits (fc → GELU → norm) → fc.
public final class MambaOutHead: Module {
    public final class PreLogits: Module {
        public let fc: Linear
        public let norm: LayerNorm
        init(_ d: Int, _ hidden: Int, eps: Float, generator: inout RandomGenerator) {
            fc = Linear(d, hidden, generator: &generator)
            norm = LayerNorm(hidden, eps: eps)
            super.init()
        }
    }
    public let norm: LayerNorm
    public let preLogits: PreLogits
    public let fc: Linear?
    init(_ c: MambaOutConfig, generator: inout RandomGenerator) {
        norm = LayerNorm(c.numFeatures, eps: c.layerNormEps)
        preLogits = PreLogits(c.numFeatures, c.headHiddenSize, eps: c.layerNormEps, generator: &generator)
        fc = c.numClasses > 0 ? Linear(c.headHiddenSize, c.numClasses, generator: &generator) : nil
        super.init()
    }
    /// Pooled + normed [B, d3].
    public func pooled(_ x: Tensor) -> Tensor { norm(x.mean(axes: [1, 2])) }
    /// After the MLP block [B, 4·d3].
    public func preLogitsFeature(_ x: Tensor) -> Tensor { preLogits.norm(gelu(preLogits.fc(pooled(x)))) }
}

/// MambaOut (timm `MambaOut` with the default `MlpHead`).
public final class MambaOut: Module, ImageEncoder {
    public let config: MambaOutConfig
    public let stem: MambaOutStem
    public let stages: [MambaOutStage]
    public let head: MambaOutHead

    public init(_ config: MambaOutConfig, generator: inout RandomGenerator) {
        precondition(config.depths.count == config.dims.count && !config.dims.isEmpty, "MambaOutConfig: depths \(config.depths) vs dims \(config.dims)")
        self.config = config
        stem = MambaOutStem(config, generator: &generator)
        var ss: [MambaOutStage] = []
        var prev = config.dims[0]
        for i in 0..<config.dims.count {
            ss.append(MambaOutStage(dim: prev, dimOut: config.dims[i], depth: config.depths[i], downsample: i > 0, config, generator: &generator))
            prev = config.dims[i]
        }
        stages = ss
        head = MambaOutHead(config, generator: &generator)
        super.init()
    }

    public convenience init(_ config: MambaOutConfig) {
        var g = DefaultGenerator.splitOff()
        self.init(config, generator: &g)
    }

    public var featureDimension: Int { config.featureDimension }
    public var inputSize: Int { config.imageSize }

    /// timm `forward_features`: [B, H/32, W/32, d3] (NHWC); `intermediates`: stage indices whose
    /// outputs (NHWC) are returned too.
    public func forwardFeatures(_ x: Tensor, intermediates: [Int] = []) -> (features: Tensor, intermediates: [Tensor]) {
        precondition(x.rank == 4 && x.shape[1] == config.inChannels, "MambaOut: input \(x.shape) must be [B, \(config.inChannels), H, W]")
        var h = stem(x)
        var taps: [Tensor] = []
        for (i, s) in stages.enumerated() {
            h = s(h)
            if intermediates.contains(i) { taps.append(h) }
        }
        return (h, taps)
    }

    /// timm `forward_head`: pre_logits → [B, 4·d3]; else the logits (needs a classifier).
    public func forwardHead(_ features: Tensor, preLogits: Bool = true) -> Tensor {
        let f = head.preLogitsFeature(features)
        if !preLogits, let fc = head.fc { return fc(f) }
        return f
    }

    /// The slice feature (per `config.featureMode`).
    public func encode(_ images: Tensor) -> Tensor {
        let f = forwardFeatures(images).features
        return config.featureMode == .preLogits ? head.preLogitsFeature(f) : head.pooled(f)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { forwardHead(forwardFeatures(x).features, preLogits: head.fc == nil) }

    /// Maps checkpoint keys onto timm's names (the one place for MambaOut): original-repo
    /// checkpoints (`downsample_layers.*`, `stages.i.j.*`, `norm.*`, `head.fc1/norm/fc2`) are renamed
    /// as timm's `checkpoint_filter_fn` does; `head.fc.*` is dropped when there is no classifier.
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        let original = state["stem.conv1.weight"] == nil
        for (k0, v) in state {
            var k = k0
            if original {
                k = k.replacingOccurrences(of: "downsample_layers.0.", with: "stem.")
                k = k.replacingOccurrences(of: #"^stages\.([0-9]+)\.([0-9]+)"#, with: "stages.$1.blocks.$2", options: .regularExpression)
                k = k.replacingOccurrences(of: #"^downsample_layers\.([0-9]+)"#, with: "stages.$1.downsample", options: .regularExpression)
                if k.hasPrefix("norm.") { k = "head." + k }
                else if k.hasPrefix("head.") {
                    k = k.replacingOccurrences(of: "head.fc1.", with: "head.pre_logits.fc.")
                        .replacingOccurrences(of: "head.norm.", with: "head.pre_logits.norm.")
                        .replacingOccurrences(of: "head.fc2.", with: "head.fc.")
                }
            }
            if head.fc == nil && k.hasPrefix("head.fc.") { continue }
            out[k] = v
        }
        return out
    }
}
