import AxialTensor
import Foundation

/// Adam / AdamW over a `ParameterSet`, in place (torch.optim.Adam / AdamW semantics):
///     g ← g + wd·θ (Adam only);  θ ← θ·(1 − lr·wd) (AdamW only)
///     m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − lr·m̂/(√v̂ + ε),  m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ)
/// Parameters without a gradient are skipped, step count included (as torch).
/// A small functional optimizer kept with the heads while AxialNN's optimizers were landing.
public final class HeadAdam: @unchecked Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    public var weightDecay: Float
    /// true: AdamW (decoupled decay); false: Adam (L2 added to the gradient).
    public var decoupled: Bool
    let parameters: ParameterSet
    var m: [String: [Float]] = [:], v: [String: [Float]] = [:], steps: [String: Int] = [:]

    public init(_ parameters: ParameterSet, learningRate: Float, weightDecay: Float = 0, decoupled: Bool = false) {
        self.parameters = parameters; self.learningRate = learningRate; self.weightDecay = weightDecay; self.decoupled = decoupled
    }

    public func zeroGrad() { parameters.zeroGrad() }

    public func step() {
        for name in parameters.names {
            let t = parameters[name]
            guard let g = t.grad else { continue }
            let n = t.count
            var mm = m[name] ?? [Float](repeating: 0, count: n), vv = v[name] ?? [Float](repeating: 0, count: n)
            let k = (steps[name] ?? 0) + 1
            steps[name] = k
            let bc1 = 1 - Foundation.pow(beta1, Float(k)), bc2 = 1 - Foundation.pow(beta2, Float(k))
            let stepSize = learningRate / bc1, bc2s = bc2.squareRoot()
            let p = t.storage.pointer
            let (b1, b2, lr, wd, eps, dec) = (beta1, beta2, learningRate, weightDecay, eps, decoupled)
            g.withUnsafeBufferPointer { gp in
                mm.withUnsafeMutableBufferPointer { mp in
                    vv.withUnsafeMutableBufferPointer { vp in
                        for i in 0..<n {
                            var gi = gp[i]
                            if wd != 0 { if dec { p[i] *= 1 - lr * wd } else { gi += wd * p[i] } }
                            mp[i] = b1 * mp[i] + (1 - b1) * gi
                            vp[i] = b2 * vp[i] + (1 - b2) * gi * gi
                            p[i] -= stepSize * mp[i] / (vp[i].squareRoot() / bc2s + eps)
                        }
                    }
                }
            }
            m[name] = mm; v[name] = vv
        }
    }
}
