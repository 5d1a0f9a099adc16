import Foundation
import Testing
import AxialTensor
import AxialNN
@testable import AxialModels

/// Central finite differences of Σ f(x)·R (R fixed random) against backward(), in Double sums.
private func finiteDifferenceFailures(inputs: [Tensor], epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                                      _ f: ([Tensor]) -> Tensor) -> [String] {
    let out0 = withNoGrad { f(inputs) }
    var gen = RandomGenerator(seed: 11)
    let R = Tensor.normal(out0.shape, generator: &gen)
    func loss(_ xs: [Tensor]) -> Double {
        let y = withNoGrad { f(xs) }
        let ys = y.scalars, rs = R.scalars
        var s = 0.0
        for i in ys.indices { s += Double(ys[i]) * Double(rs[i]) }
        return s
    }
    let leaves = inputs.map { $0.detached().requiringGrad() }
    (f(leaves) * R).sum().backward()
    var failures: [String] = []
    for i in inputs.indices {
        let analytic = (leaves[i].grad ?? Tensor(zeros: inputs[i].shape)).scalars
        for e in 0..<inputs[i].count {
            var plus = inputs.map { $0.detached() }, minus = plus
            var p = inputs[i].scalars, m = p
            p[e] += epsilon; m[e] -= epsilon
            let h = Double(p[e]) - Double(m[e])
            plus[i] = Tensor(shape: inputs[i].shape, scalars: p)
            minus[i] = Tensor(shape: inputs[i].shape, scalars: m)
            let numeric = Float((loss(plus) - loss(minus)) / h)
            if !(abs(analytic[e] - numeric) <= atol + rtol * abs(numeric)) {
                failures.append("input \(i)[\(e)]: analytic \(analytic[e]) vs numeric \(numeric)")
            }
        }
    }
    return failures
}

/// The LeCL formula written out directly (Double), as an independent reference.
private func leclReference(q: [[Double]], k: [[Double]], lesion: [Bool], w: Double, T: Double) -> Double {
    func normalize(_ v: [Double]) -> [Double] { let n = max(sqrt(v.reduce(0) { $0 + $1 * $1 }), 1e-12); return v.map { $0 / n } }
    let qn = q.map(normalize), kn = k.map(normalize)
    var total = 0.0
    for i in qn.indices {
        var terms: [Double] = []
        for j in kn.indices {
            let s = zip(qn[i], kn[j]).reduce(0) { $0 + $1.0 * $1.1 } / T
            terms.append(s)
            if w > 0 && lesion[j] && j != i { terms.append(w * s) }
        }
        let mx = terms.max()!
        let lse = mx + log(terms.reduce(0) { $0 + exp($1 - mx) })
        let sii = zip(qn[i], kn[i]).reduce(0) { $0 + $1.0 * $1.1 } / T
        total += lse - sii
    }
    return total / Double(qn.count) * 2 * T
}

@Suite struct MoCoLossTests {
    let n = 6, d = 5
    let lesion = [true, false, true, true, false, false]

    func inputs(seed: UInt64) -> (Tensor, Tensor) {
        var g = RandomGenerator(seed: seed)
        return (Tensor.normal([n, d], generator: &g), Tensor.normal([n, d], generator: &g))
    }

    @Test(arguments: [(Float(0.5), Float(0.2)), (1.0, 1.0), (10.0, 0.5), (0.0, 0.2), (-1.0, 1.0)])
    func matchesDirectFormula(w: Float, T: Float) {
        let (q, k) = inputs(seed: 3)
        let rows = { (t: Tensor) in (0..<n).map { i in (0..<d).map { Double(t.scalars[i * d + $0]) } } }
        let expected = leclReference(q: rows(q), k: rows(k), lesion: lesion, w: Double(w), T: Double(T))
        let got = mocoContrastiveLoss(query: q, key: k, temperature: T, lesion: lesion, weight: w).item()
        #expect(abs(Double(got) - expected) <= 1e-5 * max(1, abs(expected)), "w \(w) T \(T): \(got) vs \(expected)")
    }

    @Test func plainMoCoIsCrossEntropyWithArange() {
        let (q, k) = inputs(seed: 5)
        let T: Float = 0.2
        let logits = matmulTransposedB(l2Normalize(q, axis: 1), l2Normalize(k, axis: 1)) / T
        let ls = logSoftmax(logits, axis: 1).scalars
        var ce = 0.0
        for i in 0..<n { ce -= Double(ls[i * n + i]) }
        let expected = ce / Double(n) * 2 * Double(T)
        for (mask, w) in [([Bool](), Float(1)), (lesion, 0), (lesion, -2), ([Bool](repeating: false, count: n), 3)] {
            let got = mocoContrastiveLoss(query: q, key: k, temperature: T, lesion: mask, weight: w).item()
            #expect(abs(Double(got) - expected) < 1e-5, "mask \(mask) w \(w): \(got) vs \(expected)")
        }
    }

    @Test(arguments: [Float(0.5), 2.0, 0.0])
    func finiteDifferences(w: Float) {
        let (q, k) = inputs(seed: 9)
        let failures = finiteDifferenceFailures(inputs: [q, k]) { xs in
            mocoContrastiveLoss(query: xs[0], key: xs[1], temperature: 0.5, lesion: lesion, weight: w)
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        // The fused op alone, on raw logits (including a lesion query whose own column is excluded).
        var g = RandomGenerator(seed: 21)
        let s = Tensor.normal([n, n], generator: &g) * 2
        let f2 = finiteDifferenceFailures(inputs: [s]) { xs in lesionContrastiveLoss(logits: xs[0], lesion: lesion, weight: w, scale: 0.4) }
        #expect(f2.isEmpty, "\(f2.prefix(5))")
    }
}
