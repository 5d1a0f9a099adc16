import AxialTensor
import CZlib
import Foundation

/// A Swift check of a NIfTI-1 / NIfTI-2 file's header (and, for `.nii.gz`, of its inflated size)
/// run before libnifti2 sees the file, so that no header makes it read a 1×1×1 volume, invent 1 mm
/// spacing or read past the data (issue 17: dim[0] = 0, pixdim 0 / NaN were silent).
///
/// Checks, each naming the field: the file holds a whole header (348 bytes NIfTI-1, 540 NIfTI-2);
/// `sizeof_hdr` is 348 or 540 (either byte order); the magic is a single-file one (`n+1`, `n+2`);
/// `dim[0]` ∈ 1…7 and `dim[1…dim[0]]` > 0 (product without overflow); `datatype` one Axial converts
/// (u/int 8–64, float32/64) with the matching `bitpix`; `pixdim[1…3]` (of the spatial dims present)
/// finite and > 0; `scl_slope` / `scl_inter` finite; `vox_offset` finite, ≥ the header size, and
/// `vox_offset + voxels × bytes` within the (inflated) file; the data fits the available memory.
///
/// `problem(path:)` / `problem(data:compressed:)` return nil for a file that passes, else the reason.
public enum NIfTIValidate {
    /// Datatype code → bytes per voxel (the types `NIfTIReader` converts).
    static let supported: [Int: Int] = [2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8]
    static let names: [Int: String] = [0: "unknown", 1: "binary", 32: "complex64", 128: "rgb24", 1536: "float128",
                                       1792: "complex128", 2048: "complex256", 2304: "rgba32"]

    /// Validates the file at `path` (a `.gz` name or gzip magic is inflated in a stream; only the
    /// header is kept, the rest counted).
    public static func problem(path: String) -> String? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            return "cannot open the file"
        }
        return problem(data: data, compressed: data.starts(with: [0x1F, 0x8B]))
    }

    /// The fuzz entry point: a whole file in memory, gzip-compressed or not.
    public static func problem(data: Data, compressed: Bool) -> String? {
        if !compressed { return data.withUnsafeBytes { headerProblem($0, fileSize: data.count) } }
        // Inflate the header, then count until the data the header declares is covered.
        var header = [UInt8]()
        var total = 0
        var needed = Int.max
        var headerChecked = false
        var result: String?
        let status = inflateStream(data) { chunk in
            if header.count < 540 { header += chunk.prefix(540 - header.count) }
            total += chunk.count
            if !headerChecked && (header.count >= 540 || header.count >= 348 && headerSize(header) == 348) {
                headerChecked = true
                switch header.withUnsafeBytes({ parse($0) }) {
                case .failure(let why): result = why; return false
                case .success(let h): needed = h.needed
                }
            }
            return total < needed       // stop as soon as the declared data is there
        }
        if let result { return result }
        if case .failure(let why) = status {
            if total < needed && headerChecked { return "truncated NIfTI (.nii.gz): \(why); inflated \(total) bytes, the header needs \(needed)" }
            if !headerChecked { return "corrupt .nii.gz: \(why) after \(total) inflated bytes" }
        }
        if !headerChecked {
            return header.withUnsafeBytes { headerProblem($0, fileSize: total) } ?? "truncated NIfTI header: \(total) bytes after inflating"
        }
        if total < needed {
            return "truncated NIfTI (.nii.gz): vox_offset + data needs \(needed) bytes, the file inflates to \(total)"
        }
        return nil
    }

    struct Header { var needed: Int; var voxOffset: Int; var floatSize: Int; var swapped: Bool; var voxels: Int }

    /// What `inspect` finds: a refusal, or the NaN / Inf voxels of float data (file order; libnifti2
    /// silently sets them to 0, so they are found here, on the raw bytes).
    public struct Report: Sendable {
        public var problem: String?
        public var nonFinite = 0
        /// Voxel indices (file order) of the first `indexLimit` non-finite values.
        public var nonFiniteIndices: [Int] = []
    }

    /// Counts non-finite float32 / float64 voxels fed in file order, across chunk boundaries.
    struct FloatScan {
        let start: Int, end: Int, size: Int, swapped: Bool
        var position = 0
        var carry: [UInt8] = []
        var count = 0
        var indices: [Int] = []
        var element = 0

        mutating func feed(_ chunk: UnsafeRawBufferPointer) {
            defer { position += chunk.count }
            guard size > 0 else { return }
            let lo = max(start, position), hi = min(end, position + chunk.count)
            guard lo < hi else { return }
            var bytes = UnsafeRawBufferPointer(rebasing: chunk[(lo - position)..<(hi - position)])
            if !carry.isEmpty {
                let need = size - carry.count
                carry += bytes.prefix(need)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[min(need, bytes.count)...])
                if carry.count == size { carry.withUnsafeBytes { check($0, 0) }; carry = [] }
            }
            let whole = bytes.count / size
            for i in 0..<whole { check(bytes, i * size) }
            if bytes.count > whole * size { carry = Array(bytes[(whole * size)...]) }
        }

        @inline(__always) mutating func check(_ b: UnsafeRawBufferPointer, _ o: Int) {
            let finite: Bool
            if size == 4 {
                let v = b.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                finite = Float(bitPattern: swapped ? v.byteSwapped : v).isFinite
            } else {
                let v = b.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                finite = Double(bitPattern: swapped ? v.byteSwapped : v).isFinite
            }
            if !finite { count += 1; if indices.count < 1 << 24 { indices.append(element) } }
            element += 1
        }
    }

    /// `problem` plus the NaN / Inf count of float data (what `NIfTIReader.readFile` uses).
    public static func inspect(path: String) -> Report {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            return Report(problem: "cannot open the file")
        }
        return inspect(data: data, compressed: data.starts(with: [0x1F, 0x8B]))
    }

    public static func inspect(data: Data, compressed: Bool) -> Report {
        if let p = problem(data: data, compressed: compressed) { return Report(problem: p) }
        var scan: FloatScan?
        var header = [UInt8]()
        if !compressed {
            return data.withUnsafeBytes { b -> Report in
                guard case .success(let h) = parse(b), h.floatSize > 0 else { return Report() }
                var s = FloatScan(start: h.voxOffset, end: h.needed, size: h.floatSize, swapped: h.swapped)
                s.feed(b)
                return Report(problem: nil, nonFinite: s.count, nonFiniteIndices: s.indices)
            }
        }
        var pending: [[UInt8]] = []
        _ = inflateStream(data) { chunk in
            if scan == nil {
                pending.append(chunk)
                header += chunk.prefix(max(0, 540 - header.count))
                if header.count >= 540 || (header.count >= 348 && headerSize(header) == 348) {
                    guard case .success(let h) = header.withUnsafeBytes({ parse($0) }), h.floatSize > 0 else { return false }
                    var s = FloatScan(start: h.voxOffset, end: h.needed, size: h.floatSize, swapped: h.swapped)
                    for c in pending { c.withUnsafeBytes { s.feed($0) } }
                    pending = []
                    scan = s
                    return s.position < s.end
                }
                return true
            }
            chunk.withUnsafeBytes { scan!.feed($0) }
            return scan!.position < scan!.end
        }
        return Report(problem: nil, nonFinite: scan?.count ?? 0, nonFiniteIndices: scan?.indices ?? [])
    }

    static func headerSize(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        let le = Int32(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        if le == 348 || le.byteSwapped == 348 { return 348 }
        if le == 540 || le.byteSwapped == 540 { return 540 }
        return nil
    }

    static func headerProblem(_ b: UnsafeRawBufferPointer, fileSize: Int) -> String? {
        switch parse(b) {
        case .failure(let why): return why
        case .success(let h):
            if h.needed > fileSize {
                return "truncated NIfTI: vox_offset + data needs \(h.needed) bytes, the file has \(fileSize)"
            }
            return nil
        }
    }

    enum Parsed { case success(Header), failure(String) }

    /// The header checks on the first bytes of an (inflated) file.
    static func parse(_ b: UnsafeRawBufferPointer) -> Parsed {
        guard b.count >= 4 else { return .failure("truncated NIfTI header: the file has \(b.count) bytes, a header needs 348") }
        let raw = b.loadUnaligned(as: Int32.self)
        let swapped: Bool
        let version: Int
        switch (Int32(littleEndian: raw), Int32(littleEndian: raw).byteSwapped) {
        case (348, _): (version, swapped) = (1, false)
        case (_, 348): (version, swapped) = (1, true)
        case (540, _): (version, swapped) = (2, false)
        case (_, 540): (version, swapped) = (2, true)
        default:
            return .failure("sizeof_hdr = \(Int32(littleEndian: raw)) (must be 348 for NIfTI-1 or 540 for NIfTI-2): not a NIfTI file")
        }
        let size = version == 1 ? 348 : 540
        guard b.count >= size else {
            return .failure("truncated NIfTI header: the file has \(b.count) bytes, a NIfTI-\(version) header needs \(size)")
        }
        func i16(_ o: Int) -> Int { let v = b.loadUnaligned(fromByteOffset: o, as: Int16.self); return Int(swapped ? v.byteSwapped : v) }
        func i64(_ o: Int) -> Int { let v = b.loadUnaligned(fromByteOffset: o, as: Int64.self); return Int(swapped ? v.byteSwapped : v) }
        func f32(_ o: Int) -> Double {
            let v = b.loadUnaligned(fromByteOffset: o, as: UInt32.self)
            return Double(Float(bitPattern: swapped ? v.byteSwapped : v))
        }
        func f64(_ o: Int) -> Double {
            let v = b.loadUnaligned(fromByteOffset: o, as: UInt64.self)
            return Double(bitPattern: swapped ? v.byteSwapped : v)
        }
        let magic = (0..<4).map { b[(version == 1 ? 344 : 4) + $0] }
        let expected: [UInt8] = version == 1 ? [0x6E, 0x2B, 0x31, 0] : [0x6E, 0x2B, 0x32, 0]   // "n+1\0" / "n+2\0"
        guard magic == expected else {
            let shown = String(decoding: magic.prefix { $0 != 0 }, as: UTF8.self)
            return .failure("magic '\(shown)' is not a single-file NIfTI-\(version) ('n+\(version)'; 'ni\(version)' .hdr/.img pairs are not read)")
        }
        let dims: [Int] = (0..<8).map { version == 1 ? i16(40 + 2 * $0) : i64(16 + 8 * $0) }
        let datatype = version == 1 ? i16(70) : i16(12)
        let bitpix = version == 1 ? i16(72) : i16(14)
        let pixdim: [Double] = (0..<8).map { version == 1 ? f32(76 + 4 * $0) : f64(104 + 8 * $0) }
        let voxOffset: Double = version == 1 ? f32(108) : Double(i64(168))
        let slope = version == 1 ? f32(112) : f64(176)
        let inter = version == 1 ? f32(116) : f64(184)

        guard (1...7).contains(dims[0]) else { return .failure("dim[0] = \(dims[0]) must be 1…7 (the number of dimensions)") }
        var voxels = 1
        for i in 1...dims[0] {
            guard dims[i] > 0 else { return .failure("dim[\(i)] = \(dims[i]) must be > 0 (dim[0] = \(dims[0]))") }
            let (p, o) = voxels.multipliedReportingOverflow(by: dims[i])
            guard !o else { return .failure("dim[1…\(dims[0])] = \(Array(dims[1...dims[0]])): the voxel count overflows") }
            voxels = p
        }
        guard let bytesPerVoxel = supported[datatype] else {
            return .failure("datatype = \(datatype) (\(names[datatype] ?? "not a NIfTI type")) is not supported: CT needs an integer or float32/float64 type")
        }
        guard bitpix == 8 * bytesPerVoxel else {
            return .failure("bitpix = \(bitpix) does not match datatype \(datatype) (\(8 * bytesPerVoxel) bits)")
        }
        for i in 1...min(dims[0], 3) {
            guard pixdim[i].isFinite && pixdim[i] > 0 else {
                return .failure("pixdim[\(i)] = \(pixdim[i]) must be a positive finite voxel size (mm)")
            }
        }
        guard slope.isFinite else { return .failure("scl_slope = \(slope) is not a finite number") }
        guard inter.isFinite else { return .failure("scl_inter = \(inter) is not a finite number") }
        guard voxOffset.isFinite, voxOffset >= Double(size), voxOffset < 1e15 else {
            return .failure("vox_offset = \(voxOffset) must be a finite byte offset ≥ \(size) (the header size)")
        }
        let (dataBytes, o) = voxels.multipliedReportingOverflow(by: bytesPerVoxel)
        guard !o, dataBytes < Int.max - Int(voxOffset) else { return .failure("dim × bitpix: the data size overflows") }
        // libnifti holds the raw data and the reader a Float copy of one volume.
        let memory = MemoryBudget.product(voxels, bytesPerVoxel + 4)
        let available = MemoryBudget.available()
        guard memory <= available else {
            return .failure("dim[1…\(dims[0])] = \(Array(dims[1...dims[0]])) needs about \(MemoryBudget.format(memory)) to read, only \(MemoryBudget.format(available)) of memory is available")
        }
        let floatSize = datatype == 16 ? 4 : datatype == 64 ? 8 : 0
        return .success(Header(needed: Int(voxOffset) + dataBytes, voxOffset: Int(voxOffset), floatSize: floatSize, swapped: swapped, voxels: voxels))
    }

    enum StreamStatus { case done, failure(String) }

    /// Inflates gzip `data` (members concatenated) in 256 KiB chunks, handing each to `body`
    /// until it returns false.
    static func inflateStream(_ data: Data, _ body: ([UInt8]) -> Bool) -> StreamStatus {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return .failure("zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        let chunk = 1 << 18
        var buffer = [UInt8](repeating: 0, count: chunk)
        return data.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> StreamStatus in
            guard input.count > 0 else { return .failure("empty file") }
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let status = buffer.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    return .failure(stream.msg.map { String(cString: $0) } ?? "zlib error \(status)")
                }
                let produced = chunk - Int(stream.avail_out)
                if produced > 0 && !body(Array(buffer[0..<produced])) { return .done }
                if status == Z_STREAM_END {
                    if stream.avail_in == 0 { return .done }
                    guard inflateReset(&stream) == Z_OK else { return .failure("zlib inflateReset failed") }   // next gzip member
                    continue
                }
                if stream.avail_in == 0 && produced == 0 { return .failure("the gzip stream is cut short") }
                if status == Z_BUF_ERROR && produced == 0 { return .failure("the gzip stream is cut short") }
            }
        }
    }
}
