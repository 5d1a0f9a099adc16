import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// The CLIP-family registry entries, their manifests and the `ImageEncoder` path `axial extract` uses.
@Suite struct CLIPEncoderRegistryTests {
    static let names = ["clip_vit_b16", "clip_vit_b16_gelu", "clip_vit_l14", "clip_vit_l14_336", "clip_vit_l14_336_at240", "biomedclip", "clip_rn50"]
    static let manifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Manifests/encoders").standardizedFileURL

    @Test(arguments: names) func manifestStatesTheRegistryFacts(name: String) throws {
        let spec = try EncoderRegistry.spec(name)
        let text = try String(contentsOf: Self.manifests.appendingPathComponent("\(name).yaml"), encoding: .utf8)
        let lines = Set(text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(lines.contains("name: \(name)"))
        #expect(lines.contains("feature_dim: \(spec.featureDimension)"))
        #expect(lines.contains("input_size: \(spec.preprocessing.inputSize)"))
        #expect(lines.contains("mean: [0.48145466, 0.4578275, 0.40821073]") && spec.preprocessing.mean == EncoderRegistry.clipMean)
        #expect(lines.contains("std: [0.26862954, 0.26130258, 0.27577711]") && spec.preprocessing.std == EncoderRegistry.clipStd)
        #expect(lines.contains("interpolation: \"bicubic\"") && spec.preprocessing.interpolation == "bicubic")
        #expect(lines.contains("crop_pct: 1.0") && spec.preprocessing.cropPct == 1.0)
        switch spec.architecture {
        case .clip(let c):
            #expect(lines.contains("image_size: \(c.vision.imageSize)") && lines.contains("patch_size: \(c.vision.patchSize)"))
            #expect(lines.contains("width: \(c.vision.width)") && lines.contains("layers: \(c.vision.layers)"))
            #expect(lines.contains("grid: \(c.vision.gridSize)"))
        case .biomedclip(let c):
            #expect(lines.contains("width: \(c.vision.width)") && lines.contains("layers: \(c.vision.layers)"))
        case .clipResNet(let c):
            #expect(lines.contains("layers: [\(c.layers.map(String.init).joined(separator: ", "))]"))
            #expect(lines.contains("tokens: \(c.gridSize * c.gridSize + 1)"))
        default: Issue.record("\(name) is not a CLIP-family encoder")
        }
    }

    @Test func featureWidthsAreTheOpenCLIPEmbeddings() throws {
        let dims = try Self.names.map { try EncoderRegistry.spec($0).featureDimension }
        #expect(dims == [512, 512, 768, 768, 768, 512, 1024])
        guard case .clip(let mvfa) = try EncoderRegistry.spec("clip_vit_l14_336_at240").architecture else { Issue.record("arch"); return }
        #expect(mvfa.vision.gridSize == 17)
    }

    /// open_clip `ViT-B-16` (GELU) and OpenAI ViT-B/16 (QuickGELU) have the same keys and shapes, so
    /// a GELU checkpoint loaded as clip_vit_b16 ran silently with the wrong activation (found with a
    /// real-size random-init open_clip ViT-B-16 by Tools/check_encoders.sh: 0.7 % off). The tiny GELU
    /// golden must match with clip_vit_b16_gelu's activation and not with clip_vit_b16's.
    @Test func geluAndQuickGELUViTB16AreDistinctEncoders() throws {
        guard case .clip(let quick) = try EncoderRegistry.spec("clip_vit_b16").architecture,
              case .clip(let gelu) = try EncoderRegistry.spec("clip_vit_b16_gelu").architecture else { Issue.record("arch"); return }
        #expect(quick.activation == .quickGelu && gelu.activation == .gelu)
        #expect(quick.vision == gelu.vision && quick.embedDimensions == gelu.embedDimensions)
        #expect(ClassNameEncoder.Kind(rawValue: "clip_vit_b16_gelu") == .clipViTB16GELU)
        let f = try EncoderFixture("clip_vit")
        let c = clipConfig(f.config("g.config"))
        var errors: [Float] = []
        for activation in [gelu.activation, quick.activation] {
            var g = RandomGenerator(seed: 1)
            let vit: any ImageEncoder = CLIPVisionTransformer(c.vision, outputDimensions: c.embedDimensions, activation: activation, generator: &g)
            try vit.loadCheckpoint(f.stateDict("g.sd."))
            vit.eval()
            errors.append(encoderError(withNoGrad { vit.encode(f["g.image"]) }, f["g.image_features"]))
        }
        #expect(errors[0] < 1e-4)
        #expect(errors[1] > 1e-3)
    }

    /// The extract path: a whole CLIP checkpoint (image + text keys) into the image tower via
    /// `loadCheckpoint`, `encode` = open_clip encode_image.
    @Test func imageTowersLoadWholeCheckpointsThroughImageEncoder() throws {
        let f = try EncoderFixture("clip_vit")
        let c = clipConfig(f.config("q.config"))
        var g = RandomGenerator(seed: 1)
        let vit: any ImageEncoder = CLIPVisionTransformer(c.vision, outputDimensions: c.embedDimensions, activation: c.activation, generator: &g)
        try vit.loadCheckpoint(f.stateDict("q.sd."))
        vit.eval()
        #expect(vit.featureDimension == 24 && vit.inputSize == 32)
        #expect(encoderError(withNoGrad { vit.encode(f["q.image"]) }, f["q.image_features"]) < 1e-4)

        let b = try EncoderFixture("biomedclip")
        let bio: any ImageEncoder = BiomedCLIPVision(BiomedCLIPTests.config(b.config("config")), generator: &g)
        try bio.loadCheckpoint(b.stateDict("sd."))
        bio.eval()
        #expect(encoderError(bio.encode(b["image"]), b["image_features"]) < 1e-4)

        let r = try EncoderFixture("clip_resnet")
        let rc = r.config("config")
        let rn: any ImageEncoder = CLIPModifiedResNet(CLIPResNetConfig(layers: rc["layers"] as! [Int], width: rc["width"] as! Int,
                                                                       heads: rc["heads"] as! Int, outputDimensions: rc["output_dim"] as! Int,
                                                                       imageSize: rc["image_size"] as! Int), generator: &g)
        try rn.loadCheckpoint(r.stateDict("sd."))
        rn.eval()
        #expect(encoderError(rn.encode(r["image"]), r["global"]) < 1e-4)
    }
}
