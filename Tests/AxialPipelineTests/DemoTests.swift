import AxialImaging
import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

@Suite struct DemoTests {
    /// The demo end to end on real DICOM files, as one chain: SyntheticCT → GDCM reader → ingest →
    /// LeCL pretraining → extract with that encoder → crossval (ABMIL, 3 folds) on those features with
    /// labels.csv → statistics. Checks every stage's outputs exist and agree with each other (no
    /// AUROC threshold: the cohort and training are tiny).
    @Test func demoRunsEveryStageOnItsOwnCohort() throws {
        let folder = scratch("demo")
        defer { try? FileManager.default.removeItem(at: folder) }
        var options = Demo.Options(folder: folder, patients: 12, seed: 3, progress: .quiet)
        options.pretrainSteps = 3; options.crossvalEpochs = 2; options.bootstrap = 50
        let result = try Demo.run(options)
        let ids = result.patients.map(\.patientID)
        #expect(ids.count == 12)

        // Cohort + ingest.
        #expect(result.ingest.seriesIngested == 12 && result.ingest.seriesFailed == 0 && result.ingest.problems.isEmpty)
        let labels = try CSVTable.read(result.labels)
        #expect(labels.header == ["patient_id", "lesion", "lesion_count"])
        #expect(try labels.column("patient_id") == ids)
        #expect(try labels.column("lesion") == (0..<12).map { $0 % 2 == 1 ? "1" : "0" })
        #expect(try labels.column("lesion") == result.patients.map { $0.lesions.isEmpty ? "0" : "1" })
        let manifest = try CSVTable.read(result.ingest.manifest)
        #expect(manifest.rows.count == 12 * 24 * 2)

        // Patient 2's first lesion: the abdomen-window pixel at its centre is the lesion's 300 HU
        // (+ noise), i.e. well above soft tissue's 40 HU.
        let p = result.patients[1]
        let lesion = try #require(p.lesions.first)
        let k = Int(((lesion.center.z + 60) / 5).rounded())
        let row = try #require(manifest.rows.first { $0[0] == p.patientID && $0[3] == String(k) && $0[5] == "abdomen" })
        let image = try PNG.read(result.ingest.manifest.deletingLastPathComponent().appendingPathComponent(row[6]))
        let x = Int(((lesion.center.x + 63 * 2.5) / 5).rounded()), y = Int(((lesion.center.y + 63 * 2.5) / 5).rounded())
        let abdomen = try CTWindow.parse("abdomen")
        #expect(image.pixels[y * 64 + x] > abdomen.byte(100))
        #expect(abs(Double(row[4])! - (-60 + 5 * Double(k))) < 1e-3)

        // Pretrain: the requested steps, a finite loss, the encoder extract used.
        #expect(result.pretrain.steps == 3)
        #expect(result.pretrain.finalLoss.map { $0.isFinite } == true)
        let encoder = folder.appendingPathComponent("pretrain/encoder.safetensors")
        #expect(FileManager.default.fileExists(atPath: encoder.path))
        #expect(try CSVTable.read(folder.appendingPathComponent("pretrain/loss.csv")).rows.count == 3)

        // Extract: one feature file per patient, every slice × window, made by the pretrained encoder.
        #expect(result.extract.written == 12 && result.extract.failed == 0)
        for id in ids {
            let url = result.extract.output.appendingPathComponent(FeatureStore.fileName(patientID: id))
            let store = try FeatureStore.read(url).features
            #expect(store.count == 24 * 2 && store.feats.allSatisfy(\.isFinite), "\(id): \(store.count) rows")
            #expect(store.metadata.patientID == id && store.metadata.encoder == "vit_test")
            #expect(!store.metadata.encoderSHA256.hasPrefix("random-init"), "\(id): extracted with a random encoder")
        }

        // Crossval: 3 folds, every patient predicted exactly once, with its labels.csv label.
        #expect(result.folds == 3)
        var predicted: [String: String] = [:]
        for fold in 0..<3 {
            let dir = result.crossval.appendingPathComponent("fold-\(fold)")
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
            let preds = try CSVTable.read(dir.appendingPathComponent("patient_preds.csv"))
            for (id, label) in zip(try preds.column("patient_id"), try preds.column("lesion")) {
                #expect(predicted[id] == nil, "\(id) predicted twice")
                predicted[id] = label
            }
        }
        #expect(Set(predicted.keys) == Set(ids))
        let truth = Dictionary(uniqueKeysWithValues: zip(ids, try labels.column("lesion")))
        #expect(predicted == truth)

        // Statistics: rows for the class, macro and micro; the summary quotes statistics.csv.
        let stats = try CSVTable.read(result.statistics.appendingPathComponent("statistics.csv"))
        #expect(try stats.column("class") == ["lesion", "macro", "micro"])
        let lesionRow = try #require(stats.rows.first)
        #expect(lesionRow[1] == "6" && lesionRow[2] == "6")
        #expect(result.pooled.nPositive == 6 && result.pooled.nNegative == 6)
        #expect(result.pooled.auroc == Double(lesionRow[3]))
        if let a = result.pooled.auroc, let lo = result.pooled.low, let hi = result.pooled.high {
            #expect(lo <= a && a <= hi && 0 <= lo && hi <= 1)
        }
        for stage in ["dicom", "slices", "pretrain", "features", "crossval", "statistics"] {
            #expect(result.text.contains(folder.appendingPathComponent(stage).path), "summary lacks \(stage)")
        }
        #expect(result.text.contains("pooled AUROC"))
        #expect(!result.text.contains("next stages"))
    }

    @Test func demoRefusesTooFewPatientsForCrossval() {
        #expect(throws: PipelineError.self) {
            try Demo.run(.init(folder: scratch("demo-few"), patients: 4, seed: 3, progress: .quiet))
        }
    }
}
