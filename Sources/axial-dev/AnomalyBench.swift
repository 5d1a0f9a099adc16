import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// MVFA / MLA-LP anomaly workloads on the frozen CLIP ViT-L/14 at 240² (`clip_vit_l14_336_at240`,
/// random init; peer: Tools/bench/peers_anomaly.py, the torch reference of
/// Tools/goldens/make_anomaly_goldens.py at full size).
extension Bench {
    /// The detector both workloads time: random-init ViT-L/14 at 240, adapters after 6/12/18/24,
    /// learned prompts (MLA-LP); `batch` images N(0, 1).
    static func anomalyL14(batch: Int) throws -> (CLIPAnomalyDetector, Tensor) {
        let config = try CLIPAnomalyConfig.forEncoder("clip_vit_l14_336_at240", text: .learned)
        var g = RandomGenerator(seed: 0)
        let clip = CLIPModel(config.clip, generator: &g)
        let d = try CLIPAnomalyDetector(config, clip: clip, seed: 1)
        return (d, Tensor.normal([batch, 3, d.imageSize, d.imageSize], generator: &g))
    }

    /// `anomaly-train-l14 [batch]`: one training step (batch 8 by default): the adapted tower, the learned
    /// prompts through the text tower, focal + dice on the 240² seg maps (a square lesion on every other
    /// image) + BCE on the det logits, backward into the adapters and contexts, Adam β (0.5, 0.999).
    static let anomalyTrainL14 = BenchWorkload(name: "anomaly-train-l14",
                                               summary: "MVFA/MLA-LP train step on frozen ViT-L/14@240, batch 8") { args in
        let batch = args.first.flatMap { Int($0) } ?? 8
        let (d, images) = try anomalyL14(batch: batch)
        let S = d.imageSize
        var m = [Float](repeating: 0, count: batch * S * S)
        for b in stride(from: 0, to: batch, by: 2) {
            for y in 60..<140 { for x in 80..<170 { m[(b * S + y) * S + x] = 1 } }
        }
        let masks = Tensor(shape: [batch, S, S], scalars: m)
        let labels = Tensor(shape: [batch], scalars: (0..<batch).map { $0 % 2 == 0 ? 1 : 0 })
        let box = AnomalyBox(detector: d, optimizer: d.makeOptimizer())
        let step: @Sendable () throws -> Float = {
            box.optimizer.zeroGrad()
            let l = try box.detector.loss(images: images, masks: masks, labels: labels)
            l.total.backward()
            box.optimizer.step()
            return l.total.item()
        }
        return ({
            let l = try step()
            precondition(l.isFinite, "anomaly bench: loss \(l)")
        }, "batch \(batch) at \(S)²; \(d.trainable.parameterCount()) trainable parameters (adapters + contexts); focal + dice + BCE; Adam")
    }

    /// `anomaly-infer-l14 [batch]`: zero-shot inference (no tape) of `batch` images (8 by default): the
    /// adapted tower, the 240² anomaly map and the det score; the text embeddings are made once, before timing.
    static let anomalyInferL14 = BenchWorkload(name: "anomaly-infer-l14",
                                               summary: "MVFA/MLA-LP zero-shot inference on ViT-L/14@240, batch 8") { args in
        let batch = args.first.flatMap { Int($0) } ?? 8
        let (d, images) = try anomalyL14(batch: batch)
        let text = try withNoGrad { try d.textFeatures() }
        let box = AnomalyBox(detector: d, optimizer: nil)
        let S = d.imageSize
        return ({
            let p = try box.detector.predict(images, text: text)
            precondition(p.map.shape == [batch, S, S] && p.score.shape == [batch] && p.map.scalars.allSatisfy(\.isFinite),
                         "anomaly bench: bad prediction")
        }, "batch \(batch) at \(S)²; zero-shot map \(S)² + det score; text embeddings made once")
    }
}

/// The benchmark bodies run on one thread at a time.
private struct AnomalyBox: @unchecked Sendable {
    let detector: CLIPAnomalyDetector
    let optimizer: Adam!
}
