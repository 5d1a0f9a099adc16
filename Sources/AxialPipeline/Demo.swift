import AxialEval
import AxialImaging
import AxialStore
import Foundation

/// `axial demo`: a small synthetic cohort, written as real DICOM series and run through the
/// pipeline's stages (today: ingest), so a new user sees everything work in a minute.
///
/// Cohort (deterministic for a seed): `patients` phantoms (`SyntheticCT`, 64×64×24 voxels of
/// 5 mm, body / lungs / bone rim, mild noise); odd-numbered patients carry 1-2 bright spherical
/// lesions (160 HU, radius 8-14 mm) in the soft tissue between the lungs. Files:
///
///     <folder>/dicom/<patient>/IM0001.dcm …   the DICOM series
///     <folder>/labels.csv                     patient_id, lesion (0/1), lesion_count
///     <folder>/lesions.csv                    patient_id, center_x_mm, center_y_mm, center_z_mm, radius_mm, hu (LPS)
///     <folder>/slices/                        `axial ingest` output (abdomen + lung windows)
public enum Demo {
    public struct Options: Sendable {
        public var folder: URL
        public var patients: Int
        public var seed: UInt64
        public var progress: Progress.Style?
        /// Steps of the demo's LeCL pretraining run (0: skip pretraining and extraction).
        public var pretrainSteps = 100
        public init(folder: URL, patients: Int = 6, seed: UInt64 = 7, progress: Progress.Style? = nil) {
            self.folder = folder; self.patients = patients; self.seed = seed; self.progress = progress
        }
    }

    public struct Patient: Sendable, Equatable {
        public var patientID: String
        public var lesions: [SyntheticCT.Lesion]
    }

    public struct Result: Sendable {
        public var folder: URL
        public var patients: [Patient]
        public var labels: URL
        public var ingest: Ingest.Summary
        /// Crossval + statistics on a synthetic feature cohort (until extraction is in the demo).
        public var mil: String? = nil
        /// `axial pretrain` (tiny ViT, LeCL on the demo's lesion slices) + `axial extract` with it.
        public var pretrain: String? = nil

        public var text: String {
            let positive = patients.filter { !$0.lesions.isEmpty }.count
            return """
                demo: cohort of \(patients.count) synthetic CT patients (\(positive) with lesions) in \(folder.path)
                demo: labels \(labels.path)
                \(ingest.text)
                demo: done — next stages (pretrain, extract, crossval) read \(ingest.manifest.lastPathComponent) and \(labels.lastPathComponent)
                """ + (pretrain.map { "\n" + $0 } ?? "") + (mil.map { "\n" + $0 } ?? "")
        }
    }

    /// The cohort's phantoms (no files written).
    public static func cohort(patients: Int, seed: UInt64) -> [SyntheticCT] {
        var rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func uniform(_ a: Double, _ b: Double) -> Double {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17          // xorshift64
            return a + (b - a) * Double(rng >> 11) / Double(1 << 53)
        }
        return (0..<patients).map { i in
            var lesions: [SyntheticCT.Lesion] = []
            if i % 2 == 1 {
                for _ in 0..<(1 + Int(uniform(0, 2))) {
                    lesions.append(SyntheticCT.Lesion(center: SIMD3(uniform(-8, 8), uniform(-40, 40), uniform(-30, 30)),
                                                      radius: uniform(8, 14), hu: 160))
                }
            }
            return SyntheticCT(patientID: String(format: "DEMO%03d", i + 1), rows: 64, columns: 64, slices: 24,
                               pixelSpacing: 5, sliceSpacing: 5, firstZ: -60, lesions: lesions, noise: 8,
                               seed: seed &+ UInt64(i) &* 1000)
        }
    }

    public static func run(_ options: Options) throws -> Result {
        guard options.patients >= 1 && options.patients <= 1000 else {
            throw PipelineError.invalidOption(option: "--patients", reason: "must be 1…1000, got \(options.patients)")
        }
        let folder = options.folder
        let dicom = folder.appendingPathComponent("dicom")
        let phantoms = cohort(patients: options.patients, seed: options.seed)
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

        let summary = try Ingest.run(IngestOptions(
            input: dicom, output: folder.appendingPathComponent("slices"),
            windows: [try CTWindow.parse("abdomen"), try CTWindow.parse("lung")], progress: options.progress))
        var result = Result(folder: folder, patients: phantoms.map { Patient(patientID: $0.patientID, lesions: $0.lesions) },
                            labels: labels, ingest: summary)
        result.pretrain = try pretrainDemo(folder, phantoms: phantoms, ingest: summary, steps: options.pretrainSteps,
                                           seed: options.seed, progress: options.progress)
        result.mil = try milDemo(folder.appendingPathComponent("mil"), seed: options.seed)
        return result
    }

    /// Synthetic slice-feature cohort (labels from a few informative slices) → `axial crossval`
    /// (ABMIL, 3 folds) → `axial statistics`; returns the summary lines.
    static func milDemo(_ folder: URL, seed: UInt64) throws -> String {
        let yaml = "name: demo_lesion\nkind: binary\ncolumn: lesion\n"
        var cfg = SyntheticCohortConfig(task: try TaskSpec.parse(yaml))
        cfg.patients = 60; cfg.featureDimension = 32; cfg.slices = 12...24; cfg.signal = 4; cfg.seed = seed
        let features = try SyntheticCohort(cfg).write(to: folder)
        let taskURL = folder.appendingPathComponent("task.yaml")
        try AtomicFile.write(Data(yaml.utf8), to: taskURL)
        var o = CrossValOptions(features: features, table: folder.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .abmil,
                                out: folder.appendingPathComponent("crossval"))
        o.folds = 3; o.seed = seed; o.epochs = 30; o.learningRate = 1e-3; o.batchSize = 8; o.hidden = 64; o.attentionHidden = 32
        o.log = { _ in }
        _ = try CrossVal.run(o)
        let stats = try StatisticsStage.run(preds: o.out, out: folder.appendingPathComponent("statistics"),
                                            options: StatisticsOptions(bootstrap: BootstrapOptions(resamples: 200, seed: seed)))
        let auc = stats.pooled.auroc[0].map { String(format: "%.3f", $0) } ?? "n/a"
        return "demo: crossval (ABMIL, 3 folds) on 60 synthetic feature bags → \(o.out.path); pooled AUROC \(auc); statistics in \(folder.appendingPathComponent("statistics").path)"
    }
}
