import ArgumentParser
import AxialPipeline
import Foundation

/// `axial demo`: generate a synthetic cohort and run the pipeline on it.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a small synthetic CT cohort (DICOM + labels), ingest it and print a summary.")

    @Option(help: "Folder for the cohort and outputs (default: a new folder under the system temp folder, kept).")
    var out: String?

    @Option(help: "Number of synthetic patients.")
    var patients = 6

    @Option(help: "Random seed of the cohort.")
    var seed: UInt64 = 7

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let folder = out.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("axial-demo-\(getpid())")
        do {
            let result = try AxialPipeline.Demo.run(.init(folder: folder, patients: patients, seed: seed,
                                                          progress: quiet ? .quiet : nil))
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
