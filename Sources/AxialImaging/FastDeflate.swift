import CZlib

/// A single-pass zlib (RFC 1950 / 1951) encoder for PNG scanlines, written for speed on windowed
/// CT slices: the matches zlib's `Z_RLE` strategy finds (runs of one byte, distance 1, length
/// 3…258), one dynamic-Huffman block per image with codes built from the image's own symbol
/// counts (length-limited to 15 bits), a 64-bit bit buffer. Compression equals zlib `Z_RLE`'s
/// within a few percent; it is 2–4× faster (see Tools/bench/README.md). Data that would not
/// shrink (noise) is written as stored blocks. Any inflater reads the result (checked against
/// zlib, libpng and PIL in `PNGTests`).
struct FastDeflate {
    // Length codes 257…285 for match lengths 3…258: code index, extra-bit count, extra-bit value.
    private static let lengthTable: (code: [UInt16], extraBits: [UInt8], extraValue: [UInt16]) = {
        let base: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        let extra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        var code = [UInt16](repeating: 0, count: 259), eb = [UInt8](repeating: 0, count: 259), ev = [UInt16](repeating: 0, count: 259)
        for l in 3...258 {
            var c = 28
            if l < 258 { c = 0; while c + 1 < 28 && base[c + 1] <= l { c += 1 } }
            code[l] = UInt16(257 + c); eb[l] = UInt8(extra[c]); ev[l] = UInt16(l - base[c])
        }
        return (code, eb, ev)
    }()

    private var symbols: UnsafeMutablePointer<UInt16>? = nil
    private var symbolCapacity = 0

    mutating func release() { symbols?.deallocate(); symbols = nil; symbolCapacity = 0 }

    /// The most bytes `compress` writes for `n` input bytes.
    static func bound(_ n: Int) -> Int { 2 + n + 5 * (n / 65535 + 1) + 4 + 400 }

    /// Writes the zlib stream of `input[0..<n]` to `out` (capacity ≥ `bound(n)`); returns its length.
    mutating func compress(_ input: UnsafePointer<UInt8>, _ n: Int, into out: UnsafeMutablePointer<UInt8>) -> Int {
        if symbolCapacity < n + 1 {
            symbols?.deallocate()
            symbols = .allocate(capacity: n + 1); symbolCapacity = n + 1
        }
        let sym = symbols!
        // 1. Symbols (literal b → b; run of length L → 0x8000 | L) and their counts.
        var litFreq = [Int](repeating: 0, count: 286)
        var count = 0, matches = 0
        let lt = Self.lengthTable
        litFreq.withUnsafeMutableBufferPointer { fb in
            let f = fb.baseAddress!
            lt.code.withUnsafeBufferPointer { codeOf in
                var i = 0
                while i < n {
                    let b = input[i]
                    if i > 0 && input[i - 1] == b {
                        var l = 1
                        let limit = Swift.min(258, n - i)
                        while l < limit && input[i + l] == b { l += 1 }
                        if l >= 3 {
                            sym[count] = 0x8000 | UInt16(l); count += 1
                            f[Int(codeOf[l])] += 1; matches += 1
                            i += l
                            continue
                        }
                    }
                    sym[count] = UInt16(b); count += 1
                    f[Int(b)] += 1
                    i += 1
                }
            }
            f[256] = 1
        }
        // 2. Codes.
        let litLengths = Self.codeLengths(litFreq, limit: 15)
        var nlit = 286
        while nlit > 257 && litLengths[nlit - 1] == 0 { nlit -= 1 }
        let distLengths: [UInt8] = [1, 1]   // distance 1 (code 0) and an unused code 1: a complete code
        // Code-length sequence (symbols 0–15, 17 / 18 for zero runs) for the lit/len and distance lengths.
        let all = Array(litLengths[0..<nlit]) + distLengths
        var clSymbols: [(UInt8, UInt8)] = []   // (symbol, extra value)
        var k = 0
        while k < all.count {
            if all[k] == 0 {
                var z = 1
                while k + z < all.count && all[k + z] == 0 && z < 138 { z += 1 }
                if z >= 11 { clSymbols.append((18, UInt8(z - 11))); k += z; continue }
                if z >= 3 { clSymbols.append((17, UInt8(z - 3))); k += z; continue }
            }
            clSymbols.append((all[k], 0)); k += 1
        }
        var clFreq = [Int](repeating: 0, count: 19)
        for (s, _) in clSymbols { clFreq[Int(s)] += 1 }
        let clLengths = Self.codeLengths(clFreq, limit: 7)
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var hclen = 19
        while hclen > 4 && clLengths[order[hclen - 1]] == 0 { hclen -= 1 }

        // 3. Size check: fall back to stored blocks when the Huffman block would not be smaller.
        var bits = 3 + 5 + 5 + 4 + 3 * hclen
        for (s, _) in clSymbols { bits += Int(clLengths[Int(s)]) + (s == 17 ? 3 : s == 18 ? 7 : 0) }
        for s in 0..<286 where litFreq[s] > 0 {
            bits += litFreq[s] * (Int(litLengths[s]) + (s >= 265 && s < 285 ? (s - 261) / 4 : 0))
        }
        bits += matches * 1   // distance code, 1 bit, no extra bits
        out[0] = 0x78; out[1] = 0x01
        var o = 2
        if (bits + 7) / 8 >= n + 5 * (n / 65535 + 1) {
            o = Self.stored(input, n, out, o)
        } else {
            var w = BitWriter(out + o)
            w.put(1, 1); w.put(2, 2)
            w.put(UInt64(nlit - 257), 5); w.put(UInt64(distLengths.count - 1), 5); w.put(UInt64(hclen - 4), 4)
            for i in 0..<hclen { w.put(UInt64(clLengths[order[i]]), 3) }
            let clCodes = Self.canonicalCodes(clLengths)
            for (s, e) in clSymbols {
                w.put(UInt64(clCodes[Int(s)]), Int(clLengths[Int(s)]))
                if s == 17 { w.put(UInt64(e), 3) } else if s == 18 { w.put(UInt64(e), 7) }
            }
            // Per lit/len symbol: reversed code | extra bits above it packed per match length.
            let litCodes = Self.canonicalCodes(litLengths)
            let distCode: UInt64 = 0, distBits = 1   // distance code 0 is the code "0" of length 1
            var matchCode = [UInt64](repeating: 0, count: 259), matchBits = [Int](repeating: 0, count: 259)
            for l in 3...258 {
                let c = Int(lt.code[l]), cl = Int(litLengths[c])
                matchCode[l] = UInt64(litCodes[c]) | (UInt64(lt.extraValue[l]) << cl) | (distCode << (cl + Int(lt.extraBits[l])))
                matchBits[l] = cl + Int(lt.extraBits[l]) + distBits
            }
            var litCode64 = [UInt64](repeating: 0, count: 256), litBits = [Int](repeating: 0, count: 256)
            for s in 0..<256 { litCode64[s] = UInt64(litCodes[s]); litBits[s] = Int(litLengths[s]) }
            litCode64.withUnsafeBufferPointer { lc in litBits.withUnsafeBufferPointer { lb in
                matchCode.withUnsafeBufferPointer { mc in matchBits.withUnsafeBufferPointer { mb in
                    for i in 0..<count {
                        let s = Int(sym[i])
                        if s & 0x8000 == 0 { w.put(lc[s], lb[s]) } else { let l = s & 0x7fff; w.put(mc[l], mb[l]) }
                    }
                } }
            } }
            w.put(UInt64(litCodes[256]), Int(litLengths[256]))
            o += w.finish()
        }
        let a = UInt32(adler32(1, input, uInt(n)))
        out[o] = UInt8(a >> 24); out[o + 1] = UInt8((a >> 16) & 0xff); out[o + 2] = UInt8((a >> 8) & 0xff); out[o + 3] = UInt8(a & 0xff)
        return o + 4
    }

    /// Stored blocks (≤ 65535 bytes each), the last one final.
    private static func stored(_ input: UnsafePointer<UInt8>, _ n: Int, _ out: UnsafeMutablePointer<UInt8>, _ start: Int) -> Int {
        var o = start, i = 0
        repeat {
            let len = Swift.min(65535, n - i)
            out[o] = i + len == n ? 1 : 0
            out[o + 1] = UInt8(len & 0xff); out[o + 2] = UInt8(len >> 8)
            out[o + 3] = UInt8(~len & 0xff); out[o + 4] = UInt8((~len >> 8) & 0xff)
            o += 5
            if len > 0 { (out + o).update(from: input + i, count: len) }
            o += len; i += len
        } while i < n
        return o
    }

    /// Huffman code lengths for `freq` (0 = unused), none longer than `limit`; at least two symbols
    /// get a code (a one-symbol alphabet gets a second, unused code: complete codes only).
    static func codeLengths(_ freq: [Int], limit: Int) -> [UInt8] {
        var f = freq
        var used = f.indices.filter { f[$0] > 0 }
        if used.count < 2 {
            let extra = used.first == 0 ? 1 : 0
            f[extra] = Swift.max(f[extra], 1)
            used = f.indices.filter { f[$0] > 0 }
        }
        while true {
            let lengths = huffmanLengths(f, used)
            if lengths.max()! <= UInt8(limit) { return lengths }
            for i in used { f[i] = Swift.max(1, f[i] / 2) }   // flatten the distribution and retry
        }
    }

    /// Plain Huffman code lengths (two-queue construction over the sorted used symbols).
    private static func huffmanLengths(_ f: [Int], _ used: [Int]) -> [UInt8] {
        let leaves = used.sorted { f[$0] != f[$1] ? f[$0] < f[$1] : $0 < $1 }
        let m = leaves.count
        var weight = [Int](repeating: 0, count: 2 * m), parent = [Int](repeating: -1, count: 2 * m)
        for (i, s) in leaves.enumerated() { weight[i] = f[s] }
        var li = 0, ni = m, next = m
        func take() -> Int {
            if li < m && (ni >= next || weight[li] <= weight[ni]) { li += 1; return li - 1 }
            ni += 1; return ni - 1
        }
        while next < 2 * m - 1 {
            let a = take(), b = take()
            weight[next] = weight[a] + weight[b]; parent[a] = next; parent[b] = next
            next += 1
        }
        var depth = [Int](repeating: 0, count: 2 * m)
        var lengths = [UInt8](repeating: 0, count: f.count)
        if 2 * m - 2 >= 0 {
            for i in stride(from: 2 * m - 3, through: 0, by: -1) { depth[i] = depth[parent[i]] + 1 }
        }
        for (i, s) in leaves.enumerated() { lengths[s] = UInt8(Swift.min(depth[i], 255)) }
        return lengths
    }

    /// Canonical codes (RFC 1951 §3.2.2), bit-reversed for an LSB-first bit writer.
    static func canonicalCodes(_ lengths: [UInt8]) -> [UInt32] {
        var blCount = [Int](repeating: 0, count: 16)
        for l in lengths where l > 0 { blCount[Int(l)] += 1 }
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for bits in 1..<16 { code = (code + blCount[bits - 1]) << 1; nextCode[bits] = code }
        var codes = [UInt32](repeating: 0, count: lengths.count)
        for (s, l) in lengths.enumerated() where l > 0 {
            var c = nextCode[Int(l)], r: UInt32 = 0
            nextCode[Int(l)] += 1
            for _ in 0..<Int(l) { r = (r << 1) | UInt32(c & 1); c >>= 1 }
            codes[s] = r
        }
        return codes
    }
}

/// LSB-first bit output with a 64-bit buffer (writes ≤ 32 bits per call).
private struct BitWriter {
    let base: UnsafeMutablePointer<UInt8>
    var p: UnsafeMutablePointer<UInt8>
    var buffer: UInt64 = 0
    var filled = 0

    init(_ base: UnsafeMutablePointer<UInt8>) { self.base = base; p = base }

    @inline(__always) mutating func put(_ bits: UInt64, _ n: Int) {
        buffer |= bits << UInt64(filled)
        filled += n
        if filled >= 32 {
            UnsafeMutableRawPointer(p).storeBytes(of: UInt32(truncatingIfNeeded: buffer).littleEndian, as: UInt32.self)
            p += 4; buffer >>= 32; filled -= 32
        }
    }

    /// Flushes the partial byte; returns the bytes written.
    mutating func finish() -> Int {
        while filled > 0 { p.pointee = UInt8(truncatingIfNeeded: buffer); p += 1; buffer >>= 8; filled = Swift.max(0, filled - 8) }
        return p - base
    }
}
