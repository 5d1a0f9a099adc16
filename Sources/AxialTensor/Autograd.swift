import Foundation

/// A node of the define-by-run autodiff graph.
///
/// A *leaf* node (`backward == nil`) belongs to a tensor made with `requiringGrad()` and
/// accumulates its gradient in `grad`. An *op* node holds the backward closure of the op that
/// produced a tensor and the nodes of its inputs (`nil` for inputs that need no gradient).
public final class GradNode: @unchecked Sendable {
    /// Shape of the tensor this node belongs to.
    public let shape: [Int]
    /// Input nodes, aligned with the closure's result; `nil` where an input needs no gradient.
    let inputs: [GradNode?]
    /// Maps the gradient of the output to the gradients of the inputs (nil = no contribution).
    var backwardFn: ((Tensor) -> [Tensor?])?
    /// Accumulated gradient (leaves only).
    var grad: Tensor?
    /// Whether this is a leaf.
    public let isLeaf: Bool
    /// The op's name, for debugging.
    public let name: String

    init(leafShape: [Int]) {
        shape = leafShape; inputs = []; backwardFn = nil; isLeaf = true; name = "leaf"
    }

    init(shape: [Int], inputs: [GradNode?], name: String, backward: @escaping (Tensor) -> [Tensor?]) {
        self.shape = shape; self.inputs = inputs; self.backwardFn = backward; isLeaf = false; self.name = name
    }
}

/// Grad mode, per task (and per thread outside tasks). `parallelFor` carries it into its workers.
enum GradMode {
    @TaskLocal static var enabled: Bool = true
}

/// Runs `body` with gradient recording off: ops record no graph and keep no intermediates.
/// Works from synchronous code, async code and inside `parallelFor` workers.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$enabled.withValue(false) { try body() }
}

/// Runs `body` with gradient recording on (inside a `withNoGrad` region, for example).
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$enabled.withValue(true) { try body() }
}

extension Tensor {
    /// Whether ops currently record the autodiff graph (false inside `withNoGrad`).
    public static var isGradEnabled: Bool { GradMode.enabled }

    /// Whether this tensor takes part in autodiff (a leaf made by `requiringGrad()` or the
    /// output of a recorded op). Setting `true` makes it a new leaf; `false` detaches it.
    public var requiresGrad: Bool {
        get { node != nil }
        set {
            if newValue { if node == nil || !(node!.isLeaf) { node = GradNode(leafShape: shape) } } else { node = nil }
        }
    }

    /// This tensor's autodiff node (a leaf's node identifies it in `backward(…, onLeafGradient:)`).
    public var gradNode: GradNode? { node }

    /// Whether this tensor is a leaf that accumulates a gradient.
    public var isLeaf: Bool { node?.isLeaf ?? true }

    /// A copy (sharing storage) that is a new autodiff leaf: `backward()` accumulates into its `grad`.
    public func requiringGrad() -> Tensor {
        var t = self
        t.node = GradNode(leafShape: shape)
        return t
    }

    /// The same values with no graph: gradients do not flow through the result.
    public func detached() -> Tensor {
        var t = self
        t.node = nil
        return t
    }

    /// PyTorch's name for `detached()`.
    public func detach() -> Tensor { detached() }

    /// The gradient accumulated by `backward()` calls (leaves only; `nil` before any).
    public var grad: Tensor? {
        get { node?.grad }
        nonmutating set {
            guard let node else { preconditionFailure("grad set on a tensor that does not require grad") }
            if let newValue { precondition(newValue.shape == shape, "grad shape \(newValue.shape) != tensor shape \(shape)") }
            node.grad = newValue?.detached()
        }
    }

    /// Clears the accumulated gradient (sets it to `nil`, as `zero_grad(set_to_none=True)`).
    public func zeroGrad() { node?.grad = nil }

    /// Records an op output on the graph when grad mode is on and some input requires grad.
    ///
    /// `backward` maps the output gradient (same shape as `output`) to one gradient per input,
    /// each with that input's shape (or `nil`). It runs with grad mode off. It must not capture
    /// the returned tensor (capture `output` before recording, which has no node, instead).
    @inlinable
    public static func record(_ output: Tensor, inputs: [Tensor], name: String = "op",
                              backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard isGradEnabled else { return output }
        return recordAlways(output, inputs: inputs, name: name, backward: backward)
    }

    @usableFromInline
    static func recordAlways(_ output: Tensor, inputs: [Tensor], name: String,
                             backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        var any = false
        for t in inputs where t.node != nil { any = true; break }
        guard any else { return output }
        var out = output
        out.node = GradNode(shape: output.shape, inputs: inputs.map { $0.node }, name: name, backward: backward)
        return out
    }

    /// Backpropagates from this tensor, seeding with 1 (the tensor must have one element).
    /// Gradients accumulate into the leaves' `grad`. The graph's closures are released afterwards
    /// unless `retainGraph` is true.
    public func backward(retainGraph: Bool = false) {
        precondition(count == 1, "backward(): seed gradient needed for a tensor of shape \(shape); use backward(gradient:)")
        backward(gradient: Tensor(repeating: 1, shape: shape), retainGraph: retainGraph)
    }

    /// Backpropagates `gradient` (same shape as this tensor) through the recorded graph.
    public func backward(gradient: Tensor, retainGraph: Bool = false) {
        backward(gradient: gradient, retainGraph: retainGraph, onLeafGradient: nil)
    }

    /// `backward(gradient:retainGraph:)` calling `onLeafGradient(leaf)` as soon as a leaf's gradient
    /// of this backward is complete (in reverse topological order, every contribution has arrived
    /// by then) — data-parallel training starts each gradient bucket's all-reduce from it while the
    /// rest of the backward runs. The order of the calls is a function of the graph alone.
    public func backward(gradient: Tensor, retainGraph: Bool = false, onLeafGradient: ((GradNode) -> Void)?) {
        precondition(gradient.shape == shape, "backward(gradient:): gradient shape \(gradient.shape) != \(shape)")
        guard let root = node else { preconditionFailure("backward(): tensor does not require grad") }
        // Reverse topological order by iterative DFS.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (n, i) = stack.last {
            if i < n.inputs.count {
                stack[stack.count - 1].1 = i + 1
                if let c = n.inputs[i], visited.insert(ObjectIdentifier(c)).inserted { stack.append((c, 0)) }
            } else {
                stack.removeLast()
                order.append(n)
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): gradient.detached()]
        withNoGrad {
            for n in order.reversed() {
                let id = ObjectIdentifier(n)
                guard let g = grads.removeValue(forKey: id) else { continue }
                if n.isLeaf {
                    n.grad = n.grad.map { $0 + g } ?? g
                    onLeafGradient?(n)
                    continue
                }
                guard let fn = n.backwardFn else {
                    preconditionFailure("backward(): graph through op '\(n.name)' was already freed; pass retainGraph: true to the first backward")
                }
                let ins = fn(g)
                precondition(ins.count == n.inputs.count, "op '\(n.name)' returned \(ins.count) gradients for \(n.inputs.count) inputs")
                for (k, child) in n.inputs.enumerated() {
                    guard let c = child, let gi = ins[k] else { continue }
                    precondition(gi.shape == c.shape, "op '\(n.name)': gradient for input \(k) has shape \(gi.shape), input has \(c.shape)")
                    let cid = ObjectIdentifier(c)
                    if let prev = grads[cid] { grads[cid] = prev + gi } else { grads[cid] = gi }
                }
                if !retainGraph { n.backwardFn = nil }
            }
        }
    }
}

/// Scales the gradients of `tensors` in place so that their global L2 norm is at most `maxNorm`
/// (as `torch.nn.utils.clip_grad_norm_`: scale = maxNorm / (norm + 1e-6), applied only when < 1).
/// Returns the total norm before clipping. Tensors without a gradient are skipped.
@discardableResult
public func clipGradNorm(_ tensors: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for t in tensors { if let g = t.grad { total += g.withUnsafeBufferPointer { Double(Kernels.sumOfSquares($0.baseAddress!, $0.count)) } } }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        for t in tensors {
            guard var g = t.grad else { continue }
            t.node?.grad = nil
            g.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= coef } }
            t.grad = g
        }
    }
    return norm
}
