import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// The fused instance encoder `linearReLUMasked` (HeadKernels.swift): PyTorch goldens from
/// Tools/goldens/make_head_kernel_goldens.py (the unfused torch composition), and equality with
/// Axial's own unfused composition (values and gradients, bit for bit).
@Suite struct HeadKernelTests {
    static let goldens: [String: Tensor] = {
        let url = Bundle.module.url(forResource: "head_kernels", withExtension: "safetensors", subdirectory: "Fixtures")!
        return try! SafeTensors.read(url).tensors
    }()

    @Test(arguments: ["dropout", "nomask"]) func matchesTorchComposition(name: String) {
        let t = Self.goldens
        let x = t["\(name).x"]!.requiringGrad(), w = t["\(name).w"]!.requiringGrad(), b = t["\(name).b"]!.requiringGrad()
        let y = linearReLUMasked(x, weight: w, bias: b, mask: t["\(name).mask"])
        expectClose(y, t["\(name).out"]!, atol: 1e-6, rtol: 1e-5, "\(name) out")
        (y * t["\(name).R"]!).sum().backward()
        expectClose(x.grad!, t["\(name).dx"]!, atol: 1e-5, rtol: 1e-4, "\(name) dx")
        expectClose(w.grad!, t["\(name).dw"]!, atol: 1e-5, rtol: 1e-4, "\(name) dW")
        expectClose(b.grad!, t["\(name).db"]!, atol: 1e-5, rtol: 1e-4, "\(name) db")
    }

    /// `Heads.encode` (fused, dropout mask drawn inline) against `dropout(relu(linear(x)))` with
    /// the same generator: identical values, gradients and generator state afterwards.
    @Test(arguments: [Float(0), 0.25]) func encodeEqualsUnfusedComposition(p: Float) {
        var g0 = RandomGenerator(seed: 5)
        let layer = Linear(24, 16, generator: &g0)
        let x = Tensor.normal([2, 11, 24], generator: &g0).requiringGrad()
        let r = Tensor.normal([2, 11, 16], generator: &g0)
        func run(_ fused: Bool) -> (Tensor, [Float], [Float], [Float], UInt64) {
            layer.zeroGrad(); x.zeroGrad()
            var g = RandomGenerator(seed: 9)
            let y = fused ? Heads.encode(x, layer, p, true, &g) : Heads.drop(relu(layer(x)), p, true, &g)
            (y * r).sum().backward()
            return (y.detached(), x.grad!.scalars, layer.weight.grad!.scalars, layer.bias!.grad!.scalars, g.next())
        }
        let a = run(true), b = run(false)
        #expect(maxAbsDifference(a.0.scalars, b.0.scalars) == 0, "values")
        #expect(maxAbsDifference(a.1, b.1) == 0, "dx")
        #expect(maxAbsDifference(a.2, b.2) == 0, "dW")
        #expect(maxAbsDifference(a.3, b.3) == 0, "db")
        #expect(a.4 == b.4, "generator state after the mask draws")
        if p > 0 { #expect(a.0.scalars.contains(0) && a.0.scalars.contains { $0 > 0 }) }
    }

    @Test func eachInputGetsAGradientOnlyWhenItRequiresOne() {
        let t = Self.goldens
        let w = t["nomask.w"]!.requiringGrad()
        let y = linearReLUMasked(t["nomask.x"]!, weight: w, bias: t["nomask.b"]!)
        y.sum().backward()
        #expect(w.grad != nil && w.grad!.shape == w.shape)
    }
}

/// The vectorised gate (`HeadMath.gate`, SIMD8) against the scalar `Kernels.tanh / sigmoid` it
/// replaces: bit for bit, over ordinary values, both branches of tanh, the exp clamps, ±0, ±∞, NaN.
@Suite struct HeadMathTests {
    @Test func vectorGateEqualsScalarKernels() {
        let special: [Float] = [0, -0, 0.3, -0.3, 0.624, 0.625, -0.625, 1, -1, 5, -5, 9, -9, 20, -20, 44, -44, 45, -45,
                                87, -87, 88.5, -88.5, 89, -89, 100, -100, 1e-8, -1e-8, .infinity, -.infinity, .nan,
                                Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude]
        let rows = 3, k = 203   // k not a multiple of 8: the scalar tail runs too
        var g = RandomGenerator(seed: 3)
        var xs = special + special.reversed()
        while xs.count < rows * 2 * k { xs.append(g.uniform(-12, 12)) }
        var t = [Float](repeating: 0, count: rows * k), s = t, y = t
        xs.withUnsafeBufferPointer { xp in
            HeadMath.gate(xp.baseAddress!, rows: rows, k: k, t: &t, s: &s, y: &y)
        }
        var mismatches = 0
        for r in 0..<rows {
            for j in 0..<k {
                let v = xs[r * 2 * k + j], u = xs[r * 2 * k + k + j], o = r * k + j
                let (tv, sv) = (Kernels.tanh(v), Kernels.sigmoid(u))
                if tv.bitPattern != t[o].bitPattern && !(tv.isNaN && t[o].isNaN) { mismatches += 1 }
                if sv.bitPattern != s[o].bitPattern && !(sv.isNaN && s[o].isNaN) { mismatches += 1 }
                if (tv * sv).bitPattern != y[o].bitPattern && !((tv * sv).isNaN && y[o].isNaN) { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }
}
