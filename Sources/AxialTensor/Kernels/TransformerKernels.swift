import Foundation

// Raw-pointer kernels behind the fused transformer training ops (Ops/FusedTransformer.swift):
// row LayerNorm forward / recompute / backward with mean and 1/σ per row, row-tiled GEMMs with
// the bias folded in (beta = 1), and memory-efficient attention over a packed qkv buffer that
// keeps only the log-sum-exp of every score row for the backward. Column sums (bias and LayerNorm
// affine gradients) go through fixed-size row chunks whose partial sums are added in chunk order,
// so the result does not depend on the worker count.

/// Reusable scratch buffers of the fused ops (a fresh 77 MB buffer page-faults on every use,
/// which costs more than the GELU written into it). A buffer is taken for the duration of one op
/// and given back; concurrent ops (data-parallel ranks as threads) each get their own.
final class TransformerScratch: @unchecked Sendable {
    static let shared = TransformerScratch()
    private let lock = NSLock()
    private var free: [TensorStorage] = []
    /// At most this many idle buffers are kept (the ops of one ViT block use four at a time).
    private let keep = 6

    /// A buffer of at least `count` floats (contents undefined).
    func take(_ count: Int) -> TensorStorage {
        lock.lock()
        var best = -1
        for (i, s) in free.enumerated() where s.count >= count && (best < 0 || s.count < free[best].count) { best = i }
        if best >= 0 { let s = free.remove(at: best); lock.unlock(); return s }
        lock.unlock()
        return TensorStorage(uninitializedCount: count)
    }

    /// Returns a buffer taken with `take`.
    func give(_ s: TensorStorage) {
        lock.lock(); defer { lock.unlock() }
        free.append(s)
        if free.count > keep {
            // Drop the smallest idle buffer.
            var small = 0
            for i in free.indices where free[i].count < free[small].count { small = i }
            free.remove(at: small)
        }
    }

    /// Frees every idle buffer.
    func clear() { lock.lock(); free.removeAll(); lock.unlock() }
}

enum TransformerKernels {
    /// Rows per GEMM tile of the row-tiled forward (LayerNorm → GEMM → epilogue stay in cache).
    static let rowTile = 256
    /// Rows per partial sum of the column reductions.
    static let reduceChunk = 128

    /// Calls `body` on row tiles of `0..<m`, tiles split over the workers.
    @inline(__always)
    static func forEachTile(_ m: Int, _ body: (Range<Int>) -> Void) {
        let t = rowTile, tiles = (m + t - 1) / t
        parallelFor(tiles) { tr in for i in tr { body(i * t ..< Swift.min(m, (i + 1) * t)) } }
    }

    // MARK: LayerNorm

    /// Row LayerNorm of `x` rows `r` (width d, contiguous) into `out`; stores mean and 1/σ per row.
    /// Same formula and summation order as AxialTensor's `layerNorm`.
    @inline(__always)
    static func layerNormRows(_ r: Range<Int>, d: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                              eps: Float, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        for row in r {
            let s = x + row * d
            let mu = Kernels.sum(s, d) / Float(d)
            let v = Kernels.sumOfSquaredDeviations(s, d, mean: mu)
            let rs = 1 / (v / Float(d) + eps).squareRoot()
            mean[row] = mu; rstd[row] = rs
            normalizeRow(s, out + row * d, d, mu, rs, weight, bias)
        }
    }

    /// out = ((x − mean)·rstd)·weight + bias for rows `r`, from stored statistics (the backward's recompute).
    @inline(__always)
    static func layerNormRecompute(_ r: Range<Int>, d: Int, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        for row in r { normalizeRow(x + row * d, out + row * d, d, mean[row], rstd[row], weight, bias) }
    }

    @inline(__always)
    static func normalizeRow(_ s: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ d: Int, _ mu: Float, _ rs: Float,
                             _ w: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?) {
        if let w, let b {
            for k in 0..<d { o[k] = ((s[k] - mu) * rs) * w[k] + b[k] }
        } else if let w {
            for k in 0..<d { o[k] = ((s[k] - mu) * rs) * w[k] }
        } else if let b {
            for k in 0..<d { o[k] = ((s[k] - mu) * rs) + b[k] }
        } else {
            for k in 0..<d { o[k] = (s[k] - mu) * rs }
        }
    }

    /// LayerNorm backward over `rows` rows of width d, with an optional residual gradient added:
    ///   dx = residual + rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),  ĝ = dy·weight,  x̂ = (x − mean)·rstd;
    ///   dWeight = Σ dy·x̂, dBias = Σ dy, residualSum = Σ residual (column sums; each output optional).
    static func layerNormBackward(rows: Int, d: Int, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                  weight: UnsafePointer<Float>?, dy: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                                  dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
                                  residualSum: UnsafeMutablePointer<Float>?) {
        precondition(rows >= 0 && d > 0, "layerNormBackward: rows \(rows), width \(d)")
        precondition(residualSum == nil || residual != nil, "layerNormBackward: residual sum without a residual")
        guard rows > 0 else {
            for out in [dWeight, dBias, residualSum] { if let out { out.initialize(repeating: 0, count: d) } }
            return
        }
        let chunk = reduceChunk, chunks = (rows + chunk - 1) / chunk
        let wantSums = dWeight != nil || dBias != nil || residualSum != nil
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: wantSums ? chunks * 3 * d : 1)
        defer { partial.deallocate() }
        if wantSums { partial.initialize(repeating: 0, count: chunks * 3 * d) }
        let invD = 1 / Float(d)
        parallelFor(chunks) { cr in
            let xh = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { xh.deallocate() }
            for c in cr {
                let pw = partial + c * 3 * d, pb = pw + d, pr = pb + d
                for row in (c * chunk)..<Swift.min(rows, (c + 1) * chunk) {
                    let s = x + row * d, g = dy + row * d
                    let mu = mean[row], rs = rstd[row]
                    for k in 0..<d { xh[k] = (s[k] - mu) * rs }
                    if let dx {
                        let o = dx + row * d
                        if let w = weight {
                            let m1 = Kernels.dot(g, w, d) * invD, m2 = Kernels.dot3(g, w, xh, d) * invD
                            for k in 0..<d { o[k] = rs * (g[k] * w[k] - m1 - xh[k] * m2) }
                        } else {
                            let m1 = Kernels.sum(g, d) * invD, m2 = Kernels.dot(g, xh, d) * invD
                            for k in 0..<d { o[k] = rs * (g[k] - m1 - xh[k] * m2) }
                        }
                        if let residual { let res = residual + row * d; for k in 0..<d { o[k] += res[k] } }
                    }
                    if dWeight != nil { for k in 0..<d { pw[k] = pw[k].addingProduct(g[k], xh[k]) } }
                    if dBias != nil { for k in 0..<d { pb[k] += g[k] } }
                    if residualSum != nil, let residual { let res = residual + row * d; for k in 0..<d { pr[k] += res[k] } }
                }
            }
        }
        if wantSums {
            for (slot, out) in [(0, dWeight), (1, dBias), (2, residualSum)] {
                guard let out else { continue }
                out.initialize(repeating: 0, count: d)
                for c in 0..<chunks { let p = partial + c * 3 * d + slot * d; for k in 0..<d { out[k] += p[k] } }
            }
        }
    }

    // MARK: Column sums, GELU

    /// out[j] = Σ_i p[i·ld + j] for j < cols (row chunks, partials added in order).
    static func columnSums(rows: Int, cols: Int, _ p: UnsafePointer<Float>, ld: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(rows >= 0 && cols >= 0 && ld >= cols, "columnSums: rows \(rows), cols \(cols), ld \(ld)")
        out.initialize(repeating: 0, count: cols)
        guard rows > 0, cols > 0 else { return }
        let chunk = reduceChunk, chunks = (rows + chunk - 1) / chunk
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * cols)
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: chunks * cols)
        parallelFor(chunks) { cr in
            for c in cr {
                let o = partial + c * cols
                for row in (c * chunk)..<Swift.min(rows, (c + 1) * chunk) {
                    let s = p + row * ld
                    for j in 0..<cols { o[j] += s[j] }
                }
            }
        }
        for c in 0..<chunks { let s = partial + c * cols; for j in 0..<cols { out[j] += s[j] } }
    }

    /// a = gelu(u) (erf form) over n elements, split over workers.
    static func gelu(_ u: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelFor(n, grain: 1 << 15) { r in TransformerSIMD.geluForward(u + r.lowerBound, a + r.lowerBound, r.count) }
    }

    /// da ← da·gelu′(u) in place over [rows, cols] (contiguous), and out[j] = Σ_i of the result.
    static func geluBackwardInPlace(rows: Int, cols: Int, da: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>,
                                    columnSums out: UnsafeMutablePointer<Float>?) {
        out?.initialize(repeating: 0, count: cols)
        guard rows > 0, cols > 0 else { return }
        let chunk = reduceChunk, chunks = (rows + chunk - 1) / chunk
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: out == nil ? 1 : chunks * cols)
        defer { partial.deallocate() }
        if out != nil { partial.initialize(repeating: 0, count: chunks * cols) }
        parallelFor(chunks) { cr in
            for c in cr {
                let o = partial + c * cols
                for row in (c * chunk)..<Swift.min(rows, (c + 1) * chunk) {
                    let g = da + row * cols
                    TransformerSIMD.geluBackward(g, u + row * cols, g, cols)
                    if out != nil { for j in 0..<cols { o[j] += g[j] } }
                }
            }
        }
        if let out { for c in 0..<chunks { let s = partial + c * cols; for j in 0..<cols { out[j] += s[j] } } }
    }

    // MARK: Attention

    /// Query rows per block: all of them while a block's scores fit 1 MB (2¹⁸ floats), else fewer
    /// (at least 16), so the scratch per worker stays bounded for long sequences.
    static func queryBlock(_ n: Int) -> Int { n * n <= 1 << 18 ? n : Swift.max(16, (1 << 18) / n) }

    /// Forward of multi-head self-attention on a packed qkv buffer [B·N, 3·dim] (row stride 3·dim;
    /// q, k, v of head h at columns h·hd, dim + h·hd, 2·dim + h·hd): for every (batch, head) pair and
    /// query block, S = scale·Q·Kᵀ (block × N, one GEMM), exact row softmax, O = P·V (one GEMM) into
    /// out [B·N, dim]; lse[pair·N + i] = max + log Σ exp(s − max) of every row — all the backward keeps.
    static func attentionForward(batch: Int, tokens n: Int, heads: Int, headDim hd: Int, scale: Float,
                                 qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        precondition(batch >= 0 && n > 0 && heads > 0 && hd > 0, "attentionForward: batch \(batch), tokens \(n), heads \(heads), head dim \(hd)")
        let dim = heads * hd, ld = 3 * dim, bq = queryBlock(n)
        parallelFor(batch * heads) { r in
            let s = UnsafeMutablePointer<Float>.allocate(capacity: bq * n)
            defer { s.deallocate() }
            for pair in r {
                let b = pair / heads, h = pair % heads
                let q = qkv + b * n * ld + h * hd, k = q + dim, v = q + 2 * dim
                let o = out + b * n * dim + h * hd, l = lse + pair * n
                var q0 = 0
                while q0 < n {
                    let rows = Swift.min(bq, n - q0)
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: hd, alpha: scale, a: q + q0 * ld, lda: ld,
                               b: k, ldb: ld, beta: 0, c: s, ldc: n, partition: false)
                    for i in 0..<rows {
                        let row = s + i * n
                        let mx = Kernels.maximum(row, n)
                        TransformerSIMD.expShifted(row, n, shift: mx)
                        let sum = Kernels.sum(row, n)
                        let inv = 1 / sum
                        for j in 0..<n { row[j] *= inv }
                        l[q0 + i] = mx + Foundation.log(sum)
                    }
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: n, a: s, lda: n,
                               b: v, ldb: ld, beta: 0, c: o + q0 * dim, ldc: dim, partition: false)
                    q0 += rows
                }
            }
        }
    }

    /// Backward of `attentionForward`: from qkv, out, lse and dOut [B·N, dim] (row stride dim) writes
    /// dqkv [B·N, 3·dim]. Per query block the probabilities are recomputed, P = exp(scale·Q·Kᵀ − lse),
    /// then dP = dO·Vᵀ, D_i = dO_i·O_i, dS = P∘(dP − D), dQ = scale·dS·K, dK += scale·dSᵀ·Q, dV += Pᵀ·dO.
    static func attentionBackward(batch: Int, tokens n: Int, heads: Int, headDim hd: Int, scale: Float,
                                  qkv: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                  dOut: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>) {
        precondition(batch >= 0 && n > 0 && heads > 0 && hd > 0, "attentionBackward: batch \(batch), tokens \(n), heads \(heads), head dim \(hd)")
        let dim = heads * hd, ld = 3 * dim, bq = queryBlock(n)
        parallelFor(batch * heads) { r in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: bq * n), dp = UnsafeMutablePointer<Float>.allocate(capacity: bq * n)
            defer { p.deallocate(); dp.deallocate() }
            for pair in r {
                let b = pair / heads, h = pair % heads
                let q = qkv + b * n * ld + h * hd, k = q + dim, v = q + 2 * dim
                let o = out + b * n * dim + h * hd, dO = dOut + b * n * dim + h * hd, l = lse + pair * n
                let dq = dqkv + b * n * ld + h * hd, dk = dq + dim, dv = dq + 2 * dim
                var q0 = 0
                while q0 < n {
                    let rows = Swift.min(bq, n - q0)
                    let first: Float = q0 == 0 ? 0 : 1
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: hd, alpha: scale, a: q + q0 * ld, lda: ld,
                               b: k, ldb: ld, beta: 0, c: p, ldc: n, partition: false)
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: hd, a: dO + q0 * dim, lda: dim,
                               b: v, ldb: ld, beta: 0, c: dp, ldc: n, partition: false)
                    for i in 0..<rows {
                        let pr = p + i * n, dr = dp + i * n, li = l[q0 + i]
                        let di = Kernels.dot(dO + (q0 + i) * dim, o + (q0 + i) * dim, hd)
                        TransformerSIMD.expShifted(pr, n, shift: li)
                        for j in 0..<n { dr[j] = pr[j] * (dr[j] - di) }
                    }
                    BLAS.sgemm(transA: true, transB: false, m: n, n: hd, k: rows, a: p, lda: n,
                               b: dO + q0 * dim, ldb: dim, beta: first, c: dv, ldc: ld, partition: false)
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: n, alpha: scale, a: dp, lda: n,
                               b: k, ldb: ld, beta: 0, c: dq + q0 * ld, ldc: ld, partition: false)
                    BLAS.sgemm(transA: true, transB: false, m: n, n: hd, k: rows, alpha: scale, a: dp, lda: n,
                               b: q + q0 * ld, ldb: ld, beta: first, c: dk, ldc: ld, partition: false)
                    q0 += rows
                }
            }
        }
    }
}
