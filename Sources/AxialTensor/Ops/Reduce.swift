/// Reductions: sum, mean, variance, max/min over axes; argmax and topK (no gradient).

/// (outer, n, inner) view of `shape` around `axis`.
@inline(__always)
func axisSplit(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
    var outer = 1, inner = 1
    for i in 0..<axis { outer *= shape[i] }
    for i in (axis + 1)..<shape.count { inner *= shape[i] }
    return (outer, shape[axis], inner)
}

/// Sums over one axis, keeping it with size 1.
func sumAxisKernel(_ x: Tensor, _ axis: Int) -> Tensor {
    let (outer, n, inner) = axisSplit(x.shape, axis)
    var outShape = x.shape; outShape[axis] = 1
    let out = Tensor(zeros: outShape)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
    if inner == 1 {
        parallelFor(outer, grain: Swift.max(1, elementwiseGrain / Swift.max(n, 1))) { r in
            for o in r { dst.p[o] = Kernels.sum(src.p + o * n, n) }
        }
    } else if outer < Parallel.workerCount && inner >= 64 {
        // Few outer blocks (bias gradients: [rows, features] summed over rows): split the columns.
        parallelFor(inner, grain: 64) { cols in
            for o in 0..<outer {
                let d = dst.p + o * inner
                for k in 0..<n {
                    let s = src.p + (o * n + k) * inner
                    for j in cols { d[j] += s[j] }
                }
            }
        }
    } else {
        parallelFor(outer, grain: Swift.max(1, elementwiseGrain / Swift.max(n * inner, 1))) { r in
            for o in r {
                let d = dst.p + o * inner
                for k in 0..<n {
                    let s = src.p + (o * n + k) * inner
                    for j in 0..<inner { d[j] += s[j] }
                }
            }
        }
    }
    return out
}

/// Sums over `axes` (kept with size 1), no graph.
func sumKernel(_ x: Tensor, axes: [Int]) -> Tensor {
    var r = x.detached()
    if axes.count == x.rank && x.rank > 0 {
        let s = x.withUnsafeBufferPointer { Kernels.sum($0.baseAddress!, $0.count) }
        return Tensor(repeating: s, shape: [Int](repeating: 1, count: x.rank))
    }
    for a in Set(axes).sorted() where x.shape[a] != 1 { r = sumAxisKernel(r, a) }
    return r
}

extension Tensor {
    func normalizedAxes(_ axes: [Int]?) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let r = axes.map { normalizedAxis($0) }
        precondition(Set(r).count == r.count, "duplicate axes \(axes) for shape \(shape)")
        return r.sorted()
    }

    static func reducedShape(_ shape: [Int], _ axes: [Int], keepDims: Bool) -> [Int] {
        var out: [Int] = []
        for (i, s) in shape.enumerated() {
            if axes.contains(i) { if keepDims { out.append(1) } } else { out.append(s) }
        }
        return out
    }

    /// Sum of all elements (rank-0 result).
    public func sum() -> Tensor { sum(axes: nil, keepDims: false) }

    /// Sum over `axes` (all axes when nil). Negative axes count from the end.
    public func sum(axes: [Int]?, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes)
        let kept = sumKernel(self, axes: ax)
        let outShape = Tensor.reducedShape(shape, ax, keepDims: keepDims)
        let inShape = shape
        let keptShape = kept.shape
        return Tensor.record(kept.reshaped(outShape), inputs: [self], name: "sum") { g in
            [broadcastCopy(g.reshaped(keptShape), to: inShape)]
        }
    }

    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean of all elements.
    public func mean() -> Tensor { mean(axes: nil) }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]?, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes)
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Variance over `axes` (all when nil); `unbiased` divides by N−1 (torch's default), else N.
    public func variance(axes: [Int]? = nil, unbiased: Bool = true, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let d = self - mean(axes: ax, keepDims: true)
        return (d * d).sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }

    /// Variance over one axis.
    public func variance(axis: Int, unbiased: Bool = true, keepDims: Bool = false) -> Tensor {
        variance(axes: [axis], unbiased: unbiased, keepDims: keepDims)
    }

    /// Standard deviation: √variance.
    public func std(axes: [Int]? = nil, unbiased: Bool = true, keepDims: Bool = false) -> Tensor {
        variance(axes: axes, unbiased: unbiased, keepDims: keepDims).sqrt()
    }

    /// Max and first arg-max index along one axis (axis kept with size 1).
    func maxAlong(_ axis: Int, negate: Bool) -> (values: Tensor, indices: [Int]) {
        let (outer, n, inner) = axisSplit(shape, axis)
        precondition(n > 0, "max over an empty axis of shape \(shape)")
        var outShape = shape; outShape[axis] = 1
        let out = Tensor.empty(outShape)
        var idx = [Int](repeating: 0, count: outer * inner)
        let s = storage.pointer, d = out.storage.pointer
        let sign: Float = negate ? -1 : 1
        idx.withUnsafeMutableBufferPointer { ip in
            for o in 0..<outer {
                for j in 0..<inner {
                    var best = sign * s[o * n * inner + j], bi = 0
                    for k in 1..<Swift.max(n, 1) {
                        let v = sign * s[(o * n + k) * inner + j]
                        if v > best || (v.isNaN && !best.isNaN) { best = v; bi = k }
                    }
                    d[o * inner + j] = sign * best
                    ip[o * inner + j] = bi
                }
            }
        }
        return (out, idx)
    }

    /// Maximum over `axis`; the gradient goes to the first maximal element (as torch.max(dim)).
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { extremum(axis: axis, keepDims: keepDims, negate: false) }
    /// Minimum over `axis`; the gradient goes to the first minimal element.
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { extremum(axis: axis, keepDims: keepDims, negate: true) }
    /// Maximum of all elements.
    public func max() -> Tensor { reshaped([count]).max(axis: 0) }
    /// Minimum of all elements.
    public func min() -> Tensor { reshaped([count]).min(axis: 0) }

    private func extremum(axis: Int, keepDims: Bool, negate: Bool) -> Tensor {
        let a = normalizedAxis(axis)
        let (vals, idx) = maxAlong(a, negate: negate)
        let (outer, n, inner) = axisSplit(shape, a)
        let inShape = shape
        let outShape = Tensor.reducedShape(shape, [a], keepDims: keepDims)
        return Tensor.record(vals.reshaped(outShape), inputs: [self], name: negate ? "min" : "max") { g in
            let gx = Tensor(zeros: inShape)
            let gp = g.storage.pointer, d = gx.storage.pointer
            for o in 0..<outer { for j in 0..<inner { d[(o * n + idx[o * inner + j]) * inner + j] = gp[o * inner + j] } }
            return [gx]
        }
    }

    /// Index of the first maximum along `axis`, as Float values (no gradient).
    public func argmax(axis: Int, keepDims: Bool = false) -> Tensor {
        let a = normalizedAxis(axis)
        let (_, idx) = maxAlong(a, negate: false)
        return Tensor(shape: Tensor.reducedShape(shape, [a], keepDims: keepDims), scalars: idx.map(Float.init))
    }

    /// Index of the first minimum along `axis`, as Float values (no gradient).
    public func argmin(axis: Int, keepDims: Bool = false) -> Tensor {
        let a = normalizedAxis(axis)
        let (_, idx) = maxAlong(a, negate: true)
        return Tensor(shape: Tensor.reducedShape(shape, [a], keepDims: keepDims), scalars: idx.map(Float.init))
    }

    /// The `k` largest (or smallest) values along `axis`, sorted, and their indices (as Floats).
    /// Ties keep the lower index first. No gradient.
    public func topK(_ k: Int, axis: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
        let a = normalizedAxis(axis)
        let (outer, n, inner) = axisSplit(shape, a)
        precondition(k >= 0 && k <= n, "topK: k = \(k) out of range for axis of size \(n) in \(shape)")
        var outShape = shape; outShape[a] = k
        let vals = Tensor.empty(outShape), inds = Tensor.empty(outShape)
        let s = storage.pointer, vp = vals.storage.pointer, ip = inds.storage.pointer
        var order = [Int](repeating: 0, count: n)
        for o in 0..<outer {
            for j in 0..<inner {
                for t in 0..<n { order[t] = t }
                let base = o * n * inner + j
                order.sort { l, r in
                    let x = s[base + l * inner], y = s[base + r * inner]
                    if x == y { return l < r }
                    return largest ? x > y : x < y
                }
                for t in 0..<k {
                    vp[(o * k + t) * inner + j] = s[base + order[t] * inner]
                    ip[(o * k + t) * inner + j] = Float(order[t])
                }
            }
        }
        return (vals, inds)
    }
}
