import AxialTensor
import Foundation
import Testing

// Comparisons for numeric tests. Every helper here fails on NaN and Inf: Swift's `max(d, .nan)`
// is `d`, so a hand-written `zip(a, b).map { abs($0 - $1) }.max()` lets an all-NaN output pass.
// Use these instead, and they name the first bad element.

/// The first element of `values` that is NaN or ±Inf, as "index i: value".
public func firstNonFinite(_ values: [Float]) -> String? {
    guard let i = values.firstIndex(where: { !$0.isFinite }) else { return nil }
    return "element \(i) is \(values[i])"
}

/// max |a − b| over the elements; `.infinity` when the counts differ or any element of either is
/// NaN or Inf.
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var d: Float = 0
    for i in a.indices {
        guard a[i].isFinite, b[i].isFinite else { return .infinity }
        d = Swift.max(d, Swift.abs(a[i] - b[i]))
    }
    return d
}

/// max |a − b| / max(max |b|, floor) — the error relative to the expected output's scale;
/// `.infinity` on a shape mismatch or any NaN / Inf.
public func relativeError(_ a: Tensor, _ b: Tensor, floor: Float = 1e-3) -> Float {
    guard a.shape == b.shape else { return .infinity }
    let x = a.scalars, y = b.scalars
    var d: Float = 0, s = floor
    for i in x.indices {
        guard x[i].isFinite, y[i].isFinite else { return .infinity }
        d = Swift.max(d, Swift.abs(x[i] - y[i])); s = Swift.max(s, Swift.abs(y[i]))
    }
    return d / s
}

/// `relativeError` with the scale floor at 1e-6 (encoder outputs).
public func encoderError(_ a: Tensor, _ b: Tensor) -> Float { relativeError(a, b, floor: 1e-6) }

/// nil when |a − b| ≤ atol + rtol·|b| for every element; else a message naming the worst element.
/// A shape mismatch, or a NaN / Inf in either tensor, fails with the index.
public func closeness(_ a: Tensor, _ b: Tensor, atol: Float, rtol: Float) -> String? {
    guard a.shape == b.shape else { return "shape \(a.shape) vs \(b.shape)" }
    let xs = a.scalars, ys = b.scalars
    var worst: (Int, Float) = (-1, 0)
    for i in xs.indices {
        let x = xs[i], y = ys[i]
        guard x.isFinite else { return "element \(i): \(x) (expected \(y))" }
        guard y.isFinite else { return "element \(i): expected value is \(y)" }
        if x == y { continue }
        let r = Swift.abs(x - y) / (atol + rtol * Swift.abs(y))
        if r > worst.1 { worst = (i, r) }
    }
    if worst.0 >= 0 && worst.1 > 1 {
        return "element \(worst.0): \(xs[worst.0]) vs expected \(ys[worst.0]) (ratio \(worst.1))"
    }
    return nil
}

/// Records a test issue unless `closeness(a, b, atol:, rtol:)` passes.
public func expectClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    if let m = closeness(a, b, atol: atol, rtol: rtol) { Issue.record("\(what): \(m)", sourceLocation: sourceLocation) }
}
