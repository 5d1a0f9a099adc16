import ArgumentParser
import AxialPipeline

@main
struct Axial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "axial",
        abstract: "Axial: CT studies to windowed slices, slice embeddings, HDF5 features and attention heads.",
        subcommands: [Inspect.self, Ingest.self, ExtractCommand.self, CrossValCommand.self, DeployCommand.self, Statistics.self, Demo.self, BenchCommand.self, PretrainCommand.self, PretrainProbeCommand.self])
}
