import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// A fixture file from Tools/goldens/make_clip_goldens.py (open_clip 3.3 / timm / transformers).
struct EncoderFixture: Sendable {
    let tensors: [String: Tensor]
    let metadata: [String: String]

    init(_ name: String) throws {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures/clip"))
        (tensors, metadata) = try SafeTensors.read(url)
    }

    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("fixture has no tensor \(key)") }
        return t
    }

    /// The state dict stored under `prefix` (e.g. `q.sd.`), prefix removed.
    func stateDict(_ prefix: String) -> [String: Tensor] { EncoderWeights.subtree(tensors, prefix: prefix) }

    func config(_ key: String) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(metadata[key]!.utf8)) as! [String: Any]
    }
}


func clipConfig(_ c: [String: Any]) -> CLIPConfig {
    let v = c["vision"] as! [String: Any], t = c["text"] as! [String: Any]
    let vw = v["width"] as! Int
    return CLIPConfig(
        embedDimensions: c["embed_dim"] as! Int,
        vision: .init(imageSize: v["image_size"] as! Int, patchSize: v["patch_size"] as! Int, width: vw,
                      layers: v["layers"] as! Int, heads: vw / (v["head_width"] as! Int)),
        text: .init(contextLength: t["context_length"] as! Int, vocabSize: t["vocab_size"] as! Int, width: t["width"] as! Int,
                    heads: t["heads"] as! Int, layers: t["layers"] as! Int),
        activation: (c["quick_gelu"] as! Bool) ? .quickGelu : .gelu)
}

@Suite struct CLIPTests {
    static let fixture = Result { try EncoderFixture("clip_vit") }

    /// "q": QuickGELU (OpenAI-style), "g": GELU (open_clip-style).
    static let variants = ["q", "g"]

    func model(_ name: String, imageSize: Int? = nil) throws -> (CLIPModel, EncoderFixture) {
        let f = try Self.fixture.get()
        var config = clipConfig(f.config("\(name).config"))
        if let imageSize { config = config.withImageSize(imageSize) }
        let m = CLIPModel(config)
        try m.load(state: f.stateDict("\(name).sd."), file: "clip_vit.safetensors")
        m.eval()
        return (m, f)
    }

    @Test(arguments: variants) func encodeImageMatchesOpenCLIP(name: String) throws {
        let (m, f) = try model(name)
        let y = m.encodeImage(f["\(name).image"])
        #expect(encoderError(y, f["\(name).image_features"]) < 1e-4)
    }

    @Test(arguments: variants) func encodeTextMatchesOpenCLIP(name: String) throws {
        let (m, f) = try model(name)
        let ids = f["\(name).text"]
        let y = m.encodeText(ids)
        #expect(encoderError(y, f["\(name).text_features"]) < 1e-4)
        // Without trimming the padding after the last EOT, the same values.
        let full = m.text(ids, trimPadding: false)
        #expect(encoderError(full, f["\(name).text_features"]) < 1e-4)
    }

    @Test(arguments: variants) func intermediateBlocksMatchOpenCLIP(name: String) throws {
        let (m, f) = try model(name)
        let vLayers = m.config.vision.layers, tLayers = m.config.text.layers
        let v = m.visual.blockOutputs(f["\(name).image"], blocks: Array(1...vLayers))
        for b in 1...vLayers { #expect(encoderError(v[b]!, f["\(name).vision_block.\(b)"]) < 1e-4, "vision block \(b)") }
        let t = m.text.blockOutputs(f["\(name).text"], blocks: Array(1...tLayers))
        for b in 1...tLayers { #expect(encoderError(t[b]!, f["\(name).text_block.\(b)"]) < 1e-4, "text block \(b)") }
    }

    /// Grad mode off: the image tower's blocks run tape-free (`CLIPTransformer.inferenceForward`,
    /// fused GEMM epilogues with GELU / QuickGELU): the same features, block outputs and hooks as
    /// open_clip, and as the differentiable path.
    @Test(arguments: variants) func tapeFreeImageTowerMatchesOpenCLIP(name: String) throws {
        let (m, f) = try model(name)
        let img = f["\(name).image"]
        let vLayers = m.config.vision.layers
        let (y, v, scaled) = withNoGrad {
            (m.encodeImage(img), m.visual.blockOutputs(img, blocks: Array(1...vLayers)),
             m.encodeImage(img, hook: { b, x in b == 2 ? x * 0.5 : x }))
        }
        #expect(encoderError(y, f["\(name).image_features"]) < 1e-4)
        for b in 1...vLayers { #expect(encoderError(v[b]!, f["\(name).vision_block.\(b)"]) < 1e-4, "vision block \(b)") }
        let taped = m.encodeImage(img, hook: { b, x in b == 2 ? x * 0.5 : x })
        #expect(Tensor.isGradEnabled)
        #expect(encoderError(scaled, taped) < 1e-5)
        if name == "q" { #expect(encoderError(scaled, f["\(name).image_features"]) > 1e-3) }   // (the hook matters)
        // A second forward on the pooled buffers gives the same values.
        #expect(encoderError(withNoGrad { m.encodeImage(img) }, y) == 0)
    }

    @Test func hookCanTransformTheResidualStream() throws {
        let (m, f) = try model("q")
        let img = f["q.image"]
        // A hook that zeroes nothing changes nothing; one that scales block 2's output changes the result,
        // and equals running the tail blocks on the scaled stream by hand.
        let same = m.encodeImage(img, hook: { _, x in x })
        #expect(encoderError(same, f["q.image_features"]) < 1e-4)
        let scaled = m.encodeImage(img, hook: { b, x in b == 2 ? x * 0.5 : x })
        var h = m.visual.blockOutputs(img, blocks: [2])[2]! * 0.5
        for block in m.visual.transformer.resblocks[2...] { h = block(h) }
        let byHand = matmul(m.visual.lnPost(h).select(axis: 1, index: 0), m.visual.proj.value)
        #expect(encoderError(scaled, byHand) < 1e-5)
        #expect(encoderError(scaled, f["q.image_features"]) > 1e-3)
    }

    /// Other input sizes: open_clip's resize_pos_embed on load (bicubic, antialias), grid ± 1.
    @Test(arguments: [("q", 40), ("q", 24), ("g", 35), ("g", 21)])
    func otherInputSizeMatchesOpenCLIP(name: String, size: Int) throws {
        let (m, f) = try model(name, imageSize: size)
        #expect(encoderError(m.visual.positionalEmbedding.value, f["\(name).pos_embed\(size)"]) < 1e-5)
        #expect(encoderError(m.encodeImage(f["\(name).image\(size)"]), f["\(name).image\(size)_features"]) < 1e-4)
    }

    @Test(arguments: [(24, 17), (16, 17), (4, 6), (7, 3), (14, 29)])
    func positionEmbeddingResizeMatchesOpenCLIP(old: Int, new: Int) throws {
        let f = try EncoderFixture("clip_pos_embed")
        let y = CLIPPositionEmbedding.resize(f["pe\(old)"], toGrid: (new, new))
        #expect(encoderError(y, f["pe\(old)_to\(new)"]) < 1e-5)
    }

    @Test func visionTowerLoadsAloneFromAFile() throws {
        let f = try Self.fixture.get()
        let config = clipConfig(f.config("q.config"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("open_clip_model.safetensors")
        try SafeTensors.write(f.stateDict("q.sd."), to: url)
        let tower = try CLIPVisionTransformer.load(config, weights: url)
        tower.eval()
        #expect(encoderError(tower(f["q.image"]).pooled, f["q.image_features"]) < 1e-4)
        let full = try CLIPModel.load(config, weights: url)
        #expect(encoderError(full.encodeText(f["q.text"]), f["q.text_features"]) < 1e-4)
    }

    @Test func loadingReportsMissingUnexpectedAndMisshapedKeys() throws {
        let f = try Self.fixture.get()
        var sd = f.stateDict("q.sd.")
        sd["visual.proj"] = nil
        sd["visual.extra.weight"] = Tensor(zeros: [2])
        sd["ln_final.weight"] = Tensor(zeros: [3])
        let m = CLIPModel(clipConfig(f.config("q.config")))
        do {
            try m.load(state: sd, file: "broken.safetensors")
            Issue.record("loading a broken state dict succeeded")
        } catch let e as EncoderError {
            let text = e.description
            #expect(text.contains("broken.safetensors"))
            #expect(text.contains("visual.proj"))
            #expect(text.contains("visual.extra.weight"))
            #expect(text.contains("ln_final.weight"))
        }
    }

    /// Cross-check of both towers (blocks, pooled features, logits) on the other generator's fixture.
    @Test func matchesSharedEncoderFixture() throws {
        let s = try SharedEncoderFixture("clip_vit")
        var c = s.config
        c["vision"] = c["vision_cfg"]; c["text"] = c["text_cfg"]
        let m = CLIPModel(clipConfig(c))
        try m.load(state: s.weights, file: "encoders/clip_vit.weights.safetensors")
        m.eval()
        #expect(encoderError(m.encodeImage(s.io["input.image"]!), s.io["output.encode_image"]!) < 1e-4)
        let v = m.visual.blockOutputs(s.io["input.image"]!, blocks: [1, 2])
        #expect(encoderError(v[2]!, s.io["output.visual.blocks.1"]!) < 1e-4)
        // Text tower (the generator perturbs persistent buffers only, so the causal mask is exact).
        let ids = s.io["input.text"]!
        let t = m.text.blockOutputs(ids, blocks: [1, 2])
        #expect(encoderError(t[1]!, s.io["output.text.blocks.0"]!) < 1e-4)
        #expect(encoderError(t[2]!, s.io["output.text.blocks.1"]!) < 1e-4)
        let txt = m.encodeText(ids)
        #expect(encoderError(txt, s.io["output.encode_text"]!) < 1e-4)
        #expect(encoderError(m.text(ids, trimPadding: false), s.io["output.encode_text"]!) < 1e-4)
        // logits_per_image = exp(logit_scale) · normalize(img) @ normalize(txt)ᵀ
        let img = l2Normalize(m.encodeImage(s.io["input.image"]!), axis: -1)
        let logits = matmulTransposedB(img, l2Normalize(txt, axis: -1)) * m.logitScale.value.exp().item()
        #expect(encoderError(logits, s.io["output.logits_per_image"]!) < 1e-4)
    }

    @Test func presetsHaveOpenAIShapes() {
        // One block per tower and a small vocabulary keep the (debug-build) init light; widths are the preset's.
        var c = CLIPConfig.vitB16
        c.vision.layers = 1; c.text.layers = 1; c.text.vocabSize = 10
        let b = CLIPModel(c)
        let shapes = Dictionary(uniqueKeysWithValues: b.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(shapes["visual.conv1.weight"] == [768, 3, 16, 16])
        #expect(shapes["visual.positional_embedding"] == [197, 768])
        #expect(shapes["visual.transformer.resblocks.0.attn.in_proj_weight"] == [2304, 768])
        #expect(shapes["visual.transformer.resblocks.0.mlp.c_fc.weight"] == [3072, 768])
        #expect(shapes["visual.proj"] == [768, 512])
        #expect(shapes["positional_embedding"] == [77, 512])
        #expect(shapes["transformer.resblocks.0.mlp.c_fc.weight"] == [2048, 512])
        #expect(shapes["text_projection"] == [512, 512])
        #expect(shapes["logit_scale"] == [])
        #expect(CLIPConfig.vitB16.text.vocabSize == 49408)
        #expect(CLIPConfig.vitL14.vision.width == 1024 && CLIPConfig.vitL14.vision.layers == 24)
        #expect(CLIPConfig.vitL14_336.vision.gridSize == 24)
        #expect(CLIPConfig.vitL14_336.withImageSize(240).vision.gridSize == 17)
    }
}
