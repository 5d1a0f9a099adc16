import AxialNN
import AxialTensor
import Foundation

/// Errors from loading an encoder's weights or feeding it bad input.
public enum EncoderError: Error, CustomStringConvertible {
    /// The file could not be read as safetensors.
    case unreadableWeights(file: String, reason: String)
    /// The file's keys do not match the model (missing / unexpected / mis-shaped keys listed).
    case weightMismatch(file: String, model: String, details: String)
    /// The file holds no key under the expected prefix (e.g. `visual.` for an image tower).
    case noKeys(file: String, prefix: String, sample: [String])
    /// An input tensor has the wrong shape or values.
    case badInput(model: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableWeights(file, reason): return "cannot read weights \(file): \(reason)"
        case let .weightMismatch(file, model, details): return "weights \(file) do not fit \(model): \(details)"
        case let .noKeys(file, prefix, sample):
            return "weights \(file) hold no key starting with '\(prefix)' (first keys: \(sample.prefix(5).joined(separator: ", ")))"
        case let .badInput(model, reason): return "\(model): \(reason)"
        }
    }
}

/// Shared steps of loading a checkpoint under its library's own names.
public enum EncoderWeights {
    /// Reads a `.safetensors` weight file (`SafeTensors.readWeights`: float dtypes → Float32, an
    /// integer tensor refused unless it is a counter / id buffer, NaN or Inf refused naming the tensor).
    public static func read(_ url: URL) throws -> [String: Tensor] {
        do { return try SafeTensors.readWeights(url).tensors }
        catch { throw EncoderError.unreadableWeights(file: url.path, reason: "\(error)") }
    }

    /// The keys under `prefix` with the prefix removed (`visual.conv1.weight` → `conv1.weight`).
    public static func subtree(_ state: [String: Tensor], prefix: String) -> [String: Tensor] {
        guard !prefix.isEmpty else { return state }
        var out: [String: Tensor] = [:]
        for (k, v) in state where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
        return out
    }

    /// Loads `state` into `module` strictly, turning a mismatch into `EncoderError.weightMismatch`.
    public static func load(_ module: Module, _ state: [String: Tensor], file: String, model: String) throws {
        do { try module.loadStateDict(state, strict: true) }
        catch let e as ModuleError { throw EncoderError.weightMismatch(file: file, model: model, details: e.description) }
    }
}

// MARK: Shared transformer pieces

/// Multi-head attention core on already-projected q, k, v: [B, L, E] each → [B, Lq, E] (heads merged).
/// `mask` is applied to the scores [B, H, Lq, Lk] (broadcast).
func multiHeadAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, mask: AttentionMask? = nil) -> Tensor {
    let B = q.shape[0], Lq = q.shape[1], E = q.shape[2], Lk = k.shape[1]
    precondition(E % heads == 0, "attention: width \(E) not divisible by \(heads) heads")
    let hd = E / heads
    let qh = q.reshaped([B, Lq, heads, hd]).permuted([0, 2, 1, 3])
    let kh = k.reshaped([B, Lk, heads, hd]).permuted([0, 2, 1, 3])
    let vh = v.reshaped([B, Lk, heads, hd]).permuted([0, 2, 1, 3])
    let ctx = scaledDotProductAttention(qh, kh, vh, mask: mask)        // [B, H, Lq, hd]
    return ctx.permuted([0, 2, 1, 3]).reshaped([B, Lq, E])
}

/// Non-overlapping patch embedding (a conv with kernel = stride = p, no padding) as a matmul:
/// images [B, C, H, W] → [B, (H/p)·(W/p), out] (row-major patch order, as conv → flatten(2)).
/// `weight` [out, C, p, p]. Rows / columns past the last whole patch are dropped, as the conv does.
func patchEmbed(_ images: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    precondition(images.rank == 4, "patch embedding: images \(images.shape) must be [B, C, H, W]")
    let out = weight.shape[0], C = weight.shape[1], p = weight.shape[2]
    precondition(images.shape[1] == C && weight.shape[3] == p, "patch embedding: images \(images.shape) vs weight \(weight.shape)")
    let B = images.shape[0], gh = images.shape[2] / p, gw = images.shape[3] / p
    var x = images
    if x.shape[2] != gh * p { x = x.narrow(axis: 2, start: 0, length: gh * p) }
    if x.shape[3] != gw * p { x = x.narrow(axis: 3, start: 0, length: gw * p) }
    let patches = x.reshaped([B, C, gh, p, gw, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([B, gh * gw, C * p * p])
    return linear(patches, weight: weight.reshaped([out, C * p * p]), bias: bias)
}
