import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialNN
import AxialTensor
import Foundation

extension Bench {
    /// `moco-vit-s16 [batch] [size] [arch]`: one MoCo v3 training step of ViT-S/16 (timm
    /// vit_small_patch16_224 layout, random init) with projector 384-4096-4096-256 (BN), predictor
    /// 256-4096-256 (no last BN, as ../shared/peers/moco.py), T 0.2, momentum update m 0.99, AdamW
    /// (lr 1.5e-4, wd 0.1), two views × `batch` (32) random images of `size` (224). Augmentation is
    /// not in the timed step (Tools/bench/augment times it). detail: images/s = 2·batch / median.
    static let mocoViTS16 = BenchWorkload(name: "moco-vit-s16", summary: "MoCo v3 ViT-S/16 train step, 2 views × 32 @224") { args in
        let batch = args.count > 0 ? Int(args[0]) ?? 32 : 32
        let size = args.count > 1 ? Int(args[1]) ?? 224 : 224
        let arch = args.count > 2 ? args[2] : "vit_small"
        let spec = try EncoderRegistry.spec(arch)
        var g = RandomGenerator(seed: 0)
        let config = MoCoConfig(dim: 256, mlpDim: 4096, temperature: 0.2, momentum: 0.99, cosineMomentum: false,
                                lesionWeight: 0, predictorLastBatchNorm: false)
        let model = MoCo(config: config, generator: &g) { spec.makeModel(seed: 0) }
        model.train()
        let opt = AdamW(model.optimizedParameters, lr: 1.5e-4, weightDecay: 0.1)
        let x1 = Tensor.normal([batch, 3, size, size], generator: &g), x2 = Tensor.normal([batch, 3, size, size], generator: &g)
        let first = model.trainStep(x1, x2, momentum: 0.99, optimizer: opt)
        // One step split into phases (the profile reported in the detail).
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        let t0 = now()
        let q1 = model.predictor(model.baseEncoder(x1)), q2 = model.predictor(model.baseEncoder(x2))
        let t1 = now()
        let (k1, k2) = withNoGrad { () -> (Tensor, Tensor) in
            model.updateMomentumEncoder(momentum: 0.99)
            return (model.momentumEncoder(x1), model.momentumEncoder(x2))
        }
        let t2 = now()
        let loss = mocoContrastiveLoss(query: q1, key: k2, temperature: 0.2) + mocoContrastiveLoss(query: q2, key: k1, temperature: 0.2)
        opt.zeroGrad()
        loss.backward()
        let t3 = now()
        opt.step()
        let t4 = now()
        let phases = String(format: "phases: query fwd %.2f s, EMA+key fwd %.2f s, loss+backward %.2f s, AdamW %.3f s",
                            t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        let state = StepState(model: model, optimizer: opt)
        return ({
            let l = state.model.trainStep(x1, x2, momentum: 0.99, optimizer: state.optimizer)
            precondition(l.isFinite, "moco-vit-s16: loss \(l)")
        }, "\(arch) 2×\(batch)@\(size) first loss \(String(format: "%.4f", first)) images/step \(2 * batch); \(phases)")
    }
}

/// The bench body runs on one thread at a time; this box carries the model and optimizer into it.
private final class StepState: @unchecked Sendable {
    let model: MoCo
    let optimizer: any Optimizer
    init(model: MoCo, optimizer: any Optimizer) { self.model = model; self.optimizer = optimizer }
}
