import AxialTensor
import Foundation

// Tape-free inference kernels shared by the slice encoders (ViT, MambaOut): row-partitioned
// GEMMs with fused epilogues (bias, GELU, residual), row LayerNorm, and attention per
// (batch, head) pair, all over raw buffers (see shared PERFORMANCE.md). Only used when grad mode
// is off; the training path composes the differentiable ops of AxialTensor.

/// A pool of activation buffers reused across forward passes of one model (page-faulting fresh
/// 77 MB buffers per batch costs more than the GELU written into them). Not thread-safe: one
/// forward at a time per model (the model holds a lock around its use).
final class ActivationPool: @unchecked Sendable {
    private var buffers: [String: TensorStorage] = [:]
    let lock = NSLock()

    /// A buffer of exactly `count` floats under `name` (contents undefined; the storage behind it
    /// may be larger). The count travels with the pointer so that every kernel checks its shapes
    /// against it at entry.
    func buffer(_ name: String, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(count >= 0, "ActivationPool: negative buffer size \(count) for '\(name)'")
        if let b = buffers[name], b.count >= count { return UnsafeMutableBufferPointer(start: b.pointer, count: count) }
        let s = TensorStorage(uninitializedCount: count)
        buffers[name] = s
        return UnsafeMutableBufferPointer(start: s.pointer, count: count)
    }

    func clear() { buffers.removeAll() }
}

enum EncoderKernels {
    /// What a GEMM does after C = A·Wᵀ: add nothing, add bias, add bias then GELU (erf).
    enum Epilogue { case none, bias, biasGELU }
    /// An activation fused into `linear`'s epilogue (after the bias).
    enum FusedActivation { case gelu, quickGELU }

    /// C[m, n] (=|+=) A[m, k]·W[n, k]ᵀ + bias, then the epilogue, rows split over workers (OpenBLAS
    /// single-threaded per worker). `accumulate`: C += (residual add folded in with beta = 1).
    static func linear(m: Int, n: Int, k: Int, a: UnsafeBufferPointer<Float>, lda: Int, weight: Tensor, bias: Tensor?,
                       c: UnsafeMutableBufferPointer<Float>, ldc: Int, accumulate: Bool = false, gelu: Bool = false,
                       activation: FusedActivation? = nil) {
        let activation = activation ?? (gelu ? .gelu : nil)
        precondition(weight.shape == [n, k], "linear kernel: weight \(weight.shape) != [\(n), \(k)]")
        precondition(bias == nil || bias!.count == n, "linear kernel: bias \(bias!.shape) != [\(n)]")
        precondition(m >= 0 && lda >= k && ldc >= n, "linear kernel: m \(m), k \(k) / lda \(lda), n \(n) / ldc \(ldc)")
        precondition(m == 0 || (a.count >= (m - 1) * lda + k && c.count >= (m - 1) * ldc + n),
                     "linear kernel: [\(m), \(k)] (lda \(lda)) × [\(n), \(k)]ᵀ → [\(m), \(n)] (ldc \(ldc)) does not fit buffers of \(a.count) / \(c.count) floats")
        guard m > 0 else { return }
        let ap = SendablePointer(a.baseAddress!), cp = SendablePointer(c.baseAddress!), wp = SendablePointer(weight.storage.pointer)
        let bp = bias.map { SendablePointer($0.storage.pointer) }
        let grain = max(1, (1 << 21) / max(n * k, 1))
        parallelFor(m, grain: grain) { r in
            let rows = r.count
            let cc = cp.p + r.lowerBound * ldc
            var beta: Float = accumulate ? 1 : 0
            if let bp, !accumulate {
                for i in 0..<rows { (cc + i * ldc).update(from: bp.p, count: n) }
                beta = 1
            }
            BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: k, a: ap.p + r.lowerBound * lda, lda: lda,
                       b: wp.p, ldb: k, beta: beta, c: cc, ldc: ldc, partition: false)
            if let bp, accumulate {
                for i in 0..<rows { let row = cc + i * ldc; for j in 0..<n { row[j] += bp.p[j] } }
            }
            switch activation {
            case .gelu?:
                for i in 0..<rows { Kernels.geluInPlace(cc + i * ldc, n) }
            case .quickGELU?:
                for i in 0..<rows { Kernels.quickGeluInPlace(cc + i * ldc, n) }
            case nil: break
            }
        }
    }

    /// LayerNorm of `rows` rows of width `d` (strides `lds`/`ldo`), torch semantics (biased variance).
    static func layerNorm(rows: Int, d: Int, x: UnsafeBufferPointer<Float>, ldx: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                          out: UnsafeMutableBufferPointer<Float>, ldo: Int) {
        precondition(weight == nil || weight!.count == d, "layerNorm kernel: weight \(weight!.shape) != [\(d)]")
        precondition(bias == nil || bias!.count == d, "layerNorm kernel: bias \(bias!.shape) != [\(d)]")
        precondition(rows >= 0 && d > 0 && ldx >= d && ldo >= d, "layerNorm kernel: rows \(rows), d \(d), ldx \(ldx), ldo \(ldo)")
        precondition(rows == 0 || (x.count >= (rows - 1) * ldx + d && out.count >= (rows - 1) * ldo + d),
                     "layerNorm kernel: \(rows) rows of \(d) (strides \(ldx) / \(ldo)) do not fit buffers of \(x.count) / \(out.count) floats")
        guard rows > 0 else { return }
        let xp = SendablePointer(x.baseAddress!), op = SendablePointer(out.baseAddress!)
        let wp = weight.map { SendablePointer($0.storage.pointer) }, bp = bias.map { SendablePointer($0.storage.pointer) }
        parallelFor(rows, grain: max(1, 16384 / max(d, 1))) { r in
            for row in r {
                let s = xp.p + row * ldx, o = op.p + row * ldo
                let mean = Kernels.sum(s, d) / Float(d)
                var v: Float = 0
                for k in 0..<d { let t = s[k] - mean; v += t * t }
                let rs = 1 / (v / Float(d) + eps).squareRoot()
                if let wp, let bp {
                    for k in 0..<d { o[k] = ((s[k] - mean) * rs) * wp.p[k] + bp.p[k] }
                } else if let wp {
                    for k in 0..<d { o[k] = ((s[k] - mean) * rs) * wp.p[k] }
                } else {
                    for k in 0..<d { o[k] = (s[k] - mean) * rs }
                }
            }
        }
    }

    /// Multi-head self-attention core on a packed qkv buffer: for every (batch, head) pair,
    /// out[b, i, h·hd + j] = Σ softmax(q·kᵀ·scale)·v, with q, k, v read in place from
    /// qkv[b·n + i, (0|1|2)·dim + h·hd + j] (row stride 3·dim). Pairs are split over workers,
    /// each with its own n×n score buffer.
    static func attention(batch: Int, tokens n: Int, heads: Int, headDim hd: Int, qkv: UnsafeBufferPointer<Float>,
                          out: UnsafeMutableBufferPointer<Float>) {
        let dim = heads * hd, ld = 3 * dim
        precondition(batch >= 0 && n > 0 && heads > 0 && hd > 0, "attention kernel: batch \(batch), tokens \(n), heads \(heads), head dim \(hd)")
        precondition(qkv.count >= batch * n * ld && out.count >= batch * n * dim,
                     "attention kernel: [\(batch), \(n), 3·\(dim)] → [\(batch), \(n), \(dim)] does not fit buffers of \(qkv.count) / \(out.count) floats")
        guard batch > 0 else { return }
        let scale = 1 / Float(hd).squareRoot()
        let qp = SendablePointer(qkv.baseAddress!), op = SendablePointer(out.baseAddress!)
        parallelFor(batch * heads) { r in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
            defer { scores.deallocate() }
            for pair in r {
                let b = pair / heads, h = pair % heads
                let base = qp.p + b * n * ld + h * hd
                BLAS.sgemm(transA: false, transB: true, m: n, n: n, k: hd, alpha: scale, a: base, lda: ld,
                           b: base + dim, ldb: ld, beta: 0, c: scores, ldc: n, partition: false)
                for i in 0..<n { softmaxRow(scores + i * n, n) }
                BLAS.sgemm(transA: false, transB: false, m: n, n: hd, k: n, a: scores, lda: n,
                           b: base + 2 * dim, ldb: ld, beta: 0, c: op.p + b * n * dim + h * hd, ldc: dim, partition: false)
            }
        }
    }

    @inline(__always)
    static func softmaxRow(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for k in 0..<n { m = max(m, p[k]) }
        Kernels.expShiftedInPlace(p, n, shift: m)
        let inv = 1 / Kernels.sum(p, n)
        for k in 0..<n { p[k] *= inv }
    }
}
