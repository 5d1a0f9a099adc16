import AxialNN
import AxialTensor
import Foundation

// The whole MVFA / MLA-LP detector: a frozen CLIPModel, the multi-level adapters and (learned
// prompts) the prompt learner. The trainable part is its own Module whose keys are the reference
// checkpoints' (`seg_adapters.*`, `det_adapters.*`, `prompt_learner.ctx.*`).

extension CLIPConfig {
    /// The tiny random-init CLIP of the registry's `clip_test` (tests, demos): 32², patch 8 (4×4
    /// grid), vision width 64 × 4 blocks (4 heads), text width 32 × 2 blocks (4 heads, context 77,
    /// the full BPE vocabulary), embed 48 (= the adapter bottleneck), QuickGELU.
    public static let test = CLIPConfig(
        embedDimensions: 48, vision: .init(imageSize: 32, patchSize: 8, width: 64, layers: 4, heads: 4),
        text: .init(width: 32, heads: 4, layers: 2))
}

/// How the two class embeddings are made.
public enum AnomalyTextMode: String, Codable, Sendable, CaseIterable {
    /// MLA-LP's learned CoOp contexts.
    case learned
    /// MVFA's fixed state × template ensemble with the object name.
    case templates
}

/// Everything that fixes the detector's shapes and text.
public struct CLIPAnomalyConfig: Codable, Sendable, Equatable {
    public var clip: CLIPConfig
    public var adapters: CLIPAdapterConfig
    public var text: AnomalyTextMode
    /// The object name for the template ensemble (MVFA: "Brain", "Liver", …).
    public var object: String
    public var contextTokens: Int = 8
    public var normalDescriptors: [String] = AnomalyPrompts.normalDescriptors
    public var abnormalDescriptors: [String] = AnomalyPrompts.abnormalDescriptors

    public init(clip: CLIPConfig, adapters: CLIPAdapterConfig? = nil, text: AnomalyTextMode = .learned, object: String = "Brain") {
        self.clip = clip; self.adapters = adapters ?? .standard(for: clip); self.text = text; self.object = object
    }

    /// The detector for a registry CLIP encoder (`clip_vit_l14_336_at240`: MVFA's levels 6/12/18/24,
    /// bottleneck 768; `clip_test`: 1/2/3/4, 48): adapters at the tower's quarter points.
    public static func forEncoder(_ name: String, text: AnomalyTextMode = .learned, object: String = "Brain") throws -> CLIPAnomalyConfig {
        guard case .clip(let c) = try EncoderRegistry.spec(name).architecture else {
            throw AnomalyModelError.badConfig("encoder '\(name)' is not a CLIP ViT (the anomaly model needs clip_vit_* or clip_test)")
        }
        return CLIPAnomalyConfig(clip: c, text: text, object: object)
    }

    public func validate() throws {
        if let p = adapters.problem(layers: clip.vision.layers) { throw AnomalyModelError.badConfig(p) }
        if adapters.bottleneck != clip.embedDimensions {
            throw AnomalyModelError.badConfig("bottleneck \(adapters.bottleneck) must equal the CLIP embedding width \(clip.embedDimensions) (features are compared with text embeddings)")
        }
        if text == .templates && object.trimmingCharacters(in: .whitespaces).isEmpty {
            throw AnomalyModelError.badConfig("the template text needs an object name")
        }
    }
}

/// The trainable modules: keys `seg_adapters.*`, `det_adapters.*`, `prompt_learner.ctx.*`.
public final class AnomalyTrainable: Module {
    public let adapters: CLIPAdapters
    public let promptLearner: PromptLearner?
    init(adapters: CLIPAdapters, promptLearner: PromptLearner?) {
        self.adapters = adapters; self.promptLearner = promptLearner
        super.init()
    }
    override public var propertyKeys: [String: String] { ["adapters": ""] }
}

/// Per-image outputs at image resolution.
public struct AnomalyPrediction {
    /// Zero-shot (text) map [B, S, S] and det score [B].
    public var map: Tensor
    public var score: Tensor
    /// Few-shot map [B, S, S] (seg branch) and det score [B] (mean of the det-branch map), with a bank.
    public var fewShotMap: Tensor?
    public var fewShotScore: Tensor?
}

public final class CLIPAnomalyDetector {
    public let config: CLIPAnomalyConfig
    public let clip: CLIPModel
    public let trainable: AnomalyTrainable
    let tokenizer: PromptTokenizer
    private var cachedTemplates: Tensor?

    /// Builds the detector around `clip` (frozen here) with freshly initialised adapters / contexts
    /// from `seed` (adapters as torch.nn.Linear, contexts N(0, 0.02)).
    public init(_ config: CLIPAnomalyConfig, clip: CLIPModel, seed: UInt64, tokenizer: PromptTokenizer? = nil) throws {
        try config.validate()
        guard clip.config == config.clip else { throw AnomalyModelError.badConfig("CLIP model and detector configuration differ") }
        self.config = config
        self.clip = clip
        clip.freeze()
        clip.eval()
        self.tokenizer = tokenizer ?? AnomalyPrompts.clipTokenizer(contextLength: config.clip.text.contextLength)
        var g = RandomGenerator(seed: seed)
        let adapters = CLIPAdapters(config.adapters, width: config.clip.vision.width, generator: &g)
        var learner: PromptLearner? = nil
        if config.text == .learned {
            learner = try PromptLearner(width: config.clip.text.width, contextLength: config.contextTokens,
                                        normal: config.normalDescriptors, abnormal: config.abnormalDescriptors,
                                        tokenizer: self.tokenizer, generator: &g)
        }
        trainable = AnomalyTrainable(adapters: adapters, promptLearner: learner)
    }

    public var imageSize: Int { config.clip.vision.imageSize }

    /// T [E, 2]: the learned prompts (differentiable) or the cached template ensemble.
    public func textFeatures() throws -> Tensor {
        if let learner = trainable.promptLearner { return learner.textFeatures(text: clip.text) }
        if let t = cachedTemplates { return t }
        let t = try AnomalyPrompts.templateFeatures(text: clip.text, object: config.object, tokenizer: tokenizer)
        cachedTemplates = t
        return t
    }

    /// Adapted patch tokens for images [B, 3, S, S] (already normalised with CLIP's mean/std).
    public func tokens(_ images: Tensor) throws -> AdaptedTokens {
        guard images.rank == 4, images.shape[1] == 3, images.shape[2] == imageSize, images.shape[3] == imageSize else {
            throw AnomalyModelError.badInput("images \(images.shape) must be [B, 3, \(imageSize), \(imageSize)]")
        }
        return trainable.adapters(images, visual: clip.visual)
    }

    /// The training loss for a batch: masks [B, S, S] (nil: det loss only), labels [B] (0 normal, 1 abnormal).
    public func loss(images: Tensor, masks: Tensor?, labels: Tensor) throws -> (total: Tensor, seg: Tensor?, det: Tensor) {
        let t = try tokens(images)
        return AnomalyLosses.total(t, text: try textFeatures(), masks: masks, labels: labels, imageSize: imageSize)
    }

    /// Adam with β (0.5, 0.999) over two groups: adapters (`adapterLR`, 1e-4) and prompt contexts (`promptLR`, 1e-3).
    public func makeOptimizer(adapterLR: Double = 1e-4, promptLR: Double = 1e-3) -> Adam {
        var groups = [ParameterGroup(trainable.adapters.parameters(), lr: adapterLR, name: "adapters")]
        if let p = trainable.promptLearner { groups.append(ParameterGroup(p.parameters(), lr: promptLR, name: "prompt_learner")) }
        return Adam(groups, betas: (0.5, 0.999))
    }

    /// The normal shots [K, 3, S, S] ×11 (FewShotAugment) → adapted patch tokens per level.
    public func memoryBank(shots: Tensor, augment: Bool = true) throws -> AnomalyMemoryBank {
        try withNoGrad { AnomalyMemoryBank(try tokens(augment ? FewShotAugment.augment(shots) : shots)) }
    }

    /// Maps and scores for images [B, 3, S, S] (no gradient); maps at `outputSize` (default S×S:
    /// the patch grid is upsampled straight to it, so maps can be made at a source image's size).
    /// `text`: the class embeddings from `textFeatures()` made once for a whole test set (learned
    /// prompts otherwise run the text tower on every call); nil makes them here.
    public func predict(_ images: Tensor, bank: AnomalyMemoryBank? = nil, outputSize: Size2D? = nil, text: Tensor? = nil) throws -> AnomalyPrediction {
        let size = outputSize ?? Size2D(imageSize, imageSize)
        if let text, text.shape != [config.clip.embedDimensions, 2] {
            throw AnomalyModelError.badInput("text embeddings \(text.shape) must be [\(config.clip.embedDimensions), 2]")
        }
        return try withNoGrad {
            let t = try tokens(images), text = try text ?? textFeatures()
            var p = AnomalyPrediction(map: AnomalyMaps.zeroShotMap(t.seg, text: text, size: size),
                                      score: AnomalyMaps.detScore(t.det, text: text))
            if let bank {
                p.fewShotMap = AnomalyMaps.fewShotMap(t.seg, bank: bank.seg, size: size)
                let det = AnomalyMaps.fewShotMap(t.det, bank: bank.det, size: Size2D(imageSize, imageSize))   // score at S×S, as the reference
                p.fewShotScore = det.mean(axes: [1, 2])
            }
            return p
        }
    }

    /// The trainable state (`seg_adapters.*`, `det_adapters.*`, `prompt_learner.*`).
    public func stateDict() -> [String: Tensor] { trainable.stateDict() }

    /// Loads a trainable state under the reference names; throws a key-listing error on mismatch.
    public func load(state: [String: Tensor], file: String) throws {
        do { _ = try trainable.loadStateDict(state) } catch let e as ModuleError {
            throw AnomalyModelError.badInput("\(file): adapter / prompt weights do not fit this detector: \(e.description)")
        }
    }
}
