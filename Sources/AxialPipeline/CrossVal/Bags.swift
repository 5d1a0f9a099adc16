import AxialCore
import AxialEval
import AxialStore
import AxialTensor
import Foundation

/// Errors of the MIL stages (bags, crossval, deploy): each names the file and what is wrong.
public enum MILError: Error, CustomStringConvertible, Sendable {
    case features(path: String, reason: String)
    case keySlices(path: String, reason: String)
    case model(path: String, reason: String)
    case options(String)

    public var description: String {
        switch self {
        case .features(let p, let r): return "\(p): \(r)"
        case .keySlices(let p, let r): return "\(p): \(r)"
        case .model(let p, let r): return "\(p): \(r)"
        case .options(let m): return m
        }
    }
}

/// A feature file with NaN or ±Inf values (a failed or overflowing extraction): which patient,
/// file and rows. Crossval / deploy stop on it, or with `--skip-nonfinite` exclude the patient.
public struct NonFiniteFeatures: Error, CustomStringConvertible, Sendable {
    public var patientID: String
    public var path: String
    public var rows: [Int]
    public var sliceIndex: [Int]
    public var total: Int

    public var description: String {
        let shown = zip(rows, sliceIndex).prefix(5).map { "row \($0) (slice \($1))" }.joined(separator: ", ")
        return "\(path): patient '\(patientID)': \(rows.count) of \(total) feature row(s) contain NaN or Inf: \(shown)\(rows.count > 5 ? ", …" : "")"
    }
}

/// One patient's instances (feature-store rows) in slice order, after window selection.
public struct PatientBag: Sendable {
    public var patientID: String
    public var dimension: Int
    /// Row-major [count, dimension].
    public var features: [Float]
    public var sliceIndex: [Int]
    public var zMM: [Float]
    /// Window name of each row.
    public var window: [String]
    /// Who made the features: "encoder (weights sha256 abcdef012345…)", or the other tool's layout.
    public var provenance: String = ""
    /// Tokens per row: 1 for pooled features; K for dense tokens (a row = K tokens of `dimension / K`).
    public var tokens = 1
    public var count: Int { sliceIndex.count }

    /// The rows at `rows` (in the given order).
    public func subset(_ rows: [Int]) -> PatientBag {
        var f = [Float](); f.reserveCapacity(rows.count * dimension)
        for r in rows { f.append(contentsOf: features[(r * dimension)..<((r + 1) * dimension)]) }
        return PatientBag(patientID: patientID, dimension: dimension, features: f, sliceIndex: rows.map { sliceIndex[$0] },
                          zMM: rows.map { zMM[$0] }, window: rows.map { window[$0] }, provenance: provenance, tokens: tokens)
    }
}

/// Bag building from the HDF5 feature store (`<patient>.h5`, AxialStore): chosen windows, a
/// maximum bag size with key-slice-aware sampling, zero padding + mask for batching.
public enum Bags {
    /// Reads a patient's file — Axial's layout or another tool's (CLEAR, STAMP, CLAM:
    /// `FeatureStore.readAnyLayout`; what it lacked is recorded in `layouts`) — and keeps the rows
    /// of the chosen windows (nil: all windows). A file with NaN / Inf features throws
    /// `NonFiniteFeatures` naming the patient, the file and the rows.
    ///
    /// `denseTokens`: the rows are the file's `dense_tokens` (K tokens of width D per slice, a row
    /// of K·D values, `tokens` = K) instead of `feats`; a file without them is an error naming it.
    public static func load(_ url: URL, patientID: String, windows: [String]? = nil, layouts: FeatureLayoutLog? = nil,
                            denseTokens: Bool = false) throws -> PatientBag {
        var pf: PatientFeatures
        var tokens = 1
        do {
            let loaded = try FeatureStore.readAnyLayout(url, fallbackPatientID: patientID)
            layouts?.record(loaded, name: url.lastPathComponent)
            pf = loaded.features
            if denseTokens {
                guard let (t, _) = try FeatureStore.readDenseTokens(url) else {
                    throw MILError.features(path: url.path, reason: "has no dense_tokens dataset (--tokens dense needs files from axial extract --encoder clip_rn50 --tokens dense)")
                }
                pf.feats = t.values; pf.featDim = t.tokensPerRow * t.dimension; tokens = t.tokensPerRow
            }
        } catch let e as MILError { throw e } catch {
            throw MILError.features(path: url.path, reason: "cannot read the feature file: \(error)")
        }
        let bad = pf.nonFiniteRows
        if !bad.isEmpty {
            throw NonFiniteFeatures(patientID: patientID, path: url.path, rows: bad, sliceIndex: bad.map { Int(pf.sliceIndex[$0]) }, total: pf.count)
        }
        let names = pf.metadata.windows.map(\.name)
        var keep = Array(0..<names.count)
        if let windows {
            keep = try windows.map { w in
                guard let i = names.firstIndex(of: w) else {
                    throw MILError.features(path: url.path, reason: "window '\(w)' is not in this file (windows: \(names.joined(separator: ", ")))")
                }
                return i
            }
        }
        let keepSet = Set(keep)
        var rows: [Int] = []
        for r in 0..<pf.count {
            let w = Int(pf.window[r])
            guard w >= 0 && w < max(names.count, 1) else {
                throw MILError.features(path: url.path, reason: "row \(r) has window index \(w), the file lists \(names.count) window(s)")
            }
            if names.isEmpty || keepSet.contains(w) { rows.append(r) }
        }
        guard !rows.isEmpty else { throw MILError.features(path: url.path, reason: "no rows left after choosing windows \(windows ?? [])") }
        let all = PatientBag(patientID: patientID, dimension: pf.featDim, features: pf.feats, sliceIndex: pf.sliceIndex.map(Int.init),
                             zMM: pf.zMM, window: pf.window.map { names.isEmpty ? "\($0)" : names[Int($0)] },
                             provenance: pf.metadata.encoderSHA256.isEmpty ? pf.metadata.encoder
                                : "\(pf.metadata.encoder) (weights sha256 \(pf.metadata.encoderSHA256.prefix(12))…)", tokens: tokens)
        return rows.count == pf.count ? all : all.subset(rows)
    }

    /// Key slices from a CSV with columns `patient_id, slice_index` (other columns ignored).
    public static func readKeySlices(_ url: URL) throws -> [String: Set<Int>] {
        let table: CSVTable
        do { table = try CSVTable.read(url) } catch { throw MILError.keySlices(path: url.path, reason: "\(error)") }
        guard let pc = table.header.firstIndex(of: "patient_id"), let sc = table.header.firstIndex(of: "slice_index") else {
            throw MILError.keySlices(path: url.path, reason: "needs columns patient_id and slice_index (columns: \(table.header.joined(separator: ", ")))")
        }
        var out: [String: Set<Int>] = [:]
        for (r, row) in table.rows.enumerated() {
            guard let s = Int(row[sc].trimmingCharacters(in: .whitespaces)) else {
                throw MILError.keySlices(path: url.path, reason: "line \(r + 2): slice_index '\(row[sc])' is not an integer")
            }
            out[row[pc].trimmingCharacters(in: .whitespaces), default: []].insert(s)
        }
        return out
    }

    /// Rows to keep for a bag of `count` rows limited to `maxSize`: every row if it fits; else the
    /// rows of key slices (a random subset of them if they alone exceed `maxSize`), filled at random
    /// with other rows; returned in ascending order (slice order kept).
    public static func sampleRows(sliceIndex: [Int], maxSize: Int?, keySlices: Set<Int>, rng: inout RandomGenerator) -> [Int] {
        let n = sliceIndex.count
        guard let maxSize, n > maxSize else { return Array(0..<n) }
        var key = (0..<n).filter { keySlices.contains(sliceIndex[$0]) }
        var other = (0..<n).filter { !keySlices.contains(sliceIndex[$0]) }
        if key.count >= maxSize {
            rng.shuffle(&key)
            return Array(key.prefix(maxSize)).sorted()
        }
        rng.shuffle(&other)
        return (key + other.prefix(maxSize - key.count)).sorted()
    }

    /// Zero-padded batch [B, Nmax, D] and mask [B, Nmax] (1 = real row).
    public static func batch(_ bags: [PatientBag]) -> (bags: Tensor, mask: Tensor) {
        precondition(!bags.isEmpty, "batch: no bags")
        let d = bags[0].dimension, nmax = bags.map(\.count).max()!
        var x = [Float](repeating: 0, count: bags.count * nmax * d)
        var m = [Float](repeating: 0, count: bags.count * nmax)
        for (b, bag) in bags.enumerated() {
            precondition(bag.dimension == d, "batch: bag \(bag.patientID) has D = \(bag.dimension), others \(d)")
            x.replaceSubrange((b * nmax * d)..<(b * nmax * d + bag.count * d), with: bag.features)
            for i in 0..<bag.count { m[b * nmax + i] = 1 }
        }
        return (Tensor(shape: [bags.count, nmax, d], scalars: x), Tensor(shape: [bags.count, nmax], scalars: m))
    }
}

/// Per-feature standardisation fitted on a training fold: x ↦ (x − mean) / std over every row
/// (slice × window) of the training patients' bags, std floored at 1e-6 (a constant feature gets
/// std 1). Stored with each fold model (`standardize.mean`, `standardize.std`) and applied by
/// deploy, so a head sees features on the scale it was trained on whatever the encoder's output
/// scale (ViT class tokens after LayerNorm, CLIP embeddings, MambaOut pre-logits differ by 10–100×).
public struct Standardizer: Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count, "Standardizer: \(mean.count) means vs \(std.count) stds")
        self.mean = mean; self.std = std
    }

    /// Fits on all rows of `bags` (Double accumulation). Dense-token bags (`tokens` K > 1) are
    /// fitted per channel over every token of every row: statistics of width `dimension / K`.
    public init(fitting bags: [PatientBag]) {
        let k = bags.first?.tokens ?? 1
        let d = (bags.first?.dimension ?? 0) / k
        var sum = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        var n = 0.0
        for bag in bags {
            for r in 0..<(bag.count * k) {
                let base = r * d
                for j in 0..<d { let v = Double(bag.features[base + j]); sum[j] += v; sq[j] += v * v }
            }
            n += Double(bag.count * k)
        }
        let m = sum.map { $0 / Swift.max(n, 1) }
        let s = (0..<d).map { j -> Float in
            let variance = Swift.max(0, sq[j] / Swift.max(n, 1) - m[j] * m[j])
            let sd = variance.squareRoot()
            return sd < 1e-6 || !sd.isFinite ? 1 : Float(sd)
        }
        self.init(mean: m.map { Float($0) }, std: s)
    }

    /// Standardised batch [B, N, D] (padding rows change too; they are masked in every head); a
    /// dense-token batch [B, N, K·D] is standardised per token with the D statistics.
    public func apply(_ x: Tensor) -> Tensor {
        let d = mean.count, last = x.shape.last ?? 0
        precondition(d > 0 && last % d == 0, "Standardizer: features \(x.shape) vs \(mean.count) statistics")
        let y = last == d ? x : x.reshaped(Array(x.shape.dropLast()) + [last / d, d])
        let z = (y - Tensor(shape: [mean.count], scalars: mean)) / Tensor(shape: [std.count], scalars: std)
        return last == d ? z : z.reshaped(x.shape)
    }
}
