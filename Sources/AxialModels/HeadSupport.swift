import AxialTensor
import Foundation

// Building blocks shared by the MIL heads (ABMIL, PMA, PsPG): a named parameter set (the state
// dict), PyTorch-default initialisers, and functional layers (linear, multi-head attention with a
// key-padding mask, GRU cell) written on AxialTensor ops so autodiff covers them.
//
// Note: these are small functional pieces written while AxialNN (Module / Linear / optimizers) was
// still landing; parameter names follow PyTorch's so checkpoints map one to one.

/// Errors of the heads: bad state dicts, bad configs.
public enum HeadError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingParameter(name: String, source: String)
    case unexpectedParameter(name: String, source: String)
    case shapeMismatch(name: String, expected: [Int], got: [Int], source: String)
    case badConfig(String)

    public var description: String {
        switch self {
        case .missingParameter(let n, let s): return "\(s): parameter '\(n)' is missing"
        case .unexpectedParameter(let n, let s): return "\(s): unexpected parameter '\(n)' (not part of this head)"
        case .shapeMismatch(let n, let e, let g, let s): return "\(s): parameter '\(n)' has shape \(g), the head expects \(e)"
        case .badConfig(let m): return "head config: \(m)"
        }
    }
}

/// Ordered, named trainable tensors (autodiff leaves). The head keeps copies of the same tensors
/// (shared storage and autodiff node), so loading a state dict or an optimizer step writes the
/// values in place and the head sees them.
public final class ParameterSet: @unchecked Sendable {
    public private(set) var names: [String] = []
    public private(set) var tensors: [String: Tensor] = [:]

    public init() {}

    /// Registers `value` under `name` as a new leaf and returns it.
    @discardableResult
    public func add(_ name: String, _ value: Tensor) -> Tensor {
        precondition(tensors[name] == nil, "parameter '\(name)' registered twice")
        let t = value.copy().requiringGrad()
        names.append(name); tensors[name] = t
        return t
    }

    public subscript(_ name: String) -> Tensor { tensors[name]! }

    /// In registration order.
    public var all: [Tensor] { names.map { tensors[$0]! } }

    public var scalarCount: Int { all.reduce(0) { $0 + $1.count } }

    /// Detached copies of every parameter, by name.
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for n in names { d[n] = tensors[n]!.detached().copy() }
        return d
    }

    /// Copies values in place. Every parameter must be present with its shape; with `strict`,
    /// extra names are errors (else ignored).
    public func load(_ dict: [String: Tensor], strict: Bool = true, source: String = "state dict") throws {
        for n in names {
            guard let v = dict[n] else { throw HeadError.missingParameter(name: n, source: source) }
            let t = tensors[n]!
            guard v.shape == t.shape else { throw HeadError.shapeMismatch(name: n, expected: t.shape, got: v.shape, source: source) }
            v.withUnsafeBufferPointer { src in t.storage.pointer.update(from: src.baseAddress!, count: t.count) }
        }
        if strict, let extra = dict.keys.filter({ tensors[$0] == nil }).sorted().first {
            throw HeadError.unexpectedParameter(name: extra, source: source)
        }
    }

    public func zeroGrad() { for t in tensors.values { t.zeroGrad() } }
}

/// PyTorch-default initialisers.
public enum Init {
    /// U(−bound, bound).
    public static func uniform(_ shape: [Int], bound: Float, _ g: inout RandomGenerator) -> Tensor {
        Tensor.uniform(shape, low: -bound, high: bound, generator: &g)
    }
    /// torch.nn.Linear: weight and bias U(−1/√in, 1/√in).
    public static func linear(_ p: ParameterSet, _ name: String, input: Int, output: Int, bias: Bool = true,
                              _ g: inout RandomGenerator) -> LinearParameters {
        let b = 1 / Float(input).squareRoot()
        let w = p.add(name + ".weight", uniform([output, input], bound: b, &g))
        let bb = bias ? p.add(name + ".bias", uniform([output], bound: b, &g)) : nil
        return LinearParameters(weight: w, bias: bb)
    }
    /// torch.nn.LayerNorm: weight 1, bias 0.
    public static func layerNorm(_ p: ParameterSet, _ name: String, _ d: Int) -> LayerNormParameters {
        LayerNormParameters(weight: p.add(name + ".weight", Tensor(ones: [d])), bias: p.add(name + ".bias", Tensor(zeros: [d])))
    }
    /// torch.nn.MultiheadAttention (batch_first, q/k/v all `dim` wide): in_proj xavier-uniform,
    /// biases 0, out_proj as a Linear.
    public static func attention(_ p: ParameterSet, _ name: String, dim: Int, heads: Int, _ g: inout RandomGenerator) -> AttentionParameters {
        precondition(dim % heads == 0, "attention '\(name)': dim \(dim) is not divisible by heads \(heads)")
        let xb = (6 / Float(dim + 3 * dim)).squareRoot()
        let w = p.add(name + ".in_proj_weight", uniform([3 * dim, dim], bound: xb, &g))
        let b = p.add(name + ".in_proj_bias", Tensor(zeros: [3 * dim]))
        let ob = 1 / Float(dim).squareRoot()
        let ow = p.add(name + ".out_proj.weight", uniform([dim, dim], bound: ob, &g))
        let obias = p.add(name + ".out_proj.bias", Tensor(zeros: [dim]))
        return AttentionParameters(inWeight: w, inBias: b, outWeight: ow, outBias: obias, heads: heads)
    }
    /// torch.nn.GRUCell: every tensor U(−1/√hidden, 1/√hidden); gates r, z, n.
    public static func gru(_ p: ParameterSet, _ name: String, input: Int, hidden: Int, _ g: inout RandomGenerator) -> GRUParameters {
        let b = 1 / Float(hidden).squareRoot()
        return GRUParameters(
            weightIH: p.add(name + ".weight_ih", uniform([3 * hidden, input], bound: b, &g)),
            weightHH: p.add(name + ".weight_hh", uniform([3 * hidden, hidden], bound: b, &g)),
            biasIH: p.add(name + ".bias_ih", uniform([3 * hidden], bound: b, &g)),
            biasHH: p.add(name + ".bias_hh", uniform([3 * hidden], bound: b, &g)))
    }
}

/// y = x·Wᵀ + b. x: [..., in] → [..., out].
public struct LinearParameters: Sendable {
    public var weight: Tensor
    public var bias: Tensor?
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// LayerNorm over the last axis (eps 1e-5).
public struct LayerNormParameters: Sendable {
    public var weight: Tensor
    public var bias: Tensor
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias) }
}

/// Multi-head attention as torch.nn.MultiheadAttention(batch_first=True) with q, k, v of the
/// same width `d`: Q = q·Wqᵀ + bq (rows 0..<d of in_proj), K, V likewise, split into `heads`,
/// softmax(QKᵀ/√dₕ + mask)·V, heads joined, out_proj.
public struct AttentionParameters: Sendable {
    public var inWeight: Tensor   // [3d, d]
    public var inBias: Tensor     // [3d]
    public var outWeight: Tensor  // [d, d]
    public var outBias: Tensor    // [d]
    public var heads: Int

    /// query [B, Lq, d], key = value [B, Lk, d]; `keyMask` [B, Lk] with 1 = attend, 0 = padding
    /// (additive −∞, as key_padding_mask). Returns [B, Lq, d] and the head-averaged attention
    /// weights [B, Lq, Lk] when `weights` is true.
    public func callAsFunction(query: Tensor, keyValue: Tensor, keyMask: Tensor? = nil, weights: Bool = false) -> (output: Tensor, weights: Tensor?) {
        let d = outWeight.shape[0]
        precondition(query.rank == 3 && keyValue.rank == 3 && query.shape[2] == d && keyValue.shape[2] == d && query.shape[0] == keyValue.shape[0],
                     "attention: query \(query.shape) / key \(keyValue.shape) must be [B, L, \(d)] with the same B")
        let b = query.shape[0], lq = query.shape[1], lk = keyValue.shape[1], h = heads, dh = d / h
        let wq = inWeight.narrow(axis: 0, start: 0, length: d), bq = inBias.narrow(axis: 0, start: 0, length: d)
        let wkv = inWeight.narrow(axis: 0, start: d, length: 2 * d), bkv = inBias.narrow(axis: 0, start: d, length: 2 * d)
        let q = linear(query, weight: wq, bias: bq).reshaped([b, lq, h, dh]).permuted([0, 2, 1, 3])
        let kv = linear(keyValue, weight: wkv, bias: bkv).reshaped([b, lk, 2, h, dh]).permuted([2, 0, 3, 1, 4])  // [2, B, h, Lk, dh]
        let k = kv.select(axis: 0, index: 0), v = kv.select(axis: 0, index: 1)
        var scores = matmulTransposedB(q, k) * (1 / Float(dh).squareRoot())          // [B, h, Lq, Lk]
        if let keyMask {
            precondition(keyMask.shape == [b, lk], "attention: key mask \(keyMask.shape) != [\(b), \(lk)]")
            scores = scores + AttentionParameters.additiveMask(keyMask).reshaped([b, 1, 1, lk])
        }
        let a = softmax(scores, axis: -1)
        let o = matmul(a, v).permuted([0, 2, 1, 3]).reshaped([b, lq, d])
        return (linear(o, weight: outWeight, bias: outBias), weights ? a.mean(axis: 1) : nil)
    }

    /// 0 where mask ≠ 0, −∞ where it is 0. No graph.
    public static func additiveMask(_ mask: Tensor) -> Tensor {
        let m = mask.detached()
        return Tensor(shape: m.shape) { p in m.withUnsafeBufferPointer { s in for i in 0..<s.count { p[i] = s[i] != 0 ? 0 : -.infinity } } }
    }
}

/// torch.nn.GRUCell: r = σ(Wᵢᵣx + bᵢᵣ + Wₕᵣh + bₕᵣ), z = σ(…), n = tanh(Wᵢₙx + bᵢₙ + r⊙(Wₕₙh + bₕₙ)),
/// h′ = (1 − z)⊙n + z⊙h. x: [..., in], h: [..., hidden].
public struct GRUParameters: Sendable {
    public var weightIH: Tensor, weightHH: Tensor, biasIH: Tensor, biasHH: Tensor
    public func callAsFunction(_ x: Tensor, _ h: Tensor) -> Tensor {
        let hd = weightHH.shape[1]
        let gi = linear(x, weight: weightIH, bias: biasIH).split(size: hd, axis: -1)
        let gh = linear(h, weight: weightHH, bias: biasHH).split(size: hd, axis: -1)
        let r = sigmoid(gi[0] + gh[0]), z = sigmoid(gi[1] + gh[1])
        let n = tanh(gi[2] + r * gh[2])
        return n + z * (h - n)
    }
}
