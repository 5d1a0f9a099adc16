import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

/// Layers against PyTorch: load the fixture's weights, compare outputs, input and parameter gradients.
@Suite struct LayerGoldenTests {
    /// Runs `forward` on the case's inputs (those in `differentiable` as leaves), backprops Σ out·R.
    func check(_ name: String, _ module: Module, differentiable: Set<Int>, atol: Float = 1e-5, rtol: Float = 1e-4,
               _ forward: ([Tensor]) -> [Tensor]) throws {
        try module.loadStateDict(NNGoldens.group("\(name).param"))
        let ins = NNGoldens.group("\(name).in")
        var inputs = (0..<ins.count).map { ins[String($0)]! }
        for i in differentiable { inputs[i] = inputs[i].requiringGrad() }
        let outs = forward(inputs)
        var total: Tensor? = nil
        for (j, o) in outs.enumerated() {
            expectClose(o, NNGoldens.t("\(name).out.\(j)"), atol: atol, rtol: rtol, "\(name) output \(j)")
            let r = (o * NNGoldens.t("\(name).R.\(j)")).sum()
            total = total.map { $0 + r } ?? r
        }
        total!.backward()
        for i in differentiable {
            expectClose(inputs[i].grad!, NNGoldens.t("\(name).grad.\(i)"), atol: atol, rtol: rtol, "\(name) d input \(i)")
        }
        for (k, p) in module.namedParameters() {
            expectClose(p.grad ?? Tensor(zeros: p.shape), NNGoldens.t("\(name).pgrad.\(k)"), atol: atol, rtol: rtol, "\(name) d \(k)")
        }
    }

    @Test func linear() throws {
        let l = Linear(5, 3)
        try check("linear", l, differentiable: [0]) { [l($0[0])] }
    }

    @Test func layerNorm() throws {
        let l = LayerNorm(6)
        try check("layernorm", l, differentiable: [0]) { [l($0[0])] }
    }

    @Test func embedding() throws {
        let e = Embedding(7, 4)
        try check("embedding", e, differentiable: []) { [e($0[0])] }
    }

    @Test func mlp() throws {
        let m = MLP(5, hidden: [8, 6], 3, activation: .gelu)
        try check("mlp", m, differentiable: [0]) { [m($0[0])] }
    }

    @Test func multiheadCrossAttentionWithPaddingMask() throws {
        let a = MultiheadAttention(embedDimensions: 8, numHeads: 2)
        #expect(a.namedParameters().map(\.0) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"])
        try check("mha_cross", a, differentiable: [0, 1, 2]) { x in
            let (o, w) = a(x[0], x[1], x[2], keyPaddingMask: x[3], needWeights: true)
            return [o, w!]
        }
    }

    @Test func multiheadSelfAttentionCausalPerHeadWeights() throws {
        let a = MultiheadAttention(embedDimensions: 8, numHeads: 4)
        try check("mha_self", a, differentiable: [0]) { x in
            let (o, w) = a(x[0], x[0], x[0], attentionMask: x[1], needWeights: true, averageWeights: false)
            return [o, w!]
        }
    }

    @Test func gruCell() throws {
        let c = GRUCell(5, 4)
        #expect(c.namedParameters().map(\.0) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        try check("gru", c, differentiable: [0, 1]) { [c($0[0], hidden: $0[1])] }
    }

    @Test func lstmCell() throws {
        let c = LSTMCell(5, 4)
        try check("lstm", c, differentiable: [0, 1, 2]) { x in
            let (h, cc) = c(x[0], state: (x[1], x[2]))
            return [h, cc]
        }
    }
}

@Suite struct ConvolutionGoldenTests {
    let base = LayerGoldenTests()

    @Test func conv1d() throws {
        let c = Conv1d(2, 4, kernelSize: 3, stride: 2, padding: 1)
        try base.check("conv1d", c, differentiable: [0]) { [c($0[0])] }
        let eca = Conv1d(1, 1, kernelSize: 3, padding: 1, bias: false)
        #expect(eca.parameterCount() == 3)
        try base.check("conv1d_eca", eca, differentiable: [0]) { [eca($0[0])] }
    }

    @Test func conv2dGroupedDilated() throws {
        let c = Conv2d(4, 6, kernelSize: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2)
        try base.check("conv2d", c, differentiable: [0]) { [c($0[0])] }
    }

    @Test func convTranspose2d() throws {
        let c = ConvTranspose2d(3, 4, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)
        try base.check("conv_transpose2d", c, differentiable: [0]) { [c($0[0])] }
    }

    @Test func batchNorm2dTrainingUpdatesRunningStats() throws {
        let bn = BatchNorm2d(3)
        #expect(bn.namedBuffers().map(\.0) == ["running_mean", "running_var", "num_batches_tracked"])
        try base.check("bn2d_train", bn, differentiable: [0]) { [bn($0[0])] }
        expectClose(bn.runningMean!.value, NNGoldens.t("bn2d_train.after.running_mean"), "running_mean")
        expectClose(bn.runningVar!.value, NNGoldens.t("bn2d_train.after.running_var"), "running_var")
        #expect(bn.numBatchesTracked!.value.item() == NNGoldens.t("bn2d_train.after.num_batches_tracked").item())
    }

    @Test func batchNorm1dEval() throws {
        let bn = BatchNorm1d(5)
        bn.eval()
        try base.check("bn1d_eval", bn, differentiable: [0]) { [bn($0[0])] }
    }
}

@Suite struct BatchNormAffineTests {
    /// affine = False (torch): no weight / bias keys, same output as affine = True at its initial
    /// weight 1 / bias 0, same running statistics (MoCo's last projector / predictor BN).
    @Test func batchNorm1dWithoutAffine() {
        var g = RandomGenerator(seed: 3)
        let x = Tensor.normal([6, 4], generator: &g)
        let plain = BatchNorm1d(4, affine: false), affine = BatchNorm1d(4)
        #expect(plain.stateDict().keys.sorted() == ["num_batches_tracked", "running_mean", "running_var"])
        #expect(plain.trainableParameters().isEmpty)
        #expect(plain(x).scalars == affine(x).scalars)
        #expect(plain.runningMean!.value.scalars == affine.runningMean!.value.scalars)
        #expect(plain.runningVar!.value.scalars == affine.runningVar!.value.scalars)
        plain.eval(); affine.eval()
        #expect(plain(x).scalars == affine(x).scalars)
    }
}
