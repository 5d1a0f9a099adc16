/// Collective operations across the ranks of a data-parallel job (MPI_COMM_WORLD under mpirun;
/// `AxialPipeline.MPICommunicator` implements it over Open MPI's C API).
///
/// Every rank must call the same collectives in the same order with the same sizes (the graph
/// and the step loop are identical on every rank, so forward / backward calls line up).
/// Implementations do not throw: a failed collective prints the error and aborts the whole job
/// (a half-failed collective cannot be recovered from on one rank alone).
public protocol Collective: AnyObject, Sendable {
    /// This process's rank in 0..<worldSize.
    var rank: Int { get }
    var worldSize: Int { get }
    /// In-place element-wise sum over all ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// In-place element-wise sum over all ranks, in Double (BatchNorm statistics, loss values).
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Starts an in-place sum; `wait` completes it. Default: blocking `allReduceSum`.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest
    /// Gives the library a chance to progress outstanding requests (non-blocking).
    func progress(_ requests: [CollectiveRequest])
    /// Every rank's `values` (the same count on each), concatenated in rank order.
    func allGather(_ values: [Float]) -> [Float]
}

/// An outstanding non-blocking collective (an MPI_Request, or nothing for blocking fallbacks).
public final class CollectiveRequest: @unchecked Sendable {
    public var handle: UnsafeMutableRawPointer?
    public var isComplete: Bool
    private let waitBody: (CollectiveRequest) -> Void
    public init(handle: UnsafeMutableRawPointer? = nil, isComplete: Bool = false, wait: @escaping (CollectiveRequest) -> Void) {
        self.handle = handle; self.isComplete = isComplete; self.waitBody = wait
    }
    /// Blocks until the collective has finished (idempotent).
    public func wait() { if !isComplete { waitBody(self); isComplete = true } }
}

extension Collective {
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        allReduceSum(buffer)
        return CollectiveRequest(isComplete: true) { _ in }
    }
    public func progress(_ requests: [CollectiveRequest]) {}

    /// Sum of one scalar over all ranks.
    public func sum(_ value: Double) -> Double {
        var v = [value]
        v.withUnsafeMutableBufferPointer { allReduceSum($0) }
        return v[0]
    }

    /// Every rank's rows of `x` [n, …] stacked in rank order ([worldSize·n, …]); no gradient.
    public func allGatherRows(_ x: Tensor) -> Tensor {
        guard worldSize > 1 else { return x.detached() }
        let all = allGather(x.scalars)
        var shape = x.shape
        shape[0] *= worldSize
        return Tensor(shape: shape, scalars: all)
    }
}

/// Synchronised BatchNorm (MoCo v3 / torch `SyncBatchNorm`): inside `withSynchronizedBatchNorm`,
/// every training-mode `batchNorm` computes its mean and variance over the global batch (all-reduce
/// of per-channel count, Σx, Σx²), updates running statistics with them (unbiased by the global
/// count), and its backward all-reduces Σg and Σg·x̂ so dx is the gradient of the global batch's
/// normalisation. Weight / bias gradients stay local (the data-parallel gradient all-reduce averages
/// them with everything else).
public enum BatchNormSync {
    @TaskLocal public static var collective: (any Collective)?
}

/// Runs `body` with BatchNorm statistics synchronised over `collective` (nil or one rank: plain BN).
public func withSynchronizedBatchNorm<R>(_ collective: (any Collective)?, _ body: () throws -> R) rethrows -> R {
    try BatchNormSync.$collective.withValue(collective.flatMap { $0.worldSize > 1 ? $0 : nil }) { try body() }
}
