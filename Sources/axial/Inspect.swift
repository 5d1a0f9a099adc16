import ArgumentParser
import AxialImaging
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
        let report: InspectionReport
        do { report = try InspectionReport(inspecting: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("\(error)")
        }
        if json {
            print(try report.json())
            for p in report.problems { FileHandle.standardError.write(Data("problem: \(p.path): \(p.reason)\n".utf8)) }
        } else {
            print(report.text)
        }
        if report.series.isEmpty { throw ExitCode(1) }
    }
}
