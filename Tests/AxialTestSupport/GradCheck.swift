import AxialTensor
import Foundation

/// Finite-difference gradient checking, the one version every test target uses.
///
/// For f: [Tensor] → Tensor and a fixed random weight R of the output's shape, the scalar
/// L = Σ f(x)·R is differentiated two ways: by `backward()` and by central differences
/// (L(x + ε·eᵢ) − L(x − ε·eᵢ)) / 2ε for every element i of every input in `wrt`, with L summed
/// in Double. Pass when |analytic − numeric| ≤ atol + rtol·|numeric| for every element (a NaN on
/// either side fails). Keep inputs tiny and away from kinks (|x| at relu/abs 0, clamp bounds, max
/// ties) by more than ε.
public enum GradCheck {
    public struct Failure: CustomStringConvertible, Sendable {
        public let input: Int, index: Int, analytic: Float, numeric: Float
        public var description: String { "input \(input)[\(index)]: analytic \(analytic) vs numeric \(numeric)" }
    }

    /// The mismatches (empty = pass).
    public static func check(inputs: [Tensor], wrt: [Int]? = nil, epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                             seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor) -> [Failure] {
        let wrt = wrt ?? Array(inputs.indices)
        let out0 = withNoGrad { f(inputs) }
        var gen = RandomGenerator(seed: seed)
        let r = out0.rank == 0 ? [Float(1)] : Tensor.normal(out0.shape, generator: &gen).scalars
        let R = Tensor(shape: out0.shape, scalars: r)
        func loss(_ xs: [Tensor]) -> Double {
            let y = withNoGrad { f(xs) }.scalars
            var s = 0.0
            for i in y.indices { s += Double(y[i]) * Double(r[i]) }
            return s
        }
        var leaves = inputs.map { $0.detached() }
        for i in wrt { leaves[i] = leaves[i].requiringGrad() }
        (f(leaves) * R).sum().backward()
        var failures: [Failure] = []
        for i in wrt {
            let analytic = (leaves[i].grad ?? Tensor(zeros: inputs[i].shape)).scalars
            for e in 0..<inputs[i].count {
                var plus = inputs.map { $0.detached() }, minus = plus
                plus[i] = inputs[i].copy(); minus[i] = inputs[i].copy()
                plus[i].withUnsafeMutableBufferPointer { $0[e] += epsilon }
                minus[i].withUnsafeMutableBufferPointer { $0[e] -= epsilon }
                // Use the actually representable step.
                let h = Double(plus[i].scalars[e]) - Double(minus[i].scalars[e])
                let numeric = Float((loss(plus) - loss(minus)) / h)
                let a = analytic[e]
                if !(Swift.abs(a - numeric) <= atol + rtol * Swift.abs(numeric)) {
                    failures.append(Failure(input: i, index: e, analytic: a, numeric: numeric))
                }
            }
        }
        return failures
    }

    /// A scalar function of one tensor (losses): the mismatches as text (empty = pass).
    public static func scalar(_ x: Tensor, epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                              _ f: (Tensor) -> Tensor) -> [String] {
        check(inputs: [x], epsilon: epsilon, atol: atol, rtol: rtol) { f($0[0]) }
            .map { "[\($0.index)] analytic \($0.analytic) vs numeric \($0.numeric)" }
    }
}
