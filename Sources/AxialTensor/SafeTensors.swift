import Foundation

/// Errors from reading or writing `.safetensors` files; each names the file (and key).
public enum SafeTensorsError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badHeader(path: String, reason: String)
    case badTensor(path: String, key: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(p, r): return "\(p): cannot read safetensors file: \(r)"
        case let .badHeader(p, r): return "\(p): invalid safetensors header: \(r)"
        case let .badTensor(p, k, r): return "\(p): tensor '\(k)': \(r)"
        case let .unwritable(p, r): return "cannot write \(p): \(r)"
        }
    }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a
/// JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`,
/// then the raw little-endian data.
public enum SafeTensors {
    /// Element types this reader converts to Float32.
    public enum DType: String, Sendable { case F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL
        public var size: Int {
            switch self { case .F64, .I64: 8; case .F32, .I32: 4; case .F16, .BF16, .I16: 2; case .I8, .U8, .BOOL: 1 }
        }
    }

    /// Reads every tensor (converted to Float32) and the `__metadata__` strings.
    public static func read(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let r = try readTyped(url)
        return (r.tensors, r.metadata)
    }

    /// `read` plus each tensor's stored dtype (so a loader can refuse, e.g., an I32 tensor where
    /// it expects float weights).
    public static func readTyped(_ url: URL) throws -> (tensors: [String: Tensor], dtypes: [String: DType], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SafeTensorsError.unreadable(path: url.path, reason: FileError.reason(error))
        }
        return try parse(data, path: url.path)
    }

    /// The one parser (fuzz entry point): a whole safetensors file in memory → tensors, dtypes and
    /// metadata. Checks, each naming the tensor: the header length within the file, the header a
    /// JSON object, every entry with a known dtype, non-negative integer dims whose product (and
    /// byte size) does not overflow, `data_offsets` [begin, end] with 0 ≤ begin ≤ end, end − begin =
    /// elements × dtype size and end inside the data section; entries must not overlap.
    public static func parse(_ data: Data, path: String) throws -> (tensors: [String: Tensor], dtypes: [String: DType], metadata: [String: String]) {
        guard data.count >= 8 else { throw SafeTensorsError.badHeader(path: path, reason: "file shorter than 8 bytes") }
        let headerLen = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLen <= UInt64(data.count - 8) else { throw SafeTensorsError.badHeader(path: path, reason: "header length \(headerLen) exceeds file size \(data.count)") }
        let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + Int(headerLen)))
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw SafeTensorsError.badHeader(path: path, reason: "header is not a JSON object")
        }
        let base = 8 + Int(headerLen)
        let dataBytes = data.count - base
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        var dtypes: [String: DType] = [:]
        var ranges: [(Int, Int, String)] = []
        for (key, value) in json {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw SafeTensorsError.badHeader(path: path, reason: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw SafeTensorsError.badHeader(path: path, reason: "__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offAny = info["data_offsets"] as? [Any], offAny.count == 2 else {
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "entry needs dtype, shape and data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "unsupported dtype \(dtypeName)")
            }
            func integer(_ v: Any) -> Int? {
                guard let n = v as? NSNumber else { return nil }
                let d = n.doubleValue
                guard d >= 0 && d < 9.0e15 && d == d.rounded() else { return nil }
                return Int(d)
            }
            var n = 1
            var shape: [Int] = []
            for v in shapeAny {
                guard let dim = integer(v) else { throw SafeTensorsError.badTensor(path: path, key: key, reason: "bad shape \(shapeAny): dims must be integers ≥ 0") }
                let (p, o) = n.multipliedReportingOverflow(by: dim)
                guard !o else { throw SafeTensorsError.badTensor(path: path, key: key, reason: "shape \(shapeAny) overflows") }
                n = p; shape.append(dim)
            }
            let (bytes, o) = n.multipliedReportingOverflow(by: dtype.size)
            guard !o else { throw SafeTensorsError.badTensor(path: path, key: key, reason: "shape \(shapeAny) overflows") }
            guard let begin = integer(offAny[0]), let end = integer(offAny[1]) else {
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "bad data_offsets \(offAny): integers ≥ 0 expected")
            }
            guard begin <= end, end - begin == bytes, end <= dataBytes else {
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "data_offsets [\(begin), \(end)] do not match \(dtypeName) shape \(shape) (\(bytes) bytes) or the data section (\(dataBytes) bytes, file size \(data.count))")
            }
            if bytes > 0 { ranges.append((begin, end, key)) }
            let t = Tensor(shape: shape) { out in
                data.withUnsafeBytes { raw in
                    guard n > 0 else { return }
                    let src = raw.baseAddress! + base + begin
                    convert(src, dtype, n, out.baseAddress!)
                }
            }
            tensors[key] = t
            dtypes[key] = dtype
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw SafeTensorsError.badTensor(path: path, key: b.2, reason: "data_offsets [\(b.0), \(b.1)] overlap tensor '\(a.2)' [\(a.0), \(a.1)]")
        }
        return (tensors, dtypes, metadata)
    }

    /// Keys whose integer dtype is legitimate in a weight file (torch BatchNorm counters, HF BERT's
    /// position / token-type id buffers); every other tensor must be stored as a float type.
    public static let integerWeightKeys: Set<String> = ["num_batches_tracked", "position_ids", "token_type_ids"]

    /// Reads a weight file: `readTyped`, then every tensor must be stored as F32 / F16 / BF16 / F64
    /// (except `integerWeightKeys`: an I32 tensor is never reinterpreted as weights) and hold only
    /// finite values — both errors name the tensor.
    public static func readWeights(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let r = try readTyped(url)
        try checkWeights(r.tensors, dtypes: r.dtypes, path: url.path)
        return (r.tensors, r.metadata)
    }

    public static func checkWeights(_ tensors: [String: Tensor], dtypes: [String: DType], path: String) throws {
        for key in tensors.keys.sorted() {
            let last = key.split(separator: ".").last.map(String.init) ?? key
            if let d = dtypes[key], ![.F32, .F16, .BF16, .F64].contains(d), !integerWeightKeys.contains(last) {
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "stored as \(d.rawValue); weights must be F32, F16, BF16 or F64 (an integer tensor is not read as weights)")
            }
            let t = tensors[key]!
            let bad = t.withUnsafeBufferPointer { p -> (Int, Float)? in
                for i in 0..<t.count where !p[i].isFinite { return (i, p[i]) }
                return nil
            }
            if let (i, v) = bad {
                let count = t.withUnsafeBufferPointer { p in (0..<t.count).reduce(0) { $0 + (p[$1].isFinite ? 0 : 1) } }
                throw SafeTensorsError.badTensor(path: path, key: key, reason: "\(count) non-finite value(s) (first: \(v) at flat index \(i) of shape \(t.shape)): the weights are corrupt or the training diverged")
            }
        }
    }

    private static func convert(_ src: UnsafeRawPointer, _ dtype: DType, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .F32: for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .F64: for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .F16: for i in 0..<n { out[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .BF16: for i in 0..<n { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .I64: for i in 0..<n { out[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .I32: for i in 0..<n { out[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .I16: for i in 0..<n { out[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .I8: for i in 0..<n { out[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .U8, .BOOL: for i in 0..<n { out[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// IEEE half → float (exact, subnormals, inf and NaN included).
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(mant) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// float → IEEE half, round to nearest even (overflow → inf).
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        if f.isNaN { return sign | 0x7E00 }
        let a = Swift.abs(f)
        if a >= 65520 { return sign | 0x7C00 }
        if a < 0x1p-14 {   // subnormal half
            let m = (a * 0x1p24).rounded(.toNearestOrEven)
            return sign | UInt16(m)
        }
        let e = Int((b >> 23) & 0xFF) - 127 + 15
        var m = b & 0x7F_FFFF
        var he = UInt32(e)
        let rem = m & 0x1FFF
        m >>= 13
        if rem > 0x1000 || (rem == 0x1000 && (m & 1) == 1) { m += 1; if m == 0x400 { m = 0; he += 1 } }
        return sign | UInt16(he << 10) | UInt16(m)
    }

    /// Element type to write.
    public enum WriteType: String, Sendable { case F32, F16 }

    /// Writes `tensors` (keys sorted, data 8-byte aligned header) and `metadata` as
    /// `__metadata__`, atomically (`AtomicFile`: a temporary in the same folder renamed over `url`).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL, dtype: WriteType = .F32) throws {
        let keys = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let esize = dtype == .F32 ? 4 : 2
        for k in keys {
            let t = tensors[k]!
            header[k] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.count * esize]] as [String: Any]
            offset += t.count * esize
        }
        var hdata: Data
        do { hdata = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) } catch {
            throw SafeTensorsError.unwritable(path: url.path, reason: "header encoding failed: \(error)")
        }
        while (8 + hdata.count) % 8 != 0 { hdata.append(0x20) }
        var out = Data(capacity: 8 + hdata.count + offset)
        withUnsafeBytes(of: UInt64(hdata.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(hdata)
        for k in keys {
            let t = tensors[k]!
            t.withUnsafeBufferPointer { p in
                if dtype == .F32 {
                    out.append(contentsOf: UnsafeRawBufferPointer(p))   // little-endian hosts only (x86_64, arm64)
                } else {
                    var h = [UInt16](repeating: 0, count: p.count)
                    for i in 0..<p.count { h[i] = floatToHalf(p[i]).littleEndian }
                    h.withUnsafeBytes { out.append(contentsOf: $0) }
                }
            }
        }
        do { try AtomicFile.write(out, to: url) } catch FileError.io(_, let reason), FileError.unwritable(_, let reason) {
            throw SafeTensorsError.unwritable(path: url.path, reason: reason)
        }
    }
}
