import ArgumentParser
import AxialImaging
import AxialPipeline
import Foundation
import AxialTestSupport
import Testing
@testable import axial

/// The stage commands, by config section.
private let commands: [String: any ParsableCommand.Type] = [
    "ingest": Ingest.self, "pretrain": PretrainCommand.self, "extract": ExtractCommand.self,
    "crossval": CrossValCommand.self, "deploy": DeployCommand.self, "statistics": Statistics.self, "report": ReportCommand.self,
    "anomaly-train": AnomalyTrain.self, "anomaly-test": AnomalyTest.self, "anomaly-predict": AnomalyPredict.self,
    "classify-train": ClassifyCommand.Train.self, "classify-test": ClassifyCommand.Test.self, "classify-predict": ClassifyCommand.Predict.self,
    "segment-train": SegmentTrain.self, "segment-test": SegmentTest.self, "segment-predict": SegmentPredict.self,
]

private func scratch(_ tag: String) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("axial-cli-config-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// One argument of a command as swift-argument-parser describes it (`--experimental-dump-help`).
private struct FlagInfo {
    var name: String
    var kind: String            // positional, option, flag
    var optional: Bool
    var defaultValue: String?
}

private func flags(of command: any ParsableCommand.Type) throws -> [FlagInfo] {
    let json = try JSONSerialization.jsonObject(with: Data(command._dumpHelp().utf8)) as? [String: Any]
    let info = try #require(json?["command"] as? [String: Any])
    let arguments = try #require(info["arguments"] as? [[String: Any]])
    var positionals = CommandSchema.swiftTypes(of: command).positionals.makeIterator()
    return arguments.compactMap { a in
        guard (a["shouldDisplay"] as? Bool) ?? true else { return nil }
        let names = (a["names"] as? [[String: Any]]) ?? []
        let long = names.first { ($0["kind"] as? String) == "long" }?["name"] as? String
        let kind = a["kind"] as? String ?? "?"
        guard let name = long ?? (kind == "positional" ? positionals.next() : nil) else { return nil }
        if ["help", "config", "version"].contains(name) { return nil }
        return FlagInfo(name: name, kind: kind, optional: a["isOptional"] as? Bool ?? false, defaultValue: a["defaultValue"] as? String)
    }
}

@Suite struct ConfigCLITests {
    /// The schema derived from each stage command's declarations holds exactly its visible flags,
    /// with the same kind, required-ness and default, and the value types the loader checks.
    @Test(arguments: CommandSchema.schema.sectionNames)
    func schemaMatchesTheCommandsFlags(section: String) throws {
        let command = try #require(commands[section], "no command for section \(section)")
        let spec = try #require(CommandSchema.schema.section(named: section))
        let cli = try flags(of: command)
        #expect(cli.map(\.name) == spec.keys.map(\.name))
        for f in cli {
            guard let key = spec.key(f.name) else { continue }
            #expect((f.kind == "flag") == (key.type == .boolean), "\(section).\(f.name): flag vs boolean")
            #expect((f.kind == "positional") == key.positional, "\(section).\(f.name): positional")
            #expect(!f.optional == key.required, "\(section).\(f.name): required")
        }
    }

    /// The value types come from the Swift types and the value names of the declarations.
    @Test func derivedValueTypes() throws {
        let s = CommandSchema.schema
        func key(_ section: String, _ name: String) throws -> ConfigKey { try #require(s.section(named: section)?.key(name), "\(section).\(name)") }
        #expect(try key("crossval", "lr").type == .number && key("crossval", "lr").defaultValue == .number(1e-3))
        #expect(try key("crossval", "folds").type == .integer && key("crossval", "folds").defaultValue == .integer(5))
        #expect(try key("crossval", "seed").type == .integer)
        #expect(try key("crossval", "hidden").type == .integer && key("crossval", "hidden").defaultValue == nil)
        #expect(try key("crossval", "features").type == .path && key("crossval", "features").required)
        #expect(try key("crossval", "task").type == .nameOrPath)
        #expect(try key("crossval", "windows").type == .commaList)
        #expect(try key("crossval", "head").type == .choice(["abmil", "abmil-gated", "pma", "pspg"]))
        #expect(try key("crossval", "prompt-template").type == .string)
        #expect(try key("deploy", "models").type == .pathList)
        #expect(try key("ingest", "input").positional && key("ingest", "input").type == .path)
        #expect(try key("ingest", "windows").defaultValue == .list(["abdomen"]))
        #expect(try key("ingest", "channels").type == .choice(["separate", "stacked"]))
        #expect(try key("extract", "dtype").type == .choice(["float32", "float16"]) && key("extract", "dtype").defaultValue == .string("float32"))
        #expect(try key("extract", "random-init").type == .boolean && key("extract", "random-init").defaultValue == .boolean(false))
        #expect(try key("statistics", "threshold").type == .number && key("statistics", "threshold").defaultValue == .number(0.5))
        #expect(try key("pretrain", "clip-grad").type == .number && key("pretrain", "clip-grad").defaultValue == nil)
        #expect(try key("statistics", "out").help.hasPrefix("Output folder"))
    }

    /// Nested commands (`axial anomaly train`) have sections named `anomaly-train`; their keys,
    /// types, paths and precedence work as the top-level ones, option groups included.
    @Test func nestedCommandSections() throws {
        let s = CommandSchema.schema
        for name in ["anomaly-train", "anomaly-test", "anomaly-predict", "classify-train", "classify-test", "classify-predict",
                     "segment-train", "segment-test", "segment-predict"] {
            #expect(s.section(named: name) != nil, "no section \(name)")
        }
        func key(_ section: String, _ name: String) throws -> ConfigKey { try #require(s.section(named: section)?.key(name), "\(section).\(name)") }
        #expect(try key("anomaly-train", "adapter-lr").type == .number && key("anomaly-train", "adapter-lr").defaultValue == .number(1e-4))
        #expect(try key("anomaly-train", "shots").type == .integer)
        #expect(try key("anomaly-train", "data").type == .path && key("anomaly-test", "run").type == .path)
        #expect(try key("classify-train", "min-lr").type == .number && key("classify-train", "warmup-epochs").type == .integer)
        #expect(try key("segment-train", "model").type == .string && key("segment-train", "adapter-dim").type == .integer)  // from the option group
        #expect(try key("segment-train", "weights").type == .path && key("segment-train", "seed").type == .integer)

        let dir = scratch("nested")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("axial.yaml")
        try """
            anomaly-train:
              data: data/Brain_AD
              encoder: clip_test
              random-init: true
              shots: 4
              adapter-lr: 0.001
              out: runs/brain
            segment-train:
              model: clipseg_test
              random-init: true
              adapters: dense
              prompts: train.json
              images: imgs
              masks: masks
              out: seg
              epochs: 3
            classify-predict:
              model: run/model.safetensors
              data: new.jsonl
              out: pred
            """.write(to: cfg, atomically: true, encoding: .utf8)
        let d = dir.standardizedFileURL.path
        let merge = { (args: [String]) in try Axial.parseAsRoot(try ConfigArguments.merge(schema: s, args)) }

        let a = try #require(try merge(["anomaly", "train", "--config", cfg.path, "--shots", "2"]) as? AnomalyTrain)
        #expect(a.shots == 2)                                   // flag
        #expect(a.adapterLR == 1e-3 && a.randomInit)            // config
        #expect(a.data == "\(d)/data/Brain_AD" && a.out == "\(d)/runs/brain")
        #expect(a.promptLR == 1e-3 && a.epochs == 50)           // defaults

        let g = try #require(try merge(["segment", "train", "--config", cfg.path, "--epochs", "5"]) as? SegmentTrain)
        #expect(g.epochs == 5 && g.modelOptions.model == "clipseg_test" && g.modelOptions.adapters == "dense" && g.modelOptions.randomInit)
        #expect(g.prompts == "\(d)/train.json" && g.images == "\(d)/imgs")

        let p = try #require(try merge(["classify", "predict", "--config", cfg.path]) as? ClassifyCommand.Predict)
        #expect(p.model == "\(d)/run/model.safetensors" && p.out == "\(d)/pred")

        // A section of another command is not used, and a missing required key is named with its section.
        do {
            _ = try merge(["anomaly", "test", "--config", cfg.path])
            Issue.record("anomaly test without --data accepted")
        } catch {
            #expect("\(error)".contains("missing --data") && "\(error)".contains("'anomaly-test' section"), "\(error)")
        }
        // Unknown keys name the command as typed.
        try "anomaly-train:\n  adapter_lr: 0.1\n".write(to: cfg, atomically: true, encoding: .utf8)
        do {
            _ = try AxialConfig.load(cfg, schema: s)
            Issue.record("adapter_lr accepted")
        } catch {
            #expect("\(error)".contains("did you mean 'adapter-lr'") && "\(error)".contains("`axial anomaly train`"), "\(error)")
        }
    }

    /// flag > config > default, through swift-argument-parser.
    @Test func precedenceThroughTheParser() throws {
        let dir = scratch("precedence")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = dir.appendingPathComponent("axial.yaml")
        try """
            statistics:
              preds: runs/cv
              out: stats
              threshold: 0.3
              bootstrap: 50
              no-attention-plots: true
            deploy:
              models: [runs/a, runs/b]
              features: feats
              out: scored
            crossval:
              features: feats
              table: labels.csv
              task: stage
              head: pma
              out: cv
              lr: 0.002
              windows: abdomen,lung
              pair-loss: -0.5
            """.write(to: cfg, atomically: true, encoding: .utf8)
        let d = dir.standardizedFileURL.path

        let parsed = try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["statistics", "--config", cfg.path, "--bootstrap", "7", "--out", "mine"]))
        let s = try #require(parsed as? Statistics)
        #expect(s.bootstrap == 7)                      // flag
        #expect(s.out == "mine")                       // flag (relative to the working folder, as typed)
        #expect(s.threshold == 0.3)                    // config
        #expect(s.preds == "\(d)/runs/cv")             // config, resolved against the config's folder
        #expect(s.noAttentionPlots)                    // config boolean
        #expect(s.seed == 0 && !s.stratifiedBootstrap) // defaults
        #expect(s.configFile.path == cfg.path)

        let deploy = try #require(try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["deploy", "--config", cfg.path])) as? DeployCommand)
        #expect(deploy.models == ["\(d)/runs/a", "\(d)/runs/b"])
        let deploy2 = try #require(try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["deploy", "--config", cfg.path, "--models", "m1", "m2"])) as? DeployCommand)
        #expect(deploy2.models == ["m1", "m2"])

        // Negative values survive the merge (`--pair-loss=-0.5`) and reach validate(), which refuses a negative loss weight (issue 17).
        do {
            _ = try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["crossval", "--config", cfg.path, "--epochs", "2"]))
            Issue.record("--pair-loss -0.5 accepted")
        } catch {
            #expect(Axial.message(for: error).contains("--pair-loss must be a finite number ≥ 0, got -0.5"), "\(Axial.message(for: error))")
        }
        let cv = try #require(try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["crossval", "--config", cfg.path, "--epochs", "2", "--pair-loss", "0.25"])) as? CrossValCommand)
        #expect(cv.head == .pma && cv.lr == 0.002 && cv.epochs == 2 && cv.folds == 5 && cv.windows == "abdomen,lung")
        #expect(cv.pairLoss == 0.25)                   // flag > config
        #expect(cv.task == "stage" && cv.table == "\(d)/labels.csv")
    }

    /// `axial init` writes the template and refuses to overwrite it without --force.
    @Test func initCommand() throws {
        let dir = scratch("init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("axial.yaml").path
        var first = try Axial.parseAsRoot(["init", "--out", out])
        try first.run()
        #expect(try String(contentsOfFile: out, encoding: .utf8) == AxialConfig.template(CommandSchema.schema))
        var again = try Axial.parseAsRoot(["init", "--out", out])
        #expect(throws: ExitCode.self) { try again.run() }
        var forced = try Axial.parseAsRoot(["init", "--out", out, "--force"])
        try forced.run()
    }

    /// `axial ingest --config` end to end: a SyntheticCT DICOM series, settings from the template
    /// as `axial init` writes it with the required keys filled in, one flag overriding the config.
    @Test func ingestFromConfigEndToEnd() throws {
        let dir = scratch("ingest")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try SyntheticCT(patientID: "P1", rows: 16, columns: 16, slices: 3).write(to: dir.appendingPathComponent("data/dicom/P1"))
        let cfg = dir.appendingPathComponent("data/axial.yaml")
        // The ingest section of the template with its required keys filled in and two values changed.
        let template = AxialConfig.template(CommandSchema.schema)
        let start = try #require(template.range(of: "\ningest:\n"))
        let end = try #require(template.range(of: "\n\n", range: start.upperBound..<template.endIndex))
        let block = start.upperBound..<template.index(after: end.lowerBound)   // through the last key's newline
        var ingest = String(template[block])
        for (old, new) in [("  input: null", "  input: dicom"), ("  out: null", "  out: slices"),
                           ("  windows: [\"abdomen\"]", "  windows: [abdomen, lung]"), ("  quiet: false", "  quiet: true")] {
            #expect(ingest.contains(old + "\n"))
            ingest = ingest.replacingOccurrences(of: old + "\n", with: new + "\n")
        }
        let text = template.replacingCharacters(in: block, with: ingest)
        try text.write(to: cfg, atomically: true, encoding: .utf8)

        var command = try Axial.parseAsRoot(try ConfigArguments.merge(schema: CommandSchema.schema, ["ingest", "--config", cfg.path, "--size", "8"]))
        try command.run()
        let manifest = try String(contentsOf: dir.appendingPathComponent("data/slices/manifest.csv"), encoding: .utf8)
        let rows = manifest.split(separator: "\n")
        #expect(rows.count == 1 + 3 * 2)
        #expect(Set(rows.dropFirst().map { $0.split(separator: ",")[5] }) == ["abdomen", "lung"])
        let png = try PNG.read(dir.appendingPathComponent("data/slices").appendingPathComponent(String(rows[1].split(separator: ",")[6])))
        #expect(png.width == 8 && png.height == 8)
    }
}
