import AxialCore
import AxialEval
import AxialImaging
import AxialStore
import Foundation

/// `axial demo`: a synthetic cohort, written as real DICOM series, run through every stage of the
/// pipeline as one chain, so a new user sees everything work in a couple of minutes:
///
///     cohort → ingest → pretrain (LeCL, vit_test) → extract (that encoder) → crossval (ABMIL, 3 folds) → statistics
///
/// Cohort (deterministic for a seed): `patients` phantoms (`SyntheticCT`, 64×64×24 voxels of
/// 5 mm, body / lungs / bone rim, mild noise); odd-numbered patients carry 1-2 bright spherical
/// lesions (300 HU, radius 18-30 mm, i.e. 4-6 px across
/// and 7-12 slices at extract's 32 px) centred in the soft tissue between the lungs. With the
/// defaults (120 patients, 600 pretraining steps, ~15 s in a release build on 2 cores) the pooled
/// AUROC is 0.88 for seed 7 (0.91 / 0.77 for seeds 1 / 2); 24 patients stay near chance. Files:
///
///     <folder>/dicom/<patient>/IM0001.dcm …   the DICOM series
///     <folder>/labels.csv                     patient_id, lesion (0/1), lesion_count
///     <folder>/lesions.csv                    patient_id, center_x_mm, center_y_mm, center_z_mm, radius_mm, hu (LPS)
///     <folder>/slice_lesions.csv              per-slice lesion boxes (pretraining's lesion table)
///     <folder>/slices/                        `axial ingest` output (abdomen + lung windows)
///     <folder>/pretrain/                      `axial pretrain` output (encoder.safetensors, loss.csv, …)
///     <folder>/features/<patient>.h5          `axial extract` with the pretrained encoder
///     <folder>/task.yaml                      the binary task (column `lesion` of labels.csv)
///     <folder>/crossval/                      `axial crossval` (ABMIL, 3 folds) on the features + labels.csv
///     <folder>/statistics/                    `axial statistics` on the out-of-fold predictions
public enum Demo {
    public struct Options: Sendable {
        public var folder: URL
        public var patients: Int
        public var seed: UInt64
        public var progress: Progress.Style?
        /// Steps of the LeCL pretraining run.
        public var pretrainSteps = 600
        /// Epochs per crossval fold.
        public var crossvalEpochs = 30
        /// Bootstrap resamples of `statistics`.
        public var bootstrap = 500
        public init(folder: URL, patients: Int = 120, seed: UInt64 = 7, progress: Progress.Style? = nil) {
            self.folder = folder; self.patients = patients; self.seed = seed; self.progress = progress
        }
    }

    /// Crossval's 3 folds need lesion and normal patients in every fold and inner validation split.
    public static let minimumPatients = 12

    public struct Patient: Sendable, Equatable {
        public var patientID: String
        public var lesions: [SyntheticCT.Lesion]
    }

    /// Pooled AUROC row of `statistics.csv` (class `lesion`).
    public struct PooledAUROC: Sendable {
        public var auroc: Double?, low: Double?, high: Double?
        public var nPositive: Int, nNegative: Int
        public var text: String {
            let f = { (v: Double?) in v.map { String(format: "%.3f", $0) } ?? "n/a" }
            return "pooled AUROC \(f(auroc)) (95% CI \(f(low))–\(f(high)); \(nPositive) lesion / \(nNegative) normal)"
        }
    }

    public struct Result: Sendable {
        public var folder: URL
        public var patients: [Patient]
        public var labels: URL
        public var ingest: Ingest.Summary
        public var pretrain: Pretrain.Result
        public var extract: Extract.Summary
        public var crossval: URL
        public var folds: Int
        public var statistics: URL
        public var pooled: PooledAUROC

        /// The closing summary: each stage's output folder and headline numbers.
        public var text: String {
            let positive = patients.filter { !$0.lesions.isEmpty }.count
            let loss = pretrain.finalLoss.map { String(format: "%.4f", $0) } ?? "n/a"
            func row(_ stage: String, _ path: String, _ what: String) -> String {
                "  " + stage.padding(toLength: 11, withPad: " ", startingAt: 0) + path + "\n" + String(repeating: " ", count: 13) + what
            }
            return (["demo: summary (\(folder.path))",
                     row("cohort", folder.appendingPathComponent("dicom").path,
                         "\(patients.count) DICOM patients, \(positive) with lesions; labels \(labels.lastPathComponent), lesions.csv"),
                     row("ingest", ingest.manifest.deletingLastPathComponent().path,
                         "\(ingest.seriesIngested) series, \(ingest.images) PNGs (abdomen + lung), \(ingest.manifest.lastPathComponent)"),
                     row("pretrain", pretrain.out.path,
                         "LeCL vit_test, \(pretrain.steps) steps, final loss \(loss), encoder.safetensors"),
                     row("extract", extract.output.path,
                         "\(extract.written) feature files (\(extract.slices) slice × window rows) with the pretrained encoder"),
                     row("crossval", crossval.path, "ABMIL, \(folds) folds, labels.csv column 'lesion'"),
                     row("statistics", statistics.path, pooled.text + ", statistics.csv")]).joined(separator: "\n")
        }
    }

    /// The cohort's phantoms (no files written).
    public static func cohort(patients: Int, seed: UInt64) -> [SyntheticCT] {
        var rng = SplitMix64(seed: seed)
        func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * rng.nextUniform() }
        return (0..<patients).map { i in
            var lesions: [SyntheticCT.Lesion] = []
            if i % 2 == 1 {
                for _ in 0..<(1 + Int(uniform(0, 2))) {
                    lesions.append(SyntheticCT.Lesion(center: SIMD3(uniform(-8, 8), uniform(-40, 40), uniform(-30, 30)),
                                                      radius: uniform(18, 30), hu: 300))
                }
            }
            return SyntheticCT(patientID: String(format: "DEMO%03d", i + 1), rows: 64, columns: 64, slices: 24,
                               pixelSpacing: 5, sliceSpacing: 5, firstZ: -60, lesions: lesions, noise: 8,
                               seed: seed &+ UInt64(i) &* 1000)
        }
    }

    public static func run(_ options: Options) throws -> Result {
        guard options.patients >= minimumPatients && options.patients <= 1000 else {
            throw PipelineError.invalidOption(option: "--patients", reason: "must be \(minimumPatients)…1000 (3 crossval folds with lesion and normal patients), got \(options.patients)")
        }
        guard options.pretrainSteps >= 1, options.crossvalEpochs >= 1 else {
            throw PipelineError.invalidOption(option: "pretrainSteps / crossvalEpochs", reason: "must be ≥ 1")
        }
        let folder = options.folder
        let seed = options.seed
        let say: (String) -> Void = { line in if options.progress != .quiet { print(line) } }

        // 1. Cohort: DICOM series, labels.csv, lesions.csv.
        let dicom = folder.appendingPathComponent("dicom")
        let phantoms = cohort(patients: options.patients, seed: seed)
        for p in phantoms {
            try p.write(to: dicom.appendingPathComponent(p.patientID))
        }
        let labels = folder.appendingPathComponent("labels.csv")
        try CSVTable(header: ["patient_id", "lesion", "lesion_count"],
                     rows: phantoms.map { [$0.patientID, $0.lesions.isEmpty ? "0" : "1", String($0.lesions.count)] })
            .write(to: labels)
        let f = { (x: Double) in String(format: "%.2f", x) }
        try CSVTable(header: ["patient_id", "center_x_mm", "center_y_mm", "center_z_mm", "radius_mm", "hu"],
                     rows: phantoms.flatMap { p in p.lesions.map { l in
                         [p.patientID, f(l.center.x), f(l.center.y), f(l.center.z), f(l.radius), f(l.hu)] } })
            .write(to: folder.appendingPathComponent("lesions.csv"))
        say("demo: cohort of \(phantoms.count) synthetic CT patients in \(dicom.path)")

        // 2. Ingest (abdomen + lung windows).
        let ingest = try Ingest.run(IngestOptions(
            input: dicom, output: folder.appendingPathComponent("slices"),
            windows: [try CTWindow.parse("abdomen"), try CTWindow.parse("lung")], progress: options.progress))
        say(ingest.text)
        let slices = ingest.manifest.deletingLastPathComponent()

        // 3. LeCL pretraining of vit_test on the ingested slices (lesion boxes from the phantoms).
        let sliceLesions = folder.appendingPathComponent("slice_lesions.csv")
        try CSVTable(header: ["patient_id", "slice_index", "x1", "y1", "x2", "y2"], rows: sliceLesionRows(phantoms)).write(to: sliceLesions)
        let pretrainOut = folder.appendingPathComponent("pretrain")
        let steps = options.pretrainSteps
        var po = Pretrain.Options(input: slices.path, lesions: sliceLesions.path, arch: "vit_test", steps: steps, batch: 16, out: pretrainOut.path)
        po.size = 32; po.dim = 64; po.mlpDim = 256; po.lr = 0.05; po.temperature = 0.2; po.lesionWeight = 1.0; po.weightDecay = 0.05
        po.checkpointEvery = max(1, steps / 2); po.seed = seed
        let pretrain = try Pretrain.run(po, progressStyle: options.progress)
        say(pretrain.text)

        // 4. Extract every ingested slice with the pretrained encoder.
        let features = folder.appendingPathComponent("features")
        let extract = try Extract.run(ExtractOptions(input: slices, output: features, encoder: "vit_test",
                                                     weights: pretrainOut.appendingPathComponent("encoder.safetensors"),
                                                     progress: options.progress))
        say(extract.text)

        // 5. Crossval (ABMIL, 3 folds) on those features with labels.csv.
        let taskURL = folder.appendingPathComponent("task.yaml")
        try AtomicFile.write(Data("name: demo_lesion\nkind: binary\ncolumn: lesion\n".utf8), to: taskURL)
        var co = CrossValOptions(features: features, table: labels, task: taskURL.path, head: .abmil,
                                 out: folder.appendingPathComponent("crossval"))
        co.folds = 3; co.seed = seed; co.epochs = options.crossvalEpochs; co.learningRate = 1e-3; co.batchSize = 8
        co.hidden = 64; co.attentionHidden = 32
        co.progress = options.progress
        if options.progress == .quiet { co.log = { _ in } }
        let cv = try CrossVal.run(co)

        // 6. Statistics on the pooled out-of-fold predictions.
        let statsOut = folder.appendingPathComponent("statistics")
        _ = try StatisticsStage.run(preds: co.out, out: statsOut,
                                    options: StatisticsOptions(bootstrap: BootstrapOptions(resamples: options.bootstrap, seed: seed)))
        let pooled = try pooledAUROC(statsOut.appendingPathComponent("statistics.csv"), className: "lesion")

        return Result(folder: folder, patients: phantoms.map { Patient(patientID: $0.patientID, lesions: $0.lesions) },
                      labels: labels, ingest: ingest, pretrain: pretrain, extract: extract, crossval: co.out,
                      folds: cv.splits.folds.count, statistics: statsOut, pooled: pooled)
    }

    /// The class's row of `statistics.csv` (what the summary prints is what the file says).
    static func pooledAUROC(_ url: URL, className: String) throws -> PooledAUROC {
        let table = try CSVTable.read(url)
        guard let row = table.rows.first(where: { $0.first == className }) else {
            throw PipelineError.io(path: url.path, reason: "no '\(className)' row in statistics.csv")
        }
        func col(_ name: String) throws -> String {
            guard let i = table.header.firstIndex(of: name), i < row.count else {
                throw PipelineError.io(path: url.path, reason: "statistics.csv has no column '\(name)'")
            }
            return row[i]
        }
        return PooledAUROC(auroc: Double(try col("auroc")), low: Double(try col("auroc_ci_low")), high: Double(try col("auroc_ci_high")),
                           nPositive: Int(try col("n_pos")) ?? 0, nNegative: Int(try col("n_neg")) ?? 0)
    }
}

extension Demo {
    /// The demo phantoms' lesion spheres as per-slice boxes in Axial's lesion CSV format
    /// (patient_id, slice_index, x1, y1, x2, y2 in pixels of the native 64 × 64 slice).
    static func sliceLesionRows(_ phantoms: [SyntheticCT]) -> [[String]] {
        var rows: [[String]] = []
        for p in phantoms {
            let origin = p.position(slice: 0)
            for k in 0..<p.slices {
                let z = p.position(slice: k).z
                for l in p.lesions {
                    let dz = abs(l.center.z - z)
                    guard dz < l.radius else { continue }
                    let r = (l.radius * l.radius - dz * dz).squareRoot() / p.pixelSpacing
                    guard r >= 1 else { continue }
                    let cx = (l.center.x - origin.x) / p.pixelSpacing, cy = (l.center.y - origin.y) / p.pixelSpacing
                    let f = { (v: Double) in String(format: "%.1f", v) }
                    rows.append([p.patientID, String(k), f(max(0, cx - r)), f(max(0, cy - r)),
                                 f(min(Double(p.columns - 1), cx + r)), f(min(Double(p.rows - 1), cy + r))])
                }
            }
        }
        return rows
    }
}
