import ArgumentParser
import AxialModels
import AxialPipeline
import AxialStore
import Foundation

/// `axial extract --encoder <name> --weights <file> --input <ingest-dir> --out <dir>`.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Embed the ingest output's slices with an encoder into one <patient_id>.h5 per patient.",
        discussion: """
            Reads <input>/manifest.csv and its PNG slices, preprocesses them as the encoder's source \
            library does, embeds them with no tape and writes <out>/<patient_id>.h5 (feats, slice_index, \
            z_mm, window, provenance attributes incl. the weights' sha256). Complete files are skipped; \
            failed patients are logged to <out>/extract_errors.csv. Encoders: \(EncoderRegistry.names.joined(separator: ", ")).
            """)

    @OptionGroup var configFile: ConfigFileOption

    @Option(help: "Encoder name (see the list above).")
    var encoder: String

    @Option(help: ".safetensors weights under the source library's names (timm / MoCo v3 after Tools/convert_weights.py).")
    var weights: String?

    @Flag(name: .customLong("random-init"), help: "Use random initial weights (tests, demo) instead of --weights.")
    var randomInit = false

    @Option(help: "Seed of --random-init.")
    var seed: UInt64 = 0

    @Option(help: "Ingest output folder (with manifest.csv).")
    var input: String

    @Option(help: "Output folder for <patient_id>.h5 files.")
    var out: String

    @Option(help: "Slices per forward pass.")
    var batch = 32

    @Option(help: "float32 or float16 for feats.")
    var dtype = "float32"

    @Option(help: "Process only shard i of n (by patient), e.g. 0/4.")
    var shard = "0/1"

    @Option(help: "Comma-separated window labels of the manifest to embed (default: all).")
    var windows: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(help: "No progress output.")
    var quiet = false

    func validate() throws {
        if weights == nil && !randomInit { throw ValidationError("give --weights <file.safetensors> or --random-init") }
        if weights != nil && randomInit { throw ValidationError("--weights and --random-init exclude each other") }
        if FeaturePrecision(rawValue: dtype) == nil { throw ValidationError("--dtype must be float32 or float16, got '\(dtype)'") }
    }

    func run() throws {
        do {
            if let threads { Extract.setWorkerThreads(threads) }
            let options = ExtractOptions(
                input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: out), encoder: encoder,
                weights: weights.map { URL(fileURLWithPath: $0) }, seed: seed, batchSize: batch,
                precision: FeaturePrecision(rawValue: dtype)!, shard: try Shard.parse(shard),
                windows: windows.map { $0.split(separator: ",").map { String($0) } }, progress: quiet ? .quiet : nil)
            let summary = try Extract.run(options)
            print(summary.text)
            if summary.failed > 0 { throw ExitCode(3) }
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
