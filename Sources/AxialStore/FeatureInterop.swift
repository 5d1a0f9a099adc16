import CHDF5
import Foundation

/// The layouts of per-patient HDF5 feature files Axial reads.
///
/// - `axial`: Axial's own store (`feats`, `slice_index`, `z_mm`, `window`, provenance attributes;
///   since 0.1 also `coords`).
/// - `clear`: CLEAR's `extract_features.py` output: `feats [N, D]` only.
/// - `stamp`: STAMP: `feats [N, D]` (often float16) + `coords [N, 2]` (tile positions in µm),
///   attributes `extractor`, `code_hash`, … .
/// - `clam`: CLAM's `h5_files/`: `features [N, D]` + `coords [N, 2]` (patch positions in pixels).
///
/// A file of another layout has no slice index, z position or window: its rows are taken in file
/// order as the slices in order (slice index = row number), z is unknown (NaN) and all rows form one
/// window named `unnamed`. `coords` is used as (slice index, z mm) only when its `columns`
/// attribute says so (files Axial wrote, e.g. a `--clam-copy`); else it is taken as 2-D tile
/// positions and not used.
public enum FeatureFileLayout: String, Sendable, CaseIterable {
    case axial, clear, stamp, clam

    /// What the layout has, in words.
    public var contents: String {
        switch self {
        case .axial: return "feats + slice_index + z_mm + window"
        case .clear: return "feats only"
        case .stamp: return "feats + coords"
        case .clam: return "features + coords"
        }
    }

    public var displayName: String { self == .axial ? "Axial" : rawValue.uppercased() }
}

/// A feature file read whatever its layout, with what it lacked and what was assumed instead.
public struct LoadedFeatureFile: Sendable {
    public var features: PatientFeatures
    public var layout: FeatureFileLayout
    /// Datasets / attributes Axial uses that the file does not have.
    public var lacks: [String]
    /// What was assumed in their place.
    public var assumed: [String]
}

/// Collects the layouts of the files a stage read, to say once what other tools' files lacked.
public final class FeatureLayoutLog: @unchecked Sendable {
    private let lock = NSLock()
    private var byKey: [String: (layout: FeatureFileLayout, lacks: [String], assumed: [String], files: [String])] = [:]
    private var order: [String] = []

    public init() {}

    public func record(_ file: LoadedFeatureFile, name: String) {
        guard !(file.lacks.isEmpty && file.assumed.isEmpty) else { return }
        let key = "\(file.layout.rawValue)|\(file.lacks.joined(separator: ","))|\(file.assumed.joined(separator: ","))"
        lock.lock(); defer { lock.unlock() }
        if byKey[key] == nil { byKey[key] = (file.layout, file.lacks, file.assumed, []); order.append(key) }
        byKey[key]!.files.append(name)
    }

    /// One line per (layout, lacks, assumptions) group, e.g. `note: 12 feature file(s) in STAMP
    /// layout (feats + coords), e.g. a.h5, b.h5: they lack slice_index, …; assumed: slice order = row order, …`.
    public var lines: [String] {
        lock.lock(); defer { lock.unlock() }
        return order.map { key in
            let g = byKey[key]!
            let names = g.files.sorted()
            let example = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
            return "note: \(names.count) feature file(s) in \(g.layout.displayName) layout (\(g.layout.contents)), e.g. \(example): "
                + "they lack \(g.lacks.joined(separator: ", "))"
                + (g.assumed.isEmpty ? "" : "; assumed: \(g.assumed.joined(separator: "; "))")
        }
    }

    /// Number of files not in Axial's layout.
    public var foreignCount: Int {
        lock.lock(); defer { lock.unlock() }
        return byKey.values.filter { $0.layout != .axial }.reduce(0) { $0 + $1.files.count }
    }
}

extension FeatureStore {
    /// The `columns` attribute of the `coords` dataset Axial writes: `coords[:, 0]` = slice index,
    /// `coords[:, 1]` = z in mm.
    public static let coordsColumns = "slice_index,z_mm"
    /// The window name given to all rows of a file without windows.
    public static let unnamedWindow = "unnamed"

    /// The layout of the file at `url` (see `FeatureFileLayout`).
    public static func layout(of url: URL) throws -> FeatureFileLayout {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.io(path: path, reason: "no such file") }
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }
        return try layout(file, path: path)
    }

    static func layout(_ file: hid_t, path: String) throws -> FeatureFileLayout {
        if H5.exists(file, "feats") {
            if H5.attributeExists(file, "axial_version") && H5.exists(file, "slice_index") { return .axial }
            return H5.exists(file, "coords") ? .stamp : .clear
        }
        if H5.exists(file, "features") { return .clam }
        throw StoreError.invalid(path: path, object: "file",
                                 reason: "no 'feats' dataset (Axial, CLEAR, STAMP) and no 'features' dataset (CLAM): not a feature file")
    }

    /// Reads a feature file of any `FeatureFileLayout`. Axial's own files go through `read`;
    /// others are mapped as `FeatureFileLayout` describes, `fallbackPatientID` (e.g. the file name
    /// stem) standing in for a missing `patient_id` attribute.
    public static func readAnyLayout(_ url: URL, fallbackPatientID: String? = nil) throws -> LoadedFeatureFile {
        let path = url.path
        let kind = try layout(of: url)
        if kind == .axial {
            let f = try read(url).features
            return LoadedFeatureFile(features: f, layout: .axial, lacks: [], assumed: [])
        }
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }
        let featsName = kind == .clam ? "features" : "feats"
        let (featsID, dims) = try H5.openDataset(file, featsName, path: path)
        defer { H5Dclose(featsID) }
        guard dims.count == 2, dims[1] > 0 else {
            throw StoreError.invalid(path: path, object: featsName, reason: "expected [N, D] with D > 0, got shape \(dims)")
        }
        do {
            let type = H5Dget_type(featsID)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_FLOAT || H5Tget_class(type) == H5T_INTEGER else {
                throw StoreError.invalid(path: path, object: featsName, reason: "expected numeric values")
            }
        }
        let n = dims[0], d = dims[1]
        let feats: [Float] = try H5.readDataset(featsID, count: n * d, memoryType: axial_h5t_native_float(), zero: 0,
                                                name: featsName, path: path)
        var lacks: [String] = [], assumed: [String] = []

        // Slice positions: Axial-written coords, else row order.
        var sliceIndex = (0..<n).map { Int32($0) }
        var zMM = [Float](repeating: .nan, count: n)
        var haveSlices = false
        if H5.exists(file, "coords") {
            let (cid, cdims) = try H5.openDataset(file, "coords", path: path)
            defer { H5Dclose(cid) }
            let columns = H5.attributeExists(cid, "columns") ? (try? H5.readStringAttribute(cid, "columns", path: path)) : nil
            if columns == coordsColumns {
                guard cdims.count == 2, cdims[0] == n, cdims[1] == 2 else {
                    throw StoreError.invalid(path: path, object: "coords", reason: "shape \(cdims), expected [\(n), 2] (slice_index, z_mm)")
                }
                let c: [Double] = try H5.readDataset(cid, count: 2 * n, memoryType: axial_h5t_native_double(), zero: 0, name: "coords", path: path)
                for i in 0..<n {
                    let s = c[2 * i]
                    guard s.isFinite, s == s.rounded(), abs(s) < 1e9 else {
                        throw StoreError.invalid(path: path, object: "coords", reason: "row \(i): slice index \(s) is not an integer")
                    }
                    sliceIndex[i] = Int32(s); zMM[i] = Float(c[2 * i + 1])
                }
                haveSlices = true
            } else {
                guard cdims.first == n else {
                    throw StoreError.invalid(path: path, object: "coords", reason: "\(cdims.first ?? 0) rows, \(featsName) has \(n)")
                }
                assumed.append("coords read as 2-D tile positions (not slice positions), not used")
            }
        }
        if !haveSlices {
            lacks += ["slice_index", "z_mm"]
            assumed.append("slice order = row order (slice_index = row number)")
            assumed.append("z unknown (NaN)")
        }

        // Windows: Axial-written `window` + `windows`, else one unnamed window.
        var windows = [StoredWindow(name: unnamedWindow, width: .nan, level: .nan)]
        var window = [Int32](repeating: 0, count: n)
        if H5.exists(file, "window"), let text = try? H5.readStringAttribute(file, "windows", path: path),
           let list = try? JSONDecoder().decode([StoredWindow].self, from: Data(text.utf8)), !list.isEmpty {
            let (wid, wdims) = try H5.openDataset(file, "window", path: path)
            defer { H5Dclose(wid) }
            guard wdims == [n] else { throw StoreError.invalid(path: path, object: "window", reason: "shape \(wdims), expected [\(n)]") }
            window = try H5.readDataset(wid, count: n, memoryType: axial_h5t_native_int32(), zero: 0, name: "window", path: path)
            if let bad = window.first(where: { $0 < 0 || Int($0) >= list.count }) {
                throw StoreError.invalid(path: path, object: "window", reason: "index \(bad) outside the \(list.count) windows")
            }
            windows = list
        } else {
            lacks.append("window")
            assumed.append("one window ('\(unnamedWindow)')")
        }

        func string(_ names: [String]) -> String? {
            for name in names where H5.attributeExists(file, name) {
                if let s = try? H5.readStringAttribute(file, name, path: path), !s.isEmpty { return s }
            }
            return nil
        }
        let encoder = string(["encoder", "extractor", "model"])
        let sha = string(["encoder_sha256", "code_hash"])
        if encoder == nil { lacks.append("encoder") }
        if sha == nil { lacks.append("encoder_sha256") }
        let patient = string(["patient_id"]) ?? fallbackPatientID ?? url.deletingPathExtension().lastPathComponent
        var spacing = [Double.nan, .nan, .nan]
        if H5.attributeExists(file, "spacing_mm"),
           let s: [Double] = try? H5.readNumericAttribute(file, "spacing_mm", memoryType: axial_h5t_native_double(), zero: 0, path: path),
           s.count == 3 { spacing = s }
        let meta = FeatureStoreMetadata(axialVersion: string(["axial_version"]) ?? "", encoder: encoder ?? "unknown (\(kind.displayName) layout)",
                                        encoderSHA256: sha ?? "", windows: windows, patientID: patient,
                                        studyUID: string(["study_uid"]) ?? "", seriesUID: string(["series_uid"]) ?? "",
                                        spacingMM: spacing, preprocessingJSON: string(["preprocessing"]) ?? "{}",
                                        created: string(["created"]) ?? "")
        let f = PatientFeatures(metadata: meta, featDim: d, feats: feats, sliceIndex: sliceIndex, zMM: zMM, window: window)
        return LoadedFeatureFile(features: f, layout: kind, lacks: lacks, assumed: assumed)
    }

    /// Writes `features` in CLAM's `h5_files/` layout to `url` (atomically): `features [N, D]`
    /// float32, `coords [N, 2]` float32 = (slice index, z mm) with attribute `columns =
    /// "slice_index,z_mm"`, plus `window [N]` and the provenance attributes (extra to CLAM, which
    /// ignores them). CLAM's h5 loader reads `features` and `coords`.
    public static func writeCLAM(_ f: PatientFeatures, to url: URL) throws {
        let path = url.path
        guard f.featDim > 0, f.feats.count == f.count * f.featDim, f.zMM.count == f.count, f.window.count == f.count else {
            throw StoreError.invalid(path: path, object: "features", reason: "inconsistent shapes: \(f.feats.count) values, \(f.count) rows, D=\(f.featDim)")
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
                try f.feats.withUnsafeBytes {
                    try H5.writeDataset(file, "features", dims: [f.count, f.featDim], fileType: axial_h5t_ieee_f32le(),
                                        memoryType: axial_h5t_native_float(), bytes: $0, path: path)
                }
                try writeCoords(f, file: file, path: path)
                try f.window.withUnsafeBytes {
                    try H5.writeDataset(file, "window", dims: [f.count], fileType: axial_h5t_std_i32le(),
                                        memoryType: axial_h5t_native_int32(), bytes: $0, path: path)
                }
                let m = f.metadata
                let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys]
                let windowsJSON = String(decoding: try encoder.encode(m.windows), as: UTF8.self)
                for (name, value) in [("axial_version", m.axialVersion), ("encoder", m.encoder), ("encoder_sha256", m.encoderSHA256),
                                      ("windows", windowsJSON), ("patient_id", m.patientID), ("study_uid", m.studyUID),
                                      ("series_uid", m.seriesUID), ("preprocessing", m.preprocessingJSON), ("created", m.created)] {
                    try H5.writeStringAttribute(file, name, value, path: path)
                }
                try H5.writeNumericAttribute(file, "spacing_mm", m.spacingMM, fileType: axial_h5t_ieee_f64le(),
                                             memoryType: axial_h5t_native_double(), scalar: false, path: path)
            } catch {
                H5Fclose(file)
                throw error
            }
            try H5.check(H5Fclose(file), path, "file")
        }
    }

    /// `coords [N, 2]` float32 = (slice index, z mm), attribute `columns`.
    static func writeCoords(_ f: PatientFeatures, file: hid_t, path: String) throws {
        var coords = [Float](repeating: 0, count: 2 * f.count)
        for i in 0..<f.count { coords[2 * i] = Float(f.sliceIndex[i]); coords[2 * i + 1] = f.zMM[i] }
        try coords.withUnsafeBytes {
            try H5.writeDataset(file, "coords", dims: [f.count, 2], fileType: axial_h5t_ieee_f32le(),
                                memoryType: axial_h5t_native_float(), bytes: $0, path: path)
        }
        let id = try H5.check(H5Dopen2(file, "coords", H5.defaultPL), path, "coords")
        defer { H5Dclose(id) }
        try H5.writeStringAttribute(id, "columns", coordsColumns, path: path)
    }
}

extension PatientFeatures {
    /// Rows whose features contain NaN or ±Inf, ascending.
    public var nonFiniteRows: [Int] {
        guard featDim > 0 else { return [] }
        return (0..<count).filter { r in !feats[(r * featDim)..<((r + 1) * featDim)].allSatisfy(\.isFinite) }
    }
}
