import AxialCore
import AxialStore
import Foundation

/// One problem found while checking a clinical table against a task and the feature files.
public struct CohortIssue: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public enum Kind: String, Sendable {
        case missingColumn, duplicatePatient, invalidLabel, emptyPatientID
        case missingFeatures, unknownPatient, allLabelsUnknown, noUsablePatients, singleClass
    }
    public var severity: Severity
    public var kind: Kind
    public var message: String
    public var description: String { "\(severity.rawValue): \(message)" }
    public init(severity: Severity, kind: Kind, message: String) { self.severity = severity; self.kind = kind; self.message = message }
}

/// Every problem with a cohort, gathered before training so the user fixes them in one go.
public struct CohortReport: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var issues: [CohortIssue] = []
    public var errors: [CohortIssue] { issues.filter { $0.severity == .error } }
    public var warnings: [CohortIssue] { issues.filter { $0.severity == .warning } }

    public var description: String {
        var lines = ["\(path): \(errors.count) error(s), \(warnings.count) warning(s)"]
        lines += issues.map { "  " + $0.description }
        return lines.joined(separator: "\n")
    }

    mutating func add(_ severity: CohortIssue.Severity, _ kind: CohortIssue.Kind, _ message: String) {
        issues.append(CohortIssue(severity: severity, kind: kind, message: message))
    }
}

/// Labels of the usable patients of a cohort for one task.
///
/// `labels[p]` has one entry per class: 1 / 0 / −1 (unknown). Multi-class rows are one-hot (all −1
/// when unknown), so every task shares the metric code; `classIndex(p)` recovers the class.
public struct CohortLabels: Sendable, Equatable {
    public var task: TaskSpec
    public var patientIDs: [String]
    public var labels: [[Int]]

    public init(task: TaskSpec, patientIDs: [String], labels: [[Int]]) {
        self.task = task; self.patientIDs = patientIDs; self.labels = labels
    }

    public var count: Int { patientIDs.count }

    /// Multi-class (and binary) class index, −1 unknown.
    public func classIndex(_ p: Int) -> Int {
        if task.kind == .binary { return labels[p][0] }
        return labels[p].firstIndex(of: 1) ?? -1
    }

    /// Positives per class (known labels only).
    public var positives: [Int] { task.classes.indices.map { c in labels.reduce(0) { $0 + ($1[c] == 1 ? 1 : 0) } } }
    public var negatives: [Int] { task.classes.indices.map { c in labels.reduce(0) { $0 + ($1[c] == 0 ? 1 : 0) } } }

    /// Order-independent fingerprint of (patient, labels), FNV-1a 64, hex.
    public var fingerprint: String {
        let lines = zip(patientIDs, labels).map { "\($0)\t\($1.map(String.init).joined(separator: ","))" }.sorted()
        let hex = String(fnv1a64(lines.joined(separator: "\n")), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

public enum Cohort {
    /// The patient-id column of every clinical table.
    public static let patientColumn = "patient_id"

    /// Feature-file names (`*.h5`) in a folder.
    public static func featureFiles(in directory: URL) throws -> Set<String> {
        do {
            return Set(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".") })
        } catch {
            throw EvalError.io(path: directory.path, reason: "cannot list feature files: \(error.localizedDescription)")
        }
    }

    /// Reads the clinical table and checks it; throws `EvalError.cohort` listing every error (and the
    /// warnings) if there is any error, else returns the labels and the warnings.
    public static func load(table url: URL, task: TaskSpec, featureFiles: Set<String>? = nil) throws -> (labels: CohortLabels, report: CohortReport) {
        let table: CSVTable
        do { table = try CSVTable.read(url) } catch let e as FileError {
            throw EvalError.io(path: url.path, reason: e.description)
        }
        let result = check(table, path: url.path, task: task, featureFiles: featureFiles)
        if !result.report.errors.isEmpty { throw EvalError.cohort(result.report) }
        return result
    }

    /// Checks a parsed table: missing columns, duplicate / empty patient ids, invalid label values
    /// (with a suggestion), table patients without a feature file (excluded, warning), feature
    /// files without a table row (ignored, warning), patients with every label unknown (excluded,
    /// warning), classes with one label value (warning), no usable patient (error).
    /// `featureFiles` are file names as `FeatureStore.fileName(patientID:)` makes them; nil skips
    /// the feature checks.
    public static func check(_ table: CSVTable, path: String, task: TaskSpec, featureFiles: Set<String>?) -> (labels: CohortLabels, report: CohortReport) {
        var report = CohortReport(path: path)
        var empty = CohortLabels(task: task, patientIDs: [], labels: [])
        let needed = [patientColumn] + task.labelColumns
        let missing = needed.filter { !table.header.contains($0) }
        if !missing.isEmpty {
            report.add(.error, .missingColumn, "missing column(s) \(missing.map { "'\($0)'" }.joined(separator: ", ")) (columns present: \(table.header.joined(separator: ", ")))")
            return (empty, report)
        }
        let pc = table.header.firstIndex(of: patientColumn)!
        let lc = task.labelColumns.map { table.header.firstIndex(of: $0)! }

        var firstLine: [String: Int] = [:]
        var ids: [String] = [], labels: [[Int]] = []
        var missingFeatures: [String] = [], allUnknown: [String] = []
        for (r, row) in table.rows.enumerated() {
            let line = r + 2
            let id = row[pc].trimmingCharacters(in: .whitespaces)
            if id.isEmpty { report.add(.error, .emptyPatientID, "line \(line): empty patient_id"); continue }
            if let first = firstLine[id] {
                report.add(.error, .duplicatePatient, "line \(line): patient '\(id)' already on line \(first)")
                continue
            }
            firstLine[id] = line
            var rowLabels: [Int] = []
            var rowOK = true
            switch task.kind {
            case .binary, .multilabel:
                for (k, col) in lc.enumerated() {
                    let v = row[col].trimmingCharacters(in: .whitespaces)
                    if task.positiveValues.contains(v) { rowLabels.append(1) }
                    else if task.negativeValues.contains(v) { rowLabels.append(0) }
                    else if task.unknownValues.contains(v) { rowLabels.append(-1) }
                    else {
                        rowOK = false
                        let allowed = task.positiveValues + task.negativeValues + task.unknownValues.filter { !$0.isEmpty }
                        report.add(.error, .invalidLabel, "line \(line), patient '\(id)', column '\(task.labelColumns[k])': '\(v)' is not a valid label (allowed: \(allowed.map { "'\($0)'" }.joined(separator: ", ")), or blank)" + hint(v, allowed))
                    }
                }
            case .multiclass:
                let v = row[lc[0]].trimmingCharacters(in: .whitespaces)
                if let k = task.classes.firstIndex(where: { $0.name == v }) {
                    rowLabels = task.classes.indices.map { $0 == k ? 1 : 0 }
                } else if task.unknownValues.contains(v) {
                    rowLabels = Array(repeating: -1, count: task.classes.count)
                } else {
                    rowOK = false
                    let names = task.classes.map(\.name)
                    report.add(.error, .invalidLabel, "line \(line), patient '\(id)', column '\(task.labelColumns[0])': '\(v)' is not one of the classes (\(names.map { "'\($0)'" }.joined(separator: ", ")), or blank for unknown)" + hint(v, names))
                }
            }
            guard rowOK else { continue }
            if let files = featureFiles, !files.contains(FeatureStore.fileName(patientID: id)) {
                missingFeatures.append(id); continue
            }
            if rowLabels.allSatisfy({ $0 == -1 }) { allUnknown.append(id); continue }
            ids.append(id); labels.append(rowLabels)
        }
        if !missingFeatures.isEmpty {
            report.add(.warning, .missingFeatures, "\(missingFeatures.count) patient(s) in the table have no feature file and are excluded: \(preview(missingFeatures))")
        }
        if let files = featureFiles {
            let known = Set(firstLine.keys.map { FeatureStore.fileName(patientID: $0) })
            let unknown = files.subtracting(known).sorted()
            if !unknown.isEmpty {
                report.add(.warning, .unknownPatient, "\(unknown.count) feature file(s) have no row in the table and are ignored: \(preview(unknown))")
            }
        }
        if !allUnknown.isEmpty {
            report.add(.warning, .allLabelsUnknown, "\(allUnknown.count) patient(s) have every label unknown and are excluded: \(preview(allUnknown))")
        }
        empty.patientIDs = ids; empty.labels = labels
        if ids.isEmpty && report.errors.isEmpty, let files = featureFiles, !missingFeatures.isEmpty, allUnknown.isEmpty {
            // Not one table ID matches a file name: say which IDs and which files, side by side.
            let names = files.sorted()
            report.add(.error, .noUsablePatients, "none of the table's \(missingFeatures.count) patient ID(s) (\(preview(missingFeatures, limit: 5))) has a feature file: "
                + "IDs are matched to files named <patient_id>.h5 (characters outside A-Z a-z 0-9 . _ - as '_'), "
                + (names.isEmpty ? "and the feature folder has no .h5 file" : "and the feature folder has \(names.count) .h5 file(s): \(preview(names, limit: 5))"))
        } else if ids.isEmpty && report.errors.isEmpty {
            report.add(.error, .noUsablePatients, "no patient has both a feature file and a known label")
        } else if report.errors.isEmpty {
            for (c, cls) in task.classes.enumerated() {
                let pos = empty.positives[c], neg = empty.negatives[c]
                if pos == 0 || neg == 0 {
                    report.add(.warning, .singleClass, "class '\(cls.name)' has \(pos) positive and \(neg) negative patient(s); its AUROC is undefined and it is left out of the macro average")
                }
            }
        }
        return (empty, report)
    }

    static func preview(_ ids: [String], limit: Int = 10) -> String {
        ids.prefix(limit).joined(separator: ", ") + (ids.count > limit ? ", … (\(ids.count - limit) more)" : "")
    }

    /// "did you mean" for common typos: case, numeric spelling (1.0), words around the class
    /// ("Stage II"), yes/no/true/false.
    static func hint(_ value: String, _ allowed: [String]) -> String {
        let lower = value.lowercased()
        if let m = allowed.first(where: { $0.lowercased() == lower && !$0.isEmpty }) { return "; did you mean '\(m)'?" }
        if let d = Double(value), let m = allowed.first(where: { Double($0) == d }) { return "; did you mean '\(m)' (values are compared as written)?" }
        let words = lower.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        if let m = allowed.first(where: { !$0.isEmpty && words.contains($0.lowercased()) }) { return "; did you mean '\(m)'?" }
        if ["yes", "true", "y", "positive", "pos"].contains(lower) || ["no", "false", "n", "negative", "neg"].contains(lower) {
            return "; write the task's positive/negative values, or list '\(value)' under positive_values / negative_values in the task file"
        }
        return ""
    }
}
