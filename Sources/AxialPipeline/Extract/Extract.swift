import AxialCore
import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

/// Options of the extract stage (`axial extract`).
public struct ExtractOptions: Sendable {
    /// The ingest output folder (holds `manifest.csv`), or — when it has no `manifest.csv` — a
    /// DICOM / NIfTI file or folder tree, windowed and sliced in memory as `axial ingest` would.
    public var input: URL
    public var output: URL
    /// Registry name (`EncoderRegistry.names`).
    public var encoder: String
    /// `.safetensors` under the source library's key names; nil = random init from `seed`.
    public var weights: URL?
    public var seed: UInt64
    public var batchSize: Int
    public var precision: FeaturePrecision
    public var shard: Shard
    /// Window labels to embed (manifest `window` column); nil = all, in order of first appearance.
    /// For DICOM / NIfTI input: the windows to apply (preset names or `W<width>/L<level>`; nil = `abdomen`, as ingest).
    public var windows: [String]?
    public var progress: Progress.Style?
    /// DICOM / NIfTI input only: window presets for `windows` (nil: `CTWindow.presets`), channel
    /// mode, optional resize to `size × size` (as `axial ingest --size`), and the readers.
    public var windowPresets: [CTWindow]?
    public var channels: ChannelMode
    public var size: Int?
    public var readers: [any VolumeReader]
    /// ViT encoders at another input size (e.g. 256 for `vit_base`): preprocessing crops this size
    /// and the checkpoint's position embedding is resampled to the new grid (timm-exact); nil = the registry's.
    public var inputSize: Int?
    /// Also write a CLAM-layout copy of every patient's features to `<clamCopy>/h5_files/<patient>.h5`
    /// (`features` + `coords`, see `FeatureStore.writeCLAM`); nil: none.
    public var clamCopy: URL? = nil
    /// `--tokens`: pooled vectors only, or also the dense tokens per slice (`ExtractDense.swift`).
    public var tokens: ExtractTokens = .pooled
    /// `--adapters RUN/adapters.safetensors`: adapted slice embeddings (`CLIPAdaptedEncoder`,
    /// ExtractAdapters.swift) instead of the tower's pooled embedding; nil: none.
    public var adapters: URL? = nil

    public init(input: URL, output: URL, encoder: String, weights: URL? = nil, seed: UInt64 = 0, batchSize: Int = 32,
                precision: FeaturePrecision = .float32, shard: Shard = .all, windows: [String]? = nil, progress: Progress.Style? = nil,
                windowPresets: [CTWindow]? = nil, channels: ChannelMode = .separate, size: Int? = nil,
                readers: [any VolumeReader] = IngestOptions.defaultReaders, inputSize: Int? = nil) {
        self.input = input; self.output = output; self.encoder = encoder; self.weights = weights; self.seed = seed
        self.batchSize = batchSize; self.precision = precision; self.shard = shard; self.windows = windows; self.progress = progress
        self.windowPresets = windowPresets; self.channels = channels; self.size = size; self.readers = readers
        self.inputSize = inputSize
    }
}

/// The extract stage: ingest output (`manifest.csv` + PNG slices) → one `<patient_id>.h5` per
/// patient (ARCHITECTURE.md "Feature store"): `feats [N, D]` (one row per slice × window, in
/// slice order, then window order), `slice_index`, `z_mm`, `window` (index into the `windows`
/// attribute), provenance attributes (encoder name, SHA-256 of the weights file — or
/// `random-init-seed-<n>` —, preprocessing JSON).
///
/// Preprocessing follows the encoder's registry entry (timm `pretrained_cfg`): resize the shorter
/// side to ⌊size / crop_pct⌋ (torchvision/PIL-exact `Transforms`), centre-crop, normalise.
/// Embedding runs with no tape (`withNoGrad`) in batches of `batchSize`, slices of one patient
/// loaded and preprocessed on background threads (`ExtractionLoader`).
///
/// Files are written atomically (temporary name + rename) by `FeatureStore.write`; a rerun skips
/// patients whose file verifies as complete; `--shard i/n` takes the patients of one shard; a
/// patient that fails (unreadable PNG, …) is logged to `<out>/extract_errors.csv` and skipped.
/// `spacing_mm`: x and y are unknown from PNG slices (NaN); z is the median slice spacing.
/// The extract stage: slices → one `<patient_id>.h5` per patient (ARCHITECTURE.md "Feature
/// store"): `feats [N, D]` (one row per slice × window, in slice order, then window order),
/// `slice_index`, `z_mm`, `window` (index into the `windows` attribute), provenance attributes
/// (encoder name, SHA-256 of the weights file — or `random-init-seed-<n>` —, preprocessing JSON).
///
/// Input: the ingest output (`manifest.csv` + PNG slices; `series.json` beside each series'
/// `slices.csv` gives the voxel spacing and the windows' width / level), or DICOM / NIfTI directly
/// (no `manifest.csv` in `input`): the series are scanned and read with the ingest readers and
/// each slice is windowed (and resized with `size`) in memory by `Ingest.renderSlice`, the code
/// that renders ingest's PNGs — the same bytes, no PNG round trip; `z_mm` / `slice_index` /
/// spacing come from the volume exactly as ingest records them.
///
/// Preprocessing follows the encoder's registry entry (timm `pretrained_cfg`): resize the shorter
/// side to ⌊size / crop_pct⌋ (torchvision/PIL-exact `Transforms`), centre-crop, normalise.
/// Embedding runs with no tape (`withNoGrad`) in batches of `batchSize` on the calling thread
/// while background threads decode / render and preprocess the next batches — across patient
/// boundaries (the next patient's volume is read and its first batches prepared while the current
/// patient's last batch is embedded).
///
/// Files are written atomically (temporary name + rename) by `FeatureStore.write`; a rerun skips
/// patients whose file verifies as complete; `--shard i/n` takes the patients of one shard; a
/// patient that fails (unreadable PNG or series, …) is logged to `<out>/extract_errors.csv` and skipped.
/// `spacing_mm` is (x, y, z) in mm of the source volume; for ingest folders without `series.json`
/// x and y are NaN and z is the median slice spacing. A stacked window label (`a+b+c`) is stored
/// with null width / level and its channels' windows as `components`.
public enum Extract {
    public static let errorsHeader = ["patient_id", "reason"]

    /// Sets the kernels' worker count (`--threads`).
    public static func setWorkerThreads(_ n: Int) { Parallel.workerCount = max(1, n) }

    /// Where the wall time went (seconds): `waiting` = the embedding thread blocked on the
    /// loaders (decode / preprocess not hidden behind the forward), `forward`, `write` (HDF5),
    /// `preprocess` = time the loader threads spent decoding / rendering + preprocessing (overlapped).
    public struct Timing: Sendable {
        public var setup = 0.0, waiting = 0.0, forward = 0.0, write = 0.0, preprocess = 0.0
        public var text: String {
            String(format: "setup %.2f s, waiting for images %.2f s, forward %.2f s, write %.2f s (loader threads: %.2f s decode+preprocess)",
                   setup, waiting, forward, write, preprocess)
        }
    }

    public struct Summary: Sendable {
        public var patients = 0, written = 0, skipped = 0, failed = 0, otherShards = 0, slices = 0, clamCopies = 0
        public var seconds = 0.0
        public var timing = Timing()
        public var output: URL
        public var text: String {
            let rate = seconds > 0 ? String(format: "%.1f", Double(slices) / seconds) : "-"
            return "extract: \(patients) patients, \(written) written, \(skipped) already complete, \(failed) failed"
                + (otherShards > 0 ? ", \(otherShards) left to other shards" : "")
                + "; \(slices) images embedded (\(rate) img/s) → \(output.path)"
                + (clamCopies > 0 ? "; \(clamCopies) CLAM-layout copies written" : "")
        }
    }

    struct Row: Sendable { var study: String, series: String, slice: Int, z: Float, window: String, path: String }

    /// One patient's images and metadata, ready to embed.
    struct PatientJob: Sendable {
        var patient: String
        var rows: [Row]
        var spacing: [Double]
        var windows: [StoredWindow]
        /// Row i → its image (called on loader threads).
        var image: @Sendable (Int) throws -> PlanarImage8
    }

    /// A preprocessed batch: rows `positions` of the patient's image list.
    struct Batch: Sendable { var index: Int, images: Tensor, positions: [Int], failures: [String] }

    /// What the patient prefetcher yields.
    enum Prepared: Sendable {
        case job(PatientJob)
        case failed(patient: String, reason: String)
    }

    /// Preprocessing of an encoder as `Transforms.Preprocess`.
    public static func preprocess(for spec: EncoderSpec) -> Preprocess {
        let p = spec.preprocessing
        let resize = Int((Double(p.inputSize) / p.cropPct).rounded(.down))
        return Preprocess(resize: .shorterSide(resize), crop: p.inputSize,
                          interpolation: Interpolation(rawValue: p.interpolation) ?? .bicubic,
                          mean: p.mean.map(Double.init), std: p.std.map(Double.init))
    }

    /// The `windows` attribute for `labels`, from the windows a series was made with (`series.json`
    /// or the options), else parsed from the labels (presets / `W…/L…`), else NaN.
    static func storedWindows(_ labels: [String], known: [CTWindow], channels: ChannelMode?) -> [StoredWindow] {
        labels.map { label in
            if let w = known.first(where: { $0.name == label }) { return StoredWindow(name: label, width: w.width, level: w.level) }
            if let w = try? CTWindow.parse(label) { return StoredWindow(name: label, width: w.width, level: w.level) }
            if label.contains("+") {
                let parts = label.split(separator: "+").map(String.init)
                let comps: [StoredWindow] = parts.map { n in
                    if let w = known.first(where: { $0.name == n }) ?? (try? CTWindow.parse(n)) {
                        return StoredWindow(name: n, width: w.width, level: w.level)
                    }
                    return StoredWindow(name: n, width: .nan, level: .nan)
                }
                return StoredWindow(name: label, width: .nan, level: .nan, components: comps)
            }
            return StoredWindow(name: label, width: .nan, level: .nan)
        }
    }

    static func medianGap(_ rows: [Row]) -> Double {
        var seen = Set<Int>(), zs: [Float] = []
        for r in rows.sorted(by: { $0.slice < $1.slice }) where seen.insert(r.slice).inserted { zs.append(r.z) }
        let gaps = zip(zs.dropFirst(), zs).map { abs($0 - $1) }.sorted()
        return gaps.isEmpty ? .nan : Double(gaps[gaps.count / 2])
    }

    public static func run(_ o: ExtractOptions) throws -> Summary {
        let start = Date()
        guard o.batchSize >= 1 else { throw PipelineError.invalidOption(option: "--batch", reason: "must be ≥ 1, got \(o.batchSize)") }
        if let s = o.inputSize, s < 16 || s > 4096 { throw PipelineError.invalidOption(option: "--input-size", reason: "must be 16…4096 pixels, got \(s)") }
        let spec: EncoderSpec
        do { spec = try EncoderRegistry.spec(o.encoder, inputSize: o.inputSize) } catch let e as EncoderError where o.inputSize != nil {
            throw PipelineError.invalidOption(option: "--input-size", reason: "\(e)")
        }
        try checkTokens(o, spec: spec)
        try checkMemory(spec, o)
        let manifestURL = o.input.appendingPathComponent("manifest.csv")
        let fromVolumes = !FileManager.default.fileExists(atPath: manifestURL.path)
        if fromVolumes && !FileManager.default.fileExists(atPath: o.input.path) {
            throw PipelineError.io(path: o.input.path, reason: "input does not exist")
        }

        // Model and provenance.
        let tower = try EncoderRegistry.load(o.encoder, weights: o.weights, seed: o.seed, inputSize: o.inputSize)
        if o.tokens == .dense && o.adapters != nil {
            throw PipelineError.invalidOption(option: "--tokens", reason: "dense tokens come from a CLIP RN50 tower and adapters from a CLIP ViT; use one of --tokens dense and --adapters")
        }
        let dense = try denseModel(o, tower)
        let (model, sha, adaptedFeature) = try adaptedEncoder(tower, towerSHA: try o.weights.map { try SHA256.hex(fileAt: $0) } ?? "random-init-seed-\(o.seed)", o)
        let pre = preprocess(for: spec)
        var preObject: [String: Any] = [
            "resize_shorter_side": { if case .shorterSide(let s) = pre.resize { return s } else { return 0 } }(),
            "crop": pre.cropHeight, "interpolation": pre.interpolation.rawValue, "mean": pre.mean, "std": pre.std,
            "crop_pct": spec.preprocessing.cropPct,
            "input": fromVolumes ? "HU volume → window (+ resize \(o.size.map(String.init) ?? "none")) → 8-bit → RGB (gray replicated) → [0, 1]"
                : "8-bit PNG → RGB (gray replicated) → [0, 1]",
            "feature": o.adapters == nil ? "encode (timm forward_head pre_logits)" : adaptedFeature, "batch": o.batchSize,
        ]
        if let dense { preObject["tokens"] = tokensDescription(dense) }
        let preJSON = try String(decoding: JSONSerialization.data(withJSONObject: preObject, options: [.sortedKeys]), as: UTF8.self)

        try AtomicFile.createFolder(o.output)
        var summary = Summary(output: o.output)
        // A fresh error list per run (a failure fixed by a rerun disappears); each shard has its own
        // (extract_errors.shard-i-of-n.csv), so shards never append to a shared list.
        let errorsURL = o.output.appendingPathComponent(o.shard.errorListName("extract_errors"))
        try CSVTable(header: errorsHeader).write(to: errorsURL)
        let errors = try CSVAppender(url: errorsURL, header: errorsHeader)
        // A complete file is skipped only when this run would write the same thing; one made by another
        // encoder, other weights or other preprocessing stops the run (never mixed into one folder).
        let isDone = { (url: URL) throws -> Bool in
            guard FeatureStore.isComplete(url) else { return false }
            try checkSameProvenance(url, encoder: o.encoder, sha: sha, preprocessing: preJSON)
            return true
        }
        let plan = fromVolumes ? try volumePlan(o, summary: &summary, errors: errors, isDone: isDone)
            : try manifestPlan(o, manifestURL, summary: &summary, errors: errors, isDone: isDone)
        summary.timing.setup = Date().timeIntervalSince(start)

        let progress = Progress(label: "extract \(o.encoder)", total: plan.estimatedImages, unit: "img", style: o.progress)
        let d = model.featureDimension
        let stats = TimeAccumulator()
        let patients = Prefetcher<Prepared>(start: 0, end: plan.count, workers: 1, capacity: 1) { i in
            let p = plan.prepare(i)
            if case .job(let j) = p { progress.addTotal(j.rows.count - plan.estimate(i)) } else { progress.addTotal(-plan.estimate(i)) }
            return p
        }
        defer { patients.stop() }
        func loader(_ job: PatientJob) -> Prefetcher<Batch> {
            let b = o.batchSize, n = job.rows.count
            return Prefetcher(start: 0, end: (n + b - 1) / b, workers: 2, capacity: 4) { k in
                let t0 = DispatchTime.now().uptimeNanoseconds
                var images = [PlanarImage8](), positions = [Int](), failures = [String]()
                for i in (k * b)..<min((k + 1) * b, n) {
                    do { images.append(try job.image(i)); positions.append(i) } catch { failures.append("\(error)") }
                }
                let batch = Batch(index: k, images: pre.batch(images), positions: positions, failures: failures)
                stats.add(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                return batch
            }
        }
        func fail(_ patient: String, _ reason: String) {
            summary.failed += 1
            try? errors.append([[patient, reason]])
            progress.message("extract: patient \(patient) skipped: \(reason)")
        }
        func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

        var t = clock()
        var next = patients.next()
        var nextLoader: Prefetcher<Batch>? = nil
        if case .job(let j) = next { nextLoader = loader(j) }
        summary.timing.waiting += clock() - t
        while let current = next {
            let batches = nextLoader
            next = nil; nextLoader = nil
            guard case .job(let job) = current, let batches else {
                if case .failed(let p, let reason) = current { fail(p, reason) }
                t = clock(); next = patients.next(); if case .job(let j) = next { nextLoader = loader(j) }
                summary.timing.waiting += clock() - t
                continue
            }
            let batchCount = (job.rows.count + o.batchSize - 1) / o.batchSize
            var feats = [Float](repeating: 0, count: job.rows.count * d)
            let denseBuffer = dense.map { DenseTokenBuffer(rows: job.rows.count, tokens: tokensPerSlice($0), dimension: d) }
            var done = 0
            var failure: String? = nil
            var fetchedNext = false
            while true {
                t = clock()
                guard let batch = batches.next() else { break }
                // Last batch of this patient: start the next patient's loaders before embedding it.
                if batch.index == batchCount - 1 {
                    next = patients.next(); fetchedNext = true
                    if case .job(let j) = next { nextLoader = loader(j) }
                }
                summary.timing.waiting += clock() - t
                if let f = batch.failures.first { failure = f; break }
                t = clock()
                let y = dense.map { denseBuffer!.embed($0, images: batch.images, positions: batch.positions) }
                    ?? withNoGrad { model.encode(batch.images) }
                precondition(y.shape == [batch.positions.count, d], "extract: encoder output \(y.shape)")
                y.withUnsafeBufferPointer { src in
                    feats.withUnsafeMutableBufferPointer { dst in
                        for (r, pos) in batch.positions.enumerated() {
                            (dst.baseAddress! + pos * d).update(from: src.baseAddress! + r * d, count: d)
                        }
                    }
                }
                summary.timing.forward += clock() - t
                done += batch.positions.count
                progress.advance(by: batch.positions.count)
            }
            batches.stop()
            if !fetchedNext {
                t = clock(); next = patients.next(); if case .job(let j) = next { nextLoader = loader(j) }
                summary.timing.waiting += clock() - t
            }
            if let failure { fail(job.patient, failure); continue }
            guard done == job.rows.count else { fail(job.patient, "embedded \(done) of \(job.rows.count) images"); continue }
            t = clock()
            do {
                let rows = job.rows
                let labels = job.windows.map(\.name)
                let meta = FeatureStoreMetadata(encoder: o.encoder, encoderSHA256: sha, windows: job.windows, patientID: job.patient,
                                                studyUID: rows[0].study, seriesUID: rows[0].series, spacingMM: job.spacing,
                                                preprocessingJSON: preJSON)
                var pf = PatientFeatures(metadata: meta, featDim: d, feats: feats, sliceIndex: rows.map { Int32($0.slice) },
                                         zMM: rows.map(\.z), window: rows.map { Int32(labels.firstIndex(of: $0.window)!) })
                pf.denseTokens = denseBuffer?.tokens
                try FeatureStore.write(pf, to: o.output.appendingPathComponent(FeatureStore.fileName(patientID: job.patient)), precision: o.precision)
                summary.written += 1
                summary.slices += rows.count
            } catch {
                fail(job.patient, "\(error)")
            }
            summary.timing.write += clock() - t
        }
        progress.finish()
        if let clam = o.clamCopy { summary.clamCopies = try writeCLAMCopies(from: o.output, to: clam) }
        summary.timing.preprocess = stats.total
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// CLAM-layout copies (`<clam>/h5_files/<name>.h5`) of the complete Axial files in `features`
    /// that have none yet (a rerun with `--clam-copy` converts files written earlier). Returns the count written.
    public static func writeCLAMCopies(from features: URL, to clam: URL) throws -> Int {
        let folder = clam.appendingPathComponent("h5_files")
        var written = 0
        let names = (try? FileManager.default.contentsOfDirectory(atPath: features.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".h5") && !name.hasPrefix(".") {
            let src = features.appendingPathComponent(name), dst = folder.appendingPathComponent(name)
            guard FeatureStore.isComplete(src), !FileManager.default.fileExists(atPath: dst.path) else { continue }
            do {
                try FeatureStore.writeCLAM(try FeatureStore.read(src).features, to: dst)
            } catch {
                throw PipelineError.io(path: dst.path, reason: "cannot write the CLAM copy of \(src.path): \(error)")
            }
            written += 1
        }
        return written
    }

    /// Refuses a batch × input size whose inference buffers cannot fit the available memory
    /// (`MemoryBudget`), naming the flag: the preprocessed batches in flight (two patients' batch
    /// prefetchers: up to 8 batches of B × 3 × S × S floats) and, for a ViT, the pooled activations
    /// (x, h, attention output: B·N·D each, qkv 3·B·N·D, MLP B·N·hidden), the patch matrix and one
    /// N×N score matrix per worker; for the other encoders the batches alone (their size is fixed
    /// by the registry). (`extract --input-size 2048` with vit_base, batch 32: ≈ 30 GiB.)
    static func checkMemory(_ spec: EncoderSpec, _ o: ExtractOptions, available: Int = MemoryBudget.available()) throws {
        let s = spec.preprocessing.inputSize, b = o.batchSize
        let images = MemoryBudget.product(b, 3, s, s, 4, 8)
        var bytes = images
        if case .vit(let c) = spec.architecture {
            let n = c.numTokens
            let act = MemoryBudget.product(b, n, 6 * c.embedDim + c.mlpHidden, 4)
            let patches = MemoryBudget.product(b, c.numPatches, c.inChannels * c.patchSize * c.patchSize, 4)
            let scores = MemoryBudget.product(Parallel.workerCount, n, n, 4)
            bytes = [images, act, patches, scores].reduce(0) { $0 > Int.max - $1 ? Int.max : $0 + $1 }
        }
        let option = o.inputSize != nil && o.inputSize != EncoderRegistry.all[o.encoder]?.preprocessing.inputSize ? "--input-size" : "--batch"
        try MemoryBudget.check(bytes: bytes, what: "--batch \(b) at \(s)×\(s) pixels (\(o.encoder) inference buffers)", option: option, available: available)
    }

    /// Throws when the complete file at `url` was made by another encoder, other weights or other
    /// preprocessing than this run's, naming the file and what differs.
    static func checkSameProvenance(_ url: URL, encoder: String, sha: String, preprocessing: String) throws {
        guard let p = FeatureStore.readProvenance(url) else {
            throw PipelineError.io(path: url.path, reason: "exists but has no Axial provenance (encoder, encoder_sha256, preprocessing attributes); move it away or use another --out")
        }
        var changes: [String] = []
        if p.encoder != encoder { changes.append("encoder '\(p.encoder)' → '\(encoder)'") }
        if p.encoderSHA256 != sha { changes.append("weights sha256 \(p.encoderSHA256.prefix(12))… → \(sha.prefix(12))…") }
        if p.preprocessing != preprocessing { changes.append("preprocessing \(p.preprocessing) → \(preprocessing)") }
        guard changes.isEmpty else {
            throw PipelineError.io(path: url.path, reason: "made by a different extraction than this run (\(changes.joined(separator: "; "))); features of two runs are never mixed in one folder: use another --out, or delete the old files to redo them")
        }
    }

    /// The patients to embed: `count`, a per-patient image estimate (progress), and `prepare(i)`
    /// (called on a background thread, in order).
    struct Plan: Sendable {
        var count: Int
        var estimate: @Sendable (Int) -> Int
        var prepare: @Sendable (Int) -> Prepared
        var estimatedImages: Int { (0..<count).reduce(0) { $0 + estimate($1) } }
    }

    /// Ingest output: rows from `manifest.csv`, images from the PNGs, spacing and windows from
    /// each series' `series.json` when present.
    static func manifestPlan(_ o: ExtractOptions, _ manifestURL: URL, summary: inout Summary, errors: CSVAppender, isDone: (URL) throws -> Bool) throws -> Plan {
        let table = try CSVTable.read(manifestURL)
        let col = { (n: String) throws -> Int in try table.columnIndex(n, path: manifestURL.path) }
        let (cp, cst, cse, csl, cz, cw, cpa) = (try col("patient_id"), try col("study_uid"), try col("series_uid"),
                                                try col("slice_index"), try col("z_mm"), try col("window"), try col("path"))
        var byPatient: [String: [Row]] = [:]
        var labels: [String] = []
        for (i, r) in table.rows.enumerated() {
            guard let slice = Int(r[csl]), let z = Float(r[cz]) else {
                throw PipelineError.invalidOption(option: manifestURL.path, reason: "row \(i + 2): slice_index '\(r[csl])' / z_mm '\(r[cz])' not numbers")
            }
            if !labels.contains(r[cw]) { labels.append(r[cw]) }
            // Keyed by the raw ID (as ingest does): an empty ID and a real 'unknown' both become
            // unknown.h5, so they are refused as a collision below instead of being merged.
            byPatient[r[cp], default: []].append(Row(study: r[cst], series: r[cse], slice: slice, z: z, window: r[cw], path: r[cpa]))
        }
        let windows = o.windows ?? labels
        for w in windows where !labels.contains(w) {
            throw PipelineError.invalidOption(option: "--windows", reason: "window '\(w)' is not in \(manifestURL.path) (has \(labels.joined(separator: ", ")))")
        }
        let windowIndex = Dictionary(uniqueKeysWithValues: windows.enumerated().map { ($1, $0) })
        let patients = byPatient.keys.sorted()
        summary.patients = patients.count
        let clashes = patientStemCollisions(patients)
        var todo: [(String, [Row])] = []
        for p in patients {
            guard o.shard.contains(patientID: p) else { summary.otherShards += 1; continue }
            if let clash = clashes[patientFileStem(p)] {
                summary.failed += 1
                try errors.append([[p, patientCollisionReason(p, clash)]])
                continue
            }
            let url = o.output.appendingPathComponent(FeatureStore.fileName(patientID: p))
            if try isDone(url) { summary.skipped += 1; continue }
            let rows = byPatient[p]!.filter { windowIndex[$0.window] != nil }
                .sorted { ($0.slice, windowIndex[$0.window]!) < ($1.slice, windowIndex[$1.window]!) }
            if !rows.isEmpty { todo.append((p.isEmpty ? "unknown" : p, rows)) }
        }
        let input = o.input
        let jobs = todo
        return Plan(count: jobs.count, estimate: { jobs[$0].1.count }, prepare: { i in
            let (patient, rows) = jobs[i]
            var spacing = [Double.nan, .nan, medianGap(rows)]
            var known: [CTWindow] = []
            let seriesFolder = input.appendingPathComponent(rows[0].path).deletingLastPathComponent()
            do {
                if let info = try SeriesInfoFile.readIfPresent(seriesFolder.appendingPathComponent(SeriesInfoFile.name)) {
                    spacing = info.spacingMM; known = info.windows
                }
            } catch { return .failed(patient: patient, reason: "\(error)") }
            let paths = rows.map { input.appendingPathComponent($0.path) }
            return .job(PatientJob(patient: patient, rows: rows, spacing: spacing,
                                   windows: storedWindows(windows, known: known, channels: nil),
                                   image: { i in PlanarImage8(try PNG.read(paths[i])) }))
        })
    }

    /// DICOM / NIfTI input: scan with the ingest readers; per patient, read its series and render
    /// the slices in memory (`Ingest.renderSlice`).
    static func volumePlan(_ o: ExtractOptions, summary: inout Summary, errors: CSVAppender, isDone: (URL) throws -> Bool) throws -> Plan {
        let presets = o.windowPresets ?? CTWindow.presets
        let cts: [CTWindow]
        do { cts = try (o.windows ?? ["abdomen"]).map { try CTWindow.parse($0, presets: presets) } } catch {
            throw PipelineError.invalidOption(option: "--windows", reason: "\(error)")
        }
        guard !cts.isEmpty else { throw PipelineError.invalidOption(option: "--windows", reason: "no windows given") }
        if o.channels == .stacked && cts.count > 3 {
            throw PipelineError.invalidOption(option: "--channels", reason: "stacked images have 3 channels, got \(cts.count) windows")
        }
        if let s = o.size, s < 1 || s > 8192 { throw PipelineError.invalidOption(option: "--size", reason: "must be 1…8192, got \(s)") }
        let labels = o.channels == .separate ? cts.map(\.name) : [cts.map(\.name).joined(separator: "+")]
        let stored = o.channels == .separate
            ? cts.map { StoredWindow(name: $0.name, width: $0.width, level: $0.level) }
            : [StoredWindow(name: labels[0], width: .nan, level: .nan,
                            components: cts.map { StoredWindow(name: $0.name, width: $0.width, level: $0.level) })]

        var series: [(SeriesInfo, any VolumeReader)] = []
        for reader in o.readers {
            do {
                let (found, problems) = try reader.scan(o.input)
                series += found.map { ($0, reader) }
                if !problems.isEmpty { try errors.append(problems.map { [$0.path, $0.reason] }) }
            } catch {
                try errors.append([[o.input.path, "\(error)"]])
            }
        }
        var byPatient: [String: [(SeriesInfo, any VolumeReader)]] = [:]
        // Raw IDs, as ingest: an empty PatientID and a real 'unknown' collide (both unknown.h5) and are refused.
        for s in series { byPatient[s.0.patientID, default: []].append(s) }
        let patients = byPatient.keys.sorted()
        summary.patients = patients.count
        if patients.isEmpty { throw PipelineError.nothingToDo(reason: "\(o.input.path): no manifest.csv and no DICOM / NIfTI series found") }
        let clashes = patientStemCollisions(patients)
        var todo: [(String, [(SeriesInfo, any VolumeReader)])] = []
        for p in patients {
            guard o.shard.contains(patientID: p) else { summary.otherShards += 1; continue }
            if let clash = clashes[patientFileStem(p)] {
                summary.failed += 1
                try errors.append([[p, patientCollisionReason(p, clash)]])
                continue
            }
            let url = o.output.appendingPathComponent(FeatureStore.fileName(patientID: p))
            if try isDone(url) { summary.skipped += 1; continue }
            todo.append((p.isEmpty ? "unknown" : p, byPatient[p]!.sorted { $0.0.seriesUID < $1.0.seriesUID }))
        }
        let jobs = todo, channels = o.channels, size = o.size
        return Plan(count: jobs.count, estimate: { i in jobs[i].1.reduce(0) { $0 + max($1.0.files.count, 1) } * labels.count }, prepare: { i in
            let (patient, list) = jobs[i]
            var volumes: [Volume] = []
            var rows: [Row] = []
            var source: [(volume: Int, slice: Int, image: Int)] = []
            for (info, reader) in list {
                let v: Volume
                do { v = try reader.read(info) } catch {
                    return .failed(patient: patient, reason: "series \(info.seriesUID): \(Ingest.problem(for: error, info: info).reason)")
                }
                guard v.depth > 0, v.width > 0, v.height > 0 else { return .failed(patient: patient, reason: "series \(info.seriesUID): empty volume") }
                for k in 0..<v.depth {
                    // z as ingest's manifest records it (4 decimals).
                    let z = Float(String(format: "%.4f", v.sliceZ(k)))!
                    for (w, label) in labels.enumerated() {
                        rows.append(Row(study: v.provenance.studyUID, series: v.provenance.seriesUID, slice: k, z: z, window: label, path: ""))
                        source.append((volumes.count, k, w))
                    }
                }
                volumes.append(v)
            }
            // Slice order, then window order (as from a manifest).
            let order = rows.indices.sorted { (rows[$0].slice, source[$0].image) < (rows[$1].slice, source[$1].image) }
            let sortedRows = order.map { rows[$0] }, sortedSource = order.map { source[$0] }
            let v0 = volumes[0]
            let resamplers = volumes.map { v in size.map { Resampler(inWidth: v.width, inHeight: v.height, outWidth: $0, outHeight: $0) } }
            let vols = volumes
            return .job(PatientJob(patient: patient, rows: sortedRows, spacing: [v0.spacing.x, v0.spacing.y, v0.spacing.z], windows: stored,
                                   image: { i in
                let s = sortedSource[i]
                let window = channels == .separate ? [cts[s.image]] : cts
                return PlanarImage8(try Ingest.renderSlice(vols[s.volume], s.slice, windows: window, channels: channels,
                                                           resampler: resamplers[s.volume])[0])
            }))
        })
    }
}

/// A thread-safe sum of seconds.
final class TimeAccumulator: @unchecked Sendable {
    private let lock = NSLock()
    private var sum = 0.0
    func add(_ s: Double) { lock.lock(); sum += s; lock.unlock() }
    var total: Double { lock.lock(); defer { lock.unlock() }; return sum }
}
