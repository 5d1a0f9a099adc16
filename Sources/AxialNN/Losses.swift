import AxialTensor
import Foundation

// Loss functions (functional, differentiable through the engine's ops). Formulas and reductions
// follow PyTorch / torchvision / the cited reference code; each is checked against fixtures.

/// How a per-element loss is reduced.
public enum Reduction: String, Sendable, Codable { case mean, sum, none }

@inline(__always)
func reduce(_ t: Tensor, _ r: Reduction) -> Tensor {
    switch r { case .mean: return t.mean(); case .sum: return t.sum(); case .none: return t }
}

/// Class indices as Ints (targets are integer-valued Floats).
private func indices(_ t: Tensor) -> [Int] { t.scalars.map { Int($0.rounded()) } }

/// torch.nn.functional.cross_entropy with class-index targets.
///
/// logits [N, C] or [N, C, d₁, …] (class axis 1), targets [N] or [N, d₁, …] (integer values).
/// With log-probabilities ℓ = log_softmax(logits), class weights w (1 if nil), smoothing ε:
///   lossᵢ = (1−ε)·w[yᵢ]·(−ℓᵢ[yᵢ]) + (ε/C)·Σ_c w[c]·(−ℓᵢ[c]);  0 where yᵢ == ignoreIndex.
///   mean = Σᵢ lossᵢ / Σ_{i not ignored} w[yᵢ] (torch's normalisation; the count when unweighted);
///   sum = Σᵢ lossᵢ; none = lossᵢ with the targets' shape.
public func crossEntropy(_ logits: Tensor, _ targets: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                         labelSmoothing: Float = 0, reduction: Reduction = .mean) -> Tensor {
    precondition(logits.rank >= 2, "crossEntropy: logits \(logits.shape) must be [N, C, ...]")
    let C = logits.shape[1]
    let expectedTargets = [logits.shape[0]] + Array(logits.shape.dropFirst(2))
    precondition(targets.shape == expectedTargets, "crossEntropy: targets \(targets.shape) != \(expectedTargets) for logits \(logits.shape)")
    if let weight { precondition(weight.shape == [C], "crossEntropy: weight \(weight.shape) != [\(C)]") }
    precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy: labelSmoothing \(labelSmoothing) outside [0, 1]")
    // Move classes last: [M, C].
    var x = logits
    if logits.rank > 2 {
        var perm = [0]; perm += Array(2..<logits.rank); perm.append(1)
        x = logits.permuted(perm)
    }
    let M = targets.count
    let logp = logSoftmax(x.reshaped([M, C]), axis: -1)
    let y = indices(targets)
    let w = weight?.scalars ?? [Float](repeating: 1, count: C)
    var denominator: Float = 0
    let eps = labelSmoothing
    let coef = Tensor(shape: [M, C]) { c in
        for i in 0..<M {
            let yi = y[i]
            if yi == ignoreIndex { for k in 0..<C { c[i * C + k] = 0 }; continue }
            precondition(yi >= 0 && yi < C, "crossEntropy: target \(yi) at \(i) outside [0, \(C))")
            denominator += w[yi]
            for k in 0..<C { c[i * C + k] = eps / Float(C) * w[k] }
            c[i * C + yi] += (1 - eps) * w[yi]
        }
    }
    let perSample = -(logp * coef).sum(axis: 1)          // [M]
    switch reduction {
    case .none: return perSample.reshaped(targets.shape)
    case .sum: return perSample.sum()
    case .mean: return perSample.sum() / denominator
    }
}

/// softplus(−x) = log(1 + e^(−x)) = log(1 + e^(−|x|)) + max(−x, 0), stable for any x.
private func softplusNeg(_ x: Tensor) -> Tensor { (1 + (-x.abs()).exp()).log() + relu(-x) }

/// torch.nn.functional.binary_cross_entropy_with_logits, numerically stable:
///   ℓ = w·[(1 − y)·x + (1 + (p − 1)·y)·softplus(−x)]   (p = posWeight, broadcast over the last axis;
///   w = weight, broadcast). Equal to −w·[p·y·log σ(x) + (1 − y)·log(1 − σ(x))].
public func binaryCrossEntropyWithLogits(_ logits: Tensor, _ targets: Tensor, weight: Tensor? = nil, posWeight: Tensor? = nil,
                                         reduction: Reduction = .mean) -> Tensor {
    precondition(logits.shape == targets.shape, "binaryCrossEntropyWithLogits: logits \(logits.shape) != targets \(targets.shape)")
    let y = targets.detached()
    var loss: Tensor
    if let posWeight {
        let lw = 1 + (posWeight - 1) * y
        loss = (1 - y) * logits + lw * softplusNeg(logits)
    } else {
        loss = (1 - y) * logits + softplusNeg(logits)
    }
    if let weight { loss = loss * weight }
    return reduce(loss, reduction)
}

/// Binary focal loss as torchvision.ops.sigmoid_focal_loss:
///   p = σ(x), ce = BCEWithLogits(x, y), p_t = p·y + (1 − p)(1 − y),
///   ℓ = ce·(1 − p_t)^γ, times α_t = α·y + (1 − α)(1 − y) when α ≥ 0.
public func sigmoidFocalLoss(_ logits: Tensor, _ targets: Tensor, alpha: Float = 0.25, gamma: Float = 2,
                             reduction: Reduction = .none) -> Tensor {
    let y = targets.detached()
    let p = sigmoid(logits)
    let ce = binaryCrossEntropyWithLogits(logits, y, reduction: .none)
    let pt = p * y + (1 - p) * (1 - y)
    var loss = gamma == 0 ? ce : ce * (1 - pt).pow(gamma)
    if alpha >= 0 { loss = (alpha * y + (1 - alpha) * (1 - y)) * loss }
    return reduce(loss, reduction)
}

/// Soft Dice loss on sigmoid probabilities, per sample (all axes but 0):
///   p = σ(x);  Dₙ = (2·Σ p·y + smooth) / (Σ p + Σ y + smooth);  ℓₙ = 1 − Dₙ;  reduced over the batch.
public func diceLoss(_ logits: Tensor, _ targets: Tensor, smooth: Float = 1, reduction: Reduction = .mean) -> Tensor {
    precondition(logits.shape == targets.shape && logits.rank >= 1, "diceLoss: logits \(logits.shape) != targets \(targets.shape)")
    let n = logits.shape[0]
    let p = sigmoid(logits).reshaped([n, logits.count / Swift.max(n, 1)])
    let y = targets.detached().reshaped(p.shape)
    let inter = (p * y).sum(axis: 1)
    let dice = (2 * inter + smooth) / (p.sum(axis: 1) + y.sum(axis: 1) + smooth)
    return reduce(1 - dice, reduction)
}

/// Mean squared error: (x − y)², reduced.
public func mseLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(input.shape == target.shape, "mseLoss: input \(input.shape) != target \(target.shape)")
    return reduce((input - target).square(), reduction)
}

/// Asymmetric loss (ASL). Targets y ∈ {1, 0, −1} with −1 = ignore (excluded from the sum).
///
/// Probabilities:
/// - **PsPG form** (`logits` [B, 2, C]): softmax over axis 1 of each class's (pos, neg) pair;
///   p₊ = softmax[:, 0, :], p₋ = softmax[:, 1, :] (PsPG utils/losses.py, index 0 = positive prompt).
/// - **Ridnik et al. sigmoid form** (`logits` [B, C]): p₊ = σ(x), p₋ = 1 − σ(x) (Alibaba-MIIL ASL).
/// Then, for both: p₋ ← min(p₋ + clip, 1) (asymmetric clipping);
///   L = y·log(max(p₊, eps)) + (1 − y)·log(max(p₋, eps));
///   w = (1 − p_t)^(γ₊·y + γ₋·(1 − y)), p_t = p₊·y + p₋·(1 − y)  (computed without gradient when
///   `detachFocalWeight`, as both reference codes by default);
///   loss = −Σ L·w over non-ignored entries (a **sum**, not a mean, as the references; `.mean`
///   divides by the number of non-ignored entries, `.none` returns L·w with 0 at ignored entries).
/// PsPG's config uses γ₋ = 2, γ₊ = 1, clip 0.05, eps 1e-6 (the defaults here); Ridnik's code uses eps 1e-8.
public func asymmetricLoss(_ logits: Tensor, _ targets: Tensor, gammaNegative: Float = 2, gammaPositive: Float = 1,
                           clip: Float = 0.05, eps: Float = 1e-6, detachFocalWeight: Bool = true,
                           reduction: Reduction = .sum) -> Tensor {
    let pPos: Tensor, pNeg0: Tensor
    if logits.rank == 3 {
        precondition(logits.shape[1] == 2, "asymmetricLoss: logits \(logits.shape) must be [B, 2, C] (pos, neg) or [B, C]")
        precondition(targets.shape == [logits.shape[0], logits.shape[2]], "asymmetricLoss: targets \(targets.shape) != [B, C] for logits \(logits.shape)")
        let s = softmax(logits, axis: 1)
        pPos = s.select(axis: 1, index: 0); pNeg0 = s.select(axis: 1, index: 1)
    } else {
        precondition(logits.shape == targets.shape, "asymmetricLoss: targets \(targets.shape) != logits \(logits.shape)")
        pPos = sigmoid(logits); pNeg0 = 1 - pPos
    }
    let t = targets.scalars
    let valid = Tensor(shape: targets.shape, scalars: t.map { $0 == -1 ? 0 : 1 })
    let y = Tensor(shape: targets.shape, scalars: t.map { $0 == 1 ? 1 : 0 })
    let pNeg = clip > 0 ? (pNeg0 + clip).clamp(max: 1) : pNeg0
    let L = y * pPos.clamp(min: eps).log() + (1 - y) * pNeg.clamp(min: eps).log()
    var loss = L
    if gammaNegative > 0 || gammaPositive > 0 {
        let weightFn = { () -> Tensor in
            let pt = pPos * y + pNeg * (1 - y)
            return pow(1 - pt, gammaPositive * y + gammaNegative * (1 - y))
        }
        let w = detachFocalWeight ? withNoGrad(weightFn).detached() : weightFn()
        loss = loss * w
    }
    loss = -(loss * valid)
    switch reduction {
    case .none: return loss
    case .sum: return loss.sum()
    case .mean: return loss.sum() / Swift.max(valid.scalars.reduce(0, +), 1)
    }
}

/// torch.nn.MultiLabelMarginLoss. input [N, C] or [C]; target the same shape holding class indices,
/// read up to the first −1 (the rest ignored):
///   ℓₙ = Σ_{j ∈ targets} Σ_{i ∉ targets} max(0, 1 − (x[j] − x[i])) / C;  mean/sum over n.
public func multilabelMarginLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(input.shape == target.shape && (input.rank == 1 || input.rank == 2),
                 "multilabelMarginLoss: input \(input.shape) and target \(target.shape) must be equal [N, C] or [C]")
    let x = input.rank == 1 ? input.reshaped([1, input.shape[0]]) : input
    let N = x.shape[0], C = x.shape[1]
    let t = indices(target)
    // pairs[n, j, i] = number of times j appears in n's target list when i is not a target.
    let pairs = Tensor(shape: [N, C, C]) { p in
        for i in 0..<p.count { p[i] = 0 }
        for n in 0..<N {
            var isTarget = [Bool](repeating: false, count: C), list: [Int] = []
            for k in 0..<C {
                let j = t[n * C + k]
                if j < 0 { break }
                precondition(j < C, "multilabelMarginLoss: target \(j) outside [0, \(C))")
                isTarget[j] = true; list.append(j)
            }
            for j in list { for i in 0..<C where !isTarget[i] { p[(n * C + j) * C + i] += 1 } }
        }
    }
    let margins = relu(1 - x.unsqueezed(2) + x.unsqueezed(1))        // [N, j, i]
    var loss = (margins * pairs).sum(axes: [1, 2]) / Float(C)         // [N]
    if input.rank == 1 && reduction == .none { loss = loss.reshaped([]) }
    return reduce(loss, reduction)
}
