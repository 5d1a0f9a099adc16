import AxialCore
import AxialEval
import AxialStore
import Foundation

/// A synthetic feature cohort for tests and `axial demo` (STAMP's `random_data.py`, but with a
/// signal): every patient has a bag of slice features `[N, D]` (N = slices × windows, slice order)
/// of Gaussian noise; for each positive class a short run of consecutive "informative" slices gets
/// `signal · u_c` added (u_c a fixed random unit direction per class, all windows). Labels therefore
/// depend on a few slices only — an attention head must find them — and the informative slice
/// indices are recorded so tests can check where the attention peaks.
public struct SyntheticCohortConfig: Sendable {
    public var task: TaskSpec
    public var patients = 60
    public var featureDimension = 32
    public var slices: ClosedRange<Int> = 20...40
    public var windows: [StoredWindow] = [StoredWindow(name: "abdomen", width: 400, level: 40),
                                          StoredWindow(name: "chest", width: 1500, level: -600)]
    /// Consecutive informative slices per positive class.
    public var informativeSlices = 3
    /// Norm of the implanted class direction, relative to the per-dimension noise sd.
    public var signal: Float = 3
    public var noise: Float = 1
    /// Binary / multi-label: probability that a class is positive.
    public var prevalence = 0.4
    /// Probability that a label is written as unknown (blank) in the clinical table.
    public var unknownFraction = 0.0
    public var sliceThicknessMM: Float = 2.5
    public var seed: UInt64 = 0

    public init(task: TaskSpec) { self.task = task }
}

/// One synthetic patient, in the feature store's layout.
public struct SyntheticPatient: Sendable, Equatable {
    public var id: String
    public var featureDimension: Int
    /// Row-major `[N, D]`, one row per slice × window, in slice order.
    public var features: [Float]
    public var sliceIndex: [Int32]
    public var zMM: [Float]
    public var window: [Int32]
    /// Per class: 1 / 0 / −1 (unknown in the table; the features still follow the true label).
    public var labels: [Int]
    /// The true labels before hiding any as unknown.
    public var trueLabels: [Int]
    /// Per class: the slice indices carrying that class's signal (empty for a negative class).
    public var informativeSlices: [[Int]]

    public var rows: Int { sliceIndex.count }
}

public struct SyntheticCohort: Sendable {
    public var config: SyntheticCohortConfig
    public var patients: [SyntheticPatient]
    /// Unit direction per class, `[C][D]`.
    public var classDirections: [[Float]]

    public init(_ config: SyntheticCohortConfig) {
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        let task = config.task, d = config.featureDimension, nc = task.classes.count
        precondition(d > 0 && config.patients > 0 && config.slices.lowerBound >= config.informativeSlices && !config.windows.isEmpty,
                     "synthetic cohort: need D > 0, patients > 0, windows, and at least \(config.informativeSlices) slices")
        classDirections = (0..<nc).map { _ in
            let v = (0..<d).map { _ in rng.normal() }
            let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            return v.map { Float($0 / norm) }
        }
        let width = String(config.patients - 1).count
        var out: [SyntheticPatient] = []
        for p in 0..<config.patients {
            let id = "syn" + String(repeating: "0", count: max(0, width - String(p).count)) + String(p)
            var truth: [Int]
            switch task.kind {
            case .binary, .multilabel:
                truth = (0..<nc).map { _ in rng.nextUniform() < config.prevalence ? 1 : 0 }
            case .multiclass:
                let k = rng.uniform(below: nc)
                truth = (0..<nc).map { $0 == k ? 1 : 0 }
            }
            let n = config.slices.lowerBound + rng.uniform(below: config.slices.count)
            let nw = config.windows.count
            var feats = [Float](repeating: 0, count: n * nw * d)
            for i in feats.indices { feats[i] = config.noise * Float(rng.normal()) }
            var informative = [[Int]](repeating: [], count: nc)
            for c in 0..<nc where truth[c] == 1 {
                let start = rng.uniform(below: n - config.informativeSlices + 1)
                informative[c] = Array(start..<(start + config.informativeSlices))
                for s in informative[c] { for w in 0..<nw {
                    let row = (s * nw + w) * d
                    for j in 0..<d { feats[row + j] += config.signal * classDirections[c][j] }
                } }
            }
            var labels = truth
            if config.unknownFraction > 0 {
                if task.kind == .multiclass {
                    if rng.nextUniform() < config.unknownFraction { labels = Array(repeating: -1, count: nc) }
                } else {
                    for c in 0..<nc where rng.nextUniform() < config.unknownFraction { labels[c] = -1 }
                }
            }
            let z0 = Float(rng.uniform(below: 200)) - 100
            out.append(SyntheticPatient(
                id: id, featureDimension: d, features: feats,
                sliceIndex: (0..<(n * nw)).map { Int32($0 / nw) },
                zMM: (0..<(n * nw)).map { z0 + Float($0 / nw) * config.sliceThicknessMM },
                window: (0..<(n * nw)).map { Int32($0 % nw) },
                labels: labels, trueLabels: truth, informativeSlices: informative))
        }
        patients = out
    }

    /// The clinical table: `patient_id` + the task's label columns (task values; blank = unknown).
    public var clinicalTable: CSVTable {
        let task = config.task
        let rows: [[String]] = patients.map { p in
            switch task.kind {
            case .binary, .multilabel:
                return [p.id] + p.labels.map { $0 == 1 ? task.positiveValues[0] : $0 == 0 ? task.negativeValues[0] : "" }
            case .multiclass:
                return [p.id, p.labels.firstIndex(of: 1).map { task.classes[$0].name } ?? ""]
            }
        }
        return CSVTable(header: [Cohort.patientColumn] + task.labelColumns, rows: rows)
    }

    /// `patient_id, class, slice_index` of every informative slice (the "key slices").
    public var informativeSlicesTable: CSVTable {
        var rows: [[String]] = []
        for p in patients { for (c, s) in p.informativeSlices.enumerated() { for i in s {
            rows.append([p.id, config.task.classes[c].name, "\(i)"])
        } } }
        return CSVTable(header: [Cohort.patientColumn, "class", "slice_index"], rows: rows)
    }

    /// Labels as the clinical-table loader would return them (unknowns as −1).
    public var cohortLabels: CohortLabels {
        CohortLabels(task: config.task, patientIDs: patients.map(\.id), labels: patients.map(\.labels))
    }

    /// The feature-store record of one patient.
    public func storeRecord(_ p: SyntheticPatient) -> PatientFeatures {
        let meta = FeatureStoreMetadata(encoder: "synthetic", encoderSHA256: "", windows: config.windows, patientID: p.id,
                                        studyUID: "synthetic.\(p.id)", seriesUID: "synthetic.\(p.id).1",
                                        spacingMM: [Double(config.sliceThicknessMM), 0.7, 0.7],
                                        preprocessingJSON: "{\"synthetic_seed\": \(config.seed)}")
        return PatientFeatures(metadata: meta, featDim: p.featureDimension, feats: p.features,
                               sliceIndex: p.sliceIndex, zMM: p.zMM, window: p.window)
    }

    /// Writes `<features>/<patient>.h5` (through AxialStore), `clinical.csv` and
    /// `informative_slices.csv` under `folder`; returns the features folder.
    @discardableResult
    public func write(to folder: URL, precision: FeaturePrecision = .float32) throws -> URL {
        let features = folder.appendingPathComponent("features")
        do {
            for p in patients {
                try FeatureStore.write(storeRecord(p), to: features.appendingPathComponent(FeatureStore.fileName(patientID: p.id)), precision: precision)
            }
            try clinicalTable.write(to: folder.appendingPathComponent("clinical.csv"))
            try informativeSlicesTable.write(to: folder.appendingPathComponent("informative_slices.csv"))
        } catch let e as StoreError {
            throw EvalError.io(path: folder.path, reason: e.description)
        } catch let e as FileError {
            throw EvalError.io(path: folder.path, reason: e.description)
        }
        return features
    }
}
