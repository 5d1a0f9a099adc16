/// Broadcasting (NumPy/PyTorch rules) and the elementwise kernels every op builds on.

/// The broadcast shape of two shapes (right-aligned; sizes must match or be 1).
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides of `shape` seen inside `outShape` (0 along broadcast axes).
@usableFromInline
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let st = Tensor.strides(of: shape)
    var out = [Int](repeating: 0, count: outShape.count)
    let off = outShape.count - shape.count
    for i in 0..<shape.count where shape[i] != 1 { out[i + off] = st[i] }
    return out
}

/// Minimum element count before elementwise kernels use `parallelFor`.
@usableFromInline let elementwiseGrain = 1 << 15

/// out[i] = f(x[i]).
@inline(__always)
func mapKernel(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    let n = x.count
    let out = Tensor.empty(x.shape)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
    parallelFor(n, grain: elementwiseGrain) { r in
        let s = src.p, d = dst.p
        for i in r { d[i] = f(s[i]) }
    }
    return out
}

/// a + b for tensors of the same shape (a concrete, vectorised loop).
func addKernel(_ a: Tensor, _ b: Tensor) -> Tensor {
    let out = Tensor.empty(a.shape)
    let pa = SendablePointer(a.storage.pointer), pb = SendablePointer(b.storage.pointer), dst = SendablePointer(out.storage.pointer)
    parallelFor(a.count, grain: elementwiseGrain) { r in
        let o = r.lowerBound
        Kernels.add(pa.p + o, pb.p + o, dst.p + o, r.count)
    }
    return out
}

/// x · s (a concrete, vectorised loop).
func scaleKernel(_ x: Tensor, _ s: Float) -> Tensor {
    let out = Tensor.empty(x.shape)
    let px = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
    parallelFor(x.count, grain: elementwiseGrain) { r in
        let o = r.lowerBound
        Kernels.scale(px.p + o, s, dst.p + o, r.count)
    }
    return out
}

/// out[i] = f(a[i], b[i]) for two tensors of the same shape.
@inline(__always)
func zipKernel(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape, "zipKernel: \(a.shape) vs \(b.shape)")
    let n = a.count
    let out = Tensor.empty(a.shape)
    let pa = SendablePointer(a.storage.pointer), pb = SendablePointer(b.storage.pointer), dst = SendablePointer(out.storage.pointer)
    parallelFor(n, grain: elementwiseGrain) { r in
        let x = pa.p, y = pb.p, d = dst.p
        for i in r { d[i] = f(x[i], y[i]) }
    }
    return out
}

/// out[i] = f(a[i], b[i], c[i]) for three tensors of the same shape.
@inline(__always)
func zip3Kernel(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape && b.shape == c.shape, "zip3Kernel: \(a.shape), \(b.shape), \(c.shape)")
    let n = a.count
    let out = Tensor.empty(a.shape)
    let pa = SendablePointer(a.storage.pointer), pb = SendablePointer(b.storage.pointer), pc = SendablePointer(c.storage.pointer)
    let dst = SendablePointer(out.storage.pointer)
    parallelFor(n, grain: elementwiseGrain) { r in
        let x = pa.p, y = pb.p, z = pc.p, d = dst.p
        for i in r { d[i] = f(x[i], y[i], z[i]) }
    }
    return out
}

/// out = f(a, b) with broadcasting.
@inline(__always)
func broadcastKernel(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape { return zipKernel(a, b, f) }
    let outShape = broadcastShape(a.shape, b.shape)
    let out = Tensor.empty(outShape)
    let n = out.count
    let pa = SendablePointer(a.storage.pointer), pb = SendablePointer(b.storage.pointer), dst = SendablePointer(out.storage.pointer)
    if b.count == 1 && outShape == a.shape {
        let bv = pb.p[0]
        parallelFor(n, grain: elementwiseGrain) { r in let x = pa.p, d = dst.p; for i in r { d[i] = f(x[i], bv) } }
        return out
    }
    if a.count == 1 && outShape == b.shape {
        let av = pa.p[0]
        parallelFor(n, grain: elementwiseGrain) { r in let y = pb.p, d = dst.p; for i in r { d[i] = f(av, y[i]) } }
        return out
    }
    if n == 0 { return out }
    let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
    let rank = outShape.count
    let inner = outShape[rank - 1]
    let ia = sa[rank - 1], ib = sb[rank - 1]
    let rows = n / inner
    parallelFor(rows, grain: max(1, elementwiseGrain / max(inner, 1))) { r in
        let x = pa.p, y = pb.p, d = dst.p
        for row in r {
            var rem = row, oa = 0, ob = 0
            var ax = rank - 2
            while ax >= 0 { let size = outShape[ax]; let c = rem % size; rem /= size; oa += c * sa[ax]; ob += c * sb[ax]; ax -= 1 }
            let dr = d + row * inner
            if ia == 1 && ib == 1 { for j in 0..<inner { dr[j] = f(x[oa + j], y[ob + j]) } }
            else if ia == 1 && ib == 0 { let yv = y[ob]; for j in 0..<inner { dr[j] = f(x[oa + j], yv) } }
            else if ia == 0 && ib == 1 { let xv = x[oa]; for j in 0..<inner { dr[j] = f(xv, y[ob + j]) } }
            else { for j in 0..<inner { dr[j] = f(x[oa + j * ia], y[ob + j * ib]) } }
        }
    }
    return out
}

/// Materialises `x` broadcast to `shape` (no graph).
func broadcastCopy(_ x: Tensor, to shape: [Int]) -> Tensor {
    if x.shape == shape { return x.detached() }
    let zero = Tensor(zeros: shape)
    return broadcastKernel(zero, x.detached()) { _, v in v }
}

/// Sums `g` over the axes along which `shape` was broadcast to `g.shape` (no graph).
func reduceToShape(_ g: Tensor, _ shape: [Int]) -> Tensor {
    if g.shape == shape { return g }
    let off = g.rank - shape.count
    precondition(off >= 0, "reduceToShape: \(g.shape) to \(shape)")
    var axes: [Int] = Array(0..<off)
    for i in 0..<shape.count where shape[i] == 1 && g.shape[i + off] != 1 { axes.append(i + off) }
    var r = g.detached()
    if !axes.isEmpty { r = sumKernel(r, axes: axes) }
    return r.reshaped(shape)
}

extension Tensor {
    /// This tensor broadcast to `shape` (a copy). Gradient: summed back over broadcast axes.
    public func expand(to shape: [Int]) -> Tensor {
        precondition(broadcastShape(self.shape, shape) == shape, "expand: \(self.shape) does not broadcast to \(shape)")
        let inShape = self.shape
        return Tensor.record(broadcastCopy(self, to: shape), inputs: [self], name: "expand") { g in [reduceToShape(g, inShape)] }
    }

    /// Sums over broadcast axes so that the result has `shape` (the inverse of `expand`).
    public func sum(toShape shape: [Int]) -> Tensor {
        let inShape = self.shape
        return Tensor.record(reduceToShape(self.detached(), shape), inputs: [self], name: "sumToShape") { g in [broadcastCopy(g, to: inShape)] }
    }
}
