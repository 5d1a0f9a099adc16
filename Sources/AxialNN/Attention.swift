import AxialTensor
import Foundation

/// torch.nn.MultiheadAttention (kdim = vdim = embedDimensions), batch-first by default.
///
/// query [B, Lq, E], key [B, Lk, E], value [B, Lk, E] → ([B, Lq, E], weights [B, Lq, Lk] or
/// [B, H, Lq, Lk] when `averageWeights` is false; `nil` unless `needWeights`).
///   q, k, v = x·W_{q,k,v}ᵀ + b (rows 0..<E, E..<2E, 2E..<3E of `in_proj_weight`)
///   per head: softmax(q·kᵀ/√(E/H) + mask)·v, heads concatenated, then `out_proj`.
/// Masks follow torch's MultiheadAttention (not SDPA): `keyPaddingMask` [B, Lk] nonzero = *ignore*
/// that key; `attentionMask` [Lq, Lk] or [B·H, Lq, Lk] is boolean (nonzero = *not allowed*) or
/// additive (float, added to the scores). A row with every key masked gives NaN, as torch.
/// Dropout on the attention weights in training mode (`DefaultGenerator`).
///
/// Keys: `in_proj_weight` [3E, E], `in_proj_bias` [3E], `out_proj.weight` [E, E], `out_proj.bias` [E].
/// Init as torch: in_proj_weight xavier_uniform, biases 0, out_proj.weight kaiming_uniform(a=√5).
public final class MultiheadAttention: Module {
    public let inProjWeight: Parameter
    public let inProjBias: Parameter?
    public let outProj: Linear
    public let embedDimensions: Int, numHeads: Int
    public let dropout: Float
    public let batchFirst: Bool

    /// How `attentionMask` is read.
    public enum MaskKind: Sendable { case boolean, additive }

    public init(embedDimensions: Int, numHeads: Int, dropout: Float = 0, bias: Bool = true, batchFirst: Bool = true,
                generator: inout RandomGenerator) {
        precondition(embedDimensions % numHeads == 0, "MultiheadAttention: embed \(embedDimensions) not divisible by \(numHeads) heads")
        self.embedDimensions = embedDimensions; self.numHeads = numHeads; self.dropout = dropout; self.batchFirst = batchFirst
        inProjWeight = Parameter(Initializer.xavierUniform([3 * embedDimensions, embedDimensions], generator: &generator))
        inProjBias = bias ? Parameter(Tensor(zeros: [3 * embedDimensions])) : nil
        outProj = Linear(embedDimensions, embedDimensions, bias: bias, generator: &generator)
        if let b = outProj.bias { b.assign(Tensor(zeros: [embedDimensions])) }
        super.init()
    }

    public convenience init(embedDimensions: Int, numHeads: Int, dropout: Float = 0, bias: Bool = true, batchFirst: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(embedDimensions: embedDimensions, numHeads: numHeads, dropout: dropout, bias: bias, batchFirst: batchFirst, generator: &g)
    }

    /// Self-attention shorthand: `attention(x)` = `attention(x, x, x).output`.
    public func callAsFunction(_ x: Tensor, keyPaddingMask: Tensor? = nil) -> Tensor {
        callAsFunction(x, x, x, keyPaddingMask: keyPaddingMask, needWeights: false).output
    }

    public func callAsFunction(_ query: Tensor, _ key: Tensor, _ value: Tensor, keyPaddingMask: Tensor? = nil,
                               attentionMask: Tensor? = nil, maskKind: MaskKind = .boolean,
                               needWeights: Bool = true, averageWeights: Bool = true) -> (output: Tensor, weights: Tensor?) {
        let E = embedDimensions, H = numHeads, hd = E / H
        var (q0, k0, v0) = (query, key, value)
        if !batchFirst { q0 = q0.transposed(0, 1); k0 = k0.transposed(0, 1); v0 = v0.transposed(0, 1) }
        precondition(q0.rank == 3 && q0.shape[2] == E, "MultiheadAttention: query \(query.shape) must be [B, L, \(E)]")
        precondition(k0.rank == 3 && k0.shape[2] == E && v0.shape == k0.shape, "MultiheadAttention: key \(key.shape) / value \(value.shape) must be [B, Lk, \(E)]")
        let B = q0.shape[0], Lq = q0.shape[1], Lk = k0.shape[1]
        precondition(k0.shape[0] == B, "MultiheadAttention: batch of key \(k0.shape) != query \(q0.shape)")
        let w = inProjWeight.value, b = inProjBias?.value
        var q: Tensor, k: Tensor, v: Tensor
        let selfAttention = query.storage === key.storage && key.storage === value.storage && query.shape == key.shape
        if selfAttention {
            let qkv = linear(q0, weight: w, bias: b)                       // [B, L, 3E]
            let parts = qkv.split(sizes: [E, E, E], axis: 2)
            (q, k, v) = (parts[0], parts[1], parts[2])
        } else {
            let ws = w.split(sizes: [E, E, E], axis: 0)
            let bs = b?.split(sizes: [E, E, E], axis: 0)
            q = linear(q0, weight: ws[0], bias: bs?[0])
            k = linear(k0, weight: ws[1], bias: bs?[1])
            v = linear(v0, weight: ws[2], bias: bs?[2])
        }
        // [B, L, E] → [B, H, L, hd]
        q = q.reshaped([B, Lq, H, hd]).permuted([0, 2, 1, 3])
        k = k.reshaped([B, Lk, H, hd]).permuted([0, 2, 1, 3])
        v = v.reshaped([B, Lk, H, hd]).permuted([0, 2, 1, 3])
        var scores = matmulTransposedB(q * (1 / Float(hd).squareRoot()), k)   // [B, H, Lq, Lk]
        if let m = attentionMask {
            let mm: Tensor
            if m.rank == 2 {
                precondition(m.shape == [Lq, Lk], "MultiheadAttention: attentionMask \(m.shape) != [\(Lq), \(Lk)]")
                mm = m
            } else {
                precondition(m.shape == [B * H, Lq, Lk], "MultiheadAttention: attentionMask \(m.shape) != [\(B * H), \(Lq), \(Lk)]")
                mm = m.reshaped([B, H, Lq, Lk])
            }
            switch maskKind {
            case .boolean: scores = scores.maskedFill(mm.detached(), -.infinity)
            case .additive: scores = scores + mm
            }
        }
        if let kp = keyPaddingMask {
            precondition(kp.shape == [B, Lk], "MultiheadAttention: keyPaddingMask \(kp.shape) != [\(B), \(Lk)]")
            scores = scores.maskedFill(kp.detached().reshaped([B, 1, 1, Lk]), -.infinity)
        }
        var attn = softmax(scores, axis: -1)
        if isTraining && dropout > 0 { attn = DefaultGenerator.with { g in AxialTensor.dropout(attn, p: dropout, generator: &g) } }
        let ctx = matmul(attn, v).permuted([0, 2, 1, 3]).reshaped([B, Lq, E])
        var out = outProj(ctx)
        if !batchFirst { out = out.transposed(0, 1) }
        var weights: Tensor? = nil
        if needWeights { weights = averageWeights ? attn.mean(axis: 1) : attn }
        return (out, weights)
    }
}

// MARK: Recurrent cells

/// torch's RNNCellBase parameters for `gates` stacked gates: `weight_ih` [gates·H, in], `weight_hh`
/// [gates·H, H], then (with `bias`) `bias_ih`, `bias_hh` [gates·H], all U(±1/√H), drawn in that order.
private func recurrentCellParameters(gates: Int, _ inputDimensions: Int, _ hiddenDimensions: Int, bias: Bool,
                                     generator: inout RandomGenerator) -> (Parameter, Parameter, Parameter?, Parameter?) {
    let bound = 1 / Float(hiddenDimensions).squareRoot(), rows = gates * hiddenDimensions
    let weightIh = Parameter(Initializer.uniform([rows, inputDimensions], bound: bound, generator: &generator))
    let weightHh = Parameter(Initializer.uniform([rows, hiddenDimensions], bound: bound, generator: &generator))
    let biasIh = bias ? Parameter(Initializer.uniform([rows], bound: bound, generator: &generator)) : nil
    let biasHh = bias ? Parameter(Initializer.uniform([rows], bound: bound, generator: &generator)) : nil
    return (weightIh, weightHh, biasIh, biasHh)
}

/// torch.nn.GRUCell. x [B, in], h [B, hidden] → h' [B, hidden]; gates in (r, z, n) order:
///   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.
/// Keys `weight_ih` [3H, in], `weight_hh` [3H, H], `bias_ih`, `bias_hh` [3H]. Init U(±1/√H).
public final class GRUCell: Module {
    public let weightIh: Parameter, weightHh: Parameter
    public let biasIh: Parameter?, biasHh: Parameter?
    public let inputDimensions: Int, hiddenDimensions: Int

    public init(_ inputDimensions: Int, _ hiddenDimensions: Int, bias: Bool = true, generator: inout RandomGenerator) {
        self.inputDimensions = inputDimensions; self.hiddenDimensions = hiddenDimensions
        (weightIh, weightHh, biasIh, biasHh) = recurrentCellParameters(gates: 3, inputDimensions, hiddenDimensions, bias: bias, generator: &generator)
        super.init()
    }

    public convenience init(_ inputDimensions: Int, _ hiddenDimensions: Int, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inputDimensions, hiddenDimensions, bias: bias, generator: &g)
    }

    /// One step; `hidden` defaults to zeros.
    public func callAsFunction(_ x: Tensor, hidden: Tensor? = nil) -> Tensor {
        let Hd = hiddenDimensions
        precondition(x.rank == 2 && x.shape[1] == inputDimensions, "GRUCell: input \(x.shape) must be [B, \(inputDimensions)]")
        let h = hidden ?? Tensor(zeros: [x.shape[0], Hd])
        precondition(h.shape == [x.shape[0], Hd], "GRUCell: hidden \(h.shape) must be [\(x.shape[0]), \(Hd)]")
        let gi = linear(x, weight: weightIh.value, bias: biasIh?.value).split(sizes: [Hd, Hd, Hd], axis: 1)
        let gh = linear(h, weight: weightHh.value, bias: biasHh?.value).split(sizes: [Hd, Hd, Hd], axis: 1)
        let r = sigmoid(gi[0] + gh[0])
        let z = sigmoid(gi[1] + gh[1])
        let n = tanh(gi[2] + r * gh[2])
        return (1 - z) * n + z * h
    }
}

/// torch.nn.LSTMCell. x [B, in], (h, c) [B, hidden] → (h', c'); gates in (i, f, g, o) order:
///   i, f, o = σ(·), g = tanh(·) of W_ih x + b_ih + W_hh h + b_hh;  c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c').
/// Keys `weight_ih` [4H, in], `weight_hh` [4H, H], `bias_ih`, `bias_hh` [4H]. Init U(±1/√H).
public final class LSTMCell: Module {
    public let weightIh: Parameter, weightHh: Parameter
    public let biasIh: Parameter?, biasHh: Parameter?
    public let inputDimensions: Int, hiddenDimensions: Int

    public init(_ inputDimensions: Int, _ hiddenDimensions: Int, bias: Bool = true, generator: inout RandomGenerator) {
        self.inputDimensions = inputDimensions; self.hiddenDimensions = hiddenDimensions
        (weightIh, weightHh, biasIh, biasHh) = recurrentCellParameters(gates: 4, inputDimensions, hiddenDimensions, bias: bias, generator: &generator)
        super.init()
    }

    public convenience init(_ inputDimensions: Int, _ hiddenDimensions: Int, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inputDimensions, hiddenDimensions, bias: bias, generator: &g)
    }

    /// One step; the state defaults to zeros.
    public func callAsFunction(_ x: Tensor, state: (hidden: Tensor, cell: Tensor)? = nil) -> (hidden: Tensor, cell: Tensor) {
        let Hd = hiddenDimensions
        precondition(x.rank == 2 && x.shape[1] == inputDimensions, "LSTMCell: input \(x.shape) must be [B, \(inputDimensions)]")
        let h = state?.hidden ?? Tensor(zeros: [x.shape[0], Hd]), c = state?.cell ?? Tensor(zeros: [x.shape[0], Hd])
        precondition(h.shape == [x.shape[0], Hd] && c.shape == h.shape, "LSTMCell: state \(h.shape)/\(c.shape) must be [\(x.shape[0]), \(Hd)]")
        let gates = (linear(x, weight: weightIh.value, bias: biasIh?.value) + linear(h, weight: weightHh.value, bias: biasHh?.value))
            .split(sizes: [Hd, Hd, Hd, Hd], axis: 1)
        let i = sigmoid(gates[0]), f = sigmoid(gates[1]), g = tanh(gates[2]), o = sigmoid(gates[3])
        let c2 = f * c + i * g
        return (o * tanh(c2), c2)
    }
}
