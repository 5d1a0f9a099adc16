import CHDF5
import Foundation

/// Errors from the feature store and tables. Every case names the file and, where there is one,
/// the dataset / attribute / column.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// An HDF5 call failed on `path` while working on `object` (a dataset or attribute name, or "file").
    case hdf5(path: String, object: String, reason: String)
    /// A required dataset or attribute is absent.
    case missing(path: String, object: String)
    /// A dataset or attribute is there but has the wrong type, shape or value.
    case invalid(path: String, object: String, reason: String)
    /// A file could not be written / renamed.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .hdf5(let p, let o, let r): return "\(p): HDF5 error on '\(o)': \(r)"
        case .missing(let p, let o): return "\(p): missing '\(o)'"
        case .invalid(let p, let o, let r): return "\(p): '\(o)': \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        }
    }
}

/// Thin RAII-free helpers over the HDF5 C API. Every call that can fail is checked and turned into
/// a `StoreError` that names the file and the object.
enum H5 {
    static let defaultPL: hid_t = hid_t(H5P_DEFAULT)

    /// Reads (and clears) HDF5's error stack into one line.
    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        buffer.withUnsafeMutableBufferPointer { axial_h5_last_error($0.baseAddress!) }
        let inner = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let outer = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress! + 256) }
        switch (outer.isEmpty, inner.isEmpty) {
        case (true, true): return "unknown HDF5 error"
        case (false, true): return outer
        case (true, false): return inner
        case (false, false): return outer == inner ? outer : "\(outer) (\(inner))"
        }
    }

    @discardableResult
    static func check(_ id: hid_t, _ path: String, _ object: String) throws -> hid_t {
        if id < 0 { throw StoreError.hdf5(path: path, object: object, reason: lastError()) }
        return id
    }

    static func check(_ status: herr_t, _ path: String, _ object: String) throws {
        if status < 0 { throw StoreError.hdf5(path: path, object: object, reason: lastError()) }
    }

    /// A variable-length UTF-8 string type (h5py reads it as `str`). Caller closes it.
    static func utf8StringType() -> hid_t {
        let t = H5Tcopy(axial_h5t_c_s1())
        H5Tset_size(t, Int(bitPattern: UInt(bitPattern: -1)))  // H5T_VARIABLE = (size_t)-1
        H5Tset_cset(t, H5T_CSET_UTF8)
        H5Tset_strpad(t, H5T_STR_NULLTERM)
        return t
    }

    // MARK: writing

    static func writeStringAttribute(_ loc: hid_t, _ name: String, _ value: String, path: String) throws {
        let type = utf8StringType()
        defer { H5Tclose(type) }
        let space = try check(H5Screate(H5S_SCALAR), path, name)
        defer { H5Sclose(space) }
        let attr = try check(H5Acreate2(loc, name, type, space, defaultPL, defaultPL), path, name)
        defer { H5Aclose(attr) }
        try value.withCString { cstr in
            var pointer: UnsafePointer<CChar>? = cstr
            try check(H5Awrite(attr, type, &pointer), path, name)
        }
    }

    static func writeNumericAttribute<T>(_ loc: hid_t, _ name: String, _ values: [T], fileType: hid_t,
                                         memoryType: hid_t, scalar: Bool, path: String) throws {
        let space: hid_t
        if scalar {
            precondition(values.count == 1, "scalar attribute \(name) needs one value, got \(values.count)")
            space = try check(H5Screate(H5S_SCALAR), path, name)
        } else {
            var dims: [hsize_t] = [hsize_t(values.count)]
            space = try check(H5Screate_simple(1, &dims, nil), path, name)
        }
        defer { H5Sclose(space) }
        let attr = try check(H5Acreate2(loc, name, fileType, space, defaultPL, defaultPL), path, name)
        defer { H5Aclose(attr) }
        try values.withUnsafeBytes { try check(H5Awrite(attr, memoryType, $0.baseAddress), path, name) }
    }

    /// Writes a contiguous dataset with the given dims from `bytes` in `memoryType`.
    static func writeDataset(_ file: hid_t, _ name: String, dims: [Int], fileType: hid_t, memoryType: hid_t,
                             bytes: UnsafeRawBufferPointer, chunkRows: Int? = nil, path: String) throws {
        var hdims = dims.map { hsize_t($0) }
        let space = try check(H5Screate_simple(Int32(dims.count), &hdims, nil), path, name)
        defer { H5Sclose(space) }
        let dcpl = try check(H5Pcreate(axial_h5p_dataset_create()), path, name)
        defer { H5Pclose(dcpl) }
        if let rows = chunkRows, dims[0] > 0 {
            var chunk = hdims
            chunk[0] = hsize_t(max(1, min(rows, dims[0])))
            try check(H5Pset_chunk(dcpl, Int32(dims.count), &chunk), path, name)
        }
        let dataset = try check(H5Dcreate2(file, name, fileType, space, defaultPL, dcpl, defaultPL), path, name)
        defer { H5Dclose(dataset) }
        if dims.reduce(1, *) > 0 {
            try check(H5Dwrite(dataset, memoryType, axial_h5s_all(), axial_h5s_all(), defaultPL, bytes.baseAddress),
                      path, name)
        }
    }

    // MARK: reading

    static func exists(_ loc: hid_t, _ name: String) -> Bool { H5Lexists(loc, name, defaultPL) > 0 }
    static func attributeExists(_ loc: hid_t, _ name: String) -> Bool { H5Aexists(loc, name) > 0 }

    /// Opens a dataset and returns (id, dims). Caller closes the id.
    static func openDataset(_ file: hid_t, _ name: String, path: String) throws -> (hid_t, [Int]) {
        guard exists(file, name) else { throw StoreError.missing(path: path, object: name) }
        let dataset = try check(H5Dopen2(file, name, defaultPL), path, name)
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { H5Dclose(dataset); throw StoreError.hdf5(path: path, object: name, reason: lastError()) }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        guard dims.prefix(rank).allSatisfy({ $0 < UInt64(Int.max) }) else {
            H5Dclose(dataset)
            throw StoreError.invalid(path: path, object: name, reason: "dimensions \(Array(dims.prefix(rank))) are too large")
        }
        return (dataset, Array(dims.prefix(rank)).map { Int($0) })
    }

    /// Reads a whole dataset converted to `memoryType` into an array of `T`.
    static func readDataset<T>(_ dataset: hid_t, count: Int, memoryType: hid_t, zero: T, name: String,
                               path: String) throws -> [T] {
        var values = [T](repeating: zero, count: count)
        if count > 0 {
            try values.withUnsafeMutableBytes {
                try check(H5Dread(dataset, memoryType, axial_h5s_all(), axial_h5s_all(), defaultPL, $0.baseAddress),
                          path, name)
            }
        }
        return values
    }

    static func readStringAttribute(_ loc: hid_t, _ name: String, path: String) throws -> String {
        guard attributeExists(loc, name) else { throw StoreError.missing(path: path, object: name) }
        let attr = try check(H5Aopen(loc, name, defaultPL), path, name)
        defer { H5Aclose(attr) }
        let fileType = H5Aget_type(attr)
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == H5T_STRING else {
            throw StoreError.invalid(path: path, object: name, reason: "expected a string attribute")
        }
        if H5Tis_variable_str(fileType) > 0 {
            let type = utf8StringType()
            defer { H5Tclose(type) }
            var pointer: UnsafeMutablePointer<CChar>? = nil
            try check(H5Aread(attr, type, &pointer), path, name)
            guard let p = pointer else { return "" }
            let s = String(cString: p)
            free(p)
            return s
        }
        // Fixed-length string (written by another tool): read the raw bytes.
        let size = H5Tget_size(fileType)
        var bytes = [CChar](repeating: 0, count: size + 1)
        let type = H5Tcopy(fileType)
        defer { H5Tclose(type) }
        try check(H5Aread(attr, type, &bytes), path, name)
        return bytes.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func readNumericAttribute<T>(_ loc: hid_t, _ name: String, memoryType: hid_t, zero: T,
                                        path: String) throws -> [T] {
        guard attributeExists(loc, name) else { throw StoreError.missing(path: path, object: name) }
        let attr = try check(H5Aopen(loc, name, defaultPL), path, name)
        defer { H5Aclose(attr) }
        let fileType = H5Aget_type(attr)
        defer { H5Tclose(fileType) }
        let cls = H5Tget_class(fileType)
        guard cls == H5T_INTEGER || cls == H5T_FLOAT else {
            throw StoreError.invalid(path: path, object: name, reason: "expected a numeric attribute")
        }
        let space = H5Aget_space(attr)
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        var values = [T](repeating: zero, count: count)
        try values.withUnsafeMutableBytes { try check(H5Aread(attr, memoryType, $0.baseAddress), path, name) }
        return values
    }
}
