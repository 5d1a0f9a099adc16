import AxialTestSupport
import ArgumentParser
import AxialPipeline

/// `axial-dev bench <workload> [args…]` prints one JSON line (see `Bench`); used by Tools/bench/run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark workload in-process and print JSON (Tools/bench/run).")

    @Argument(help: "Workload name.")
    var workload: String

    @Argument(parsing: .captureForPassthrough, help: "Workload arguments.")
    var arguments: [String] = []

    @Option(help: "Timed runs after one warm-up.")
    var iterations = 3

    func run() throws {
        do {
            print(try Bench.run(workload, arguments: arguments, iterations: iterations))
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
