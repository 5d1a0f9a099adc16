import AxialCore
import AxialModels
import AxialNN
import AxialTensor
import Foundation

// `axial extract --encoder clip_… --adapters RUN/adapters.safetensors`: adapted slice embeddings
// (`CLIPAdaptedEncoder`: per level the mean over patch tokens of the seg and the det adapters'
// bottleneck tokens, levels in order, seg before det; D = 2 · levels · bottleneck) in place of the
// tower's pooled embedding, written to the same per-patient HDF5 stores.
//
// The tower is the `--encoder`'s, with `--weights` or random init from `--seed` (the same weights an
// `axial anomaly train --random-init --seed S` run has). When the adapters file has a `run.json`
// beside it (an `axial anomaly train` run), the adapter levels come from it and the run must fit:
// the same encoder, `--weights` given when the run had weights, `--random-init` with the run's seed
// when it had none. Provenance: `encoder_sha256` is `<tower sha256 or random-init-seed-S>+adapters-<sha256
// of the adapters file>`, and the preprocessing JSON's "feature" names the pooling, so stores of
// another tower, other adapters or plain embeddings are never mixed with these in one folder.
extension Extract {
    /// The "feature" entry of the preprocessing JSON for adapted embeddings.
    static func adaptedFeatureText(levels: [Int], bottleneck: Int) -> String {
        "adapted: per level (blocks \(levels.map(String.init).joined(separator: ","))) mean over patch tokens of the seg, then det adapter bottleneck (\(bottleneck)-d); concatenated"
    }

    /// The tower wrapped with the adapters of `o.adapters`; the provenance SHA; the "feature" text.
    static func adaptedEncoder(_ tower: any ImageEncoder, towerSHA: String, _ o: ExtractOptions) throws -> (any ImageEncoder, String, String) {
        guard let url = o.adapters else { return (tower, towerSHA, "") }
        guard let visual = tower as? CLIPVisionTransformer else {
            throw PipelineError.invalidOption(option: "--adapters", reason: "needs a CLIP ViT encoder (clip_vit_*, clip_test), got '\(o.encoder)'")
        }
        if o.inputSize != nil {
            throw PipelineError.invalidOption(option: "--adapters", reason: "adapters run at the encoder's own input size; leave out --input-size")
        }
        var levels: [Int]? = nil
        let infoURL = url.deletingLastPathComponent().appendingPathComponent("run.json")
        if FileManager.default.fileExists(atPath: infoURL.path) {
            let info: AnomalyRunInfo
            do { info = try JSONDecoder().decode(AnomalyRunInfo.self, from: Data(contentsOf: infoURL)) } catch {
                throw PipelineError.io(path: infoURL.path, reason: "not a readable anomaly run.json: \(error)")
            }
            if info.encoder != o.encoder {
                throw PipelineError.invalidOption(option: "--adapters", reason: "\(url.path) was trained on encoder '\(info.encoder)' (\(infoURL.path)), not '\(o.encoder)'")
            }
            if let w = info.weights, o.weights == nil {
                throw PipelineError.invalidOption(option: "--adapters", reason: "\(url.path) was trained on the CLIP weights \(w); give them with --weights")
            }
            if let s = info.randomInitSeed {
                if o.weights != nil {
                    throw PipelineError.invalidOption(option: "--adapters", reason: "\(url.path) was trained on a random-init CLIP (seed \(s)); use --random-init --seed \(s), not --weights")
                }
                if s != o.seed {
                    throw PipelineError.invalidOption(option: "--seed", reason: "\(url.path) was trained on the random-init CLIP of seed \(s); got --seed \(o.seed)")
                }
            }
            levels = info.levels
        }
        let state: [String: Tensor]
        do { state = try SafeTensors.read(url).tensors } catch {
            throw PipelineError.io(path: url.path, reason: "cannot read the adapters: \(error)")
        }
        let model: CLIPAdaptedEncoder
        do { model = try CLIPAdaptedEncoder.make(tower: visual, state: state, levels: levels, file: url.path) } catch {
            throw PipelineError.invalidOption(option: "--adapters", reason: "\(error)")
        }
        let sha = towerSHA + "+adapters-" + (try SHA256.hex(fileAt: url))
        return (model, sha, adaptedFeatureText(levels: model.adapters.config.levels, bottleneck: model.adapters.config.bottleneck))
    }
}
