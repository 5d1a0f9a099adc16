import AxialCore
import AxialEval
import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

/// `axial pretrain`: MoCo v3 / LeCL pretraining of a slice encoder on ingest output.
///
/// Inputs: `<input>/manifest.csv` (ingest) and optionally a lesion CSV — DeepLesion `DL_info.csv`
/// (`File_name`, `Bounding_boxes`, …) or Axial's (`patient_id, slice_index, x1, y1, x2, y2`
/// [, `series_uid`]); slices with boxes get LeCL's lesion views and count as lesion negatives.
///
/// Outputs in `<out>`:
///
///     loss.csv               step, loss, lr, momentum, images_per_s (one record per logged step,
///                            appended with one write; images = views, 2 per slice)
///     checkpoint.safetensors model (base + momentum encoder + projectors + predictor + BN stats),
///                            AdamW state, step, RNG, config (written to a temp name, renamed)
///     encoder.safetensors    the trained base encoder alone, under the encoder's (timm) keys —
///                            `axial extract --encoder <arch> --weights encoder.safetensors`
///     loss.svg               the loss curve
///     config.json            the options of the run
///     run.json               world_size, global_batch, per_rank_batch, the ranks' hosts (data-parallel metadata)
///
/// Data-parallel (`collective` with N > 1 ranks, `mpirun -np N axial pretrain …`): rank r loads
/// rows r·B/N ..< (r+1)·B/N of every global batch (the same batch a one-process run at --batch B
/// sees), BatchNorm statistics are synchronised, MoCo keys all-gathered, gradients averaged
/// (`DataParallel`); the losses match a one-process run up to float summation order. Rank 0 alone
/// writes files; every rank reads the checkpoint on `--resume`, whose state does not depend on N
/// (resume with any N that divides B).
///
/// Schedule (per step s of N): lr = base_lr·B/256·warmup-cosine(s) (linear warmup over
/// `warmupSteps`, then half cosine to 0, as MoCo v3 per iteration), momentum
/// m = 1 − (1 − m₀)(cos(πs/N) + 1)/2. Each batch is a pure function of (samples, seed, step)
/// (`ViewLoader`), so `--resume` from the last checkpoint repeats exactly the losses of an
/// uninterrupted run: loss.csv records after the checkpoint's step are dropped and recomputed.
public enum Pretrain {
    /// The options of a run (also saved as `config.json` and in each checkpoint).
    public struct Options: Codable, Sendable, Equatable {
        public var input: String
        public var lesions: String?
        /// "deeplesion", "axial" or nil (detect from the header).
        public var lesionFormat: String?
        public var arch: String
        public var steps: Int
        public var batch: Int
        public var out: String
        /// Continue from `<out>/checkpoint.safetensors` when it exists.
        public var resume = false
        /// Base learning rate; the optimizer's lr is `lr·batch/256` (CLEAR: 1e-4).
        public var lr: Double = 1e-4
        public var weightDecay: Double = 0.1
        /// Warmup steps (nil: 10% of the steps, as CLEAR's 10 of 100 epochs).
        public var warmupSteps: Int?
        public var temperature: Float = 1.0
        /// LeCL weight w of the lesion negatives (≤ 0: plain MoCo v3).
        public var lesionWeight: Float = 1.0
        public var momentum: Float = 0.99
        public var dim: Int = 256
        public var mlpDim: Int = 4096
        public var checkpointEvery: Int = 100
        public var seed: UInt64 = 0
        public var size: Int = 224
        /// Max global gradient norm (nil: no clipping).
        public var clipGradient: Float?
        public var workers: Int = 2
        /// Stop after this many steps of this invocation as if interrupted (tests, time limits).
        public var stopAfter: Int?

        public init(input: String, lesions: String? = nil, lesionFormat: String? = nil, arch: String, steps: Int, batch: Int, out: String) {
            self.input = input; self.lesions = lesions; self.lesionFormat = lesionFormat; self.arch = arch
            self.steps = steps; self.batch = batch; self.out = out
        }

        /// The settings that must not change between a checkpoint and `--resume`.
        var resumeIdentity: [String] {
            [arch, String(batch), String(steps), String(lr), String(weightDecay), String(warmup), String(temperature),
             String(lesionWeight), String(momentum), String(dim), String(mlpDim), String(seed), String(size),
             clipGradient.map { String($0) } ?? "-"]
        }
        static let resumeIdentityNames = ["arch", "batch", "steps", "lr", "weight-decay", "warmup", "temperature",
                                          "weight-w", "momentum", "dim", "mlp-dim", "seed", "size", "clip-grad"]
        public var warmup: Int { warmupSteps ?? steps / 10 }
        public var mocoConfig: MoCoConfig {
            MoCoConfig(dim: dim, mlpDim: mlpDim, temperature: temperature, momentum: momentum, cosineMomentum: true,
                       lesionWeight: lesionWeight, predictorLastBatchNorm: true)
        }
    }

    public struct Result: Sendable {
        public var worldSize = 1
        /// Data-parallel: mean seconds per step spent in gradient all-reduce calls not hidden
        /// behind the backward (launches + the final wait), the gradient floats and buckets per step.
        public var communicationSecondsPerStep = 0.0
        public var gradientElements = 0
        public var gradientBuckets = 0
        public var steps: Int
        public var resumedFrom: Int?
        public var finalLoss: Float?
        public var seconds: Double
        public var imagesPerSecond: Double
        public var lesionSlices: Int
        public var slices: Int
        public var out: URL
        public var text: String {
            var lines = ["pretrain: \(slices) slices (\(lesionSlices) with lesion boxes), \(steps) steps"
                         + (resumedFrom.map { " (resumed at step \($0))" } ?? "")
                         + (worldSize > 1 ? " on \(worldSize) ranks" : "")
                         + " in \(Progress.formatDuration(seconds))"
                         + String(format: ", %.1f images/s", imagesPerSecond)]
            if let finalLoss { lines.append(String(format: "pretrain: final loss %.4f", finalLoss)) }
            if worldSize > 1 {
                lines.append(String(format: "pretrain: gradient all-reduce %.1f ms/step not hidden by the backward (%d floats, %d buckets, %d ranks)",
                                    communicationSecondsPerStep * 1000, gradientElements, gradientBuckets, worldSize))
            }
            lines.append("pretrain: encoder \(out.appendingPathComponent("encoder.safetensors").path), loss curve \(out.appendingPathComponent("loss.svg").path)")
            return lines.joined(separator: "\n")
        }
    }

    public static let lossHeader = ["step", "loss", "lr", "momentum", "images_per_s"]

    /// Reads the manifest and lesion table into view samples, with clear errors.
    public static func samples(_ o: Options) throws -> [ViewSample] {
        let manifest = URL(fileURLWithPath: o.input).appendingPathComponent("manifest.csv")
        guard FileManager.default.fileExists(atPath: manifest.path) else {
            throw PipelineError.io(path: manifest.path, reason: "no ingest manifest here (run `axial ingest` first)")
        }
        var table = LesionTable()
        if let l = o.lesions {
            let url = URL(fileURLWithPath: l)
            guard FileManager.default.fileExists(atPath: url.path) else { throw PipelineError.io(path: l, reason: "lesion CSV not found") }
            if let f = o.lesionFormat {
                guard f == "deeplesion" || f == "axial" else {
                    throw PipelineError.invalidOption(option: "--lesion-format", reason: "expected deeplesion or axial, got '\(f)'")
                }
                let header = (try? String(contentsOf: url, encoding: .utf8))?.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                let isDeepLesion = header.contains("File_name") || header.contains("Bounding_boxes")
                if (f == "deeplesion") != isDeepLesion {
                    throw PipelineError.invalidConfig(path: l, key: "header", reason: f == "deeplesion"
                        ? "a DeepLesion DL_info.csv needs File_name and Bounding_boxes columns; header is: \(header)"
                        : "an Axial lesion CSV needs patient_id, slice_index, x1, y1, x2, y2; header is: \(header)")
                }
            }
            table = try LesionTable.read(url)
        }
        let samples = try ViewSample.fromManifest(manifest, lesions: table)
        guard !samples.isEmpty else { throw PipelineError.nothingToDo(reason: "\(manifest.path) lists no images") }
        let missing = samples.filter { !FileManager.default.fileExists(atPath: $0.path) }
        if !missing.isEmpty {
            throw PipelineError.io(path: missing[0].path, reason: "listed in \(manifest.path) but missing"
                                   + (missing.count > 1 ? " (and \(missing.count - 1) more images)" : ""))
        }
        if o.lesions != nil && !table.isEmpty && !samples.contains(where: { !$0.boxes.isEmpty }) {
            throw PipelineError.invalidConfig(path: o.lesions!, key: "rows", reason: "none of its \(table.count) boxes matches a slice of \(manifest.path) (by patient_id + slice_index [+ series_uid] or file name)")
        }
        return samples
    }

    /// Builds the MoCo model for `arch` (registry encoder, random init from `seed`).
    public static func makeModel(_ o: Options) throws -> MoCo {
        let spec = try encoderSpec(o)
        var g = RandomGenerator(seed: o.seed &+ 0x4D6F_436F)
        return MoCo(config: o.mocoConfig, generator: &g) { spec.makeModel(seed: o.seed) }
    }

    /// The encoder's spec at the view size: a ViT is built for `--size` (patch grid and position
    /// embedding of that size; `encoder.safetensors` then loads into `axial extract` at any
    /// `--input-size`, the learned table resampled), a MambaOut takes any size ≥ 32; other
    /// families only their own size.
    public static func encoderSpec(_ o: Options) throws -> EncoderSpec {
        let spec = try EncoderRegistry.spec(o.arch)
        switch spec.architecture {
        case .vit(let c):
            guard o.size % c.patchSize == 0 else {
                throw PipelineError.invalidOption(option: "--size", reason: "\(o.size) is not a multiple of \(o.arch)'s patch size \(c.patchSize)")
            }
            if c.stem == .conv && o.size % 16 != 0 {
                throw PipelineError.invalidOption(option: "--size", reason: "\(o.size): the conv stem of \(o.arch) needs a multiple of 16")
            }
            return try EncoderRegistry.spec(o.arch, inputSize: o.size)
        case .mambaout:
            guard o.size >= 32 else {
                throw PipelineError.invalidOption(option: "--size", reason: "\(o.size): \(o.arch) downsamples 32×, needs ≥ 32")
            }
            return spec
        default:
            guard o.size == spec.preprocessing.inputSize else {
                throw PipelineError.invalidOption(option: "--size", reason: "\(o.arch) takes \(spec.preprocessing.inputSize)-pixel images only, got \(o.size)")
            }
            return spec
        }
    }

    public static func validate(_ o: Options) throws {
        if o.steps < 1 { throw PipelineError.invalidOption(option: "--steps", reason: "must be ≥ 1, got \(o.steps)") }
        if o.batch < 2 { throw PipelineError.invalidOption(option: "--batch", reason: "must be ≥ 2 (contrastive negatives and BatchNorm), got \(o.batch)") }
        if o.checkpointEvery < 1 { throw PipelineError.invalidOption(option: "--checkpoint-every", reason: "must be ≥ 1") }
        if !(o.temperature > 0 && o.temperature.isFinite) { throw PipelineError.invalidOption(option: "--temperature", reason: "must be a finite number > 0, got \(o.temperature)") }
        if !(o.lr > 0 && o.lr.isFinite) { throw PipelineError.invalidOption(option: "--lr", reason: "must be a finite number > 0, got \(o.lr)") }
        if o.warmup > o.steps { throw PipelineError.invalidOption(option: "--warmup", reason: "\(o.warmup) > steps \(o.steps)") }
        if o.size < 16 || o.size > 1024 { throw PipelineError.invalidOption(option: "--size", reason: "must be 16…1024 pixels, got \(o.size)") }
        if !(o.weightDecay >= 0 && o.weightDecay.isFinite) { throw PipelineError.invalidOption(option: "--weight-decay", reason: "must be a finite number ≥ 0, got \(o.weightDecay)") }
        if !(o.momentum >= 0 && o.momentum <= 1) { throw PipelineError.invalidOption(option: "--momentum", reason: "must be in [0, 1], got \(o.momentum)") }
        if !o.lesionWeight.isFinite { throw PipelineError.invalidOption(option: "--weight-w", reason: "must be a finite number, got \(o.lesionWeight)") }
        if o.dim < 1 || o.mlpDim < 1 { throw PipelineError.invalidOption(option: o.dim < 1 ? "--dim" : "--mlp-dim", reason: "must be ≥ 1") }
        if let c = o.clipGradient, !(c > 0 && c.isFinite) { throw PipelineError.invalidOption(option: "--clip-grad", reason: "must be a finite number > 0, got \(c)") }
        if o.workers < 1 || o.workers > 256 { throw PipelineError.invalidOption(option: "--workers", reason: "must be 1…256, got \(o.workers)") }
        if let w = o.warmupSteps, w < 0 { throw PipelineError.invalidOption(option: "--warmup", reason: "must be ≥ 0, got \(w)") }
        if let s = o.stopAfter, s < 1 { throw PipelineError.invalidOption(option: "--stop-after", reason: "must be ≥ 1, got \(s)") }
        _ = try encoderSpec(o)
        // Two augmented views of every slice, float32, 3 channels, plus the activations (bounded below
        // by the views themselves): refuse a batch × size that cannot fit the available memory.
        try MemoryBudget.check(bytes: MemoryBudget.product(2, o.batch, 3, o.size, o.size, 4, 8), what: "--batch \(o.batch) × --size \(o.size) (two views, activations)", option: "--batch")
    }

    /// The data-parallel metadata written to `run.json`.
    public struct RunInfo: Codable, Sendable, Equatable {
        public var worldSize: Int
        public var globalBatch: Int
        public var perRankBatch: Int
        public var hosts: [String]
        public var bucketElements: Int
        enum CodingKeys: String, CodingKey {
            case worldSize = "world_size", globalBatch = "global_batch", perRankBatch = "per_rank_batch", hosts
            case bucketElements = "gradient_bucket_elements"
        }
    }

    /// Test hook: `AXIAL_TEST_FAIL_RANK=r AXIAL_TEST_FAIL_STEP=k` makes rank r exit abruptly (no
    /// MPI_Finalize, exit status 3) when it reaches step k — a rank that dies mid-run.
    static func simulatedFailure(rank: Int, step: Int) -> Bool {
        let env = ProcessInfo.processInfo.environment
        guard let r = env["AXIAL_TEST_FAIL_RANK"].flatMap(Int.init), let k = env["AXIAL_TEST_FAIL_STEP"].flatMap(Int.init) else { return false }
        return r == rank && k == step
    }

    /// Runs (or resumes) a pretraining run; `collective` (N > 1 ranks) makes it one rank of a
    /// data-parallel job.
    public static func run(_ o: Options, progressStyle: Progress.Style? = nil, collective: (any Collective)? = nil) throws -> Result {
        try validate(o)
        let comm = collective.flatMap { $0.worldSize > 1 ? $0 : nil }
        let rank = comm?.rank ?? 0, world = comm?.worldSize ?? 1
        let isRoot = rank == 0
        if o.batch % world != 0 {
            throw PipelineError.invalidOption(option: "--batch", reason: "global batch \(o.batch) is not divisible by the \(world) ranks")
        }
        let local = o.batch / world
        let samples = try Self.samples(o)
        let out = URL(fileURLWithPath: o.out)
        if isRoot { try AtomicFile.createFolder(out) }
        let checkpointURL = out.appendingPathComponent("checkpoint.safetensors")
        let lossURL = out.appendingPathComponent("loss.csv")
        let configJSON = String(decoding: try JSONEncoder.sorted.encode(o), as: UTF8.self)
        let dataParallel = comm.map { DataParallel(collective: $0) }
        let hostName = ProcessInfo.processInfo.hostName
        var hosts = [hostName]
        if let comm {
            // Every rank's host name (fixed 64 bytes each, as floats: the one gather the collective has).
            var bytes = Array(hostName.utf8.prefix(64)).map { Float($0) }
            bytes += [Float](repeating: 0, count: 64 - bytes.count)
            let all = comm.allGather(bytes)
            hosts = (0..<world).map { r in String(decoding: all[(r * 64)..<((r + 1) * 64)].map { UInt8($0) }.filter { $0 != 0 }, as: UTF8.self) }
        }

        let model = try makeModel(o)
        let opt = AdamW(model.optimizedParameters, lr: o.lr * Double(o.batch) / 256, weightDecay: o.weightDecay)
        let schedule = WarmupCosineSchedule(warmupSteps: o.warmup, totalSteps: o.steps, optimizer: opt)

        var start = 0
        var resumedFrom: Int?
        let resuming = o.resume && FileManager.default.fileExists(atPath: checkpointURL.path)
        if let comm, Int(comm.sum(resuming ? 1 : 0)) != (resuming ? world : 0) {
            throw PipelineError.io(path: checkpointURL.path, reason: "visible to some ranks only; --out must be on a file system every rank shares")
        }
        if resuming {
            let info = try Checkpoint.load(from: checkpointURL, model: model, optimizer: opt)
            if let saved = info.config, let data = saved.data(using: .utf8), let prev = try? JSONDecoder().decode(Options.self, from: data) {
                let a = prev.resumeIdentity, b = o.resumeIdentity
                if let i = a.indices.first(where: { a[$0] != b[$0] }) {
                    throw PipelineError.invalidOption(option: "--" + Options.resumeIdentityNames[i],
                        reason: "checkpoint \(checkpointURL.path) was made with \(a[i]), this run asks for \(b[i]); resume with the same settings or use a new --out")
                }
            }
            start = info.step
            resumedFrom = start
            if isRoot { try truncateLossCSV(lossURL, keepingThrough: start) }
        } else if isRoot {
            if FileManager.default.fileExists(atPath: lossURL.path) { try FileManager.default.removeItem(at: lossURL) }
        }
        var log: CSVAppender?
        if isRoot {
            try AtomicFile.write(Data(configJSON.utf8), to: out.appendingPathComponent("config.json"))
            let info = RunInfo(worldSize: world, globalBatch: o.batch, perRankBatch: local, hosts: hosts,
                               bucketElements: dataParallel?.bucketElements ?? 0)
            try AtomicFile.write(try JSONEncoder.sorted.encode(info), to: out.appendingPathComponent("run.json"))
            log = try CSVAppender(url: lossURL, header: lossHeader)
        }

        var augment = AugmentConfig()
        augment.size = o.size
        let remaining = o.steps - start
        let todo = min(remaining, o.stopAfter ?? remaining)
        let loader = ViewLoader(samples: samples, batchSize: o.batch, seed: o.seed, config: augment,
                                startStep: start, steps: todo, workers: o.workers, prefetch: 3,
                                rows: comm.map { _ in (rank * local)..<((rank + 1) * local) })
        defer { loader.stop() }
        let progress = Progress(label: "pretrain", total: o.steps, unit: "steps", style: isRoot ? progressStyle : .quiet)
        progress.advance(by: start)
        model.train()
        let t0 = Date()
        var last: Float?
        var failuresReported = 0
        var communication = 0.0
        var step = start
        while step < start + todo, let batch = loader.next() {
            precondition(batch.step == step, "pretrain: loader returned batch \(batch.step) for step \(step)")
            if simulatedFailure(rank: rank, step: step) {
                FileHandle.standardError.write(Data("error: rank \(rank)/\(world): simulated failure at step \(step) (AXIAL_TEST_FAIL_RANK / AXIAL_TEST_FAIL_STEP)\n".utf8))
                exit(3)
            }
            for f in batch.failures where failuresReported < 20 { progress.message("pretrain: warning: \(f)"); failuresReported += 1 }
            let ts = Date()
            schedule.apply(step: step, to: opt)
            let m = o.mocoConfig.momentum(step: step, totalSteps: o.steps)
            let lesion = batch.isLesion.scalars.map { $0 > 0.5 }
            let loss = model.trainStep(batch.view1, batch.view2, lesion: lesion, momentum: m, optimizer: opt,
                                       clipGradientNorm: o.clipGradient, dataParallel: dataParallel)
            guard loss.isFinite else {
                throw PipelineError.nothingToDo(reason: "pretrain: loss became \(loss) at step \(step); lower --lr or set --clip-grad")
            }
            let ips = Double(2 * o.batch) / max(Date().timeIntervalSince(ts), 1e-9)
            try log?.append([[String(step), String(format: "%.9g", loss), String(format: "%.9g", opt.groups[0].lr),
                             String(format: "%.9g", m), String(format: "%.2f", ips)]])
            last = loss
            communication += dataParallel?.lastCommunicationSeconds ?? 0
            step += 1
            progress.detail = String(format: "loss %.4f  lr %.2e  %.1f img/s", loss, opt.groups[0].lr, ips)
            progress.advance()
            if isRoot && (step % o.checkpointEvery == 0 || step == o.steps) {
                try Checkpoint.save(to: checkpointURL, model: model, optimizer: opt, step: step, config: configJSON)
            }
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(t0)
        if isRoot && step == o.steps {
            try exportEncoder(model, to: out.appendingPathComponent("encoder.safetensors"), arch: o.arch)
        }
        if isRoot {
            try writeLossCurve(lossURL, to: out.appendingPathComponent("loss.svg"), title: "\(o.arch) MoCo v3" + (o.lesionWeight > 0 ? " + LeCL (w = \(o.lesionWeight))" : ""))
        }
        return Result(worldSize: world, communicationSecondsPerStep: communication / Double(max(1, step - start)),
                      gradientElements: dataParallel?.lastGradientElements ?? 0, gradientBuckets: dataParallel?.lastBucketCount ?? 0,
                      steps: step, resumedFrom: resumedFrom, finalLoss: last, seconds: seconds,
                      imagesPerSecond: Double(2 * o.batch * (step - start)) / max(seconds, 1e-9),
                      lesionSlices: samples.filter { !$0.boxes.isEmpty }.count, slices: samples.count, out: out)
    }

    /// Writes the base encoder's own weights (no projector) under its keys, atomically.
    public static func exportEncoder(_ model: MoCo, to url: URL, arch: String) throws {
        try SafeTensors.write(model.encoderStateDict(), metadata: ["arch": arch, "source": "axial pretrain (MoCo v3 / LeCL base encoder)"], to: url)
    }

    /// Keeps the header and the records with step < `step` (those a checkpoint at `step` covers).
    static func truncateLossCSV(_ url: URL, keepingThrough step: Int) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let table = try CSVTable.read(url)
        let kept = table.rows.filter { ($0.first.flatMap { Int($0) } ?? Int.max) < step }
        try CSVTable(header: table.header, rows: kept).write(to: url)
    }

    /// loss.csv → an SVG line plot of loss against step.
    public static func writeLossCurve(_ csv: URL, to url: URL, title: String) throws {
        guard FileManager.default.fileExists(atPath: csv.path) else { return }
        let table = try CSVTable.read(csv)
        let steps = try table.column("step", path: csv.path).compactMap { Double($0) }
        let losses = try table.column("loss", path: csv.path).compactMap { Double($0) }
        guard steps.count == losses.count, !steps.isEmpty else { return }
        var plot = SVGPlot(title: title, xLabel: "step", yLabel: "loss")
        plot.add(x: steps, y: losses, label: "loss")
        try plot.write(to: url)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder { let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]; return e }
}
