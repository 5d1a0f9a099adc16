import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialTensor
import Foundation

/// CLIP ViT-B/16 benchmark workloads, the sizes of ../shared/peers/clip_enc.py (open_clip
/// `create_model("ViT-B-16")`: GELU, random init, no tape).
extension Bench {
    /// The 14 prompts of clip_enc.py's text workload (c).
    static let clipBenchPrompts = ["liver", "spleen", "kidney", "pancreas", "lung", "heart", "aorta", "bladder",
                                   "stomach", "gallbladder", "colon", "bone", "brain", "prostate"]
        .map { "a CT slice showing the \($0)" }

    /// `clip-text-b16 [full]`: CLIP ViT-B/16 text tower (12 layers, width 512, context 77) on the 14
    /// tokenized prompts → [14, 512]. By default the padding after the batch's last end token is
    /// trimmed first (Axial's `encodeText`; the causal mask makes the result identical); `full`
    /// runs all 77 positions as open_clip does.
    static let clipTextB16 = BenchWorkload(name: "clip-text-b16",
                                           summary: "CLIP ViT-B/16 text tower, 14 prompts, ctx 77, no tape") { args in
        let full = args.contains("full")
        let tokenizer = try CLIPTokenizer.shared()
        let rows = tokenizer(clipBenchPrompts)
        let ids = Tensor(shape: [rows.count, rows[0].count], scalars: rows.flatMap { $0.map(Float.init) })
        let config = CLIPConfig.vitB16
        var g = RandomGenerator(seed: 0)
        let tower = CLIPTextTransformer(config.text, outputDimensions: config.embedDimensions, activation: .gelu, generator: &g)
        tower.eval()
        let box = CLIPTextBox(tower: tower)
        let run: @Sendable () -> Tensor = { withNoGrad { box.tower(ids, trimPadding: !full) } }
        let y = run()
        let checksum = y.scalars.reduce(0.0) { $0 + Double($1) }
        let used = full ? 77 : CLIPTextTransformer.eotPositions(ids).max()! + 1
        return ({
            let z = run()
            precondition(z.shape == [rows.count, 512] && z.scalars[0].isFinite)
        }, "\(rows.count) prompts; \(used) of 77 positions\(full ? " (full)" : " (padding trimmed)"); [\(rows.count), 512]; checksum \(String(format: "%.4f", checksum))")
    }

    /// `clip-image-b16 [batch]`: CLIP ViT-B/16 image tower on 32 random 224² images → [32, 512].
    static let clipImageB16 = BenchWorkload(name: "clip-image-b16",
                                            summary: "CLIP ViT-B/16 image tower, batch 32 at 224, no tape") { args in
        let batch = args.first.flatMap { Int($0) } ?? 32
        let config = CLIPConfig.vitB16
        var g = RandomGenerator(seed: 0)
        let tower = CLIPVisionTransformer(config.vision, outputDimensions: config.embedDimensions, activation: .gelu, generator: &g)
        tower.eval()
        let x = Tensor.normal([batch, 3, 224, 224], generator: &g)
        let box = CLIPImageBox(tower: tower)
        let run: @Sendable () -> Tensor = { withNoGrad { box.tower.encode(x) } }
        let y = run()
        let checksum = y.scalars.reduce(0.0) { $0 + Double($1) }
        return ({
            let z = run()
            precondition(z.shape == [batch, 512] && z.scalars[0].isFinite)
        }, "batch \(batch); feature [\(batch), 512]; checksum \(String(format: "%.4f", checksum))")
    }
}

extension Bench {
    /// `clip-rn50-image-b32 [batch]`: CLIP RN50 image tower (modified ResNet-50: 3-conv stem,
    /// anti-aliased bottlenecks, attention pool; eval-mode BatchNorm, random init, no tape) on 32
    /// random 224² images → [32, 1024] — the conv2d 3×3 path of RN50 / CRIS / conv stems.
    static let clipRN50ImageB32 = BenchWorkload(name: "clip-rn50-image-b32",
                                                summary: "CLIP RN50 image tower, batch 32 at 224, no tape") { args in
        let batch = args.first.flatMap { Int($0) } ?? 32
        var g = RandomGenerator(seed: 0)
        let tower = CLIPModifiedResNet(.rn50, generator: &g)
        tower.eval()
        let x = Tensor.normal([batch, 3, 224, 224], generator: &g)
        let box = CLIPResNetBox(tower: tower)
        let run: @Sendable () -> Tensor = { withNoGrad { box.tower(x) } }
        let y = run()
        let checksum = y.scalars.reduce(0.0) { $0 + Double($1) }
        return ({
            let z = run()
            precondition(z.shape == [batch, 1024] && z.scalars[0].isFinite)
        }, "batch \(batch); feature [\(batch), 1024]; checksum \(String(format: "%.4f", checksum))")
    }
}

/// The benchmark bodies run on one thread at a time; the towers are only read there.
private struct CLIPResNetBox: @unchecked Sendable { let tower: CLIPModifiedResNet }
private struct CLIPTextBox: @unchecked Sendable { let tower: CLIPTextTransformer }
private struct CLIPImageBox: @unchecked Sendable { let tower: CLIPVisionTransformer }
