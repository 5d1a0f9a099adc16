import ArgumentParser
import AxialPipeline
import Foundation

/// `axial report --run <crossval-or-deploy-dir> [--features <dir>] [--ingest <dir>] [--lesions <csv>] --out report.html`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One self-contained static HTML page of a crossval / deploy run: ROC with CI band, PR, calibration, confusion at the Youden threshold, per-fold table, a card per patient.",
        discussion: """
            No network: CSS, SVG and the few lines of JS are inline, thumbnails are base64 PNGs. Reads \
            <run>/fold-*/ (or <run>/) patient_preds.csv, slice_attention.csv, prediction_ci.csv, \
            attention_keyslices.csv and training.csv; with --ingest the top-k attended slices are shown \
            as thumbnails of the ingest PNGs, with --lesions the lesion boxes drawn on them.
            """)

    @OptionGroup var configFile: ConfigFileOption
    @Option(name: .customLong("run"), help: .path("A crossval folder (fold-*/patient_preds.csv …) or a deploy folder.")) var runFolder: String
    @Option(help: .path("The feature folder of the run (optional): encoder provenance per patient.")) var features: String?
    @Option(help: .path("The ingest output (manifest.csv + PNG slices) for the key-slice thumbnails (optional).")) var ingest: String?
    @Option(help: .path("Lesion table (DeepLesion DL_info.csv or Axial's patient_id, slice_index, x1, y1, x2, y2) for boxes on the thumbnails (optional).")) var lesions: String?
    @Option(help: .path("The HTML file to write.")) var out: String
    @Option(help: "Thumbnails per patient (top-k attended slices).") var topK = 3
    @Option(help: "Bootstrap resamples for the ROC band and the AUROC / AP intervals (0: none).") var bootstrap = 500
    @Option(help: "Seed of the bootstrap.") var seed: UInt64 = 0

    func run() throws {
        var o = ReportOptions(run: URL(fileURLWithPath: runFolder), out: URL(fileURLWithPath: out))
        o.features = features.map { URL(fileURLWithPath: $0) }
        o.ingest = ingest.map { URL(fileURLWithPath: $0) }
        o.lesions = lesions.map { URL(fileURLWithPath: $0) }
        o.topK = topK; o.bootstrap = bootstrap; o.seed = seed
        do {
            let s = try Report.run(o)
            print("report: \(s.patients) patients, \(s.thumbnails) thumbnail(s), \(s.boxes) lesion box(es), \(s.bytes / 1024) KiB → \(out)")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
