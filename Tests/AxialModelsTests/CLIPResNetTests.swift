import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

@Suite struct CLIPResNetTests {
    static let fixture = Result { try EncoderFixture("clip_resnet") }

    func model() throws -> (CLIPModifiedResNet, EncoderFixture) {
        let f = try Self.fixture.get()
        let c = f.config("config")
        let m = CLIPModifiedResNet(CLIPResNetConfig(layers: c["layers"] as! [Int], width: c["width"] as! Int, heads: c["heads"] as! Int,
                                                    outputDimensions: c["output_dim"] as! Int, imageSize: c["image_size"] as! Int))
        try EncoderWeights.load(m, m.remap(f.tensors, prefix: "sd.visual."), file: "clip_resnet.safetensors", model: "RN")
        m.eval()
        return (m, f)
    }

    @Test func globalFeatureAndLayer4MatchOpenCLIP() throws {
        let (m, f) = try model()
        let x = f["image"]
        #expect(encoderError(m.features(x), f["layer4"]) < 1e-4)
        #expect(encoderError(m(x), f["global"]) < 1e-4)
    }

    @Test func denseTokensMatchPsPGDefinition() throws {
        let (m, f) = try model()
        let (global, tokens) = m.encodeDense(f["image"])
        #expect(tokens.shape == [2, 10, 24])
        #expect(encoderError(global, f["global"]) < 1e-4)
        #expect(encoderError(tokens, f["dense"]) < 1e-4)
        // Tokens 1… are c_proj(v_proj(·)) of the pool's tokens; token 0 differs from the raw one.
        #expect(encoderError(tokens.narrow(axis: 1, start: 1, length: 9), f["dense_raw"].narrow(axis: 1, start: 1, length: 9)) < 1e-4)
        let normalized = m.encodeDense(f["image"], globalToken: .normalized).tokens.select(axis: 1, index: 0)
        #expect(encoderError(normalized, l2Normalize(f["global"], axis: -1)) < 1e-4)
    }

    /// Cross-check on the other generator's fixture (bare ModifiedResNet keys, num_batches_tracked left out).
    @Test func matchesSharedEncoderFixture() throws {
        let s = try SharedEncoderFixture("clip_resnet")
        let c = s.config
        let m = CLIPModifiedResNet(CLIPResNetConfig(layers: c["layers"] as! [Int], width: c["width"] as! Int, heads: c["heads"] as! Int,
                                                    outputDimensions: c["output_dim"] as! Int, imageSize: c["image_size"] as! Int))
        try EncoderWeights.load(m, m.remap(s.weights, prefix: ""), file: "encoders/clip_resnet.weights.safetensors", model: "RN")
        m.eval()
        let x = s.io["input.image"]!
        #expect(encoderError(m.features(x), s.io["output.layer4"]!) < 1e-4)
        let t = m.attnpool.tokens(m.features(x))
        #expect(encoderError(m.attnpool.pool(t), s.io["output.global"]!) < 1e-4)
        #expect(encoderError(m.attnpool.denseTokens(t), s.io["output.dense"]!) < 1e-4)
    }

    @Test func rn50PresetHasOpenAIShapes() {
        var c = CLIPResNetConfig.rn50
        c.layers = [1, 1, 1, 1]
        let m = CLIPModifiedResNet(c)
        let shapes = Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(shapes["conv1.weight"] == [32, 3, 3, 3])
        #expect(shapes["layer1.0.downsample.0.weight"] == [256, 64, 1, 1])
        #expect(shapes["layer4.0.conv3.weight"] == [2048, 512, 1, 1])
        #expect(shapes["attnpool.positional_embedding"] == [50, 2048])
        #expect(shapes["attnpool.c_proj.weight"] == [1024, 2048])
        #expect(m.namedBuffers().contains { $0.0 == "layer2.0.downsample.1.running_var" })
    }
}
