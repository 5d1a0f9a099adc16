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
            let loss = diceCELoss((box.model as! CRIS)(pixels, ids: idTensor), target, lambdaDice: 1.0, lambdaCE: 0.2)
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

/// CLIPSeg workloads (peer: Tools/bench/peers_clipseg.py = ../shared/peers/clipseg.py's transformers model).
extension Bench {
    /// The shared peer's input: `batch` random images at `size`², one 77-token prompt per image (BOS, 9 random
    /// ids, EOT at 10, the rest padded with the EOT id) and transformers' attention mask (1 on the first 11).
    static func clipsegInputs(batch: Int, size: Int, generator g: inout RandomGenerator) -> (pixels: Tensor, ids: Tensor, mask: Tensor) {
        var ids = [Float](repeating: 49407, count: batch * 77), mask = [Float](repeating: 0, count: batch * 77)
        for b in 0..<batch {
            ids[b * 77] = 49406
            for j in 1..<10 { ids[b * 77 + j] = Float(1 + g.int(below: 48999)) }
            for j in 0..<11 { mask[b * 77 + j] = 1 }
        }
        return (Tensor.normal([batch, 3, size, size], generator: &g), Tensor(shape: [batch, 77], scalars: ids),
                Tensor(shape: [batch, 77], scalars: mask))
    }

    /// `clipseg-infer-b8 [batch] [size]`: CLIPSeg rd64-refined (random init) forward, no tape, batch 8 at 352².
    static let clipsegInfer = BenchWorkload(name: "clipseg-infer-b8",
                                            summary: "CLIPSeg rd64-refined inference (text prompts), batch 8 at 352²") { args in
        let batch = args.first.flatMap { Int($0) } ?? 8
        let size = args.dropFirst().first.flatMap { Int($0) } ?? 352
        var config = CLIPSegConfig.rd64Refined
        config.inputSize = size
        var g = RandomGenerator(seed: 0)
        let model = CLIPSeg(config, generator: &g)
        model.eval()
        let (pixels, ids, mask) = clipsegInputs(batch: batch, size: size, generator: &g)
        let box = SegmentBox(module: model)
        return ({
            let logits = withNoGrad { (box.module as! CLIPSeg)(pixels, condition: .text(ids: ids, attentionMask: mask)) }
            precondition(logits.shape == [batch, size, size] && logits.scalars.allSatisfy(\.isFinite), "CLIPSeg bench: bad logits")
        }, "batch \(batch) at \(size)²; \(model.parameterCount()) parameters; 77-token prompts (11 real)")
    }

    /// `clipseg-dense-train-b8 [batch] [size]`: one VLSM dense-adapter step (dim 64, VLC, CLIPSeg frozen):
    /// forward, DiceCE λ 1.5 / 1.0, backward, AdamW (lr 1e-3, wd 1e-3) over the adapters, batch 8 at 352².
    static let clipsegDenseTrain = BenchWorkload(name: "clipseg-dense-train-b8",
                                                 summary: "CLIPSeg + VLSM dense adapters training step, batch 8 at 352²") { args in
        let batch = args.first.flatMap { Int($0) } ?? 8
        let size = args.dropFirst().first.flatMap { Int($0) } ?? 352
        var config = CLIPSegConfig.rd64Refined
        config.inputSize = size
        var g = RandomGenerator(seed: 0)
        let base = CLIPSeg(config, generator: &g)
        let model = VLSMCLIPSeg(base, options: .init(kind: .dense), generator: &g)
        model.train()
        let opt = AdamW(model.trainableParameters(), lr: 1e-3, weightDecay: 1e-3)
        let (pixels, ids, mask) = clipsegInputs(batch: batch, size: size, generator: &g)
        let target = Tensor(shape: [batch, size, size], scalars: (0..<(batch * size * size)).map { i in (i / size) % size < size / 2 ? 1 : 0 })
        let box = CRISBox(model: model, opt: opt)
        return ({
            box.opt.zeroGrad()
            let loss = diceCELoss((box.model as! VLSMCLIPSeg)(pixels, ids: ids, attentionMask: mask), target, lambdaDice: 1.5, lambdaCE: 1.0)
            loss.backward()
            box.opt.step()
            precondition(loss.item().isFinite, "CLIPSeg dense bench: loss \(loss.item())")
        }, "batch \(batch) at \(size)²; \(model.parameterCount(trainableOnly: true)) trainable adapter parameters; DiceCE λ 1.5/1.0; AdamW")
    }
}

/// The benchmark body runs on one thread at a time.
private struct SegmentBox: @unchecked Sendable { let module: Module }

/// The benchmark body runs on one thread at a time.
private struct CRISBox: @unchecked Sendable { let model: Module; let opt: any Optimizer }
