import AxialTensor
import CMPI
import Foundation

/// MPI_COMM_WORLD through Open MPI's C API (the `CMPI` shim dlopens libmpi.so.40 at run time, so
/// Axial builds and runs without MPI installed; only a process started by mpirun / srun loads it).
///
/// Errors: MPI_ERRORS_RETURN is set on the communicator; a failed call prints
/// `error: rank r/N: <call>: <MPI's message>` to stderr and calls MPI_Abort, which makes mpirun
/// stop every rank (no rank can continue alone once a collective failed). A rank that mpirun stops
/// (because another rank died or the job was cancelled) prints one line saying so before it exits.
public final class MPICommunicator: Collective, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// Whether this process was started by an MPI launcher (mpirun / mpiexec / srun with PMIx or
    /// PMI-2): OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is set. `AXIAL_MPI=0` turns MPI off.
    public static var isLaunchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        if env["AXIAL_MPI"] == "0" { return false }
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// Ranks of this job on this node (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE), if known.
    public static var ranksOnThisNode: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"]).flatMap { Int($0) }
    }

    /// Initialises MPI once per process (later calls return the same communicator).
    public static func initialize() throws -> MPICommunicator {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        var err = [CChar](repeating: 0, count: 1024)
        if axial_mpi_load(nil, &err, err.count) != 0 {
            throw PipelineError.invalidOption(option: "mpirun", reason: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var rc = axial_mpi_init()
        guard rc == 0 else { throw PipelineError.invalidOption(option: "mpirun", reason: "MPI_Init failed: \(errorString(rc))") }
        var r: Int32 = 0, n: Int32 = 0
        rc = axial_mpi_rank(&r)
        if rc == 0 { rc = axial_mpi_size(&n) }
        guard rc == 0 else { throw PipelineError.invalidOption(option: "mpirun", reason: "MPI_Comm_rank/size failed: \(errorString(rc))") }
        let c = MPICommunicator(rank: Int(r), worldSize: Int(n))
        axial_mpi_install_termination_message(
            "error: rank \(r)/\(n): stopped by the MPI launcher (another rank failed or the job was cancelled); "
            + "the last checkpoint is intact, rerun with --resume\n")
        shared = c
        return c
    }

    private init(rank: Int, worldSize: Int) { self.rank = rank; self.worldSize = worldSize }

    static func errorString(_ code: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 512)
        axial_mpi_error_string(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Prints `error: rank r/N: message` and aborts every rank (MPI_Abort); does not return.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("error: rank \(rank)/\(worldSize): \(message)\n".utf8))
        axial_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }

    private func check(_ rc: Int32, _ call: @autoclosure () -> String) {
        if rc != 0 { abort("\(call()) failed: \(Self.errorString(rc))") }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard let p = buffer.baseAddress, buffer.count > 0 else { return }
        check(axial_mpi_allreduce_sum_float(p, buffer.count), "MPI_Allreduce(\(buffer.count) floats)")
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard let p = buffer.baseAddress, buffer.count > 0 else { return }
        check(axial_mpi_allreduce_sum_double(p, buffer.count), "MPI_Allreduce(\(buffer.count) doubles)")
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        guard let p = buffer.baseAddress, buffer.count > 0 else { return CollectiveRequest(isComplete: true) { _ in } }
        guard buffer.count <= Int(Int32.max) else {
            allReduceSum(buffer)
            return CollectiveRequest(isComplete: true) { _ in }
        }
        var handle: UnsafeMutableRawPointer?
        check(axial_mpi_iallreduce_sum_float(p, buffer.count, &handle), "MPI_Iallreduce(\(buffer.count) floats)")
        let count = buffer.count
        return CollectiveRequest(handle: handle) { [self] r in
            check(axial_mpi_wait(&r.handle), "MPI_Wait(MPI_Iallreduce of \(count) floats)")
        }
    }

    public func progress(_ requests: [CollectiveRequest]) {
        for r in requests where !r.isComplete {
            var done: Int32 = 0
            check(axial_mpi_test(&r.handle, &done), "MPI_Test")
            if done != 0 { r.isComplete = true }
        }
    }

    public func allGather(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count * worldSize)
        guard !values.isEmpty else { return out }
        let rc = values.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { axial_mpi_allgather_float(s.baseAddress!, values.count, $0.baseAddress!) }
        }
        check(rc, "MPI_Allgather(\(values.count) floats)")
        return out
    }

    public func barrier() { check(axial_mpi_barrier(), "MPI_Barrier") }

    /// MPI_Finalize (call once, at the end of a successful run).
    public func finalize() { _ = axial_mpi_finalize() }

    /// MPI_Finalize when this process initialised MPI (for `atexit`, in tools without an end hook).
    public static func finalizeIfInitialized() {
        lock.lock(); defer { lock.unlock() }
        if shared != nil { _ = axial_mpi_finalize(); shared = nil }
    }
}
