import AxialEval
import AxialModels
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

@Suite struct BagsTests {
    @Test func sampleKeepsKeySlicesAndOrder() {
        let slices = (0..<40).map { $0 / 2 }   // 20 slices × 2 windows
        var g = RandomGenerator(seed: 3)
        let rows = Bags.sampleRows(sliceIndex: slices, maxSize: 10, keySlices: [4, 17], rng: &g)
        #expect(rows.count == 10)
        #expect(rows == rows.sorted())
        #expect(Set(rows).isSuperset(of: [8, 9, 34, 35]))
        var g2 = RandomGenerator(seed: 3)
        #expect(Bags.sampleRows(sliceIndex: slices, maxSize: 10, keySlices: [4, 17], rng: &g2) == rows)  // seeded
        var g3 = RandomGenerator(seed: 1)
        #expect(Bags.sampleRows(sliceIndex: slices, maxSize: 50, keySlices: [], rng: &g3) == Array(0..<40))
        // More key rows than room: a subset of the key rows only.
        let some = Bags.sampleRows(sliceIndex: slices, maxSize: 3, keySlices: [1, 2, 3], rng: &g3)
        #expect(some.count == 3 && some.allSatisfy { (2..<8).contains($0) })
    }

    @Test func batchPadsWithZerosAndMask() {
        let a = PatientBag(patientID: "a", dimension: 2, features: [1, 2, 3, 4, 5, 6], sliceIndex: [0, 1, 2], zMM: [0, 1, 2], window: ["w", "w", "w"])
        let b = PatientBag(patientID: "b", dimension: 2, features: [7, 8], sliceIndex: [5], zMM: [9], window: ["w"])
        let (x, m) = Bags.batch([a, b])
        #expect(x.shape == [2, 3, 2] && m.shape == [2, 3])
        #expect(x.scalars == [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0])
        #expect(m.scalars == [1, 1, 1, 1, 0, 0])
    }

    @Test func loadChoosesWindowsAndReportsMissingOnes() throws {
        let dir = temporaryFolder("bags")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = SyntheticCohortConfig(task: try TaskSpec.parse("name: t\nkind: binary\ncolumn: y\n"))
        cfg.patients = 2; cfg.featureDimension = 4; cfg.slices = 5...5
        let cohort = SyntheticCohort(cfg)
        let features = try cohort.write(to: dir)
        let url = features.appendingPathComponent(FeatureStore.fileName(patientID: cohort.patients[0].id))
        let all = try Bags.load(url, patientID: "p")
        #expect(all.count == 10 && all.window.prefix(2) == ["abdomen", "chest"])
        let chest = try Bags.load(url, patientID: "p", windows: ["chest"])
        #expect(chest.count == 5 && chest.sliceIndex == [0, 1, 2, 3, 4] && chest.window.allSatisfy { $0 == "chest" })
        #expect(Array(chest.features.prefix(4)) == Array(cohort.patients[0].features[4..<8]))
        #expect(throws: MILError.self) { try Bags.load(url, patientID: "p", windows: ["bone"]) }
    }
}

@Suite(.serialized) struct CrossValTests {
    static func cohort(patients: Int = 90, seed: UInt64 = 11) -> (SyntheticCohort, TaskSpec) {
        let task = try! TaskSpec.parse(taskYAML)
        var cfg = SyntheticCohortConfig(task: task)
        cfg.patients = patients; cfg.featureDimension = 16; cfg.slices = 12...18; cfg.windows = [StoredWindow(name: "abdomen", width: 400, level: 40)]
        cfg.informativeSlices = 2; cfg.signal = 4; cfg.prevalence = 0.5; cfg.seed = seed
        return (SyntheticCohort(cfg), task)
    }

    static let taskYAML = "name: synthetic_binary\nkind: binary\ncolumn: lesion\n"

    /// Evidence: on a cohort whose labels depend on two informative slices, 3-fold crossval of the
    /// CLEAR ABMIL head reaches AUROC > 0.9 on the pooled out-of-fold scores, and the attention of
    /// positive test patients peaks on an informative slice. Rerun skips finished folds; deploy of
    /// the fold ensemble reproduces the setup's outputs; statistics reads them.
    @Test(arguments: [HeadKind.abmil, .pma])
    func crossvalLearnsInformativeSlices(head: HeadKind) throws {
        let dir = temporaryFolder("crossval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cohort, _) = Self.cohort()
        let features = try cohort.write(to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try Self.taskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("cv")
        var o = CrossValOptions(features: features, table: dir.appendingPathComponent("clinical.csv"), task: taskURL.path, head: head, out: out)
        o.folds = 3; o.seed = 5; o.epochs = 40; o.learningRate = 1e-3; o.batchSize = 8; o.patience = 10
        o.hidden = 32; o.attentionHidden = 16; o.heads = 4
        o.log = { _ in }
        let r = try CrossVal.run(o)
        #expect(r.foldsTrained == [0, 1, 2])
        for k in 0..<3 {
            for f in ["model.safetensors", "patient_preds.csv", "slice_attention.csv", "training.csv", "loss_curve.svg"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("fold-\(k)/\(f)").path), "fold-\(k)/\(f)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("splits.json").path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("task.yaml").path))

        let preds = try Predictions.load(out)
        #expect(preds.pooled.count == cohort.patients.count)
        let auroc = Metrics.summarize(preds.pooled).auroc[0]!
        #expect(auroc > 0.9, "\(head.rawValue) pooled AUROC \(auroc), per fold \(preds.parts.map { Metrics.summarize($0.data).auroc[0] ?? -1 })")

        // Attention peaks on an informative slice for positive patients.
        var hits = 0, positives = 0
        for fold in 0..<3 {
            let t = try CSVTable.read(out.appendingPathComponent("fold-\(fold)/slice_attention.csv"))
            var best: [String: (Double, Int)] = [:]
            for row in t.rows { let a = Double(row[4])!; if a > (best[row[0]]?.0 ?? -1) { best[row[0]] = (a, Int(row[1])!) } }
            for p in cohort.patients where p.trueLabels[0] == 1 {
                guard let b = best[p.id] else { continue }
                positives += 1
                if p.informativeSlices[0].contains(b.1) { hits += 1 }
            }
        }
        #expect(positives > 10 && Double(hits) / Double(positives) > 0.8, "\(head.rawValue): attention peak on informative slices for \(hits)/\(positives)")

        // Resumable: a rerun skips every finished fold.
        let again = try CrossVal.run(o)
        #expect(again.foldsTrained.isEmpty && again.foldsSkipped == [0, 1, 2])

        // Deploy: mean ensemble of the three fold models.
        var d = DeployOptions(models: [out], features: features, out: dir.appendingPathComponent("deploy"))
        d.table = dir.appendingPathComponent("clinical.csv"); d.log = { _ in }
        let dep = try Deploy.run(d)
        #expect(dep.models == 3 && dep.patients == cohort.patients.count)
        let deployed = try Predictions.load(dir.appendingPathComponent("deploy"))
        #expect(Metrics.summarize(deployed.pooled).auroc[0]! > 0.9)
        let stats = try StatisticsStage.run(preds: out, out: dir.appendingPathComponent("stats"), options: StatisticsOptions(bootstrap: BootstrapOptions(resamples: 50)))
        #expect(stats.pooled.auroc[0]! == auroc)
    }

    @Test func cohortErrorsStopBeforeTraining() throws {
        let dir = temporaryFolder("crossval-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cohort, _) = Self.cohort(patients: 6)
        let features = try cohort.write(to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try Self.taskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        var table = cohort.clinicalTable
        table.rows[2][1] = "yes"
        try table.write(to: dir.appendingPathComponent("bad.csv"))
        var o = CrossValOptions(features: features, table: dir.appendingPathComponent("bad.csv"), task: taskURL.path, head: .abmil, out: dir.appendingPathComponent("cv"))
        o.log = { _ in }
        #expect(throws: EvalError.self) { try CrossVal.run(o) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cv/fold-0").path))
    }
}
