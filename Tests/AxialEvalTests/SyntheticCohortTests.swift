import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialEval

@Suite struct SyntheticCohortTests {
    let location = try! TaskSpec.load("lesion_location", tasksDirectory: tasksDirectory)

    /// Max over rows of ⟨row, u_c⟩ (an oracle "attention" on the right slices) separates the
    /// classes; the same score on the other slices (informative ones removed) is at chance.
    @Test func labelsDependOnTheInformativeSlices() {
        var cfg = SyntheticCohortConfig(task: location)
        cfg.patients = 80; cfg.featureDimension = 24; cfg.seed = 11
        let cohort = SyntheticCohort(cfg)
        var maxScores: [[Double]] = [], meanScores: [[Double]] = []
        for p in cohort.patients {
            var mx: [Double] = [], mn: [Double] = []
            for c in cohort.classDirections.indices {
                let dots = (0..<p.rows).map { r in (0..<p.featureDimension).reduce(0.0) { $0 + Double(p.features[r * p.featureDimension + $1] * cohort.classDirections[c][$1]) } }
                let rest = (0..<p.rows).filter { !p.informativeSlices[c].contains(Int(p.sliceIndex[$0])) }.map { dots[$0] }
                mx.append(dots.max()!); mn.append(rest.max()!)
            }
            maxScores.append(mx); meanScores.append(mn)
            for c in cohort.classDirections.indices {
                #expect(p.informativeSlices[c].count == (p.trueLabels[c] == 1 ? 3 : 0))
                if let s = p.informativeSlices[c].first { #expect(p.informativeSlices[c] == [s, s + 1, s + 2]) }
            }
        }
        let ids = cohort.patients.map(\.id), labels = cohort.patients.map(\.trueLabels)
        let oracle = Metrics.summarize(LabelScores(classes: location.classes.map(\.name), patientIDs: ids, labels: labels, scores: maxScores))
        let pooled = Metrics.summarize(LabelScores(classes: location.classes.map(\.name), patientIDs: ids, labels: labels, scores: meanScores))
        #expect(oracle.macroAUROC! > 0.9, "oracle macro AUROC \(oracle.macroAUROC!)")
        #expect(abs(pooled.macroAUROC! - 0.5) < 0.1, "without the informative slices: \(pooled.macroAUROC!)")
    }

    @Test func deterministicAndShaped() {
        var cfg = SyntheticCohortConfig(task: try! TaskSpec.load("staging", tasksDirectory: tasksDirectory))
        cfg.patients = 12; cfg.featureDimension = 8; cfg.unknownFraction = 0.2; cfg.seed = 4
        let a = SyntheticCohort(cfg), b = SyntheticCohort(cfg)
        #expect(a.patients == b.patients)
        for p in a.patients {
            #expect(p.features.count == p.rows * 8 && p.rows % 2 == 0 && (20...40).contains(p.rows / 2))
            #expect(p.trueLabels.reduce(0, +) == 1)
            #expect(p.sliceIndex == (0..<p.rows).map { Int32($0 / 2) } && p.window == (0..<p.rows).map { Int32($0 % 2) })
            #expect(zip(p.zMM.dropFirst(2), p.zMM).allSatisfy { $0 - $1 == 2.5 })
        }
        cfg.seed = 5
        #expect(SyntheticCohort(cfg).patients != a.patients)
    }

    /// Files written through AxialStore read back, and the clinical table passes the cohort checks.
    @Test func writesFeatureStoreAndTable() throws {
        var cfg = SyntheticCohortConfig(task: location)
        cfg.patients = 6; cfg.featureDimension = 16; cfg.slices = 5...7; cfg.unknownFraction = 0.1
        let cohort = SyntheticCohort(cfg)
        let dir = try temporaryFolder("synthetic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let features = try cohort.write(to: dir)
        for p in cohort.patients {
            let (stored, _) = try FeatureStore.read(features.appendingPathComponent(FeatureStore.fileName(patientID: p.id)))
            #expect(stored.feats == p.features && stored.sliceIndex == p.sliceIndex && stored.zMM == p.zMM && stored.window == p.window)
            #expect(stored.metadata.patientID == p.id && stored.featDim == 16)
        }
        let (labels, report) = try Cohort.load(table: dir.appendingPathComponent("clinical.csv"), task: location,
                                               featureFiles: try Cohort.featureFiles(in: features))
        #expect(report.errors.isEmpty)
        #expect(labels.labels == cohort.patients.filter { !$0.labels.allSatisfy { $0 == -1 } }.map(\.labels))
        let key = try CSVTable.read(dir.appendingPathComponent("informative_slices.csv"))
        #expect(key.rows.count == cohort.patients.reduce(0) { $0 + $1.informativeSlices.joined().count })
    }
}
