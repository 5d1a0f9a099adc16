import ArgumentParser
import AxialImaging
import AxialModels
import AxialPipeline
import AxialStore
import Foundation

/// `axial extract --encoder <name> --weights <file> --input <ingest-dir | DICOM/NIfTI> --out <dir>`.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Embed the ingest output's slices with an encoder into one <patient_id>.h5 per patient.",
        discussion: """
            Reads <input>/manifest.csv and its PNG slices — or, when <input> has no manifest.csv, the DICOM / \
            NIfTI series under it, windowed (--windows, --window-file, --channels, --size as for ingest) \
            in memory — preprocesses them as the encoder's source library does, embeds them with no tape and writes <out>/<patient_id>.h5 (feats, slice_index, \
            z_mm, window, coords = (slice index, z mm), provenance attributes incl. the weights' sha256). Complete files are skipped; \
            failed patients are logged to <out>/extract_errors.csv. Encoders: \(EncoderRegistry.names.joined(separator: ", ")).
            """)

    @OptionGroup var configFile: ConfigFileOption

    @Option(help: "Encoder name (see the list above).")
    var encoder: String

    @Option(help: .path(".safetensors weights under the source library's names (timm / MoCo v3 after Tools/convert_weights.py)."))
    var weights: String?

    @Flag(name: .customLong("random-init"), help: "Use random initial weights (tests, demo) instead of --weights.")
    var randomInit = false

    @Option(help: "Seed of --random-init.")
    var seed: UInt64 = 0

    @Option(help: .path("Ingest output folder (with manifest.csv), or a DICOM / NIfTI file or folder."))
    var input: String

    @Option(help: .path("Output folder for <patient_id>.h5 files."))
    var out: String

    @Option(name: .customLong("input-size"), help: "ViT encoders: input size other than the registry's (e.g. 256); the checkpoint's position embedding is resampled (timm bicubic).")
    var inputSize: Int?

    @Option(help: "Slices per forward pass.")
    var batch = 32

    @Option(help: "float32 or float16 for feats (and dense_tokens).")
    var dtype: FeaturePrecision = .float32

    @Option(help: "pooled (feats only) or dense: also store the encoder's dense tokens per slice as dense_tokens [N, K, D] (CLIP ResNet encoders: clip_rn50 gives 50 tokens of 1024, token 0 = the feats row), for crossval --head pspg --tokens dense.")
    var tokens: ExtractTokens = .pooled

    @Option(help: "Process only shard i of n (by patient), e.g. 0/4 (default: the Slurm array task from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, else 0/1).")
    var shard: String?

    @Option(help: .list("Comma-separated window labels of the manifest to embed (default: all); for DICOM / NIfTI input the windows to apply: preset names or W<width>/L<level> (default: abdomen)."))
    var windows: String?

    @Option(name: .customLong("window-file"), help: .path("DICOM / NIfTI input: YAML file of window presets (shape of Manifests/windows.yaml)."))
    var windowFile: String?

    @Option(help: "DICOM / NIfTI input: separate (one image per window) or stacked (windows as RGB channels).")
    var channels: ChannelMode = .separate

    @Option(help: "DICOM / NIfTI input: resize slices to N×N before preprocessing (as ingest --size).")
    var size: Int?

    @Option(name: .customLong("clam-copy"), help: .path("Also write a CLAM-layout copy of each patient's features to <dir>/h5_files/<patient>.h5 (features + coords = slice index, z mm)."))
    var clamCopy: String?
    @Option(name: .customLong("nonfinite-voxels"), help: "DICOM / NIfTI input: NaN / Inf NIfTI voxels refuse the patient (refuse) or are read as −1024 HU (warn).")
    var nonFiniteVoxels: NIfTIReader.NonFinitePolicy = .refuse

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(help: "No progress output.")
    var quiet = false

    func validate() throws {
        if weights == nil && !randomInit { throw ValidationError("give --weights <file.safetensors> or --random-init") }
        if weights != nil && randomInit { throw ValidationError("--weights and --random-init exclude each other") }
        if batch < 1 || batch > 65536 { throw ValidationError("--batch must be 1…65536, got \(batch)") }
        if let s = inputSize, s < 16 || s > 4096 { throw ValidationError("--input-size must be 16…4096 pixels, got \(s)") }
        if let s = size, s < 1 || s > 8192 { throw ValidationError("--size must be 1…8192 pixels, got \(s)") }
        if let t = threads, t < 1 || t > 1024 { throw ValidationError("--threads must be 1…1024, got \(t)") }
        do { _ = try Shard.resolve(shard) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        do {
            if let threads { Extract.setWorkerThreads(threads) }
            var options = ExtractOptions(
                input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: out), encoder: encoder,
                weights: weights.map { URL(fileURLWithPath: $0) }, seed: seed, batchSize: batch,
                precision: dtype, shard: try Shard.resolve(shard),
                windows: windows.map { $0.split(separator: ",").map { String($0) } }, progress: quiet ? .quiet : nil,
                windowPresets: try windowFile.map { try WindowPresets.load(URL(fileURLWithPath: $0)) }, channels: channels, size: size,
                readers: [DICOMReader(), NIfTIReader(nonFiniteVoxels: nonFiniteVoxels)], inputSize: inputSize)
            options.clamCopy = clamCopy.map { URL(fileURLWithPath: $0) }
            options.tokens = tokens
            let summary = try Extract.run(options)
            print(summary.text)
            if !quiet { print("extract: time: \(summary.timing.text)") }
            if summary.failed > 0 { throw ExitCode(3) }
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension ExtractTokens: ExpressibleByArgument {}
