import AxialImaging
import Foundation
import AxialTestSupport
import Testing
@testable import axial
import Yams
@testable import AxialPipeline

/// A fresh folder for one config test.
private func configScratch(_ tag: String) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("axial-config-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func parse(_ yaml: String, base: String = "/data/project") throws -> AxialConfig {
    try AxialConfig.parse(yaml, path: "\(base)/axial.yaml", baseDirectory: URL(fileURLWithPath: base), schema: CommandSchema.schema)
}

/// The error `body` throws (nil when it throws none or another type).
private func configError(_ body: () throws -> Any) -> ConfigError? {
    do { _ = try body(); return nil } catch let e as ConfigError { return e } catch { return nil }
}

@Suite struct ConfigTests {
    // MARK: Unknown names

    @Test func unknownKeyNamesFileSectionKeyLineAndSuggestion() throws {
        let e = configError { try parse("crossval:\n  epochs: 3\n  max_bag: 256\n") }
        #expect(e == .unknownKey(path: "/data/project/axial.yaml", section: "crossval", key: "max_bag", suggestion: "max-bag", line: 3))
        let text = try #require(e).description
        #expect(text.contains("/data/project/axial.yaml:3"))
        #expect(text.contains("'max_bag'") && text.contains("'crossval'") && text.contains("did you mean 'max-bag'?"))

        // Typos by edit distance, camelCase and snake_case spellings of kebab-case keys.
        #expect(configError { try parse("statistics:\n  treshold: 0.3\n") }
                == .unknownKey(path: "/data/project/axial.yaml", section: "statistics", key: "treshold", suggestion: "threshold", line: 2))
        #expect(configError { try parse("pretrain:\n  weightDecay: 0.05\n") }
                == .unknownKey(path: "/data/project/axial.yaml", section: "pretrain", key: "weightDecay", suggestion: "weight-decay", line: 2))
        // Nothing close: no suggestion.
        #expect(configError { try parse("ingest:\n  colour: red\n") }
                == .unknownKey(path: "/data/project/axial.yaml", section: "ingest", key: "colour", suggestion: nil, line: 2))
    }

    @Test func unknownSectionAndDuplicates() throws {
        let e = configError { try parse("statistic:\n  out: x\n") }
        #expect(e == .unknownSection(path: "/data/project/axial.yaml", section: "statistic", suggestion: "statistics", line: 1, known: CommandSchema.schema.sectionNames))
        #expect(try #require(e).description.contains("sections: ingest, pretrain, extract, crossval, deploy, statistics"))
        // Yams rejects repeated keys.
        if case .syntax(_, let reason)? = configError({ try parse("ingest:\n  out: a\n  out: b\n") }) {
            #expect(reason.contains("duplicated key") && reason.contains("'out'"))
        } else { Issue.record("expected a syntax error for a repeated key") }
        #expect(configError { try parse("- ingest\n") } == .notAMapping(path: "/data/project/axial.yaml", section: nil, line: 1, known: CommandSchema.schema.sectionNames))
        #expect(configError { try parse("ingest: [a, b]\n") } == .notAMapping(path: "/data/project/axial.yaml", section: "ingest", line: 1, known: CommandSchema.schema.sectionNames))
        if case .syntax? = configError({ try parse("ingest:\n  out: [unclosed\n") }) {} else { Issue.record("expected a YAML syntax error") }
    }

    @Test func editDistance() {
        #expect(AxialConfig.editDistance("kitten", "sitting") == 3)
        #expect(AxialConfig.editDistance("", "abc") == 3)
        #expect(AxialConfig.editDistance("epochs", "epochs") == 0)
        #expect(AxialConfig.suggestion(for: "epohcs", among: ["epochs", "lr"]) == "epochs")
        #expect(AxialConfig.suggestion(for: "zzzzzz", among: ["epochs", "lr"]) == nil)
    }

    // MARK: Types

    @Test func typeErrorsNameKeyAndExpectedType() throws {
        let p = "/data/project/axial.yaml"
        #expect(configError { try parse("crossval:\n  epochs: ten\n") }
                == .type(path: p, section: "crossval", key: "epochs", expected: "an integer", got: "'ten'", line: 2))
        #expect(configError { try parse("crossval:\n  epochs: 2.5\n") }
                == .type(path: p, section: "crossval", key: "epochs", expected: "an integer", got: "a number (2.5)", line: 2))
        #expect(configError { try parse("crossval:\n  lr: fast\n") }
                == .type(path: p, section: "crossval", key: "lr", expected: "a number", got: "'fast'", line: 2))
        #expect(configError { try parse("ingest:\n  quiet: 1\n") }
                == .type(path: p, section: "ingest", key: "quiet", expected: "true or false", got: "a number (1)", line: 2))
        #expect(configError { try parse("ingest:\n  out: yes\n") }
                == .type(path: p, section: "ingest", key: "out", expected: "a path", got: "a boolean (yes)", line: 2))
        #expect(configError { try parse("ingest:\n  windows: {abdomen: 1}\n") }
                == .type(path: p, section: "ingest", key: "windows", expected: "a list or a comma-separated string", got: "a mapping", line: 2))
        let head = configError { try parse("crossval:\n  head: abmill\n") }
        #expect(head == .type(path: p, section: "crossval", key: "head", expected: "one of abmil, abmil-gated, pma, pspg",
                              got: "'abmill' (did you mean 'abmil'?)", line: 2))
        #expect(try #require(head).description == "\(p):2: crossval.head: expected one of abmil, abmil-gated, pma, pspg, got 'abmill' (did you mean 'abmil'?)")
    }

    @Test func valuesAreTyped() throws {
        let c = try parse("""
            crossval:
              epochs: 12
              lr: 1e-4
              weight-decay: "0.01"
              head: pspg
              windows: [abdomen, lung]
              hidden: null
              prompt-template: "a CT of {name}"
            ingest:
              windows: abdomen, lung ,bone
              quiet: true
              shard: 1/4
            statistics:
            """)
        #expect(c["crossval", "epochs"] == .integer(12))
        #expect(c["crossval", "lr"] == .number(1e-4))
        #expect(c["crossval", "weight-decay"] == .number(0.01))   // quoted numbers are accepted
        #expect(c["crossval", "head"] == .string("pspg"))
        #expect(c["crossval", "windows"] == .list(["abdomen", "lung"]))
        #expect(c["crossval", "hidden"] == nil)                    // null = not set
        #expect(c["crossval", "prompt-template"] == .string("a CT of {name}"))
        #expect(c["ingest", "windows"] == .list(["abdomen", "lung", "bone"]))
        #expect(c["ingest", "quiet"] == .boolean(true))
        #expect(c["ingest", "shard"] == .string("1/4"))
        #expect(c.section("statistics").isEmpty && c.section("deploy").isEmpty)
        #expect(try parse("").sections.isEmpty)
    }

    // MARK: Paths

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let c = try parse("""
            ingest:
              input: ../dicom
              out: ./slices
              window-file: /etc/axial/windows.yaml
            crossval:
              task: stage
              table: tables/labels.csv
            statistics:
              task: tasks/stage.yaml
            deploy:
              models: [runs/cv1, /models/m.safetensors]
              features: feats
            """, base: "/data/project/configs")
        #expect(c["ingest", "input"] == .string("/data/project/dicom"))
        #expect(c["ingest", "out"] == .string("/data/project/configs/slices"))
        #expect(c["ingest", "window-file"] == .string("/etc/axial/windows.yaml"))
        #expect(c["crossval", "task"] == .string("stage"))   // a task name stays a name
        #expect(c["crossval", "table"] == .string("/data/project/configs/tables/labels.csv"))
        #expect(c["statistics", "task"] == .string("/data/project/configs/tasks/stage.yaml"))
        #expect(c["deploy", "models"] == .list(["/data/project/configs/runs/cv1", "/models/m.safetensors"]))
        #expect(c["deploy", "features"] == .string("/data/project/configs/feats"))
    }

    // MARK: Merge (flag > config > default)

    @Test func mergePrecedence() throws {
        let dir = configScratch("merge")
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            crossval:
              features: feats
              table: labels.csv
              task: stage
              head: abmil
              out: runs/cv
              epochs: 10
              lr: 0.001
              windows: [abdomen, lung]
            statistics:
              preds: runs/cv
              out: stats
              stratified-bootstrap: true
            ingest:
              input: dicom
              out: slices
            deploy:
              models: [runs/a, runs/b]
              features: feats
              out: scored
            """.write(to: dir.appendingPathComponent("axial.yaml"), atomically: true, encoding: .utf8)
        let cfg = dir.appendingPathComponent("axial.yaml").path
        let d = dir.standardizedFileURL.path

        // Flag beats config (`--epochs 3` given, config's 10 not passed); config beats default (lr);
        // keys in neither (folds) are left to the command's default.
        let merged = try ConfigArguments.merge(schema: CommandSchema.schema, ["crossval", "--config", cfg, "--epochs", "3", "--head=pma"])
        #expect(merged == ["crossval", "--features=\(d)/feats", "--table=\(d)/labels.csv", "--task=stage", "--out=\(d)/runs/cv",
                           "--lr=0.001", "--windows=abdomen,lung", "--config", cfg, "--epochs", "3", "--head=pma"])

        // Booleans: true → the bare flag.
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["statistics", "--config=\(cfg)", "--bootstrap", "0"])
                == ["statistics", "--preds=\(d)/runs/cv", "--out=\(d)/stats", "--stratified-bootstrap", "--config=\(cfg)", "--bootstrap", "0"])

        // Positional: from the config unless the user gives one.
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["ingest", "--config", cfg]) == ["ingest", "\(d)/dicom", "--out=\(d)/slices", "--config", cfg])
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["ingest", "--size", "64", "other", "--config", cfg])
                == ["ingest", "--out=\(d)/slices", "--size", "64", "other", "--config", cfg])

        // Lists of paths: one argument each; the user's list replaces the config's.
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["deploy", "--config", cfg])
                == ["deploy", "--models=\(d)/runs/a", "--models=\(d)/runs/b", "--features=\(d)/feats", "--out=\(d)/scored", "--config", cfg])
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["deploy", "--models", "x", "y", "--config", cfg])
                == ["deploy", "--features=\(d)/feats", "--out=\(d)/scored", "--models", "x", "y", "--config", cfg])

        // Without --config, for help, and for commands with no section: unchanged.
        for args in [["crossval", "--epochs", "3"], ["crossval", "--config", cfg, "--help"], ["demo", "--config", cfg], []] {
            #expect(try ConfigArguments.merge(schema: CommandSchema.schema, args) == args)
        }
    }

    @Test func requiredInNeitherPlaceNamesFlagAndKey() throws {
        let dir = configScratch("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("axial.yaml")
        try "statistics:\n  preds: runs\ningest:\n  out: slices\n".write(to: url, atomically: true, encoding: .utf8)
        let path = url.standardizedFileURL.path
        let e = configError { try ConfigArguments.merge(schema: CommandSchema.schema, ["statistics", "--config", url.path]) }
        #expect(e == .missing(path: path, section: "statistics", key: "out", flag: "--out"))
        #expect(try #require(e).description == "missing --out: give it on the command line or set 'out' in the 'statistics' section of \(path)")
        #expect(try ConfigArguments.merge(schema: CommandSchema.schema, ["statistics", "--config", url.path, "--out", "o"]).contains("--out"))
        #expect(configError { try ConfigArguments.merge(schema: CommandSchema.schema, ["ingest", "--config", url.path]) }
                == .missing(path: path, section: "ingest", key: "input", flag: "<input>"))
        // A missing config file is an error naming it.
        if case .unreadable(let p, _)? = configError({ try ConfigArguments.merge(schema: CommandSchema.schema, ["ingest", "--config", dir.appendingPathComponent("nope.yaml").path]) }) {
            #expect(p.hasSuffix("nope.yaml"))
        } else { Issue.record("expected .unreadable") }
    }

    // MARK: Template

    @Test func templateRoundTrip() throws {
        let text = AxialConfig.template(CommandSchema.schema)
        let config = try AxialConfig.parse(text, path: "axial.yaml", baseDirectory: URL(fileURLWithPath: "/p"), schema: CommandSchema.schema)
        // Every key in the template is accepted (parse above) and every accepted key is in it.
        let raw = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(Set(raw.keys) == Set(CommandSchema.schema.sectionNames))
        for section in CommandSchema.schema.sections {
            let keys = try #require(raw[section.name] as? [String: Any], "section \(section.name)")
            #expect(Set(keys.keys) == Set(section.keys.map(\.name)), "section \(section.name)")
            for key in section.keys {
                // Values read back as the defaults (null where there is none).
                #expect(config[section.name, key.name] == key.defaultValue, "\(section.name).\(key.name)")
                // Each key sits under its one-line explanation.
                #expect(text.contains("  # \(key.help) (\(key.type.name); "), "\(section.name).\(key.name)")
            }
        }
        #expect(text.contains("  max-bag: 512\n") && text.contains("  lr: 0.0001\n") && text.contains("  input: null\n"))
    }

    @Test func writeTemplateRefusesToOverwrite() throws {
        let dir = configScratch("init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("sub/axial.yaml")
        try AxialConfig.writeTemplate(CommandSchema.schema, to: url, force: false)
        #expect(try String(contentsOf: url, encoding: .utf8) == AxialConfig.template(CommandSchema.schema))
        try "mine\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(configError { try AxialConfig.writeTemplate(CommandSchema.schema, to: url, force: false) } == .exists(path: url.path))
        #expect(try String(contentsOf: url, encoding: .utf8) == "mine\n")
        try AxialConfig.writeTemplate(CommandSchema.schema, to: url, force: true)
        #expect(try String(contentsOf: url, encoding: .utf8) == AxialConfig.template(CommandSchema.schema))
        #expect(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path) == ["axial.yaml"])
    }

    // MARK: End to end (library level; the CLI one is in Tests/axialTests)

    /// Ingest of a SyntheticCT DICOM series with every setting from a config next to the data.
    @Test func ingestFromConfig() throws {
        let dir = configScratch("e2e")
        defer { try? FileManager.default.removeItem(at: dir) }
        let phantom = SyntheticCT(patientID: "P7", rows: 16, columns: 16, slices: 4)
        _ = try phantom.write(to: dir.appendingPathComponent("dicom/P7"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("configs"), withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("configs/axial.yaml")
        try "ingest:\n  input: ../dicom\n  out: ../slices\n  windows: [abdomen, lung]\n  size: 8\n  quiet: true\n"
            .write(to: url, atomically: true, encoding: .utf8)
        let section = try AxialConfig.load(url, schema: CommandSchema.schema).section("ingest")
        guard case .string(let input)? = section["input"], case .string(let out)? = section["out"],
              case .list(let windows)? = section["windows"], case .integer(let size)? = section["size"] else {
            Issue.record("unexpected values \(section)"); return
        }
        let summary = try Ingest.run(IngestOptions(input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: out),
                                                   windows: try CTWindow.parseList(windows.joined(separator: ",")), size: size,
                                                   progress: .quiet))
        #expect(summary.seriesFound == 1)
        let manifest = try String(contentsOf: dir.appendingPathComponent("slices/manifest.csv"), encoding: .utf8)
        #expect(manifest.split(separator: "\n").count == 1 + 4 * 2)
        let png = try PNG.read(dir.appendingPathComponent("slices").appendingPathComponent(
            String(manifest.split(separator: "\n")[1].split(separator: ",").last!)))
        #expect(png.width == 8 && png.height == 8)
    }
}
