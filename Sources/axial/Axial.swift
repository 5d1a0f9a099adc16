import ArgumentParser
import AxialCore
import AxialPipeline
import Foundation

@main
struct Axial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "axial",
        abstract: "Axial: CT studies to windowed slices, slice embeddings, HDF5 features and attention heads.",
        subcommands: [InitCommand.self, Inspect.self, Ingest.self, ExtractCommand.self, CrossValCommand.self, DeployCommand.self, Statistics.self, ReportCommand.self, Demo.self, PretrainCommand.self, AnomalyCommand.self, ClassifyCommand.self, SegmentCommand.self])

    /// As `AsyncParsableCommand.main`, after merging a stage command's `--config` section into the
    /// arguments (`ConfigArguments.merge`: flag > config > default).
    static func main() async {
        // Line-buffered stdout: on a pipe or in CI each line is written when it ends, in order with
        // standard error (the default full buffering held ~4 KB and printed out of order).
        makeStandardOutputLineBuffered()
        MemoryTuning.retainFreedMemory()
        do {
            let arguments = try ConfigArguments.merge(schema: CommandSchema.schema, Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}

