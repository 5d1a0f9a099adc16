import AxialNN
import AxialTensor

/// Attention-based MIL as in CLEAR's downstream code (non-gated), with the padding fix.
///
///     h = ReLU(Linear(D, hidden)(x))                               [B, N, hidden]   encoder.*
///     s = Linear(attnHidden, 1)(tanh(Linear(hidden, attnHidden)(h)))  [B, N]        attention.V.*, attention.w.*
///     a = softmax over instances of s, padding masked (−∞)          [B, N]
///     z = Σₙ aₙ hₙ                                                 [B, hidden]
///     logits = Linear(hidden, C)(SiLU(Dropout(Linear(hidden, hidden)(LayerNorm(z)))))   head.norm/fc1/fc2
///
/// CLEAR: hidden = attnHidden = 256, head dropout 0.5. **[Q] fixed**: CLEAR does not mask padding.
public final class ABMIL: Module, MILHead, @unchecked Sendable {
    public let config: HeadConfig
    public let encoder, attentionV, attentionW, fc1, fc2: Linear
    public let norm: LayerNorm

    public init(_ config: HeadConfig, generator g: inout RandomGenerator) {
        self.config = config
        let d = config.inputDimension, h = config.hidden, ah = config.attentionHidden
        encoder = Linear(d, h, generator: &g)
        attentionV = Linear(h, ah, generator: &g)
        attentionW = Linear(ah, 1, generator: &g)
        norm = LayerNorm(h)
        fc1 = Linear(h, h, generator: &g)
        fc2 = Linear(h, config.classes, generator: &g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("encoder", .module(encoder)), ("attention.V", .module(attentionV)), ("attention.w", .module(attentionW)),
         ("head.norm", .module(norm)), ("head.fc1", .module(fc1)), ("head.fc2", .module(fc2))]
    }

    public func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng g: inout RandomGenerator) -> HeadOutput {
        precondition(bags.rank == 3 && bags.shape[2] == config.inputDimension, "ABMIL: bags \(bags.shape) must be [B, N, \(config.inputDimension)]")
        let b = bags.shape[0], n = bags.shape[1]
        let h = Heads.encode(bags, encoder, config.inputDropout, training, &g)
        let s = attentionW(tanh(attentionV(h))).reshaped([b, n])
        let a = Heads.maskedSoftmax(s, mask: mask)
        let z = matmul(a.reshaped([b, 1, n]), h).reshaped([b, config.hidden])
        let y = fc2(silu(Heads.drop(fc1(norm(z)), config.headDropout, training, &g)))
        return HeadOutput(logits: y, attention: a)
    }
}

/// Gated attention MIL (Ilse et al. 2018; CLAM_SB without instance clustering), as peers/mil.py:
///
///     h = Dropout(ReLU(Linear(D, hidden)(x)))                       encoder.*
///     s = Linear(attnHidden, 1)(tanh(V h) ⊙ sigmoid(U h))           attention.V/U/w.*
///     a = masked softmax over instances;  z = Σ aₙ hₙ
///     logits = Linear(hidden, C)(z)                                 classifier.*
public final class GatedABMIL: Module, MILHead, @unchecked Sendable {
    public let config: HeadConfig
    public let encoder, attentionV, attentionU, attentionW, classifier: Linear

    public init(_ config: HeadConfig, generator g: inout RandomGenerator) {
        self.config = config
        let d = config.inputDimension, h = config.hidden, ah = config.attentionHidden
        encoder = Linear(d, h, generator: &g)
        attentionV = Linear(h, ah, generator: &g)
        attentionU = Linear(h, ah, generator: &g)
        attentionW = Linear(ah, 1, generator: &g)
        classifier = Linear(h, config.classes, generator: &g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("encoder", .module(encoder)), ("attention.V", .module(attentionV)), ("attention.U", .module(attentionU)),
         ("attention.w", .module(attentionW)), ("classifier", .module(classifier))]
    }

    public func forward(_ bags: Tensor, mask: Tensor, training: Bool, rng g: inout RandomGenerator) -> HeadOutput {
        precondition(bags.rank == 3 && bags.shape[2] == config.inputDimension, "GatedABMIL: bags \(bags.shape) must be [B, N, \(config.inputDimension)]")
        let b = bags.shape[0], n = bags.shape[1]
        let h = Heads.encode(bags, encoder, config.inputDropout, training, &g)
        // V and U in one GEMM (forward, and one for each gradient): [V; U] h + [b_V; b_U].
        let weight = concat([attentionV.weight.value, attentionU.weight.value], axis: 0)
        let bias = concat([attentionV.bias!.value, attentionU.bias!.value], axis: 0)
        let vu = linear(h, weight: weight, bias: bias)                    // [B, N, 2·attnHidden]
        let s = attentionW(Self.gate(vu)).reshaped([b, n])
        let a = Heads.maskedSoftmax(s, mask: mask)
        let z = matmul(a.reshaped([b, 1, n]), h).reshaped([b, config.hidden])
        return HeadOutput(logits: classifier(z), attention: a)
    }

    /// tanh(v) ⊙ σ(u) for x = [v | u] along the last axis ([..., 2k] → [..., k]), one fused pass;
    /// backward: ∂v = g·σ(u)·(1 − tanh²v), ∂u = g·tanh(v)·σ(u)(1 − σ(u)).
    static func gate(_ x: Tensor) -> Tensor {
        let k2 = x.shape[x.rank - 1], k = k2 / 2, rows = x.count / max(k2, 1)
        precondition(k2 % 2 == 0, "gate: last axis \(k2) must be even")
        let t = Tensor(shape: [rows, k], unsafeUninitialized: { _ in })
        let sg = Tensor(shape: [rows, k], unsafeUninitialized: { _ in })
        let y = Tensor(shape: Array(x.shape.dropLast()) + [k], unsafeUninitialized: { yb in
            HeadMath.gate(x.storage.pointer, rows: rows, k: k, t: t.storage.pointer, s: sg.storage.pointer, y: yb.baseAddress!)
        })
        let shape = x.shape
        return Tensor.record(y, inputs: [x], name: "tanhSigmoidGate") { g in
            let gx = Tensor(shape: shape, unsafeUninitialized: { gb in
                g.withUnsafeBufferPointer { gg in
                    let gp = gg.baseAddress!, dp = gb.baseAddress!, tp = t.storage.pointer, sp = sg.storage.pointer
                    for r in 0..<rows {
                        let dr = dp + r * k2, o = r * k
                        for j in 0..<k {
                            let gv = gp[o + j], tv = tp[o + j], sv = sp[o + j]
                            dr[j] = gv * sv * (1 - tv * tv)
                            dr[k + j] = gv * tv * sv * (1 - sv)
                        }
                    }
                }
            })
            return [gx]
        }
    }
}
