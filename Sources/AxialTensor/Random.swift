import AxialCore
import Foundation

extension Tensor {
    /// Uniform values in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout RandomGenerator) -> Tensor {
        Tensor(shape: shape) { p in for i in 0..<p.count { p[i] = generator.uniform(low, high) } }
    }

    /// Normal values with the given mean and standard deviation (Box–Muller pairs).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout RandomGenerator) -> Tensor {
        Tensor(shape: shape) { p in
            var i = 0
            while i < p.count {
                let (a, b) = generator.normalPair()
                p[i] = mean + std * a
                if i + 1 < p.count { p[i + 1] = mean + std * b }
                i += 2
            }
        }
    }

    /// Truncated normal with timm's `trunc_normal_` semantics: N(mean, std²) restricted to the
    /// absolute bounds [a, b], sampled by inverse CDF (uniform in [Φ(α), Φ(β)] then Φ⁻¹), clamped.
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, a: Float = -2, b: Float = 2,
                                       generator: inout RandomGenerator) -> Tensor {
        precondition(a < b, "truncatedNormal: a (\(a)) must be < b (\(b))")
        func cdf(_ x: Double) -> Double { (1 + Foundation.erf(x / 2.0.squareRoot())) / 2 }
        let l = cdf(Double((a - mean) / std)), u = cdf(Double((b - mean) / std))
        return Tensor(shape: shape) { p in
            for i in 0..<p.count {
                let v = 2 * (l + (u - l) * (Double(generator.next() >> 11) * 0x1p-53)) - 1   // in [2l−1, 2u−1)
                let x = erfinv(v) * 2.0.squareRoot() * Double(std) + Double(mean)
                p[i] = Swift.min(Swift.max(Float(x), a), b)
            }
        }
    }

    /// 1 with probability `p`, else 0.
    public static func bernoulli(_ shape: [Int], p: Float, generator: inout RandomGenerator) -> Tensor {
        Tensor(shape: shape) { q in for i in 0..<q.count { q[i] = generator.uniform() < p ? 1 : 0 } }
    }
}

/// Inverse error function on (−1, 1): Giles' single-precision approximation refined by two
/// Newton steps in Double (error < 1e-12).
func erfinv(_ y: Double) -> Double {
    if y <= -1 { return -.infinity }
    if y >= 1 { return .infinity }
    var w = -Foundation.log((1 - y) * (1 + y))
    var x: Double
    if w < 5 {
        w -= 2.5
        var p = 2.81022636e-08
        p = 3.43273939e-07 + p * w; p = -3.5233877e-06 + p * w; p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w; p = -0.00125372503 + p * w; p = -0.00417768164 + p * w
        p = 0.246640727 + p * w; p = 1.50140941 + p * w
        x = p * y
    } else {
        w = w.squareRoot() - 3
        var p = -0.000200214257
        p = 0.000100950558 + p * w; p = 0.00134934322 + p * w; p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w; p = -0.0076224613 + p * w; p = 0.00943887047 + p * w
        p = 1.00167406 + p * w; p = 2.83297682 + p * w
        x = p * y
    }
    for _ in 0..<2 {
        let err = Foundation.erf(x) - y
        x -= err / (2 / Double.pi.squareRoot() * Foundation.exp(-x * x))
    }
    return x
}
