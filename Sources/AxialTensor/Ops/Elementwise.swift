import Foundation

// Arithmetic with broadcasting. Each backward reduces the gradient back to its input's shape.

/// a + b (broadcasting).
public func + (a: Tensor, b: Tensor) -> Tensor {
    let (sa, sb) = (a.shape, b.shape)
    let y = sa == sb ? addKernel(a, b) : broadcastKernel(a, b) { $0 + $1 }
    return Tensor.record(y, inputs: [a, b], name: "add") { g in
        [reduceToShape(g, sa), reduceToShape(g, sb)]
    }
}

/// a − b (broadcasting).
public func - (a: Tensor, b: Tensor) -> Tensor {
    let (sa, sb) = (a.shape, b.shape)
    let nb = b.requiresGrad
    return Tensor.record(broadcastKernel(a, b) { $0 - $1 }, inputs: [a, b], name: "sub") { g in
        [reduceToShape(g, sa), nb ? reduceToShape(mapKernel(g) { -$0 }, sb) : nil]
    }
}

/// a · b elementwise (broadcasting).
public func * (a: Tensor, b: Tensor) -> Tensor {
    let (ad, bd) = (a.detached(), b.detached())
    let (na, nb) = (a.requiresGrad, b.requiresGrad)
    return Tensor.record(broadcastKernel(a, b) { $0 * $1 }, inputs: [a, b], name: "mul") { g in
        [na ? reduceToShape(broadcastKernel(g, bd) { $0 * $1 }, ad.shape) : nil,
         nb ? reduceToShape(broadcastKernel(g, ad) { $0 * $1 }, bd.shape) : nil]
    }
}

/// a / b elementwise (broadcasting).
public func / (a: Tensor, b: Tensor) -> Tensor {
    let (ad, bd) = (a.detached(), b.detached())
    let (na, nb) = (a.requiresGrad, b.requiresGrad)
    let y = broadcastKernel(a, b) { $0 / $1 }
    return Tensor.record(y, inputs: [a, b], name: "div") { g in
        [na ? reduceToShape(broadcastKernel(g, bd) { $0 / $1 }, ad.shape) : nil,
         // d/db (a/b) = −a/b² = −y/b
         nb ? reduceToShape(broadcastKernel(broadcastKernel(g, y) { -$0 * $1 }, bd) { $0 / $1 }, bd.shape) : nil]
    }
}

public func + (a: Tensor, b: Float) -> Tensor {
    Tensor.record(mapKernel(a) { $0 + b }, inputs: [a], name: "addScalar") { g in [g] }
}
public func + (a: Float, b: Tensor) -> Tensor { b + a }
public func - (a: Tensor, b: Float) -> Tensor { a + (-b) }
public func - (a: Float, b: Tensor) -> Tensor {
    Tensor.record(mapKernel(b) { a - $0 }, inputs: [b], name: "rsubScalar") { g in [mapKernel(g) { -$0 }] }
}
public func * (a: Tensor, b: Float) -> Tensor {
    Tensor.record(scaleKernel(a, b), inputs: [a], name: "mulScalar") { g in [scaleKernel(g, b)] }
}
public func * (a: Float, b: Tensor) -> Tensor { b * a }
public func / (a: Tensor, b: Float) -> Tensor { a * (1 / b) }
public func / (a: Float, b: Tensor) -> Tensor {
    let y = mapKernel(b) { a / $0 }
    let bd = b.detached()
    return Tensor.record(y, inputs: [b], name: "rdivScalar") { g in [zip3Kernel(g, y, bd) { -$0 * $1 / $2 }] }
}
public prefix func - (a: Tensor) -> Tensor { a.neg() }

extension Tensor {
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }
    public static func *= (a: inout Tensor, b: Float) { a = a * b }

    /// Records a unary op whose derivative is computed from (g, x, y).
    @inline(__always)
    func unary(_ name: String, _ f: (Float) -> Float, _ df: @escaping (_ g: Float, _ x: Float, _ y: Float) -> Float) -> Tensor {
        let y = mapKernel(self, f)
        let x = self.detached()
        return Tensor.record(y, inputs: [self], name: name) { g in [zip3Kernel(g, x, y, df)] }
    }

    /// −x.
    public func neg() -> Tensor { unary("neg", { -$0 }, { g, _, _ in -g }) }
    /// eˣ (polynomial, no libm call per element).
    public func exp() -> Tensor { unary("exp", { Kernels.exp($0) }, { g, _, y in g * y }) }
    /// Natural logarithm.
    public func log() -> Tensor { unary("log", { Foundation.log($0) }, { g, x, _ in g / x }) }
    /// √x.
    public func sqrt() -> Tensor { unary("sqrt", { $0.squareRoot() }, { g, _, y in g * 0.5 / y }) }
    /// 1/√x.
    public func rsqrt() -> Tensor { unary("rsqrt", { 1 / $0.squareRoot() }, { g, _, y in -0.5 * g * y * y * y }) }
    /// |x| (gradient sign(x), 0 at 0).
    public func abs() -> Tensor { unary("abs", { Swift.abs($0) }, { g, x, _ in x > 0 ? g : (x < 0 ? -g : 0) }) }
    /// x². 
    public func square() -> Tensor { unary("square", { $0 * $0 }, { g, x, _ in 2 * g * x }) }
    /// xᵖ for a scalar exponent (gradient p·xᵖ⁻¹).
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        if p == 1 { return unary("pow1", { $0 }, { g, _, _ in g }) }
        return unary("pow", { Foundation.pow($0, p) }, { g, x, _ in g * p * Foundation.pow(x, p - 1) })
    }
    /// Clamps into [min, max] (either bound optional). Gradient passes where min ≤ x ≤ max.
    public func clamp(min lo: Float? = nil, max hi: Float? = nil) -> Tensor {
        let l = lo ?? -.infinity, h = hi ?? .infinity
        return unary("clamp", { Swift.min(Swift.max($0, l), h) }, { g, x, _ in (x >= l && x <= h) ? g : 0 })
    }
    /// sigmoid(x) = 1/(1+e⁻ˣ).
    public func sigmoid() -> Tensor { unary("sigmoid", { Kernels.sigmoid($0) }, { g, _, y in g * y * (1 - y) }) }
    /// tanh(x).
    public func tanh() -> Tensor { unary("tanh", { Kernels.tanh($0) }, { g, _, y in g * (1 - y * y) }) }
}

/// xᵖ elementwise with a tensor exponent (broadcasting). Gradients: p·xᵖ⁻¹ and xᵖ·ln x.
public func pow(_ x: Tensor, _ p: Tensor) -> Tensor {
    let (xd, pd) = (x.detached(), p.detached())
    let (nx, np) = (x.requiresGrad, p.requiresGrad)
    let y = broadcastKernel(x, p) { Foundation.pow($0, $1) }
    return Tensor.record(y, inputs: [x, p], name: "powTensor") { g in
        let outShape = y.shape
        let xb = broadcastCopy(xd, to: outShape), pb = broadcastCopy(pd, to: outShape)
        return [nx ? reduceToShape(zip3Kernel(g, xb, pb) { g, x, p in g * p * Foundation.pow(x, p - 1) }, xd.shape) : nil,
                np ? reduceToShape(zip3Kernel(g, y, xb) { g, y, x in g * y * Foundation.log(x) }, pd.shape) : nil]
    }
}

/// Elementwise maximum (broadcasting). On ties the gradient is split equally, as PyTorch.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { minMax(a, b, isMax: true) }
/// Elementwise minimum (broadcasting). On ties the gradient is split equally, as PyTorch.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { minMax(a, b, isMax: false) }

private func minMax(_ a: Tensor, _ b: Tensor, isMax: Bool) -> Tensor {
    let (ad, bd) = (a.detached(), b.detached())
    let y = broadcastKernel(a, b) { isMax ? Swift.max($0, $1) : Swift.min($0, $1) }
    return Tensor.record(y, inputs: [a, b], name: isMax ? "maximum" : "minimum") { g in
        let outShape = y.shape
        let ab = broadcastCopy(ad, to: outShape), bb = broadcastCopy(bd, to: outShape)
        // weight for a: 1 where a wins, 0.5 on ties
        let wa = zipKernel(ab, bb) { x, y in x == y ? 0.5 : ((x > y) == isMax ? 1 : 0) }
        return [reduceToShape(zipKernel(g, wa) { $0 * $1 }, ad.shape),
                reduceToShape(zipKernel(g, wa) { $0 * (1 - $1) }, bd.shape)]
    }
}

// MARK: Activations

/// max(x, 0). Gradient 0 at x ≤ 0.
public func relu(_ x: Tensor) -> Tensor { x.unary("relu", { Swift.max($0, 0) }, { g, x, _ in x > 0 ? g : 0 }) }

/// x for x > 0, slope·x otherwise.
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    x.unary("leakyRelu", { $0 > 0 ? $0 : $0 * negativeSlope }, { g, x, _ in x > 0 ? g : g * negativeSlope })
}

/// sigmoid(x) = 1/(1+e⁻ˣ).
public func sigmoid(_ x: Tensor) -> Tensor { x.sigmoid() }
/// tanh(x).
public func tanh(_ x: Tensor) -> Tensor { x.tanh() }

/// SiLU (swish): x·sigmoid(x).
public func silu(_ x: Tensor) -> Tensor {
    x.unary("silu", { $0 * Kernels.sigmoid($0) }, { g, x, _ in
        let s = Kernels.sigmoid(x)
        return g * s * (1 + x * (1 - s))
    })
}

/// QuickGELU (OpenAI CLIP): x·sigmoid(1.702·x). Forward and backward are single SIMD8 passes
/// (`TransformerSIMD.quickGelu*`; the scalar closures of `unary` were 11 % of a CLIPSeg
/// dense-adapter training step in `perf`), split over workers.
public func quickGelu(_ x: Tensor) -> Tensor {
    pointwisePasses(x, name: "quickGelu", forward: TransformerSIMD.quickGeluForward, backward: TransformerSIMD.quickGeluBackward)
}

/// Which GELU formula: the exact erf form or the tanh approximation (PyTorch's `approximate`).
public enum GeluApproximation: Sendable { case none, tanh }

/// GELU: x·Φ(x) = 0.5·x·(1 + erf(x/√2)); with `.tanh`, 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
/// Forward and backward are single vectorised passes (`Kernels.gelu*`), split over workers.
public func gelu(_ x: Tensor, approximate: GeluApproximation = .none) -> Tensor {
    approximate == .tanh
        ? pointwisePasses(x, name: "geluTanh", forward: Kernels.geluTanhForward, backward: Kernels.geluTanhBackward)
        : pointwisePasses(x, name: "gelu", forward: Kernels.geluForward, backward: Kernels.geluBackward)
}

/// y = f(x) elementwise by `forward(x, y, n)` over chunks split across workers, with the gradient
/// dx = `backward(g, x, dx, n)` (each kernel a single vectorised pass over its chunk).
private func pointwisePasses(_ x: Tensor, name: String,
                             forward: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                             backward: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
    let n = x.count
    let y = Tensor.empty(x.shape)
    let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
    parallelFor(n, grain: elementwiseGrain) { r in forward(xs.p + r.lowerBound, ys.p + r.lowerBound, r.count) }
    let xd = x.detached()
    return Tensor.record(y, inputs: [x], name: name) { g in
        let gx = Tensor.empty(g.shape)
        let gp = SendablePointer(g.storage.pointer), xp = SendablePointer(xd.storage.pointer), op = SendablePointer(gx.storage.pointer)
        parallelFor(n, grain: elementwiseGrain) { r in
            let o = r.lowerBound
            backward(gp.p + o, xp.p + o, op.p + o, r.count)
        }
        return [gx]
    }
}
