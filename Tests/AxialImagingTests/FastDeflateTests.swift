import CZlib
import AxialCore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// `FastDeflate` (the fast PNG path's zlib stream): zlib's `uncompress` gives back every input
/// exactly — empty, tiny, flat, runs at and around the match limits, CT-like slices, incompressible
/// noise (stored blocks, several of them) — and the Huffman codes are complete and ≤ 15 bits.
@Suite struct FastDeflateTests {
    func roundTrip(_ input: [UInt8], _ what: String) -> Int {
        var d = FastDeflate()
        defer { d.release() }
        var out = [UInt8](repeating: 0, count: FastDeflate.bound(input.count))
        let n = input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in
            d.compress(i.baseAddress ?? UnsafePointer(bitPattern: 1)!, input.count, into: o.baseAddress!)
        } }
        #expect(n <= out.count, "\(what): \(n) bytes > bound \(out.count)")
        var back = [UInt8](repeating: 0, count: input.count + 1)
        var backCount = uLongf(back.count)
        let rc = back.withUnsafeMutableBufferPointer { b in out.withUnsafeBufferPointer { o in
            uncompress(b.baseAddress!, &backCount, o.baseAddress!, uLong(n))
        } }
        #expect(rc == Z_OK, "\(what): zlib uncompress returned \(rc)")
        #expect(Int(backCount) == input.count && Array(back.prefix(Int(backCount))) == input, "\(what): round trip")
        return n
    }

    func ctLike(_ w: Int, _ h: Int, seed: UInt32) -> [UInt8] {
        var g = seed
        var px = [UInt8](repeating: 0, count: (w + 1) * h)
        for y in 0..<h {
            px[y * (w + 1)] = 0   // PNG filter byte
            for x in 0..<w {
                g = g &* 1664525 &+ 1013904223
                let dx = x - w / 2, dy = y - h / 2
                let inside = dx * dx + dy * dy < (w * w) / 6
                px[y * (w + 1) + 1 + x] = inside ? UInt8(clamping: 120 + Int(g >> 28) + (x % 50 < 3 ? 100 : 0)) : (y < 4 ? 255 : 0)
            }
        }
        return px
    }

    @Test func roundTripsEveryKindOfInput() {
        _ = roundTrip([], "empty")
        _ = roundTrip([7], "one byte")
        _ = roundTrip([7, 7], "two equal bytes")
        _ = roundTrip([1, 2, 3], "three bytes")
        for l in [2, 3, 4, 257, 258, 259, 260, 261, 516, 517, 1000] {
            _ = roundTrip([9] + [UInt8](repeating: 4, count: l) + [9, 9, 9], "run of \(l)")
        }
        let zeros = roundTrip([UInt8](repeating: 0, count: 300_000), "300 k zeros")
        #expect(zeros < 3000)
        _ = roundTrip([UInt8](repeating: 255, count: 70_000), "constant 255")
        var g = RandomGenerator(seed: 11)
        for n in [100, 65_535, 65_536, 131_071, 140_000] {
            let noise = (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let c = roundTrip(noise, "noise \(n)")
            #expect(c <= n + 5 * (n / 65_535 + 1) + 6, "noise \(n): stored blocks, \(c) bytes")
        }
        // Few symbols with very skewed counts (deep Huffman trees that must be limited to 15 bits).
        var skewed: [UInt8] = []
        var count = 1
        for s in 0..<20 {
            for _ in 0..<count { skewed.append(UInt8(s)); skewed.append(UInt8(s + 100)) }
            count = count * 3 / 2 + 1
        }
        _ = roundTrip(skewed, "skewed counts")
        let ct = ctLike(512, 512, seed: 5)
        let c = roundTrip(ct, "CT-like 512²")
        // Compression close to zlib's Z_RLE at level 1 (the encoder it replaces) on the same bytes.
        var bound = compressBound(uLong(ct.count)), z = [UInt8](repeating: 0, count: Int(bound))
        var strm = z_stream()
        deflateInit2_(&strm, 1, Z_DEFLATED, 15, 8, Z_RLE, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        ct.withUnsafeBufferPointer { i in z.withUnsafeMutableBufferPointer { o in
            strm.next_in = UnsafeMutablePointer(mutating: i.baseAddress!); strm.avail_in = uInt(ct.count)
            strm.next_out = o.baseAddress!; strm.avail_out = uInt(bound)
            _ = deflate(&strm, Z_FINISH)
        } }
        bound = strm.total_out
        deflateEnd(&strm)
        #expect(Double(c) <= 1.1 * Double(bound), "FastDeflate \(c) bytes vs zlib Z_RLE \(bound)")
    }

    @Test func codeLengthsAreCompleteAndLimited() {
        // Fibonacci counts: an unlimited Huffman code would be 29 deep.
        var f = [Int](repeating: 0, count: 286)
        var (a, b) = (1, 1)
        for s in 0..<30 { f[s] = a; (a, b) = (b, a + b) }
        for (freq, limit) in [(f, 15), (Array(f.prefix(19)), 7), ([0, 0, 5] + [Int](repeating: 0, count: 283), 15)] {
            let l = FastDeflate.codeLengths(freq, limit: limit)
            #expect(l.max()! <= UInt8(limit))
            let kraft = l.filter { $0 > 0 }.reduce(0.0) { $0 + pow(2.0, -Double($1)) }
            #expect(kraft == 1, "Kraft sum \(kraft): the code must be complete")
            for (s, n) in freq.enumerated() where n > 0 { #expect(l[s] > 0) }
        }
    }
}
