import AxialNN
import AxialTensor

/// Dice + cross-entropy on logits for binary masks, as MONAI `DiceCELoss(sigmoid=True)` with one
/// channel: λ_dice·mean_b(1 − (2Σσ(x)·y + s)/(Σσ(x) + Σy + s)) + λ_ce·BCEWithLogits(x, y) (mean),
/// s = 1e-5 (MONAI's smooth_nr = smooth_dr). Computed on logits — VLSM-Adapter passes sigmoid outputs
/// to a loss that expects logits; Axial does not. Defaults: VLSM's λ 1.5 / 1.0 (medvlsm: 1.0 / 0.2).
/// logits / targets [B, H, W] (any shape with the batch first).
public func diceCELoss(_ logits: Tensor, _ targets: Tensor, lambdaDice: Float = 1.5, lambdaCE: Float = 1.0,
                       smooth: Float = 1e-5) -> Tensor {
    precondition(logits.shape == targets.shape, "diceCELoss: logits \(logits.shape) != targets \(targets.shape)")
    return lambdaDice * diceLoss(logits, targets, smooth: smooth) + lambdaCE * binaryCrossEntropyWithLogits(logits, targets)
}
