import AxialCore
import AxialStore
import Foundation
import Yams

// MARK: - The config file
//
// One YAML file, one section per stage command (STAMP style):
//
//     ingest:
//       input: dicom
//       out: slices
//       windows: [abdomen, lung]
//     crossval:
//       max-bag: 256
//
// Keys are the command's long flags, spelled exactly as on the command line (kebab-case:
// `max-bag`, never `max_bag` or `maxBag`). A `ConfigSchema` is the one table of what is
// accepted (the CLI derives it from the commands' flag declarations): the loader, `axial init`'s
// template and the command-line merge all read it. Unknown sections and
// keys are errors with a "did you mean" suggestion; a value of the wrong type is an error naming the
// key and the expected type; `null` (or an empty value) means "not set". Relative paths are
// resolved against the config file's folder.
//
// Precedence: a flag on the command line > the config's value > the command's default.
// `ConfigArguments.merge` implements it on the argument list before swift-argument-parser sees it:
// the config's values become `--key=value` arguments placed before the user's, and a key the user
// gives on the command line is not taken from the config at all.

/// The type of a config key, which decides how its YAML value is checked and turned into arguments.
public enum ConfigValueType: Sendable, Equatable {
    case string
    /// A file or folder; relative values are resolved against the config file's folder.
    case path
    /// A task name (`Manifests/tasks/<name>.yaml`) or a YAML path (resolved when it contains `/`
    /// or ends in `.yaml` / `.yml`).
    case nameOrPath
    case integer
    case number
    case boolean
    /// One of a fixed list of words.
    case choice([String])
    /// A YAML list (or a comma-separated string), passed as one comma-separated argument.
    case commaList
    /// A YAML list of paths (or one path), passed as one argument each.
    case pathList

    /// How the type reads in messages and in the template.
    public var name: String {
        switch self {
        case .string: return "a string"
        case .path: return "a path"
        case .nameOrPath: return "a name or a path"
        case .integer: return "an integer"
        case .number: return "a number"
        case .boolean: return "true or false"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        case .commaList: return "a list or a comma-separated string"
        case .pathList: return "a list of paths"
        }
    }
}

/// A checked value from a config file.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case list([String])

    /// The value as a command-line value (lists comma-joined).
    public var argumentText: String {
        switch self {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return ConfigValue.numberText(d)
        case .boolean(let b): return b ? "true" : "false"
        case .list(let l): return l.joined(separator: ",")
        }
    }

    /// YAML text of the value (strings double-quoted, lists in flow style).
    public var yaml: String {
        switch self {
        case .string(let s): return ConfigValue.quoted(s)
        case .integer, .number, .boolean: return argumentText
        case .list(let l): return "[" + l.map(ConfigValue.quoted).joined(separator: ", ") + "]"
        }
    }

    public var description: String { yaml }

    static func numberText(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}

/// One key of a section: the long flag it mirrors, its type, default and one-line help.
public struct ConfigKey: Sendable {
    /// The flag's long name without dashes (`max-bag`).
    public var name: String
    public var type: ConfigValueType
    /// The command's default (nil: none — the command leaves it unset or it is required).
    public var defaultValue: ConfigValue?
    /// The command cannot run without it (from the command line or the config).
    public var required: Bool
    /// The command takes it as a positional argument rather than `--name`.
    public var positional: Bool
    public var help: String

    public init(_ name: String, _ type: ConfigValueType, _ defaultValue: ConfigValue? = nil, required: Bool = false,
                positional: Bool = false, help: String) {
        self.name = name; self.type = type; self.defaultValue = defaultValue; self.required = required
        self.positional = positional; self.help = help
    }

    /// `--name` (or `<name>` for a positional argument).
    public var flag: String { positional ? "<\(name)>" : "--\(name)" }
}

/// A section: the keys of one stage command, in the command's order.
public struct ConfigSection: Sendable {
    /// The section name: the subcommand's words joined by `-` (`crossval` for `axial crossval`,
    /// `anomaly-train` for `axial anomaly train`).
    public var name: String
    public var summary: String
    public var keys: [ConfigKey]

    public init(name: String, summary: String, keys: [ConfigKey]) { self.name = name; self.summary = summary; self.keys = keys }

    /// The command as typed: `crossval`, `anomaly train`.
    public var command: String { name.replacingOccurrences(of: "-", with: " ") }

    /// How many leading command-line words name the command (`anomaly train` → 2).
    public var wordCount: Int { name.split(separator: "-").count }

    public func key(_ name: String) -> ConfigKey? { keys.first { $0.name == name } }
}

/// A config-file error; every case names the file, and where it applies the section, key and line.
public enum ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(path: String, reason: String)
    case syntax(path: String, reason: String)
    case notAMapping(path: String, section: String?, line: Int?, known: [String])
    case unknownSection(path: String, section: String, suggestion: String?, line: Int?, known: [String])
    case unknownKey(path: String, section: String, key: String, suggestion: String?, line: Int?)
    case type(path: String, section: String, key: String, expected: String, got: String, line: Int?)
    case missing(path: String, section: String, key: String, flag: String)
    case exists(path: String)

    public var description: String {
        func at(_ p: String, _ line: Int?) -> String { line.map { "\(p):\($0)" } ?? p }
        func hint(_ s: String?) -> String { s.map { " (did you mean '\($0)'?)" } ?? "" }
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read the config: \(r)"
        case .syntax(let p, let r): return "\(p): not valid YAML: \(r)"
        case .notAMapping(let p, let s, let l, let known):
            if let s { return "\(at(p, l)): section '\(s)' must be a mapping of keys to values" }
            return "\(at(p, l)): expected a mapping of sections (\(known.joined(separator: ", ")))"
        case .unknownSection(let p, let s, let sug, let l, let known):
            return "\(at(p, l)): unknown section '\(s)'\(hint(sug)); sections: \(known.joined(separator: ", "))"
        case .unknownKey(let p, let s, let k, let sug, let l):
            return "\(at(p, l)): unknown key '\(k)' in section '\(s)'\(hint(sug)) — keys are `axial \(s.replacingOccurrences(of: "-", with: " "))`'s long flags in kebab-case"
        case .type(let p, let s, let k, let e, let g, let l): return "\(at(p, l)): \(s).\(k): expected \(e), got \(g)"
        case .missing(let p, let s, let k, let f):
            return "missing \(f): give it on the command line or set '\(k)' in the '\(s)' section of \(p)"
        case .exists(let p): return "\(p) exists; use --force to overwrite it"
        }
    }
}

/// A loaded, checked config file: for each section, the keys it sets (null values left out),
/// paths already absolute.
public struct AxialConfig: Sendable {
    /// The file it was read from (resolved to an absolute path).
    public var path: String
    public var sections: [String: [String: ConfigValue]]

    /// The values of one section (empty when the file has no such section).
    public func section(_ name: String) -> [String: ConfigValue] { sections[name] ?? [:] }

    public subscript(section: String, key: String) -> ConfigValue? { sections[section]?[key] }

    // MARK: Loading

    /// Reads and checks `url`; relative paths in it are resolved against its folder.
    public static func load(_ url: URL, schema: ConfigSchema) throws -> AxialConfig {
        let url = url.standardizedFileURL
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError.unreadable(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, path: url.path, baseDirectory: url.deletingLastPathComponent(), schema: schema)
    }

    /// Checks YAML `text` against `schema`. `path` names the file in errors; relative paths
    /// are resolved against `baseDirectory`.
    public static func parse(_ text: String, path: String, baseDirectory: URL, schema: ConfigSchema) throws -> AxialConfig {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError.syntax(path: path, reason: "\(error)")
        }
        var config = AxialConfig(path: path, sections: [:])
        guard let root, !isNull(root) else { return config }
        guard let top = root.mapping else { throw ConfigError.notAMapping(path: path, section: nil, line: root.mark?.line, known: schema.sectionNames) }
        for (keyNode, body) in top {
            let name = keyNode.string ?? "\(keyNode)"
            let line = keyNode.mark?.line
            guard let section = schema.section(named: name) else {
                throw ConfigError.unknownSection(path: path, section: name, suggestion: suggestion(for: name, among: schema.sectionNames), line: line,
                                                 known: schema.sectionNames)
            }
            var values: [String: ConfigValue] = [:]
            if !isNull(body) {
                guard let entries = body.mapping else {
                    throw ConfigError.notAMapping(path: path, section: name, line: body.mark?.line ?? line, known: schema.sectionNames)
                }
                for (kNode, vNode) in entries {
                    let key = kNode.string ?? "\(kNode)"
                    let kLine = kNode.mark?.line
                    guard let spec = section.key(key) else {
                        throw ConfigError.unknownKey(path: path, section: name, key: key,
                                                     suggestion: suggestion(for: key, among: section.keys.map(\.name)), line: kLine)
                    }
                    if let v = try value(vNode, spec: spec, section: name, path: path, base: baseDirectory, line: kLine) { values[key] = v }
                }
            }
            config.sections[name] = values
        }
        return config
    }

    static func isNull(_ node: Node) -> Bool { node.scalar != nil && node.null != nil }

    /// Checks one value against its key's type; nil for null.
    static func value(_ node: Node, spec: ConfigKey, section: String, path: String, base: URL, line: Int?) throws -> ConfigValue? {
        if isNull(node) { return nil }
        func fail() -> ConfigError {
            .type(path: path, section: section, key: spec.name, expected: spec.type.name, got: describe(node), line: line)
        }
        let tag = node.tag.rawValue
        let isString = tag == Tag.Name.str.rawValue, isInt = tag == Tag.Name.int.rawValue, isFloat = tag == Tag.Name.float.rawValue
        // A scalar that is text, or a number written where text is expected (`shard: 0`) — not a boolean.
        func text() throws -> String {
            guard let s = node.scalar, isString || isInt || isFloat else { throw fail() }
            return s.string
        }
        func items() throws -> [String] {
            if let seq = node.sequence {
                return try seq.map { item in
                    guard let s = item.scalar, item.tag.rawValue != Tag.Name.bool.rawValue, !isNull(item) else { throw fail() }
                    return s.string
                }
            }
            return [try text()]
        }
        switch spec.type {
        case .string:
            return .string(try text())
        case .path:
            return .string(resolve(try text(), base: base))
        case .nameOrPath:
            let s = try text()
            return .string(s.contains("/") || s.hasSuffix(".yaml") || s.hasSuffix(".yml") ? resolve(s, base: base) : s)
        case .integer:
            if isInt, let i = node.int { return .integer(i) }
            if isString, let i = Int(node.scalar!.string.trimmingCharacters(in: .whitespaces)) { return .integer(i) }
            throw fail()
        case .number:
            if isInt || isFloat, let d = node.float { return .number(d) }
            if isString, let d = Double(node.scalar!.string.trimmingCharacters(in: .whitespaces)), d.isFinite { return .number(d) }
            throw fail()
        case .boolean:
            guard tag == Tag.Name.bool.rawValue, let b = node.bool else { throw fail() }
            return .boolean(b)
        case .choice(let words):
            let s = try text()
            guard words.contains(s) else {
                throw ConfigError.type(path: path, section: section, key: spec.name, expected: spec.type.name,
                                       got: "'\(s)'" + (suggestion(for: s, among: words).map { " (did you mean '\($0)'?)" } ?? ""), line: line)
            }
            return .string(s)
        case .commaList:
            let list = try items().flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            guard !list.isEmpty else { throw fail() }
            return .list(list)
        case .pathList:
            let list = try items()
            guard !list.isEmpty else { throw fail() }
            return .list(list.map { resolve($0, base: base) })
        }
    }

    /// `~` expanded; a relative path joined to `base`; `.`/`..` removed.
    static func resolve(_ path: String, base: URL) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
        return base.appendingPathComponent(expanded).standardizedFileURL.path
    }

    static func describe(_ node: Node) -> String {
        if node.mapping != nil { return "a mapping" }
        if node.sequence != nil { return "a list" }
        guard let s = node.scalar else { return "an alias" }
        switch node.tag.rawValue {
        case Tag.Name.bool.rawValue: return "a boolean (\(s.string))"
        case Tag.Name.int.rawValue, Tag.Name.float.rawValue: return "a number (\(s.string))"
        default: return "'\(s.string)'"
        }
    }

    // MARK: Suggestions

    /// The closest of `candidates` to `word` — same spelling up to `_`/`-`/case, else Levenshtein
    /// distance ≤ max(2, length/3) — or nil.
    public static func suggestion(for word: String, among candidates: [String]) -> String? {
        func folded(_ s: String) -> String { s.lowercased().replacingOccurrences(of: "_", with: "-") }
        func kebab(_ s: String) -> String {   // maxBag → max-bag
            var out = ""
            for c in s { if c.isUppercase, !out.isEmpty { out += "-" }; out += c.lowercased() }
            return out
        }
        if let exact = candidates.first(where: { folded($0) == folded(word) || $0 == kebab(word) }) { return exact }
        let scored = candidates.map { ($0, editDistance(folded(word), folded($0))) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, word.count / 3) else { return nil }
        return best
    }

    /// Levenshtein distance (insertions, deletions, substitutions).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

// MARK: - The schema

/// Every section and key the loader accepts, with defaults and help — the single source of the
/// loader, `axial init`'s template and the command-line merge. The CLI derives it from the stage
/// commands' own flag declarations (`Sources/axial/CommandSchema.swift`), so a flag is declared once.
public struct ConfigSchema: Sendable {
    public var sections: [ConfigSection]
    public init(_ sections: [ConfigSection]) { self.sections = sections }
    public var sectionNames: [String] { sections.map(\.name) }
    public func section(named name: String) -> ConfigSection? { sections.first { $0.name == name } }
}

// MARK: - The template (`axial init`)

extension AxialConfig {
    /// A config with every section and key at its default (`null` where there is none), each key
    /// under a one-line comment. Generated from `schema`, so it parses and holds exactly the keys
    /// the loader accepts.
    public static func template(_ schema: ConfigSchema) -> String {
        var lines = [
            "# Axial configuration (written by `axial init`).",
            "#",
            "# One section per command: `axial <command> --config <this file> [flags]` reads the command's",
            "# section; a flag given on the command line overrides the value here, and a key that is null",
            "# (or left out) falls back to the command's default. Keys are the command's long flags in",
            "# kebab-case (`max-bag`, not `max_bag`); unknown sections and keys are errors. Relative paths",
            "# are resolved against this file's folder. A boolean set true here cannot be switched off by",
            "# a flag: change it here. Keys marked required must be set here or given as flags.",
        ]
        for section in schema.sections {
            lines.append("")
            lines.append("# axial \(section.command): \(section.summary)")
            lines.append("\(section.name):")
            for key in section.keys {
                let when: String
                if key.required { when = "required" + (key.positional ? ", the positional argument on the command line" : "") }
                else if let d = key.defaultValue { when = "default \(d.yaml)" }
                else { when = "not set by default" }
                lines.append("  # \(key.help) (\(key.type.name); \(when))")
                lines.append("  \(key.name): \(key.defaultValue?.yaml ?? "null")")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `template()` to `url` (temporary file + rename); refuses an existing file unless `force`.
    public static func writeTemplate(_ schema: ConfigSchema, to url: URL, force: Bool) throws {
        if FileManager.default.fileExists(atPath: url.path) && !force { throw ConfigError.exists(path: url.path) }
        do { try AtomicFile.write(Data(template(schema).utf8), to: url) } catch FileError.io(_, let reason), FileError.unwritable(_, let reason) {
            throw PipelineError.io(path: url.path, reason: reason)
        }
    }
}

// MARK: - Command-line merge

/// Merges a config file's section into a stage command's arguments (the one helper all stage
/// commands share; the CLI calls it before swift-argument-parser parses).
public enum ConfigArguments {
    /// `arguments`: the command line without the program name (`["ingest", "--config", "a.yaml", "--size", "64"]`).
    /// Without `--config`, for a command that has no section, or when help is asked for, the
    /// arguments come back unchanged. Otherwise: the subcommand, then the config's values as
    /// arguments (`--key=value`; booleans that are true as `--key`; lists of paths as one `--key=p`
    /// each; a positional value as is), then the user's arguments — keys the user gave on the command
    /// line are not taken from the config. Throws `ConfigError.missing` for a required key set in
    /// neither place, and the loader's errors.
    public static func merge(schema: ConfigSchema, _ arguments: [String],
                             currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> [String] {
        // A nested command (`anomaly train`) has the section `anomaly-train`; a top-level one its own name.
        let section: ConfigSection
        if arguments.count >= 2, let nested = schema.section(named: arguments[0] + "-" + arguments[1]) { section = nested }
        else if let first = arguments.first, let top = schema.section(named: first), top.wordCount == 1 { section = top }
        else { return arguments }
        let command = Array(arguments.prefix(section.wordCount))
        let rest = Array(arguments.dropFirst(section.wordCount))
        let options = rest.prefix { $0 != "--" }
        if options.contains(where: { ["-h", "--help", "--experimental-dump-help"].contains($0) }) { return arguments }
        var configPath: String?
        for (n, token) in options.enumerated() {
            if token == "--config", n + 1 < options.count { configPath = options[options.startIndex + n + 1] }
            if token.hasPrefix("--config=") { configPath = String(token.dropFirst("--config=".count)) }
        }
        guard let configPath else { return arguments }
        let config = try AxialConfig.load(URL(fileURLWithPath: configPath, relativeTo: currentDirectory), schema: schema)
        let values = config.section(section.name)

        // What the user gave: `--key`, `--key=value`, and positional words.
        var given = Set<String>()
        var sawPositional = false
        var index = 0
        while index < rest.count {
            let token = rest[index]
            index += 1
            if token == "--" { sawPositional = sawPositional || index < rest.count; break }
            if token.hasPrefix("--") {
                let body = token.dropFirst(2)
                if let eq = body.firstIndex(of: "=") { given.insert(String(body[..<eq])); continue }
                let name = String(body)
                given.insert(name)
                if name == "config" { index += 1; continue }
                if let key = section.key(name), key.type != .boolean {
                    index += 1
                    if key.type == .pathList { while index < rest.count, !rest[index].hasPrefix("-") { index += 1 } }
                }
            } else if token.hasPrefix("-") && token.count > 1 {
                continue
            } else {
                sawPositional = true
            }
        }

        var missing: [ConfigKey] = []
        var positional: [String] = []
        var fromConfig: [String] = []
        for key in section.keys {
            let userHasIt = key.positional ? sawPositional : given.contains(key.name)
            if userHasIt { continue }
            guard let value = values[key.name] else {
                if key.required { missing.append(key) }
                continue
            }
            if key.positional { positional.append(value.argumentText); continue }
            switch (key.type, value) {
            case (.boolean, .boolean(let on)): if on { fromConfig.append("--\(key.name)") }
            case (.pathList, .list(let items)): fromConfig += items.map { "--\(key.name)=\($0)" }
            default: fromConfig.append("--\(key.name)=\(value.argumentText)")
            }
        }
        if let first = missing.first {
            throw ConfigError.missing(path: config.path, section: section.name, key: first.name, flag: first.flag)
        }
        return command + positional + fromConfig + rest
    }
}
