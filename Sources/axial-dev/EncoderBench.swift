import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialTensor
import Foundation

extension Bench {
    /// `vit-b16-infer-b32 [batch]`: ViT-B/16 (timm vit_base_patch16_224, random init) forward of a
    /// batch of 32 random 224×224 images with no tape: the feature (class token after the norm).
    static let vitB16Infer = BenchWorkload(name: "vit-b16-infer-b32", summary: "ViT-B/16 forward, batch 32 at 224, no tape") { args in
        let batch = args.first.flatMap { Int($0) } ?? 32
        var g = RandomGenerator(seed: 0)
        let model = VisionTransformer(.vitBase, generator: &g)
        model.eval()
        let x = Tensor.normal([batch, 3, 224, 224], generator: &g)
        let f = withNoGrad { model.encode(x) }
        let checksum = f.scalars.reduce(0.0) { $0 + Double($1) }
        let box = ModelBox(model: model)
        return ({
            let y = withNoGrad { box.model.encode(x) }
            precondition(y.shape == [batch, 768] && y.scalars[0].isFinite)
        }, "batch \(batch); feature [\(batch), 768]; checksum \(String(format: "%.4f", checksum))")
    }
}

/// The benchmark body runs on one thread at a time; the model is only read there.
private struct ModelBox: @unchecked Sendable { let model: VisionTransformer }
