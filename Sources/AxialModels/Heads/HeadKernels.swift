import AxialNN
import AxialTensor

/// `mask ⊙ ReLU(x·Wᵀ + b)` as one recorded op: one GEMM (bias folded in with beta = 1) and one
/// pass for ReLU and the mask, forward; one pass (ReLU gate, mask, bias-gradient row sum) and the
/// GEMMs, backward. The MIL heads' instance encoder (`Dropout(ReLU(Linear(x)))`, the dropout mask
/// passed as `mask`) with the same values as the composition `relu(linear(x)) * mask` —
/// bit for bit: the same GEMM call, `max(y, 0) · m` per element, and the bias gradient summed over
/// rows in the same order as `sum(axis: 0)`. Only the output is kept for backward (the
/// composition keeps the pre-activation, the ReLU output and the mask).
///
/// - x: `[..., in]`, weight `[out, in]`, bias `[out]`, mask: nil (no mask) or `[..., out]` with
///   values ≥ 0 (inverted dropout: 0 or 1/(1 − p)).
/// - Gradients: with `o` the output, ∂pre = g·m where o > 0, else 0 (o > 0 ⟺ pre > 0 and m > 0);
///   dx = ∂pre·W, dW = ∂preᵀ·x, db = Σ_rows ∂pre.
public func linearReLUMasked(_ x: Tensor, weight: Tensor, bias: Tensor, mask: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linearReLUMasked: weight must be [out, in], got \(weight.shape)")
    let inF = weight.shape[1], outF = weight.shape[0]
    precondition(x.rank >= 1 && x.shape[x.rank - 1] == inF,
                 "linearReLUMasked: input \(x.shape) last axis != weight in-features \(inF)")
    precondition(bias.shape == [outF], "linearReLUMasked: bias \(bias.shape) != [\(outF)]")
    let outShape = Array(x.shape.dropLast()) + [outF]
    if let mask { precondition(mask.shape == outShape, "linearReLUMasked: mask \(mask.shape) != output \(outShape)") }
    let m = x.count / Swift.max(inF, 1)
    let y = Tensor(shape: outShape, unsafeUninitialized: { yb in
        let yp = yb.baseAddress!, bp = bias.storage.pointer
        for r in 0..<m { (yp + r * outF).update(from: bp, count: outF) }
        BLAS.sgemm(transA: false, transB: true, m: m, n: outF, k: inF, a: x.storage.pointer, lda: inF,
                   b: weight.storage.pointer, ldb: inF, beta: 1, c: yp, ldc: outF)
        let n = m * outF
        if let mask {
            HeadMath.reluTimes(yp, mask.storage.pointer, n)
        } else {
            for i in 0..<n { let v = yp[i]; yp[i] = 0 > v ? 0 : v }   // Swift.max(v, 0)
        }
    })
    let (xd, wd, md) = (x.detached(), weight.detached(), mask?.detached())
    let (nx, nw, nb) = (x.requiresGrad, weight.requiresGrad, bias.requiresGrad)
    return Tensor.record(y, inputs: [x, weight, bias], name: "linearReLUMasked") { g in
        let db = Tensor(zeros: [outF])
        let gPre = Tensor(shape: [m, outF], unsafeUninitialized: { pb in
            HeadMath.reluGate(pb.baseAddress!, y.storage.pointer, g.storage.pointer, md?.storage.pointer, m * outF)
            HeadMath.addRows(pb.baseAddress!, into: db.storage.pointer, rows: m, columns: outF)
        })
        var gx: Tensor? = nil, gw: Tensor? = nil
        if nx {
            gx = Tensor(shape: xd.shape, unsafeUninitialized: { b in
                BLAS.sgemm(transA: false, transB: false, m: m, n: inF, k: outF, a: gPre.storage.pointer, lda: outF,
                           b: wd.storage.pointer, ldb: inF, c: b.baseAddress!, ldc: inF)
            })
        }
        if nw {
            gw = Tensor(shape: [outF, inF], unsafeUninitialized: { b in
                BLAS.sgemm(transA: true, transB: false, m: outF, n: inF, k: m, a: gPre.storage.pointer, lda: outF,
                           b: xd.storage.pointer, ldb: inF, c: b.baseAddress!, ldc: inF)
            })
        }
        return [gx, gw, nb ? db : nil]
    }
}

extension Heads {
    /// The instance encoder `Dropout(ReLU(Linear(x)))` through `linearReLUMasked`: the dropout
    /// mask is drawn from `g` exactly as `dropout(_:p:training:generator:)` draws it (one
    /// uniform per output element, in order), so results equal the unfused composition.
    static func encode(_ x: Tensor, _ layer: Linear, _ p: Float, _ training: Bool, _ g: inout RandomGenerator) -> Tensor {
        guard let bias = layer.bias else { return drop(relu(layer(x)), p, training, &g) }
        var mask: Tensor? = nil
        if training && p > 0 {
            precondition(p < 1, "dropout: p = \(p) must be in [0, 1)")
            let scale = 1 / (1 - p)
            let shape = Array(x.shape.dropLast()) + [layer.weight.value.shape[0]]
            mask = Tensor(shape: shape) { q in for i in 0..<q.count { q[i] = g.uniform() < p ? 0 : scale } }
        }
        return linearReLUMasked(x, weight: layer.weight.value, bias: bias.value, mask: mask)
    }
}

/// Concrete pointer loops of the heads' fused ops, written so that they vectorise (SIMD8 with the
/// same operation sequence as the scalar `Kernels.exp / tanh / sigmoid`: identical values).
enum HeadMath {
    /// y[i] = max(y[i], 0) · m[i]  (`Swift.max` semantics: NaN stays NaN).
    static func reluTimes(_ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { let v = y[i]; y[i] = (0 > v ? 0 : v) * m[i] }
    }

    /// d[i] = o[i] > 0 ? g[i] · m[i] : 0 (m = nil: g[i]).
    static func reluGate(_ d: UnsafeMutablePointer<Float>, _ o: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                         _ m: UnsafePointer<Float>?, _ n: Int) {
        if let m {
            for i in 0..<n { let v = g[i] * m[i]; d[i] = o[i] > 0 ? v : 0 }
        } else {
            for i in 0..<n { let v = g[i]; d[i] = o[i] > 0 ? v : 0 }
        }
    }

    /// s[j] += Σ_r x[r, j], rows in order (the summation order of `sum(axis: 0)`).
    static func addRows(_ x: UnsafePointer<Float>, into s: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            let row = x + r * columns
            for j in 0..<columns { s[j] += row[j] }
        }
    }

    @inline(__always) static func exp(_ x0: SIMD8<Float>) -> SIMD8<Float> {
        var x = x0
        x.replace(with: -87.3, where: x0 .< -87.3)      // Swift.max(x0, -87.3)
        x.replace(with: 88.7, where: x .> 88.7)         // Swift.min(·, 88.7)
        let fx = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = x - fx * 0.693359375
        r = r + fx * 2.12194440e-4
        var y = SIMD8<Float>(repeating: 1.9875691500e-4)
        y = y * r + 1.3981999507e-3
        y = y * r + 8.3334519073e-3
        y = y * r + 4.1665795894e-2
        y = y * r + 1.6666665459e-1
        y = y * r + 5.0000001201e-1
        y = y * (r * r) + r + 1
        // 2^fx: fx + 127 (an integer in [1, 255]) as the low mantissa bits of 2²³ + fx + 127.
        let biased = (fx + 8388735).bitPattern(as: UInt32.self)
        let pow2 = SIMD8<Float>(bitPattern: biased &<< 23)
        var out = y * pow2
        out.replace(with: 0, where: x0 .< -87.3)
        out.replace(with: .infinity, where: x0 .> 88.7)
        return out
    }

    @inline(__always) static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let ax = SIMD8<Float>(bitPattern: x.bitPattern(as: UInt32.self) & 0x7fff_ffff)   // |x|
        let z = x * x
        var p = SIMD8<Float>(repeating: -5.70498872745e-3)
        p = p * z + 2.06390887954e-2
        p = p * z - 5.37397155531e-2
        p = p * z + 1.33314422036e-1
        p = p * z - 3.33332819422e-1
        let small = x + x * z * p
        var t = 2 * ax
        t.replace(with: 88, where: t .> 88)              // Swift.min(2|x|, 88)
        let e = exp(t)
        var big = 1 - 2 / (e + 1)
        big.replace(with: -big, where: x .< 0)
        var out = big
        out.replace(with: small, where: ax .< 0.625)
        return out
    }

    @inline(__always) static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + exp(-x)) }

    /// Gated attention forward over rows of [v | u] (width 2k): t = tanh v, s = σ(u), y = t·s.
    static func gate(_ x: UnsafePointer<Float>, rows: Int, k: Int, t: UnsafeMutablePointer<Float>,
                     s: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let k8 = k / 8 * 8
        for r in 0..<rows {
            let xr = x + r * 2 * k, o = r * k
            var j = 0
            while j < k8 {
                let v = UnsafeRawPointer(xr + j).loadUnaligned(as: SIMD8<Float>.self)
                let u = UnsafeRawPointer(xr + k + j).loadUnaligned(as: SIMD8<Float>.self)
                let tv = tanh(v), sv = sigmoid(u)
                UnsafeMutableRawPointer(t + o + j).storeBytes(of: tv, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(s + o + j).storeBytes(of: sv, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(y + o + j).storeBytes(of: tv * sv, as: SIMD8<Float>.self)
                j += 8
            }
            while j < k {
                let tv = Kernels.tanh(xr[j]), sv = Kernels.sigmoid(xr[k + j])
                t[o + j] = tv; s[o + j] = sv; y[o + j] = tv * sv
                j += 1
            }
        }
    }
}

private extension SIMD8 where Scalar == Float {
    func bitPattern(as: UInt32.Type) -> SIMD8<UInt32> { unsafeBitCast(self, to: SIMD8<UInt32>.self) }
    init(bitPattern b: SIMD8<UInt32>) { self = unsafeBitCast(b, to: SIMD8<Float>.self) }
}
