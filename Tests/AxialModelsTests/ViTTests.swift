import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// timm goldens from Tools/goldens/make_vit_goldens.py (tiny random-init timm ViTs, MoCo v3
/// sin-cos positions and ConvStem), every parameter perturbed.
struct EncoderGoldens: @unchecked Sendable {
    let tensors: [String: Tensor]
    let metadata: [String: String]
    static let vit = EncoderGoldens(file: "vit")
    static let mambaout = EncoderGoldens(file: "mambaout")

    init(file: String) {
        let url = Bundle.module.url(forResource: file, withExtension: "safetensors", subdirectory: "Fixtures/encoders")!
        let (t, m) = try! SafeTensors.read(url)
        tensors = t; metadata = m
    }

    func config(_ name: String) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(metadata["\(name)/config"]!.utf8)) as! [String: Any]
    }

    func params(_ name: String) -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        let prefix = "\(name)/param/"
        for (k, v) in tensors where k.hasPrefix(prefix) { d[String(k.dropFirst(prefix.count))] = v }
        return d
    }

    func out(_ name: String, _ key: String) -> Tensor { tensors["\(name)/out/\(key)"]! }
    func input(_ name: String) -> Tensor { tensors["\(name)/input"]! }
}

func vitConfig(_ j: [String: Any]) -> ViTConfig {
    ViTConfig(imageSize: j["image_size"] as! Int, patchSize: j["patch_size"] as! Int, embedDim: j["embed_dim"] as! Int,
              depth: j["depth"] as! Int, numHeads: j["num_heads"] as! Int, numClasses: j["num_classes"] as! Int,
              globalPool: ViTConfig.Pool(rawValue: j["global_pool"] as! String)!,
              positionEmbedding: (j["pos_embed"] as! String) == "sincos" ? .sincos : .learned,
              stem: (j["conv_stem"] as! Bool) ? .conv : .patch)
}

func goldenViT(_ name: String) throws -> VisionTransformer {
    let g = EncoderGoldens.vit
    var gen = RandomGenerator(seed: 3)
    let m = VisionTransformer(vitConfig(g.config(name)), generator: &gen)
    try m.loadCheckpoint(g.params(name))
    m.eval()
    return m
}

@Suite struct ViTTests {
    static let cases = ["vit_test", "vit_test_avg", "vit_moco_test", "vit_conv_test"]

    @Test(arguments: cases)
    func differentiablePathMatchesTimm(_ name: String) throws {
        let g = EncoderGoldens.vit, m = try goldenViT(name)
        let x = g.input(name)
        #expect(relativeError(m.embed(x), g.out(name, "embed")) < 1e-5)
        let depth = m.config.depth
        let (tokens, taps) = m.forwardFeatures(x, intermediates: Array(0..<depth))
        for i in 0..<depth { #expect(relativeError(taps[i], g.out(name, "blocks.\(i)")) < 1e-4, "block \(i)") }
        #expect(relativeError(tokens, g.out(name, "forward_features")) < 1e-4)
        #expect(relativeError(m.forwardHead(tokens, preLogits: true), g.out(name, "features")) < 1e-4)
        #expect(relativeError(m.forwardHead(tokens, preLogits: false), g.out(name, "logits")) < 1e-4)
        #expect(relativeError(m.encode(x), g.out(name, "features")) < 1e-4)
    }

    @Test(arguments: cases)
    func inferencePathMatchesTimm(_ name: String) throws {
        let g = EncoderGoldens.vit, m = try goldenViT(name)
        let x = g.input(name)
        let depth = m.config.depth
        try withNoGrad {
            let (tokens, taps) = m.forwardFeatures(x, intermediates: Array(0..<depth))
            for i in 0..<depth { #expect(relativeError(taps[i], g.out(name, "blocks.\(i)")) < 1e-4, "block \(i)") }
            #expect(relativeError(tokens, g.out(name, "forward_features")) < 1e-4)
            let f = m.encode(x)
            #expect(relativeError(f, g.out(name, "features")) < 1e-4)
            #expect(relativeError(m(x), g.out(name, "logits")) < 1e-4)
            // second call reuses the pooled buffers
            #expect(relativeError(m.encode(x), f) == 0)
            try #require(f.shape == [2, m.featureDimension])
        }
    }

    @Test(arguments: ["vit_moco_test", "vit_conv_test"])
    func sinCosTableMatchesMoCo(_ name: String) throws {
        let g = EncoderGoldens.vit
        let c = vitConfig(g.config(name))
        let t = sinCosPositionEmbedding2D(gridHeight: c.gridSize, gridWidth: c.gridSize, dim: c.embedDim)
        #expect(relativeError(t, g.params(name)["pos_embed"]!) < 1e-6)
        var gen = RandomGenerator(seed: 1)
        let m = VisionTransformer(c, generator: &gen)
        #expect(m.posEmbed.isFrozen)
    }

    @Test func nonSquareSinCosOrderFollowsMoCoMeshgrid() {
        // meshgrid(w, h) 'ij' flattened: token m has gw = m / h, gh = m % h.
        let t = sinCosPositionEmbedding2D(gridHeight: 2, gridWidth: 3, dim: 4).scalars
        // token m = 3 (row 4): gw = 1, gh = 1 → [sin 1, cos 1, sin 1, cos 1]
        #expect(abs(t[4 * 4 + 0] - sin(1)) < 1e-6 && abs(t[4 * 4 + 2] - sin(1)) < 1e-6)
        // token m = 1 (row 2): gw = 0, gh = 1
        #expect(t[2 * 4 + 0] == 0 && abs(t[2 * 4 + 2] - sin(1)) < 1e-6)
    }

    @Test func mocoCheckpointKeysLoad() throws {
        let g = EncoderGoldens.vit, name = "vit_moco_test"
        var ckpt: [String: Tensor] = [:]
        for (k, v) in g.params(name) { ckpt["module.base_encoder." + k] = v; ckpt["module.momentum_encoder." + k] = v }
        ckpt["module.base_encoder.head.0.weight"] = Tensor(zeros: [8, 32])   // MoCo projector
        ckpt["module.predictor.0.weight"] = Tensor(zeros: [8, 8])
        var c = vitConfig(g.config(name)); c.numClasses = 0
        var gen = RandomGenerator(seed: 1)
        let m = VisionTransformer(c, generator: &gen)
        try m.loadCheckpoint(ckpt)
        m.eval()
        #expect(relativeError(m.encode(g.input(name)), g.out(name, "features")) < 1e-4)
    }

    @Test func loadErrorsNameTheKeys() throws {
        let g = EncoderGoldens.vit, name = "vit_test"
        var gen = RandomGenerator(seed: 1)
        let m = VisionTransformer(vitConfig(g.config(name)), generator: &gen)
        var p = g.params(name)
        p.removeValue(forKey: "blocks.1.attn.qkv.bias")
        p["blocks.0.mlp.fc3.weight"] = Tensor(zeros: [2])
        p["cls_token"] = Tensor(zeros: [1, 1, 16])
        do {
            try m.loadCheckpoint(p)
            Issue.record("expected a mismatch")
        } catch let e as ModuleError {
            let s = e.description
            #expect(s.contains("blocks.1.attn.qkv.bias") && s.contains("blocks.0.mlp.fc3.weight") && s.contains("cls_token"))
        }
    }

    @Test func trainingPathGradientMatchesFiniteDifferences() throws {
        var gen = RandomGenerator(seed: 5)
        let c = ViTConfig(imageSize: 16, patchSize: 8, embedDim: 16, depth: 1, numHeads: 2)
        let m = VisionTransformer(c, generator: &gen)
        let x = Tensor.normal([2, 3, 16, 16], generator: &gen)
        let r = Tensor.normal([2, 16], generator: &gen)
        func loss() -> Tensor { (m.encode(x) * r).sum() }
        m.zeroGrad()
        loss().backward()
        for (key, p) in [("blocks.0.attn.qkv.weight", m.blocks[0].attn.qkv.weight), ("patch_embed.proj.weight", (m.patchEmbed as! PatchEmbedding).proj.weight)] {
            let grad = p.grad!.scalars
            for idx in [0, 7, p.count - 1] {
                let orig = p.value.scalars[idx]
                func at(_ v: Float) -> Double {
                    var t = p.value.scalars; t[idx] = v
                    p.assign(Tensor(shape: p.shape, scalars: t))
                    return Double(withNoGrad { loss().item() })
                }
                let h: Float = 1e-2
                let fd = (at(orig + h) - at(orig - h)) / Double(2 * h)
                _ = at(orig)
                #expect(abs(fd - Double(grad[idx])) < 2e-2 * max(1, abs(fd)), "\(key)[\(idx)] fd \(fd) vs \(grad[idx])")
            }
        }
    }

    @Test func registryConfigsHaveTheirWidths() throws {
        #expect(try EncoderRegistry.spec("vit_small").featureDimension == 384)
        #expect(try EncoderRegistry.spec("vit_base").featureDimension == 768)
        #expect(ViTConfig.vitSmall.numHeads == 6 && ViTConfig.vitSmallMoCo.numHeads == 12)
        #expect(ViTConfig.vitConvSmall.depth == 11 && ViTConfig.vitConvBase.depth == 11)
        var gen = RandomGenerator(seed: 1)
        let m = VisionTransformer(.vitSmall, generator: &gen)
        #expect(m.parameterCount() == 21_665_664)   // timm vit_small_patch16_224 with num_classes=0
        #expect(throws: EncoderRegistryError.self) { try EncoderRegistry.spec("vit_huge_nope") }
    }
}
