import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation
import Testing
import AxialTestSupport
@testable import AxialPipeline

/// `axial segment` with BiomedCLIPSeg (biomedclipseg_test): frozen random towers, CLIPSeg decoder trained.
@Suite struct BiomedCLIPSegSegmentTests {
    static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "bright", "disc", "square", "in", "the", "image",
                             "white", "one", "lesion", "##s"]

    @Test func biomedCLIPSegLearnsAndReopensWithItsVocabularyAndTaps() throws {
        let dir = temporaryFolder("segment-" + "biomed-learn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 24)
        let vocabURL = dir.appendingPathComponent("vocab.txt")
        try (Self.vocabulary.joined(separator: "\n") + "\n").write(to: vocabURL, atomically: true, encoding: .utf8)
        let vocab = try PromptSegmenter.readVocabulary(vocabURL)
        #expect(vocab == Self.vocabulary)
        var o = SegmentTrainOptions(prompts: prompts, images: dir.appendingPathComponent("images"),
                                    masks: dir.appendingPathComponent("masks"), out: dir.appendingPathComponent("run"))
        o.model = "biomedclipseg_test"; o.vocabulary = vocab; o.vocabularyFile = vocabURL.path; o.taps = .medvlsm
        o.seed = 5; o.epochs = 12; o.batchSize = 6; o.learningRate = 3e-3; o.valFraction = 0.25
        let before = try PromptSegmenter(model: "biomedclipseg_test", adapters: .none, weights: nil, seed: 5, vocabulary: vocab, taps: .medvlsm)
        #expect(before.inputSize == 64 && before.normalization == .clip && before.biomed?.tappedBlocks == [2, 3])
        let ids = before.tokenize(["a bright disc", "square"])
        #expect(ids.shape == [2, 5] && ids.scalars == [2, 5, 6, 7, 3, 2, 8, 3, 0, 0])
        let all = try SegmentDataset.load(prompts: prompts, images: o.images, masks: o.masks, size: 64, normalization: .clip)
        var g = RandomGenerator(seed: o.seed &+ 0x5e9)
        let val = all.subset(Array(g.permutation(all.count).prefix(6)).sorted())
        let d0 = try SegmentStage.evaluate(before, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        let r = try SegmentStage.train(o)
        // Towers frozen (medvlsm's freeze_encoder): only the decoder trained.
        #expect(r.trainableParameters == before.biomed!.decoder.parameterCount())
        let after = try PromptSegmenter.open(r.modelFile)
        #expect(after.family == .biomedclipseg && after.biomed?.taps == .medvlsm)
        #expect(after.tokenize(["a bright disc"]).scalars == [2, 5, 6, 7, 3])
        let d1 = try SegmentStage.evaluate(after, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        print("BiomedCLIPSeg learning check: validation Dice \(d0) → \(d1) in \(r.epochsRun) epochs")
        #expect(abs(d1 - r.bestValidationDice) < 1e-9)
        #expect(d1 > d0 + 0.3 && d1 > 0.5, "validation Dice before \(d0), after \(d1)")
    }

    @Test func refusals() throws {
        #expect { try PromptSegmenter(model: "biomedclipseg_test", adapters: .none, weights: nil, seed: 1) } throws: { e in "\(e)".contains("--vocab") }
        let big = Self.vocabulary + (0..<60).map { "w\($0)" }
        #expect { try PromptSegmenter(model: "biomedclipseg_test", adapters: .none, weights: nil, seed: 1, vocabulary: big, vocabularyFile: "v.txt") }
            throws: { e in "\(e)".contains("v.txt") }
        #expect { try PromptSegmenter(model: "biomedclipseg_test", adapters: .none, weights: nil, seed: 1, vocabulary: ["a", "b"]) }
            throws: { e in "\(e)".contains("[PAD]") }
        #expect(try PromptSegmenter.taps("3,6,9") == .clipseg && PromptSegmenter.taps("4/7/10") == .medvlsm)
        #expect(throws: SegmentError.self) { try PromptSegmenter.taps("5,8,11") }
        #expect(throws: SegmentError.self) { try PromptSegmenter.readVocabulary(URL(fileURLWithPath: "/nonexistent/vocab.txt")) }
    }
}
