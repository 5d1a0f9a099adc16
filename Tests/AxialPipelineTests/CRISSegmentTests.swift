import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation
import Testing
import AxialTestSupport
@testable import AxialPipeline

/// `axial segment` with CRIS (cris_test): learning, exact resume, the saved model, refusals.
@Suite struct CRISSegmentTests {
    func options(_ dir: URL, _ prompts: URL, out: String) -> SegmentTrainOptions {
        var o = SegmentTrainOptions(prompts: prompts, images: dir.appendingPathComponent("images"),
                                    masks: dir.appendingPathComponent("masks"), out: dir.appendingPathComponent(out))
        o.model = "cris_test"
        return o
    }

    /// Training a random-init cris_test end to end (backbone too, as medvlsm's CRIS runs) on the
    /// synthetic shapes must clearly raise its validation Dice (threshold sigmoid 0.35).
    @Test func crisLearnsBrightShapes() throws {
        let dir = temporaryFolder("segment-" + "cris-learn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 24)
        var o = options(dir, prompts, out: "run")
        o.seed = 5; o.epochs = 16; o.batchSize = 6; o.learningRate = 3e-3; o.valFraction = 0.25; o.trainEncoders = true
        let before = try PromptSegmenter(model: "cris_test", adapters: .none, weights: nil, seed: 5)
        #expect(before.family == .cris && before.inputSize == 96 && before.normalization == .clip)
        let all = try SegmentDataset.load(prompts: prompts, images: o.images, masks: o.masks, size: 96, normalization: .clip)
        var g = RandomGenerator(seed: o.seed &+ 0x5e9)
        let val = all.subset(Array(g.permutation(all.count).prefix(6)).sorted())
        let d0 = try SegmentStage.evaluate(before, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        let r = try SegmentStage.train(o)
        let after = try PromptSegmenter.open(r.modelFile)
        #expect(after.family == .cris && after.modelName == "cris_test")
        let d1 = try SegmentStage.evaluate(after, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        print("CRIS learning check: validation Dice \(d0) → \(d1) in \(r.epochsRun) epochs; loss \(r.trainLoss)")
        #expect(abs(d1 - r.bestValidationDice) < 1e-9)
        #expect(d1 > d0 + 0.4 && d1 > 0.7, "validation Dice before \(d0), after \(d1)")
        #expect(r.trainLoss.last! < r.trainLoss.first!)
        let t = try SegmentStage.test(after, prompts: prompts, images: o.images, masks: o.masks, promptKey: "p2",
                                      out: dir.appendingPathComponent("test"))
        #expect(t.perImage.count == 24)
    }

    /// Interrupted after 2 epochs and resumed to 3 = 3 straight epochs, bit for bit (BN buffers included);
    /// 7 entries in batches of 3 leave a single sample, which joins the batch before.
    @Test func crisResumeIsExact() throws {
        let dir = temporaryFolder("segment-" + "cris-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 9)
        func run(_ out: String, epochs: Int) throws -> SegmentTrainResult {
            var o = options(dir, prompts, out: out)
            o.epochs = epochs; o.batchSize = 3; o.patience = 100; o.resume = true; o.learningRate = 1e-3
            return try SegmentStage.train(o)
        }
        _ = try run("straight", epochs: 3)
        _ = try run("split", epochs: 2)
        let r = try run("split", epochs: 3)
        #expect(r.epochsRun == 3)
        let a = try SafeTensors.read(dir.appendingPathComponent("straight/checkpoint.safetensors")).tensors
        let b = try SafeTensors.read(dir.appendingPathComponent("split/checkpoint.safetensors")).tensors
        #expect(Set(a.keys) == Set(b.keys))
        #expect(a.keys.contains { $0.hasSuffix("neck.aggr.1.running_mean") })
        for (k, v) in a { #expect(v.scalars == b[k]?.scalars, "\(k) differs after resume") }
    }

    /// predict with CRIS on a DICOM series whose slices are the model's size (no resampling): the label
    /// volume is exactly sigmoid(logit) > 0.35 of CRIS run on the CLIP-normalised windowed slices.
    @Test func crisPredictUsesItsThresholdAndNormalisation() throws {
        let dir = temporaryFolder("segment-" + "cris-predict")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ct = SyntheticCT(patientID: "P2", rows: 96, columns: 96, slices: 3, pixelSpacing: 0.8, sliceSpacing: 2.5,
                             lesions: [.init(center: SIMD3(0, 0, -55), radius: 9, hu: 300)], noise: 5)
        _ = try ct.write(to: dir.appendingPathComponent("dicom"))
        let model = try PromptSegmenter(model: "cris_test", adapters: .none, weights: nil, seed: 3)
        let window = try CTWindow.parse("soft_tissue")
        let out = dir.appendingPathComponent("mask.nii.gz")
        let n = try SegmentStage.predict(model, input: dir.appendingPathComponent("dicom"), prompt: "lesion", window: window, out: out,
                                         overlays: nil, batchSize: 2)
        let v = try SegmentStage.readScan(dir.appendingPathComponent("dicom"))
        let px = (0..<v.depth).map { z in SegmentDataset.pixels(window.apply(Array(v.slice(z)), width: 96, height: 96), size: 96, normalization: .clip) }
        model.module.eval()
        let logits = withNoGrad { model.logits(stack(px, axis: 0), prompts: Array(repeating: "lesion", count: v.depth)) }.scalars
        let t = Foundation.log(Float(0.35) / 0.65)
        let expected = logits.map { 1 / (1 + Foundation.exp(-$0)) > 0.35 ? Float(1) : 0 }
        #expect(abs(model.logitThreshold - t) < 1e-6)
        let back = try NIfTIReader.readFile(out.path)
        #expect(back.voxels == expected)
        #expect(n == expected.reduce(0) { $0 + Int($1) })
    }

    @Test func batchesNeverLeaveASingleSample() {
        #expect(SegmentStage.batches(7, size: 3, minimum: 2) == [0..<3, 3..<7])
        #expect(SegmentStage.batches(7, size: 3) == [0..<3, 3..<6, 6..<7])
        #expect(SegmentStage.batches(6, size: 3, minimum: 2) == [0..<3, 3..<6])
        #expect(SegmentStage.batches(1, size: 3, minimum: 2) == [0..<1])
    }

    /// CRIS masks the words whose id is 0 out of its cross-attention (CRIS.pytorch / medvlsm:
    /// `pad_mask = input_ids == 0`). Axial's prompt tokenizer pads with 0 (open_clip's), so the
    /// assumption holds: a prompt batched with a longer one (zero-padded to its length) gives the same
    /// logits as alone. transformers' CLIPTokenizer for CIDAS/clipseg-rd64-refined — what medvlsm feeds its
    /// CRIS — pads with `<|endoftext|>` (49407), which that mask never catches: with EOT padding the
    /// padded positions do reach the cross-attention (the control below), the reference's [Q].
    @Test func crisPromptPaddingIsZeroAndMasked() throws {
        let model = try PromptSegmenter(model: "cris_test", adapters: .none, weights: nil, seed: 3)
        model.module.eval()
        let short = "tumour", long = "a large bright round tumour in the left lower lobe of the lung"
        let ids = model.tokenize([short, long])
        let L = ids.shape[1], row = Array(ids.scalars[0..<L])
        let eot = CLIPTextTransformer.eotPositions(ids)
        #expect(eot[0] < eot[1] && eot[1] == L - 1)
        #expect(row[(eot[0] + 1)...].allSatisfy { $0 == 0 }, "short prompt padded with \(row[(eot[0] + 1)...])")
        let alone = model.tokenize([short])
        #expect(alone.shape[1] == eot[0] + 1)
        let cris = try #require(model.cris)
        var g = RandomGenerator(seed: 11)
        let S = model.inputSize
        let px = Tensor.normal([1, 3, S, S], generator: &g)
        let two = concat([px, px], axis: 0)
        let single = withNoGrad { cris(px, ids: alone) }
        let batched = withNoGrad { cris(two, ids: ids) }.narrow(axis: 0, start: 0, length: 1)
        expectClose(batched, single, atol: 1e-5, rtol: 1e-4, "zero-padded prompt vs the same prompt alone")
        // Control: the same row padded with the EOT id (transformers' CLIPTokenizer pad token) is not masked.
        var eotPadded = ids.scalars
        for j in (eot[0] + 1)..<L { eotPadded[j] = row[eot[0]] }
        let leaked = withNoGrad { cris(two, ids: Tensor(shape: ids.shape, scalars: eotPadded)) }.narrow(axis: 0, start: 0, length: 1)
        #expect(relativeError(leaked, single) > 1e-3, "EOT padding should change the logits (it is not masked)")
    }

    @Test func crisRefusals() throws {
        let dir = temporaryFolder("segment-" + "cris-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 4)
        #expect { try PromptSegmenter(model: "cris_test", adapters: .dense, weights: nil, seed: 1) } throws: { e in
            "\(e)".contains("CLIPSeg only")
        }
        var o = options(dir, prompts, out: "run")
        o.batchSize = 1
        #expect { try SegmentStage.train(o) } throws: { e in "\(e)".contains("--batch-size") }
        // A CLIPSeg file is not a CRIS checkpoint: the error names the file.
        let clipseg = try PromptSegmenter(model: "clipseg_test", adapters: .none, weights: nil, seed: 1)
        let f = dir.appendingPathComponent("clipseg.safetensors")
        try SafeTensors.write(clipseg.module.stateDict(), to: f)
        #expect { try PromptSegmenter(model: "cris_test", adapters: .none, weights: f, seed: 1) } throws: { e in
            "\(e)".contains("clipseg.safetensors") && "\(e)".contains("CRIS")
        }
        #expect(throws: SegmentError.self) { try PromptSegmenter.family(named: "crisp") }
    }
}
