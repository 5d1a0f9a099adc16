import ArgumentParser
import AxialImaging
import AxialPipeline
import Foundation

extension MaskValues: ExpressibleByArgument {}

/// `axial ingest <input-root> --out <dir>`: DICOM / NIfTI → windowed 8-bit PNG slices + manifest.csv.
struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut CT series (DICOM, NIfTI) into windowed 8-bit PNG axial slices with a manifest.csv.",
        discussion: """
            Output: <out>/<patient>/<series_uid>/<slice>_<window>.png, <out>/manifest.csv \
            (patient_id, study_uid, series_uid, slice_index, z_mm, window, path) and \
            <out>/ingest_errors.csv (inputs skipped, with the reason). A rerun skips series already \
            complete with the same settings. Windows: \(CTWindow.presets.map(\.name).joined(separator: ", ")), \
            or W<width>/L<level>.
            """)

    @OptionGroup var configFile: ConfigFileOption

    @Argument(help: .path("Folder tree (or single file) with DICOM series and/or NIfTI volumes."))
    var input: String

    @Option(name: .long, help: .path("Output folder."))
    var out: String

    @Option(help: .list("Comma-separated windows: preset names or W<width>/L<level>."))
    var windows = "abdomen"

    @Option(help: "separate: one gray PNG per window; stacked: one RGB PNG with up to 3 windows as channels.")
    var channels: ChannelMode = .separate

    @Option(help: "Resize slices to N×N pixels (bilinear up, area-average down). Default: keep the matrix.")
    var size: Int?

    @Option(help: "Process only shard i of n (by patient), e.g. 0/4, for job arrays (default: the Slurm array task from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, else 0/1).")
    var shard: String?

    @Option(name: .customLong("window-file"), help: .path("YAML file of window presets (shape of Manifests/windows.yaml)."))
    var windowFile: String?

    @Option(name: .customLong("nonfinite-voxels"), help: "NIfTI NaN / Inf voxels: refuse (the series fails) or warn (read as −1024 HU).")
    var nonFiniteVoxels: NIfTIReader.NonFinitePolicy = .refuse

    @Option(help: .path("Folder of label volumes (NIfTI, on the series' grid) named <series UID or patient ID>.nii[.gz]; written as <slice>_mask.png beside the slices, plus masks.csv."))
    var masks: String?

    @Option(name: .customLong("mask-values"), help: "Mask PNG values: binary (non-zero label → 255) or labels (the integer label, 0…255).")
    var maskValues: MaskValues = .binary

    @Flag(help: "No progress output (the summary is still printed).")
    var quiet = false

    func validate() throws {
        if let s = size, s < 1 || s > 8192 { throw ValidationError("--size must be 1…8192 pixels, got \(s)") }
        do { _ = try Shard.resolve(shard) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        do {
            var presets = CTWindow.presets
            if let f = windowFile { presets = try WindowPresets.load(URL(fileURLWithPath: f)) }
            let options = IngestOptions(
                input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: out),
                windows: try CTWindow.parseList(windows, presets: presets), channels: channels, size: size,
                shard: try Shard.resolve(shard), readers: [DICOMReader(), NIfTIReader(nonFiniteVoxels: nonFiniteVoxels)],
                progress: quiet ? .quiet : nil,
                masks: masks.map { IngestMasks(folder: URL(fileURLWithPath: $0), values: maskValues) })
            let summary = try AxialPipeline.Ingest.run(options)
            print(summary.text)
            if summary.seriesFound == 0 {
                FileHandle.standardError.write(Data("error: no CT series found under \(input)\n".utf8))
                throw ExitCode(2)
            }
            // Exit codes (README "Errors and exit codes"): 1 = nothing usable done (every series of
            // this shard failed), 3 = some series or inputs failed, the rest done (listed in ingest_errors.csv).
            if summary.exitCode == 2 {
                FileHandle.standardError.write(Data("error: no CT series found under \(input) (\(summary.seriesNotCT) series of other modalities skipped, listed in \(summary.errors.lastPathComponent))\n".utf8))
                throw ExitCode(2)
            }
            if let code = summary.exitCode {
                FileHandle.standardError.write(Data("error: \(summary.failureLine)\n".utf8))
                throw ExitCode(code)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
