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
    @inlinable
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             partition: Bool = true) {
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

    @usableFromInline
    static func rawSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                         _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                         _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
