import AxialTensor
import Foundation

// Optimizers with PyTorch's update rules (single-tensor CPU path, same operation order), state as
// named tensors for checkpoints, and parameter groups with their own learning rates.

/// A set of parameters sharing hyper-parameters. `lr` and `weightDecay` are Doubles (as torch's
/// Python floats); schedules write `lr`.
public struct ParameterGroup {
    public var parameters: [Parameter]
    public var lr: Double
    /// Overrides the optimizer's weight decay for this group when set.
    public var weightDecay: Double?
    /// A label for logs.
    public var name: String

    public init(_ parameters: [Parameter], lr: Double, weightDecay: Double? = nil, name: String = "") {
        self.parameters = parameters; self.lr = lr; self.weightDecay = weightDecay; self.name = name
    }
}

/// Errors from optimizer state loading.
public enum OptimizerError: Error, CustomStringConvertible {
    case stateMismatch(String)
    public var description: String {
        switch self { case .stateMismatch(let s): return "optimizer state does not match: \(s)" }
    }
}

/// Common interface of SGD, Adam and AdamW.
public protocol Optimizer: AnyObject {
    var groups: [ParameterGroup] { get set }
    /// Number of `step()` calls so far.
    var stepCount: Int { get }
    /// Applies one update from the parameters' current gradients (parameters without a gradient
    /// or frozen are skipped, as torch skips `grad is None`).
    func step()
    /// Named state tensors (`state.<k>.<buffer>` with k the parameter's index over all groups,
    /// `group.<g>.lr`, `step`) for checkpoints.
    func stateDict() -> [String: Tensor]
    /// Restores what `stateDict()` returned (same parameter layout).
    func loadStateDict(_ state: [String: Tensor]) throws
}

extension Optimizer {
    /// Clears the gradients of every parameter in every group.
    public func zeroGrad() { for g in groups { for p in g.parameters { p.zeroGrad() } } }
    /// The learning rate of each group.
    public var learningRates: [Double] { groups.map(\.lr) }
    /// Sets every group's learning rate.
    public func setLearningRate(_ lr: Double) { for i in groups.indices { groups[i].lr = lr } }
}

/// Per-parameter optimizer state: named Float buffers, lazily created.
final class SlotState {
    var slots: [[String: Tensor]]
    var steps: [Int]
    init(count: Int) { slots = Array(repeating: [:], count: count); steps = Array(repeating: 0, count: count) }

    func save(into out: inout [String: Tensor]) {
        for (k, s) in slots.enumerated() {
            for (name, t) in s { out["state.\(k).\(name)"] = t }
            if steps[k] > 0 { out["state.\(k).step"] = Tensor(Float(steps[k])) }
        }
    }

    func load(_ state: [String: Tensor], shapes: [[Int]], names: [String]) throws {
        var newSlots: [[String: Tensor]] = Array(repeating: [:], count: shapes.count)
        var newSteps = Array(repeating: 0, count: shapes.count)
        for (key, t) in state where key.hasPrefix("state.") {
            let parts = key.split(separator: ".")
            guard parts.count == 3, let k = Int(parts[1]), k < shapes.count else {
                throw OptimizerError.stateMismatch("key \(key) names no parameter (have \(shapes.count))")
            }
            let name = String(parts[2])
            if name == "step" { newSteps[k] = Int(t.item()); continue }
            guard names.contains(name) else { throw OptimizerError.stateMismatch("unknown state buffer \(key)") }
            guard t.shape == shapes[k] else { throw OptimizerError.stateMismatch("\(key) has shape \(t.shape), parameter \(k) has \(shapes[k])") }
            newSlots[k][name] = t.copy()
        }
        slots = newSlots; steps = newSteps
    }

    /// An optimizer's whole state: `step`, `group.<g>.lr` and the per-parameter buffers.
    func stateDict(stepCount: Int, groups: [ParameterGroup]) -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for (g, group) in groups.enumerated() { out["group.\(g).lr"] = Tensor(Float(group.lr)) }
        save(into: &out)
        return out
    }

    /// Restores what `stateDict(stepCount:groups:)` wrote: the buffers (`names` allowed), then the
    /// groups' learning rates; returns the step count. Throws before changing anything on a mismatch.
    func load(_ state: [String: Tensor], groups: inout [ParameterGroup], names: [String]) throws -> Int {
        // Parameter k over all groups, in group order, is `state.<k>.*`.
        try load(state, shapes: groups.flatMap(\.parameters).map(\.shape), names: names)
        for g in groups.indices { if let lr = state["group.\(g).lr"] { groups[g].lr = lrFromState(lr, current: groups[g].lr) } }
        return Int(state["step"]?.item() ?? 0)
    }
}

@inline(__always)
private func withParameterPointers(_ p: Parameter, _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) -> Bool {
    guard !p.isFrozen, let g = p.grad else { return false }
    g.withUnsafeBufferPointer { gp in
        p.value.withUnsafeMutableBufferPointer { pp in
            body(pp.baseAddress!, gp.baseAddress!, pp.count)
        }
    }
    return true
}

/// Stochastic gradient descent as torch.optim.SGD:
///   g ← grad + wd·p;  with momentum μ: b ← g (first step) else μ·b + (1−dampening)·g;
///   g ← g + μ·b (Nesterov) or b;  p ← p − lr·g.
/// State: `state.<k>.momentum_buffer`.
public final class SGD: Optimizer {
    public var groups: [ParameterGroup]
    public let momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool
    public private(set) var stepCount = 0
    private var state: SlotState

    public init(_ groups: [ParameterGroup], momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov needs momentum > 0 and dampening 0")
        self.groups = groups; self.momentum = momentum; self.dampening = dampening; self.weightDecay = weightDecay; self.nesterov = nesterov
        state = SlotState(count: groups.reduce(0) { $0 + $1.parameters.count })
    }

    public convenience init(_ parameters: [Parameter], lr: Double, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false) {
        self.init([ParameterGroup(parameters, lr: lr)], momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov)
    }

    public func step() {
        stepCount += 1
        var k = 0
        for group in groups {
            let lr = Float(group.lr), wd = Float(group.weightDecay ?? weightDecay)
            let mu = Float(momentum), damp = Float(1 - dampening), nest = nesterov
            for p in group.parameters {
                defer { k += 1 }
                guard !p.isFrozen, p.grad != nil else { continue }
                state.steps[k] += 1
                if momentum == 0 {
                    _ = withParameterPointers(p) { w, g, n in
                        for i in 0..<n { var d = g[i]; if wd != 0 { d = d + wd * w[i] }; w[i] = w[i] - lr * d }
                    }
                    continue
                }
                let first = state.slots[k]["momentum_buffer"] == nil
                var buf = state.slots[k].removeValue(forKey: "momentum_buffer") ?? Tensor(zeros: p.shape)
                buf.withUnsafeMutableBufferPointer { bb in
                    let b = bb.baseAddress!
                    _ = withParameterPointers(p) { w, g, n in
                        for i in 0..<n {
                            var d = g[i]
                            if wd != 0 { d = d + wd * w[i] }
                            b[i] = first ? d : mu * b[i] + damp * d
                            d = nest ? d + mu * b[i] : b[i]
                            w[i] = w[i] - lr * d
                        }
                    }
                }
                state.slots[k]["momentum_buffer"] = buf
            }
        }
    }

    public func stateDict() -> [String: Tensor] { state.stateDict(stepCount: stepCount, groups: groups) }

    public func loadStateDict(_ s: [String: Tensor]) throws {
        stepCount = try state.load(s, groups: &groups, names: ["momentum_buffer"])
    }
}

/// Float32 round-trip of a learning rate: keep the Double if it rounds to the stored value.
func lrFromState(_ t: Tensor, current: Double) -> Double {
    let f = t.item()
    return Float(current) == f ? current : Double(f)
}

/// Adam / AdamW as torch.optim.Adam and torch.optim.AdamW (t = per-parameter step count):
///   Adam:  g ← grad + wd·p.       AdamW: p ← p·(1 − lr·wd) (decoupled).
///   m ← m + (1−β₁)(g − m);  v ← β₂·v + (1−β₂)·g²;  (amsgrad: v̂ ← max(v̂, v), use v̂)
///   p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps)
/// Bias corrections and step size are computed in Double, as torch's Python scalars.
/// State: `state.<k>.exp_avg`, `exp_avg_sq`, (`max_exp_avg_sq`), `step`.
public final class Adam: Optimizer {
    public var groups: [ParameterGroup]
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    /// AdamW's decoupled weight decay (else L2 added to the gradient, as Adam).
    public let decoupledWeightDecay: Bool
    public let amsgrad: Bool
    public private(set) var stepCount = 0
    private var state: SlotState

    public init(_ groups: [ParameterGroup], betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, decoupledWeightDecay: Bool = false, amsgrad: Bool = false) {
        self.groups = groups; beta1 = betas.0; beta2 = betas.1; self.eps = eps; self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay; self.amsgrad = amsgrad
        state = SlotState(count: groups.reduce(0) { $0 + $1.parameters.count })
    }

    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                            weightDecay: Double = 0, amsgrad: Bool = false) {
        self.init([ParameterGroup(parameters, lr: lr)], betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad)
    }

    public func step() {
        stepCount += 1
        var k = 0
        for group in groups {
            let lrD = group.lr, wdD = group.weightDecay ?? weightDecay
            for p in group.parameters {
                defer { k += 1 }
                guard !p.isFrozen, let grad = p.grad else { continue }
                if state.slots[k].isEmpty {
                    state.slots[k]["exp_avg"] = Tensor(zeros: grad.shape)
                    state.slots[k]["exp_avg_sq"] = Tensor(zeros: grad.shape)
                    if amsgrad { state.slots[k]["max_exp_avg_sq"] = Tensor(zeros: grad.shape) }
                }
                state.steps[k] += 1
                let t = Double(state.steps[k])
                let bc1 = 1 - Foundation.pow(beta1, t), bc2 = 1 - Foundation.pow(beta2, t)
                let stepSize = Float(lrD / bc1), bc2Sqrt = Float(bc2.squareRoot())
                let b1 = Float(1 - beta1), b2 = Float(beta2), ob2 = Float(1 - beta2), e = Float(eps)
                let wd = Float(wdD), decay = Float(1 - lrD * wdD), decoupled = decoupledWeightDecay
                var m = state.slots[k].removeValue(forKey: "exp_avg")!
                var v = state.slots[k].removeValue(forKey: "exp_avg_sq")!
                var vmax = state.slots[k].removeValue(forKey: "max_exp_avg_sq")
                var vmaxStore = vmax ?? Tensor(zeros: [0])
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        vmaxStore.withUnsafeMutableBufferPointer { xb in
                            let mp = mb.baseAddress!, vp = vb.baseAddress!
                            let vmp: UnsafeMutablePointer<Float>? = vmax == nil ? nil : xb.baseAddress!
                            _ = withParameterPointers(p) { w, g, n in
                                if vmp == nil {
                                    // The common case in a branch-free loop the compiler vectorises
                                    // (same operations and order as below).
                                    let dec: Float = decoupled && wdD != 0 ? decay : 1
                                    let l2: Float = !decoupled && wdD != 0 ? wd : 0
                                    for i in 0..<n {
                                        let wi = w[i] * dec
                                        let gi = l2 == 0 ? g[i] : g[i] + l2 * wi
                                        let mi = mp[i] + b1 * (gi - mp[i])
                                        let vi = vp[i] * b2 + ob2 * gi * gi
                                        mp[i] = mi; vp[i] = vi
                                        w[i] = wi - stepSize * (mi / (vi.squareRoot() / bc2Sqrt + e))
                                    }
                                    return
                                }
                                for i in 0..<n {
                                    var gi = g[i]
                                    if decoupled { if wdD != 0 { w[i] = w[i] * decay } } else if wdD != 0 { gi = gi + wd * w[i] }
                                    let mi = mp[i] + b1 * (gi - mp[i])
                                    let vi = vp[i] * b2 + ob2 * gi * gi
                                    mp[i] = mi; vp[i] = vi
                                    var vv = vi
                                    if let vmp { let mx = Swift.max(vmp[i], vi); vmp[i] = mx; vv = mx }
                                    let denom = vv.squareRoot() / bc2Sqrt + e
                                    w[i] = w[i] - stepSize * (mi / denom)
                                }
                            }
                        }
                    }
                }
                if vmax != nil { vmax = vmaxStore }
                state.slots[k]["exp_avg"] = m
                state.slots[k]["exp_avg_sq"] = v
                if let vmax { state.slots[k]["max_exp_avg_sq"] = vmax }
            }
        }
    }

    public func stateDict() -> [String: Tensor] { state.stateDict(stepCount: stepCount, groups: groups) }

    public func loadStateDict(_ s: [String: Tensor]) throws {
        stepCount = try state.load(s, groups: &groups, names: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
    }
}

/// torch.optim.AdamW: Adam with decoupled weight decay (default wd 0.01).
public func AdamW(_ groups: [ParameterGroup], betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                  weightDecay: Double = 1e-2, amsgrad: Bool = false) -> Adam {
    Adam(groups, betas: betas, eps: eps, weightDecay: weightDecay, decoupledWeightDecay: true, amsgrad: amsgrad)
}

/// torch.optim.AdamW over one group.
public func AdamW(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                  weightDecay: Double = 1e-2, amsgrad: Bool = false) -> Adam {
    AdamW([ParameterGroup(parameters, lr: lr)], betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad)
}

// MARK: Weight averaging

/// target ← m·target + (1 − m)·source for every parameter (and buffer when `includeBuffers`)
/// with the same key — the MoCo momentum-encoder update. Keys of `target` must exist in `source`.
public func momentumUpdate(target: Module, source: Module, momentum m: Float, includeBuffers: Bool = false) {
    let src = Dictionary(uniqueKeysWithValues: source.namedParameters().map { ($0.0, $0.1) })
    for (key, tp) in target.namedParameters() {
        guard let sp = src[key] else { preconditionFailure("momentumUpdate: source has no parameter \(key)") }
        precondition(sp.shape == tp.shape, "momentumUpdate: \(key) shapes \(tp.shape) vs \(sp.shape)")
        let om = 1 - m
        sp.value.withUnsafeBufferPointer { s in
            tp.value.withUnsafeMutableBufferPointer { t in for i in 0..<t.count { t[i] = m * t[i] + om * s[i] } }
        }
    }
    if includeBuffers {
        let sb = Dictionary(uniqueKeysWithValues: source.namedBuffers().map { ($0.0, $0.1) })
        for (key, tb) in target.namedBuffers() {
            guard let b = sb[key] else { continue }
            tb.value = m * tb.value + (1 - m) * b.value
        }
    }
}

/// An exponential moving average of a model's weights (timm's ModelEma, used by PsPG):
/// after each `update(from:)`, every state entry e ← decay·e + (1 − decay)·value (parameters and
/// float buffers). `shadow` is a separate module of the same architecture (pass a fresh copy);
/// its state saves/loads like any module's.
public final class ExponentialMovingAverage {
    public let shadow: Module
    public var decay: Float
    public init(shadow: Module, copyingFrom model: Module, decay: Float) throws {
        self.shadow = shadow; self.decay = decay
        try shadow.copyWeights(from: model)
        shadow.freeze()
        shadow.eval()
    }
    public func update(from model: Module) {
        momentumUpdate(target: shadow, source: model, momentum: decay, includeBuffers: true)
    }
}
