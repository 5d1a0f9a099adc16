import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

/// Options of the extract stage (`axial extract`).
public struct ExtractOptions: Sendable {
    /// The ingest output folder (holds `manifest.csv`).
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
    public var windows: [String]?
    public var progress: Progress.Style?

    public init(input: URL, output: URL, encoder: String, weights: URL? = nil, seed: UInt64 = 0, batchSize: Int = 32,
                precision: FeaturePrecision = .float32, shard: Shard = .all, windows: [String]? = nil, progress: Progress.Style? = nil) {
        self.input = input; self.output = output; self.encoder = encoder; self.weights = weights; self.seed = seed
        self.batchSize = batchSize; self.precision = precision; self.shard = shard; self.windows = windows; self.progress = progress
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
public enum Extract {
    public static let errorsHeader = ["patient_id", "reason"]

    /// Sets the kernels' worker count (`--threads`).
    public static func setWorkerThreads(_ n: Int) { Parallel.workerCount = max(1, n) }

    public struct Summary: Sendable {
        public var patients = 0, written = 0, skipped = 0, failed = 0, otherShards = 0, slices = 0
        public var seconds = 0.0
        public var output: URL
        public var text: String {
            let rate = seconds > 0 ? String(format: "%.1f", Double(slices) / seconds) : "-"
            return "extract: \(patients) patients, \(written) written, \(skipped) already complete, \(failed) failed"
                + (otherShards > 0 ? ", \(otherShards) left to other shards" : "")
                + "; \(slices) images embedded (\(rate) img/s) → \(output.path)"
        }
    }

    struct Row { var study: String, series: String, slice: Int, z: Float, window: String, path: String }

    /// Preprocessing of an encoder as `Transforms.Preprocess`.
    public static func preprocess(for spec: EncoderSpec) -> Preprocess {
        let p = spec.preprocessing
        let resize = Int((Double(p.inputSize) / p.cropPct).rounded(.down))
        return Preprocess(resize: .shorterSide(resize), crop: p.inputSize,
                          interpolation: Interpolation(rawValue: p.interpolation) ?? .bicubic,
                          mean: p.mean.map(Double.init), std: p.std.map(Double.init))
    }

    public static func run(_ o: ExtractOptions) throws -> Summary {
        let start = Date()
        let spec = try EncoderRegistry.spec(o.encoder)
        guard o.batchSize >= 1 else { throw PipelineError.invalidOption(option: "--batch", reason: "must be ≥ 1, got \(o.batchSize)") }
        let manifestURL = o.input.appendingPathComponent("manifest.csv")
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
            byPatient[r[cp], default: []].append(Row(study: r[cst], series: r[cse], slice: slice, z: z, window: r[cw], path: r[cpa]))
        }
        let windows = o.windows ?? labels
        for w in windows where !labels.contains(w) {
            throw PipelineError.invalidOption(option: "--windows", reason: "window '\(w)' is not in \(manifestURL.path) (has \(labels.joined(separator: ", ")))")
        }
        let stored = windows.map { label -> StoredWindow in
            if let w = try? CTWindow.parse(label) { return StoredWindow(name: label, width: w.width, level: w.level) }
            return StoredWindow(name: label, width: .nan, level: .nan)   // stacked "a+b+c" label
        }

        // Model and provenance.
        let model = try EncoderRegistry.load(o.encoder, weights: o.weights, seed: o.seed)
        let sha = try o.weights.map { try SHA256.hex(fileAt: $0) } ?? "random-init-seed-\(o.seed)"
        let pre = preprocess(for: spec)
        let preJSON = try String(decoding: JSONSerialization.data(withJSONObject: [
            "resize_shorter_side": { if case .shorterSide(let s) = pre.resize { return s } else { return 0 } }(),
            "crop": pre.cropHeight, "interpolation": pre.interpolation.rawValue, "mean": pre.mean, "std": pre.std,
            "crop_pct": spec.preprocessing.cropPct, "input": "8-bit PNG → RGB (gray replicated) → [0, 1]",
            "feature": "encode (timm forward_head pre_logits)", "batch": o.batchSize,
        ] as [String: Any], options: [.sortedKeys]), as: UTF8.self)

        try FileManager.default.createDirectory(at: o.output, withIntermediateDirectories: true)
        var summary = Summary(output: o.output)
        let patients = byPatient.keys.sorted()
        summary.patients = patients.count
        var todo: [(String, [Row])] = []
        for p in patients {
            guard o.shard.contains(patientID: p) else { summary.otherShards += 1; continue }
            let url = o.output.appendingPathComponent(FeatureStore.fileName(patientID: p))
            if FeatureStore.isComplete(url) { summary.skipped += 1; continue }
            let windowIndex = Dictionary(uniqueKeysWithValues: windows.enumerated().map { ($1, $0) })
            let rows = byPatient[p]!.filter { windowIndex[$0.window] != nil }
                .sorted { ($0.slice, windowIndex[$0.window]!) < ($1.slice, windowIndex[$1.window]!) }
            if !rows.isEmpty { todo.append((p, rows)) }
        }
        let errors = try CSVAppender(url: o.output.appendingPathComponent("extract_errors.csv"), header: errorsHeader)
        let progress = Progress(label: "extract \(o.encoder)", total: todo.reduce(0) { $0 + $1.1.count }, unit: "img", style: o.progress)
        let d = model.featureDimension
        for (patient, rows) in todo {
            do {
                let paths = rows.map { o.input.appendingPathComponent($0.path).path }
                let loader = ExtractionLoader(paths: paths, preprocess: pre, batchSize: o.batchSize)
                defer { loader.stop() }
                var feats = [Float](repeating: 0, count: rows.count * d)
                var done = 0
                while let batch = loader.next() {
                    if let f = batch.failures.first { throw PipelineError.io(path: patient, reason: f) }
                    let y = withNoGrad { model.encode(batch.images) }
                    precondition(y.shape == [batch.positions.count, d], "extract: encoder output \(y.shape)")
                    y.withUnsafeBufferPointer { src in
                        for (r, pos) in batch.positions.enumerated() {
                            feats.withUnsafeMutableBufferPointer { dst in
                                (dst.baseAddress! + pos * d).update(from: src.baseAddress! + r * d, count: d)
                            }
                        }
                    }
                    done += batch.positions.count
                    progress.advance(by: batch.positions.count)
                }
                guard done == rows.count else { throw PipelineError.io(path: patient, reason: "embedded \(done) of \(rows.count) images") }
                let zs = Array(Set(rows.map(\.slice))).sorted().compactMap { s in rows.first { $0.slice == s }?.z }
                var gaps = zip(zs.dropFirst(), zs).map { abs($0 - $1) }.sorted()
                let dz = gaps.isEmpty ? Double.nan : Double(gaps[gaps.count / 2])
                gaps.removeAll()
                let meta = FeatureStoreMetadata(encoder: o.encoder, encoderSHA256: sha, windows: stored, patientID: patient,
                                                studyUID: rows[0].study, seriesUID: rows[0].series, spacingMM: [.nan, .nan, dz],
                                                preprocessingJSON: preJSON)
                let pf = PatientFeatures(metadata: meta, featDim: d, feats: feats, sliceIndex: rows.map { Int32($0.slice) },
                                         zMM: rows.map(\.z), window: rows.map { Int32(windows.firstIndex(of: $0.window)!) })
                try FeatureStore.write(pf, to: o.output.appendingPathComponent(FeatureStore.fileName(patientID: patient)), precision: o.precision)
                summary.written += 1
                summary.slices += rows.count
            } catch {
                summary.failed += 1
                try? errors.append([[patient, "\(error)"]])
                progress.message("extract: patient \(patient) skipped: \(error)")
            }
        }
        progress.finish()
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }
}
