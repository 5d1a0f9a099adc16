import AxialImaging
import Foundation

/// `axial inspect`: the CT series found under a file or folder (DICOM series, NIfTI volumes), as
/// text or as JSON, with the problems met on the way.
public enum Inspect {
    public struct Output: Sendable {
        /// What goes to standard output (the text report, or `{"series": [...]}`).
        public var report: String
        /// One line per file that could not be read, for standard error ("problem: <path>: <reason>").
        public var problems: [String]
        /// False when no series was found (the command then exits non-zero).
        public var foundSeries: Bool
    }

    public static func run(path: URL, json: Bool) throws -> Output {
        let report = try InspectionReport(inspecting: path)
        let problems = report.problems.map { "problem: \($0.path): \($0.reason)" }
        if json { return Output(report: try report.json(), problems: problems, foundSeries: !report.series.isEmpty) }
        return Output(report: report.text, problems: [], foundSeries: !report.series.isEmpty)
    }
}
