import AxialPipeline
import AxialTensor
import Foundation

extension Bench {
    /// `mpi-allreduce [floats] [bucket]` under `mpirun -np N axial-dev bench mpi-allreduce …`: one
    /// timed run = the in-place float sum over all ranks of `floats` (default 43 110 400 — the
    /// gradient of MoCo v3 ViT-S/16 with its 4096-wide projector and predictor) in buckets of
    /// `bucket` floats (default 4 Mi, as `DataParallel`), non-blocking starts then waits, after a
    /// barrier so no rank's lateness is counted. Every rank prints its JSON; detail: MB per rank and
    /// the algorithm bandwidth (bytes / time). Without mpirun: one rank (no communication).
    static let mpiAllReduce = BenchWorkload(name: "mpi-allreduce", summary: "gradient all-reduce over MPI (run under mpirun)") { args in
        let floats = args.count > 0 ? Int(args[0]) ?? 43_110_400 : 43_110_400
        let bucket = args.count > 1 ? Int(args[1]) ?? (4 << 20) : (4 << 20)
        guard MPICommunicator.isLaunchedByMPI else {
            throw PipelineError.invalidOption(option: "mpi-allreduce", reason: "run it under mpirun -np N")
        }
        let comm = try MPICommunicator.initialize()
        atexit { MPICommunicator.finalizeIfInitialized() }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: floats)
        buffer.initialize(repeating: Float(comm.rank + 1))
        nonisolated(unsafe) let b = buffer
        let body: @Sendable () throws -> Void = {
            comm.barrier()
            var requests: [CollectiveRequest] = []
            var offset = 0
            while offset < floats {
                let n = min(bucket, floats - offset)
                requests.append(comm.startAllReduceSum(UnsafeMutableBufferPointer(rebasing: b[offset..<(offset + n)])))
                offset += n
            }
            for r in requests { r.wait() }
        }
        return (body, "rank \(comm.rank)/\(comm.worldSize), \(String(format: "%.1f", Double(floats) * 4 / 1e6)) MB in buckets of \(bucket) floats")
    }
}
