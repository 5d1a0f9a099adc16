import AxialTensor
import Foundation

/// timm's `resample_abs_pos_embed` (timm 1.0.x `layers/pos_embed.py`): the prefix (class-token)
/// rows are kept, the g₀×g₀ grid rows are resampled to h×w with `F.interpolate(mode='bicubic',
/// align_corners=False, antialias=…)`. timm's ViT `checkpoint_filter_fn` does this with
/// `antialias=True` when a checkpoint's `pos_embed` grid differs from the model's (e.g. a 224
/// checkpoint in a model built at 256); `VisionTransformer.remapCheckpointKeys` does the same.
///
/// antialias true: PIL-style separable cubic (a = −0.5, support 2·max(scale, 1), normalised, clipped
/// at the borders — `CLIPPositionEmbedding.antialiasedCubicWeights`); false: PyTorch's
/// `upsample_bicubic2d` (a = −0.75, source index (i + ½)·scale − ½, taps clamped to the border).
public enum ViTPositionEmbedding {
    /// pe [1, p + g₀², D] (or [p + g₀², D]) → the same rank with p + h·w rows.
    public static func resample(_ pe: Tensor, toGrid grid: (Int, Int), prefixTokens: Int = 1, antialias: Bool = true) -> Tensor {
        precondition(pe.rank == 3 && pe.shape[0] == 1 || pe.rank == 2, "position embedding \(pe.shape) must be [1, p + g², D]")
        let rows = pe.shape[pe.rank - 2], D = pe.shape[pe.rank - 1]
        let n = rows - prefixTokens
        let g0 = Int(Double(n).squareRoot())
        precondition(n > 0 && g0 * g0 == n, "position embedding \(pe.shape): \(n) grid rows is not a square")
        let (gh, gw) = grid
        precondition(gh >= 1 && gw >= 1, "position embedding grid \(gh)×\(gw)")
        let outShape = pe.rank == 3 ? [1, prefixTokens + gh * gw, D] : [prefixTokens + gh * gw, D]
        if gh == g0 && gw == g0 { return pe }
        let src = pe.scalars
        let wy = antialias ? CLIPPositionEmbedding.antialiasedCubicWeights(inputSize: g0, outputSize: gh) : cubicWeights(inputSize: g0, outputSize: gh)
        let wx = antialias ? CLIPPositionEmbedding.antialiasedCubicWeights(inputSize: g0, outputSize: gw) : cubicWeights(inputSize: g0, outputSize: gw)
        // Width pass [g0, g0, D] → [g0, gw, D], then height pass → [gh, gw, D] (Double accumulators).
        var tmp = [Double](repeating: 0, count: g0 * gw * D)
        for y in 0..<g0 {
            for (ox, (start, ws)) in wx.enumerated() {
                for (j, w) in ws.enumerated() {
                    let row = prefixTokens + y * g0 + start + j
                    for d in 0..<D { tmp[(y * gw + ox) * D + d] += w * Double(src[row * D + d]) }
                }
            }
        }
        var out = [Float](repeating: 0, count: (prefixTokens + gh * gw) * D)
        for i in 0..<(prefixTokens * D) { out[i] = src[i] }
        for (oy, (start, ws)) in wy.enumerated() {
            for ox in 0..<gw {
                for d in 0..<D {
                    var acc = 0.0
                    for (j, w) in ws.enumerated() { acc += w * tmp[((start + j) * gw + ox) * D + d] }
                    out[(prefixTokens + oy * gw + ox) * D + d] = Float(acc)
                }
            }
        }
        return Tensor(shape: outShape, scalars: out)
    }

    /// PyTorch `upsample_bicubic2d` (align_corners False) taps as (first index, weights) with the
    /// four taps clamped into [0, n−1] (clamped taps merged so `start` + j indexes the input).
    static func cubicWeights(inputSize: Int, outputSize: Int) -> [(Int, [Double])] {
        let scale = Double(inputSize) / Double(outputSize)
        let A = -0.75
        func near(_ x: Double) -> Double { ((A + 2) * x - (A + 3)) * x * x + 1 }           // |x| ≤ 1
        func far(_ x: Double) -> Double { ((A * x - 5 * A) * x + 8 * A) * x - 4 * A }     // 1 < |x| < 2
        return (0..<outputSize).map { i in
            let real = scale * (Double(i) + 0.5) - 0.5
            let f = Int(real.rounded(.down))
            let t = real - Double(f)
            let ws = [far(t + 1), near(t), near(1 - t), far(2 - t)]
            let idx = (-1...2).map { Swift.min(Swift.max(f + $0, 0), inputSize - 1) }
            let lo = idx.min()!, hi = idx.max()!
            var dense = [Double](repeating: 0, count: hi - lo + 1)
            for (k, w) in zip(idx, ws) { dense[k - lo] += w }
            return (lo, dense)
        }
    }
}
