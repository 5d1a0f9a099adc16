import Foundation

/// **SplitMix64** (Steele, Lea & Flood 2014): a 64-bit-state generator, used to seed
/// `RandomGenerator` and, on its own, where a tiny reproducible stream is enough (synthetic cohorts,
/// DICOM UIDs).
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// The top 53 bits of `next()` as a Double in [0, 1).
    public mutating func nextUniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Box–Muller on two uniforms (u1 clamped away from 0).
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextUniform(), 1e-300), u2 = nextUniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// A seeded pseudo-random generator: **xoshiro256\*\*** (Blackman & Vigna, 2018) whose 256-bit
/// state is filled from the 64-bit seed by **SplitMix64**, as the authors recommend.
///
/// - `next()`: the xoshiro256** output, `rotl(s1 · 5, 7) · 9`, then the state update.
/// - `uniform()`: the top 24 bits of `next()` times 2⁻²⁴, in [0, 1).
/// - `normal()`: Box–Muller on two uniforms (u1 taken in (0, 1]); tensors use both outputs of each pair.
/// - `state`: the four state words; assigning them restores the stream exactly (checkpoints).
///
/// The streams are not PyTorch's: tests check distributions, bounds and reproducibility.
public struct RandomGenerator: Sendable, Equatable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    /// A generator seeded with `seed` through SplitMix64.
    public init(seed: UInt64) {
        var x = SplitMix64(seed: seed)
        s = (x.next(), x.next(), x.next(), x.next())
    }

    /// Restores a generator from `state` (four words, not all zero).
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "RandomGenerator(state:) needs four words, not all zero; got \(state)")
        s = (state[0], state[1], state[2], state[3])
    }

    /// The four 64-bit state words (copy, serialise, assign back to resume the stream).
    public var state: [UInt64] {
        get { [s.0, s.1, s.2, s.3] }
        set {
            precondition(newValue.count == 4 && newValue.contains { $0 != 0 }, "RandomGenerator.state needs four words, not all zero")
            s = (newValue[0], newValue[1], newValue[2], newValue[3])
        }
    }

    public static func == (l: RandomGenerator, r: RandomGenerator) -> Bool { l.state == r.state }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 { nextBits() }

    @usableFromInline
    mutating func nextBits() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Uniform integer in 0..<upperBound (Lemire's nearly-divisionless method).
    public mutating func int(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "int(below:) needs a positive bound")
        let bound = UInt64(upperBound)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let t = (0 &- bound) % bound
            while m.low < t { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// A pair of independent standard normals (Box–Muller).
    public mutating func normalPair() -> (Float, Float) {
        let u1 = (Double(next() >> 11) + 1) * 0x1p-53   // (0, 1]
        let u2 = Double(next() >> 11) * 0x1p-53
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let th = 2 * Double.pi * u2
        return (Float(r * Foundation.cos(th)), Float(r * Foundation.sin(th)))
    }

    /// One standard normal (the second of the pair is discarded).
    public mutating func normal() -> Float { normalPair().0 }

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, int(below: i + 1)) } }
        return p
    }

    /// Shuffles an array in place (Fisher–Yates).
    public mutating func shuffle<T>(_ a: inout [T]) {
        if a.count > 1 { for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) } }
    }
}

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
