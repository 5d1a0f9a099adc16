import AxialTestSupport
import ArgumentParser
import AxialPipeline
import Foundation

/// `axial-dev pretrain-probe --out <dir>` — the LeCL evidence experiment (Tools/experiments/lecl_probe.sh).
struct PretrainProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain-probe", abstract: "Linear-probe comparison: initialisation vs MoCo v3 vs LeCL on a synthetic cohort.")
    @Option(help: "Working folder (cohort + runs).") var out: String
    @Option var arch = "vit_test"
    @Option var steps = 1000
    @Option var batch = 32
    @Option var size = 32
    @Option var patients = 30
    @Option(name: .customLong("slices-per-patient")) var slicesPerPatient = 10
    @Option(name: .customLong("weight-w")) var weightW: Float = 1.0
    @Option var lr: Double = 0.05
    @Option var temperature: Float = 0.2
    @Option var seed: UInt64 = 0

    func run() throws {
        do {
            let scores = try PretrainProbe.experiment(folder: URL(fileURLWithPath: out), arch: arch, steps: steps, batch: batch, size: size,
                                                      patients: patients, slicesPerPatient: slicesPerPatient, weight: weightW, lr: lr,
                                                      temperature: temperature, seed: seed)
            print("probe summary (\(arch), \(steps) steps, batch \(batch), \(size) px, seed \(seed)):")
            for s in scores { print("  " + s.line) }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
