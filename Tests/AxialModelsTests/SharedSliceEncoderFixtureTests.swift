import AxialNN
import AxialTensor
import AxialTestSupport
import Foundation
import Testing
@testable import AxialModels

/// The independent slice-encoder fixtures of Tools/goldens/make_encoder_goldens.py
/// (`Fixtures/encoders/{vit_timm, vit_moco_sincos, vit_conv_moco, mambaout_timm}.*`: timm models
/// with random weights, their state dict, and every stage's output), loaded under timm's keys.
@Suite struct SharedSliceEncoderFixtureTests {
    static func vit(_ f: SharedEncoderFixture) throws -> VisionTransformer {
        let c = f.config
        let conv = (c["embed_layer"] as? String)?.contains("ConvStem") == true
        let sincos = (c["library"] as? String)?.contains("sin-cos") == true
        let config = ViTConfig(imageSize: c["img_size"] as! Int, patchSize: c["patch_size"] as! Int, embedDim: c["embed_dim"] as! Int,
                               depth: c["depth"] as! Int, numHeads: c["num_heads"] as! Int, numClasses: c["num_classes"] as! Int,
                               globalPool: ViTConfig.Pool(rawValue: c["global_pool"] as! String)!,
                               positionEmbedding: sincos ? .sincos : .learned, stem: conv ? .conv : .patch)
        var g = RandomGenerator(seed: 11)
        let m = VisionTransformer(config, generator: &g)
        // The fixture drops BatchNorm's integer `num_batches_tracked` (not a float tensor); it does not
        // enter the eval-mode forward, so the module's own zero stands in for it.
        var weights = f.weights
        for (key, value) in m.stateDict() where key.hasSuffix("num_batches_tracked") && weights[key] == nil { weights[key] = value }
        try m.loadCheckpoint(weights)
        m.eval()
        return m
    }

    @Test(arguments: ["vit_timm", "vit_moco_sincos", "vit_conv_moco"])
    func vitMatchesEveryTap(_ name: String) throws {
        let f = try SharedEncoderFixture(name)
        let m = try Self.vit(f)
        let x = try #require(f.io["input.image"])
        #expect(relativeError(m.embed(x), try #require(f.io["output.pos_embedded"])) < 1e-5, "\(name) pos_embedded")
        let depth = m.config.depth
        let (tokens, taps) = m.forwardFeatures(x, intermediates: Array(0..<depth))
        for i in 0..<depth { #expect(relativeError(taps[i], try #require(f.io["output.blocks.\(i)"])) < 1e-4, "\(name) block \(i)") }
        #expect(relativeError(tokens, try #require(f.io["output.forward_features"])) < 1e-4, "\(name) forward_features")
        let feature = try #require(f.io["output.feature"])
        #expect(relativeError(m.encode(x), feature) < 1e-4, "\(name) feature")
        let fused = withNoGrad { m.encode(x) }
        #expect(relativeError(fused, feature) < 1e-4, "\(name) fused feature")
    }

    /// MoCo v3 ConvStem layer by layer: each stride-2 conv before its BatchNorm, the final 1×1 conv,
    /// and the flattened tokens.
    @Test func convStemPerLayerTaps() throws {
        let f = try SharedEncoderFixture("vit_conv_moco")
        let m = try Self.vit(f)
        let stem = try #require(m.patchEmbed as? ConvStem)
        let x = try #require(f.io["input.image"])
        var h = x
        for i in 0..<4 {
            let conv = stem.proj.convs[i](h)
            #expect(relativeError(conv, try #require(f.io["output.stem.\(3 * i)"])) < 1e-5, "stem conv \(3 * i)")
            h = relu(stem.proj.norms[i](conv))
        }
        let last = stem.proj.convs[4](h)
        #expect(relativeError(last, try #require(f.io["output.stem.12"])) < 1e-5, "stem conv 12")
        #expect(relativeError(stem(x), try #require(f.io["output.patch_embed"])) < 1e-5, "stem tokens")
    }

    @Test func mambaOutMatchesEveryStage() throws {
        let f = try SharedEncoderFixture("mambaout_timm")
        let c = f.config
        let config = MambaOutConfig(imageSize: 64, depths: c["depths"] as! [Int], dims: c["dims"] as! [Int], numClasses: c["num_classes"] as! Int)
        var g = RandomGenerator(seed: 12)
        let m = MambaOut(config, generator: &g)
        try m.loadCheckpoint(f.weights)
        let x = try #require(f.io["input.image"])
        #expect(relativeError(m.stem(x), try #require(f.io["output.stem"])) < 1e-5, "stem")
        let (features, taps) = m.forwardFeatures(x, intermediates: Array(0..<4))
        for i in 0..<4 { #expect(relativeError(taps[i], try #require(f.io["output.stages.\(i)"])) < 1e-4, "stage \(i)") }
        #expect(relativeError(features, try #require(f.io["output.forward_features"])) < 1e-4)
        #expect(relativeError(m.head.pooled(features), try #require(f.io["output.pooled"])) < 1e-4, "pooled")
        #expect(relativeError(m.forwardHead(features), try #require(f.io["output.feature"])) < 1e-4, "pre_logits")
        #expect(relativeError(m.forwardHead(features, preLogits: false), try #require(f.io["output.logits"])) < 1e-4, "logits")
    }

    /// The comparison helpers fail on NaN and Inf (Swift's `max(d, .nan)` is `d`, which used to let
    /// an all-NaN output pass every model test).
    @Test func aNaNOutputFailsTheComparisons() throws {
        let f = try SharedEncoderFixture("vit_timm")
        let expected = try #require(f.io["output.feature"])
        let nan = Tensor(repeating: .nan, shape: expected.shape)
        #expect(!(relativeError(nan, expected) < 1e-4))
        #expect(!(encoderError(nan, expected) < 1e-4))
        #expect(closeness(nan, expected, atol: 1, rtol: 1) != nil)
        var oneInf = expected.scalars; oneInf[3] = .infinity
        #expect(closeness(Tensor(shape: expected.shape, scalars: oneInf), expected, atol: 1, rtol: 1)?.contains("element 3") == true)
        #expect(!(maxAbsDifference(oneInf, expected.scalars) < 1e3))
        #expect(firstNonFinite(oneInf) == "element 3 is inf")
        // and a model whose weights are NaN produces an output that fails
        let m = try Self.vit(f)
        let w = try #require(m.norm?.weight)
        w.assign(Tensor(repeating: .nan, shape: w.value.shape))
        let x = try #require(f.io["input.image"])
        #expect(!(relativeError(m.encode(x), expected) < 1e-4))
        #expect(!(relativeError(expected, expected) > 0))
    }
}
