import AxialEval
import AxialImaging
import AxialModels
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// `axial extract --adapters RUN/adapters.safetensors`: adapted slice embeddings in the feature
/// stores (the torch golden of the pooling is in AxialModelsTests CLIPAdaptedEncoderTests).
@Suite struct ExtractAdaptersTests {
    /// An `axial anomaly train`-shaped run on the random-init clip_test of `towerSeed`: the detector's
    /// adapters.safetensors (seg / det adapters, no prompt learner: template text) and run.json.
    static func makeRun(_ dir: URL, towerSeed: UInt64) throws -> (URL, CLIPAnomalyDetector) {
        let config = try CLIPAnomalyConfig.forEncoder("clip_test", text: .templates)
        var g = RandomGenerator(seed: towerSeed)
        let d = try CLIPAnomalyDetector(config, clip: CLIPModel(config.clip, generator: &g), seed: 42)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("adapters.safetensors")
        try SafeTensors.write(d.stateDict(), to: url)
        let info = AnomalyRunInfo(encoder: "clip_test", weights: nil, randomInitSeed: towerSeed, text: .templates, object: "Brain",
                                  shots: 0, seed: 41, epochs: 1, levels: config.adapters.levels, bottleneck: config.adapters.bottleneck)
        try JSONEncoder().encode(info).write(to: dir.appendingPathComponent("run.json"))
        return (url, d)
    }

    @Test func storedVectorsAreTheAdaptedTokensPooledPerLevel() throws {
        let root = scratch("adapt-in"), out = scratch("adapt-out")
        try syntheticIngest(root, patients: ["P1", "P2"], slices: 3, windows: ["abdomen", "lung"])
        let (adapters, detector) = try Self.makeRun(root.appendingPathComponent("run"), towerSeed: 3)
        var o = ExtractOptions(input: root, output: out, encoder: "clip_test", seed: 3, batchSize: 4, progress: .quiet)
        o.adapters = adapters
        let s = try Extract.run(o)
        #expect(s.written == 2 && s.failed == 0)
        let (f, _) = try FeatureStore.read(out.appendingPathComponent("P2.h5"))
        let levels = detector.config.adapters.levels.count, b = detector.config.adapters.bottleneck
        #expect(f.featDim == 2 * levels * b && f.count == 6)
        let adaptersSHA = try SHA256.hex(fileAt: adapters)
        #expect(f.metadata.encoder == "clip_test" && f.metadata.encoderSHA256 == "random-init-seed-3+adapters-" + adaptersSHA)
        #expect(f.metadata.preprocessingJSON.contains("mean over patch tokens of the seg, then det adapter bottleneck"))
        // Each row = the anomaly detector's own adapted tokens of that slice, averaged over patches.
        let pre = Extract.preprocess(for: try EncoderRegistry.spec("clip_test"))
        for i in 0..<f.count {
            let path = root.appendingPathComponent("P2/1.2.3/\(String(format: "%04d", f.sliceIndex[i]))_\(["abdomen", "lung"][Int(f.window[i])]).png")
            let t = try withNoGrad { try detector.tokens(pre.batch([PlanarImage8(try PNG.read(path))])) }
            var want: [Float] = []
            for k in 0..<levels {
                for tokens in [t.seg[k], t.det[k]] {
                    let n = tokens.shape[1], v = tokens.scalars
                    want += (0..<b).map { c in (0..<n).reduce(Float(0)) { $0 + v[$1 * b + c] } / Float(n) }
                }
            }
            let row = Array(f.row(i))
            #expect(firstNonFinite(row) == nil)
            let err = maxAbsDifference(row, want), scale = want.map { abs($0) }.max()!
            #expect(err <= 1e-5 * scale, "row \(i): \(err) (scale \(scale))")
        }
        // Plain embeddings are never mixed into the adapted folder.
        o.adapters = nil
        #expect(throws: PipelineError.self) { try Extract.run(o) }
    }

    @Test func adaptersThatDoNotFitTheRunAreRefused() throws {
        let root = scratch("adapt-bad-in")
        try syntheticIngest(root, patients: ["P1"], slices: 1, windows: ["abdomen"])
        let (adapters, _) = try Self.makeRun(root.appendingPathComponent("run"), towerSeed: 3)
        func attempt(_ change: (inout ExtractOptions) -> Void) -> String {
            var o = ExtractOptions(input: root, output: scratch("adapt-bad-out"), encoder: "clip_test", seed: 3, progress: .quiet)
            o.adapters = adapters
            change(&o)
            do { _ = try Extract.run(o); return "no error" } catch { return "\(error)" }
        }
        #expect(attempt { $0.seed = 4 }.contains("trained on the random-init CLIP of seed 3; got --seed 4"))
        #expect(attempt { $0.encoder = "vit_test" }.contains("needs a CLIP ViT encoder"))
        #expect(attempt { $0.adapters = root.appendingPathComponent("manifest.csv") }.contains("cannot read the adapters"))
        // Without run.json the levels are the tower's quarter points (clip_test: 1, 2, 3, 4).
        let bare = root.appendingPathComponent("bare.safetensors")
        try FileManager.default.copyItem(at: adapters, to: bare)
        #expect(attempt { $0.adapters = bare } == "no error")
        // A file with a level missing does not fit.
        var state = try SafeTensors.read(adapters).tensors
        for k in state.keys where k.hasPrefix("seg_adapters.3.") || k.hasPrefix("det_adapters.3.") { state[k] = nil }
        let short = root.appendingPathComponent("short.safetensors")
        try SafeTensors.write(state, to: short)
        #expect(attempt { $0.adapters = short }.contains("3 adapter levels in the file, but the levels are [1, 2, 3, 4]"))
    }

    @Test func crossvalRunsOnAdaptedStores() throws {
        let root = scratch("adapt-cv")
        let patients = (0..<8).map { "P\($0)" }
        try syntheticIngest(root, patients: patients, slices: 3, windows: ["abdomen"])
        let (adapters, _) = try Self.makeRun(root.appendingPathComponent("run"), towerSeed: 0)
        let features = root.appendingPathComponent("features")
        var o = ExtractOptions(input: root, output: features, encoder: "clip_test", seed: 0, batchSize: 8, progress: .quiet)
        o.adapters = adapters
        #expect(try Extract.run(o).written == 8)
        try CSVTable(header: ["patient_id", "lesion"], rows: patients.enumerated().map { [$1, String($0 % 2)] })
            .write(to: root.appendingPathComponent("clinical.csv"))
        let taskURL = root.appendingPathComponent("task.yaml")
        try CrossValTests.taskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        var cv = CrossValOptions(features: features, table: root.appendingPathComponent("clinical.csv"), task: taskURL.path,
                                 head: .abmil, out: root.appendingPathComponent("cv"))
        cv.folds = 2; cv.seed = 1; cv.epochs = 2; cv.batchSize = 4; cv.hidden = 8; cv.attentionHidden = 4
        cv.log = { _ in }
        let r = try CrossVal.run(cv)
        #expect(r.foldsTrained == [0, 1])
        let preds = try Predictions.load(root.appendingPathComponent("cv"))
        #expect(Set(preds.pooled.patientIDs) == Set(patients))
        #expect(preds.pooled.scores.allSatisfy { $0.allSatisfy(\.isFinite) })
    }
}
