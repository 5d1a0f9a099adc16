// Explicit SIMD8 forms of exp, erf and the GELU forward / backward for the fused transformer ops.
// Same polynomials and operation order as `Kernels.exp` / `Kernels.erf` (Math.swift), written on
// SIMD8<Float> with selects instead of branches and the 2ⁿ scaling done with integer lanes, so
// they vectorise (a perf profile of the ViT-S/16 training step showed the scalar per-element
// forms in xmm registers, ≈ 37 % of the step's samples in GELU forward + backward).

enum TransformerSIMD {
    typealias V = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V { UnsafeRawPointer(p).loadUnaligned(fromByteOffset: i * 4, as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, toByteOffset: i * 4, as: V.self)
    }

    /// e^x lane-wise: `Kernels.exp`'s range reduction and polynomial; 0 below −87.3, +∞ above 88.7, NaN stays NaN.
    @inline(__always)
    static func exp(_ x0: V) -> V {
        var x = x0
        x.replace(with: V(repeating: -87.3), where: x .< -87.3)
        x.replace(with: V(repeating: 88.7), where: x .> 88.7)
        let fx = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = x - fx * 0.693359375
        r = r + fx * 2.12194440e-4
        var y = V(repeating: 1.9875691500e-4)
        y = y * r + 1.3981999507e-3
        y = y * r + 8.3334519073e-3
        y = y * r + 4.1665795894e-2
        y = y * r + 1.6666665459e-1
        y = y * r + 5.0000001201e-1
        y = y * (r * r) + r + 1
        // 2^fx: fx + 1.5·2²³ holds the integer fx in its low mantissa bits.
        let magic: Float = 12582912
        let n = unsafeBitCast(fx + magic, to: SIMD8<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
        let pow2 = unsafeBitCast((n &+ 127) &<< 23, to: V.self)
        var out = y * pow2
        out.replace(with: V(repeating: 0), where: x0 .< -87.3)
        out.replace(with: V(repeating: .infinity), where: x0 .> 88.7)
        return out
    }

    /// erf lane-wise: `Kernels.erf`'s Maclaurin series below |x| 0.84, the erfc fit above.
    @inline(__always)
    static func erf(_ x: V) -> V {
        let neg = x .< 0
        let ax = x.replacing(with: -x, where: neg)
        let z = x * x
        var s = V(repeating: -1.0 / 6894720)
        s = s * z + (1.0 / 685440)
        s = s * z - (1.0 / 75600)
        s = s * z + (1.0 / 9360)
        s = s * z - (1.0 / 1320)
        s = s * z + (1.0 / 216)
        s = s * z - (1.0 / 42)
        s = s * z + (1.0 / 10)
        s = s * z - (1.0 / 3)
        s = s * z + 1
        let small = 1.1283791670955126 * x * s
        let t = 1 / (1 + 0.5 * ax)
        var q = V(repeating: 0.17087277)
        q = q * t - 0.82215223
        q = q * t + 1.48851587
        q = q * t - 1.13520398
        q = q * t + 0.27886807
        q = q * t - 0.18628806
        q = q * t + 0.09678418
        q = q * t + 0.37409196
        q = q * t + 1.00002368
        q = q * t - 1.26551223
        var big = 1 - t * exp(-z + q)
        big.replace(with: -big, where: neg)
        return small.replacing(with: big, where: ax .>= 0.84)
    }

    /// y = 0.5·x·(1 + erf(x/√2)) over n elements (tail through `Kernels.geluForward`).
    static func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(x, i)
            store(0.5 * v * (1 + erf(v * 0.7071067811865476)), y, i)
            i += 8
        }
        if i < n { Kernels.geluForward(x + i, y + i, n - i) }
    }

    /// dx = g·(Φ(x) + x·φ(x)) over n elements; `dx` may be `g` (in place).
    static func geluBackward(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(x, i)
            let cdf = 0.5 * (1 + erf(v * 0.7071067811865476))
            let pdf = 0.3989422804014327 * exp(-0.5 * v * v)
            store(load(g, i) * (cdf + v * pdf), dx, i)
            i += 8
        }
        if i < n { Kernels.geluBackward(g + i, x + i, dx + i, n - i) }
    }

    /// y = x·sigmoid(1.702·x) (QuickGELU) over n elements; `y` may be `x` (in place).
    static func quickGeluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(x, i)
            store(v * (1 / (1 + exp(-1.702 * v))), y, i)
            i += 8
        }
        while i < n { let v = x[i]; y[i] = v * Kernels.sigmoid(1.702 * v); i += 1 }
    }

    /// dx = g·(s + 1.702·x·s·(1 − s)), s = sigmoid(1.702·x), over n elements; `dx` may be `g`.
    static func quickGeluBackward(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(x, i)
            let s = 1 / (1 + exp(-1.702 * v))
            store(load(g, i) * (s + 1.702 * v * s * (1 - s)), dx, i)
            i += 8
        }
        while i < n {
            let v = x[i], s = Kernels.sigmoid(1.702 * v)
            dx[i] = g[i] * (s + 1.702 * v * s * (1 - s)); i += 1
        }
    }

    /// p[j] ← exp(p[j] − shift) over n elements.
    static func expShifted(_ p: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) {
        var j = 0
        while j + 8 <= n { store(exp(load(p, j) - shift), p, j); j += 8 }
        while j < n { p[j] = Kernels.exp(p[j] - shift); j += 1 }
    }
}

/// The SIMD8 forms for the tape-free inference kernels of other modules (EncoderKernels).
extension Kernels {
    /// p[j] ← GELU(p[j]) (erf form) over n elements, SIMD8 (`TransformerSIMD.geluForward` in place).
    public static func geluInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "geluInPlace: count \(n)")
        TransformerSIMD.geluForward(p, p, n)
    }

    /// p[j] ← p[j]·sigmoid(1.702·p[j]) (OpenAI CLIP's QuickGELU) over n elements, SIMD8.
    public static func quickGeluInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "quickGeluInPlace: count \(n)")
        TransformerSIMD.quickGeluForward(p, p, n)
    }

    /// p[j] ← exp(p[j] − shift) over n elements, SIMD8.
    public static func expShiftedInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) {
        precondition(n >= 0, "expShiftedInPlace: count \(n)")
        TransformerSIMD.expShifted(p, n, shift: shift)
    }
}
