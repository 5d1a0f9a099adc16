import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

@Suite struct OptimizerTests {
    static let makers: [String: @Sendable ([Parameter]) -> any Optimizer] = [
        "sgd_nesterov": { SGD($0, lr: 0.1, momentum: 0.9, weightDecay: 0.05, nesterov: true) },
        "sgd_damp": { SGD($0, lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01) },
        "adam": { Adam($0, lr: 0.01, weightDecay: 0.1) },
        "adamw": { AdamW($0, lr: 0.01, betas: (0.8, 0.95), weightDecay: 0.05) },
        "adamw_amsgrad": { AdamW($0, lr: 0.02, weightDecay: 0.01, amsgrad: true) },
        "adamw_groups": { ps in AdamW([ParameterGroup([ps[0]], lr: 0.03), ParameterGroup([ps[1]], lr: 0.001, weightDecay: 0.2)], weightDecay: 0.05) },
    ]

    /// Five steps on the fixture's gradients follow torch's parameter trajectory.
    @Test(arguments: makers.keys.sorted())
    func trajectoryMatchesPyTorch(_ name: String) {
        let ps = [Parameter(NNGoldens.t("opt.init.p0")), Parameter(NNGoldens.t("opt.init.p1"))]
        let opt = Self.makers[name]!(ps)
        for s in 0..<5 {
            ps[0].grad = NNGoldens.t("opt.grads.\(s).p0"); ps[1].grad = NNGoldens.t("opt.grads.\(s).p1")
            opt.step()
            expectClose(ps[0].value, NNGoldens.t("opt.\(name).after.\(s).p0"), atol: 1e-6, rtol: 1e-5, "\(name) step \(s) p0")
            expectClose(ps[1].value, NNGoldens.t("opt.\(name).after.\(s).p1"), atol: 1e-6, rtol: 1e-5, "\(name) step \(s) p1")
        }
        #expect(opt.stepCount == 5)
    }

    /// Saving the state after 2 steps and loading it into a fresh optimizer continues identically.
    @Test(arguments: ["sgd_nesterov", "adamw_amsgrad"])
    func stateRoundTrip(_ name: String) throws {
        func grads(_ s: Int) -> [Tensor] { [NNGoldens.t("opt.grads.\(s).p0"), NNGoldens.t("opt.grads.\(s).p1")] }
        let a = [Parameter(NNGoldens.t("opt.init.p0")), Parameter(NNGoldens.t("opt.init.p1"))]
        let oa = Self.makers[name]!(a)
        for s in 0..<2 { a[0].grad = grads(s)[0]; a[1].grad = grads(s)[1]; oa.step() }
        let b = [Parameter(a[0].value.copy()), Parameter(a[1].value.copy())]
        let ob = Self.makers[name]!(b)
        try ob.loadStateDict(oa.stateDict())
        for s in 2..<5 {
            for (ps, o) in [(a, oa), (b, ob)] { ps[0].grad = grads(s)[0]; ps[1].grad = grads(s)[1]; o.step() }
        }
        #expect(a[0].value.scalars == b[0].value.scalars && a[1].value.scalars == b[1].value.scalars)
        #expect(throws: OptimizerError.self) { try ob.loadStateDict(["state.9.exp_avg": Tensor(zeros: [1])]) }
    }

    @Test func frozenParametersAreSkipped() {
        let p = Parameter(Tensor([1, 2]), frozen: true)
        let opt = AdamW([p], lr: 0.1)
        opt.step()
        #expect(p.value.scalars == [1, 2])
    }

    @Test func warmupCosineMatchesLambdaLR() {
        let p = Parameter(Tensor([0]))
        let opt = SGD([p], lr: 0.5)
        let sched = WarmupCosineSchedule(warmupSteps: 3, totalSteps: 12, minFactor: 0.1, optimizer: opt)
        let expected = NNGoldens.t("sched.cosine").scalars
        for (s, e) in expected.enumerated() {
            sched.apply(step: s, to: opt)
            #expect(Swift.abs(Float(opt.groups[0].lr) - e) <= 1e-7, "step \(s): \(opt.groups[0].lr) vs \(e)")
        }
    }

    @Test(arguments: ["min", "max"])
    func reduceLROnPlateauMatchesTorch(_ mode: String) {
        let p = Parameter(Tensor([0]))
        let opt = SGD([p], lr: 1)
        var sched = ReduceLROnPlateau(mode: mode == "min" ? .min : .max, factor: 0.5, patience: 2, threshold: 0.01, cooldown: 1, minLR: 0.1)
        let metrics = NNGoldens.t("sched.plateau_\(mode).metrics").scalars
        let lrs = NNGoldens.t("sched.plateau_\(mode).lrs").scalars
        for (m, e) in zip(metrics, lrs) {
            sched.step(metric: Double(m), optimizer: opt)
            #expect(Float(opt.groups[0].lr) == e, "metric \(m): \(opt.groups[0].lr) vs \(e)")
        }
    }

    @Test func emaAndMomentumUpdate() throws {
        var g = RandomGenerator(seed: 4)
        let model = MLP(3, hidden: [4], 2, generator: &g), shadowModel = MLP(3, hidden: [4], 2, generator: &g)
        let ema = try ExponentialMovingAverage(shadow: shadowModel, copyingFrom: model, decay: 0.9)
        let before = model.stateDict().mapValues { $0.copy() }
        for p in model.parameters() { p.assign(p.value + 1) }
        ema.update(from: model)
        for (k, v) in shadowModel.stateDict() {
            let expected = before[k]! * 0.9 + (before[k]! + 1) * Float(0.1)
            expectClose(v, expected, atol: 1e-6, rtol: 1e-6, "ema \(k)")
        }
        #expect(shadowModel.trainableParameters().isEmpty)
    }
}
