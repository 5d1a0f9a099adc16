import ArgumentParser
import AxialPipeline
import Foundation

/// `axial demo`: generate a synthetic cohort and run the whole pipeline on it.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a synthetic CT cohort (DICOM + labels) and run ingest → pretrain → extract → crossval → statistics on it.")

    @Option(help: "Folder for the cohort and outputs (default: a new folder under the system temp folder, kept).")
    var out: String?

    @Option(help: "Number of synthetic patients (half with lesions; at least 12 for 3 crossval folds).")
    var patients = AxialPipeline.Demo.Options(folder: URL(fileURLWithPath: "/")).patients

    @Option(help: "Random seed of the cohort.")
    var seed: UInt64 = 7

    @Option(help: "Steps of the LeCL pretraining stage.")
    var pretrainSteps = AxialPipeline.Demo.Options(folder: URL(fileURLWithPath: "/")).pretrainSteps

    @Option(help: "Training epochs per crossval fold.")
    var epochs = AxialPipeline.Demo.Options(folder: URL(fileURLWithPath: "/")).crossvalEpochs

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let folder = out.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("axial-demo-\(getpid())")
        do {
            var options = AxialPipeline.Demo.Options(folder: folder, patients: patients, seed: seed, progress: quiet ? .quiet : nil)
            options.pretrainSteps = pretrainSteps; options.crossvalEpochs = epochs
            let result = try AxialPipeline.Demo.run(options)
            print(result.text)
            if result.ingest.seriesFailed > 0 { throw ExitCode(1) }
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
