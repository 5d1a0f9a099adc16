import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

/// The pre-norm transformer block of the golden script: LayerNorm → MHA → residual → LayerNorm →
/// MLP(GELU) → residual → mean over tokens → linear head.
final class TinyBlock: Module, UnaryLayer {
    let norm1 = LayerNorm(8)
    let attn = MultiheadAttention(embedDimensions: 8, numHeads: 2)
    let norm2 = LayerNorm(8)
    let mlp = MLP(8, hidden: [16], 8, activation: .gelu)
    let head = Linear(8, 3)
    func callAsFunction(_ x: Tensor) -> Tensor {
        var x = x
        x = x + attn(norm1(x))
        x = x + mlp(norm2(x))
        return head(x.mean(axis: 1))
    }
}

@Suite struct EndToEndTests {
    /// 50 AdamW steps from torch's initial weights on torch's data: every loss within 1e-3 relative.
    @Test(arguments: ["mlp", "block"])
    func trainingFollowsPyTorch(_ name: String) throws {
        let model: any UnaryLayer = name == "mlp" ? MLP(10, hidden: [16], 3, activation: .gelu) : TinyBlock()
        try model.loadStateDict(NNGoldens.group("e2e.\(name).param"))
        let x = NNGoldens.t("e2e.\(name).x"), y = NNGoldens.t("e2e.\(name).y")
        let expected = NNGoldens.t("e2e.\(name).losses").scalars
        let opt = AdamW(model.parameters(), lr: name == "mlp" ? 1e-2 : 3e-3, weightDecay: 0.01)
        var worst: Float = 0
        for (s, e) in expected.enumerated() {
            opt.zeroGrad()
            let loss = crossEntropy(model(x), y)
            loss.backward()
            opt.step()
            let rel = Swift.abs(loss.item() - e) / Swift.abs(e)
            worst = Swift.max(worst, rel)
            #expect(rel < 1e-3, "\(name) step \(s): \(loss.item()) vs torch \(e)")
        }
        #expect(expected.last! < expected.first! * 0.8, "the run should learn something")
        print("e2e \(name): worst relative loss difference over 50 steps \(worst)")
    }
}
