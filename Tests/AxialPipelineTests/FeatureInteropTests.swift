import AxialEval
import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// Feature files exchanged with other tools, both ways. The fixtures under Fixtures/interop were
/// written by h5py (Tools/fixtures/make_feature_interop_fixtures.py) in CLEAR, STAMP and CLAM
/// layout; Axial's own files and its CLAM copy are read back by h5py when python3 + h5py exist.
@Suite(.serialized) struct FeatureInteropTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures/interop", withExtension: nil)!
    static let taskYAML = "name: interop\nkind: binary\ncolumn: lesion\n"

    /// The generator's formula: ((7p + 3r + j) mod 11) / 4 − 1, +8 at [1, 0] for odd p; N = 4 + p mod 3, D = 6.
    static func expected(_ p: Int) -> (n: Int, feats: [Float]) {
        let n = 4 + p % 3
        var x: [Float] = []
        for r in 0..<n { for j in 0..<6 { x.append(Float((7 * p + 3 * r + j) % 11) / 4 - 1 + (p % 2 == 1 && r == 1 && j == 0 ? 8 : 0)) } }
        return (n, x)
    }

    @Test(arguments: [FeatureFileLayout.clear, .stamp, .clam])
    func readsOtherToolsFiles(layout: FeatureFileLayout) throws {
        for p in 0..<10 {
            let url = Self.fixtures.appendingPathComponent("\(layout.rawValue)/P\(String(format: "%02d", p)).h5")
            #expect(try FeatureStore.layout(of: url) == layout)
            let loaded = try FeatureStore.readAnyLayout(url)
            let f = loaded.features, (n, feats) = Self.expected(p)
            #expect(loaded.layout == layout)
            #expect(f.featDim == 6 && f.count == n)
            #expect(f.feats == feats)  // exact: every value is a multiple of 1/4 below 16 (float16-exact)
            #expect(f.sliceIndex == (0..<n).map { Int32($0) })
            #expect(f.zMM.allSatisfy { $0.isNaN })
            #expect(f.window == [Int32](repeating: 0, count: n) && f.metadata.windows.map(\.name) == [FeatureStore.unnamedWindow])
            #expect(f.metadata.patientID == "P\(String(format: "%02d", p))")
            #expect(loaded.lacks.starts(with: ["slice_index", "z_mm", "window"]))
            #expect(loaded.assumed.contains("slice order = row order (slice_index = row number)"))
            if layout == .stamp {
                #expect(f.metadata.encoder == "test-tile-encoder" && f.metadata.encoderSHA256 == "0123abcd")
                #expect(!loaded.lacks.contains("encoder") && loaded.assumed.contains("coords read as 2-D tile positions (not slice positions), not used"))
            } else {
                #expect(loaded.lacks.contains("encoder") && loaded.lacks.contains("encoder_sha256"))
            }
        }
    }

    static func run(features: URL, table: URL, out: URL, logs: LockedLines, skipNonFinite: Bool = false,
                    change: (inout CrossValOptions) -> Void = { _ in }) throws -> CrossValResult {
        let taskURL = out.deletingLastPathComponent().appendingPathComponent("task.yaml")
        try Self.taskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        var o = CrossValOptions(features: features, table: table, task: taskURL.path, head: .abmil, out: out)
        o.folds = 2; o.seed = 3; o.epochs = 30; o.batchSize = 4; o.patience = 30; o.hidden = 16; o.attentionHidden = 8
        o.validationFraction = 0.25; o.skipNonFinite = skipNonFinite
        o.log = { logs.append($0) }
        change(&o)
        return try CrossVal.run(o)
    }

    /// A rerun into the same folder continues with the same inputs (finished folds skipped) and
    /// stops naming what changed otherwise: split settings, cohort, feature provenance, training.
    @Test func rerunChecksTheRecordedInputs() throws {
        let dir = temporaryFolder("interop-rerun")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cv")
        let clear = Self.fixtures.appendingPathComponent("clear"), labels = Self.fixtures.appendingPathComponent("labels.csv")
        _ = try Self.run(features: clear, table: labels, out: out, logs: LockedLines())
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: out.appendingPathComponent("run.json")))
        #expect(record.folds == 2 && record.seed == 3 && record.validationFraction == 0.25 && record.patients == 10)
        #expect(record.features == ["unknown (CLEAR layout)"])
        let logs = LockedLines()
        let again = try Self.run(features: clear, table: labels, out: out, logs: logs)
        #expect(again.foldsSkipped == [0, 1] && again.foldsTrained.isEmpty)
        #expect(logs.lines.contains { $0.contains("holds a run with the same inputs (run.json): continuing") })

        func refused(_ what: String, features: URL = clear, table: URL = labels, _ change: @escaping (inout CrossValOptions) -> Void = { _ in }) {
            do {
                _ = try Self.run(features: features, table: table, out: out, logs: LockedLines(), change: change)
                Issue.record("a rerun with \(what) was accepted")
            } catch {
                #expect("\(error)".contains("holds a crossval run with other inputs") && "\(error)".contains(what), "\(error)")
            }
        }
        refused("seed 3 → 4") { $0.seed = 4 }
        refused("folds 2 → 3") { $0.folds = 3 }
        refused("validation fraction 0.25 → 0.3") { $0.validationFraction = 0.3 }
        refused("head abmil → pma") { $0.head = .pma }
        refused("feature files made by unknown (CLEAR layout) → test-tile-encoder (weights sha256 0123abcd…)", features: Self.fixtures.appendingPathComponent("stamp"))
        let flipped = dir.appendingPathComponent("flipped.csv")
        try "patient_id,lesion\n".appending((0..<10).map { "P\(String(format: "%02d", $0)),\($0 == 0 ? 1 : $0 % 2)" }.joined(separator: "\n")).write(to: flipped, atomically: true, encoding: .utf8)
        refused("cohort 10 patients (labels fingerprint \(record.labelsFingerprint)) → 10 patients", table: flipped)
        // Trained folds without a record (an older Axial): refused, nothing to check against.
        try FileManager.default.removeItem(at: out.appendingPathComponent("run.json"))
        #expect(throws: MILError.self) { try Self.run(features: clear, table: labels, out: out, logs: LockedLines()) }
    }

    /// crossval and deploy take CLEAR / STAMP / CLAM files, say once what they lack and what is
    /// assumed, and learn the label (+8 on one row of the positives).
    @Test(arguments: [FeatureFileLayout.clear, .stamp, .clam])
    func crossvalAndDeployOnOtherToolsFiles(layout: FeatureFileLayout) throws {
        let dir = temporaryFolder("interop-cv")
        defer { try? FileManager.default.removeItem(at: dir) }
        let logs = LockedLines()
        let out = dir.appendingPathComponent("cv")
        let features = Self.fixtures.appendingPathComponent(layout.rawValue)
        let r = try Self.run(features: features, table: Self.fixtures.appendingPathComponent("labels.csv"), out: out, logs: logs)
        #expect(r.foldsTrained == [0, 1])
        let notes = logs.lines.filter { $0.hasPrefix("note:") }
        #expect(notes.count == 1, "\(notes)")
        #expect(notes.first?.contains("10 feature file(s) in \(layout.displayName) layout") == true)
        #expect(notes.first?.contains("slice order = row order") == true && notes.first?.contains("they lack slice_index, z_mm, window") == true)
        let preds = try Predictions.load(out)
        #expect(preds.pooled.count == 10)
        let auroc = Metrics.auroc(labels: preds.pooled.column(0).labels, scores: preds.pooled.column(0).scores)
        #expect((auroc ?? 0) >= 0.8, "pooled AUROC \(auroc ?? .nan)")

        // deploy without a table scores every file, patient ids from the file names.
        let dlogs = LockedLines()
        var d = DeployOptions(models: [out], features: features, out: dir.appendingPathComponent("deploy"))
        d.log = { dlogs.append($0) }
        let res = try Deploy.run(d)
        #expect(res.patients == 10 && res.models == 2)
        #expect(dlogs.lines.filter { $0.hasPrefix("note:") }.count == 1)
        let table = try CSVTable.read(dir.appendingPathComponent("deploy/patient_preds.csv"))
        #expect(table.rows.map { $0[0] } == (0..<10).map { "P\(String(format: "%02d", $0))" })
    }

    /// NaN / Inf rows: a clear error naming patient and file; with skipNonFinite the patients are
    /// excluded with a warning.
    @Test func nonFiniteRowsAreNamedOrExcluded() throws {
        let dir = temporaryFolder("interop-nan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let features = dir.appendingPathComponent("features")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("clear"), to: features)
        for name in ["P03.h5", "P05.h5"] {
            try FileManager.default.removeItem(at: features.appendingPathComponent(name))
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("nan/\(name)"), to: features.appendingPathComponent(name))
        }
        let table = Self.fixtures.appendingPathComponent("labels.csv")
        do {
            _ = try Self.run(features: features, table: table, out: dir.appendingPathComponent("cv"), logs: LockedLines())
            Issue.record("NaN rows were accepted")
        } catch let e as MILError {
            let m = e.description
            #expect(m.contains("2 patient(s) have NaN / Inf features") && m.contains("--skip-nonfinite"), "\(m)")
            #expect(m.contains("P03.h5: patient 'P03': 1 of 4 feature row(s) contain NaN or Inf: row 2 (slice 2)"), "\(m)")
            #expect(m.contains("P05.h5: patient 'P05': 1 of 6 feature row(s) contain NaN or Inf: row 0 (slice 0)"), "\(m)")
        }
        let logs = LockedLines()
        let r = try Self.run(features: features, table: table, out: dir.appendingPathComponent("cv2"), logs: logs, skipNonFinite: true)
        #expect(r.splits.patients == ["P00", "P01", "P02", "P04", "P06", "P07", "P08", "P09"])
        #expect(r.warnings.filter { $0.contains("excluded (--skip-nonfinite)") }.count == 2)
        #expect(logs.lines.contains { $0.hasPrefix("warning: patient 'P03' excluded") })

        // deploy: the same error without the flag, the patients left out with it.
        var d = DeployOptions(models: [dir.appendingPathComponent("cv2")], features: features, out: dir.appendingPathComponent("deploy"))
        d.log = { _ in }
        #expect { try Deploy.run(d) } throws: { "\($0)".contains("P05.h5: patient 'P05'") && "\($0)".contains("--skip-nonfinite") }
        d.skipNonFinite = true
        #expect(try Deploy.run(d).patients == 8)
        let deployed = try CSVTable.read(dir.appendingPathComponent("deploy/patient_preds.csv"))
        #expect(!deployed.rows.contains { $0[0] == "P03" || $0[0] == "P05" })
    }

    /// A table whose IDs match no file names both; a label value the task does not know names the
    /// patient and the value.
    @Test func tableProblemsNameIDsAndValues() throws {
        let dir = temporaryFolder("interop-table")
        defer { try? FileManager.default.removeItem(at: dir) }
        let features = Self.fixtures.appendingPathComponent("clear")
        let wrong = dir.appendingPathComponent("wrong.csv")
        try "patient_id,lesion\nX-1,1\nX-2,0\n".write(to: wrong, atomically: true, encoding: .utf8)
        do {
            _ = try Self.run(features: features, table: wrong, out: dir.appendingPathComponent("cv"), logs: LockedLines())
            Issue.record("a table matching no file was accepted")
        } catch {
            let m = "\(error)"
            #expect(m.contains("none of the table's 2 patient ID(s) (X-1, X-2) has a feature file") && m.contains("P00.h5, P01.h5"), "\(m)")
        }
        let bad = dir.appendingPathComponent("bad.csv")
        try "patient_id,lesion\nP00,1\nP01,maybe\n".write(to: bad, atomically: true, encoding: .utf8)
        do {
            _ = try Self.run(features: features, table: bad, out: dir.appendingPathComponent("cv2"), logs: LockedLines())
            Issue.record("an unknown label value was accepted")
        } catch {
            let m = "\(error)"
            #expect(m.contains("patient 'P01'") && m.contains("'maybe' is not a valid label"), "\(m)")
        }
    }

    /// Axial → others: extract writes `coords` (slice index, z mm) and, with `clamCopy`, a CLAM
    /// layout copy; Axial reads the copy back to the same rows; h5py reads both.
    @Test func extractWritesCoordsAndCLAMCopy() throws {
        let root = temporaryFolder("interop-ingest"), out = temporaryFolder("interop-feats"), clam = temporaryFolder("interop-clam")
        defer { for u in [root, out, clam] { try? FileManager.default.removeItem(at: u) } }
        try syntheticIngest(root, patients: ["P1", "P2"])
        var o = ExtractOptions(input: root, output: out, encoder: "vit_test", seed: 7, batchSize: 4, progress: .quiet)
        o.clamCopy = clam
        let s = try Extract.run(o)
        #expect(s.written == 2 && s.clamCopies == 2)
        let axial = try FeatureStore.read(out.appendingPathComponent("P2.h5")).features
        let copy = try FeatureStore.readAnyLayout(clam.appendingPathComponent("h5_files/P2.h5"))
        #expect(copy.layout == .clam && copy.lacks.isEmpty && copy.assumed.isEmpty)
        #expect(copy.features.feats == axial.feats && copy.features.sliceIndex == axial.sliceIndex && copy.features.zMM == axial.zMM)
        #expect(copy.features.window == axial.window && copy.features.metadata.windows == axial.metadata.windows)
        #expect(copy.features.metadata.encoderSHA256 == axial.metadata.encoderSHA256 && copy.features.metadata.patientID == "P2")
        // A rerun with the copies present writes none.
        #expect(try Extract.run(o).clamCopies == 0)

        let check = """
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "r") as f:
            c = f["coords"]
            assert c.shape == (6, 2) and c.attrs["columns"] == "slice_index,z_mm"
            assert np.array_equal(c[()], np.array([[0, -10], [0, -10], [1, -7.5], [1, -7.5], [2, -5], [2, -5]], "f4")), c[()]
            assert np.array_equal(f["slice_index"][()], c[()][:, 0].astype("i4"))
        with h5py.File(sys.argv[2], "r") as f, h5py.File(sys.argv[1], "r") as g:
            assert f["features"].dtype == np.dtype("<f4") and np.array_equal(f["features"][()], g["feats"][()])
            assert np.array_equal(f["coords"][()], g["coords"][()]) and f.attrs["patient_id"] == "P2"
        print("ok")
        """
        if let r = try runPython(check, [out.appendingPathComponent("P2.h5").path, clam.appendingPathComponent("h5_files/P2.h5").path]) {
            #expect(r.contains("ok"))
        }
    }
}

/// Log lines collected from a stage's `log` closure (thread-safe).
final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ s: String) { lock.lock(); storage.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}
