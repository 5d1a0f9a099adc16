import ArgumentParser
import AxialImaging
import AxialPipeline
import AxialStore
import Foundation

extension ChannelMode: ExpressibleByArgument {}
extension FeaturePrecision: ExpressibleByArgument {}
extension NIfTIReader.NonFinitePolicy: ExpressibleByArgument {}

/// Value-name conventions that tell the config schema what a `String` option holds (and show in
/// `--help` as `--features <path>`): `.path("…")` a file or folder (resolved against the config's
/// folder), `.list("…")` a comma-separated list (a YAML list in the config), `.nameOrPath("…")` a
/// task name or a YAML path.
extension ArgumentHelp {
    static func path(_ text: String) -> ArgumentHelp { ArgumentHelp(text, valueName: "path") }
    static func list(_ text: String) -> ArgumentHelp { ArgumentHelp(text, valueName: "list") }
    static func nameOrPath(_ text: String) -> ArgumentHelp { ArgumentHelp(text, valueName: "name-or-path") }
}

/// The config schema, derived from the stage commands themselves: each flag is declared once, as
/// its `@Option` / `@Flag` / `@Argument`, and the config loader, `axial init`'s template and
/// `--help` all come from that declaration. Names, help, defaults, required-ness, positional-ness
/// and choices come from swift-argument-parser's own description of the command
/// (`--experimental-dump-help`); the value type from the property's Swift type (`Option<Int>` →
/// integer, `Option<Float>` → number, `Flag<Bool>` → boolean, an enum → a choice) and, for strings,
/// from the value name above.
enum CommandSchema {
    /// A command with a config section: its type, the parent command's name for a nested one
    /// (`anomaly` for `axial anomaly train`, section `anomaly-train`), and the `@OptionGroup`s it
    /// declares (reflection cannot see inside an unparsed group, so they are named here).
    struct Entry {
        var command: any ParsableCommand.Type
        var parent: String? = nil
        var groups: [any ParsableArguments.Type] = []
    }

    /// The commands that have a config section, in template order.
    static let stageCommands: [Entry] = [
        Entry(command: Ingest.self), Entry(command: PretrainCommand.self), Entry(command: ExtractCommand.self),
        Entry(command: CrossValCommand.self), Entry(command: DeployCommand.self), Entry(command: Statistics.self),
        Entry(command: ReportCommand.self),
        Entry(command: AnomalyTrain.self, parent: "anomaly"), Entry(command: AnomalyTest.self, parent: "anomaly"),
        Entry(command: AnomalyPredict.self, parent: "anomaly"),
        Entry(command: ClassifyCommand.Train.self, parent: "classify"), Entry(command: ClassifyCommand.Test.self, parent: "classify"),
        Entry(command: ClassifyCommand.Predict.self, parent: "classify"),
        Entry(command: SegmentTrain.self, parent: "segment", groups: [SegmentModelOptions.self]),
        Entry(command: SegmentTest.self, parent: "segment", groups: [SegmentModelOptions.self]),
        Entry(command: SegmentPredict.self, parent: "segment", groups: [SegmentModelOptions.self]),
    ]

    static let schema = ConfigSchema(stageCommands.map { section(of: $0) })

    /// One command's section.
    static func section(of entry: Entry) -> ConfigSection {
        let command = entry.command
        let dump = (try? JSONSerialization.jsonObject(with: Data(command._dumpHelp().utf8))) as? [String: Any]
        let info = dump?["command"] as? [String: Any] ?? [:]
        let own = info["commandName"] as? String ?? command._commandName
        let name = entry.parent.map { "\($0)-\(own)" } ?? own
        var types = swiftTypes(of: command)
        for group in entry.groups { types.byName.merge(swiftTypes(of: group).byName) { current, _ in current } }
        // Positional arguments are keyed by their property name (their value name may be `path`).
        var positionalNames = types.positionals.makeIterator()
        var keys: [ConfigKey] = []
        for argument in info["arguments"] as? [[String: Any]] ?? [] {
            guard (argument["shouldDisplay"] as? Bool) ?? true else { continue }
            let kind = argument["kind"] as? String ?? ""
            let names = argument["names"] as? [[String: Any]] ?? []
            let long = names.first { ($0["kind"] as? String) == "long" }?["name"] as? String
            let valueName = argument["valueName"] as? String
            guard let key = long ?? (kind == "positional" ? positionalNames.next() : nil), !["help", "config", "version"].contains(key) else { continue }
            let swiftType = types.byName[key] ?? ""
            let type = valueType(kind: kind, swiftType: swiftType, valueName: valueName,
                                 choices: argument["allValues"] as? [String] ?? [], repeating: argument["isRepeating"] as? Bool ?? false)
            let optional = argument["isOptional"] as? Bool ?? false
            let defaultText = argument["defaultValue"] as? String
            keys.append(ConfigKey(key, type, defaultValue(defaultText, type: type, flag: kind == "flag"),
                                  required: !optional, positional: kind == "positional",
                                  help: argument["abstract"] as? String ?? ""))
        }
        return ConfigSection(name: name, summary: info["abstract"] as? String ?? "", keys: keys)
    }

    /// Long flag name → the property wrapper's Swift type (`Option<Optional<Int>>`), by reflecting
    /// over a default instance (`_lr` → `lr`, `_weightDecay` → `weight-decay`, `_adapterLR` →
    /// `adapter-lr`); and the names of the `@Argument`s in declaration order.
    static func swiftTypes(of command: any ParsableArguments.Type) -> (byName: [String: String], positionals: [String]) {
        var out: [String: String] = [:], positionals: [String] = []
        for child in Mirror(reflecting: command.init()).children {
            guard var label = child.label else { continue }
            if label.hasPrefix("_") { label.removeFirst() }
            var kebab = "", previousUpper = false
            for c in label {
                if c.isUppercase { kebab += (previousUpper ? "" : "-") + c.lowercased() } else { kebab.append(c) }
                previousUpper = c.isUppercase
            }
            let swiftType = String(describing: type(of: child.value))
            out[kebab] = swiftType
            if swiftType.hasPrefix("Argument<") { positionals.append(kebab) }
        }
        return (out, positionals)
    }

    static func valueType(kind: String, swiftType: String, valueName: String?, choices: [String], repeating: Bool) -> ConfigValueType {
        if kind == "flag" { return .boolean }
        if !choices.isEmpty { return .choice(choices) }
        if repeating || swiftType.contains("Array<") { return .pathList }
        for t in ["<Int>", "<Int32>", "<Int64>", "<UInt64>", "<UInt32>", "<UInt>", "<Optional<Int>>", "<Optional<UInt64>>"]
        where swiftType.hasSuffix(t) { return .integer }
        if ["Float", "Double"].contains(where: { swiftType.contains("<\($0)>") }) { return .number }
        switch valueName {
        case "path": return .path
        case "list": return .commaList
        case "name-or-path": return .nameOrPath
        default: return .string
        }
    }

    static func defaultValue(_ text: String?, type: ConfigValueType, flag: Bool) -> ConfigValue? {
        if flag { return .boolean(false) }
        guard let text else { return nil }
        switch type {
        case .integer: return Int(text).map(ConfigValue.integer)
        case .number: return Double(text).map(ConfigValue.number)
        case .commaList: return .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        case .pathList: return .list([text])
        default: return .string(text)
        }
    }
}
