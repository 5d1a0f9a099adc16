import CBLAS
import Foundation

/// The single BLAS entry point (OpenBLAS `cblas_sgemm`), with our own row partitioning.
///
/// OpenBLAS is put on one thread at first use; GEMMs with at least `partitionThreshold`
/// multiply-adds are split into row blocks over `parallelFor` workers (see PERFORMANCE.md).
public enum BLAS {
    /// Split big GEMMs by rows over `Parallel.workerCount` workers (else one sgemm call).
    nonisolated(unsafe) public static var partitionRows: Bool = true
    /// Minimum m·n·k for row partitioning.
    nonisolated(unsafe) public static var partitionThreshold: Int = 1 << 21

    static let configured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Sets OpenBLAS's own thread count (use 1 together with `partitionRows`; never run OpenBLAS
    /// threads and `parallelFor` workers at the same time).
    public static func setOpenBLASThreads(_ n: Int) {
        _ = configured
        openblas_set_num_threads(Int32(n))
    }

    /// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, row-major.
    /// `lda`/`ldb`/`ldc` are the row strides of A, B, C as stored (A is [k,m] when `transA`).
    /// `aCount` / `bCount` / `cCount`: the floats readable (writable) from `a` / `b` / `c`, when
    /// the caller knows them (−1: unknown); checked at entry, like the sizes and strides
    /// (preconditions, kept in release builds; O(1)).
    @inlinable
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             partition: Bool = true, aCount: Int = -1, bCount: Int = -1, cCount: Int = -1) {
        checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                    aCount: aCount, bCount: bCount, cCount: cCount)
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { let row = c + i * ldc; for j in 0..<n { row[j] = beta == 0 ? 0 : row[j] * beta } }
            return
        }
        let workers = Parallel.workerCount
        if partition && partitionRows && workers > 1 && m >= 2 * workers && m * n * k >= partitionThreshold {
            let ap = SendablePointer(UnsafeMutablePointer(mutating: a)), bp = SendablePointer(UnsafeMutablePointer(mutating: b))
            let cp = SendablePointer(c)
            parallelFor(m) { r in
                let aOff = transA ? r.lowerBound : r.lowerBound * lda
                rawSgemm(transA, transB, r.count, n, k, alpha, ap.p + aOff, lda, bp.p, ldb, beta, cp.p + r.lowerBound * ldc, ldc)
            }
        } else {
            rawSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }

    /// The floats a row-major [rows, cols] matrix with row stride `ld` spans (0 when empty).
    @inlinable
    static func span(rows: Int, cols: Int, ld: Int) -> Int {
        rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols
    }

    /// Entry checks of `sgemm`: sizes ≥ 0 and within BLAS's 32-bit ints, each stride ≥ its stored
    /// row's width, each known buffer count ≥ the floats the product touches.
    @inlinable
    static func checkShapes(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int,
                            aCount: Int, bCount: Int, cCount: Int) {
        let limit = Int(Int32.max)
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= limit && n <= limit && k <= limit,
                     "BLAS.sgemm: sizes m \(m), n \(n), k \(k) must be in 0…\(limit)")
        let (aRows, aCols) = transA ? (k, m) : (m, k)
        let (bRows, bCols) = transB ? (n, k) : (k, n)
        // A stride matters only for a matrix that is read or written (an empty one is never touched:
        // m = 0 or n = 0 returns at once, k = 0 only scales C).
        let touched = m > 0 && n > 0
        let aOK = !touched || k == 0 || lda >= aCols, bOK = !touched || k == 0 || ldb >= bCols, cOK = !touched || ldc >= n
        precondition(aOK && bOK && cOK && lda >= 0 && ldb >= 0 && ldc >= 0 && lda <= limit && ldb <= limit && ldc <= limit,
                     "BLAS.sgemm: strides lda \(lda), ldb \(ldb), ldc \(ldc) too small for A [\(aRows), \(aCols)], B [\(bRows), \(bCols)], C [\(m), \(n)]")
        guard touched else { return }
        if aCount >= 0 && k > 0 {
            precondition(span(rows: aRows, cols: aCols, ld: lda) <= aCount,
                         "BLAS.sgemm: A [\(aRows), \(aCols)] (lda \(lda)) needs \(span(rows: aRows, cols: aCols, ld: lda)) floats, the buffer has \(aCount)")
        }
        if bCount >= 0 && k > 0 {
            precondition(span(rows: bRows, cols: bCols, ld: ldb) <= bCount,
                         "BLAS.sgemm: B [\(bRows), \(bCols)] (ldb \(ldb)) needs \(span(rows: bRows, cols: bCols, ld: ldb)) floats, the buffer has \(bCount)")
        }
        if cCount >= 0 {
            precondition(span(rows: m, cols: n, ld: ldc) <= cCount,
                         "BLAS.sgemm: C [\(m), \(n)] (ldc \(ldc)) needs \(span(rows: m, cols: n, ld: ldc)) floats, the buffer has \(cCount)")
        }
    }

    @usableFromInline
    static func rawSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                         _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                         _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
