import Foundation
import AxialTestSupport
import Testing
import AxialTensor
import AxialNN
@testable import AxialModels

/// Central finite differences of Σ f(x)·R (R fixed random) against backward(), in Double sums.
private func finiteDifferenceFailures(inputs: [Tensor], epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                                      _ f: ([Tensor]) -> Tensor) -> [String] {
    let out0 = withNoGrad { f(inputs) }
    var gen = RandomGenerator(seed: 11)
    let R = Tensor.normal(out0.shape, generator: &gen)
    func loss(_ xs: [Tensor]) -> Double {
        let y = withNoGrad { f(xs) }
        let ys = y.scalars, rs = R.scalars
        var s = 0.0
        for i in ys.indices { s += Double(ys[i]) * Double(rs[i]) }
        return s
    }
    let leaves = inputs.map { $0.detached().requiringGrad() }
    (f(leaves) * R).sum().backward()
    var failures: [String] = []
    for i in inputs.indices {
        let analytic = (leaves[i].grad ?? Tensor(zeros: inputs[i].shape)).scalars
        for e in 0..<inputs[i].count {
            var plus = inputs.map { $0.detached() }, minus = plus
            var p = inputs[i].scalars, m = p
            p[e] += epsilon; m[e] -= epsilon
            let h = Double(p[e]) - Double(m[e])
            plus[i] = Tensor(shape: inputs[i].shape, scalars: p)
            minus[i] = Tensor(shape: inputs[i].shape, scalars: m)
            let numeric = Float((loss(plus) - loss(minus)) / h)
            if !(abs(analytic[e] - numeric) <= atol + rtol * abs(numeric)) {
                failures.append("input \(i)[\(e)]: analytic \(analytic[e]) vs numeric \(numeric)")
            }
        }
    }
    return failures
}

/// The LeCL formula written out directly (Double), as an independent reference.
private func leclReference(q: [[Double]], k: [[Double]], lesion: [Bool], w: Double, T: Double) -> Double {
    func normalize(_ v: [Double]) -> [Double] { let n = max(sqrt(v.reduce(0) { $0 + $1 * $1 }), 1e-12); return v.map { $0 / n } }
    let qn = q.map(normalize), kn = k.map(normalize)
    var total = 0.0
    for i in qn.indices {
        var terms: [Double] = []
        for j in kn.indices {
            let s = zip(qn[i], kn[j]).reduce(0) { $0 + $1.0 * $1.1 } / T
            terms.append(s)
            if w > 0 && lesion[j] && j != i { terms.append(w * s) }
        }
        let mx = terms.max()!
        let lse = mx + log(terms.reduce(0) { $0 + exp($1 - mx) })
        let sii = zip(qn[i], kn[i]).reduce(0) { $0 + $1.0 * $1.1 } / T
        total += lse - sii
    }
    return total / Double(qn.count) * 2 * T
}

@Suite struct MoCoLossTests {
    let n = 6, d = 5
    let lesion = [true, false, true, true, false, false]

    func inputs(seed: UInt64) -> (Tensor, Tensor) {
        var g = RandomGenerator(seed: seed)
        return (Tensor.normal([n, d], generator: &g), Tensor.normal([n, d], generator: &g))
    }

    @Test(arguments: [(Float(0.5), Float(0.2)), (1.0, 1.0), (10.0, 0.5), (0.0, 0.2), (-1.0, 1.0)])
    func matchesDirectFormula(w: Float, T: Float) {
        let (q, k) = inputs(seed: 3)
        let rows = { (t: Tensor) in (0..<n).map { i in (0..<d).map { Double(t.scalars[i * d + $0]) } } }
        let expected = leclReference(q: rows(q), k: rows(k), lesion: lesion, w: Double(w), T: Double(T))
        let got = mocoContrastiveLoss(query: q, key: k, temperature: T, lesion: lesion, weight: w).item()
        #expect(abs(Double(got) - expected) <= 1e-5 * max(1, abs(expected)), "w \(w) T \(T): \(got) vs \(expected)")
    }

    @Test func plainMoCoIsCrossEntropyWithArange() {
        let (q, k) = inputs(seed: 5)
        let T: Float = 0.2
        let logits = matmulTransposedB(l2Normalize(q, axis: 1), l2Normalize(k, axis: 1)) / T
        let ls = logSoftmax(logits, axis: 1).scalars
        var ce = 0.0
        for i in 0..<n { ce -= Double(ls[i * n + i]) }
        let expected = ce / Double(n) * 2 * Double(T)
        for (mask, w) in [([Bool](), Float(1)), (lesion, 0), (lesion, -2), ([Bool](repeating: false, count: n), 3)] {
            let got = mocoContrastiveLoss(query: q, key: k, temperature: T, lesion: mask, weight: w).item()
            #expect(abs(Double(got) - expected) < 1e-5, "mask \(mask) w \(w): \(got) vs \(expected)")
        }
    }

    @Test(arguments: [Float(0.5), 2.0, 0.0])
    func finiteDifferences(w: Float) {
        let (q, k) = inputs(seed: 9)
        let failures = finiteDifferenceFailures(inputs: [q, k]) { xs in
            mocoContrastiveLoss(query: xs[0], key: xs[1], temperature: 0.5, lesion: lesion, weight: w)
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        // The fused op alone, on raw logits (including a lesion query whose own column is excluded).
        var g = RandomGenerator(seed: 21)
        let s = Tensor.normal([n, n], generator: &g) * 2
        let f2 = finiteDifferenceFailures(inputs: [s]) { xs in lesionContrastiveLoss(logits: xs[0], lesion: lesion, weight: w, scale: 0.4) }
        #expect(f2.isEmpty, "\(f2.prefix(5))")
    }
}

/// The "flat" golden encoder: Flatten → Linear(3·8·8, 16) → LayerNorm without bias (keys proj.*, norm.weight).
final class FlatEncoder: Module, ImageEncoder {
    let proj: Linear
    let norm: LayerNorm
    init(input: Int, dimensions: Int) {
        var g = RandomGenerator(seed: 1)
        proj = Linear(input, dimensions, generator: &g); norm = LayerNorm(dimensions, bias: false)
        super.init()
    }
    var featureDimension: Int { norm.dimensions }
    var inputSize: Int { 8 }
    func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] { state }
    func encode(_ images: Tensor) -> Tensor { norm(proj(images.reshaped([images.shape[0], images.count / images.shape[0]]))) }
}

/// Two MoCo v3 + LeCL steps against Tools/goldens/make_moco_goldens.py.
struct MoCoStepGolden {
    let tensors: [String: Tensor]
    let metadata: [String: String]
    static let shared: MoCoStepGolden = {
        let url = Bundle.module.url(forResource: "moco_step", withExtension: "safetensors", subdirectory: "Fixtures")!
        let (t, m) = try! SafeTensors.read(url)
        return MoCoStepGolden(tensors: t, metadata: m)
    }()
    func group(_ c: String, _ name: String) -> [String: Tensor] {
        let prefix = "\(c).\(name)."
        var out: [String: Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
        return out
    }
    func meta(_ k: String) -> Double { Double(metadata[k]!)! }

    /// Runs the golden's two steps on `model` (already built with the golden's shapes) and checks
    /// lr, momentum, loss, step-1 gradients, final parameters / BN stats and momentum encoder.
    func check(_ c: String, model: MoCo, clip: Float?, steps: Int = 2, gradTolerance: Float = 1e-4) throws {
        var state = group(c, "init")
        for (k, v) in group(c, "init_momentum") { state[k] = v }
        try model.loadStateDict(state, strict: true)
        let x1 = tensors["\(c).x1"]!, x2 = tensors["\(c).x2"]!
        let lesion = tensors["\(c).lesion"]!.scalars.map { $0 > 0.5 }
        let opt = AdamW(model.optimizedParameters, lr: meta("base_lr"), betas: (0.9, 0.999), eps: meta("eps"), weightDecay: meta("weight_decay"))
        let schedule = WarmupCosineSchedule(warmupSteps: Int(meta("warmup")), totalSteps: Int(meta("total")), optimizer: opt)
        let firstStep = Int(meta("first_step")), total = Int(meta("total"))
        model.train()
        for it in 0..<steps {
            let s = firstStep + it
            schedule.apply(step: s, to: opt)
            let m = model.config.momentum(step: s, totalSteps: total)
            #expect(abs(Float(opt.groups[0].lr) - tensors["\(c).lr"]!.scalars[it]) < 1e-7, "\(c) lr step \(s)")
            #expect(abs(m - tensors["\(c).m"]!.scalars[it]) < 1e-6, "\(c) momentum step \(s)")
            let loss = model.loss(x1, x2, lesion: lesion, momentum: m)
            opt.zeroGrad()
            loss.backward()
            if let clip { clipGradNorm(model.optimizedParameters.map(\.value), maxNorm: clip) }
            let expected = tensors["\(c).loss"]!.scalars[it]
            #expect(abs(loss.item() - expected) <= 1e-4 * abs(expected), "\(c) loss step \(it): \(loss.item()) vs \(expected)")
            if it == 0 {
                let named = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1) })
                let grads = group(c, "grad")
                #expect(grads.count == model.optimizedParameters.count, "\(c): \(grads.count) golden grads")
                for (k, g) in grads.sorted(by: { $0.key < $1.key }) {
                    guard let p = named[k], let pg = p.grad else { Issue.record("\(c): no grad for \(k)"); continue }
                     #expect(relativeError(pg, g) < gradTolerance, "\(c) grad \(k): \(relativeError(pg, g))")
                }
            }
            opt.step()
        }
        guard steps == 2 else { return }
        let final = model.stateDict()
        for (k, v) in group(c, "final").merging(group(c, "final_momentum"), uniquingKeysWith: { a, _ in a }).sorted(by: { $0.key < $1.key }) {
            guard let t = final[k] else { Issue.record("\(c): model lacks \(k)"); continue }
            #expect(relativeError(t, v) < 1e-4, "\(c) final \(k): \(relativeError(t, v))")
        }
    }
}

@Suite struct MoCoStepTests {
    func config(lastBN: Bool) -> MoCoConfig {
        MoCoConfig(dim: 16, mlpDim: 32, temperature: 0.2, momentum: 0.9, cosineMomentum: true, lesionWeight: 0.5,
                   predictorLastBatchNorm: lastBN)
    }

    @Test func flatEncoderStepMatchesPyTorch() throws {
        var g = RandomGenerator(seed: 5)
        let model = MoCo(config: config(lastBN: true), generator: &g) { FlatEncoder(input: 3 * 8 * 8, dimensions: 16) }
        try MoCoStepGolden.shared.check("flat", model: model, clip: nil)
    }

    /// timm VisionTransformer(img 16, patch 4, dim 24, depth 2, heads 2, mlp_ratio 2), class-token
    /// pooling; its final `norm.bias` is frozen in both (its true gradient is exactly zero).
    /// Reference computed in float64: step 1 (loss, every gradient). torch's own float32 gradients
    /// are up to 1.3e-3 from it (cancelling sums over the batch behind BatchNorm), hence 3e-3.
    @Test func vitStepMatchesPyTorch() throws {
        var g = RandomGenerator(seed: 6)
        let vit = ViTConfig(imageSize: 16, patchSize: 4, embedDim: 24, depth: 2, numHeads: 2, mlpRatio: 2)
        let model = MoCo(config: config(lastBN: true), generator: &g) { VisionTransformer(vit) }
        (model.baseEncoder.encoder as! VisionTransformer).norm!.bias!.freeze()
        try MoCoStepGolden.shared.check("vit", model: model, clip: 1.0, steps: 1, gradTolerance: 3e-3)
    }

    @Test func momentumScheduleAndKeys() {
        let c = MoCoConfig(momentum: 0.99)
        #expect(c.momentum(step: 0, totalSteps: 100) == 0.99)
        #expect(abs(c.momentum(step: 50, totalSteps: 100) - 0.995) < 1e-7)
        #expect(c.momentum(step: 100, totalSteps: 100) == 1)
        var g = RandomGenerator(seed: 5)
        let model = MoCo(config: config(lastBN: true), generator: &g) { FlatEncoder(input: 12, dimensions: 16) }
        let keys = Set(model.stateDict().keys)
        for k in ["base_encoder.proj.weight", "base_encoder.head.0.weight", "base_encoder.head.1.running_var",
                  "base_encoder.head.7.running_mean", "base_encoder.head.7.num_batches_tracked", "momentum_encoder.head.6.weight",
                  "predictor.3.weight", "predictor.4.running_mean", "predictor.4.num_batches_tracked"] {
            #expect(keys.contains(k), "missing \(k)")
        }
        #expect(!keys.contains("base_encoder.head.7.weight"), "last projector BN must have affine = False")
        #expect(model.momentumEncoder.trainableParameters().isEmpty)
        #expect(Set(model.encoderStateDict().keys) == ["proj.weight", "proj.bias", "norm.weight"])
    }
}

