import Foundation
import Yams

/// What a task predicts.
public enum TaskKind: String, Sendable, Codable, CaseIterable {
    /// One label column, positive / negative values; one score column.
    case binary
    /// One label column whose values are the class names; one score column per class (softmax).
    case multiclass
    /// One 0/1 column per class; one score column per class (sigmoid).
    case multilabel
}

/// One predicted class.
public struct TaskClass: Sendable, Equatable, Codable {
    /// Display name ("soft tissue", "II").
    public var name: String
    /// Identifier for file and column names: `score_<id>`, `roc_<id>.svg` (the name with characters
    /// outside `[A-Za-z0-9._-]` replaced by `_`).
    public var id: String
    /// Multi-label / binary: the clinical-table column holding this class's 0/1 label.
    public var column: String?

    public init(name: String, id: String, column: String?) { self.name = name; self.id = id; self.column = column }
}

/// A task definition, read from `Manifests/tasks/<name>.yaml`.
///
/// ```yaml
/// name: lesion_location          # required, identifier
/// kind: multilabel               # binary | multiclass | multilabel
/// description: free text         # optional
/// classes: [bone, soft tissue]   # multiclass and multilabel: class names
/// columns: {soft tissue: soft_tissue}  # multilabel, optional: table column per class (default: the class id)
/// column: stage                  # binary and multiclass: the table's label column
/// class: malignant               # binary, optional: the positive class's name (default: `column`)
/// positive_values: ["1"]         # binary / multilabel, default ["1"]
/// negative_values: ["0"]         # binary / multilabel, default ["0"]
/// unknown_values: ["", "-1"]     # default ["", "-1"]: ignored by loss and metrics
/// ```
/// Unknown keys are errors. Values are compared as written (after trimming spaces), so `1.0` is not `1`.
public struct TaskSpec: Sendable, Equatable {
    public var name: String
    public var kind: TaskKind
    public var description: String
    public var classes: [TaskClass]
    /// Binary / multiclass: the label column.
    public var labelColumn: String?
    public var positiveValues: [String]
    public var negativeValues: [String]
    public var unknownValues: [String]

    public init(name: String, kind: TaskKind, description: String = "", classes: [TaskClass], labelColumn: String? = nil,
                positiveValues: [String] = ["1"], negativeValues: [String] = ["0"], unknownValues: [String] = ["", "-1"]) {
        self.name = name; self.kind = kind; self.description = description; self.classes = classes
        self.labelColumn = labelColumn; self.positiveValues = positiveValues
        self.negativeValues = negativeValues; self.unknownValues = unknownValues
    }

    /// The table columns holding labels, in class order (binary / multiclass: one column).
    public var labelColumns: [String] {
        kind == .multilabel ? classes.map { $0.column ?? $0.id } : [labelColumn ?? ""]
    }

    /// `score_<id>` per class.
    public var scoreColumns: [String] { classes.map { "score_" + $0.id } }

    static let keys: Set<String> = ["name", "kind", "description", "classes", "columns", "column", "class",
                                    "positive_values", "negative_values", "unknown_values"]

    /// Reads a task given a YAML path, or a name looked up as `<tasksDirectory>/<name>.yaml`.
    public static func load(_ nameOrPath: String, tasksDirectory: URL = URL(fileURLWithPath: "Manifests/tasks")) throws -> TaskSpec {
        try load(nameOrPath, directories: [tasksDirectory])
    }

    /// A task path (ends in .yaml / .yml or holds a '/') or a bare name.
    public static func isPath(_ nameOrPath: String) -> Bool {
        nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml") || nameOrPath.contains("/")
    }

    /// Where a bare `--task NAME` is looked for, in order: `./Manifests/tasks` (the current
    /// folder), next to the config file (`<config dir>/Manifests/tasks`, then `<config dir>`),
    /// then the tasks installed with Axial (`<executable dir>/../share/axial/tasks`,
    /// `<executable dir>/Manifests/tasks`) and the package's own `Manifests/tasks` (source checkout).
    public static func searchDirectories(configFile: URL? = nil, currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> [URL] {
        var out = [currentDirectory.appendingPathComponent("Manifests/tasks")]
        if let c = configFile {
            let dir = c.standardizedFileURL.deletingLastPathComponent()
            out += [dir.appendingPathComponent("Manifests/tasks"), dir]
        }
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent()
        out += [exe.appendingPathComponent("../share/axial/tasks").standardizedFileURL, exe.appendingPathComponent("Manifests/tasks")]
        // Sources/AxialEval/Task.swift → <package>/Manifests/tasks (a source checkout's bundled tasks).
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        out.append(package.appendingPathComponent("Manifests/tasks"))
        var seen = Set<String>()
        return out.filter { seen.insert($0.standardizedFileURL.path).inserted }
    }

    /// The task file for `nameOrPath`: a path as is; a name as `<dir>/<name>.yaml` in the first of
    /// `directories` that has it. The error lists every folder looked in and the tasks found there.
    public static func locate(_ nameOrPath: String, directories: [URL]) throws -> URL {
        if isPath(nameOrPath) {
            let url = URL(fileURLWithPath: nameOrPath)
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw EvalError.task(path: url.path, key: "", reason: "cannot read the task file")
            }
            return url
        }
        for d in directories {
            let url = d.appendingPathComponent(nameOrPath + ".yaml")
            if FileManager.default.isReadableFile(atPath: url.path) { return url }
        }
        var known = Set<String>()
        for d in directories {
            for n in (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? [] where n.hasSuffix(".yaml") { known.insert(String(n.dropLast(5))) }
        }
        throw EvalError.task(path: nameOrPath, key: "", reason: "no task named '\(nameOrPath)': looked for \(nameOrPath).yaml in "
            + directories.map(\.path).joined(separator: ", ")
            + (known.isEmpty ? "" : " (tasks found there: \(known.sorted().joined(separator: ", ")))")
            + "; give a task YAML path or one of those names")
    }

    /// Reads a task by path, or by name from the first of `directories` that has it.
    public static func load(_ nameOrPath: String, directories: [URL]) throws -> TaskSpec {
        let url = try locate(nameOrPath, directories: directories)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw EvalError.task(path: url.path, key: "", reason: "cannot read the task file (not UTF-8 text?)")
        }
        return try parse(text, path: url.path)
    }

    /// Parses task YAML; errors name the file and the key.
    public static func parse(_ text: String, path: String = "<task>") throws -> TaskSpec {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw EvalError.task(path: path, key: "", reason: "not valid YAML: \(error)")
        }
        guard let mapping = root?.mapping else {
            throw EvalError.task(path: path, key: "", reason: "expected a mapping of keys (name, kind, classes, …)")
        }
        var map: [String: Node] = [:]
        for (k, v) in mapping {
            guard let key = k.scalar?.string else { throw EvalError.task(path: path, key: "", reason: "a key is not a string") }
            guard keys.contains(key) else {
                throw EvalError.task(path: path, key: key, reason: "unknown key (allowed: \(keys.sorted().joined(separator: ", ")))")
            }
            map[key] = v
        }
        func scalar(_ key: String) throws -> String? {
            guard let n = map[key] else { return nil }
            guard let s = n.scalar?.string else { throw EvalError.task(path: path, key: key, reason: "expected a single value") }
            return s.trimmingCharacters(in: .whitespaces)
        }
        func list(_ key: String) throws -> [String]? {
            guard let n = map[key] else { return nil }
            if let s = n.scalar?.string { return [s.trimmingCharacters(in: .whitespaces)] }
            guard let seq = n.sequence else { throw EvalError.task(path: path, key: key, reason: "expected a list") }
            return try seq.map { item in
                guard let s = item.scalar?.string else { throw EvalError.task(path: path, key: key, reason: "expected a list of values") }
                return s.trimmingCharacters(in: .whitespaces)
            }
        }
        guard let name = try scalar("name"), !name.isEmpty else { throw EvalError.task(path: path, key: "name", reason: "required") }
        guard let kindText = try scalar("kind") else { throw EvalError.task(path: path, key: "kind", reason: "required (binary, multiclass or multilabel)") }
        guard let kind = TaskKind(rawValue: kindText) else {
            throw EvalError.task(path: path, key: "kind", reason: "'\(kindText)' is not one of binary, multiclass, multilabel")
        }
        var spec = TaskSpec(name: name, kind: kind, description: try scalar("description") ?? "", classes: [])
        spec.positiveValues = try list("positive_values") ?? ["1"]
        spec.negativeValues = try list("negative_values") ?? ["0"]
        spec.unknownValues = try list("unknown_values") ?? ["", "-1"]

        func forbid(_ key: String, _ why: String) throws {
            if map[key] != nil { throw EvalError.task(path: path, key: key, reason: "not used by a \(kind.rawValue) task (\(why))") }
        }
        switch kind {
        case .binary:
            try forbid("classes", "use 'column' and optionally 'class'")
            try forbid("columns", "use 'column'")
            guard let column = try scalar("column"), !column.isEmpty else { throw EvalError.task(path: path, key: "column", reason: "required for a binary task") }
            let cls = try scalar("class") ?? column
            spec.labelColumn = column
            spec.classes = [TaskClass(name: cls, id: identifier(cls), column: column)]
        case .multiclass:
            try forbid("columns", "the classes are values of 'column'")
            try forbid("class", "list the classes under 'classes'")
            for k in ["positive_values", "negative_values"] { try forbid(k, "the label values are the class names") }
            guard let column = try scalar("column"), !column.isEmpty else { throw EvalError.task(path: path, key: "column", reason: "required for a multiclass task") }
            guard let names = try list("classes"), names.count >= 2 else { throw EvalError.task(path: path, key: "classes", reason: "a multiclass task needs at least 2 classes") }
            spec.labelColumn = column
            spec.classes = names.map { TaskClass(name: $0, id: identifier($0), column: nil) }
        case .multilabel:
            try forbid("column", "each class has its own column; see 'columns'")
            try forbid("class", "list the classes under 'classes'")
            guard let names = try list("classes"), !names.isEmpty else { throw EvalError.task(path: path, key: "classes", reason: "required for a multilabel task") }
            var columns: [String: String] = [:]
            if let n = map["columns"] {
                guard let m = n.mapping else { throw EvalError.task(path: path, key: "columns", reason: "expected a mapping class name → table column") }
                for (k, v) in m {
                    guard let cls = k.scalar?.string, let col = v.scalar?.string else {
                        throw EvalError.task(path: path, key: "columns", reason: "expected class name: column pairs")
                    }
                    guard names.contains(cls) else {
                        throw EvalError.task(path: path, key: "columns", reason: "'\(cls)' is not one of the classes (\(names.joined(separator: ", ")))")
                    }
                    columns[cls] = col
                }
            }
            spec.classes = names.map { TaskClass(name: $0, id: identifier($0), column: columns[$0] ?? identifier($0)) }
        }
        // Consistency.
        for (key, values) in [("classes", spec.classes.map(\.name)), ("classes", spec.classes.map(\.id)), ("columns", spec.labelColumns)] {
            var seen = Set<String>()
            for v in values where !seen.insert(v).inserted {
                throw EvalError.task(path: path, key: key, reason: "'\(v)' appears twice")
            }
        }
        if kind != .multiclass {
            let clash = Set(spec.positiveValues).intersection(spec.negativeValues).union(Set(spec.positiveValues + spec.negativeValues).intersection(spec.unknownValues))
            if let v = clash.sorted().first {
                throw EvalError.task(path: path, key: "positive_values", reason: "'\(v)' is listed as more than one of positive / negative / unknown")
            }
            if spec.positiveValues.isEmpty || spec.negativeValues.isEmpty {
                throw EvalError.task(path: path, key: spec.positiveValues.isEmpty ? "positive_values" : "negative_values", reason: "must not be empty")
            }
        } else if let v = spec.classes.first(where: { spec.unknownValues.contains($0.name) }) {
            throw EvalError.task(path: path, key: "unknown_values", reason: "'\(v.name)' is also a class")
        }
        return spec
    }

    /// Identifier used in file and column names.
    public static func identifier(_ name: String) -> String {
        var s = String(name.unicodeScalars.map { c -> Character in
            let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
            return ok ? Character(c) : "_"
        })
        if s.isEmpty { s = "_" }
        return s
    }
}
