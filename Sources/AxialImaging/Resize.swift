import Foundation

/// In-plane resize of a single-channel float image (HU), separable, pixel centres at `i + ½`
/// (PyTorch's `align_corners=False`, OpenCV's convention).
///
/// Along each axis independently:
/// - **upsampling or same size** (out ≥ in): bilinear — source coordinate `s = (o + ½)·in/out − ½`,
///   clamped to `[0, in−1]`, linear interpolation between `⌊s⌋` and `⌊s⌋+1` (as
///   `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`);
/// - **downsampling** (out < in): area averaging — output pixel `o` is the mean of the source
///   interval `[o·in/out, (o+1)·in/out)`, with partial pixels weighted by their covered fraction
///   (OpenCV's `INTER_AREA`; for integer factors the plain block mean). Unlike bilinear, this keeps
///   every source pixel's contribution, so thin bright structures do not vanish or alias.
///
/// Weights per axis are computed once; the image is resized along x, then along y.
public struct Resampler: Sendable {
    struct Taps: Sendable {
        var start: [Int32]     // first source index per output index
        var count: [Int32]     // taps per output index
        var weights: [[Float]] // weights per output index
    }
    public let inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int
    let xTaps: Taps, yTaps: Taps

    public init(inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int) {
        precondition(inWidth > 0 && inHeight > 0 && outWidth > 0 && outHeight > 0,
                     "Resampler: sizes must be positive (\(inWidth)×\(inHeight) → \(outWidth)×\(outHeight))")
        self.inWidth = inWidth; self.inHeight = inHeight; self.outWidth = outWidth; self.outHeight = outHeight
        xTaps = Resampler.taps(inSize: inWidth, outSize: outWidth)
        yTaps = Resampler.taps(inSize: inHeight, outSize: outHeight)
    }

    static func taps(inSize: Int, outSize: Int) -> Taps {
        var start = [Int32](), count = [Int32](), weights = [[Float]]()
        let scale = Double(inSize) / Double(outSize)
        for o in 0..<outSize {
            if outSize >= inSize {
                var s = (Double(o) + 0.5) * scale - 0.5
                s = min(max(s, 0), Double(inSize - 1))
                let i0 = Int(s.rounded(.down))
                let f = s - Double(i0)
                if i0 + 1 < inSize && f > 0 {
                    start.append(Int32(i0)); count.append(2); weights.append([Float(1 - f), Float(f)])
                } else {
                    start.append(Int32(i0)); count.append(1); weights.append([1])
                }
            } else {
                let a = Double(o) * scale, b = Double(o + 1) * scale
                let i0 = Int(a.rounded(.down)), i1 = min(Int(b.rounded(.up)), inSize)
                var w = [Float]()
                for i in i0..<i1 {
                    let overlap = min(b, Double(i + 1)) - max(a, Double(i))
                    w.append(Float(max(overlap, 0) / scale))
                }
                start.append(Int32(i0)); count.append(Int32(i1 - i0)); weights.append(w)
            }
        }
        return Taps(start: start, count: count, weights: weights)
    }

    /// Resizes `source` (`inHeight × inWidth`, x fastest) to `outHeight × outWidth`.
    public func callAsFunction(_ source: UnsafeBufferPointer<Float>) -> [Float] {
        precondition(source.count == inWidth * inHeight,
                     "Resampler: \(source.count) values for \(inWidth)×\(inHeight)")
        if inWidth == outWidth && inHeight == outHeight { return Array(source) }
        // Along x: [inHeight, outWidth].
        var mid = [Float](repeating: 0, count: inHeight * outWidth)
        mid.withUnsafeMutableBufferPointer { m in
            for y in 0..<inHeight {
                let row = y * inWidth, outRow = y * outWidth
                for o in 0..<outWidth {
                    let s = Int(xTaps.start[o]), w = xTaps.weights[o]
                    var acc: Float = 0
                    for t in 0..<w.count { acc += w[t] * source[row + s + t] }
                    m[outRow + o] = acc
                }
            }
        }
        // Along y: [outHeight, outWidth], row by row (vectorises over x).
        var out = [Float](repeating: 0, count: outHeight * outWidth)
        out.withUnsafeMutableBufferPointer { d in
            mid.withUnsafeBufferPointer { m in
                for o in 0..<outHeight {
                    let s = Int(yTaps.start[o]), w = yTaps.weights[o]
                    let dst = o * outWidth
                    for t in 0..<w.count {
                        let wt = w[t], src = (s + t) * outWidth
                        for x in 0..<outWidth { d[dst + x] += wt * m[src + x] }
                    }
                }
            }
        }
        return out
    }

    public func callAsFunction(_ source: [Float]) -> [Float] {
        source.withUnsafeBufferPointer { self($0) }
    }
}
