import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation

// The pieces of `axial classify`: a frozen CLIP backbone (ModifiedResNet image tower for the dense
// tokens, text tower for class features and prompts), the BPE tokenizer, and a PsPGModel on top.
//
// Backbones:
//   clip_rn50  OpenAI / open_clip RN50 (`visual.*` + the text tower at the top level of one
//              .safetensors; OpenAI's .pt through Tools/convert_weights.py first): 224², 50 tokens
//              of 1024, text width 512 (12 layers, 8 heads), context 77.
//   tiny       random-init towers of the same structure (RN layers 1-1-1-1, width 8, 64², 5 tokens of
//              32, He-normal convolutions; text width 32, 1 layer, context 40) seeded by `seed` — for
//              tests and demos only.

public enum ClassifyError: Error, CustomStringConvertible {
    case badOption(String)
    case weights(String)
    case checkpoint(path: String, reason: String)

    public var description: String {
        switch self {
        case .badOption(let m): return m
        case .weights(let m): return m
        case .checkpoint(let p, let r): return "\(p): \(r)"
        }
    }
}

/// Everything needed to rebuild a trained model (stored as JSON in its model file).
public struct ClassifyModelSpec: Codable, Sendable, Equatable {
    public var backbone: String
    /// clip_rn50: the CLIP checkpoint the frozen towers came from (not copied into the model file).
    public var clipWeights: String?
    /// tiny: the seed of the random frozen towers.
    public var backboneSeed: UInt64
    public var resnet: CLIPResNetConfig
    public var text: CLIPTextConfig
    public var pspg: PsPGModelConfig
    public var mean: [Double]
    public var std: [Double]
    public var imageSize: Int { resnet.imageSize }

    public static let backbones = ["clip_rn50", "tiny"]

    /// The spec for a backbone with the reference's generator settings (hidden 512, 16 steps, 8
    /// heads, dropout 0.2); `tiny` shrinks the generator too (hidden 16, 4 steps, 2 heads).
    public static func make(backbone: String, weights: String?, seed: UInt64, decoder: PsPGDecoderKind,
                            hidden: Int?, promptSteps: Int?, namePrefix: Bool, pairLoss: Bool,
                            temperature: Double = 0.07) throws -> ClassifyModelSpec {
        var rn: CLIPResNetConfig, text: CLIPTextConfig, g: PsPGGeneratorConfig
        switch backbone {
        case "clip_rn50":
            guard weights != nil else { throw ClassifyError.badOption("--backbone clip_rn50 needs --weights (an open_clip / OpenAI RN50 .safetensors)") }
            rn = .rn50
            text = CLIPTextConfig(width: 512, heads: 8, layers: 12)
            g = PsPGGeneratorConfig(decoder: decoder, inputDimension: 1024, tokenWidth: 512)
        case "tiny":
            rn = CLIPResNetConfig(layers: [1, 1, 1, 1], width: 8, heads: 4, outputDimensions: 32, imageSize: 64)
            text = CLIPTextConfig(contextLength: 40, width: 32, heads: 2, layers: 1)
            g = PsPGGeneratorConfig(decoder: decoder, inputDimension: 32, tokenWidth: 32, hidden: 16, steps: 4, heads: 2)
        default:
            throw ClassifyError.badOption("unknown backbone '\(backbone)' (known: \(backbones.joined(separator: ", ")))")
        }
        if let hidden { g.hidden = hidden }
        if let promptSteps { g.steps = promptSteps }
        try g.validate()
        var p = PsPGModelConfig(generator: g, namePrefix: namePrefix, pairLoss: pairLoss)
        p.sotToken = 49406; p.eotToken = 49407
        guard temperature > 0 && temperature.isFinite else { throw ClassifyError.badOption("--temperature must be > 0 (got \(temperature))") }
        p.temperature = temperature
        return ClassifyModelSpec(backbone: backbone, clipWeights: weights, backboneSeed: seed, resnet: rn, text: text, pspg: p,
                                 mean: NormalizationPreset.clipMean, std: NormalizationPreset.clipStd)
    }

    public func json() -> String { String(data: try! JSONEncoder().encode(self), encoding: .utf8)! }
    public static func parse(_ s: String, source: String) throws -> ClassifyModelSpec {
        do { return try JSONDecoder().decode(ClassifyModelSpec.self, from: Data(s.utf8)) } catch {
            throw ClassifyError.checkpoint(path: source, reason: "model spec is not valid: \(error)")
        }
    }
}

/// The frozen CLIP parts and the tokenizer.
public final class ClassifyBackbone: @unchecked Sendable {
    public let spec: ClassifyModelSpec
    public let image: CLIPModifiedResNet
    public let text: CLIPTextTransformer
    public let tokenizer: CLIPTokenizer

    public init(_ spec: ClassifyModelSpec, weightsOverride: String? = nil) throws {
        self.spec = spec
        tokenizer = try CLIPTokenizer.shared()
        var g = RandomGenerator(seed: spec.backboneSeed)
        image = CLIPModifiedResNet(spec.resnet, generator: &g)
        text = CLIPTextTransformer(spec.text, outputDimensions: spec.resnet.outputDimensions, activation: .quickGelu, generator: &g)
        if spec.backbone == "tiny" {
            // He-normal convolutions (std √(2 / fan_in)) so the random frozen features keep their
            // scale through the ReLU stack (torch's default uniform init shrinks them ~6× per conv,
            // leaving tokens that are the position embedding alone, the same for every image).
            for (_, m) in image.namedModules() {
                guard let conv = m as? Conv2d else { continue }
                let shape = conv.weight.value.shape
                let fanIn = shape.dropFirst().reduce(1, *)
                conv.weight.assign(Tensor.normal(shape, generator: &g) * Float((2 / Double(fanIn)).squareRoot()))
            }
        }
        if spec.backbone == "clip_rn50" {
            guard let path = weightsOverride ?? spec.clipWeights else { throw ClassifyError.badOption("clip_rn50 needs --weights") }
            let url = URL(fileURLWithPath: path)
            let all = try EncoderWeights.read(url)
            let visual = image.remap(all, prefix: "visual.")
            if visual.isEmpty { throw EncoderError.noKeys(file: path, prefix: "visual.", sample: all.keys.sorted()) }
            try EncoderWeights.load(image, visual, file: path, model: "CLIP RN50 image tower")
            var t: [String: Tensor] = [:]
            for (k, v) in all where !k.hasPrefix("visual.") && !["logit_scale", "input_resolution", "context_length", "vocab_size"].contains(k) { t[k] = v }
            try EncoderWeights.load(text, t, file: path, model: "CLIP text tower")
        }
        image.freeze(); image.eval()
        text.freeze(); text.eval()
    }

    /// Class features for names through the frozen text tower ([SOS] BPE(name) [EOS]); the name
    /// tokens plus "." for the prompt prefix.
    public func classSet(_ names: [String]) throws -> PsPGClassSet {
        let ctx = spec.text.contextLength
        let ids = try names.map { name -> [Int] in
            let t = tokenizer.encode(name)
            guard !t.isEmpty else { throw ClassifyError.badOption("class name '\(name)' has no tokens") }
            guard t.count + 2 <= ctx else { throw ClassifyError.badOption("class name '\(name)' has \(t.count) tokens; the text tower takes \(ctx - 2)") }
            return [tokenizer.startOfTextID] + t + [tokenizer.endOfTextID]
        }
        let period = tokenizer.encode(".").first
        return PsPGClassSet.encode(names: names, ids: ids, text: text, periodToken: period)
    }

    /// Images [B, 3, S, S] (normalised) → raw dense tokens [B, N, D] (no gradient).
    public func tokens(_ images: Tensor) -> Tensor {
        withNoGrad { image.encodeDense(images, globalToken: .raw).tokens }
    }

    /// Normalised CHW floats of an RGB image resized to S × S (bicubic) when needed.
    public func pixels(_ img: PlanarImage8) -> [Float] {
        let s = spec.imageSize
        let r = img.width == s && img.height == s ? img : PILResample.resize(img, width: s, height: s, filter: .bicubic)
        return Transforms.normalized(r, mean: spec.mean, std: spec.std)
    }
}
