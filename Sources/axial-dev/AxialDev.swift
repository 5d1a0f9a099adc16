import AxialTestSupport
import AxialCore
import AxialPipeline
import ArgumentParser

/// `axial-dev`: development commands — benchmark workloads (`Tools/bench/run`), encoder checks
/// against reference outputs (`Tools/check_encoders.sh`) and experiments (`Tools/experiments/`).
/// Not part of the product `axial`, which has only user commands.
@main
struct AxialDev: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "axial-dev",
        abstract: "Axial development commands: benchmarks, encoder checks, experiments.",
        subcommands: [BenchCommand.self, CheckEncoderCommand.self, PretrainProbeCommand.self, PsPGZeroShotCommand.self])

    /// As `ParsableCommand.main`, with glibc malloc keeping freed blocks (`MemoryTuning`), as `axial`.
    static func main() {
        MemoryTuning.retainFreedMemory()
        main(nil)
    }
}
