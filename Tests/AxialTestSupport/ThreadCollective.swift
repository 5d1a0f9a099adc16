import AxialTensor
import Foundation

/// An in-process `Collective`: N "ranks" are N threads of one test, exchanging through shared
/// memory (sums in rank order, so every rank gets the same bits). Lets the data-parallel maths
/// (synchronised BatchNorm forward / backward, gathered MoCo keys, gradient averaging) be checked
/// against one process without MPI. `ThreadCollective.run(ranks:) { comm in … }` runs the body on
/// each rank's thread and returns the results in rank order.
public final class ThreadCollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    private let world: World

    final class World: @unchecked Sendable {
        let n: Int
        let cond = NSCondition()
        var count = 0, generation = 0
        var slots: [[Double]]
        init(n: Int) { self.n = n; slots = Array(repeating: [], count: n) }

        func barrier() {
            cond.lock()
            let g = generation
            count += 1
            if count == n { count = 0; generation += 1; cond.broadcast() } else { while g == generation { cond.wait() } }
            cond.unlock()
        }

        /// Every rank's values, in rank order.
        func exchange(rank: Int, _ values: [Double]) -> [[Double]] {
            barrier()
            cond.lock(); slots[rank] = values; cond.unlock()
            barrier()
            cond.lock(); let all = slots; cond.unlock()
            barrier()
            return all
        }
    }

    init(rank: Int, world: World) { self.rank = rank; self.worldSize = world.n; self.world = world }

    /// Runs `body` on `ranks` threads, one communicator each; results in rank order.
    public static func run<R>(ranks: Int, _ body: @escaping (ThreadCollective) -> R) -> [R] {
        nonisolated(unsafe) let body = body
        let world = World(n: ranks)
        nonisolated(unsafe) var results = [R?](repeating: nil, count: ranks)
        let lock = NSLock()
        let done = DispatchGroup()
        for r in 0..<ranks {
            done.enter()
            let t = Thread {
                let value = body(ThreadCollective(rank: r, world: world))
                lock.lock(); results[r] = value; lock.unlock()
                done.leave()
            }
            t.stackSize = 16 << 20
            t.start()
        }
        done.wait()
        return results.map { $0! }
    }

    private func summed(_ values: [Double]) -> [Double] {
        let all = world.exchange(rank: rank, values)
        var out = [Double](repeating: 0, count: values.count)
        for part in all { for i in out.indices { out[i] += part[i] } }
        return out
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        let s = summed(buffer.map(Double.init))
        for i in buffer.indices { buffer[i] = Float(s[i]) }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        let s = summed(Array(buffer))
        for i in buffer.indices { buffer[i] = s[i] }
    }

    public func allGather(_ values: [Float]) -> [Float] {
        world.exchange(rank: rank, values.map(Double.init)).flatMap { $0.map(Float.init) }
    }
}
