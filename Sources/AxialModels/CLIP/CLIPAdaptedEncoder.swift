import AxialNN
import AxialTensor
import Foundation

/// Adapted slice embeddings (`axial extract --adapters RUN/adapters.safetensors`): a frozen CLIP
/// image tower with the MVFA / MLA-LP multi-level adapters inserted (`CLIPAdapters`), pooled per
/// level into one vector per image.
///
///     feature = [ mean_p seg_1[p], mean_p det_1[p], mean_p seg_2[p], mean_p det_2[p], … ]
///
/// seg_k / det_k are the level-k seg / det adapters' bottleneck tokens (fc1 + LeakyReLU, the
/// features the anomaly maps compare with text) of the PATCH tokens (class token dropped), and
/// mean_p the plain mean over the grid² patches. Levels in order, seg before det within a level:
/// D = 2 · levels · bottleneck (6144 for `clip_vit_l14_336_at240`: 4 levels × 768; 384 for
/// `clip_test`). Not normalised. Only the blocks up to the last level run (the tower's own
/// projection head is not used).
public final class CLIPAdaptedEncoder: Module, ImageEncoder {
    public let visual: CLIPVisionTransformer
    public let adapters: CLIPAdapters

    public init(visual: CLIPVisionTransformer, adapters: CLIPAdapters) {
        self.visual = visual; self.adapters = adapters
        super.init()
    }

    public var featureDimension: Int { 2 * adapters.config.levels.count * adapters.config.bottleneck }
    public var inputSize: Int { visual.inputSize }

    public func encode(_ images: Tensor) -> Tensor {
        let t = adapters(images, visual: visual)
        var parts: [Tensor] = []
        for (s, d) in zip(t.seg, t.det) { parts.append(s.mean(axis: 1)); parts.append(d.mean(axis: 1)) }
        return concat(parts, axis: 1)
    }

    /// The keys of an adapters file as they are (`seg_adapters.*`, `det_adapters.*`).
    public func remapCheckpointKeys(_ state: [String: Tensor]) -> [String: Tensor] { state }

    /// Wraps `tower` with the adapters of `state` (an `axial anomaly train` adapters.safetensors or an
    /// MVFA / MLA-LP checkpoint under its own names; `prompt_learner.*` and other keys are ignored).
    /// `levels`: the blocks the adapters sit after (run.json's), nil = the tower's quarter points.
    /// Throws naming `file` when the adapters do not fit the tower.
    public static func make(tower: CLIPVisionTransformer, state: [String: Tensor], levels: [Int]?, file: String) throws -> CLIPAdaptedEncoder {
        let adapterKeys = state.filter { $0.key.hasPrefix("seg_adapters.") || $0.key.hasPrefix("det_adapters.") }
        guard let w = adapterKeys["seg_adapters.0.fc1.0.weight"], w.rank == 2 else {
            throw AnomalyModelError.badInput("\(file): no seg_adapters.0.fc1.0.weight (not an adapters file; keys: \(state.keys.sorted().prefix(6).joined(separator: ", ")))")
        }
        let count = Set(adapterKeys.keys.compactMap { $0.split(separator: ".").dropFirst().first.flatMap { Int($0) } }).count
        let layers = tower.config.layers
        let standard = layers >= 4 ? (1...4).map { $0 * layers / 4 } : Array(1...layers)
        let config = CLIPAdapterConfig(levels: levels ?? standard, bottleneck: w.shape[0])
        if let p = config.problem(layers: layers) { throw AnomalyModelError.badInput("\(file): \(p)") }
        guard config.levels.count == count else {
            throw AnomalyModelError.badInput("\(file): \(count) adapter levels in the file, but the levels are \(config.levels)")
        }
        guard w.shape[1] == tower.config.width else {
            throw AnomalyModelError.badInput("\(file): adapters of width \(w.shape[1]), the tower's is \(tower.config.width)")
        }
        var g = RandomGenerator(seed: 0)
        let adapters = CLIPAdapters(config, width: tower.config.width, generator: &g)
        do { _ = try adapters.loadStateDict(adapterKeys, strict: true) } catch let e as ModuleError {
            throw AnomalyModelError.badInput("\(file): adapter weights do not fit: \(e.description)")
        }
        adapters.freeze()
        let m = CLIPAdaptedEncoder(visual: tower, adapters: adapters)
        m.eval()
        return m
    }
}
