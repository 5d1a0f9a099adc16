import ArgumentParser
import AxialPipeline
import Foundation

/// `axial pretrain --input <ingest-dir> --arch <encoder> --steps N --batch B --out <dir>`:
/// MoCo v3 / LeCL self-supervised pretraining of a slice encoder.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain a slice encoder with MoCo v3 + LeCL (lesion slices as weighted extra negatives).",
        discussion: """
            Reads <input>/manifest.csv (axial ingest). With --lesions, slices that have boxes get LeCL views \
            (view 1 = whole slice, view 2 = crop around the lesion) and enter the loss as extra negatives \
            weighted by --weight-w (≤ 0: plain MoCo v3). Lesion CSVs: DeepLesion DL_info.csv (File_name, \
            Bounding_boxes, …) or Axial's (patient_id, slice_index, x1, y1, x2, y2 [, series_uid]). \
            Writes <out>/loss.csv (step, loss, lr, momentum, images_per_s), checkpoint.safetensors every \
            --checkpoint-every steps, loss.svg, and encoder.safetensors (the base encoder alone, timm keys) \
            for `axial extract --encoder <arch> --weights <out>/encoder.safetensors`. \
            --resume continues from the checkpoint with exactly the losses of an uninterrupted run. \
            Data-parallel: `mpirun -np N axial pretrain … --batch B` splits every global batch of B over \
            the N ranks (B divisible by N), synchronises BatchNorm, gathers MoCo keys across ranks and \
            averages gradients; rank 0 writes the outputs and run.json (world_size, global / per-rank batch).
            """)

    @OptionGroup var configFile: ConfigFileOption
    @Option(help: .path("Ingest output folder (with manifest.csv).")) var input: String
    @Option(help: .path("Lesion box CSV (DeepLesion DL_info.csv or Axial's patient_id,slice_index,x1,y1,x2,y2).")) var lesions: String?
    @Option(name: .customLong("lesion-format"), help: "deeplesion or axial (default: detected from the header).") var lesionFormat: String?
    @Option(help: "Encoder architecture (registry name, e.g. vit_small_moco, vit_conv_small, vit_test).") var arch: String
    @Option(help: "Training steps.") var steps: Int
    @Option(help: "Slices per batch (two views each).") var batch: Int
    @Option(help: .path("Output folder.")) var out: String
    @Flag(help: "Continue from <out>/checkpoint.safetensors.") var resume = false
    @Option(help: "Base learning rate (scaled by batch/256).") var lr: Double = 1e-4
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.") var weightDecay: Double = 0.1
    @Option(help: "Warmup steps (default: 10% of --steps).") var warmup: Int?
    @Option(name: .customLong("weight-w"), help: "LeCL weight w of lesion negatives (≤ 0: plain MoCo v3).") var weightW: Float = 1.0
    @Option(help: "Softmax temperature T.") var temperature: Float = 1.0
    @Option(help: "Base momentum m0 (ramped to 1 by a half cosine).") var momentum: Float = 0.99
    @Option(help: "Projector / predictor output dimension.") var dim: Int = 256
    @Option(name: .customLong("mlp-dim"), help: "Projector / predictor hidden dimension.") var mlpDim: Int = 4096
    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every K steps.") var checkpointEvery: Int = 100
    @Option(help: "Seed (initialisation, sample order, augmentations).") var seed: UInt64 = 0
    @Option(help: "View size in pixels.") var size: Int = 224
    @Option(name: .customLong("clip-grad"), help: "Clip the global gradient norm to this value.") var clipGrad: Float?
    @Option(help: "Background augmentation threads.") var workers: Int = 2
    @Option(help: "Compute threads (default: all cores; under mpirun the cores divided by the ranks on this node).") var threads: Int?
    @Option(name: .customLong("stop-after"), help: ArgumentHelp("Stop after N steps of this invocation (resume later).", visibility: .hidden)) var stopAfter: Int?
    @Flag(help: "No progress output.") var quiet = false

    func options() -> Pretrain.Options {
        var o = Pretrain.Options(input: input, lesions: lesions, lesionFormat: lesionFormat, arch: arch, steps: steps, batch: batch, out: out)
        o.resume = resume; o.lr = lr; o.weightDecay = weightDecay; o.warmupSteps = warmup; o.lesionWeight = weightW
        o.temperature = temperature; o.momentum = momentum; o.dim = dim; o.mlpDim = mlpDim; o.checkpointEvery = checkpointEvery
        o.seed = seed; o.size = size; o.clipGradient = clipGrad; o.workers = workers; o.stopAfter = stopAfter
        return o
    }

    /// Every numeric flag range-checked before anything is read (`Pretrain.validate`).
    func validate() throws {
        do { try Pretrain.validate(options()) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let o = options()
        // Under mpirun / srun: one rank of a data-parallel job (Sources/README.md, "Data-parallel pretraining").
        var mpi: MPICommunicator?
        do {
            if MPICommunicator.isLaunchedByMPI { mpi = try MPICommunicator.initialize() }
            if let threads { Extract.setWorkerThreads(threads) }
            else if let local = MPICommunicator.ranksOnThisNode, local > 1 {
                Extract.setWorkerThreads(ProcessInfo.processInfo.activeProcessorCount / local)
            }
            let result = try Pretrain.run(o, progressStyle: quiet ? .quiet : nil, collective: mpi)
            if (mpi?.rank ?? 0) == 0 { print(result.text) }
            mpi?.finalize()
        } catch {
            // One rank's error ends the job: MPI_Abort makes mpirun stop the others.
            if let mpi, mpi.worldSize > 1 { mpi.abort("\(error)") }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
