import AxialModels
import AxialStore
import AxialTensor
import Foundation

/// What `axial extract` stores per slice (`--tokens`).
public enum ExtractTokens: String, Sendable, CaseIterable {
    /// `feats` only: one pooled vector per slice (every encoder).
    case pooled
    /// `feats` plus `dense_tokens [N, K, D]` (`DenseTokens`): the encoder's dense tokens per slice —
    /// CLIP ModifiedResNet encoders only (clip_rn50: K = 50, D = 1024; token 0 = the `feats` row).
    case dense
}

extension Extract {
    /// The encoders that have dense tokens, for error messages.
    static var denseEncoders: [String] {
        EncoderRegistry.names.filter { name in
            if case .clipResNet = EncoderRegistry.all[name]?.architecture { return true }
            return false
        }
    }

    /// Refuses `--tokens dense` for an encoder without dense tokens, naming the ones that have them.
    static func checkTokens(_ o: ExtractOptions, spec: EncoderSpec) throws {
        guard o.tokens == .dense else { return }
        if case .clipResNet = spec.architecture {
            if o.inputSize != nil { throw PipelineError.invalidOption(option: "--input-size", reason: "is for ViT encoders; --tokens dense with \(o.encoder) uses its registry size") }
            return
        }
        throw PipelineError.invalidOption(option: "--tokens", reason: "dense tokens exist only for the CLIP ResNet encoders (\(denseEncoders.joined(separator: ", "))); encoder '\(o.encoder)' gives one pooled vector per slice — drop --tokens dense or use one of those")
    }

    /// The model as a CLIP ModifiedResNet when dense tokens are asked for (nil for `pooled`).
    static func denseModel(_ o: ExtractOptions, _ model: any ImageEncoder) throws -> CLIPModifiedResNet? {
        guard o.tokens == .dense else { return nil }
        guard let rn = model as? CLIPModifiedResNet else {
            throw PipelineError.invalidOption(option: "--tokens", reason: "encoder '\(o.encoder)' has no dense tokens")
        }
        return rn
    }

    /// Tokens per slice of a CLIP ModifiedResNet (1 + grid², 50 at 224²).
    static func tokensPerSlice(_ rn: CLIPModifiedResNet) -> Int { rn.attnpool.positionalEmbedding.shape[0] }

    /// The preprocessing JSON's `tokens` entry of a dense extraction (a pooled one has none, so
    /// files of the two kinds never count as the same extraction on a rerun).
    static func tokensDescription(_ rn: CLIPModifiedResNet) -> String {
        "dense: \(tokensPerSlice(rn)) tokens per slice (CLIP ModifiedResNet encodeDense, token 0 = global)"
    }
}

/// One patient's dense tokens, filled batch by batch on the embedding thread.
final class DenseTokenBuffer {
    let k: Int, d: Int
    var values: [Float]

    init(rows: Int, tokens k: Int, dimension d: Int) {
        self.k = k; self.d = d
        values = [Float](repeating: 0, count: rows * k * d)
    }

    /// Embeds `images` with `rn` (no tape): returns the global features [B, D] (as `encode`) and
    /// stores the dense tokens of batch row r at patient row `positions[r]`.
    func embed(_ rn: CLIPModifiedResNet, images: Tensor, positions: [Int]) -> Tensor {
        let (global, tokens) = withNoGrad { rn.encodeDense(images, globalToken: .raw) }
        precondition(tokens.shape == [positions.count, k, d], "extract: dense tokens \(tokens.shape), expected [\(positions.count), \(k), \(d)]")
        let row = k * d
        tokens.withUnsafeBufferPointer { src in
            values.withUnsafeMutableBufferPointer { dst in
                for (r, pos) in positions.enumerated() {
                    (dst.baseAddress! + pos * row).update(from: src.baseAddress! + r * row, count: row)
                }
            }
        }
        return global
    }

    var tokens: DenseTokens { DenseTokens(tokensPerRow: k, dimension: d, values: values) }
}
