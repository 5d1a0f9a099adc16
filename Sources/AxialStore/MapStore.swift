import CHDF5
import Foundation

/// One 2-D float32 map per named image in one HDF5 file (`axial anomaly test` → anomaly_maps.h5):
/// a dataset per image at the file's root, shape [height, width], readable with h5py
/// (`h5py.File(p)[name][()]`). Names must not contain "/" (no groups) and must be unique.
public enum MapStore {
    public struct Map: Sendable, Equatable {
        public var name: String
        public var height: Int
        public var width: Int
        public var values: [Float]
        public init(name: String, height: Int, width: Int, values: [Float]) {
            self.name = name; self.height = height; self.width = width; self.values = values
        }
    }

    /// Writes all maps (atomic: temp file + rename).
    public static func write(_ maps: [Map], to url: URL) throws {
        let path = url.path
        var seen = Set<String>()
        for m in maps {
            guard !m.name.isEmpty, !m.name.contains("/"), m.name != "." else {
                throw StoreError.invalid(path: path, object: m.name, reason: "a map name must be non-empty and without '/'")
            }
            guard seen.insert(m.name).inserted else { throw StoreError.invalid(path: path, object: m.name, reason: "duplicate map name") }
            guard m.height > 0, m.width > 0, m.values.count == m.height * m.width else {
                throw StoreError.invalid(path: path, object: m.name, reason: "\(m.values.count) values for \(m.height)×\(m.width)")
            }
        }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: url.deletingLastPathComponent().path, reason: "cannot create folder: \(error.localizedDescription)")
        }
        axial_h5_silence_errors()
        try AtomicFile.withTemporary(for: url) { temporary in
            let file = try H5.check(H5Fcreate(temporary.path, axial_h5f_acc_excl(), H5.defaultPL, H5.defaultPL), path, "file")
            do {
                for m in maps {
                    try m.values.withUnsafeBytes {
                        try H5.writeDataset(file, m.name, dims: [m.height, m.width], fileType: axial_h5t_ieee_f32le(),
                                            memoryType: axial_h5t_native_float(), bytes: $0, path: path)
                    }
                }
            } catch {
                H5Fclose(file)
                throw error
            }
            try H5.check(H5Fclose(file), path, "file")
        }
    }

    /// Reads the maps `names` (each a 2-D float dataset).
    public static func read(_ url: URL, names: [String]) throws -> [Map] {
        let path = url.path
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }
        return try names.map { name in
            let (id, dims) = try H5.openDataset(file, name, path: path)
            defer { H5Dclose(id) }
            guard dims.count == 2 else { throw StoreError.invalid(path: path, object: name, reason: "shape \(dims), expected [H, W]") }
            let v: [Float] = try H5.readDataset(id, count: dims[0] * dims[1], memoryType: axial_h5t_native_float(), zero: 0,
                                                name: name, path: path)
            return Map(name: name, height: dims[0], width: dims[1], values: v)
        }
    }
}
