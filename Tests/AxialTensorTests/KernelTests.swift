import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

@Suite("Kernels")
struct KernelTests {
    /// Polynomial exp/tanh/erf against libm (Double) on a dense grid.
    @Test func polynomialMathMatchesLibm() {
        var worstExp = 0.0, worstTanh = 0.0, worstErf = 0.0
        for i in 0...20000 {
            let x = Float(-20 + 40 * Double(i) / 20000)
            let e = Double(Kernels.exp(x)), re = Foundation.exp(Double(x))
            worstExp = nanMax(worstExp, Swift.abs(e - re) / re)
            let t = Double(Kernels.tanh(x)), rt = Foundation.tanh(Double(x))
            worstTanh = nanMax(worstTanh, Swift.abs(t - rt) / Swift.max(Swift.abs(rt), 1e-30))
            let f = Double(Kernels.erf(x)), rf = Foundation.erf(Double(x))
            worstErf = nanMax(worstErf, Swift.abs(f - rf))
        }
        #expect(worstExp < 3e-7, "exp rel err \(worstExp)")
        #expect(worstTanh < 5e-7, "tanh rel err \(worstTanh)")
        #expect(worstErf < 3e-7, "erf abs err \(worstErf)")
        #expect(Kernels.exp(-.infinity) == 0 && Kernels.exp(-100) == 0 && Kernels.exp(100) == .infinity)
    }

    @Test func simdSumsMatchNaive() {
        var g = RandomGenerator(seed: 9)
        for n in [0, 1, 7, 8, 15, 16, 31, 33, 100, 1001] {
            let a = Tensor.normal([n], generator: &g), b = Tensor.normal([n], generator: &g)
            var s = 0.0, ss = 0.0, d = 0.0
            for i in 0..<n { let x = Double(a.scalars[i]); s += x; ss += x * x; d += x * Double(b.scalars[i]) }
            a.withUnsafeBufferPointer { p in
                b.withUnsafeBufferPointer { q in
                    let base = p.baseAddress ?? UnsafePointer(a.storage.pointer), qb = q.baseAddress ?? UnsafePointer(b.storage.pointer)
                    #expect(Swift.abs(Double(Kernels.sum(base, n)) - s) < 1e-4)
                    #expect(Swift.abs(Double(Kernels.sumOfSquares(base, n)) - ss) < 1e-3)
                    #expect(Swift.abs(Double(Kernels.dot(base, qb, n)) - d) < 1e-4)
                }
            }
        }
    }

    /// Big enough to take the row-partitioned GEMM and parallel elementwise paths.
    @Test func partitionedGemmMatchesSingleCall() {
        var g = RandomGenerator(seed: 11)
        let x = Tensor.normal([300, 96], generator: &g), w = Tensor.normal([80, 96], generator: &g), b = Tensor.normal([80], generator: &g)
        #expect(300 * 80 * 96 >= BLAS.partitionThreshold)
        let split = linear(x, weight: w, bias: b)
        let saved = BLAS.partitionRows
        BLAS.partitionRows = false
        let single = linear(x, weight: w, bias: b)
        BLAS.partitionRows = saved
        #expect(closeness(split, single, atol: 1e-5, rtol: 1e-5) == nil)
        // Naive reference for a few entries.
        for (i, j) in [(0, 0), (150, 40), (299, 79)] {
            var s = Double(b.scalars[j])
            for k in 0..<96 { s += Double(x.scalars[i * 96 + k]) * Double(w.scalars[j * 96 + k]) }
            #expect(Swift.abs(Double(split.scalars[i * 80 + j]) - s) < 1e-3)
        }
    }

    @Test func parallelBroadcastMatchesSerial() {
        var g = RandomGenerator(seed: 12)
        let a = Tensor.normal([64, 1, 700], generator: &g), b = Tensor.normal([3, 700], generator: &g)
        let par = a * b + softmax(a, axis: -1)
        let saved = Parallel.workerCount
        Parallel.workerCount = 1
        let ser = a * b + softmax(a, axis: -1)
        Parallel.workerCount = saved
        #expect(par.scalars == ser.scalars)
    }

    @Test func gemmBiasFoldAndTransposes() {
        // C = 2·Aᵀ·Bᵀ + 1·C with A [k=2, m=2] and B [n=2, k=2] stored row-major.
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [1, 1, 1, 1]
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(transA: true, transB: true, m: 2, n: 2, k: 2, alpha: 2, a: ap.baseAddress!, lda: 2, b: bp.baseAddress!, ldb: 2,
                       beta: 1, c: cp.baseAddress!, ldc: 2)
        } } }
        // Aᵀ = [[1,3],[2,4]], Bᵀ = [[5,7],[6,8]] → AᵀBᵀ = [[23,31],[34,46]]
        #expect(c == [47, 63, 69, 93])
    }
}

/// max that keeps a NaN (Swift's `max(x, .nan)` is `x`), so a NaN result fails the bound.
private func nanMax(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }

/// The exact-size cache of freed 32 MiB+ tensor buffers (`LargeBlockCache`).
@Suite struct LargeBlockCacheTests {
    @Test func reusesExactSizesWithinCapacity() {
        let mib = 1 << 20
        let cache = LargeBlockCache(capacity: 80 * mib)
        #expect(cache.take(40 * mib) == nil)
        let a = UnsafeMutableRawPointer.allocate(byteCount: 40 * mib, alignment: 64)
        let small = UnsafeMutableRawPointer.allocate(byteCount: 1 * mib, alignment: 64)
        #expect(!cache.give(small, bytes: 1 * mib))            // below 32 MiB: freed by the caller
        small.deallocate()
        #expect(cache.give(a, bytes: 40 * mib))
        #expect(cache.take(40 * mib) == a)                      // exact size: a hit
        #expect(cache.cachedBytes == 0)
        let a2 = UnsafeMutableRawPointer.allocate(byteCount: 40 * mib, alignment: 64)
        #expect(cache.give(a2, bytes: 40 * mib))
        #expect(cache.take(36 * mib) == nil)                    // a miss frees as much as it will allocate
        #expect(cache.cachedBytes == 0 && cache.take(40 * mib) == nil)
        // Over capacity the oldest block goes first.
        let b = UnsafeMutableRawPointer.allocate(byteCount: 40 * mib, alignment: 64)
        let c = UnsafeMutableRawPointer.allocate(byteCount: 36 * mib, alignment: 64)
        #expect(cache.give(a, bytes: 40 * mib) && cache.give(b, bytes: 40 * mib))
        #expect(cache.cachedBytes == 80 * mib)
        #expect(cache.give(c, bytes: 36 * mib))                 // evicts a
        #expect(cache.cachedBytes == 76 * mib)
        #expect(cache.take(40 * mib) == b && cache.take(36 * mib) == c && cache.take(40 * mib) == nil)
        c.deallocate(); b.deallocate()
        let big = UnsafeMutableRawPointer.allocate(byteCount: 96 * mib, alignment: 64)
        #expect(!cache.give(big, bytes: 96 * mib))              // larger than the whole cache
        big.deallocate()
        cache.drain()
    }

    @Test func offWhenAskedOrUnderASan() {
        #expect(LargeBlockCache(environment: ["AXIAL_MALLOC": "system"]).capacity == 0)
        #expect(LargeBlockCache(environment: ["ASAN_OPTIONS": "detect_leaks=0"]).capacity == 0)
        let asan = MemoryTuning.addressSanitizerActive   // under Tools/asan the cache is always off
        #expect(LargeBlockCache(environment: ["AXIAL_TENSOR_CACHE_MB": "64"]).capacity == (asan ? 0 : 64 << 20))
        #expect(LargeBlockCache(environment: [:]).capacity == (asan ? 0 : 1 << 30))
        let off = LargeBlockCache(capacity: 0)
        let p = UnsafeMutableRawPointer.allocate(byteCount: 40 << 20, alignment: 64)
        #expect(!off.give(p, bytes: 40 << 20))
        p.deallocate()
    }

    /// A tensor's storage comes back for the next tensor of the same size, with every element written.
    @Test func tensorsReuseBuffers() {
        let n = (32 << 20) / 4 + 16
        var first: UnsafeMutablePointer<Float>?
        do { let t = Tensor(repeating: 1, shape: [n]); first = t.storage.pointer }
        let u = Tensor(repeating: 2, shape: [n])
        if LargeBlockCache.shared.capacity > 0 { #expect(u.storage.pointer == first) }
        #expect(u.scalars.allSatisfy { $0 == 2 })
    }
}
