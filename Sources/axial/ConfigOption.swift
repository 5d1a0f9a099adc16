import ArgumentParser
import AxialPipeline
import Foundation

/// `--config <file>` of every stage command (ingest, pretrain, extract, crossval, deploy, statistics,
/// report, and anomaly / classify / segment train|test|predict — sections `anomaly-train` …).
/// The values are merged before parsing — `Axial.main` runs `ConfigArguments.merge`, which turns the
/// command's section into arguments placed before the user's (flag > config > default) — so a
/// command only declares the option here, for parsing and `--help`.
struct ConfigFileOption: ParsableArguments {
    @Option(name: .customLong("config"),
            help: ArgumentHelp("YAML config (`axial init` writes one): its section named after this command sets the flags not given on the command line.",
                               valueName: "file"))
    var path: String?
}

/// `axial init [--out axial.yaml] [--force]`: a fully commented config template.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented config template: every section and key with its default and a one-line explanation.")

    @Option(help: "Config file to write.") var out = "axial.yaml"
    @Flag(help: "Overwrite an existing file.") var force = false

    func run() throws {
        do {
            try AxialConfig.writeTemplate(CommandSchema.schema, to: URL(fileURLWithPath: out), force: force)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print("wrote \(out) (sections: \(CommandSchema.schema.sectionNames.joined(separator: ", "))); set the required keys, then run e.g. `axial ingest --config \(out)`")
    }
}
