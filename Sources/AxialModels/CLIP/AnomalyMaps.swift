import AxialNN
import AxialTensor
import Foundation

// MVFA / MLA-LP anomaly maps, scores, few-shot memory bank and losses (REFERENCE.md §2; facts from
// MVFA-AD train_few.py / utils.py / loss.py and mla-pl train_few.py).
//
//   per level ℓ:  Lℓ = 100 · normalize(tokens ℓ) · T           [B, N, 2] → [B, 2, g, g]
//   seg map:      Σℓ softmax₂(bilinear_align_corners(Lℓ → S×S))[:, 1]      (logits are upsampled, then softmax)
//   det score:    Σℓ mean_N softmax₂(Lℓ)[…, 1]
//   few-shot:     Σℓ bilinear_align_corners(min_bank(1 − cos(tokens ℓ, bank ℓ)) → S×S); det score = its mean
//   fusion:       0.5 · minmax(zero-shot) + 0.5 · minmax(few-shot), min-max over the whole image set
//   loss:         Σℓ [focal(γ 2) + dice] on the seg probabilities (when masks exist) + Σℓ BCE-with-logits
//                 on logit(det score ℓ) (MVFA passes the probability itself to BCEWithLogits [Q])

public enum AnomalyMaps {
    /// 100·P̂T for one level, as [B, 2, g, g] upsampled to `size` (bilinear, align_corners).
    public static func levelLogits(_ tokens: Tensor, text: Tensor, size: Size2D) -> Tensor {
        let B = tokens.shape[0], N = tokens.shape[1]
        let g = Int(Double(N).squareRoot())
        precondition(g * g == N, "anomaly map: \(N) patch tokens is not a square grid")
        let logits = matmul(l2Normalize(tokens, axis: -1), text) * 100       // [B, N, 2]
        let grid = logits.permuted([0, 2, 1]).reshaped([B, 2, g, g])
        return interpolate(grid, size: size, mode: .bilinear, alignCorners: true)
    }

    /// softmax over {normal, abnormal} of the upsampled logits: [B, 2, S, S].
    public static func segmentationProbabilities(_ tokens: Tensor, text: Tensor, size: Size2D) -> Tensor {
        softmax(levelLogits(tokens, text: text, size: size), axis: 1)
    }

    /// Zero-shot anomaly map [B, S, S]: Σ over levels of the abnormal probability.
    public static func zeroShotMap(_ tokens: [Tensor], text: Tensor, size: Size2D) -> Tensor {
        let maps = tokens.map { segmentationProbabilities($0, text: text, size: size).select(axis: 1, index: 1) }
        return maps.dropFirst().reduce(maps[0], +)
    }

    /// Per level, the mean over patches of the abnormal probability: [B] each.
    public static func detLevelScores(_ tokens: [Tensor], text: Tensor) -> [Tensor] {
        tokens.map { t in softmax(matmul(l2Normalize(t, axis: -1), text) * 100, axis: -1).select(axis: 2, index: 1).mean(axis: 1) }
    }

    /// Zero-shot image score [B]: Σ over levels of `detLevelScores`.
    public static func detScore(_ tokens: [Tensor], text: Tensor) -> Tensor {
        let s = detLevelScores(tokens, text: text)
        return s.dropFirst().reduce(s[0], +)
    }

    /// Few-shot map [B, S, S]: Σ over levels of min over the bank of (1 − cos), upsampled.
    public static func fewShotMap(_ tokens: [Tensor], bank: [Tensor], size: Size2D) -> Tensor {
        precondition(tokens.count == bank.count, "few-shot map: \(tokens.count) levels vs a bank of \(bank.count)")
        let maps = zip(tokens, bank).map { t, m -> Tensor in
            let B = t.shape[0], N = t.shape[1], g = Int(Double(N).squareRoot())
            let cos = matmul(l2Normalize(t, axis: -1, eps: 1e-8), l2Normalize(m, axis: -1, eps: 1e-8).T)   // [B, N, M]
            let d = (1 - cos).min(axis: 2).reshaped([B, 1, g, g])
            return interpolate(d, size: size, mode: .bilinear, alignCorners: true).reshaped([B, size.h, size.w])
        }
        return maps.dropFirst().reduce(maps[0], +)
    }

    /// (x − min) / (max − min) over all of `x` (MVFA's normalisation of a whole test set); a
    /// constant set maps to zeros.
    public static func minMax(_ x: [Float]) -> [Float] {
        guard let lo = x.min(), let hi = x.max(), hi > lo else { return [Float](repeating: 0, count: x.count) }
        return x.map { ($0 - lo) / (hi - lo) }
    }

    /// 0.5 · minmax(zero) + 0.5 · minmax(few).
    public static func fuse(zeroShot: [Float], fewShot: [Float]) -> [Float] {
        precondition(zeroShot.count == fewShot.count, "fuse: \(zeroShot.count) vs \(fewShot.count) values")
        return zip(minMax(zeroShot), minMax(fewShot)).map { 0.5 * $0 + 0.5 * $1 }
    }
}

/// Adapted patch tokens of the normal shots, per level [M, bottleneck].
public struct AnomalyMemoryBank {
    public var seg: [Tensor]
    public var det: [Tensor]
    public init(seg: [Tensor], det: [Tensor]) { self.seg = seg; self.det = det }
    /// All patch tokens of `tokens` (every image) per level.
    public init(_ tokens: AdaptedTokens) {
        func rows(_ t: Tensor) -> Tensor { t.reshaped([t.shape[0] * t.shape[1], t.shape[2]]) }
        seg = tokens.seg.map(rows); det = tokens.det.map(rows)
    }
    public var count: Int { seg.first?.shape[0] ?? 0 }
}

/// MVFA's ×11 few-shot augmentation (utils.augment): the images, rotations by −π/8, −π/16, π/16,
/// π/8 and translations by (0.1, 0.1), (−0.1, 0.1), (−0.1, −0.1), (0.1, −0.1) (torch affine_grid +
/// grid_sample: bilinear, reflection padding, align_corners=False), a horizontal and a vertical flip.
public enum FewShotAugment {
    public static let rotations: [Double] = [-Double.pi / 8, -Double.pi / 16, Double.pi / 16, Double.pi / 8]
    public static let translations: [(Double, Double)] = [(0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1)]

    /// [K, C, H, W] → [11·K, C, H, W] in the reference's order (all originals, then each transform).
    public static func augment(_ images: Tensor) -> Tensor {
        var parts = [images]
        for a in rotations { parts.append(affine(images, theta: [Foundation.cos(a), -Foundation.sin(a), 0, Foundation.sin(a), Foundation.cos(a), 0])) }
        for (a, b) in translations { parts.append(affine(images, theta: [1, 0, a, 0, 1, b])) }
        parts.append(flip(images, horizontal: true))
        parts.append(flip(images, horizontal: false))
        return concat(parts, axis: 0)
    }

    /// grid_sample(x, affine_grid(θ)) with bilinear sampling, reflection padding, align_corners=False.
    /// θ row-major [2, 3] maps output normalised (x, y) to input normalised coordinates.
    public static func affine(_ x: Tensor, theta: [Double]) -> Tensor {
        precondition(x.rank == 4 && theta.count == 6, "affine: x \(x.shape) must be [N, C, H, W], θ 6 values")
        let N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
        let src = x.scalars
        var out = [Float](repeating: 0, count: src.count)
        let th = theta.map(Float.init)
        // affine_grid's base grid (align_corners=False): linspace(−1, 1, n)·(n − 1)/n.
        func base(_ n: Int) -> [Float] {
            (0..<n).map { i in n > 1 ? (-1 + Float(i) * (2 / Float(n - 1))) * Float(n - 1) / Float(n) : 0 }
        }
        let bx = base(W), by = base(H)
        func reflect(_ v: Float, _ size: Int) -> Float {
            // reflect_coordinates(v, −1, 2·size − 1), then clip to [0, size − 1].
            let lo: Float = -0.5, span = Float(size)
            var c = Swift.abs(v - lo)
            let extra = c.truncatingRemainder(dividingBy: span)
            let flips = Int((c / span).rounded(.down))
            c = flips % 2 == 0 ? extra + lo : span - extra + lo
            return Swift.min(Swift.max(c, 0), Float(size - 1))
        }
        for yo in 0..<H {
            for xo in 0..<W {
                let gx = th[0] * bx[xo] + th[1] * by[yo] + th[2]
                let gy = th[3] * bx[xo] + th[4] * by[yo] + th[5]
                let ix = reflect(((gx + 1) * Float(W) - 1) / 2, W)
                let iy = reflect(((gy + 1) * Float(H) - 1) / 2, H)
                let x0 = Int(ix.rounded(.down)), y0 = Int(iy.rounded(.down))
                let fx = ix - Float(x0), fy = iy - Float(y0)
                let corners = [(y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                               (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)]
                for n in 0..<N {
                    for c in 0..<C {
                        let plane = (n * C + c) * H * W
                        var acc: Float = 0
                        for (yy, xx, w) in corners where yy >= 0 && yy < H && xx >= 0 && xx < W {
                            acc += src[plane + yy * W + xx] * w
                        }
                        out[plane + yo * W + xo] = acc
                    }
                }
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    /// Mirror along W (horizontal) or H.
    public static func flip(_ x: Tensor, horizontal: Bool) -> Tensor {
        let N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
        let src = x.scalars
        var out = [Float](repeating: 0, count: src.count)
        for p in 0..<(N * C) {
            for y in 0..<H {
                for xx in 0..<W {
                    let from = horizontal ? p * H * W + y * W + (W - 1 - xx) : p * H * W + (H - 1 - y) * W + xx
                    out[p * H * W + y * W + xx] = src[from]
                }
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }
}

/// MVFA's losses (loss.py), differentiable.
public enum AnomalyLosses {
    /// FocalLoss(apply_nonlin=None, alpha=None, gamma, smooth 1e-5) on probabilities [B, 2, S, S]
    /// with a binary mask [B, S, S]: pt = Σ_c clamp(onehot, 1e-5, 1 − 1e-5)·p_c + 1e-5,
    /// mean over pixels of −(1 − pt)^γ log pt.
    public static func focal(_ probs: Tensor, mask: Tensor, gamma: Float = 2, smooth: Float = 1e-5) -> Tensor {
        let m = mask.detached()
        let w1 = m.clamp(min: smooth, max: 1 - smooth), w0 = (1 - m).clamp(min: smooth, max: 1 - smooth)
        let pt = probs.select(axis: 1, index: 0) * w0 + probs.select(axis: 1, index: 1) * w1 + smooth
        let oneMinus = 1 - pt
        let factor = gamma == 2 ? oneMinus * oneMinus : oneMinus.pow(gamma)
        return (-(factor * pt.log())).mean()
    }

    /// BinaryDiceLoss (smooth 1) on the abnormal probability [B, S, S]: 1 − mean_b (2Σpm + 1)/(Σp + Σm + 1).
    public static func dice(_ p: Tensor, mask: Tensor) -> Tensor {
        let m = mask.detached(), B = p.shape[0]
        let inter = (p * m).sum(axes: [1, 2]), total = p.sum(axes: [1, 2]) + m.sum(axes: [1, 2])
        return 1 - ((inter * 2 + 1) / (total + 1)).sum() / Float(B)
    }

    /// BCE-with-logits on logit(s) for a mean probability s [B] (clamped to [1e-6, 1 − 1e-6]) and labels [B].
    public static func detection(_ score: Tensor, labels: Tensor) -> Tensor {
        let s = score.clamp(min: 1e-6, max: 1 - 1e-6)
        return binaryCrossEntropyWithLogits(s.log() - (1 - s).log(), labels)
    }

    /// Σ levels (focal + dice) on the seg tokens (skipped when `masks` is nil) + Σ levels BCE on the det tokens.
    public static func total(_ tokens: AdaptedTokens, text: Tensor, masks: Tensor?, labels: Tensor, imageSize: Int)
        -> (total: Tensor, seg: Tensor?, det: Tensor) {
        var seg: Tensor? = nil
        if let masks {
            for t in tokens.seg {
                let p = AnomalyMaps.segmentationProbabilities(t, text: text, size: Size2D(imageSize, imageSize))
                let l = focal(p, mask: masks) + dice(p.select(axis: 1, index: 1), mask: masks)
                seg = seg.map { $0 + l } ?? l
            }
        }
        let dets = AnomalyMaps.detLevelScores(tokens.det, text: text).map { detection($0, labels: labels) }
        let det = dets.dropFirst().reduce(dets[0], +)
        return (seg.map { $0 + det } ?? det, seg, det)
    }
}
