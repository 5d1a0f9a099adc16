import AxialTensor
import Foundation

// Convolution and batch-norm layers over AxialTensor's conv1d / conv2d / convTranspose2d /
// batchNorm ops. Init as torch: weight kaiming_uniform(a=√5) = U(±1/√fan_in) with
// fan_in = weight.shape[1]·kernel area, bias U(±1/√fan_in).

private func convInit(_ shape: [Int], bias: Bool, generator: inout RandomGenerator) -> (Parameter, Parameter?) {
    let w = Initializer.kaimingUniform(shape, generator: &generator)
    let bound = 1 / Float(Swift.max(Initializer.fans(shape).fanIn, 1)).squareRoot()
    let b = bias ? Parameter(Initializer.uniform([shape[0]], bound: bound, generator: &generator)) : nil
    return (Parameter(w), b)
}

/// torch.nn.Conv1d. x [N, Cin, L] → [N, Cout, L']. Keys `weight` [Cout, Cin/groups, k], `bias` [Cout].
public final class Conv1d: Module, UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int, padding: Int, dilation: Int, groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                groups: Int = 1, bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv1d: groups \(groups) must divide \(inChannels) and \(outChannels)")
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        (weight, self.bias) = convInit([outChannels, inChannels / groups, kernelSize], bias: bias, generator: &generator)
        super.init()
    }
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                            groups: Int = 1, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                  groups: groups, bias: bias, generator: &g)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv1d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// torch.nn.Conv2d. x [N, Cin, H, W] → [N, Cout, H', W']. Keys `weight` [Cout, Cin/groups, kh, kw], `bias` [Cout].
public final class Conv2d: Module, UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Size2D, padding: Size2D, dilation: Size2D, groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                dilation: Size2D = 1, groups: Int = 1, bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2d: groups \(groups) must divide \(inChannels) and \(outChannels)")
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        (weight, self.bias) = convInit([outChannels, inChannels / groups, kernelSize.h, kernelSize.w], bias: bias, generator: &generator)
        super.init()
    }
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                            dilation: Size2D = 1, groups: Int = 1, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                  groups: groups, bias: bias, generator: &g)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// torch.nn.ConvTranspose2d. x [N, Cin, H, W] → [N, Cout, (H−1)·s − 2p + d·(k−1) + outputPadding + 1, …].
/// Keys `weight` [Cin, Cout/groups, kh, kw], `bias` [Cout].
public final class ConvTranspose2d: Module, UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Size2D, padding: Size2D, outputPadding: Size2D, dilation: Size2D, groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                outputPadding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1, bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "ConvTranspose2d: groups \(groups) must divide \(inChannels) and \(outChannels)")
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding; self.dilation = dilation; self.groups = groups
        let shape = [inChannels, outChannels / groups, kernelSize.h, kernelSize.w]
        weight = Parameter(Initializer.kaimingUniform(shape, generator: &generator))
        let bound = 1 / Float(Swift.max(Initializer.fans(shape).fanIn, 1)).squareRoot()
        self.bias = bias ? Parameter(Initializer.uniform([outChannels], bound: bound, generator: &generator)) : nil
        super.init()
    }
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
                            outputPadding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1, bias: Bool = true) {
        var g = DefaultGenerator.splitOff()
        self.init(inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding, outputPadding: outputPadding,
                  dilation: dilation, groups: groups, bias: bias, generator: &g)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                        outputPadding: outputPadding, dilation: dilation, groups: groups)
    }
}

/// torch.nn.BatchNorm1d / BatchNorm2d (one class: channel axis 1 of [N, C], [N, C, L] or [N, C, H, W]).
/// Training: batch statistics, running stats updated with `momentum` (unbiased variance), and
/// `num_batches_tracked` += 1; eval: running statistics. Keys `weight`, `bias` (init 1, 0),
/// buffers `running_mean` (0), `running_var` (1), `num_batches_tracked` (0, a scalar).
/// (torch's momentum = None cumulative average is not supported.)
public final class BatchNorm: Module, UnaryLayer {
    public let weight: Parameter?, bias: Parameter?
    public let runningMean: Buffer?, runningVar: Buffer?, numBatchesTracked: Buffer?
    public let channels: Int, eps: Float, momentum: Float

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, trackRunningStats: Bool = true) {
        self.channels = channels; self.eps = eps; self.momentum = momentum
        weight = affine ? Parameter(Tensor(ones: [channels])) : nil
        bias = affine ? Parameter(Tensor(zeros: [channels])) : nil
        runningMean = trackRunningStats ? Buffer(Tensor(zeros: [channels])) : nil
        runningVar = trackRunningStats ? Buffer(Tensor(ones: [channels])) : nil
        numBatchesTracked = trackRunningStats ? Buffer(Tensor(0)) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == channels, "BatchNorm(\(channels)): input \(x.shape) must be [N, \(channels), ...]")
        guard let rm = runningMean, let rv = runningVar else {
            return batchNorm(x, weight: weight?.value, bias: bias?.value, eps: eps)
        }
        if isTraining, let n = numBatchesTracked { n.value = Tensor(n.value.item() + 1) }
        return batchNorm(x, runningMean: &rm.value, runningVar: &rv.value, weight: weight?.value, bias: bias?.value,
                         training: isTraining, momentum: momentum, eps: eps)
    }
}

/// torch.nn.BatchNorm1d.
public typealias BatchNorm1d = BatchNorm
/// torch.nn.BatchNorm2d.
public typealias BatchNorm2d = BatchNorm
