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

    /// The SplitMix64 output for state `x` (one step from `x`): a 64-bit mixing function, used to
    /// derive independent seeds from words (`SplitMix64.mix(a ^ SplitMix64.mix(b))`).
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var g = SplitMix64(seed: x)
        return g.next()
    }

    /// Uniform integer in 0..<bound (rejection sampling, no modulo bias).
    public mutating func uniform(below bound: Int) -> Int {
        precondition(bound > 0, "uniform(below:) needs a positive bound, got \(bound)")
        let b = UInt64(bound)
        let limit = UInt64.max - (UInt64.max % b)
        while true {
            let r = next()
            if r < limit { return Int(r % b) }
        }
    }

    /// Standard normal (Box–Muller, one value per call; a zero first uniform is drawn again).
    public mutating func normal() -> Double {
        var u1 = nextUniform()
        while u1 <= .leastNonzeroMagnitude { u1 = nextUniform() }
        let u2 = nextUniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Fisher–Yates shuffle in place (Durstenfeld, from the back).
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = uniform(below: i + 1)
            if i != j { a.swapAt(i, j) }
        }
    }
}

extension SplitMix64: RandomNumberGenerator {}

/// FNV-1a (64-bit) of a string's UTF-8 bytes: a stable hash for seeding per-name streams
/// (Swift's `hashValue` is randomised per process).
public func fnv1a64(_ text: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
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


/// One seed from several words (a seed and an epoch, a seed and a name hash): FNV-style
/// multiply-xor-shift over the words, order-dependent. Crossval's per-epoch and per-patient streams.
public func combineSeeds(_ parts: UInt64...) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3
    for p in parts { h = (h ^ p) &* 0x100_0000_01B3; h ^= h >> 29 }
    return h
}
