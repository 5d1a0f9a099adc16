import AxialTensor
import Foundation

// MoCo v3 contrastive loss and its LeCL variant (lesion slices as extra, weighted negatives).
//
// MoCo v3 (facebookresearch/moco-v3 `builder.py`): q, k l2-normalised, logits s = q·kᵀ/T, the
// positive of query i is key i, loss = CE(s, arange(N))·2T. LeCL (CLEAR `contrastive_loss_lesion`):
// for query i,
//     ℓᵢ = −[sᵢᵢ − logsumexp({sᵢⱼ}ⱼ ∪ {w·sᵢⱼ : j lesion, j ≠ i})],   loss = 2T·meanᵢ ℓᵢ.
// Lesion slices enter the denominator a second time with their logits scaled by w. With w ≤ 0 or no
// lesion in the batch the loss is exactly plain MoCo v3 (CLEAR falls back to `contrastive_loss`).

/// Fused LeCL / cross-entropy-with-arange loss from a logits matrix, with a hand-written backward.
///
/// logits: [N, M] (M ≥ N; the positive of row i is column i), lesion: N·M-independent column mask
/// of length M (`true` = lesion slice), weight w, scale (2T). Returns a scalar.
/// Forward in Double (as CLEAR's `.double().logsumexp`). Backward, with lseᵢ the row's
/// log-sum-exp, pᵢⱼ = exp(sᵢⱼ − lseᵢ), p′ᵢⱼ = exp(w·sᵢⱼ − lseᵢ):
///     ∂loss/∂sᵢⱼ = scale/N · (pᵢⱼ + [j lesion, j ≠ i]·w·p′ᵢⱼ − δᵢⱼ).
public func lesionContrastiveLoss(logits: Tensor, lesion: [Bool], weight w: Float, scale: Float) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[1] >= logits.shape[0],
                 "lesionContrastiveLoss: logits must be [N, M] with M ≥ N, got \(logits.shape)")
    let n = logits.shape[0], m = logits.shape[1]
    precondition(lesion.isEmpty || lesion.count == m,
                 "lesionContrastiveLoss: lesion mask has \(lesion.count) entries for \(m) keys (logits \(logits.shape))")
    let useLesion = w > 0 && lesion.contains(true)
    let mask = useLesion ? lesion : [Bool](repeating: false, count: m)
    let wd = Double(w)
    var lse = [Double](repeating: 0, count: n)
    var total = 0.0
    logits.withUnsafeBufferPointer { s in
        for i in 0..<n {
            let row = i * m
            var mx = -Double.infinity
            for j in 0..<m {
                mx = Swift.max(mx, Double(s[row + j]))
                if mask[j] && j != i { mx = Swift.max(mx, wd * Double(s[row + j])) }
            }
            var sum = 0.0
            for j in 0..<m {
                sum += Foundation.exp(Double(s[row + j]) - mx)
                if mask[j] && j != i { sum += Foundation.exp(wd * Double(s[row + j]) - mx) }
            }
            lse[i] = mx + Foundation.log(sum)
            total += lse[i] - Double(s[row + i])
        }
    }
    let value = Float(total / Double(n) * Double(scale))
    let y = Tensor(value)
    let x = logits.detached()
    return Tensor.record(y, inputs: [logits], name: "lesionContrastiveLoss") { g in
        let c = Double(g.item()) * Double(scale) / Double(n)
        var gx = [Float](repeating: 0, count: n * m)
        x.withUnsafeBufferPointer { s in
            for i in 0..<n {
                let row = i * m
                for j in 0..<m {
                    let sij = Double(s[row + j])
                    var d = Foundation.exp(sij - lse[i])
                    if mask[j] && j != i { d += wd * Foundation.exp(wd * sij - lse[i]) }
                    if j == i { d -= 1 }
                    gx[row + j] = Float(c * d)
                }
            }
        }
        return [Tensor(shape: [n, m], scalars: gx)]
    }
}

/// MoCo v3 `ctr(q, k)` with LeCL's weighted lesion negatives: q, k [N, D] are l2-normalised,
/// logits = q·kᵀ/T, loss = lesionContrastiveLoss(logits, lesion, w, 2T). `weight ≤ 0` (or an
/// empty / all-false mask) gives CE(logits, arange)·2T exactly.
public func mocoContrastiveLoss(query q: Tensor, key k: Tensor, temperature T: Float,
                                lesion: [Bool] = [], weight: Float = 0) -> Tensor {
    precondition(q.rank == 2 && k.rank == 2 && q.shape[1] == k.shape[1],
                 "mocoContrastiveLoss: query \(q.shape) and key \(k.shape) must be [N, D] and [M, D]")
    let logits = matmulTransposedB(l2Normalize(q, axis: 1), l2Normalize(k, axis: 1)) / T
    return lesionContrastiveLoss(logits: logits, lesion: lesion, weight: weight, scale: 2 * T)
}
