import AxialCore
import AxialEval
import AxialImaging
import AxialModels
import AxialPipeline
import AxialStore
import AxialTensor
import AxialTestSupport
import Foundation
import Testing

/// A synthetic BMAD-layout set: 32×32 gray slices with noise; Ungood ones carry a bright disc
/// (radius 4–6 px) whose mask is in Ungood/anomaly_mask/.
func writeSyntheticAnomalySet(_ root: URL, counts: [String: Int], seed: UInt64) throws {
    var g = RandomGenerator(seed: seed)
    let S = 32
    for (split, n) in counts.sorted(by: { $0.key < $1.key }) {
        for (cls, abnormal) in [("good", false), ("Ungood", true)] {
            let img = root.appendingPathComponent("\(split)/\(cls)/img"), msk = root.appendingPathComponent("\(split)/\(cls)/anomaly_mask")
            try FileManager.default.createDirectory(at: img, withIntermediateDirectories: true)
            if abnormal { try FileManager.default.createDirectory(at: msk, withIntermediateDirectories: true) }
            for i in 0..<n {
                var px = (0..<(S * S)).map { _ in UInt8(max(0, min(255, 90 + 25 * g.normal()))) }
                var mask = [UInt8](repeating: 0, count: S * S)
                if abnormal {
                    let r = 4 + Float(g.int(below: 3)), cx = 6 + Float(g.int(below: 20)), cy = 6 + Float(g.int(below: 20))
                    for y in 0..<S { for x in 0..<S where (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy) <= r * r {
                        px[y * S + x] = UInt8(max(0, min(255, 230 + 10 * g.normal()))); mask[y * S + x] = 255
                    } }
                    try PNG.write(Image8(width: S, height: S, channels: 1, pixels: mask), to: msk.appendingPathComponent(String(format: "%03d.png", i)))
                }
                try PNG.write(Image8(width: S, height: S, channels: 1, pixels: px), to: img.appendingPathComponent(String(format: "%03d.png", i)))
            }
        }
    }
}

@Suite struct AnomalyStageTests {
    static func options(_ data: URL, _ out: URL, epochs: Int, shots: Int = 0) -> AnomalyStage.TrainOptions {
        var o = AnomalyStage.TrainOptions(data: data.path, encoder: "clip_test", out: out.path)
        o.randomInit = true; o.epochs = epochs; o.seed = 5; o.shots = shots
        o.adapterLR = 1e-3; o.promptLR = 1e-3
        return o
    }

    /// Trained adapters + prompts beat the untrained ones on pixel AUROC of the test split (fails if
    /// training stops learning), and every output file is consistent with metrics.csv.
    @Test func trainingLearnsAndTestWritesConsistentFiles() throws {
        let root = temporaryFolder("anomaly-learn")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("Syn_AD")
        try writeSyntheticAnomalySet(data, counts: ["train": 16, "valid": 6, "test": 10], seed: 1)
        let untrained = try AnomalyStage.train(Self.options(data, root.appendingPathComponent("run0"), epochs: 0), progressStyle: .quiet)
        #expect(untrained.bestEpoch == 0)
        let trained = try AnomalyStage.train(Self.options(data, root.appendingPathComponent("run1"), epochs: 6), progressStyle: .quiet)
        let t0 = try AnomalyStage.test(data: data.path, run: root.appendingPathComponent("run0").path, out: root.appendingPathComponent("t0").path, progressStyle: .quiet)
        let outDir = root.appendingPathComponent("t1")
        let t1 = try AnomalyStage.test(data: data.path, run: root.appendingPathComponent("run1").path, out: outDir.path, progressStyle: .quiet)
        let p0 = try #require(t0.pixelAUROC), p1 = try #require(t1.pixelAUROC)
        print("anomaly learning test: pixel AUROC untrained \(p0) → trained \(p1) (best epoch \(trained.bestEpoch)); image AUROC \(t0.imageAUROC ?? .nan) → \(t1.imageAUROC ?? .nan)")
        #expect(p1 > p0 + 0.05, "pixel AUROC untrained \(p0), trained \(p1)")
        #expect(trained.bestEpoch > 0)

        // scores.csv, anomaly_maps.h5 and metrics.csv agree.
        let scores = try CSV.parse(String(contentsOf: outDir.appendingPathComponent("scores.csv"), encoding: .utf8))
        #expect(scores.first == ["image", "label", "score", "zero_shot_score", "few_shot_score"] && scores.count == 21)
        let images = try AnomalyData.split(data, "test")
        let maps = try MapStore.read(outDir.appendingPathComponent("anomaly_maps.h5"), names: images.map(\.storeName))
        var labels: [Int] = [], values: [Double] = []
        for (im, m) in zip(images, maps) {
            #expect(m.height == 32 && m.width == 32)
            let mask = try im.maskPath.map { try AnomalyData.loadMask($0, width: 32, height: 32) } ?? [Float](repeating: 0, count: 1024)
            labels += mask.map { Int($0) }; values += m.values.map(Double.init)
            #expect(FileManager.default.fileExists(atPath: outDir.appendingPathComponent("overlays/\(im.storeName)").path))
        }
        let metrics = try CSV.parse(String(contentsOf: outDir.appendingPathComponent("metrics.csv"), encoding: .utf8))
        let pixelRow = try #require(metrics.first { $0.first == "pixel_auroc" })
        let pixel = try #require(Double(pixelRow[1]))
        #expect(abs(pixel - (Metrics.auroc(labels: labels, scores: values) ?? .nan)) < 1e-12)
        let imageRow = try #require(metrics.first { $0.first == "image_auroc" })
        let image = try #require(Double(imageRow[1]))
        let s = scores.dropFirst().map { (Int($0[1])!, Double($0[2])!) }
        #expect(abs(image - (Metrics.auroc(labels: s.map(\.0), scores: s.map(\.1)) ?? .nan)) < 1e-12)
    }

    /// Stopping after one epoch and resuming gives the files of an uninterrupted run, byte for byte;
    /// few-shot runs write a bank and fused scores.
    @Test func resumeIsExactAndFewShotRuns() throws {
        let root = temporaryFolder("anomaly-resume")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("Syn_AD")
        try writeSyntheticAnomalySet(data, counts: ["valid": 5, "test": 3], seed: 2)
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        _ = try AnomalyStage.train(Self.options(data, a, epochs: 2, shots: 1), progressStyle: .quiet)
        var ob = Self.options(data, b, epochs: 2, shots: 1); ob.stopAfter = 1
        let first = try AnomalyStage.train(ob, progressStyle: .quiet)
        #expect(first.epochsDone == 1)
        #expect(throws: AnomalyError.self) { _ = try AnomalyStage.train(Self.options(data, b, epochs: 2, shots: 1), progressStyle: .quiet) }
        ob.stopAfter = nil; ob.resume = true
        #expect(try AnomalyStage.train(ob, progressStyle: .quiet).epochsDone == 2)
        for f in ["adapters.safetensors", "training.csv", "bank.safetensors"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(f)) == Data(contentsOf: b.appendingPathComponent(f)), "\(f)")
        }
        // The checkpoint's tensors (weights + Adam state); its metadata also holds the process-wide default RNG.
        let ca = try SafeTensors.read(a.appendingPathComponent("checkpoint.safetensors")), cb = try SafeTensors.read(b.appendingPathComponent("checkpoint.safetensors"))
        #expect(ca.tensors.keys.sorted() == cb.tensors.keys.sorted())
        for (k, v) in ca.tensors { #expect(v.scalars == cb.tensors[k]?.scalars, "checkpoint \(k)") }
        #expect(ca.metadata["rng.shuffle"] == cb.metadata["rng.shuffle"] && ca.metadata["step"] == cb.metadata["step"])
        let t = try AnomalyStage.test(data: data.path, run: a.path, out: root.appendingPathComponent("t").path, progressStyle: .quiet)
        #expect(t.count == 6 && t.imageAUROC != nil)
        let rows = try CSV.parse(String(contentsOf: root.appendingPathComponent("t/scores.csv"), encoding: .utf8)).dropFirst()
        #expect(rows.allSatisfy { !$0[4].isEmpty })
        // score = 0.5·minmax(zero-shot) + 0.5·minmax(few-shot) over the test images.
        let zero = AnomalyMaps.minMax(rows.map { Float($0[3])! }), few = AnomalyMaps.minMax(rows.map { Float($0[4])! })
        for (i, r) in rows.enumerated() { #expect(abs(Double(r[2])! - Double(0.5 * zero[i] + 0.5 * few[i])) < 1e-6) }
        _ = try AnomalyStage.predict(input: data.appendingPathComponent("test").path, run: a.path, out: root.appendingPathComponent("p").path, progressStyle: .quiet)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("p/anomaly_maps.h5").path))
    }

    @Test func badInputsAreRefusedWithTheirNames() throws {
        let root = temporaryFolder("anomaly-bad")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("Syn_AD")
        try writeSyntheticAnomalySet(data, counts: ["valid": 2, "test": 2], seed: 3)
        // No train/ and no shots.
        #expect(throws: AnomalyError.self) { _ = try AnomalyStage.train(Self.options(data, root.appendingPathComponent("r"), epochs: 1), progressStyle: .quiet) }
        // Both or neither of --weights / --random-init.
        var o = Self.options(data, root.appendingPathComponent("r2"), epochs: 1, shots: 1); o.randomInit = false
        #expect(throws: AnomalyError.self) { _ = try AnomalyStage.train(o, progressStyle: .quiet) }
        // A missing mask names the image.
        try FileManager.default.removeItem(at: data.appendingPathComponent("test/Ungood/anomaly_mask/000.png"))
        do { _ = try AnomalyData.split(data, "test"); Issue.record("no error") } catch let e as AnomalyDataError {
            #expect(e.description.contains("000.png"))
        }
        #expect(throws: AnomalyError.self) { _ = try AnomalyStage.test(data: data.path, run: root.appendingPathComponent("none").path, out: root.appendingPathComponent("t").path) }
        #expect(throws: AnomalyDataError.self) { _ = try AnomalyData.split(data, "train") }
    }
}
