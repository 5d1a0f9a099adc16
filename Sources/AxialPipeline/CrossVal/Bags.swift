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
    public var count: Int { sliceIndex.count }

    /// The rows at `rows` (in the given order).
    public func subset(_ rows: [Int]) -> PatientBag {
        var f = [Float](); f.reserveCapacity(rows.count * dimension)
        for r in rows { f.append(contentsOf: features[(r * dimension)..<((r + 1) * dimension)]) }
        return PatientBag(patientID: patientID, dimension: dimension, features: f, sliceIndex: rows.map { sliceIndex[$0] },
                          zMM: rows.map { zMM[$0] }, window: rows.map { window[$0] })
    }
}

/// Bag building from the HDF5 feature store (`<patient>.h5`, AxialStore): chosen windows, a
/// maximum bag size with key-slice-aware sampling, zero padding + mask for batching.
public enum Bags {
    /// Reads a patient's file and keeps the rows of the chosen windows (nil: all windows).
    public static func load(_ url: URL, patientID: String, windows: [String]? = nil) throws -> PatientBag {
        let pf: PatientFeatures
        do { pf = try FeatureStore.read(url).features } catch {
            throw MILError.features(path: url.path, reason: "cannot read the feature file: \(error)")
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
                             zMM: pf.zMM, window: pf.window.map { names.isEmpty ? "\($0)" : names[Int($0)] })
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
