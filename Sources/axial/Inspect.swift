import ArgumentParser
import AxialPipeline
import Foundation

/// `axial inspect <file-or-folder> [--json]`: the series found, per series.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the CT series (DICOM, NIfTI) found in a file or folder: shape, spacing, geometry, HU range, warnings.")

    @Argument(help: "A DICOM file, a NIfTI file (.nii, .nii.gz) or a folder tree.")
    var path: String

    @Flag(help: "Print {\"series\": [...]} as JSON (problems go to standard error).")
    var json = false

    func run() throws {
        let output: AxialPipeline.Inspect.Output
        do { output = try AxialPipeline.Inspect.run(path: URL(fileURLWithPath: path), json: json) } catch {
            throw ValidationError("\(error)")
        }
        print(output.report)
        for p in output.problems { FileHandle.standardError.write(Data((p + "\n").utf8)) }
        if !output.foundSeries { throw ExitCode(1) }
    }
}
