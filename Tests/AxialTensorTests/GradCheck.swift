import Foundation
import Testing
@testable import AxialTensor

/// Finite-difference gradient checking, shared pattern for every differentiable op.
///
/// For f: [Tensor] → Tensor and a fixed random weight R of the output's shape, the scalar
/// L = Σ f(x)·R is differentiated two ways: by `backward()` and by central differences
/// (L(x + ε·eᵢ) − L(x − ε·eᵢ)) / 2ε for every element i of every input in `wrt`, with L summed
/// in Double. Pass when |analytic − numeric| ≤ atol + rtol·|numeric| for every element.
/// Keep inputs tiny and away from kinks (|x| at relu/abs 0, clamp bounds, max ties) by more than ε.
///
/// Copy this file's pattern for ops in other targets (e.g. `GradCheck.check(inputs:) { xs in conv(xs[0], xs[1]) }`).
enum GradCheck {
    struct Failure: CustomStringConvertible {
        let input: Int, index: Int, analytic: Float, numeric: Float
        var description: String { "input \(input)[\(index)]: analytic \(analytic) vs numeric \(numeric)" }
    }

    /// Returns the mismatches (empty = pass).
    static func check(inputs: [Tensor], wrt: [Int]? = nil, epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                      seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor) -> [Failure] {
        let wrt = wrt ?? Array(inputs.indices)
        let out0 = withNoGrad { f(inputs) }
        var gen = RandomGenerator(seed: seed)
        let R = Tensor.normal(out0.shape, generator: &gen)
        func loss(_ xs: [Tensor]) -> Double {
            let y = withNoGrad { f(xs) }
            var s = 0.0
            for i in 0..<y.count { s += Double(y.storage.pointer[i]) * Double(R.storage.pointer[i]) }
            return s
        }
        var leaves = inputs.map { $0.detached() }
        for i in wrt { leaves[i] = leaves[i].requiringGrad() }
        (f(leaves) * R).sum().backward()
        var failures: [Failure] = []
        for i in wrt {
            let analytic = leaves[i].grad ?? Tensor(zeros: inputs[i].shape)
            for e in 0..<inputs[i].count {
                var plus = inputs.map { $0.detached() }, minus = plus
                plus[i] = inputs[i].copy(); minus[i] = inputs[i].copy()
                plus[i].withUnsafeMutableBufferPointer { $0[e] += epsilon }
                minus[i].withUnsafeMutableBufferPointer { $0[e] -= epsilon }
                // Use the actually representable step.
                let h = Double(plus[i].storage.pointer[e]) - Double(minus[i].storage.pointer[e])
                let numeric = Float((loss(plus) - loss(minus)) / h)
                let a = analytic.storage.pointer[e]
                if !(Swift.abs(a - numeric) <= atol + rtol * Swift.abs(numeric)) {
                    failures.append(Failure(input: i, index: e, analytic: a, numeric: numeric))
                }
            }
        }
        return failures
    }
}

/// Max |a − b| / (atol + rtol·|b|) ≤ 1 elementwise; returns a message for the worst element.
func closeness(_ a: Tensor, _ b: Tensor, atol: Float, rtol: Float) -> String? {
    guard a.shape == b.shape else { return "shape \(a.shape) vs \(b.shape)" }
    var worst: (Int, Float) = (-1, 0)
    for i in 0..<a.count {
        let x = a.storage.pointer[i], y = b.storage.pointer[i]
        if x == y { continue }
        let r = Swift.abs(x - y) / (atol + rtol * Swift.abs(y))
        if !(r <= worst.1) { worst = (i, r) }
    }
    if worst.0 >= 0 && !(worst.1 <= 1) {
        return "element \(worst.0): \(a.storage.pointer[worst.0]) vs expected \(b.storage.pointer[worst.0]) (ratio \(worst.1))"
    }
    return nil
}
