import AxialEval
import AxialModels
import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// PsPG class-name embeddings from a text tower (`--text-encoder`), on a tiny random-initialised
/// CLIP saved as a whole open_clip-style checkpoint (vision tower and logit_scale included).
@Suite struct ClassNameEncoderTests {
    static let config = CLIPConfig(embedDimensions: 12, vision: CLIPVisionConfig(imageSize: 32, patchSize: 16, width: 8, layers: 1, heads: 2),
                                   text: CLIPTextConfig(contextLength: 16, width: 16, heads: 2, layers: 2))

    @Test func clipTextTowerEncodesPromptedClassNames() throws {
        let dir = temporaryFolder("textenc")
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = RandomGenerator(seed: 7)
        let model = CLIPModel(Self.config, generator: &g)
        let url = dir.appendingPathComponent("clip.safetensors")
        try SafeTensors.write(model.stateDict(), metadata: [:], to: url)

        let task = try TaskSpec.parse("name: loc\nkind: multilabel\nclasses: [liver, lung, soft tissue]\ncolumns:\n  soft tissue: soft_tissue\n")
        let encoder = try ClassNameEncoder(clip: Self.config, weights: url)
        let template = "a CT slice showing {name}"
        let matrix = ClassEmbeddings.encode(task: task, encoder: encoder, template: template)

        // The same names encoded directly: tokenizer → encode_text → L2 normalisation.
        let texts = ["a CT slice showing liver", "a CT slice showing lung", "a CT slice showing soft tissue"]
        #expect(ClassNameEncoder.prompts(task.classes.map(\.name), template: template) == texts)
        let rows = try CLIPTokenizer.shared()(texts, contextLength: 16)
        let ids = Tensor(shape: [3, 16], scalars: rows.flatMap { $0.map(Float.init) })
        let direct = withNoGrad { l2Normalize(model.encodeText(ids), axis: -1) }
        #expect(matrix.shape == [3, 12])
        let a: [Float] = matrix.scalars, b: [Float] = direct.scalars
        var maxDiff: Float = 0
        for i in a.indices { maxDiff = max(maxDiff, abs(a[i] - b[i])) }
        #expect(maxDiff < 1e-6)
        for c in 0..<3 {
            var norm: Float = 0
            for j in 0..<12 { norm += a[c * 12 + j] * a[c * 12 + j] }
            #expect(abs(norm - 1) < 1e-5)
        }
        #expect(Array(a[0..<12]) != Array(a[12..<24]))

        // A PsPG head takes the matrix as its class-name embeddings.
        var cfg = HeadConfig(kind: .pspg, inputDimension: 6, classes: 3)
        cfg.embeddingDimension = 12; cfg.hidden = 8; cfg.decoderHidden = 8; cfg.decoderHeads = 2; cfg.promptSteps = 2
        let head = try Heads.make(cfg, seed: 1, classEmbeddings: matrix)
        #expect(head.forward(Tensor(ones: [1, 4, 6]), mask: Tensor(ones: [1, 4])).logits.shape == [1, 3])

        // A checkpoint missing a text key is reported with the file.
        var broken = model.stateDict(); broken["ln_final.weight"] = nil
        let brokenURL = dir.appendingPathComponent("broken.safetensors")
        try SafeTensors.write(broken, metadata: [:], to: brokenURL)
        #expect(throws: EncoderError.self) { try ClassNameEncoder(clip: Self.config, weights: brokenURL) }
        // BiomedCLIP without its vocabulary: a clear error.
        #expect(throws: EncoderError.self) { try ClassNameEncoder.load(.biomedclip, weights: url) }
    }
}
