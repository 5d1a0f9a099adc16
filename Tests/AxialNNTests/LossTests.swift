import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

let lossCases: [String: @Sendable ([Tensor]) -> Tensor] = [
    "ce": { crossEntropy($0[0], $0[1]) },
    "ce_full_mean": { crossEntropy($0[0], $0[1], weight: $0[2], labelSmoothing: 0.1, reduction: .mean) },
    "ce_full_sum": { crossEntropy($0[0], $0[1], weight: $0[2], labelSmoothing: 0.1, reduction: .sum) },
    "ce_full_none": { crossEntropy($0[0], $0[1], weight: $0[2], labelSmoothing: 0.1, reduction: .none) },
    "ce_smooth_ignore": { crossEntropy($0[0], $0[1], ignoreIndex: 7, labelSmoothing: 0.2) },
    "ce_spatial": { crossEntropy($0[0], $0[1]) },
    "bce": { binaryCrossEntropyWithLogits($0[0], $0[1]) },
    "bce_pw": { binaryCrossEntropyWithLogits($0[0], $0[1], weight: $0[3], posWeight: $0[2]) },
    "bce_pw_sum": { binaryCrossEntropyWithLogits($0[0], $0[1], posWeight: $0[2], reduction: .sum) },
    "bce_big": { binaryCrossEntropyWithLogits($0[0], $0[1], reduction: .none) },
    "focal": { sigmoidFocalLoss($0[0], $0[1], reduction: .mean) },
    "focal_g1": { sigmoidFocalLoss($0[0], $0[1], alpha: -1, gamma: 1.5, reduction: .sum) },
    "dice": { diceLoss($0[0], $0[1]) },
    "mse": { mseLoss($0[0], $0[1]) },
    "asl_pair": { asymmetricLoss($0[0], $0[1]) },
    "asl_sigmoid": { asymmetricLoss($0[0], $0[1], gammaNegative: 4, gammaPositive: 1, eps: 1e-8) },
    "mlm": { multilabelMarginLoss($0[0], $0[1]) },
    "mlm_1d": { multilabelMarginLoss($0[0], $0[1]) },
]

@Suite struct LossTests {
    @Test(arguments: lossCases.keys.sorted())
    func lossMatchesPyTorch(_ name: String) {
        let ins = NNGoldens.group("\(name).in")
        var inputs = (0..<ins.count).map { ins[String($0)]! }
        inputs[0] = inputs[0].requiringGrad()
        let out = lossCases[name]!(inputs)
        expectClose(out, NNGoldens.t("\(name).out.0"), atol: 1e-5, rtol: 1e-4, "\(name) value")
        (out * NNGoldens.t("\(name).R.0")).sum().backward()
        expectClose(inputs[0].grad!, NNGoldens.t("\(name).grad.0"), atol: 1e-5, rtol: 1e-4, "\(name) gradient")
    }

    /// Finite differences for every loss (inputs away from kinks: the fixtures' random logits).
    @Test(arguments: ["ce", "ce_full_mean", "ce_smooth_ignore", "ce_spatial", "bce_pw", "focal", "focal_g1", "dice", "mse", "mlm"])
    func lossFiniteDifferences(_ name: String) {
        let ins = NNGoldens.group("\(name).in")
        let inputs = (0..<ins.count).map { ins[String($0)]! }
        let f = lossCases[name]!
        let failures = GradCheck.scalar(inputs[0], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2) { x in
            var xs = inputs; xs[0] = x
            return f(xs)
        }
        #expect(failures.isEmpty, "\(name): \(failures.prefix(4))")
    }

    /// ASL's focal weight is detached by default (as the references), so finite differences
    /// check the full derivative with `detachFocalWeight: false`, in both forms.
    @Test(arguments: ["asl_pair", "asl_sigmoid"])
    func aslUndetachedWeightFiniteDifferences(_ name: String) {
        let x = NNGoldens.t("\(name).in.0"), y = NNGoldens.t("\(name).in.1")
        let failures = GradCheck.scalar(x, epsilon: 1e-2) { asymmetricLoss($0, y, detachFocalWeight: false) }
        #expect(failures.isEmpty, "\(failures.prefix(4))")
    }
}
