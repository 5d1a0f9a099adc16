import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// Text-prompted segmentation training-step workloads (peer: Tools/bench/peers_cris.py, the torch
/// re-statement of CRIS in Tools/goldens/make_cris_goldens.py at its full size).
extension Bench {
    /// `cris-train-step [batch] [size]`: medvlsm's CRIS (RN50 + FPN + 3-layer decoder, random init, everything
    /// trainable, train mode, dropout 0.2) — forward at 416² (default), DiceCE λ 1.0 / 0.2 on the upsampled
    /// logits, backward, AdamW (lr 2e-5, wd 1e-3). Batch 4 by default; 16-token prompts padded to 77.
    static let crisTrainStep = BenchWorkload(name: "cris-train-step",
                                             summary: "CRIS (RN50, 416²) forward + DiceCE + backward + AdamW, batch 4") { args in
        let batch = args.first.flatMap { Int($0) } ?? 4
        let size = args.dropFirst().first.flatMap { Int($0) } ?? 416
        var config = CRISConfig.cris
        config.inputSize = size
        var g = RandomGenerator(seed: 0)
        DefaultGenerator.seed(0)
        let model = CRIS(config, generator: &g)
        model.train()
        model.setTrainable(backbone: true)
        let opt = AdamW(model.trainableParameters(), lr: 2e-5, weightDecay: 1e-3)
        let pixels = Tensor.normal([batch, 3, size, size], generator: &g)
        var ids = [Float](repeating: 0, count: batch * 77)
        for b in 0..<batch {
            ids[b * 77] = 49406
            for j in 1..<15 { ids[b * 77 + j] = Float(1000 + g.int(below: 40000)) }
            ids[b * 77 + 15] = 49407
        }
        let idTensor = Tensor(shape: [batch, 77], scalars: ids)
        let target = Tensor(shape: [batch, size, size], scalars: (0..<(batch * size * size)).map { i in (i / size) % size < size / 2 ? 1 : 0 })
        let box = CRISBox(model: model, opt: opt)
        let step: @Sendable () -> Float = {
            box.opt.zeroGrad()
            let loss = diceCELoss(box.model(pixels, ids: idTensor), target, lambdaDice: 1.0, lambdaCE: 0.2)
            loss.backward()
            box.opt.step()
            return loss.item()
        }
        return ({
            let l = step()
            precondition(l.isFinite, "CRIS bench: loss \(l)")
        }, "batch \(batch) at \(size)²; \(model.parameterCount()) parameters, all trainable but logit_scale; DiceCE λ 1.0/0.2; AdamW")
    }
}

/// The benchmark body runs on one thread at a time.
private struct CRISBox: @unchecked Sendable { let model: CRIS; let opt: any Optimizer }
