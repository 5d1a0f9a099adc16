import AxialCore
import Foundation

/// Number of workers `parallelFor` uses (defaults to the active processor count).
public enum Parallel {
    /// Worker count; set it once at start-up (e.g. from a `--threads` flag). 1 = serial.
    nonisolated(unsafe) public static var workerCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Below this many work items `parallelFor` runs serially (dispatch costs ~µs).
    nonisolated(unsafe) public static var minimumItemsPerWorker: Int = 1
}

/// Splits `0..<n` into at most `Parallel.workerCount` contiguous chunks and runs `body` on each
/// chunk concurrently (DispatchQueue.concurrentPerform). The one audited parallel loop:
/// `body` must only write to memory disjoint between chunks. Grad mode is carried into workers.
///
/// `grain`: minimum items per chunk, so small loops stay serial.
@inlinable
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let workers = min(Parallel.workerCount, max(1, n / max(grain, 1)))
    if workers <= 1 { body(0..<n); return }
    let gradEnabled = Tensor.isGradEnabled
    withoutActuallyEscaping(body) { escapable in
        // Safety: each iteration gets a disjoint range; the closure is only called during this call.
        nonisolated(unsafe) let f = escapable
        DispatchQueue.concurrentPerform(iterations: workers) { c in
            let range = (c * n / workers)..<((c + 1) * n / workers)
            if gradEnabled == Tensor.isGradEnabled {
                f(range)
            } else {
                _setGradMode(gradEnabled) { f(range) }
            }
        }
    }
}

@usableFromInline
func _setGradMode(_ enabled: Bool, _ body: () -> Void) {
    GradMode.$enabled.withValue(enabled) { body() }
}


