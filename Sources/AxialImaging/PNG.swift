import AxialCore
import CPNG
import CZlib
import Foundation

/// An 8-bit image, rows top to bottom, x fastest, channels interleaved (1 = gray, 3 = RGB).
public struct Image8: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "Image8: channels must be 1 or 3, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image8: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// PNG reading (libpng's simplified API) and writing (our own encoder: IHDR, one IDAT, IEND; CRC-32
/// from zlib; the deflate stream from `FastDeflate` (fast) or zlib level 6), 8-bit gray and RGB.
public enum PNG {
    /// Writes `image` to `url` atomically (`AtomicFile`: a temporary `.name.tmp-…` in the same
    /// folder, then `rename(2)`). `fast` (the default): filter None through `FastDeflate` (the
    /// run-length matches of zlib's `Z_RLE`, one dynamic-Huffman block; files within a few percent
    /// of zlib `Z_RLE` level 1, the fastest zlib setting measured on windowed CT slices, and 2–4×
    /// faster to encode); else filter Up with zlib level 6 (smaller for photographs). The pixels
    /// are identical either way.
    public static func write(_ image: Image8, to url: URL, fast: Bool = true) throws {
        try AtomicFile.withTemporary(for: url) { temporary in
            try withEncoded(image, fast: fast, path: url.path) { try writeFile($0, to: temporary.path, reportAs: url.path) }
        }
    }

    /// Writes `image` straight to `url` (no temporary name): for files inside a folder that is
    /// itself committed atomically (ingest's series folders). A failed write removes the file.
    public static func writeInPlace(_ image: Image8, to url: URL, fast: Bool = true) throws {
        try withEncoded(image, fast: fast, path: url.path) { try writeFile($0, to: url.path, reportAs: url.path) }
    }

    /// The PNG file bytes of `image` (see `write` for `fast`). `path` names the file in errors.
    public static func encode(_ image: Image8, fast: Bool = true, path: String = "<memory>") throws -> [UInt8] {
        try withEncoded(image, fast: fast, path: path) { Array($0) }
    }

    static func withEncoded<R>(_ image: Image8, fast: Bool, path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        let encoder = PNGEncoder.checkOut(fast: fast)
        defer { PNGEncoder.checkIn(encoder) }
        return try encoder.withEncoded(image, path: path, body)
    }

    static func putBE(_ v: UInt32, _ a: inout [UInt8], _ i: Int) {
        a[i] = UInt8(v >> 24); a[i + 1] = UInt8((v >> 16) & 0xff); a[i + 2] = UInt8((v >> 8) & 0xff); a[i + 3] = UInt8(v & 0xff)
    }

    static func storeBE(_ v: UInt32, _ o: UnsafeMutablePointer<UInt8>) {
        o[0] = UInt8(v >> 24); o[1] = UInt8((v >> 16) & 0xff); o[2] = UInt8((v >> 8) & 0xff); o[3] = UInt8(v & 0xff)
    }

    /// Writes a chunk (length, type, data, CRC) at `p`; returns the offset after it.
    static func chunk(_ o: UnsafeMutablePointer<UInt8>, _ p: Int, _ type: String, _ data: [UInt8]) -> Int {
        (o + p + 8).update(from: data, count: data.count)
        return chunkInPlace(o, p, type, data.count)
    }

    /// Completes a chunk whose `n` data bytes are already at `p + 8`: length, type and CRC.
    static func chunkInPlace(_ o: UnsafeMutablePointer<UInt8>, _ p: Int, _ type: String, _ n: Int) -> Int {
        storeBE(UInt32(n), o + p)
        for (i, b) in type.utf8.enumerated() { o[p + 4 + i] = b }
        let crc = crc32(0, o + p + 4, uInt(4 + n))
        storeBE(UInt32(crc), o + p + 8 + n)
        return p + 12 + n
    }

    private static func writeFile(_ b: UnsafeBufferPointer<UInt8>, to path: String, reportAs: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw ImagingError.unreadable(path: reportAs, reason: "cannot write PNG: \(String(cString: strerror(errno)))")
        }
        var failure: String?
        do {
            var done = 0
            while done < b.count {
                let r = Foundation.write(fd, b.baseAddress! + done, b.count - done)
                if r < 0 { if errno == EINTR { continue }; failure = String(cString: strerror(errno)); break }
                done += r
            }
        }
        if close(fd) != 0 && failure == nil { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(path)
            throw ImagingError.unreadable(path: reportAs, reason: "cannot write PNG: \(failure)")
        }
    }

    /// Reads a PNG as 8-bit gray (`channels: 1`) or RGB (`channels: 3`); libpng converts other
    /// colour types (palette, 16-bit, alpha: composited on black) to the requested format. With
    /// `channels: nil` the file's own colour (gray or RGB) is kept.
    public static func read(_ url: URL, channels: Int? = nil) throws -> Image8 {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&png, url.path) != 0 else {
            let message = messageText(&png)
            png_image_free(&png)
            throw ImagingError.unreadable(path: url.path, reason: "not a readable PNG: \(message)")
        }
        let isColor = (png.format & UInt32(PNG_FORMAT_FLAG_COLOR)) != 0
        let c = channels ?? (isColor ? 3 : 1)
        guard c == 1 || c == 3 else {
            png_image_free(&png)
            throw ImagingError.unsupported(path: url.path, reason: "PNG channels must be 1 or 3, asked \(c)")
        }
        png.format = c == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let width = Int(png.width), height = Int(png.height)
        // IHDR may claim up to 2³¹ − 1 per side: bound the decoded size before allocating.
        let bytes = MemoryBudget.product(width, height, c)
        guard width > 0, height > 0, width * c < Int(Int32.max), bytes <= min(1 << 32, MemoryBudget.available()) else {
            png_image_free(&png)
            throw ImagingError.unsupported(path: url.path, reason: "PNG of \(width)×\(height) pixels (\(MemoryBudget.format(bytes)) decoded) is too large")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * c)
        let ok = pixels.withUnsafeMutableBytes { bytes in
            png_image_finish_read(&png, nil, bytes.baseAddress, Int32(width * c), nil)
        }
        guard ok != 0 else {
            let message = messageText(&png)
            png_image_free(&png)
            throw ImagingError.unreadable(path: url.path, reason: "cannot decode PNG: \(message)")
        }
        return Image8(width: width, height: height, channels: c, pixels: pixels)
    }

    private static func messageText(_ png: inout png_image) -> String {
        withUnsafeBytes(of: &png.message) { raw in
            let bytes = raw.bindMemory(to: CChar.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: raw.prefix(end), as: UTF8.self)
        }
    }
}

/// A reusable PNG encoder: one zlib deflate stream (reset, not re-initialised, between images) and
/// scratch buffers, so encoding hundreds of slices allocates and page-faults nothing per image.
/// Encoders are kept in a small locked pool (`checkOut` / `checkIn`), one in use per thread.
final class PNGEncoder: @unchecked Sendable {
    let fast: Bool
    var strm = z_stream()
    var initialised = false
    var raw: UnsafeMutablePointer<UInt8>? = nil
    var rawCapacity = 0

    init(fast: Bool) { self.fast = fast }

    deinit {
        if initialised { deflateEnd(&strm) }
        raw?.deallocate()
        out?.deallocate()
        fastDeflate.release()
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var pool: [PNGEncoder] = []   // guarded by `lock`

    static func checkOut(fast: Bool) -> PNGEncoder {
        lock.lock(); defer { lock.unlock() }
        if let i = pool.lastIndex(where: { $0.fast == fast }) { return pool.remove(at: i) }
        return PNGEncoder(fast: fast)
    }

    static func checkIn(_ e: PNGEncoder) {
        lock.lock(); defer { lock.unlock() }
        if pool.count < 16 { pool.append(e) }
    }

    var out: UnsafeMutablePointer<UInt8>? = nil
    var outCapacity = 0

    /// Encodes into the encoder's own output buffer; `body` gets the file bytes (valid only during the call).
    func withEncoded<R>(_ image: Image8, path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        let (w, h, c) = (image.width, image.height, image.channels)
        guard w > 0, h > 0, w < 1 << 31, h < 1 << 31 else {
            throw ImagingError.unsupported(path: path, reason: "cannot write a \(w)×\(h) PNG")
        }
        let stride = w * c, rawCount = (stride + 1) * h
        if rawCapacity < rawCount {
            raw?.deallocate()
            raw = .allocate(capacity: rawCount); rawCapacity = rawCount
        }
        let raw = self.raw!
        // Filtered scanlines: one filter-type byte per row, then the row (None) or its Up differences.
        image.pixels.withUnsafeBufferPointer { px in
            let src = px.baseAddress!
            for y in 0..<h {
                let d = raw + y * (stride + 1), row = src + y * stride
                if fast || y == 0 {
                    d[0] = 0
                    (d + 1).update(from: row, count: stride)
                } else {
                    d[0] = 2
                    let above = row - stride
                    for x in 0..<stride { d[1 + x] = row[x] &- above[x] }
                }
            }
        }
        if fast { return try withFastEncoded(w, h, c, rawCount, path: path, body) }
        if initialised {
            guard deflateReset(&strm) == Z_OK else { throw ImagingError.unreadable(path: path, reason: "cannot write PNG: zlib deflateReset failed") }
        } else {
            let level: Int32 = 6, strategy: Int32 = Z_DEFAULT_STRATEGY
            guard deflateInit2_(&strm, level, Z_DEFLATED, 15, 8, strategy, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw ImagingError.unreadable(path: path, reason: "cannot write PNG: zlib deflateInit failed")
            }
            initialised = true
        }
        let bound = Int(deflateBound(&strm, uLong(rawCount)))
        // signature 8 + IHDR 25 + IDAT header 8 + data + CRC 4 + IEND 12
        let total = 8 + 25 + 8 + bound + 4 + 12
        if outCapacity < total {
            out?.deallocate()
            out = .allocate(capacity: total); outCapacity = total
        }
        let o = out!
        var failure: String?
        do {
            let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
            o.update(from: signature, count: 8)
            var ihdr = [UInt8](repeating: 0, count: 13)
            PNG.putBE(UInt32(w), &ihdr, 0); PNG.putBE(UInt32(h), &ihdr, 4)
            ihdr[8] = 8; ihdr[9] = c == 3 ? 2 : 0   // bit depth 8; colour type gray / RGB; deflate, filter 0, no interlace
            let idat = PNG.chunk(o, 8, "IHDR", ihdr)
            strm.next_in = raw
            strm.avail_in = uInt(rawCount)
            strm.next_out = o + idat + 8
            strm.avail_out = uInt(bound)
            if deflate(&strm, Z_FINISH) != Z_STREAM_END { failure = "zlib deflate did not finish" }
            let p = PNG.chunkInPlace(o, idat, "IDAT", Int(strm.total_out))
            let size = PNG.chunk(o, p, "IEND", [])
            if let failure { throw ImagingError.unreadable(path: path, reason: "cannot write PNG: \(failure)") }
            return try body(UnsafeBufferPointer(start: o, count: size))
        }
    }

    var fastDeflate = FastDeflate()

    /// The `fast` path: the filtered scanlines in `raw` through `FastDeflate` (run-length matches,
    /// one dynamic-Huffman block) instead of zlib.
    private func withFastEncoded<R>(_ w: Int, _ h: Int, _ c: Int, _ rawCount: Int, path: String,
                                    _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        let total = 8 + 25 + 8 + FastDeflate.bound(rawCount) + 4 + 12
        if outCapacity < total {
            out?.deallocate()
            out = .allocate(capacity: total); outCapacity = total
        }
        let o = out!
        let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        o.update(from: signature, count: 8)
        var ihdr = [UInt8](repeating: 0, count: 13)
        PNG.putBE(UInt32(w), &ihdr, 0); PNG.putBE(UInt32(h), &ihdr, 4)
        ihdr[8] = 8; ihdr[9] = c == 3 ? 2 : 0
        let idat = PNG.chunk(o, 8, "IHDR", ihdr)
        let n = fastDeflate.compress(raw!, rawCount, into: o + idat + 8)
        let p = PNG.chunkInPlace(o, idat, "IDAT", n)
        let size = PNG.chunk(o, p, "IEND", [])
        return try body(UnsafeBufferPointer(start: o, count: size))
    }
}
