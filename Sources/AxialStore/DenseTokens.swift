import CHDF5
import Foundation

/// Per-slice dense image tokens stored beside `feats` (`axial extract --tokens dense`): for CLIP
/// RN50 the 50 tokens PsPG fuses — token 0 the attention pool's global output (the same vector
/// as the row of `feats`), tokens 1…49 `c_proj(v_proj(·))` of the 7×7 grid positions in
/// row-major order (`CLIPModifiedResNet.encodeDense(globalToken: .raw)`).
///
/// On disk: dataset `dense_tokens`, `<f4` or `<f2` (the file's `--dtype`), shape `[N, K, D]`
/// (N = the rows of `feats`, K tokens, D = `feat_dim`), chunked by whole rows; attribute
/// `token_layout` (string) on the dataset says what the tokens are.
public struct DenseTokens: Sendable, Equatable {
    /// K (50 for RN50 at 224²).
    public var tokensPerRow: Int
    /// D.
    public var dimension: Int
    /// Row-major `[N, K, D]`.
    public var values: [Float]
    /// What the tokens are (the dataset's `token_layout` attribute).
    public var layout: String

    public init(tokensPerRow: Int, dimension: Int, values: [Float], layout: String = DenseTokens.clipResNetLayout) {
        self.tokensPerRow = tokensPerRow; self.dimension = dimension; self.values = values; self.layout = layout
    }

    /// N.
    public var rows: Int { tokensPerRow * dimension == 0 ? 0 : values.count / (tokensPerRow * dimension) }

    public static let datasetName = "dense_tokens"
    public static let clipResNetLayout = "CLIP ModifiedResNet dense tokens: 0 = attention-pool global output (= feats row), 1… = c_proj(v_proj(grid position)) row-major"
}

extension FeatureStore {
    /// Writes `dense_tokens` (called by `write` when `features.denseTokens` is set).
    static func writeDenseTokens(_ t: DenseTokens, rows n: Int, file: hid_t, precision: FeaturePrecision, path: String) throws {
        let name = DenseTokens.datasetName
        guard t.tokensPerRow > 0, t.dimension > 0, t.values.count == n * t.tokensPerRow * t.dimension else {
            throw StoreError.invalid(path: path, object: name, reason: "\(t.values.count) values for [\(n), \(t.tokensPerRow), \(t.dimension)]")
        }
        let dims = [n, t.tokensPerRow, t.dimension]
        // Whole rows per chunk, about 1 MiB of float32.
        let chunk = max(1, (1 << 18) / (t.tokensPerRow * t.dimension))
        switch precision {
        case .float32:
            try t.values.withUnsafeBytes {
                try H5.writeDataset(file, name, dims: dims, fileType: axial_h5t_ieee_f32le(), memoryType: axial_h5t_native_float(),
                                    bytes: $0, chunkRows: chunk, path: path)
            }
        case .float16:
            let half = try H5.check(axial_h5t_ieee_f16le_create(), path, name)
            defer { H5Tclose(half) }
            let values = t.values.map { Float16($0) }
            try values.withUnsafeBytes {
                try H5.writeDataset(file, name, dims: dims, fileType: half, memoryType: half, bytes: $0, chunkRows: chunk, path: path)
            }
        }
        let dataset = try H5.check(H5Dopen2(file, name, H5.defaultPL), path, name)
        defer { H5Dclose(dataset) }
        try H5.writeStringAttribute(dataset, "token_layout", t.layout, path: path)
    }

    /// True when the file at `url` has a `dense_tokens` dataset (read nothing else).
    public static func hasDenseTokens(_ url: URL) -> Bool {
        axial_h5_silence_errors()
        let file = H5Fopen(url.path, axial_h5f_acc_rdonly(), H5.defaultPL)
        guard file >= 0 else { return false }
        defer { H5Fclose(file) }
        return H5.exists(file, DenseTokens.datasetName)
    }

    /// Reads `dense_tokens` (converted to Float32); nil when the file has none. Throws when its
    /// shape does not match `feats` ([N, K, D] with N, D of `feats`) or it is not floating point.
    public static func readDenseTokens(_ url: URL) throws -> (tokens: DenseTokens, precision: FeaturePrecision)? {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.io(path: path, reason: "no such file") }
        axial_h5_silence_errors()
        let file = try H5.check(H5Fopen(path, axial_h5f_acc_rdonly(), H5.defaultPL), path, "file")
        defer { H5Fclose(file) }
        let name = DenseTokens.datasetName
        guard H5.exists(file, name) else { return nil }
        let (n, d) = try featsShape(file, path: path)
        let (id, dims) = try H5.openDataset(file, name, path: path)
        defer { H5Dclose(id) }
        guard dims.count == 3, dims[0] == n, dims[2] == d, dims[1] >= 1 else {
            throw StoreError.invalid(path: path, object: name, reason: "shape \(dims), expected [\(n), K, \(d)] to match feats [\(n), \(d)]")
        }
        let type = H5Dget_type(id)
        let cls = H5Tget_class(type), size = H5Tget_size(type)
        H5Tclose(type)
        guard cls == H5T_FLOAT, size == 2 || size == 4 else {
            throw StoreError.invalid(path: path, object: name, reason: "expected float16 or float32 values")
        }
        let k = dims[1]
        try checkSize(n * k, d, path: path)
        let values: [Float] = try H5.readDataset(id, count: n * k * d, memoryType: axial_h5t_native_float(), zero: 0, name: name, path: path)
        let layout = (try? H5.readStringAttribute(id, "token_layout", path: path)) ?? ""
        return (DenseTokens(tokensPerRow: k, dimension: d, values: values, layout: layout), size == 2 ? .float16 : .float32)
    }

    /// `verify`'s check of `dense_tokens` when present: rank 3, [N, K, D] of `feats`.
    static func verifyDenseTokens(_ file: hid_t, rows n: Int, path: String) throws {
        let name = DenseTokens.datasetName
        guard H5.exists(file, name) else { return }
        let (_, d) = try featsShape(file, path: path)
        let (id, dims) = try H5.openDataset(file, name, path: path)
        H5Dclose(id)
        guard dims.count == 3, dims[0] == n, dims[2] == d, dims[1] >= 1 else {
            throw StoreError.invalid(path: path, object: name, reason: "shape \(dims), expected [\(n), K, \(d)] to match feats")
        }
    }

    private static func featsShape(_ file: hid_t, path: String) throws -> (Int, Int) {
        let (id, dims) = try H5.openDataset(file, "feats", path: path)
        H5Dclose(id)
        guard dims.count == 2 else { throw StoreError.invalid(path: path, object: "feats", reason: "expected rank 2, got shape \(dims)") }
        return (dims[0], dims[1])
    }
}
