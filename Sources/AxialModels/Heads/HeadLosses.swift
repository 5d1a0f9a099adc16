import AxialNN
import AxialTensor
import Foundation

/// Losses of the MIL heads. Targets are `[B, C]` tensors of 1 / 0 / −1, where −1 (unknown) is
/// ignored by every loss.
public enum HeadLosses {
    /// BCE with logits and per-class `pos_weight` p (torch.nn.BCEWithLogitsLoss(pos_weight=p)):
    /// ℓ = −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))], mean over the known entries (AxialNN's
    /// `binaryCrossEntropyWithLogits` summed with the known entries as weight, over their count).
    /// (CLEAR passes n_pos/n_neg as `weight`, [Q]; Axial uses pos_weight = n_neg/n_pos.)
    public static func bceWithLogits(_ logits: Tensor, targets: Tensor, posWeight: [Float]? = nil) -> Tensor {
        precondition(logits.shape == targets.shape && logits.rank == 2, "bceWithLogits: logits \(logits.shape) / targets \(targets.shape) must be the same [B, C]")
        let c = logits.shape[1]
        if let posWeight { precondition(posWeight.count == c, "bceWithLogits: pos_weight has \(posWeight.count) entries for \(c) classes") }
        let (y, known, count) = knownTargets(targets)
        let l = binaryCrossEntropyWithLogits(logits, y, weight: count == logits.count ? nil : known,
                                             posWeight: posWeight.map { Tensor(shape: [c], scalars: $0) }, reduction: .sum)
        return l * (1 / Float(max(count, 1)))
    }

    /// Targets with −1 replaced by 0, the known-entry mask (1 / 0) and the number of known entries.
    static func knownTargets(_ targets: Tensor) -> (Tensor, Tensor, Int) {
        let t = targets.detached().scalars
        let known = t.map { $0 >= 0 ? Float(1) : 0 }
        return (Tensor(shape: targets.shape, scalars: t.map { max($0, 0) }), Tensor(shape: targets.shape, scalars: known),
                Int(known.reduce(0, +)))
    }

    /// pos_weight = n_neg / n_pos per class over the known labels (1 where a class has no positive).
    public static func posWeight(_ labels: [[Int]], classes: Int) -> [Float] {
        (0..<classes).map { c in
            let pos = labels.filter { $0[c] == 1 }.count, neg = labels.filter { $0[c] == 0 }.count
            return pos > 0 && neg > 0 ? Float(neg) / Float(pos) : 1
        }
    }

    /// Multi-class cross-entropy with optional class weights (torch.nn.CrossEntropyLoss(weight=w),
    /// AxialNN's `crossEntropy`): Σᵢ w_{yᵢ}·(−log softmax(xᵢ)_{yᵢ}) / Σᵢ w_{yᵢ} over rows whose class
    /// is known (yᵢ ≥ 0; −1 ignored; 0 when none is known).
    public static func crossEntropy(_ logits: Tensor, classIndex: [Int], weight: [Float]? = nil) -> Tensor {
        precondition(logits.rank == 2 && logits.shape[0] == classIndex.count, "crossEntropy: logits \(logits.shape) for \(classIndex.count) targets")
        guard classIndex.contains(where: { $0 >= 0 }) else { return (logits * 0).sum() }
        return AxialNN.crossEntropy(logits, Tensor(shape: [classIndex.count], scalars: classIndex.map { Float(max($0, -1)) }),
                                    weight: weight.map { Tensor(shape: [$0.count], scalars: $0) }, ignoreIndex: -1)
    }

    /// Inverse-frequency class weights n / (C·n_c) (1 for an absent class).
    public static func classWeights(_ classIndex: [Int], classes: Int) -> [Float] {
        let known = classIndex.filter { $0 >= 0 }
        return (0..<classes).map { c in
            let n = known.filter { $0 == c }.count
            return n > 0 ? Float(known.count) / Float(classes * n) : 1
        }
    }

    /// PsPG's asymmetric loss on the pos/neg pair [B, 2, C] (AxialNN's `asymmetricLoss`, PsPG form):
    /// p = softmax over each class's (pos, neg) logits, p₊ = p_pos, p₋ = min(p_neg + clip, 1);
    /// ℓ = −Σ [y·log max(p₊, eps)·(1 − p₊)^γ⁺ + (1 − y)·log max(p₋, eps)·(1 − p₋)^γ⁻] over known
    /// entries, focal weights without gradient.
    public static func asymmetric(_ pairLogits: Tensor, targets: Tensor, gammaNegative: Float = 2, gammaPositive: Float = 1,
                                  clip: Float = 0.05, eps: Float = 1e-8) -> Tensor {
        asymmetricLoss(pairLogits, targets.detached(), gammaNegative: gammaNegative, gammaPositive: gammaPositive,
                       clip: clip, eps: eps, detachFocalWeight: true, reduction: .sum)
    }

    /// Kept here (AxialNN's `multilabelMarginLoss` has torch's semantics, where every non-target
    /// counts as a negative): unknown (−1) labels must be in neither set.
    /// torch.nn.MultiLabelMarginLoss on scores [B, C] with the known positives as targets and the
    /// known negatives as non-targets: mean over samples of Σ_{j∈pos} Σ_{i∈neg} max(0, 1 − (x_j − x_i)) / C.
    /// (Unknown labels are in neither set.)
    public static func multilabelMargin(_ scores: Tensor, targets: Tensor) -> Tensor {
        let b = scores.shape[0], c = scores.shape[1]
        precondition(targets.shape == [b, c], "multilabelMargin: scores \(scores.shape) / targets \(targets.shape)")
        let y = targets.detached().scalars
        var pair = [Float](repeating: 0, count: b * c * c)
        for s in 0..<b { for j in 0..<c where y[s * c + j] == 1 { for i in 0..<c where y[s * c + i] == 0 { pair[(s * c + j) * c + i] = 1 } } }
        let margins = relu(1 - scores.reshaped([b, c, 1]) + scores.reshaped([b, 1, c]))   // [B, j, i]
        return (margins * Tensor(shape: [b, c, c], scalars: pair)).sum() * (1 / Float(b * c))
    }

    /// PsPG's optional pair co-occurrence term: for every class pair (i < j) the pair prompt is the
    /// normalised sum of the two positive prompts; its logit scale·⟨g_b, prompt⟩ is max-pooled over
    /// the batch and scored by BCE against "the pair co-occurs in some sample of the batch"
    /// (pairs with an unknown label in every sample are skipped).
    public static func pairCooccurrence(prompts: Tensor, pooled: Tensor, scale: Tensor, targets: Tensor) -> Tensor? {
        let b = prompts.shape[0], c = prompts.shape[1], p = prompts.shape[2]
        guard c >= 2 else { return nil }
        let y = targets.detached().scalars
        var left: [Int] = [], right: [Int] = [], target: [Float] = []
        for i in 0..<c { for j in (i + 1)..<c {
            var any = false, known = false
            for s in 0..<b {
                let a = y[s * c + i], bb = y[s * c + j]
                if a >= 0 && bb >= 0 { known = true }
                if a == 1 && bb == 1 { any = true }
            }
            guard known else { continue }
            left.append(i); right.append(j); target.append(any ? 1 : 0)
        } }
        guard !left.isEmpty else { return nil }
        let pair = l2Normalize(prompts.indexSelect(axis: 1, indices: left) + prompts.indexSelect(axis: 1, indices: right), axis: -1)  // [B, K, P]
        let logits = matmul(pair, pooled.reshaped([b, p, 1])).reshaped([b, left.count]) * scale
        let pooledMax = logits.max(axis: 0).reshaped([1, left.count])
        return bceWithLogits(pooledMax, targets: Tensor(shape: [1, left.count], scalars: target))
    }

    /// PsPG's default loss: 0.1·ASL + 0.07·multi-label margin (on logit_pos − logit_neg)
    /// [+ pairWeight·pair co-occurrence].
    public static func pspg(_ out: HeadOutput, targets: Tensor, pairWeight: Float = 0) -> Tensor {
        var loss = asymmetric(out.pairLogits!, targets: targets) * 0.1 + multilabelMargin(out.logits, targets: targets) * 0.07
        if pairWeight > 0, let prompts = out.prompts, let pooled = out.pooled, let scale = out.scale,
           let pair = pairCooccurrence(prompts: prompts, pooled: pooled, scale: scale, targets: targets) {
            loss = loss + pair * pairWeight
        }
        return loss
    }
}
