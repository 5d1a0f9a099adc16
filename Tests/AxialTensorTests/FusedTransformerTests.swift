import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

/// The fixture written by Tools/goldens/make_fused_goldens.py: the fused transformer ops against the
/// unfused torch composition (float64 on float32 inputs).
enum FusedGoldens {
    static let url = Bundle.module.url(forResource: "Fixtures/fused", withExtension: "safetensors")!
    nonisolated(unsafe) static let file: (tensors: [String: Tensor], metadata: [String: String]) = try! SafeTensors.read(url)
    static var cases: [String: [Bool]] { try! JSONDecoder().decode([String: [Bool]].self, from: Data(file.metadata["cases"]!.utf8)) }
    static var heads: [String: Int] { try! JSONDecoder().decode([String: Int].self, from: Data(file.metadata["heads"]!.utf8)) }
    static func t(_ key: String) -> Tensor {
        guard let t = file.tensors[key] else { fatalError("fixture key \(key) missing") }
        return t
    }
}

private let eps: Float = 1e-6

/// Swift side of each case (inputs in the order the script stores them).
private func fusedOp(_ name: String, heads: Int) -> ([Tensor]) -> Tensor {
    if name.hasPrefix("attnres_plain") {
        return { preNormAttentionResidual($0[0], normWeight: nil, normBias: nil, eps: eps, qkvWeight: $0[1], qkvBias: nil,
                                          projWeight: $0[2], projBias: $0[3], heads: heads) }
    }
    if name.hasPrefix("attnres") {
        return { preNormAttentionResidual($0[0], normWeight: $0[1], normBias: $0[2], eps: eps, qkvWeight: $0[3], qkvBias: $0[4],
                                          projWeight: $0[5], projBias: $0[6], heads: heads) }
    }
    if name.hasPrefix("mlpres") {
        return { preNormMLPResidual($0[0], normWeight: $0[1], normBias: $0[2], eps: eps, fc1Weight: $0[3], fc1Bias: $0[4],
                                    fc2Weight: $0[5], fc2Bias: $0[6]) }
    }
    return { packedSelfAttention($0[0], heads: heads) }
}

/// The unfused composition of AxialTensor's own differentiable ops.
private func composedAttention(_ qkv: Tensor, heads: Int) -> Tensor {
    let (b, n, d) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    let p = qkv.reshaped([b, n, 3, heads, d / heads]).permuted([2, 0, 3, 1, 4])
    let y = scaledDotProductAttention(p.select(axis: 0, index: 0), p.select(axis: 0, index: 1), p.select(axis: 0, index: 2))
    return y.permuted([0, 2, 1, 3]).reshaped([b, n, d])
}

@Suite("Fused transformer ops vs the unfused composition")
struct FusedTransformerTests {
    /// |Δ| ≤ 2e-5 + 2e-5·|ref| for values and every gradient (float32 GEMMs and row reductions
    /// against a float64 reference).
    static let atol: Float = 2e-5, rtol: Float = 2e-5

    @Test(arguments: FusedGoldens.cases.keys.sorted())
    func matchesTorchComposition(name: String) throws {
        let flags = try #require(FusedGoldens.cases[name]), heads = try #require(FusedGoldens.heads[name])
        let f = fusedOp(name, heads: heads)
        let inputs = flags.indices.map { FusedGoldens.t("\(name).in\($0)").requiringGrad() }
        let out = f(inputs)
        if let m = closeness(out, FusedGoldens.t("\(name).out"), atol: Self.atol, rtol: Self.rtol) { Issue.record("\(name) forward: \(m)") }
        (out * FusedGoldens.t("\(name).R")).sum().backward()
        for i in flags.indices {
            let g = try #require(inputs[i].grad, "\(name): no gradient for input \(i)")
            if let m = closeness(g, FusedGoldens.t("\(name).grad\(i)"), atol: Self.atol, rtol: Self.rtol) {
                Issue.record("\(name) grad of input \(i): \(m)")
            }
        }
        // Without the tape: the same values.
        let plain = withNoGrad { f(flags.indices.map { FusedGoldens.t("\(name).in\($0)") }) }
        #expect(plain.scalars == out.scalars, "\(name): no-grad forward differs")
    }

    @Test(arguments: FusedGoldens.cases.keys.sorted().filter { $0 != "attn_long" })
    func finiteDifferences(name: String) throws {
        let flags = try #require(FusedGoldens.cases[name]), heads = try #require(FusedGoldens.heads[name])
        let inputs = flags.indices.map { FusedGoldens.t("\(name).in\($0)") }
        let failures = GradCheck.check(inputs: inputs, fusedOp(name, heads: heads))
        #expect(failures.isEmpty, "\(name): \(failures.prefix(4))")
    }

    /// Several row tiles (256) and reduction chunks (128), 3 heads of 16: the fused ops against
    /// AxialTensor's unfused ops on the same inputs, values and every gradient.
    @Test func matchesUnfusedAxialOpsAcrossTiles() {
        var g = RandomGenerator(seed: 11)
        let (b, n, d, heads, hid) = (8, 41, 48, 3, 96)
        func r(_ s: [Int], _ scale: Float = 0.3) -> Tensor { (Tensor.normal(s, generator: &g) * scale).detached() }
        let x = r([b, n, d], 1), lw = (r([d]) + 1).detached(), lb = r([d]), wq = r([3 * d, d]), bq = r([3 * d]), wp = r([d, d]), bp = r([d])
        let w1 = r([hid, d]), b1 = r([hid]), w2 = r([d, hid]), b2 = r([d])
        let rOut = r([b, n, d], 1)
        let all = [x, lw, lb, wq, bq, wp, bp, w1, b1, w2, b2]
        func run(fused: Bool) -> (Tensor, [Tensor]) {
            let p = all.map { $0.requiringGrad() }
            let y: Tensor
            if fused {
                let h = preNormAttentionResidual(p[0], normWeight: p[1], normBias: p[2], eps: eps, qkvWeight: p[3], qkvBias: p[4],
                                                 projWeight: p[5], projBias: p[6], heads: heads)
                y = preNormMLPResidual(h, normWeight: p[1], normBias: p[2], eps: eps, fc1Weight: p[7], fc1Bias: p[8], fc2Weight: p[9], fc2Bias: p[10])
            } else {
                let a = linear(composedAttention(linear(layerNorm(p[0], weight: p[1], bias: p[2], eps: eps), weight: p[3], bias: p[4]), heads: heads),
                               weight: p[5], bias: p[6])
                let h = p[0] + a
                y = h + linear(gelu(linear(layerNorm(h, weight: p[1], bias: p[2], eps: eps), weight: p[7], bias: p[8])), weight: p[9], bias: p[10])
            }
            (y * rOut).sum().backward()
            return (y, p.map { $0.grad! })
        }
        let (yf, gf) = run(fused: true), (yu, gu) = run(fused: false)
        expectClose(yf, yu, atol: 1e-5, rtol: 1e-5, "output")
        // Parameter gradients sum 328 rows (twice for the shared LayerNorm affine) in float32, in another
        // order than the unfused ops: a few 1e-4 relative.
        for i in all.indices { expectClose(gf[i], gu[i], atol: 1e-4, rtol: 5e-4, "gradient \(i)") }
    }

    @Test func attentionMatchesComposedOpsWithoutTape() {
        var g = RandomGenerator(seed: 3)
        let qkv = Tensor.normal([3, 30, 3 * 20], generator: &g)
        withNoGrad { expectClose(packedSelfAttention(qkv, heads: 5), composedAttention(qkv, heads: 5), atol: 1e-6, rtol: 1e-5, "no-grad attention") }
    }

    /// The SIMD8 exp / erf / GELU of the fused ops against the scalar `Kernels` forms (same
    /// polynomials): over a grid through both erf branches and exp's clamps, plus ±∞ and NaN.
    @Test func simdMathMatchesScalarKernels() {
        var xs: [Float] = stride(from: -12, through: 12, by: 0.01).map { Float($0) }
        xs += [-100, -88.7, -87.3, -87.2, 0.8399, 0.84, 0.8401, -0.84, 88.6, 88.8, 100, 0, -0]
        while xs.count % 8 != 3 { xs.append(0.5) }   // a scalar tail too
        let n = xs.count
        var simd = [Float](repeating: 0, count: n), scalar = simd, g = xs.indices.map { Float($0 % 7) * 0.3 - 1 }
        xs.withUnsafeBufferPointer { x in
            simd.withUnsafeMutableBufferPointer { TransformerSIMD.geluForward(x.baseAddress!, $0.baseAddress!, n) }
            scalar.withUnsafeMutableBufferPointer { Kernels.geluForward(x.baseAddress!, $0.baseAddress!, n) }
        }
        expectClose(Tensor(simd), Tensor(scalar), atol: 1e-6, rtol: 1e-6, "gelu forward")
        xs.withUnsafeBufferPointer { x in g.withUnsafeMutableBufferPointer { gp in
            simd.withUnsafeMutableBufferPointer { TransformerSIMD.geluBackward(gp.baseAddress!, x.baseAddress!, $0.baseAddress!, n) }
            scalar.withUnsafeMutableBufferPointer { Kernels.geluBackward(gp.baseAddress!, x.baseAddress!, $0.baseAddress!, n) }
        } }
        expectClose(Tensor(simd), Tensor(scalar), atol: 1e-6, rtol: 1e-6, "gelu backward")
        for x in xs + [.infinity, -.infinity] {
            let e = TransformerSIMD.exp(SIMD8(repeating: x))[3], ref = Kernels.exp(x)
            #expect(e == ref || Swift.abs(e - ref) <= 2e-7 * Swift.abs(ref), "exp(\(x)): \(e) vs \(ref)")
            let r = TransformerSIMD.erf(SIMD8(repeating: x))[5], rr = Kernels.erf(x)
            #expect(r == rr || Swift.abs(r - rr) <= 1e-7, "erf(\(x)): \(r) vs \(rr)")
        }
        #expect(TransformerSIMD.exp(SIMD8(repeating: .nan))[0].isNaN && TransformerSIMD.erf(SIMD8(repeating: .nan))[0].isNaN)
    }

    /// QuickGELU x·σ(1.702x) and its derivative, SIMD8 with a scalar tail, against Double.
    @Test func quickGeluMatchesDouble() {
        var xs: [Float] = stride(from: -60, through: 60, by: 0.037).map { Float($0) }
        xs += [-100, -52, 0, -0, 100, 1e-30]
        while xs.count % 8 != 5 { xs.append(-0.25) }
        let n = xs.count
        let g = xs.indices.map { Float($0 % 5) * 0.4 - 0.9 }
        var y = [Float](repeating: 0, count: n), dx = y
        xs.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { TransformerSIMD.quickGeluForward(x.baseAddress!, $0.baseAddress!, n) }
            g.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { TransformerSIMD.quickGeluBackward(gp.baseAddress!, x.baseAddress!, $0.baseAddress!, n) }
            }
        }
        let sig = { (v: Double) in 1 / (1 + Foundation.exp(-1.702 * v)) }
        let yRef = xs.map { Float(Double($0) * sig(Double($0))) }
        let dRef = xs.indices.map { i -> Float in
            let v = Double(xs[i]), s = sig(v)
            return Float(Double(g[i]) * (s + 1.702 * v * s * (1 - s)))
        }
        expectClose(Tensor(y), Tensor(yRef), atol: 1e-6, rtol: 1e-5, "quickGelu forward")
        expectClose(Tensor(dx), Tensor(dRef), atol: 1e-6, rtol: 1e-5, "quickGelu backward")
        var nan: [Float] = Array(repeating: .nan, count: 9), out = nan
        nan.withUnsafeMutableBufferPointer { p in out.withUnsafeMutableBufferPointer { TransformerSIMD.quickGeluForward(p.baseAddress!, $0.baseAddress!, 9) } }
        #expect(out.allSatisfy { $0.isNaN })
    }
}
