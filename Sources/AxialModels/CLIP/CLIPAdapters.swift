import AxialNN
import AxialTensor
import Foundation

// MVFA / MLA-LP multi-level adapters on a frozen CLIP image tower (REFERENCE.md §2).
//
//   after block ℓ ∈ levels (1-based):  (s, s') = seg_ℓ(x), (d, d') = det_ℓ(x)
//                                       x ← 0.8·x + 0.1·s' + 0.1·d'
//   adapter:  mid = LeakyReLU(W₁ x)   (W₁ [bottleneck, width], no bias)
//             out = LeakyReLU(W₂ mid) (W₂ [width, bottleneck], no bias)
//   features: the seg / det `mid` rows of the patch tokens (class token dropped) per level.
//
// Keys as the reference checkpoints: `seg_adapters.<k>.fc1.0.weight`, `seg_adapters.<k>.fc2.0.weight`,
// `det_adapters.<k>.*` (k = index of the level). The CLIP tower stays frozen; gradients flow through
// its blocks to the adapters of earlier levels. Only the blocks up to the last level are run.

/// Which blocks carry adapters and how wide the bottleneck is.
public struct CLIPAdapterConfig: Codable, Sendable, Equatable {
    /// Blocks (1-based) after which a seg/det adapter pair sits: MVFA 6, 12, 18, 24 on ViT-L/14.
    public var levels: [Int]
    /// Bottleneck width = the patch-feature width; it must equal the CLIP joint embedding width
    /// (the features are compared with text embeddings): 768 for ViT-L/14.
    public var bottleneck: Int
    /// x ← keep·x + adapterWeight·(seg + det): 0.8 and 0.1 in MVFA.
    public var keep: Float = 0.8
    public var adapterWeight: Float = 0.1

    public init(levels: [Int], bottleneck: Int, keep: Float = 0.8, adapterWeight: Float = 0.1) {
        self.levels = levels; self.bottleneck = bottleneck; self.keep = keep; self.adapterWeight = adapterWeight
    }

    /// The quarter points of the tower (6/12/18/24 for 24 blocks, 1/2/3/4 for 4), bottleneck = the
    /// joint embedding width.
    public static func standard(for clip: CLIPConfig) -> CLIPAdapterConfig {
        let L = clip.vision.layers
        let levels = L >= 4 ? (1...4).map { $0 * L / 4 } : Array(1...L)
        return CLIPAdapterConfig(levels: levels, bottleneck: clip.embedDimensions)
    }

    /// Checks the levels against a tower of `layers` blocks; a readable reason or nil.
    public func problem(layers: Int) -> String? {
        if levels.isEmpty { return "no adapter levels" }
        if levels != levels.sorted() || Set(levels).count != levels.count { return "adapter levels \(levels) must be increasing" }
        if levels.first! < 1 || levels.last! > layers { return "adapter levels \(levels) outside blocks 1…\(layers)" }
        if bottleneck < 1 { return "bottleneck \(bottleneck) must be positive" }
        return nil
    }
}

/// One adapter: fc1 = Linear(width→bottleneck, no bias) + LeakyReLU, fc2 = Linear(bottleneck→width,
/// no bias) + LeakyReLU (keys `fc1.0.weight`, `fc2.0.weight`, as nn.Sequential(Linear, LeakyReLU)).
public final class CLIPAdapter: Module {
    public let fc1: Sequential
    public let fc2: Sequential

    public init(width: Int, bottleneck: Int, generator: inout RandomGenerator) {
        fc1 = Sequential(Linear(width, bottleneck, bias: false, generator: &generator))
        fc2 = Sequential(Linear(bottleneck, width, bias: false, generator: &generator))
        super.init()
    }

    /// x [B, L, width] → (bottleneck features [B, L, bottleneck], output [B, L, width]).
    public func callAsFunction(_ x: Tensor) -> (mid: Tensor, out: Tensor) {
        let mid = leakyRelu(fc1(x))
        return (mid, leakyRelu(fc2(mid)))
    }
}

/// Bottleneck patch features per level: `seg[k]`, `det[k]` are [B, N, bottleneck] (N = grid², no class token).
public struct AdaptedTokens {
    public var seg: [Tensor]
    public var det: [Tensor]
}

/// The seg / det adapter pairs of all levels (keys `seg_adapters.*`, `det_adapters.*`).
public final class CLIPAdapters: Module {
    public let config: CLIPAdapterConfig
    public let segAdapters: [CLIPAdapter]
    public let detAdapters: [CLIPAdapter]

    public init(_ config: CLIPAdapterConfig, width: Int, generator: inout RandomGenerator) {
        self.config = config
        segAdapters = config.levels.map { _ in CLIPAdapter(width: width, bottleneck: config.bottleneck, generator: &generator) }
        detAdapters = config.levels.map { _ in CLIPAdapter(width: width, bottleneck: config.bottleneck, generator: &generator) }
        super.init()
    }

    /// A block hook applying the adapters at their levels and collecting the bottleneck tokens
    /// (all tokens, class token first) into `sink`.
    public func hook(into sink: AdapterSink) -> CLIPBlockHook {
        let levels = config.levels, keep = config.keep, w = config.adapterWeight
        return { [self] block, x in
            guard let k = levels.firstIndex(of: block) else { return x }
            let s = segAdapters[k](x), d = detAdapters[k](x)
            sink.seg.append(s.mid); sink.det.append(d.mid)
            return x * keep + (s.out + d.out) * w
        }
    }

    /// Runs the frozen tower on images [B, 3, S, S] up to the last level with the adapters inserted.
    public func callAsFunction(_ images: Tensor, visual: CLIPVisionTransformer) -> AdaptedTokens {
        let sink = AdapterSink()
        _ = visual.transformer(visual.embed(images), upTo: config.levels.last!, hook: hook(into: sink))
        func patches(_ t: Tensor) -> Tensor { t.narrow(axis: 1, start: 1, length: t.shape[1] - 1) }
        return AdaptedTokens(seg: sink.seg.map(patches), det: sink.det.map(patches))
    }
}

/// Collects the adapters' bottleneck outputs during one forward.
public final class AdapterSink: @unchecked Sendable {
    public var seg: [Tensor] = []
    public var det: [Tensor] = []
    public init() {}
}
