import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

func goldenMambaOut(featureMode: MambaOutConfig.FeatureMode = .preLogits) throws -> MambaOut {
    let g = EncoderGoldens.mambaout
    let j = g.config("mambaout_test")
    let c = MambaOutConfig(imageSize: j["image_size"] as! Int, depths: j["depths"] as! [Int], dims: j["dims"] as! [Int],
                           numClasses: j["num_classes"] as! Int, featureMode: featureMode)
    var gen = RandomGenerator(seed: 3)
    let m = MambaOut(c, generator: &gen)
    try m.loadCheckpoint(g.params("mambaout_test"))
    m.eval()
    return m
}

@Suite struct MambaOutTests {
    @Test(arguments: [true, false])
    func matchesTimm(_ grad: Bool) throws {
        let g = EncoderGoldens.mambaout, name = "mambaout_test", m = try goldenMambaOut()
        let x = g.input(name)
        func check() {
            #expect(relativeError(m.stem(x), g.out(name, "stem")) < 1e-4)
            let (f, taps) = m.forwardFeatures(x, intermediates: [0, 1, 2, 3])
            for i in 0..<4 { #expect(relativeError(taps[i], g.out(name, "stages.\(i)")) < 1e-4, "stage \(i)") }
            #expect(relativeError(f, g.out(name, "forward_features")) < 1e-4)
            #expect(relativeError(m.forwardHead(f, preLogits: true), g.out(name, "features")) < 1e-4)
            #expect(relativeError(m.forwardHead(f, preLogits: false), g.out(name, "logits")) < 1e-4)
            #expect(relativeError(m.encode(x), g.out(name, "features")) < 1e-4)
        }
        if grad { check() } else { withNoGrad { check() } }
    }

    @Test func pooledFeatureMode() throws {
        let g = EncoderGoldens.mambaout, m = try goldenMambaOut(featureMode: .pooled)
        let f = withNoGrad { m.encode(g.input("mambaout_test")) }
        #expect(f.shape == [2, 32] && m.featureDimension == 32)
        #expect(relativeError(f, g.out("mambaout_test", "pooled")) < 1e-4)
    }

    /// The real variants' widths as timm reports them (num_features vs head_hidden_size).
    @Test func variantWidthsMatchTimm() throws {
        let widths = try JSONSerialization.jsonObject(with: Data(EncoderGoldens.mambaout.metadata["variants"]!.utf8)) as! [String: [String: Int]]
        let configs: [String: MambaOutConfig] = ["mambaout_femto": .femto, "mambaout_kobe": .kobe, "mambaout_tiny": .tiny,
                                                 "mambaout_small": .small, "mambaout_base": .base]
        for (name, c) in configs {
            #expect(c.numFeatures == widths[name]!["num_features"], "\(name)")
            #expect(c.headHiddenSize == widths[name]!["head_hidden_size"], "\(name)")
            #expect(try EncoderRegistry.spec(name).featureDimension == widths[name]!["head_hidden_size"])
        }
        #expect(MambaOutConfig.tiny.numFeatures == 576 && MambaOutConfig.tiny.featureDimension == 2304)
        var gen = RandomGenerator(seed: 1)
        #expect(MambaOut(.femto, generator: &gen).parameterCount() == 6_151_536)  // timm, num_classes=0
    }

    @Test func originalCheckpointKeysAreRemapped() throws {
        let g = EncoderGoldens.mambaout, name = "mambaout_test"
        var orig: [String: Tensor] = [:]
        for (k0, v) in g.params(name) {
            var k = k0
            if k.hasPrefix("stem.") { k = "downsample_layers.0." + k.dropFirst(5) }
            k = k.replacingOccurrences(of: #"^stages\.([0-9]+)\.downsample"#, with: "downsample_layers.$1", options: .regularExpression)
            k = k.replacingOccurrences(of: #"^stages\.([0-9]+)\.blocks\.([0-9]+)"#, with: "stages.$1.$2", options: .regularExpression)
            k = k.replacingOccurrences(of: "head.pre_logits.fc.", with: "head.fc1.").replacingOccurrences(of: "head.pre_logits.norm.", with: "head.norm.")
            if k0.hasPrefix("head.norm.") { k = "norm." + k0.dropFirst("head.norm.".count) }
            if k0.hasPrefix("head.fc.") { k = "head.fc2." + k0.dropFirst("head.fc.".count) }
            orig[k] = v
        }
        #expect(orig["stem.conv1.weight"] == nil && orig["head.fc2.weight"] != nil)
        let m = try goldenMambaOut()
        var gen = RandomGenerator(seed: 9)
        let m2 = MambaOut(m.config, generator: &gen)
        try m2.loadCheckpoint(orig)
        m2.eval()
        let x = g.input(name)
        #expect(relativeError(withNoGrad { m2.encode(x) }, g.out(name, "features")) < 1e-4)
        // a classifier-free model drops head.fc.*
        var c = m.config; c.numClasses = 0
        let m3 = MambaOut(c, generator: &gen)
        try m3.loadCheckpoint(g.params(name))
    }

    @Test func gradientsReachEveryParameter() throws {
        let m = try goldenMambaOut()
        m.train()
        let x = EncoderGoldens.mambaout.input("mambaout_test")
        m.zeroGrad()
        m.encode(x).square().sum().backward()
        for (k, p) in m.namedParameters() where !k.hasPrefix("head.fc.") {
            #expect(p.grad != nil, "\(k)")
        }
    }
}
