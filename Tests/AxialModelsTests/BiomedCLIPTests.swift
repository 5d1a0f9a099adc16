import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// The independent fixtures of Tools/goldens/make_encoder_goldens.py (`Fixtures/encoders/NAME.*`).
struct SharedEncoderFixture {
    let weights: [String: Tensor]
    let io: [String: Tensor]
    let config: [String: Any]
    init(_ name: String) throws {
        func url(_ suffix: String, _ ext: String) throws -> URL {
            try #require(Bundle.module.url(forResource: "\(name).\(suffix)", withExtension: ext, subdirectory: "Fixtures/encoders"))
        }
        weights = try SafeTensors.read(url("weights", "safetensors")).tensors
        io = try SafeTensors.read(url("io", "safetensors")).tensors
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url("json", "").deletingPathExtension().appendingPathExtension("json")))
        config = (json as! [String: Any])["config"] as! [String: Any]
    }
}

@Suite struct BiomedCLIPTests {
    static let fixture = Result { try EncoderFixture("biomedclip") }

    static func config(_ c: [String: Any]) -> BiomedCLIPConfig {
        let v = c["vision"] as! [String: Any], t = c["text"] as! [String: Any]
        return BiomedCLIPConfig(
            embedDimensions: c["embed_dim"] as! Int,
            vision: .init(imageSize: v["image_size"] as! Int, patchSize: v["patch_size"] as! Int, width: v["width"] as! Int,
                          layers: v["layers"] as! Int, heads: v["heads"] as! Int),
            text: .init(vocabSize: t["vocab_size"] as! Int, width: t["width"] as! Int, layers: t["layers"] as! Int,
                        heads: t["heads"] as! Int, intermediate: t["intermediate"] as! Int, maxPositions: t["max_positions"] as! Int,
                        contextLength: t["context_length"] as! Int))
    }

    func model() throws -> (BiomedCLIPModel, EncoderFixture) {
        let f = try Self.fixture.get()
        let m = BiomedCLIPModel(Self.config(f.config("config")))
        try m.load(state: f.stateDict("sd."), file: "biomedclip.safetensors")
        m.eval()
        return (m, f)
    }

    @Test func encodeImageMatchesOpenCLIP() throws {
        let (m, f) = try model()
        #expect(encoderError(m.encodeImage(f["image"]), f["image_features"]) < 1e-4)
    }

    @Test func encodeTextMatchesOpenCLIP() throws {
        let (m, f) = try model()
        #expect(encoderError(m.encodeText(f["text"]), f["text_features"]) < 1e-4)
    }

    @Test func intermediateBlocksMatch() throws {
        let (m, f) = try model()
        let v = m.visual.blockOutputs(f["image"], blocks: [1, 2, 3])
        for b in 1...3 { #expect(encoderError(v[b]!, f["vision_block.\(b)"]) < 1e-4, "vision block \(b)") }
        let t = m.text.blockOutputs(f["text"], blocks: [1, 2])
        for b in 1...2 { #expect(encoderError(t[b]!, f["text_block.\(b)"]) < 1e-4, "BERT layer \(b)") }
    }

    /// Cross-check on the other generator's fixture (context 256 with padding, WordPiece ids).
    @Test func matchesSharedEncoderFixture() throws {
        let s = try SharedEncoderFixture("biomedclip")
        let v = s.config["vision"] as! [String: Any], t = s.config["text"] as! [String: Any]
        let c = BiomedCLIPConfig(
            embedDimensions: s.config["embed_dim"] as! Int,
            vision: .init(imageSize: v["img_size"] as! Int, patchSize: v["patch_size"] as! Int, width: v["embed_dim"] as! Int,
                          layers: v["depth"] as! Int, heads: v["num_heads"] as! Int),
            text: .init(vocabSize: t["vocab_size"] as! Int, width: t["hidden_size"] as! Int, layers: t["num_hidden_layers"] as! Int,
                        heads: t["num_attention_heads"] as! Int, intermediate: t["intermediate_size"] as! Int,
                        maxPositions: t["max_position_embeddings"] as! Int))
        let m = BiomedCLIPModel(c)
        try m.load(state: s.weights, file: "encoders/biomedclip.weights.safetensors")
        m.eval()
        #expect(encoderError(m.encodeImage(s.io["input.image"]!), s.io["output.encode_image"]!) < 1e-4)
        let ids = s.io["input.text"]!
        #expect(encoderError(m.encodeText(ids), s.io["output.encode_text"]!) < 1e-4)
        let layers = m.text.blockOutputs(ids, blocks: [1, 2])
        // Padded positions are free to differ only through masking, which HF and Axial share: compare all.
        #expect(encoderError(layers[2]!, s.io["output.text.layers.1"]!) < 1e-4)
        #expect(encoderError(m.visual.blockOutputs(s.io["input.image"]!, blocks: [2])[2]!, s.io["output.visual.blocks.1"]!) < 1e-4)
    }

    @Test func remapDropsUnusedBuffersAndPoolerButReportsRealMismatches() throws {
        let f = try Self.fixture.get()
        var sd = f.stateDict("sd.")
        sd["text.transformer.embeddings.position_ids"] = Tensor(zeros: [1, 32])
        sd["text.transformer.pooler.dense.weight"] = Tensor(zeros: [40, 40])
        let m = BiomedCLIPModel(Self.config(f.config("config")))
        try m.load(state: sd, file: "with-extras.safetensors")
        sd["text.proj.2.weight"] = nil
        #expect(throws: EncoderError.self) { try m.load(state: sd, file: "missing.safetensors") }
    }

    @Test func basePresetHasBiomedCLIPShapes() {
        var c = BiomedCLIPConfig.base
        c.vision.layers = 1; c.text.layers = 1; c.text.vocabSize = 10
        let m = BiomedCLIPModel(c)
        let shapes = Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(shapes["visual.trunk.pos_embed"] == [1, 197, 768])
        #expect(shapes["visual.trunk.patch_embed.proj.weight"] == [768, 3, 16, 16])
        #expect(shapes["visual.head.proj.weight"] == [512, 768])
        #expect(shapes["text.transformer.embeddings.position_embeddings.weight"] == [512, 768])
        #expect(shapes["text.transformer.encoder.layer.0.attention.self.query.weight"] == [768, 768])
        #expect(shapes["text.transformer.encoder.layer.0.attention.output.LayerNorm.weight"] == [768])
        #expect(shapes["text.proj.0.weight"] == [640, 768])
        #expect(shapes["text.proj.2.weight"] == [512, 640])
        #expect(BiomedCLIPConfig.base.text.vocabSize == 30522 && BiomedCLIPConfig.base.text.contextLength == 256)
    }
}
