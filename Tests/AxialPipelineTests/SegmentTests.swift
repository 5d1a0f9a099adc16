import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation
import Testing
import AxialTestSupport
@testable import AxialPipeline

/// A synthetic 2D set: a bright disc or square on a dark noisy background, mask = the shape,
/// medvlsm prompt JSON (p0 empty, p1 the class name, p2 a longer prompt, p3 a list).
func makeShapeSet(_ dir: URL, count: Int, size: Int = 64, seed: UInt64 = 3, maskSize: Int? = nil) throws -> URL {
    let fm = FileManager.default
    let images = dir.appendingPathComponent("images"), masks = dir.appendingPathComponent("masks")
    try fm.createDirectory(at: images, withIntermediateDirectories: true)
    try fm.createDirectory(at: masks, withIntermediateDirectories: true)
    var g = RandomGenerator(seed: seed)
    var entries: [[String: Any]] = []
    for i in 0..<count {
        let square = i % 2 == 1
        let r = 8 + g.int(below: 8), cx = r + 2 + g.int(below: size - 2 * r - 4), cy = r + 2 + g.int(below: size - 2 * r - 4)
        var img = [UInt8](repeating: 0, count: size * size * 3), mask = [UInt8](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let inside = square ? (abs(x - cx) <= r && abs(y - cy) <= r) : ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                let v = (inside ? 200 : 30) + g.int(below: 40)
                for c in 0..<3 { img[(y * size + x) * 3 + c] = UInt8(v) }
                mask[y * size + x] = inside ? 255 : 0
            }
        }
        let name = String(format: "img_%03d.png", i)
        try PNG.write(Image8(width: size, height: size, channels: 3, pixels: img), to: images.appendingPathComponent(name))
        let ms = (i == 0 ? maskSize : nil) ?? size
        let m = ms == size ? mask : [UInt8](repeating: 0, count: ms * ms)
        try PNG.write(Image8(width: ms, height: ms, channels: 1, pixels: m), to: masks.appendingPathComponent(name))
        let cat = square ? "square" : "disc"
        entries.append(["img_name": name, "mask_name": name, "bbox": [cx - r, cy - r, cx + r, cy + r], "cat": cat,
                        "prompts": ["p0": "", "p1": cat, "p2": "a bright \(cat) in the image", "p3": ["white \(cat)", "one \(cat)"]]])
    }
    let url = dir.appendingPathComponent("prompts.json")
    try JSONSerialization.data(withJSONObject: entries).write(to: url)
    return url
}

@Suite struct SegmentTests {
    @Test func metricsOnKnownMasks() {
        let w = 10, h = 10
        var g = [Bool](repeating: false, count: w * h), p = g
        for y in 2..<6 { for x in 2..<6 { g[y * w + x] = true } }          // 4×4 square
        for y in 2..<6 { for x in 4..<8 { p[y * w + x] = true } }          // shifted by 2
        let s = SegmentMetrics.scores(prediction: p, target: g, width: w, height: h)
        #expect(abs(s.dice - 0.5) < 1e-12)                                  // 8 / 16
        #expect(abs(s.iou - 8.0 / 24.0) < 1e-12)
        // Edges: a 4×4 square's 12 border pixels; directed distances: 0 for the 8 shared columns'
        // pixels … 2 for the far column — 95th percentile of each direction = 2.
        #expect(abs(s.hd95! - 2) < 1e-12)
        #expect(SegmentMetrics.scores(prediction: g, target: g, width: w, height: h) == .init(dice: 1, iou: 1, hd95: 0))
        let empty = [Bool](repeating: false, count: w * h)
        #expect(SegmentMetrics.scores(prediction: empty, target: g, width: w, height: h).hd95 == nil)
        #expect(SegmentMetrics.scores(prediction: empty, target: empty, width: w, height: h).dice == 1)
        #expect(abs(SegmentMetrics.percentile([1, 2, 3, 4], 95) - 3.85) < 1e-12)
    }

    @Test func promptFileAndBadInputErrorsNameTheFile() throws {
        let dir = temporaryFolder("segment-" + "bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 3, maskSize: 32)
        let images = dir.appendingPathComponent("images"), masks = dir.appendingPathComponent("masks")
        #expect { try SegmentDataset.load(prompts: prompts, images: images, masks: masks, size: 96) } throws: { e in
            "\(e)".contains("masks/img_000.png") && "\(e)".contains("32×32") && "\(e)".contains("64×64")
        }
        // train / test stop before writing anything: no output folder appears.
        var o = SegmentTrainOptions(prompts: prompts, images: images, masks: masks, out: dir.appendingPathComponent("run"))
        o.model = "clipseg_test"
        #expect { try SegmentStage.train(o) } throws: { e in "\(e)".contains("masks/img_000.png") }
        #expect(!FileManager.default.fileExists(atPath: o.out.path))
        let model = try PromptSegmenter(model: "clipseg_test", adapters: .none, weights: nil, seed: 1)
        let testOut = dir.appendingPathComponent("test")
        #expect { try SegmentStage.test(model, prompts: prompts, images: images, masks: masks, promptKey: "p1", out: testOut) } throws: { e in
            "\(e)".contains("masks/img_000.png")
        }
        #expect(!FileManager.default.fileExists(atPath: testOut.path))
        // A prompt file naming a missing image.
        var entries = try JSONSerialization.jsonObject(with: Data(contentsOf: prompts)) as! [[String: Any]]
        entries[0]["img_name"] = "nope.png"
        let bad = dir.appendingPathComponent("bad.json")
        try JSONSerialization.data(withJSONObject: entries).write(to: bad)
        #expect { try SegmentDataset.load(prompts: bad, images: images, masks: masks, size: 96) } throws: { e in
            "\(e)".contains("images/nope.png") && "\(e)".contains("bad.json")
        }
        o.prompts = bad
        #expect { try SegmentStage.train(o) } throws: { e in "\(e)".contains("images/nope.png") && "\(e)".contains("bad.json") }
        #expect(!FileManager.default.fileExists(atPath: o.out.path))
        try Data("{\"a\": 1}".utf8).write(to: bad)
        #expect { try PromptEntry.load(bad) } throws: { e in "\(e)".contains("bad.json") && "\(e)".contains("array") }
        let loaded = try PromptEntry.load(prompts)
        #expect(loaded[0].trainingKeys == ["p1", "p2", "p3"])
        #expect(loaded[0].prompts["p3"]?.count == 2)
    }

    /// Training on the synthetic shapes must clearly raise the validation Dice of a random-init
    /// clipseg_test (decoder trained, encoders frozen). Fails if it stops learning.
    @Test func learnsBrightShapes() throws {
        let dir = temporaryFolder("segment-" + "learn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 24)
        var o = SegmentTrainOptions(prompts: prompts, images: dir.appendingPathComponent("images"),
                                    masks: dir.appendingPathComponent("masks"), out: dir.appendingPathComponent("run"))
        o.model = "clipseg_test"; o.seed = 5; o.epochs = 20; o.batchSize = 6; o.learningRate = 3e-3; o.valFraction = 0.25
        // Before: the same seeded model, untrained, on the same validation split.
        let before = try PromptSegmenter(model: "clipseg_test", adapters: .none, weights: nil, seed: 5)
        let all = try SegmentDataset.load(prompts: prompts, images: o.images, masks: o.masks, size: 96)
        var g = RandomGenerator(seed: o.seed &+ 0x5e9)
        let val = all.subset(Array(g.permutation(all.count).prefix(6)).sorted())
        let d0 = try SegmentStage.evaluate(before, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        let r = try SegmentStage.train(o)
        let after = try PromptSegmenter.open(r.modelFile)
        let d1 = try SegmentStage.evaluate(after, val, promptKey: "p1", file: "prompts.json").map(\.scores.dice).reduce(0, +) / 6
        print("segment learning check: validation Dice \(d0) → \(d1) in \(r.epochsRun) epochs")
        #expect(abs(d1 - r.bestValidationDice) < 1e-9)
        #expect(d1 > d0 + 0.3 && d1 > 0.65, "validation Dice before \(d0), after \(d1)")
        #expect(r.trainLoss.last! < r.trainLoss.first!)
        // test stage writes per-image and per-class tables.
        let t = try SegmentStage.test(after, prompts: prompts, images: o.images, masks: o.masks, promptKey: "p2",
                                      out: dir.appendingPathComponent("test"))
        #expect(t.perImage.count == 24)
        let perClass = try String(contentsOf: t.files[1], encoding: .utf8)
        #expect(perClass.contains("disc") && perClass.contains("square") && perClass.contains("(all)"))
    }

    /// Interrupted after 2 epochs and resumed to 4 = 4 straight epochs, bit for bit.
    @Test(arguments: [PromptSegmenter.Adapters.none, .dense])
    func resumeIsExact(_ adapters: PromptSegmenter.Adapters) throws {
        let dir = temporaryFolder("segment-" + "resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try makeShapeSet(dir, count: 8)
        func options(_ out: String, epochs: Int) -> SegmentTrainOptions {
            var o = SegmentTrainOptions(prompts: prompts, images: dir.appendingPathComponent("images"),
                                        masks: dir.appendingPathComponent("masks"), out: dir.appendingPathComponent(out))
            o.model = "clipseg_test"; o.adapters = adapters; o.adapterDim = 8; o.epochs = epochs; o.batchSize = 3; o.patience = 100
            o.resume = true
            return o
        }
        _ = try SegmentStage.train(options("straight", epochs: 4))
        _ = try SegmentStage.train(options("split", epochs: 2))
        let r = try SegmentStage.train(options("split", epochs: 4))
        #expect(r.epochsRun == 4 && r.trainLoss.count == 4)
        let a = try SafeTensors.read(dir.appendingPathComponent("straight/checkpoint.safetensors")).tensors
        let b = try SafeTensors.read(dir.appendingPathComponent("split/checkpoint.safetensors")).tensors
        #expect(Set(a.keys) == Set(b.keys))
        for (k, v) in a { #expect(v.scalars == b[k]?.scalars, "\(k) differs after resume") }
        let la = try String(contentsOf: dir.appendingPathComponent("straight/training.csv"), encoding: .utf8)
        let lb = try String(contentsOf: dir.appendingPathComponent("split/training.csv"), encoding: .utf8)
        #expect(la == lb)
    }

    /// predict on a DICOM series: the label NIfTI reads back on the source grid with the labels
    /// `segment` computed; overlays are written for the slices with foreground.
    @Test func predictWritesLabelsOnTheScanGrid() throws {
        let dir = temporaryFolder("segment-" + "predict")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ct = SyntheticCT(patientID: "P1", rows: 40, columns: 48, slices: 5, pixelSpacing: 0.8, sliceSpacing: 2.5,
                             lesions: [.init(center: SIMD3(0, 0, -55), radius: 9, hu: 300)], noise: 5)
        _ = try ct.write(to: dir.appendingPathComponent("dicom"))
        let model = try PromptSegmenter(model: "clipseg_test", adapters: .none, weights: nil, seed: 1)
        let out = dir.appendingPathComponent("mask.nii.gz")
        let n = try SegmentStage.predict(model, input: dir.appendingPathComponent("dicom"), prompt: "lesion",
                                         window: try CTWindow.parse("soft_tissue"), out: out,
                                         overlays: dir.appendingPathComponent("overlays"), batchSize: 2)
        let src = try SegmentStage.readScan(dir.appendingPathComponent("dicom"))
        let back = try NIfTIReader.readFile(out.path)
        #expect(back.width == src.width && back.height == src.height && back.depth == src.depth)
        for i in 0..<3 {
            #expect(abs(back.spacing[i] - src.spacing[i]) < 1e-4)
            #expect(abs(back.origin[i] - src.origin[i]) < 1e-3)
        }
        for i in 0..<9 { #expect(abs(back.direction[i] - src.direction[i]) < 1e-6) }
        let labels = SegmentStage.segment(model, volume: src, prompt: "lesion", window: try CTWindow.parse("soft_tissue"), batchSize: 2)
        #expect(back.voxels == labels.map(Float.init))
        #expect(n == labels.reduce(0) { $0 + Int($1) })
        let pngs = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("overlays").path)) ?? []
        let withForeground = (0..<src.depth).filter { z in labels[(z * src.width * src.height)..<((z + 1) * src.width * src.height)].contains(1) }
        #expect(pngs.count == withForeground.count)
        // An unreadable scan: the error names it and no label file is written.
        let junk = dir.appendingPathComponent("junk.nii")
        try Data("not a NIfTI".utf8).write(to: junk)
        let out2 = dir.appendingPathComponent("junk-mask.nii.gz")
        #expect { try SegmentStage.predict(model, input: junk, prompt: "lesion", window: try CTWindow.parse("soft_tissue"), out: out2,
                                           overlays: nil) } throws: { e in "\(e)".contains("junk.nii") }
        #expect(!FileManager.default.fileExists(atPath: out2.path))
        // A wrong grid is refused, naming the file.
        #expect { try NIfTIWriter.writeLabels([0, 1], like: src, to: dir.appendingPathComponent("x.nii")) } throws: { e in "\(e)".contains("x.nii") }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.nii").path))
    }
}
