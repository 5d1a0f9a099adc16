import AxialTensor
import Foundation

/// A trainable tensor owned by a module: a leaf of the autodiff graph (unless frozen).
///
/// A module stores `Parameter` objects (reference semantics): the optimizer, the EMA and
/// `loadStateDict` update `value` in place and every holder sees the change.
/// Frozen parameters (`isFrozen`) do not require grad: gradients still flow *through* them to
/// inputs and other parameters, but none accumulates in them (`grad` stays `nil`).
public final class Parameter: @unchecked Sendable {
    /// The current value; a leaf requiring grad unless frozen.
    public var value: Tensor
    /// Whether the parameter is excluded from training (no gradient accumulates).
    public private(set) var isFrozen: Bool

    /// Wraps `value` as a trainable leaf (`frozen`: as a constant).
    public init(_ value: Tensor, frozen: Bool = false) {
        self.isFrozen = frozen
        self.value = frozen ? value.detached() : value.detached().requiringGrad()
    }

    /// Shape of the value.
    public var shape: [Int] { value.shape }
    /// Number of elements.
    public var count: Int { value.count }
    /// The accumulated gradient (`nil` when frozen or before any backward).
    public var grad: Tensor? {
        get { value.grad }
        set { if !isFrozen { value.grad = newValue } }
    }

    /// Stops gradient accumulation (the value becomes a constant for autodiff).
    public func freeze() { isFrozen = true; value = value.detached() }
    /// Makes the value a fresh trainable leaf again (its old gradient is dropped).
    public func unfreeze() { isFrozen = false; value = value.detached().requiringGrad() }
    /// Clears the gradient.
    public func zeroGrad() { value.zeroGrad() }

    /// Replaces the values (same shape) keeping the parameter's leaf/frozen state and graph node.
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == value.shape, "Parameter.assign: shape \(newValue.shape) != \(value.shape)")
        newValue.withUnsafeBufferPointer { src in
            value.withUnsafeMutableBufferPointer { dst in
                if src.count > 0 { dst.baseAddress!.update(from: src.baseAddress!, count: src.count) }
            }
        }
    }
}

/// A non-trainable tensor that belongs to a module's state (BatchNorm running statistics).
/// Saved in `stateDict()`, never returned by `parameters()`, never requires grad.
public final class Buffer: @unchecked Sendable {
    /// The current value (never requires grad).
    public var value: Tensor
    public init(_ value: Tensor) { self.value = value.detached() }
    public var shape: [Int] { value.shape }
}

/// What a module holds under one name.
public enum ModuleChild {
    case parameter(Parameter)
    case buffer(Buffer)
    case module(Module)
}

/// Errors from loading weights and state into modules.
public enum ModuleError: Error, CustomStringConvertible {
    /// `loadStateDict` found keys it could not match. Shapes are listed as `key [expected] vs [given]`.
    case stateDictMismatch(missing: [String], unexpected: [String], misshaped: [(key: String, expected: [Int], got: [Int])])

    public var description: String {
        switch self {
        case let .stateDictMismatch(missing, unexpected, misshaped):
            var lines = ["state dict does not match the module:"]
            if !missing.isEmpty { lines.append("  missing keys (\(missing.count)): \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { lines.append("  unexpected keys (\(unexpected.count)): \(unexpected.joined(separator: ", "))") }
            if !misshaped.isEmpty {
                lines.append("  mis-shaped keys (\(misshaped.count)): "
                    + misshaped.map { "\($0.key) expected \($0.expected) got \($0.got)" }.joined(separator: ", "))
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The base of every layer and model: a tree of named parameters, buffers and submodules.
///
/// Children are found by reflection over stored properties (`Mirror`, including superclasses up to
/// `Module`): `Parameter`, `Parameter?`, `Buffer`, `Buffer?`, `Module` (any subclass), `Module?`,
/// `[Module]` / `[SomeLayer]` (named by index: `blocks.0`), `[Parameter]`. A property's key is its
/// Swift name converted from camelCase to snake_case (`inProjWeight` → `in_proj_weight`,
/// `runningMean` → `running_mean`), so keys match PyTorch's `state_dict()`; override
/// `propertyKeys` to rename (`["layers": ""]` with an empty key flattens a list into its parent, as
/// `nn.Sequential` does) or `namedChildren()` to list children by hand.
///
/// The reflected child list is computed once per instance and cached (forward never reflects).
/// If you replace a stored `Parameter`/`Module` *object* after the first call, call
/// `invalidateChildCache()` (assigning `param.value` or using `assign` needs nothing).
open class Module {
    /// Training mode (dropout active, BatchNorm uses batch statistics). Set by `train()` / `eval()`.
    public private(set) var isTraining: Bool = true
    private var childCache: [(String, ModuleChild)]?

    public init() {}

    /// Renames of stored properties: Swift property name → key (default: snake_case of the name).
    open var propertyKeys: [String: String] { [:] }

    /// The direct children in declaration order (superclass properties first).
    /// Default: reflection (cached). Override to list children explicitly.
    open func namedChildren() -> [(String, ModuleChild)] {
        if let childCache { return childCache }
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let mm = m, mm.subjectType != Module.self { mirrors.append(mm); m = mm.superclassMirror }
        let renames = propertyKeys
        var out: [(String, ModuleChild)] = []
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") { label.removeFirst() }
                let key = renames[label] ?? Module.snakeCase(label)
                let prefix = key.isEmpty ? "" : key + "."
                let v = child.value
                if let p = v as? Parameter { out.append((key, .parameter(p))) }
                else if let b = v as? Buffer { out.append((key, .buffer(b))) }
                else if let mod = v as? Module { out.append((key, .module(mod))) }
                else if let list = v as? [Module] {
                    for (i, mod) in list.enumerated() { out.append((prefix + String(i), .module(mod))) }
                } else if let list = v as? [Parameter] {
                    for (i, p) in list.enumerated() { out.append((prefix + String(i), .parameter(p))) }
                } else if let list = v as? [Buffer] {
                    for (i, b) in list.enumerated() { out.append((prefix + String(i), .buffer(b))) }
                }
            }
        }
        childCache = out
        return out
    }

    /// Drops the cached child list (after replacing a child object).
    public func invalidateChildCache() { childCache = nil }

    /// camelCase → snake_case (`inProjWeight` → `in_proj_weight`; digits stay attached: `fc1`).
    public static func snakeCase(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { if !out.isEmpty && out.last != "_" { out.append("_") }; out.append(Character(ch.lowercased())) }
            else { out.append(ch) }
        }
        return out
    }

    // MARK: Traversal

    /// Visits every parameter/buffer/module below this one with its dotted key (depth first,
    /// declaration order). The module itself is visited with key "".
    public func visit(prefix: String = "", _ body: (String, ModuleChild) -> Void) {
        for (key, child) in namedChildren() {
            let full = prefix.isEmpty ? key : (key.isEmpty ? prefix : prefix + "." + key)
            body(full, child)
            if case .module(let m) = child { m.visit(prefix: full, body) }
        }
    }

    /// All parameters with their dotted keys (frozen ones included), each object once.
    public func namedParameters() -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        var seen = Set<ObjectIdentifier>()
        visit { key, c in if case .parameter(let p) = c, seen.insert(ObjectIdentifier(p)).inserted { out.append((key, p)) } }
        return out
    }

    /// All parameters (frozen ones included), each object once.
    public func parameters() -> [Parameter] { namedParameters().map(\.1) }

    /// The parameters that are not frozen.
    public func trainableParameters() -> [Parameter] { parameters().filter { !$0.isFrozen } }

    /// All buffers with their dotted keys.
    public func namedBuffers() -> [(String, Buffer)] {
        var out: [(String, Buffer)] = []
        visit { key, c in if case .buffer(let b) = c { out.append((key, b)) } }
        return out
    }

    /// All submodules below this one with their dotted keys (not including self).
    public func namedModules() -> [(String, Module)] {
        var out: [(String, Module)] = []
        visit { key, c in if case .module(let m) = c { out.append((key, m)) } }
        return out
    }

    /// Number of parameter elements (`trainableOnly`: skip frozen ones).
    public func parameterCount(trainableOnly: Bool = false) -> Int {
        parameters().reduce(0) { $0 + ((trainableOnly && $1.isFrozen) ? 0 : $1.count) }
    }

    // MARK: Modes

    /// Sets training mode on this module and every submodule.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, m) in namedModules() { m.isTraining = on }
    }

    /// Sets evaluation mode (`train(false)`).
    public func eval() { train(false) }

    /// Freezes every parameter below this module (gradients still pass through to inputs).
    public func freeze() { for p in parameters() { p.freeze() } }
    /// Unfreezes every parameter below this module.
    public func unfreeze() { for p in parameters() { p.unfreeze() } }
    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters() { p.zeroGrad() } }

    // MARK: State dict

    /// Parameters and buffers by dotted key (values share storage with the module; detached).
    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        visit { key, c in
            switch c {
            case .parameter(let p): out[key] = p.value.detached()
            case .buffer(let b): out[key] = b.value
            case .module: break
            }
        }
        return out
    }

    /// Copies values from `state` into the parameters and buffers with the same keys.
    ///
    /// `strict`: every module key must be present and no other key may appear; shapes must
    /// match in any case. Throws `ModuleError.stateDictMismatch` listing every missing,
    /// unexpected and mis-shaped key (nothing is modified then). Returns the keys loaded.
    @discardableResult
    public func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws -> [String] {
        var targets: [(String, ModuleChild)] = []
        visit { key, c in if case .module = c { return }; targets.append((key, c)) }
        var missing: [String] = [], misshaped: [(key: String, expected: [Int], got: [Int])] = []
        var known = Set<String>()
        for (key, c) in targets {
            known.insert(key)
            let expected: [Int]
            switch c { case .parameter(let p): expected = p.shape; case .buffer(let b): expected = b.shape; case .module: continue }
            guard let t = state[key] else { missing.append(key); continue }
            if t.shape != expected && !(t.count == 1 && expected.reduce(1, *) == 1) { misshaped.append((key, expected, t.shape)) }
        }
        let unexpected = state.keys.filter { !known.contains($0) }.sorted()
        if !misshaped.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
            throw ModuleError.stateDictMismatch(missing: missing, unexpected: strict ? unexpected : [], misshaped: misshaped)
        }
        var loaded: [String] = []
        for (key, c) in targets {
            guard let t = state[key] else { continue }
            switch c {
            case .parameter(let p): p.assign(t.reshaped(p.shape))
            case .buffer(let b): b.value = t.detached().copy().reshaped(b.shape)
            case .module: continue
            }
            loaded.append(key)
        }
        return loaded
    }

    /// Copies every parameter and buffer value of `other` (same architecture) into this module.
    public func copyWeights(from other: Module) throws {
        try loadStateDict(other.stateDict().mapValues { $0.copy() }, strict: true)
    }
}

/// A module mapping one tensor to one tensor (usable in `Sequential`).
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

// MARK: Default generator for initialisation

/// The default generator used by layer initialisers that are not given one and by dropout (as
/// torch's global generator): process-wide, or per task inside `withScopedGenerator`. `seed(_:)` resets it; its stream is xoshiro256** (not torch's Mersenne
/// Twister), so initial values cannot equal torch's: load weights to compare with PyTorch.
public enum DefaultGenerator {
    /// A lock-protected generator.
    public final class Box: @unchecked Sendable {
        let lock = NSLock()
        var generator: RandomGenerator
        public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
    }
    private static let global = Box(seed: 0)
    @TaskLocal private static var scoped: Box?

    private static var box: Box { scoped ?? global }

    /// Runs `body` with a private default generator seeded with `seed`: everything inside the
    /// scope (initialisers, dropout, `seed`, `state`) uses it instead of the process-wide one, so
    /// concurrent tasks (parallel folds, tests) do not interleave their streams.
    public static func withScopedGenerator<R>(seed: UInt64, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(Box(seed: seed)) { try body() }
    }

    /// Re-seeds the default generator (as `torch.manual_seed`).
    public static func seed(_ seed: UInt64) { with { $0 = RandomGenerator(seed: seed) } }

    /// A new generator seeded from the next 64 bits of the default one (used by layer
    /// initialisers without an explicit generator: reproducible after `seed(_:)`).
    public static func splitOff() -> RandomGenerator { with { g in RandomGenerator(seed: g.next()) } }

    /// The default generator's state words (for checkpoints) / restores it.
    public static var state: [UInt64] {
        get { with { $0.state } }
        set { with { $0.state = newValue } }
    }

    /// Runs `body` with exclusive access to the default generator.
    public static func with<R>(_ body: (inout RandomGenerator) -> R) -> R {
        let b = box
        b.lock.lock(); defer { b.lock.unlock() }
        return body(&b.generator)
    }
}

/// PyTorch's initialisers, on our generator.
public enum Initializer {
    /// fan_in / fan_out of a weight as torch computes them: dim 1 × receptive field, dim 0 × receptive field.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        precondition(shape.count >= 2, "fans: weight needs rank ≥ 2, got \(shape)")
        let rf = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * rf, shape[0] * rf)
    }

    /// U(−bound, bound).
    public static func uniform(_ shape: [Int], bound: Float, generator: inout RandomGenerator) -> Tensor {
        Tensor.uniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// torch.nn.init.kaiming_uniform_(w, a) with leaky_relu gain √(2/(1+a²)):
    /// bound = gain·√(3/fan_in). With a = √5 (Linear/Conv default) this is U(−1/√fan_in, 1/√fan_in).
    public static func kaimingUniform(_ shape: [Int], a: Float = Float(5).squareRoot(), generator: inout RandomGenerator) -> Tensor {
        let fanIn = fans(shape).fanIn
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(Swift.max(fanIn, 1))).squareRoot()
        return uniform(shape, bound: bound, generator: &generator)
    }

    /// torch.nn.init.xavier_uniform_: U(±gain·√(6/(fan_in+fan_out))).
    public static func xavierUniform(_ shape: [Int], gain: Float = 1, generator: inout RandomGenerator) -> Tensor {
        let (fi, fo) = fans(shape)
        return uniform(shape, bound: gain * (6 / Float(Swift.max(fi + fo, 1))).squareRoot(), generator: &generator)
    }

    /// timm's trunc_normal_(std) on [−2, 2] (absolute bounds, as timm).
    public static func truncatedNormal(_ shape: [Int], std: Float = 0.02, generator: inout RandomGenerator) -> Tensor {
        Tensor.truncatedNormal(shape, mean: 0, std: std, a: -2, b: 2, generator: &generator)
    }
}
