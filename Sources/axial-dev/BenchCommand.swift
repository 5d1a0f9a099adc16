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

    @Option(help: "Worker threads of the workload (default: every core); e.g. 1 to compare with a peer's best thread count on a loaded machine.")
    var threads: Int?

    func run() throws {
        if let threads { Extract.setWorkerThreads(threads) }
        do {
            print(try Bench.run(workload, arguments: arguments, iterations: iterations))
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
