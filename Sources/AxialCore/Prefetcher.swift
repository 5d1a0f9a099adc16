import Foundation

/// Produces items `start, start+1, …` (up to `end`, exclusive, or forever) on background
/// threads, at most `capacity` ahead of the consumer, and hands them out in order.
/// `make(k)` must be a pure function of `k` (then the items do not depend on thread timing).
/// Call `stop()` when done (the workers hold the prefetcher until they exit).
public final class Prefetcher<Item: Sendable>: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var ready: [Int: Item] = [:]
    private var nextToClaim: Int
    private var nextToTake: Int
    private var stopped = false
    private let end: Int?
    private let capacity: Int
    private let make: @Sendable (Int) -> Item

    public init(start: Int = 0, end: Int? = nil, workers: Int = 2, capacity: Int = 4, make: @escaping @Sendable (Int) -> Item) {
        precondition(workers >= 1 && capacity >= 1, "Prefetcher: workers (\(workers)) and capacity (\(capacity)) must be ≥ 1")
        self.nextToClaim = start; self.nextToTake = start; self.end = end; self.capacity = capacity; self.make = make
        for _ in 0..<workers {
            let thread = Thread { [self] in self.work() }
            thread.name = "axial.prefetch"
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !stopped && nextToClaim - nextToTake >= capacity && !(end.map { nextToClaim >= $0 } ?? false) { condition.wait() }
            if stopped || (end.map { nextToClaim >= $0 } ?? false) { condition.unlock(); return }
            let k = nextToClaim
            nextToClaim += 1
            condition.unlock()
            let item = make(k)
            condition.lock()
            ready[k] = item
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next item in order (waits for it); nil after `end` or after `stop()`.
    public func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        if let end, nextToTake >= end { return nil }
        while ready[nextToTake] == nil && !stopped { condition.wait() }
        guard let item = ready.removeValue(forKey: nextToTake) else { return nil }
        nextToTake += 1
        condition.broadcast()
        return item
    }

    /// Stops the workers (an item in progress is finished and dropped).
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
