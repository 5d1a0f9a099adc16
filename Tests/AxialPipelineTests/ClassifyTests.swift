import AxialEval
import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation
import Testing
@testable import AxialPipeline

/// A synthetic multi-label set of 64² gray PNGs: class c (of 3) puts a bright square in quadrant
/// c (top-left, top-right, bottom-left) at a random offset, over noise; labels with a few −1.
struct ClassifyCohort {
    let dir: URL
    let classes = ["left upper opacity", "right upper opacity", "left lower opacity"]

    init(name: String) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-classify-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try (classes.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("classes.txt"), atomically: true, encoding: .utf8)
    }

    /// Writes `count` images and their jsonl; returns the labels.
    @discardableResult
    func write(_ file: String, count: Int, seed: UInt64, unknown: Double = 0) throws -> [[Int]] {
        var g = RandomGenerator(seed: seed)
        var lines: [String] = [], all: [[Int]] = []
        for i in 0..<count {
            let s = 64
            var px = (0..<(s * s)).map { _ in UInt8(40 + g.int(below: 50)) }
            var labels = (0..<3).map { _ in g.uniform() < 0.4 ? 1 : 0 }
            for c in 0..<3 where labels[c] == 1 {
                let x0 = (c % 2) * 32 + 4 + g.int(below: 10), y0 = (c / 2) * 32 + 4 + g.int(below: 10)
                for y in y0..<(y0 + 14) { for x in x0..<(x0 + 14) { px[y * s + x] = 230 } }
            }
            let name = "\(file)-\(i).png"
            try PNG.write(Image8(width: s, height: s, channels: 1, pixels: px), to: dir.appendingPathComponent(name))
            all.append(labels)
            for c in 0..<3 where Double(g.uniform()) < unknown { labels[c] = -1 }
            lines.append("{\"id\": \"\(file)\(i)\", \"filepath\": \"\(name)\", \"text\": \"\", \"labels\": [\(labels.map(String.init).joined(separator: ", "))]}")
        }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("\(file).jsonl"), atomically: true, encoding: .utf8)
        return all
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
}

@Suite struct ClassifyTests {
    func options(_ cohort: ClassifyCohort, out: String, epochs: Int) -> Classify.TrainOptions {
        var o = Classify.TrainOptions(train: cohort.path("train.jsonl"), classes: cohort.path("classes.txt"), out: cohort.path(out))
        o.backbone = "tiny"; o.epochs = epochs; o.batch = 16; o.lr = 0.05; o.minLR = 0.005; o.warmupEpochs = 1; o.seed = 3
        o.temperature = 1     // the random tiny towers: logits start at ±5·exp(0) instead of ±5·14.3
        return o
    }

    /// Fails if PsPG stops learning: trained on 96 synthetic images, the held-out macro AUC of the
    /// seen labels is far above chance.
    @Test func learnsSeenLabels() throws {
        let cohort = try ClassifyCohort(name: "learn")
        try cohort.write("train", count: 96, seed: 1, unknown: 0.1)
        let testLabels = try cohort.write("test", count: 60, seed: 2)
        var o = options(cohort, out: "run", epochs: 16)
        o.val = cohort.path("test.jsonl")
        let r = try Classify.train(o)
        #expect(r.finished)
        #expect(r.rows.count == 16)
        #expect(r.rows.allSatisfy { $0.loss.isFinite })
        let m = try Classify.test(model: r.modelPath, data: cohort.path("test.jsonl"), out: cohort.path("eval"))
        let auc = try #require(m.macroAUC)
        // The same model before learning (one epoch at a vanishing learning rate) as the baseline.
        var untrained = options(cohort, out: "untrained", epochs: 1)
        untrained.lr = 1e-12; untrained.minLR = 0; untrained.warmupEpochs = 0
        let u = try Classify.train(untrained)
        let base = try #require(try Classify.test(model: u.modelPath, data: cohort.path("test.jsonl"), out: cohort.path("eval0")).macroAUC)
        print("PsPG tiny synthetic: held-out macro AUC \(auc) after 16 epochs, \(base) untrained; micro AUC \(m.microAUC ?? .nan), mAP \(m.meanAveragePrecision ?? .nan)")
        #expect(auc > 0.8, "held-out macro AUC \(auc)")
        #expect(auc > base + 0.15, "trained \(auc) vs untrained \(base)")
        // metrics.json / predictions.csv written; predictions equal MultiLabelMetrics' input.
        let csv = try String(contentsOfFile: cohort.path("eval/predictions.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("id,left upper opacity,right upper opacity,left lower opacity\n"))
        #expect(csv.split(separator: "\n").count == 61)
        #expect(FileManager.default.fileExists(atPath: cohort.path("eval/metrics.json")))
        #expect(testLabels.count == 60)
    }

    /// 2 epochs in one go = 1 epoch, stop, resume for the 2nd: same weights, same training.csv.
    @Test(arguments: [false, true]) func resumeIsExact(ema: Bool) throws {
        let cohort = try ClassifyCohort(name: "resume")
        try cohort.write("train", count: 20, seed: 5)
        var a = options(cohort, out: "a", epochs: 2); a.batch = 8; a.ema = ema; a.emaDecay = 0.9
        a.decoder = .gru
        _ = try Classify.train(a)
        var b = options(cohort, out: "b", epochs: 2); b.batch = 8; b.ema = ema; b.emaDecay = 0.9
        b.stopAfterEpochs = 1
        let first = try Classify.train(b)
        #expect(!first.finished)
        b.stopAfterEpochs = nil; b.resume = true
        let second = try Classify.train(b)
        #expect(second.finished)
        let wa = try SafeTensors.read(URL(fileURLWithPath: cohort.path("a/model.safetensors"))).tensors
        let wb = try SafeTensors.read(URL(fileURLWithPath: cohort.path("b/model.safetensors"))).tensors
        #expect(wa.keys.sorted() == wb.keys.sorted())
        for (k, t) in wa { #expect(t.scalars == wb[k]!.scalars, "\(k) differs after resume") }
        let ca = try String(contentsOfFile: cohort.path("a/training.csv"), encoding: .utf8)
        let cb = try String(contentsOfFile: cohort.path("b/training.csv"), encoding: .utf8)
        #expect(ca == cb)
    }

    /// `predict --classes` scores names never seen in training through the text tower.
    @Test func predictsUnseenClassNames() throws {
        let cohort = try ClassifyCohort(name: "zeroshot")
        try cohort.write("train", count: 16, seed: 7)
        var o = options(cohort, out: "run", epochs: 1); o.batch = 8; o.decoder = .mlp
        let r = try Classify.train(o)
        try "pleural effusion\ncardiomegaly\n".write(to: cohort.dir.appendingPathComponent("unseen.txt"), atomically: true, encoding: .utf8)
        let p = try Classify.predict(model: r.modelPath, data: cohort.path("train.jsonl"), out: cohort.path("zs"), classes: cohort.path("unseen.txt"))
        #expect(p.names == ["pleural effusion", "cardiomegaly"])
        #expect(p.scores.count == 16 && p.scores.allSatisfy { $0.count == 2 && $0.allSatisfy { $0 > 0 && $0 < 1 } })
        let header = try String(contentsOfFile: cohort.path("zs/predictions.csv"), encoding: .utf8).split(separator: "\n")[0]
        #expect(header == "id,pleural effusion,cardiomegaly")
    }

    @Test func badDataIsNamedWithFileAndLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-classify-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func check(_ body: String, _ expected: String, classes: Int? = 2) throws {
            let p = dir.appendingPathComponent("d.jsonl")
            try body.write(to: p, atomically: true, encoding: .utf8)
            #expect(throws: ClassifyDataError.badLine(path: p.path, line: 2, reason: expected)) {
                _ = try ClassifyData.load(p.path, classes: classes)
            }
        }
        let ok = "{\"id\": \"a\", \"filepath\": \"a.png\", \"labels\": [1, 0]}\n"
        try check(ok + "not json\n", "not a JSON object")
        try check(ok + "{\"filepath\": \"b.png\", \"labels\": [1, 0]}\n", "field 'id' missing or not a string / integer")
        try check(ok + "{\"id\": \"a\", \"filepath\": \"b.png\", \"labels\": [1, 0]}\n", "id 'a' repeats line 1")
        try check(ok + "{\"id\": \"b\", \"labels\": [1, 0]}\n", "field 'filepath' missing or not a string")
        try check(ok + "{\"id\": \"b\", \"filepath\": \"b.png\", \"labels\": [1, 2]}\n", "labels[1] = 2 must be 1, 0 or -1")
        try check(ok + "{\"id\": \"b\", \"filepath\": \"b.png\", \"labels\": [1]}\n", "1 labels, expected 2 (one per class)")
        try check(ok + "{\"id\": \"b\", \"filepath\": \"b.png\"}\n", "field 'labels' missing")
        try check(ok + "{\"id\": \"b\", \"filepath\": \"b.png\", \"text\": 3, \"labels\": [1, 0]}\n", "field 'text' is not a string")
        let cls = dir.appendingPathComponent("c.txt")
        try "a\nb\na\n".write(to: cls, atomically: true, encoding: .utf8)
        #expect(throws: ClassifyDataError.badClasses(path: cls.path, line: 3, reason: "class 'a' repeats line 1")) {
            _ = try ClassifyData.loadClasses(cls.path)
        }
        // A missing image names the file and the record.
        let p = dir.appendingPathComponent("ok.jsonl")
        try ok.write(to: p, atomically: true, encoding: .utf8)
        let r = try ClassifyData.load(p.path, classes: 2)
        #expect(r[0].path == dir.appendingPathComponent("a.png").path)
        #expect(throws: ClassifyDataError.image(path: r[0].path, id: "a", reason: "no such file")) { _ = try ClassifyData.image(r[0]) }
    }

    @Test func augmentation() throws {
        var px = [UInt8](repeating: 0, count: 3 * 8 * 8)
        px[0 * 64 + 1 * 8 + 6] = 200            // channel 0, (x 6, y 1)
        let img = PlanarImage8(width: 8, height: 8, channels: 3, pixels: px)
        #expect(PsPGAugment.affine(img, degrees: 0) == img)
        // 90° counter-clockwise on screen: (x, y) → (y, W−1−x).
        let r = PsPGAugment.affine(img, degrees: 90)
        #expect(r.pixels[0 * 64 + (8 - 1 - 6) * 8 + 1] == 200)
        #expect(r.pixels.filter { $0 != 0 }.count == 1)
        // An integer translation shifts.
        let t = PsPGAugment.affine(img, degrees: 0, translate: (-2, 3))
        #expect(t.pixels[0 * 64 + 4 * 8 + 4] == 200)
        var g = RandomGenerator(seed: 1)
        var seen = Set<String>()
        for _ in 0..<40 {
            let (v, ops) = PsPGAugment.view(img, config: PsPGAugmentConfig(size: 8), generator: &g)
            #expect(ops.count == 2 && Set(ops).count == 2)
            #expect(v.width == 8 && v.height == 8 && v.channels == 3)
            seen.formUnion(ops.map(\.rawValue))
        }
        #expect(seen == Set(PsPGAugment.Op.allCases.map(\.rawValue)))
    }
}
