/// Inlinable scalar math that vectorises (no libm call per element), and SIMD reductions.
public enum Kernels {
    /// e^x, Cephes-style: range reduction by ln 2 and a degree-5 polynomial (≈1 ulp on the
    /// reduced range, relative error < 2e-7). Returns 0 below -87.3 (so exp(-inf) = 0) and
    /// +inf above 88.7.
    @inlinable @inline(__always)
    public static func exp(_ x0: Float) -> Float {
        let x = min(max(x0, -87.3), 88.7)
        let fx = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = x - fx * 0.693359375
        r = r + fx * 2.12194440e-4
        var y: Float = 1.9875691500e-4
        y = y * r + 1.3981999507e-3
        y = y * r + 8.3334519073e-3
        y = y * r + 4.1665795894e-2
        y = y * r + 1.6666665459e-1
        y = y * r + 5.0000001201e-1
        y = y * (r * r) + r + 1
        // NaN in, NaN out (never a trap converting NaN to Int32: one NaN feature used to abort the run).
        let pow2 = Float(bitPattern: UInt32(bitPattern: Int32(fx.isNaN ? 0 : fx) &+ 127) << 23)
        var out = y * pow2
        if x0 < -87.3 { out = 0 }
        if x0 > 88.7 { out = .infinity }
        return out
    }

    /// tanh(x): odd polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|}+1) with the sign restored
    /// (relative error < 3e-7).
    @inlinable @inline(__always)
    public static func tanh(_ x: Float) -> Float {
        let ax = abs(x)
        // Small: Taylor/minimax, x + x^3 p(x^2) (Cephes tanhf).
        let z = x * x
        var p: Float = -5.70498872745e-3
        p = p * z + 2.06390887954e-2
        p = p * z - 5.37397155531e-2
        p = p * z + 1.33314422036e-1
        p = p * z - 3.33332819422e-1
        let small = x + x * z * p
        let e = exp(min(2 * ax, 88))
        var big = 1 - 2 / (e + 1)
        if x < 0 { big = -big }
        return ax < 0.625 ? small : big
    }

    /// erf(x): for |x| < 0.84 its Maclaurin series to x¹⁹; else 1 − erfc with the Numerical Recipes
    /// erfcc Chebyshev fit (absolute error < 3e-7 against libm, tested).
    @inlinable @inline(__always)
    public static func erf(_ x: Float) -> Float {
        let ax = abs(x)
        // Small |x|: the Maclaurin series 2/√π Σₙ (−1)ⁿ x²ⁿ⁺¹/(n!(2n+1)), n ≤ 9
        let z = x * x
        var s: Float = -1.0 / 6894720
        s = s * z + 1.0 / 685440
        s = s * z - 1.0 / 75600
        s = s * z + 1.0 / 9360
        s = s * z - 1.0 / 1320
        s = s * z + 1.0 / 216
        s = s * z - 1.0 / 42
        s = s * z + 1.0 / 10
        s = s * z - 1.0 / 3
        s = s * z + 1
        let small = 1.1283791670955126 * x * s
        // Large |x|: 1 − t·exp(−x² + poly(t)) (Numerical Recipes erfc, rel. error < 1.2e-7).
        let t = 1 / (1 + 0.5 * ax)
        var q: Float = 0.17087277
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
        if x < 0 { big = -big }
        return ax < 0.84 ? small : big
    }

    /// 1 / (1 + e^{-x}).
    @inlinable @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// Σ p[i] with eight SIMD8 accumulators, in Double-free Float (pairwise-ish accuracy).
    @inlinable
    public static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        precondition(n >= 0, "Kernels.sum: negative count \(n)")
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 32 <= n {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            a1 += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            a2 += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
            a3 += raw.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
            i += 32
        }
        while i + 8 <= n { a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self); i += 8 }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Σ p[i]² with SIMD8 accumulators.
    @inlinable
    public static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        precondition(n >= 0, "Kernels.sumOfSquares: negative count \(n)")
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= n {
            let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let v1 = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            a0.addProduct(v0, v0); a1.addProduct(v1, v1)
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += p[i] * p[i]; i += 1 }
        return s
    }

    /// Σ a[i]·b[i] with SIMD8 accumulators.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        precondition(n >= 0, "Kernels.dot: negative count \(n)")
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            a0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            a1.addProduct(ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self))
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    // MARK: Fused elementwise kernels over raw pointers (concrete loops: no closure call per element,
    // so LLVM vectorises them; callers split ranges over `parallelFor`).

    /// y = 0.5·x·(1 + erf(x/√2)).
    @inlinable
    public static func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.geluForward: negative count \(n)")
        for i in 0..<n { let v = x[i]; y[i] = 0.5 * v * (1 + erf(v * 0.7071067811865476)) }
    }

    /// dx = g·(Φ(x) + x·φ(x)) for the erf GELU.
    @inlinable
    public static func geluBackward(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.geluBackward: negative count \(n)")
        for i in 0..<n {
            let v = x[i]
            let cdf = 0.5 * (1 + erf(v * 0.7071067811865476))
            let pdf = 0.3989422804014327 * exp(-0.5 * v * v)
            dx[i] = g[i] * (cdf + v * pdf)
        }
    }

    /// y = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
    @inlinable
    public static func geluTanhForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.geluTanhForward: negative count \(n)")
        let k: Float = 0.7978845608028654
        for i in 0..<n { let v = x[i]; y[i] = 0.5 * v * (1 + tanh(k * (v + 0.044715 * v * v * v))) }
    }

    /// Backward of the tanh GELU.
    @inlinable
    public static func geluTanhBackward(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.geluTanhBackward: negative count \(n)")
        let k: Float = 0.7978845608028654
        for i in 0..<n {
            let v = x[i]
            let u = k * (v + 0.044715 * v * v * v)
            let t = tanh(u)
            let du = k * (1 + 3 * 0.044715 * v * v)
            dx[i] = g[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
        }
    }

    /// out = a + b.
    @inlinable
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.add: negative count \(n)")
        for i in 0..<n { out[i] = a[i] + b[i] }
    }

    /// out = a · s.
    @inlinable
    public static func scale(_ a: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        precondition(n >= 0, "Kernels.scale: negative count \(n)")
        for i in 0..<n { out[i] = a[i] * s }
    }

    /// max of p[0..<n] (n ≥ 1), NaN-agnostic like a scalar `max` loop.
    @inlinable
    public static func maximum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        precondition(n >= 0, "Kernels.maximum: negative count \(n)")
        var i = 0
        let raw = UnsafeRawPointer(p)
        var m = -Float.infinity
        if n >= 8 {
            var a = raw.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
            i = 8
            while i + 8 <= n {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                a.replace(with: v, where: v .> a)
                i += 8
            }
            for l in 0..<8 { m = Swift.max(m, a[l]) }
        }
        while i < n { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    /// Σ a[i]·b[i]·c[i] with SIMD8 accumulators.
    @inlinable
    public static func dot3(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
        precondition(n >= 0, "Kernels.dot3: negative count \(n)")
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), rc = UnsafeRawPointer(c)
        while i + 16 <= n {
            a0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self),
                          rc.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            a1.addProduct(ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self),
                          rc.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self))
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += a[i] * b[i] * c[i]; i += 1 }
        return s
    }

    /// Σ (p[i] − mean)² with SIMD8 accumulators.
    @inlinable
    public static func sumOfSquaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        precondition(n >= 0, "Kernels.sumOfSquaredDeviations: negative count \(n)")
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= n {
            let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
            let v1 = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) - m
            a0.addProduct(v0, v0); a1.addProduct(v1, v1)
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { let t = p[i] - mean; s += t * t; i += 1 }
        return s
    }
}
