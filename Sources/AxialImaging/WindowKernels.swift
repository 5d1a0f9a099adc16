/// The windowing loop (`CTWindow.apply`, stride 1) with SIMD8: the same operations as the scalar
/// `CTWindow.byte((hu − lower) · scale)` — clamp to [0, 255] (NaN → 0), + 0.5, truncate — so the
/// bytes are identical; the scalar form does not vectorise (its float → integer conversion checks
/// every element).
@usableFromInline
enum WindowKernels {
    @usableFromInline
    static func apply(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<UInt8>, _ n: Int, lo: Float, scale: Float) {
        let n8 = n / 8 * 8
        var i = 0
        while i < n8 {
            let x = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float>.self)
            let t = (x - lo) * scale
            var a = t
            a.replace(with: 0, where: .!(t .> 0))          // t > 0 ? t : 0  (NaN → 0)
            a.replace(with: 255, where: .!(a .< 255))      // a < 255 ? a : 255
            let v = (a + 0.5).rounded(.towardZero)        // in [0, 255]: UInt8(a + 0.5)
            // v + 2²³ holds v in its low mantissa bits.
            let bits = unsafeBitCast(v + 8388608, to: SIMD8<UInt32>.self)
            let bytes = SIMD8<UInt8>(truncatingIfNeeded: bits)
            UnsafeMutableRawPointer(d + i).storeBytes(of: bytes, as: SIMD8<UInt8>.self)
            i += 8
        }
        while i < n { d[i] = CTWindow.byte((s[i] - lo) * scale); i += 1 }
    }
}
