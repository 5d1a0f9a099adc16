import AxialCore
import AxialImaging
import AxialModels
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
// `max-bag`, never `max_bag` or `maxBag`). `AxialConfig.schema` is the one table of what is
// accepted: the loader, `axial init`'s template and the command-line merge all read it, and a test
// checks it against the commands' real flags (names, defaults, required-ness). Unknown sections and
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
    /// The section name, which is also the subcommand name (`axial crossval`).
    public var name: String
    public var summary: String
    public var keys: [ConfigKey]

    public func key(_ name: String) -> ConfigKey? { keys.first { $0.name == name } }
}

/// A config-file error; every case names the file, and where it applies the section, key and line.
public enum ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(path: String, reason: String)
    case syntax(path: String, reason: String)
    case notAMapping(path: String, section: String?, line: Int?)
    case unknownSection(path: String, section: String, suggestion: String?, line: Int?)
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
        case .notAMapping(let p, let s, let l):
            if let s { return "\(at(p, l)): section '\(s)' must be a mapping of keys to values" }
            return "\(at(p, l)): expected a mapping of sections (\(AxialConfig.sectionNames.joined(separator: ", ")))"
        case .unknownSection(let p, let s, let sug, let l):
            return "\(at(p, l)): unknown section '\(s)'\(hint(sug)); sections: \(AxialConfig.sectionNames.joined(separator: ", "))"
        case .unknownKey(let p, let s, let k, let sug, let l):
            return "\(at(p, l)): unknown key '\(k)' in section '\(s)'\(hint(sug)) — keys are `axial \(s)`'s long flags in kebab-case"
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
    public static func load(_ url: URL) throws -> AxialConfig {
        let url = url.standardizedFileURL
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError.unreadable(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, path: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Checks YAML `text` against `schema`. `path` names the file in errors; relative paths
    /// are resolved against `baseDirectory`.
    public static func parse(_ text: String, path: String, baseDirectory: URL) throws -> AxialConfig {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError.syntax(path: path, reason: "\(error)")
        }
        var config = AxialConfig(path: path, sections: [:])
        guard let root, !isNull(root) else { return config }
        guard let top = root.mapping else { throw ConfigError.notAMapping(path: path, section: nil, line: root.mark?.line) }
        for (keyNode, body) in top {
            let name = keyNode.string ?? "\(keyNode)"
            let line = keyNode.mark?.line
            guard let section = schema.first(where: { $0.name == name }) else {
                throw ConfigError.unknownSection(path: path, section: name, suggestion: suggestion(for: name, among: sectionNames), line: line)
            }
            var values: [String: ConfigValue] = [:]
            if !isNull(body) {
                guard let entries = body.mapping else { throw ConfigError.notAMapping(path: path, section: name, line: body.mark?.line ?? line) }
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

// MARK: - The table

extension AxialConfig {
    public static var sectionNames: [String] { schema.map(\.name) }

    public static func section(named name: String) -> ConfigSection? { schema.first { $0.name == name } }

    /// Every section and key the loader accepts, with defaults and help — the single source of the
    /// loader, `axial init`'s template and the command-line merge. Keep it in step with the
    /// commands' flags (Sources/axial/*.swift); `ConfigCLITests` compares the two.
    public static let schema: [ConfigSection] = {
        func s(_ v: String) -> ConfigValue { .string(v) }
        func i(_ v: Int) -> ConfigValue { .integer(v) }
        func n(_ v: Double) -> ConfigValue { .number(v) }
        let no = ConfigValue.boolean(false)
        let quiet = ConfigKey("quiet", .boolean, no, help: "No progress output.")
        return [
            ConfigSection(name: "ingest", summary: "DICOM / NIfTI series → windowed 8-bit PNG slices + manifest.csv", keys: [
                ConfigKey("input", .path, required: true, positional: true, help: "Folder tree (or single file) with DICOM series and/or NIfTI volumes."),
                ConfigKey("out", .path, required: true, help: "Output folder."),
                ConfigKey("windows", .commaList, .list(["abdomen"]), help: "Windows: preset names or W<width>/L<level>."),
                ConfigKey("channels", .choice(ChannelMode.allCases.map(\.rawValue)), s("separate"),
                          help: "separate: one gray PNG per window; stacked: one RGB PNG with up to 3 windows as channels."),
                ConfigKey("size", .integer, help: "Resize slices to N×N pixels (bilinear up, area-average down); null keeps the matrix."),
                ConfigKey("shard", .string, s("0/1"), help: "Process only shard i of n (by patient), e.g. 0/4, for job arrays."),
                ConfigKey("window-file", .path, help: "YAML file of window presets (shape of Manifests/windows.yaml)."),
                quiet,
            ]),
            ConfigSection(name: "pretrain", summary: "MoCo v3 / LeCL self-supervised pretraining of a slice encoder", keys: [
                ConfigKey("input", .path, required: true, help: "Ingest output folder (with manifest.csv)."),
                ConfigKey("lesions", .path, help: "Lesion box CSV (DeepLesion DL_info.csv or Axial's patient_id,slice_index,x1,y1,x2,y2)."),
                ConfigKey("lesion-format", .choice(["deeplesion", "axial"]), help: "deeplesion or axial (null: detected from the header)."),
                ConfigKey("arch", .string, required: true, help: "Encoder architecture (registry name, e.g. vit_small_moco, vit_conv_small, vit_test)."),
                ConfigKey("steps", .integer, required: true, help: "Training steps."),
                ConfigKey("batch", .integer, required: true, help: "Slices per batch (two views each)."),
                ConfigKey("out", .path, required: true, help: "Output folder."),
                ConfigKey("resume", .boolean, no, help: "Continue from <out>/checkpoint.safetensors."),
                ConfigKey("lr", .number, n(1e-4), help: "Base learning rate (scaled by batch/256)."),
                ConfigKey("weight-decay", .number, n(0.1), help: "AdamW weight decay."),
                ConfigKey("warmup", .integer, help: "Warmup steps (null: 10% of steps)."),
                ConfigKey("weight-w", .number, n(1.0), help: "LeCL weight w of lesion negatives (≤ 0: plain MoCo v3)."),
                ConfigKey("temperature", .number, n(1.0), help: "Softmax temperature T."),
                ConfigKey("momentum", .number, n(0.99), help: "Base momentum m0 (ramped to 1 by a half cosine)."),
                ConfigKey("dim", .integer, i(256), help: "Projector / predictor output dimension."),
                ConfigKey("mlp-dim", .integer, i(4096), help: "Projector / predictor hidden dimension."),
                ConfigKey("checkpoint-every", .integer, i(100), help: "Checkpoint every K steps."),
                ConfigKey("seed", .integer, i(0), help: "Seed (initialisation, sample order, augmentations)."),
                ConfigKey("size", .integer, i(224), help: "View size in pixels."),
                ConfigKey("clip-grad", .number, help: "Clip the global gradient norm to this value (null: no clipping)."),
                ConfigKey("workers", .integer, i(2), help: "Background augmentation threads."),
                quiet,
            ]),
            ConfigSection(name: "extract", summary: "slices → one <patient_id>.h5 of encoder features per patient", keys: [
                ConfigKey("encoder", .string, required: true, help: "Encoder name: " + EncoderRegistry.names.joined(separator: ", ") + "."),
                ConfigKey("weights", .path, help: ".safetensors weights under the source library's names (or set random-init)."),
                ConfigKey("random-init", .boolean, no, help: "Use random initial weights (tests, demo) instead of weights."),
                ConfigKey("seed", .integer, i(0), help: "Seed of random-init."),
                ConfigKey("input", .path, required: true, help: "Ingest output folder (with manifest.csv), or a DICOM / NIfTI file or folder."),
                ConfigKey("out", .path, required: true, help: "Output folder for <patient_id>.h5 files."),
                ConfigKey("input-size", .integer, help: "ViT encoders: input size other than the registry's (null: the registry's)."),
                ConfigKey("batch", .integer, i(32), help: "Slices per forward pass."),
                ConfigKey("dtype", .choice(FeaturePrecision.allCases.map(\.rawValue)), s("float32"), help: "float32 or float16 for feats."),
                ConfigKey("shard", .string, s("0/1"), help: "Process only shard i of n (by patient), e.g. 0/4."),
                ConfigKey("windows", .commaList, help: "Window labels of the manifest to embed (null: all); DICOM / NIfTI input: windows to apply (null: abdomen)."),
                ConfigKey("window-file", .path, help: "DICOM / NIfTI input: YAML file of window presets (shape of Manifests/windows.yaml)."),
                ConfigKey("channels", .choice(ChannelMode.allCases.map(\.rawValue)), s("separate"),
                          help: "DICOM / NIfTI input: separate (one image per window) or stacked (windows as RGB channels)."),
                ConfigKey("size", .integer, help: "DICOM / NIfTI input: resize slices to N×N before preprocessing (null: keep)."),
                ConfigKey("threads", .integer, help: "Worker threads (null: all cores)."),
                quiet,
            ]),
            ConfigSection(name: "crossval", summary: "patient-level K-fold training of a MIL head on HDF5 features", keys: [
                ConfigKey("features", .path, required: true, help: "Folder of <patient>.h5 feature files."),
                ConfigKey("table", .path, required: true, help: "Clinical table (CSV: patient_id + label columns)."),
                ConfigKey("task", .nameOrPath, required: true, help: "Task name (Manifests/tasks/<name>.yaml) or a task YAML path."),
                ConfigKey("head", .choice(HeadKind.allCases.map(\.rawValue)), required: true, help: "Head: abmil, abmil-gated, pma or pspg."),
                ConfigKey("out", .path, required: true, help: "Output folder (task.yaml, splits.json, fold-*/…)."),
                ConfigKey("folds", .integer, i(5), help: "Number of folds."),
                ConfigKey("seed", .integer, i(0), help: "Seed of the splits, initialisation and bag sampling."),
                ConfigKey("epochs", .integer, i(32), help: "Maximum epochs (early stopping on validation loss)."),
                ConfigKey("lr", .number, n(1e-4), help: "Learning rate (Adam)."),
                ConfigKey("weight-decay", .number, n(0), help: "Weight decay (Adam, L2)."),
                ConfigKey("batch", .integer, i(64), help: "Bags per batch."),
                ConfigKey("max-bag", .integer, i(512), help: "Maximum rows per bag (0: no limit); key slices are kept, the rest sampled."),
                ConfigKey("windows", .commaList, help: "Windows to use (null: all in the files)."),
                ConfigKey("key-slices", .path, help: "CSV of key slices (patient_id, slice_index) kept when a bag is cut to max-bag."),
                ConfigKey("patience", .integer, i(8), help: "Epochs without validation-loss improvement before stopping."),
                ConfigKey("validation-fraction", .number, n(0.2), help: "Fraction of the training patients held out for validation."),
                ConfigKey("hidden", .integer, help: "Head width (null: the head's)."),
                ConfigKey("seeds", .integer, help: "PMA seeds k (null: 1)."),
                ConfigKey("class-embeddings", .path, help: "PsPG: class-name embeddings (safetensors)."),
                ConfigKey("text-encoder", .choice(ClassNameEncoder.Kind.allCases.map(\.rawValue)),
                          help: "PsPG: encode the class names with this text tower."),
                ConfigKey("text-weights", .path, help: "PsPG: the text tower's open_clip checkpoint (.safetensors)."),
                ConfigKey("text-vocab", .path, help: "PsPG + biomedclip: the WordPiece vocab.txt of BiomedCLIP's tokenizer."),
                ConfigKey("prompt-template", .string, s(ClassNameEncoder.defaultTemplate), help: "PsPG: prompt template for the class names ({name} is replaced)."),
                ConfigKey("pair-loss", .number, n(0), help: "PsPG: weight of the pair co-occurrence loss (0: off)."),
            ]),
            ConfigSection(name: "deploy", summary: "score a cohort with trained fold models (mean ensemble)", keys: [
                ConfigKey("models", .pathList, required: true, help: "Crossval folders and/or model.safetensors files."),
                ConfigKey("features", .path, required: true, help: "Folder of <patient>.h5 feature files."),
                ConfigKey("out", .path, required: true, help: "Output folder (task.yaml, patient_preds.csv, slice_attention.csv)."),
                ConfigKey("table", .path, help: "Clinical table with labels (null: score every feature file)."),
                ConfigKey("key-slices", .path, help: "CSV of key slices (patient_id, slice_index)."),
            ]),
            ConfigSection(name: "statistics", summary: "AUROC / AUPRC with bootstrap CIs, F1, plots from patient_preds.csv", keys: [
                ConfigKey("preds", .path, required: true, help: "A crossval folder, a deploy folder or one patient_preds.csv."),
                ConfigKey("out", .path, required: true, help: "Output folder (statistics.csv, statistics_per_fold.csv, statistics.md, SVG plots)."),
                ConfigKey("task", .nameOrPath, help: "Task name or YAML path (null: <preds>/task.yaml, else inferred from the columns)."),
                ConfigKey("threshold", .number, n(0.5), help: "Decision threshold on the scores for F1 / precision / recall."),
                ConfigKey("bootstrap", .integer, i(1000), help: "Bootstrap resamples for the 95% CIs (0: no CIs)."),
                ConfigKey("seed", .integer, i(0), help: "Seed of the bootstrap."),
                ConfigKey("stratified-bootstrap", .boolean, no, help: "Resample within label strata instead of plain patient resampling."),
                ConfigKey("no-attention-plots", .boolean, no, help: "Skip the per-patient attention plots."),
            ]),
        ]
    }()
}

// MARK: - The template (`axial init`)

extension AxialConfig {
    /// A config with every section and key at its default (`null` where there is none), each key
    /// under a one-line comment. Generated from `schema`, so it parses and holds exactly the keys
    /// the loader accepts.
    public static func template() -> String {
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
        for section in schema {
            lines.append("")
            lines.append("# axial \(section.name): \(section.summary)")
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
    public static func writeTemplate(to url: URL, force: Bool) throws {
        if FileManager.default.fileExists(atPath: url.path) && !force { throw ConfigError.exists(path: url.path) }
        do { try AtomicFile.write(Data(template().utf8), to: url) } catch FileError.io(_, let reason) {
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
    public static func merge(_ arguments: [String], currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> [String] {
        guard let command = arguments.first, let section = AxialConfig.section(named: command) else { return arguments }
        let rest = Array(arguments.dropFirst())
        let options = rest.prefix { $0 != "--" }
        if options.contains(where: { ["-h", "--help", "--experimental-dump-help"].contains($0) }) { return arguments }
        var configPath: String?
        for (n, token) in options.enumerated() {
            if token == "--config", n + 1 < options.count { configPath = options[options.startIndex + n + 1] }
            if token.hasPrefix("--config=") { configPath = String(token.dropFirst("--config=".count)) }
        }
        guard let configPath else { return arguments }
        let config = try AxialConfig.load(URL(fileURLWithPath: configPath, relativeTo: currentDirectory))
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
        return [command] + positional + fromConfig + rest
    }
}
