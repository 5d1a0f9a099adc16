import CHDF5
import Foundation

/// The version string written to every store (`axial_version` attribute).
public let axialVersion = "0.1.0"

/// A CT window as recorded in a store's `windows` attribute (JSON `[{"name","width","level"}]`).
/// An entry of the `windows` attribute: `{"name", "width", "level"}`, or for a stacked label
/// (`abdomen+lung+bone`, one RGB image per slice) `{"name", "width": null, "level": null,
/// "components": [{"name", "width", "level"}, …]}` with the window of each channel (R, G, B).
/// Width / level NaN are written as JSON `null` and read back as NaN.
public struct StoredWindow: Codable, Sendable, Equatable {
    public var name: String
    public var width: Double
    public var level: Double
    /// The windows of a stacked label's channels, in channel order; nil for a single window.
    public var components: [StoredWindow]?
    public init(name: String, width: Double, level: Double, components: [StoredWindow]? = nil) {
        self.name = name; self.width = width; self.level = level; self.components = components
    }

    enum CodingKeys: String, CodingKey { case name, width, level, components }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        width = try c.decodeIfPresent(Double.self, forKey: .width) ?? .nan
        level = try c.decodeIfPresent(Double.self, forKey: .level) ?? .nan
        components = try c.decodeIfPresent([StoredWindow].self, forKey: .components)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        if width.isFinite { try c.encode(width, forKey: .width) } else { try c.encodeNil(forKey: .width) }
        if level.isFinite { try c.encode(level, forKey: .level) } else { try c.encodeNil(forKey: .level) }
        try c.encodeIfPresent(components, forKey: .components)
    }

    /// Equal names, components and widths / levels (NaN equal to NaN).
    public static func == (a: StoredWindow, b: StoredWindow) -> Bool {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return a.name == b.name && same(a.width, b.width) && same(a.level, b.level) && a.components == b.components
    }
}

/// On-disk element type of `feats`.
public enum FeaturePrecision: String, Sendable, Equatable, CaseIterable {
    /// IEEE binary32 little-endian (`<f4`).
    case float32
    /// IEEE binary16 little-endian (`<f2`, numpy's float16); values are rounded to nearest even.
    case float16
}

/// Per-patient attributes of a feature store (ARCHITECTURE.md "Feature store").
public struct FeatureStoreMetadata: Sendable, Equatable {
    public var axialVersion: String
    /// Encoder name (registry name or checkpoint file name).
    public var encoder: String
    /// SHA-256 (hex) of the encoder weights file.
    public var encoderSHA256: String
    /// The windows that `window` indexes, in order.
    public var windows: [StoredWindow]
    public var patientID: String
    public var studyUID: String
    public var seriesUID: String
    /// (x, y, z) voxel spacing in mm of the source volume (float64 [3] attribute).
    public var spacingMM: [Double]
    /// Preprocessing as a JSON object text (resize, mean/std, …); must parse as JSON.
    public var preprocessingJSON: String
    /// ISO 8601 creation time (UTC).
    public var created: String

    public init(axialVersion: String = AxialStore.axialVersion, encoder: String, encoderSHA256: String,
                windows: [StoredWindow], patientID: String, studyUID: String, seriesUID: String,
                spacingMM: [Double], preprocessingJSON: String = "{}", created: String = FeatureStoreMetadata.now()) {
        self.axialVersion = axialVersion; self.encoder = encoder; self.encoderSHA256 = encoderSHA256
        self.windows = windows; self.patientID = patientID; self.studyUID = studyUID; self.seriesUID = seriesUID
        self.spacingMM = spacingMM; self.preprocessingJSON = preprocessingJSON; self.created = created
    }

    /// The current time as ISO 8601 UTC, e.g. `2024-05-01T12:00:00Z`.
    public static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date())
    }
}

/// The contents of one `<patient_id>.h5`: `feats [N, D]` with one row per slice × window in slice
/// order, and the per-row `slice_index`, `z_mm`, `window`.
public struct PatientFeatures: Sendable, Equatable {
    public var metadata: FeatureStoreMetadata
    /// D (the `feat_dim` attribute).
    public var featDim: Int
    /// Row-major `[N, D]`.
    public var feats: [Float]
    public var sliceIndex: [Int32]
    public var zMM: [Float]
    /// Index into `metadata.windows`.
    public var window: [Int32]
    /// Optional per-row dense tokens (`dense_tokens [N, K, D]`, `axial extract --tokens dense`); written
    /// when set; `read` leaves it nil (read it with `FeatureStore.readDenseTokens`).
    public var denseTokens: DenseTokens? = nil

    /// N.
    public var count: Int { sliceIndex.count }

    public init(metadata: FeatureStoreMetadata, featDim: Int, feats: [Float], sliceIndex: [Int32],
                zMM: [Float], window: [Int32]) {
        self.metadata = metadata; self.featDim = featDim; self.feats = feats
        self.sliceIndex = sliceIndex; self.zMM = zMM; self.window = window
    }

    /// Row `i` of `feats`.
    public func row(_ i: Int) -> ArraySlice<Float> { feats[(i * featDim)..<((i + 1) * featDim)] }
}

/// Reads and writes the per-patient HDF5 feature store.
///
/// Layout (root group): datasets `feats` (`<f4` or `<f2`, `[N, D]`, chunked by rows),
/// `slice_index` (`<i4` `[N]`), `z_mm` (`<f4` `[N]`), `window` (`<i4` `[N]`), `coords` (`<f4` `[N, 2]`:
/// slice index, z mm — with attribute `columns = "slice_index,z_mm"`; absent in files written
/// before it existed, never required on reading); attributes — variable-length
/// UTF-8 strings `axial_version`, `encoder`, `encoder_sha256`, `windows` (JSON), `patient_id`,
/// `study_uid`, `series_uid`, `preprocessing` (JSON), `created`; `feat_dim` int64 scalar;
/// `spacing_mm` float64 `[3]`. Files are written to a temporary name in the same folder and renamed.
public enum FeatureStore {
    static let datasets = ["feats", "slice_index", "z_mm", "window"]
    static let stringAttributes = ["axial_version", "encoder", "encoder_sha256", "windows", "patient_id",
                                   "study_uid", "series_uid", "preprocessing", "created"]

    /// `<patient_id>.h5`, with characters outside `[A-Za-z0-9._-]` replaced by `_`.
    public static func fileName(patientID: String) -> String {
        patientFileStem(patientID) + ".h5"
    }

    /// Writes `features` to `url` atomically (temporary name + rename). Validates shapes first.
    public static func write(_ features: PatientFeatures, to url: URL, precision: FeaturePrecision = .float32) throws {
        let path = url.path
        try validate(features, path: path)
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(path: folder.path, reason: "cannot create folder: \(error.localizedDescription)")
        }
        axial_h5_silence_errors()
        try AtomicFile.withTemporary(for: url) { temporary in
            let file = try H5.check(H5Fcreate(temporary.path, axial_h5f_acc_excl(), H5.defaultPL, H5.defaultPL),
                                    path, "file")
            do {
                try writeContents(features, file: file, precision: precision, path: path)
            } catch {
                H5Fclose(file)
                throw error
            }
            try H5.check(H5Fclose(file), path, "file")
        }
    }

    private static func validate(_ f: PatientFeatures, path: String) throws {
        let n = f.sliceIndex.count
        guard f.featDim > 0 else { throw StoreError.invalid(path: path, object: "feat_dim", reason: "must be > 0, got \(f.featDim)") }
        guard f.feats.count == n * f.featDim else {
            throw StoreError.invalid(path: path, object: "feats",
                                     reason: "\(f.feats.count) values for [\(n), \(f.featDim)]")
        }
        guard f.zMM.count == n else { throw StoreError.invalid(path: path, object: "z_mm", reason: "\(f.zMM.count) values for N=\(n)") }
        guard f.window.count == n else { throw StoreError.invalid(path: path, object: "window", reason: "\(f.window.count) values for N=\(n)") }
        if let bad = f.window.first(where: { $0 < 0 || Int($0) >= f.metadata.windows.count }) {
            throw StoreError.invalid(path: path, object: "window",
                                     reason: "index \(bad) outside the \(f.metadata.windows.count) windows")
        }
        guard f.metadata.spacingMM.count == 3 else {
            throw StoreError.invalid(path: path, object: "spacing_mm", reason: "needs 3 numbers, got \(f.metadata.spacingMM.count)")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(f.metadata.preprocessingJSON.utf8))) != nil else {
            throw StoreError.invalid(path: path, object: "preprocessing", reason: "not valid JSON")
        }
    }

    private static func writeContents(_ f: PatientFeatures, file: hid_t, precision: FeaturePrecision, path: String) throws {
        let n = f.count, d = f.featDim
        switch precision {
        case .float32:
            try f.feats.withUnsafeBytes {
                try H5.writeDataset(file, "feats", dims: [n, d], fileType: axial_h5t_ieee_f32le(),
                                    memoryType: axial_h5t_native_float(), bytes: $0, chunkRows: chunkRows(d), path: path)
            }
        case .float16:
            let half = try H5.check(axial_h5t_ieee_f16le_create(), path, "feats")
            defer { H5Tclose(half) }
            let values = f.feats.map { Float16($0) }
            try values.withUnsafeBytes {
                try H5.writeDataset(file, "feats", dims: [n, d], fileType: half, memoryType: half,
                                    bytes: $0, chunkRows: chunkRows(d), path: path)
            }
        }
        try f.sliceIndex.withUnsafeBytes {
            try H5.writeDataset(file, "slice_index", dims: [n], fileType: axial_h5t_std_i32le(),
                                memoryType: axial_h5t_native_int32(), bytes: $0, path: path)
        }
        try f.zMM.withUnsafeBytes {
            try H5.writeDataset(file, "z_mm", dims: [n], fileType: axial_h5t_ieee_f32le(),
                                memoryType: axial_h5t_native_float(), bytes: $0, path: path)
        }
        try f.window.withUnsafeBytes {
            try H5.writeDataset(file, "window", dims: [n], fileType: axial_h5t_std_i32le(),
                                memoryType: axial_h5t_native_int32(), bytes: $0, path: path)
        }
        // (slice index, z mm) per row as `coords`, where STAMP / CLAM readers look for positions.
        try writeCoords(f, file: file, path: path)
        if let t = f.denseTokens { try writeDenseTokens(t, rows: n, file: file, precision: precision, path: path) }
        let m = f.metadata
        let windowsJSON: String
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            windowsJSON = String(decoding: try encoder.encode(m.windows), as: UTF8.self)
        }
        let strings: [(String, String)] = [
            ("axial_version", m.axialVersion), ("encoder", m.encoder), ("encoder_sha256", m.encoderSHA256),
            ("windows", windowsJSON), ("patient_id", m.patientID), ("study_uid", m.studyUID),
            ("series_uid", m.seriesUID), ("preprocessing", m.preprocessingJSON), ("created", m.created),
        ]
        for (name, value) in strings { try H5.writeStringAttribute(file, name, value, path: path) }
        try H5.writeNumericAttribute(file, "feat_dim", [Int64(d)], fileType: axial_h5t_std_i64le(),
                                     memoryType: axial_h5t_native_int64(), scalar: true, path: path)
        try H5.writeNumericAttribute(file, "spacing_mm", m.spacingMM, fileType: axial_h5t_ieee_f64le(),
                                     memoryType: axial_h5t_native_double(), scalar: false, path: path)
    }

    /// Rows per chunk: about 1 MiB of float32.
    private static func chunkRows(_ d: Int) -> Int { max(1, (1 << 18) / max(d, 1)) }

    /// Who made a store: its `encoder`, `encoder_sha256` and `preprocessing` attributes, read without
    /// the datasets; nil for a file without them (written by another tool).
    public static func readProvenance(_ url: URL) -> (encoder: String, encoderSHA256: String, preprocessing: String)? {
        let path = url.path
        axial_h5_silence_errors()
        let file = H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL)
        guard file >= 0 else { return nil }
        defer { H5Fclose(file) }
        guard let e = try? H5.readStringAttribute(file, "encoder", path: path),
              let sha = try? H5.readStringAttribute(file, "encoder_sha256", path: path),
              let pre = try? H5.readStringAttribute(file, "preprocessing", path: path) else { return nil }
        return (e, sha, pre)
    }

    /// Reads a store; `feats` is converted to Float32 whatever its on-disk precision.
    public static func read(_ url: URL) throws -> (features: PatientFeatures, precision: FeaturePrecision) {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError.io(path: path, reason: "no such file")
        }
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }

        let (featsID, featsDims) = try H5.openDataset(file, "feats", path: path)
        defer { H5Dclose(featsID) }
        guard featsDims.count == 2 else {
            throw StoreError.invalid(path: path, object: "feats", reason: "expected rank 2, got shape \(featsDims)")
        }
        let n = featsDims[0], d = featsDims[1]
        let precision = try featsPrecision(featsID, path: path)
        try checkSize(n, d, path: path)
        let feats: [Float] = try H5.readDataset(featsID, count: n * d, memoryType: axial_h5t_native_float(),
                                                zero: 0, name: "feats", path: path)

        func vector<T>(_ name: String, _ memoryType: hid_t, _ zero: T, expectedClass: H5T_class_t) throws -> [T] {
            let (id, dims) = try H5.openDataset(file, name, path: path)
            defer { H5Dclose(id) }
            guard dims == [n] else {
                throw StoreError.invalid(path: path, object: name, reason: "shape \(dims), expected [\(n)] to match feats")
            }
            let type = H5Dget_type(id)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == expectedClass else {
                throw StoreError.invalid(path: path, object: name, reason: "wrong element type")
            }
            return try H5.readDataset(id, count: n, memoryType: memoryType, zero: zero, name: name, path: path)
        }
        let sliceIndex: [Int32] = try vector("slice_index", axial_h5t_native_int32(), 0, expectedClass: H5T_INTEGER)
        let zMM: [Float] = try vector("z_mm", axial_h5t_native_float(), 0, expectedClass: H5T_FLOAT)
        let window: [Int32] = try vector("window", axial_h5t_native_int32(), 0, expectedClass: H5T_INTEGER)

        var s: [String: String] = [:]
        for name in stringAttributes { s[name] = try H5.readStringAttribute(file, name, path: path) }
        let featDim: [Int64] = try H5.readNumericAttribute(file, "feat_dim", memoryType: axial_h5t_native_int64(),
                                                           zero: 0, path: path)
        guard featDim.count == 1, featDim[0] == Int64(d) else {
            throw StoreError.invalid(path: path, object: "feat_dim", reason: "\(featDim) does not match feats' D=\(d)")
        }
        let spacing: [Double] = try H5.readNumericAttribute(file, "spacing_mm", memoryType: axial_h5t_native_double(),
                                                            zero: 0, path: path)
        guard spacing.count == 3 else {
            throw StoreError.invalid(path: path, object: "spacing_mm", reason: "needs 3 numbers, got \(spacing.count)")
        }
        let windows: [StoredWindow]
        do {
            windows = try JSONDecoder().decode([StoredWindow].self, from: Data(s["windows"]!.utf8))
        } catch {
            throw StoreError.invalid(path: path, object: "windows", reason: "not a JSON list of {name, width, level}: \(error)")
        }
        if let bad = window.first(where: { $0 < 0 || Int($0) >= windows.count }) {
            throw StoreError.invalid(path: path, object: "window", reason: "index \(bad) outside the \(windows.count) windows")
        }
        let metadata = FeatureStoreMetadata(
            axialVersion: s["axial_version"]!, encoder: s["encoder"]!, encoderSHA256: s["encoder_sha256"]!,
            windows: windows, patientID: s["patient_id"]!, studyUID: s["study_uid"]!, seriesUID: s["series_uid"]!,
            spacingMM: spacing, preprocessingJSON: s["preprocessing"]!, created: s["created"]!)
        let features = PatientFeatures(metadata: metadata, featDim: d, feats: feats, sliceIndex: sliceIndex,
                                       zMM: zMM, window: window)
        return (features, precision)
    }

    /// A hostile file's dims (HDF5 allows 2⁶⁴ − 1 per axis in a chunked dataset that stores
    /// nothing) must neither overflow N × D nor ask for more memory than there is.
    static func checkSize(_ n: Int, _ d: Int, path: String) throws {
        let (count, o) = n.multipliedReportingOverflow(by: d)
        guard n >= 0, d >= 0, !o, count < Int.max / 8 else {
            throw StoreError.invalid(path: path, object: "feats", reason: "shape [\(n), \(d)] is too large (the element count overflows)")
        }
        let available = MemoryBudget.available()
        guard count * 4 <= available else {
            throw StoreError.invalid(path: path, object: "feats", reason: "shape [\(n), \(d)] needs \(MemoryBudget.format(count * 4)) to read, only \(MemoryBudget.format(available)) of memory is available")
        }
    }

    private static func featsPrecision(_ dataset: hid_t, path: String) throws -> FeaturePrecision {
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_FLOAT else {
            throw StoreError.invalid(path: path, object: "feats", reason: "expected floating-point values")
        }
        switch H5Tget_size(type) {
        case 4: return .float32
        case 2: return .float16
        case let size: throw StoreError.invalid(path: path, object: "feats", reason: "unsupported float size \(size) bytes")
        }
    }

    /// Checks that `url` is a complete store (all datasets with consistent shapes, all attributes)
    /// without reading `feats`; throws the first problem found.
    public static func verify(_ url: URL) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.io(path: path, reason: "no such file") }
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }
        var n: Int? = nil
        for name in datasets {
            let (id, dims) = try H5.openDataset(file, name, path: path)
            H5Dclose(id)
            if name == "feats" {
                guard dims.count == 2 else { throw StoreError.invalid(path: path, object: name, reason: "expected rank 2") }
                n = dims[0]
            } else if dims != [n ?? -1] {
                throw StoreError.invalid(path: path, object: name, reason: "shape \(dims) does not match feats")
            }
        }
        try verifyDenseTokens(file, rows: n ?? 0, path: path)
        for name in stringAttributes + ["feat_dim", "spacing_mm"] where !H5.attributeExists(file, name) {
            throw StoreError.missing(path: path, object: name)
        }
    }

    /// True if `url` holds a complete store (see `verify`). A rerun skips patients for which this holds.
    public static func isComplete(_ url: URL) -> Bool { (try? verify(url)) != nil }
}

/// Replaces characters outside `[A-Za-z0-9._-]` by `_` (and a leading dot), for file and folder names.
public func sanitizedName(_ s: String) -> String {
    var out = String(s.unicodeScalars.map { c -> Character in
        let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
        return ok ? Character(c) : "_"
    })
    if out.isEmpty { out = "_" }
    if out.hasPrefix(".") { out = "_" + out.dropFirst() }
    return out
}

/// The file / folder name stem of a patient ID: `sanitizedName`, an empty ID as "unknown" — the
/// same for ingest's `<out>/<patient>/` folder and extract's `<patient>.h5`.
public func patientFileStem(_ id: String) -> String { sanitizedName(id.isEmpty ? "unknown" : id) }

/// Distinct IDs that would share a file name (`a/b`, `a_b`, `a?b` → `a_b`): stem → the IDs
/// (sorted), only for stems claimed by two or more IDs. Ingest and extract refuse those patients.
public func patientStemCollisions<S: Sequence>(_ ids: S) -> [String: [String]] where S.Element == String {
    var byStem: [String: Set<String>] = [:]
    for id in ids { byStem[patientFileStem(id), default: []].insert(id) }
    return byStem.filter { $0.value.count > 1 }.mapValues { $0.sorted() }
}

/// The refusal for one colliding patient, naming the other IDs.
public func patientCollisionReason(_ id: String, _ clash: [String]) -> String {
    let others = clash.filter { $0 != id }.map { "'\($0)'" }.joined(separator: ", ")
    return "patient ID '\(id)' and \(others) all become the file name '\(patientFileStem(id))'; refused so that none overwrites another — make the IDs distinct in the source data"
}
