import AxialNN
import AxialTensor
import Foundation

/// A slice encoder: images [B, 3, S, S] (normalised) → features [B, featureDimension].
/// `encode` is what the source library calls the image embedding (timm:
/// forward_head(forward_features(x), pre_logits=True)); under `withNoGrad` it runs tape-free.
public protocol ImageEncoder: Module {
    var featureDimension: Int { get }
    var inputSize: Int { get }
    func encode(_ images: Tensor) -> Tensor
    /// Maps a published checkpoint's keys onto the model's (the family's one key remap).
    func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor]
}

extension ImageEncoder {
    /// Loads a checkpoint dictionary (after the family's key remap), strictly: throws
    /// `ModuleError.stateDictMismatch` listing missing, unexpected and mis-shaped keys.
    public func loadCheckpoint(_ state: [String: Tensor]) throws {
        try loadStateDict(remapCheckpointKeys(state), strict: true)
    }
}

/// Preprocessing an encoder expects (timm `pretrained_cfg` / open_clip preprocess):
/// resize the shorter side to ⌊size / cropPct⌋ with `interpolation`, centre-crop `size`, scale to
/// [0, 1], normalise per channel with `mean` / `std`.
public struct EncoderPreprocessing: Codable, Sendable, Equatable {
    public var inputSize: Int
    public var mean: [Float]
    public var std: [Float]
    public var interpolation: String
    public var cropPct: Double

    public init(inputSize: Int, mean: [Float], std: [Float], interpolation: String, cropPct: Double) {
        self.inputSize = inputSize; self.mean = mean; self.std = std; self.interpolation = interpolation; self.cropPct = cropPct
    }

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]
    public static let inceptionMean: [Float] = [0.5, 0.5, 0.5]
    public static let inceptionStd: [Float] = [0.5, 0.5, 0.5]
}

/// A named encoder: architecture, preprocessing, feature width and where its weights come from.
public struct EncoderSpec: Sendable {
    public enum Architecture: Sendable, Equatable {
        case vit(ViTConfig)
        case mambaout(MambaOutConfig)
        /// CLIP-family image towers (CLIPEncoders.swift).
        case clip(CLIPConfig)
        case biomedclip(BiomedCLIPConfig)
        case clipResNet(CLIPResNetConfig)
    }
    public let name: String
    public let architecture: Architecture
    public let preprocessing: EncoderPreprocessing
    /// Width of `encode`'s output.
    public var featureDimension: Int {
        switch architecture {
        case .vit(let c): return c.featureDimension
        case .mambaout(let c): return c.featureDimension
        case .clip, .biomedclip, .clipResNet: return architecture.clipFamilyFeatureDimension!
        }
    }
    /// Where official weights are published (and the source library's model name).
    public let weightsSource: String
    /// The key remap applied on load (documentation; the code is the family's `remapCheckpointKeys`).
    public let weightKeyMap: [String]

    /// Builds the model with random initial weights from `seed`.
    public func makeModel(seed: UInt64) -> any ImageEncoder {
        var g = RandomGenerator(seed: seed)
        let m: any ImageEncoder
        switch architecture {
        case .vit(let c): m = VisionTransformer(c, generator: &g)
        case .mambaout(let c): m = MambaOut(c, generator: &g)
        case .clip, .biomedclip, .clipResNet: m = architecture.makeCLIPFamilyModel(generator: &g)!
        }
        m.eval()
        return m
    }
}

/// Errors from the encoder registry (weight errors are `EncoderError`).
public enum EncoderRegistryError: Error, CustomStringConvertible {
    case unknownEncoder(String, known: [String])

    public var description: String {
        switch self {
        case let .unknownEncoder(n, known): return "unknown encoder '\(n)'; known: \(known.joined(separator: ", "))"
        }
    }
}

/// The named encoder configurations (`axial extract --encoder <name>`); each has a
/// `Manifests/encoders/<name>.yaml` with the same facts (checked by a test).
public enum EncoderRegistry {
    static let vitKeys = ["module.base_encoder.* → * (MoCo v3 / CLEAR checkpoints; also base_encoder.*, module.*)",
                          "head.* dropped when the encoder has no classifier (timm classifier, MoCo projector)",
                          "num_batches_tracked dropped where the model keeps none"]
    static let mambaoutKeys = ["original MambaOut checkpoints: downsample_layers.0.* → stem.*, downsample_layers.i → stages.i.downsample,",
                               "stages.i.j → stages.i.blocks.j, norm.* → head.norm.*, head.fc1/norm → head.pre_logits.fc/norm, head.fc2 → head.fc",
                               "head.fc.* dropped when the encoder has no classifier"]

    static func timmViT(_ name: String, _ c: ViTConfig, timmName: String, mean: [Float] = EncoderPreprocessing.inceptionMean,
                        std: [Float] = EncoderPreprocessing.inceptionStd, crop: Double = 0.9) -> EncoderSpec {
        EncoderSpec(name: name, architecture: .vit(c),
                    preprocessing: EncoderPreprocessing(inputSize: c.imageSize, mean: mean, std: std, interpolation: "bicubic", cropPct: crop),
                    weightsSource: timmName, weightKeyMap: vitKeys)
    }

    static func mocoViT(_ name: String, _ c: ViTConfig, source: String) -> EncoderSpec {
        EncoderSpec(name: name, architecture: .vit(c),
                    preprocessing: EncoderPreprocessing(inputSize: c.imageSize, mean: EncoderPreprocessing.imagenetMean,
                                                        std: EncoderPreprocessing.imagenetStd, interpolation: "bilinear", cropPct: 0.875),
                    weightsSource: source, weightKeyMap: vitKeys)
    }

    static func mambaout(_ name: String, _ c: MambaOutConfig) -> EncoderSpec {
        EncoderSpec(name: name, architecture: .mambaout(c),
                    preprocessing: EncoderPreprocessing(inputSize: c.imageSize, mean: EncoderPreprocessing.imagenetMean,
                                                        std: EncoderPreprocessing.imagenetStd, interpolation: "bicubic", cropPct: 1.0),
                    weightsSource: "timm: \(name).in1k (hf-hub timm/\(name).in1k, model.safetensors)", weightKeyMap: mambaoutKeys)
    }

    /// All registered encoders by name.
    public static let all: [String: EncoderSpec] = {
        let specs: [EncoderSpec] = [
            timmViT("vit_small", .vitSmall, timmName: "timm: vit_small_patch16_224.augreg_in21k_ft_in1k (hf-hub timm/…, model.safetensors)"),
            timmViT("vit_base", .vitBase, timmName: "timm: vit_base_patch16_224.augreg2_in21k_ft_in1k (hf-hub timm/…, model.safetensors)"),
            mocoViT("vit_small_moco", .vitSmallMoCo, source: "MoCo v3 vit-s-300ep.pth.tar (facebookresearch/moco-v3) → Tools/convert_weights.py"),
            mocoViT("vit_base_moco", .vitBaseMoCo, source: "MoCo v3 vit-b-300ep.pth.tar (facebookresearch/moco-v3) → Tools/convert_weights.py"),
            mocoViT("vit_conv_small", .vitConvSmall, source: "MoCo v3 / LeCL conv-stem ViT-S checkpoint → Tools/convert_weights.py"),
            mocoViT("vit_conv_base", .vitConvBase, source: "MoCo v3 / LeCL conv-stem ViT-B checkpoint → Tools/convert_weights.py"),
            mocoViT("vit_test", .vitTest, source: "none (tiny random-init test encoder)"),
            mocoViT("vit_conv_test", .vitConvTest, source: "none (tiny random-init test encoder)"),
            mambaout("mambaout_femto", .femto), mambaout("mambaout_kobe", .kobe), mambaout("mambaout_tiny", .tiny),
            mambaout("mambaout_small", .small), mambaout("mambaout_base", .base),
            EncoderSpec(name: "mambaout_test", architecture: .mambaout(.test),
                        preprocessing: EncoderPreprocessing(inputSize: 32, mean: EncoderPreprocessing.imagenetMean,
                                                            std: EncoderPreprocessing.imagenetStd, interpolation: "bicubic", cropPct: 1.0),
                        weightsSource: "none (tiny random-init test encoder)", weightKeyMap: mambaoutKeys),
        ] + clipFamilySpecs
        return Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
    }()

    /// The names, sorted.
    public static var names: [String] { all.keys.sorted() }

    /// The spec for `name` or `EncoderError.unknownEncoder`.
    public static func spec(_ name: String) throws -> EncoderSpec {
        guard let s = all[name] else { throw EncoderRegistryError.unknownEncoder(name, known: names) }
        return s
    }

    /// The spec for `name` at another input size (ViT family only: the image is resized / cropped
    /// to `inputSize` and a checkpoint's position embedding is resampled to the new patch grid on
    /// load, as timm's `checkpoint_filter_fn`); nil keeps the registry's size.
    public static func spec(_ name: String, inputSize: Int?) throws -> EncoderSpec {
        let s = try spec(name)
        guard let size = inputSize, size != s.preprocessing.inputSize else { return s }
        guard case .vit(var c) = s.architecture else {
            throw EncoderError.badInput(model: name, reason: "input size \(size): only the ViT encoders take another input size")
        }
        guard size > 0 && size % c.patchSize == 0 else {
            throw EncoderError.badInput(model: name, reason: "input size \(size) must be a positive multiple of the patch size \(c.patchSize)")
        }
        c.imageSize = size
        var pre = s.preprocessing
        pre.inputSize = size
        return EncoderSpec(name: s.name, architecture: .vit(c), preprocessing: pre, weightsSource: s.weightsSource, weightKeyMap: s.weightKeyMap)
    }

    /// Builds `name` (at `inputSize`, see `spec(_:inputSize:)`) and loads `weights` (a
    /// `.safetensors` file under the source library's key names) into it, or initialises it
    /// randomly from `seed` when `weights` is nil.
    public static func load(_ name: String, weights: URL?, seed: UInt64 = 0, inputSize: Int? = nil) throws -> any ImageEncoder {
        let model = try spec(name, inputSize: inputSize).makeModel(seed: seed)
        if let weights {
            let state = try EncoderWeights.read(weights)
            do { try model.loadCheckpoint(state) } catch let e as ModuleError {
                throw EncoderError.weightMismatch(file: weights.path, model: name, details: e.description)
            }
        }
        model.eval()
        return model
    }
}
