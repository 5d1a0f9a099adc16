import AxialTensor
import Foundation

/// One pretraining image: a PNG path and its lesion boxes (empty: not a lesion slice).
public struct ViewSample: Sendable, Equatable {
    public var path: String
    public var boxes: [LesionBox]
    public init(path: String, boxes: [LesionBox] = []) { self.path = path; self.boxes = boxes }

    /// Samples from ingest's `manifest.csv` (`path` relative to its folder), boxes looked up by
    /// (patient_id, slice_index, series_uid) and by path. Unmatched slices get no boxes.
    public static func fromManifest(_ url: URL, lesions: LesionTable = LesionTable()) throws -> [ViewSample] {
        let rows = try LesionTable.readRows(url)
        guard let header = rows.first?.fields else { return [] }
        let c = try LesionTable.columns(header, ["patient_id", "slice_index", "path"], path: url.path)
        let series = header.firstIndex(of: "series_uid")
        let base = url.deletingLastPathComponent()
        var out = [ViewSample]()
        for row in rows.dropFirst() where !(row.fields.count == 1 && row.fields[0].isEmpty) {
            guard row.fields.count == header.count, let slice = Int(row.fields[c[1]]) else {
                throw LesionError.malformedRow(path: url.path, line: row.line, reason: "expected \(header.count) fields with an integer slice_index")
            }
            let path = base.appendingPathComponent(row.fields[c[2]]).path
            var boxes = lesions.boxes(patientID: row.fields[c[0]], sliceIndex: slice, seriesUID: series.map { row.fields[$0] })
            if boxes.isEmpty { boxes = lesions.boxes(forPath: path) }
            out.append(ViewSample(path: path, boxes: boxes))
        }
        return out
    }
}

/// A batch of MoCo v3 / LeCL views.
public struct ViewBatch: Sendable {
    public var step: Int
    /// [B, 3, size, size], normalised (view 1: blur p 1.0; view 2: blur p 0.1, solarize p 0.2).
    public var view1: Tensor, view2: Tensor
    /// [B]: 1 for lesion slices (view 1 = whole slice, view 2 = lesion crop), else 0.
    public var isLesion: Tensor
    /// The sample index behind each row (a failed sample is replaced by the next readable one).
    public var sampleIndices: [Int]
    /// "path: reason" for each unreadable image met while making the batch.
    public var failures: [String]
}

/// Background MoCo v3 / LeCL view loader: batch `step` is a pure function of (samples, seed,
/// step) — the epoch's order is a permutation seeded by (seed, epoch) and each sample's views use
/// `AugmentSeed.generator(seed:, step:, index:)` — so batches are identical whatever the number
/// of workers or their timing, and resuming at `startStep` continues the exact sequence.
/// Batches are made on `workers` threads, `prefetch` ahead of the training loop.
public final class ViewLoader: Sendable {
    public let samples: [ViewSample]
    public let batchSize: Int
    public let seed: UInt64
    public let config: AugmentConfig
    private let prefetcher: Prefetcher<ViewBatch>

    /// `rows`: the rows of each global batch this loader builds (a data-parallel rank's share;
    /// nil = all). Rows keep their global augmentation seeds, so the ranks' shares stacked in
    /// order are exactly the one-process batch.
    public init(samples: [ViewSample], batchSize: Int, seed: UInt64, config: AugmentConfig = AugmentConfig(),
                startStep: Int = 0, steps: Int? = nil, workers: Int = 2, prefetch: Int = 4, rows: Range<Int>? = nil) {
        precondition(!samples.isEmpty, "ViewLoader: no samples")
        precondition(batchSize >= 1, "ViewLoader: batch size \(batchSize) must be ≥ 1")
        precondition(rows.map { $0.lowerBound >= 0 && $0.upperBound <= batchSize && !$0.isEmpty } ?? true,
                     "ViewLoader: rows \(String(describing: rows)) outside batch 0..<\(batchSize)")
        self.samples = samples; self.batchSize = batchSize; self.seed = seed; self.config = config
        let s = samples, b = batchSize, c = config
        prefetcher = Prefetcher(start: startStep, end: steps.map { startStep + $0 }, workers: workers, capacity: prefetch) { step in
            ViewLoader.makeBatch(samples: s, batchSize: b, seed: seed, step: step, config: c, rows: rows)
        }
    }

    /// The next batch (waits if it is not ready); nil after `steps` batches or `stop()`.
    public func next() -> ViewBatch? { prefetcher.next() }

    /// Stops the background threads.
    public func stop() { prefetcher.stop() }

    /// The sample indices of batch `step`: epoch `step / ⌈n/B⌉`... each epoch a fresh permutation
    /// of all samples (seeded by seed and epoch), consumed B at a time; the last batch of an epoch
    /// wraps into the epoch's start when n is not a multiple of B.
    public static func batchIndices(count n: Int, batchSize: Int, seed: UInt64, step: Int) -> [Int] {
        let perEpoch = max(1, (n + batchSize - 1) / batchSize)
        let epoch = step / perEpoch, within = step % perEpoch
        var g = AugmentSeed.generator(seed: seed, step: epoch, index: 0, stream: 1)
        let order = g.permutation(n)
        return (0..<batchSize).map { order[(within * batchSize + $0) % n] }
    }

    /// Batch `step` (what the workers compute); with `rows`, only those rows of it (row r of the
    /// result = global row rows.lowerBound + r, with that global row's sample and augmentation seed).
    public static func makeBatch(samples: [ViewSample], batchSize: Int, seed: UInt64, step: Int, config: AugmentConfig,
                                 rows: Range<Int>? = nil) -> ViewBatch {
        let range = rows ?? 0..<batchSize
        let indices = Array(batchIndices(count: samples.count, batchSize: batchSize, seed: seed, step: step)[range])
        let n = range.count
        let s = config.size, per = 3 * s * s
        var v1 = [Float](repeating: 0, count: n * per), v2 = v1
        var lesion = [Float](repeating: 0, count: n)
        var used = [Int](), failures = [String]()
        for (local, first) in indices.enumerated() {
            let row = range.lowerBound + local
            var index = first
            var image: PlanarImage8? = nil
            for attempt in 0..<min(samples.count, 16) {
                index = (first + attempt) % samples.count
                do {
                    image = PlanarImage8(try PNG.read(URL(fileURLWithPath: samples[index].path)))
                    break
                } catch {
                    failures.append("\(samples[index].path): \(error)")
                }
            }
            used.append(index)
            guard let image else { continue }   // 16 unreadable in a row: this row stays zero
            var g = AugmentSeed.generator(seed: seed, step: step, index: row)
            let boxes = samples[index].boxes.map { $0.scaled(toWidth: image.width, height: image.height) }
            let (a, b, isLesion) = MoCoViews.views(image, boxes: boxes, config: config, generator: &g)
            v1.withUnsafeMutableBufferPointer { Transforms.normalize(a, mean: config.mean, std: config.std, into: $0.baseAddress! + local * per) }
            v2.withUnsafeMutableBufferPointer { Transforms.normalize(b, mean: config.mean, std: config.std, into: $0.baseAddress! + local * per) }
            lesion[local] = isLesion ? 1 : 0
        }
        return ViewBatch(step: step, view1: Tensor(shape: [n, 3, s, s], scalars: v1),
                         view2: Tensor(shape: [n, 3, s, s], scalars: v2),
                         isLesion: Tensor(shape: [n], scalars: lesion), sampleIndices: used, failures: failures)
    }
}

/// A batch for feature extraction: rows in input order.
public struct ExtractionBatch: Sendable {
    public var index: Int
    /// [n, 3, crop, crop] for the readable images of this batch.
    public var images: Tensor
    /// Positions (in the loader's path list) of the rows of `images`.
    public var positions: [Int]
    /// "path: reason" for images that could not be read (skipped).
    public var failures: [String]
}

/// Deterministic extraction loader: paths in order, `Preprocess` (resize, center crop,
/// normalise per the encoder), batches prepared on background threads.
public final class ExtractionLoader: Sendable {
    public let paths: [String]
    public let preprocess: Preprocess
    public let batchSize: Int
    private let prefetcher: Prefetcher<ExtractionBatch>

    public init(paths: [String], preprocess: Preprocess, batchSize: Int, workers: Int = 2, prefetch: Int = 4) {
        precondition(batchSize >= 1, "ExtractionLoader: batch size \(batchSize) must be ≥ 1")
        self.paths = paths; self.preprocess = preprocess; self.batchSize = batchSize
        let p = paths, pre = preprocess, b = batchSize
        prefetcher = Prefetcher(start: 0, end: (paths.count + batchSize - 1) / batchSize, workers: workers, capacity: prefetch) { k in
            var images = [PlanarImage8](), positions = [Int](), failures = [String]()
            for i in (k * b)..<min((k + 1) * b, p.count) {
                do {
                    images.append(PlanarImage8(try PNG.read(URL(fileURLWithPath: p[i]))))
                    positions.append(i)
                } catch { failures.append("\(p[i]): \(error)") }
            }
            return ExtractionBatch(index: k, images: pre.batch(images), positions: positions, failures: failures)
        }
    }

    public func next() -> ExtractionBatch? { prefetcher.next() }
    public func stop() { prefetcher.stop() }
}
