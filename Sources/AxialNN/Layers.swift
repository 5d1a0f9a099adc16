import AxialTensor
import Foundation

// Basic layers: Linear, LayerNorm, Embedding, Dropout, activations, Sequential, MLP.
// Initialisers follow PyTorch's formulas on our generator (`DefaultGenerator` unless one is
// passed): the distributions match torch, the values cannot (different RNG stream).

/// y = x·Wᵀ + b.   x: [..., inputDimensions] → [..., outputDimensions]
///
/// Keys: `weight` [out, in], `bias` [out]. Init as torch.nn.Linear: weight kaiming_uniform(a=√5)
/// = U(−1/√in, 1/√in), bias U(−1/√in, 1/√in).
public final class Linear: Module, UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let inputDimensions: Int, outputDimensions: Int

    public init(_ inputDimensions: Int, _ outputDimensions: Int, bias: Bool = true, generator: inout RandomGenerator) {
        self.inputDimensions = inputDimensions; self.outputDimensions = outputDimensions
        weight = Parameter(Initializer.kaimingUniform([outputDimensions, inputDimensions], generator: &generator))
        let bound = 1 / Float(Swift.max(inputDimensions, 1)).squareRoot()
        self.bias = bias ? Parameter(Initializer.uniform([outputDimensions], bound: bound, generator: &generator)) : nil
        super.init()
    }

    /// Initialised from `DefaultGenerator`.
    public convenience init(_ inputDimensions: Int, _ outputDimensions: Int, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inputDimensions, outputDimensions, bias: bias, generator: &g)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        linear(x, weight: weight.value, bias: bias?.value)
    }
}

/// Layer normalisation over the last axis: (x − mean)/√(var + eps)·weight + bias (biased variance).
/// Keys: `weight`, `bias` [d]. Init: weight 1, bias 0 (torch.nn.LayerNorm).
public final class LayerNorm: Module, UnaryLayer {
    public let weight: Parameter?
    public let bias: Parameter?
    public let dimensions: Int
    public let eps: Float

    public init(_ dimensions: Int, eps: Float = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true) {
        self.dimensions = dimensions; self.eps = eps
        weight = elementwiseAffine ? Parameter(Tensor(ones: [dimensions])) : nil
        self.bias = elementwiseAffine && bias ? Parameter(Tensor(zeros: [dimensions])) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == dimensions, "LayerNorm(\(dimensions)): input \(x.shape)")
        return layerNorm(x, weight: weight?.value, bias: bias?.value, eps: eps)
    }
}

/// Lookup table: indices (integer-valued floats, any shape) → indices.shape + [dimensions].
/// Key: `weight` [count, dimensions]. Init N(0, 1) as torch.nn.Embedding.
public final class Embedding: Module {
    public let weight: Parameter
    public init(_ count: Int, _ dimensions: Int, generator: inout RandomGenerator) {
        weight = Parameter(Tensor.normal([count, dimensions], generator: &generator))
        super.init()
    }
    public convenience init(_ count: Int, _ dimensions: Int) {
        var g = DefaultGenerator.splitOff()
        self.init(count, dimensions, generator: &g)
    }
    public func callAsFunction(_ indices: Tensor) -> Tensor { embedding(indices, weight: weight.value) }
    public func callAsFunction(_ indices: [Int], shape: [Int]? = nil) -> Tensor { embedding(indices, shape: shape, weight: weight.value) }
}

/// Inverted dropout with probability `p`, active only in training mode. The mask is drawn from
/// `DefaultGenerator` (so a checkpoint's RNG state covers it).
public final class Dropout: Module, UnaryLayer {
    public let p: Float
    public init(_ p: Float = 0.5) {
        precondition(p >= 0 && p < 1, "Dropout: p = \(p) must be in [0, 1)")
        self.p = p
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining && p > 0 else { return x }
        return DefaultGenerator.with { g in dropout(x, p: p, training: true, generator: &g) }
    }
}

/// Activation functions (parameter-free), as modules and as a configurable choice.
public enum Activation: String, Sendable, Codable, CaseIterable {
    case relu, gelu, geluTanh = "gelu_tanh", quickGelu = "quick_gelu", silu, sigmoid, tanh, identity

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: return AxialTensor.relu(x)
        case .gelu: return AxialTensor.gelu(x)
        case .geluTanh: return AxialTensor.gelu(x, approximate: .tanh)
        case .quickGelu: return AxialTensor.quickGelu(x)
        case .silu: return AxialTensor.silu(x)
        case .sigmoid: return AxialTensor.sigmoid(x)
        case .tanh: return AxialTensor.tanh(x)
        case .identity: return x
        }
    }
}

/// An activation as a layer (no parameters), for `Sequential`.
public final class ActivationLayer: Module, UnaryLayer {
    public let activation: Activation
    public init(_ activation: Activation) { self.activation = activation; super.init() }
    public func callAsFunction(_ x: Tensor) -> Tensor { activation(x) }
}

/// Layers applied in order. Keys are the indices (`0.weight`, `2.bias`), as torch.nn.Sequential.
public final class Sequential: Module, UnaryLayer {
    public let layers: [any UnaryLayer]
    public init(_ layers: [any UnaryLayer]) { self.layers = layers; super.init() }
    public convenience init(_ layers: any UnaryLayer...) { self.init(layers) }
    override public func namedChildren() -> [(String, ModuleChild)] {
        layers.enumerated().map { (String($0.offset), .module($0.element)) }
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for l in layers { h = l(h) }
        return h
    }
}

/// Multi-layer perceptron: Linear → activation (→ dropout) for each hidden width, then a final
/// Linear (no activation after it). Keys `layers.<i>.weight/bias` for the i-th Linear, e.g.
/// `MLP(8, hidden: [16], 4)` has `layers.0.*` [16, 8] and `layers.1.*` [4, 16].
public final class MLP: Module, UnaryLayer {
    public let layers: [Linear]
    public let activation: Activation
    public let dropout: Dropout?

    public init(_ inputDimensions: Int, hidden: [Int], _ outputDimensions: Int, activation: Activation = .relu,
                dropout p: Float = 0, bias: Bool = true, generator: inout RandomGenerator) {
        let widths = [inputDimensions] + hidden + [outputDimensions]
        var ls: [Linear] = []
        for i in 0..<(widths.count - 1) { ls.append(Linear(widths[i], widths[i + 1], bias: bias, generator: &generator)) }
        layers = ls
        self.activation = activation
        dropout = p > 0 ? Dropout(p) : nil
        super.init()
    }

    public convenience init(_ inputDimensions: Int, hidden: [Int], _ outputDimensions: Int, activation: Activation = .relu,
                            dropout p: Float = 0, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inputDimensions, hidden: hidden, outputDimensions, activation: activation, dropout: p, bias: bias, generator: &g)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, l) in layers.enumerated() {
            h = l(h)
            if i < layers.count - 1 {
                h = activation(h)
                if let dropout { h = dropout(h) }
            }
        }
        return h
    }
}
