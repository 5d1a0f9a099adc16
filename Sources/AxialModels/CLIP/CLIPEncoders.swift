import AxialNN
import AxialTensor
import Foundation

// The CLIP-family image towers as registry encoders (`axial extract --encoder clip_vit_b16 …`).
// Each takes a whole open_clip / OpenAI checkpoint (`visual.*` is used, text keys are ignored) or a
// bare image-tower state dict, and `encode` is open_clip's `encode_image` before L2 normalisation.

extension CLIPVisionTransformer: ImageEncoder {
    public var featureDimension: Int { proj.shape[1] }
    public var inputSize: Int { config.imageSize }
    public func encode(_ images: Tensor) -> Tensor { self(images).pooled }
    /// `visual.*` of a CLIP checkpoint (OpenAI leftovers dropped, position embedding resized to
    /// this tower's grid), or the keys as they are when none starts with `visual.`.
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        let hasPrefix = state.keys.contains { $0.hasPrefix("visual.") }
        let s = CLIPModel.remap(hasPrefix ? state : Dictionary(uniqueKeysWithValues: state.map { ("visual." + $0.key, $0.value) }),
                                vision: config)
        return EncoderWeights.subtree(s, prefix: "visual.")
    }
}

extension BiomedCLIPVision: ImageEncoder {
    public var featureDimension: Int { head.proj.outputDimensions }
    public var inputSize: Int { trunk.config.imageSize }
    public func encode(_ images: Tensor) -> Tensor { self(images) }
    /// `visual.*` of a BiomedCLIP (open_clip CustomTextCLIP) checkpoint, or the keys as they are.
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        state.keys.contains { $0.hasPrefix("visual.") } ? EncoderWeights.subtree(state, prefix: "visual.") : state
    }
}

extension CLIPModifiedResNet: ImageEncoder {
    public var featureDimension: Int { config.outputDimensions }
    public var inputSize: Int { config.imageSize }
    public func encode(_ images: Tensor) -> Tensor { self(images) }
    /// `visual.*` of a CLIP RN checkpoint (or bare keys); `num_batches_tracked` filled where absent.
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        remap(state, prefix: state.keys.contains { $0.hasPrefix("visual.") } ? "visual." : "")
    }
}

extension EncoderRegistry {
    /// open_clip's preprocessing for OpenAI CLIP and BiomedCLIP: resize the shorter side to the
    /// input size (bicubic), centre crop, CLIP mean/std.
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    static let clipKeys = ["visual.* → * (the image tower of an open_clip / OpenAI CLIP checkpoint; text keys ignored)",
                           "OpenAI leftovers input_resolution, context_length, vocab_size dropped",
                           "visual.positional_embedding resized to the input grid (open_clip resize_pos_embed: bicubic, antialias)"]
    static let biomedclipKeys = ["visual.* → * (visual.trunk.* = timm ViT-B/16, visual.head.proj = linear projection); text.* ignored"]
    static let clipResNetKeys = ["visual.* → * (ModifiedResNet of an open_clip / OpenAI RN checkpoint; text keys ignored)",
                                 "num_batches_tracked filled with 0 where the file leaves it out"]

    static func clipPreprocessing(_ size: Int) -> EncoderPreprocessing {
        EncoderPreprocessing(inputSize: size, mean: clipMean, std: clipStd, interpolation: "bicubic", cropPct: 1.0)
    }

    /// clip_vit_b16 (QuickGELU, OpenAI), clip_vit_b16_gelu (open_clip ViT-B-16), clip_vit_l14, clip_vit_l14_336, clip_vit_l14_336_at240 (MVFA), clip_test (tiny), biomedclip, clip_rn50.
    static var clipFamilySpecs: [EncoderSpec] {
        let openai = "OpenAI CLIP via open_clip: open_clip.create_model('%@', pretrained='openai') state_dict() saved as .safetensors, or the OpenAI %@.pt → Tools/convert_weights.py"
        func src(_ model: String, _ file: String) -> String { String(format: openai, model, file) }
        return [
            EncoderSpec(name: "clip_vit_b16", architecture: .clip(.vitB16), preprocessing: clipPreprocessing(224),
                        weightsSource: src("ViT-B-16", "ViT-B-16"), weightKeyMap: clipKeys),
            EncoderSpec(name: "clip_vit_b16_gelu", architecture: .clip(.vitB16GELU), preprocessing: clipPreprocessing(224),
                        weightsSource: "open_clip ViT-B-16 with GELU (non-OpenAI weights: open_clip.create_model('ViT-B-16', pretrained='laion2b_s34b_b88k' / 'datacomp_xl_s13b_b90k' / …).state_dict() saved as .safetensors); OpenAI weights need clip_vit_b16 (QuickGELU)",
                        weightKeyMap: clipKeys),
            EncoderSpec(name: "clip_vit_l14", architecture: .clip(.vitL14), preprocessing: clipPreprocessing(224),
                        weightsSource: src("ViT-L-14", "ViT-L-14"), weightKeyMap: clipKeys),
            EncoderSpec(name: "clip_vit_l14_336", architecture: .clip(.vitL14_336), preprocessing: clipPreprocessing(336),
                        weightsSource: src("ViT-L-14-336", "ViT-L-14-336px"), weightKeyMap: clipKeys),
            EncoderSpec(name: "clip_vit_l14_336_at240", architecture: .clip(.vitL14_336.withImageSize(240)), preprocessing: clipPreprocessing(240),
                        weightsSource: src("ViT-L-14-336", "ViT-L-14-336px") + " (run at 240², 17×17 patches, as MVFA)", weightKeyMap: clipKeys),
            EncoderSpec(name: "clip_test", architecture: .clip(.test), preprocessing: clipPreprocessing(32),
                        weightsSource: "none (tiny random-init test CLIP: --random-init; anomaly adapters after blocks 1/2/3/4)",
                        weightKeyMap: clipKeys),
            EncoderSpec(name: "biomedclip", architecture: .biomedclip(.base), preprocessing: clipPreprocessing(224),
                        weightsSource: "hf-hub microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224: open_clip_pytorch_model.bin → Tools/convert_weights.py",
                        weightKeyMap: biomedclipKeys),
            EncoderSpec(name: "clip_rn50", architecture: .clipResNet(.rn50), preprocessing: clipPreprocessing(224),
                        weightsSource: src("RN50", "RN50"), weightKeyMap: clipResNetKeys),
        ]
    }
}

extension EncoderSpec.Architecture {
    /// Width of `encode` for the CLIP-family cases (nil for the others).
    var clipFamilyFeatureDimension: Int? {
        switch self {
        case .clip(let c): return c.embedDimensions
        case .biomedclip(let c): return c.embedDimensions
        case .clipResNet(let c): return c.outputDimensions
        default: return nil
        }
    }

    /// The image tower for the CLIP-family cases (nil for the others).
    func makeCLIPFamilyModel(generator g: inout RandomGenerator) -> (any ImageEncoder)? {
        switch self {
        case .clip(let c): return CLIPVisionTransformer(c.vision, outputDimensions: c.embedDimensions, activation: c.activation, generator: &g)
        case .biomedclip(let c): return BiomedCLIPVision(c, generator: &g)
        case .clipResNet(let c): return CLIPModifiedResNet(c, generator: &g)
        default: return nil
        }
    }
}
