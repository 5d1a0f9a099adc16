import Foundation

/// Copies the box of `size` at `srcOrigin` in `src` (shape `srcShape`) to `dstOrigin` in `dst`.
func copyBox(_ src: UnsafePointer<Float>, _ srcShape: [Int], _ srcOrigin: [Int],
             _ dst: UnsafeMutablePointer<Float>, _ dstShape: [Int], _ dstOrigin: [Int], _ size: [Int],
             accumulate: Bool = false) {
    let rank = size.count
    if rank == 0 { if accumulate { dst[0] += src[0] } else { dst[0] = src[0] }; return }
    if size.contains(0) { return }
    let ss = Tensor.strides(of: srcShape), ds = Tensor.strides(of: dstShape)
    let inner = size[rank - 1]
    let rows = size.reduce(1, *) / inner
    var so0 = 0, do0 = 0
    for i in 0..<rank { so0 += srcOrigin[i] * ss[i]; do0 += dstOrigin[i] * ds[i] }
    for row in 0..<rows {
        var rem = row, so = so0, dof = do0
        var ax = rank - 2
        while ax >= 0 { let c = rem % size[ax]; rem /= size[ax]; so += c * ss[ax]; dof += c * ds[ax]; ax -= 1 }
        if accumulate { for j in 0..<inner { dst[dof + j] += src[so + j] } }
        else { (dst + dof).update(from: src + so, count: inner) }
    }
}

extension Tensor {
    /// Same values with a new shape (no copy). One size may be −1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements (shape \(shape))")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "reshape: \(shape) (\(count) elements) cannot become \(newShape)")
        if s == shape { return self }
        let inShape = shape
        var y = Tensor(storage: storage, shape: s)
        y = Tensor.record(y, inputs: [self], name: "reshape") { g in [g.reshaped(inShape)] }
        return y
    }

    /// PyTorch's name for `reshaped`.
    public func reshape(_ newShape: [Int]) -> Tensor { reshaped(newShape) }

    /// Merges axes `startAxis...endAxis` into one.
    public func flattened(startAxis: Int = 0, endAxis: Int = -1) -> Tensor {
        let s = normalizedAxis(startAxis), e = normalizedAxis(endAxis)
        let merged = shape[s...e].reduce(1, *)
        return reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }

    /// Inserts a size-1 axis at `axis` (negative counts from the end of the result).
    public func unsqueezed(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "unsqueeze: axis \(axis) for shape \(shape)")
        var s = shape; s.insert(1, at: a)
        return reshaped(s)
    }

    /// Removes the size-1 axis `axis` (or all size-1 axes when nil).
    public func squeezed(_ axis: Int? = nil) -> Tensor {
        if let axis {
            let a = normalizedAxis(axis)
            precondition(shape[a] == 1, "squeeze: axis \(axis) has size \(shape[a]) in \(shape)")
            var s = shape; s.remove(at: a); return reshaped(s)
        }
        return reshaped(shape.filter { $0 != 1 })
    }

    /// Reorders axes: result axis i is input axis `axes[i]` (a copy).
    public func permuted(_ axes: [Int]) -> Tensor {
        let ax = axes.map { normalizedAxis($0) }
        precondition(ax.count == rank && Set(ax).count == rank, "permute: \(axes) is not a permutation for shape \(shape)")
        if ax == Array(0..<rank) { return self }
        let outShape = ax.map { shape[$0] }
        let inStrides = Tensor.strides(of: shape)
        let ps = ax.map { inStrides[$0] }
        let out = Tensor.empty(outShape)
        let n = count
        if n > 0 {
            let inner = outShape[rank - 1], innerStride = ps[rank - 1]
            let rows = n / inner
            let src = SendablePointer(storage.pointer), dst = SendablePointer(out.storage.pointer)
            parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(inner, 1))) { r in
                for row in r {
                    var rem = row, so = 0
                    var a = rank - 2
                    while a >= 0 { let c = rem % outShape[a]; rem /= outShape[a]; so += c * ps[a]; a -= 1 }
                    let d = dst.p + row * inner, s = src.p + so
                    for j in 0..<inner { d[j] = s[j * innerStride] }
                }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in ax.enumerated() { inverse[a] = i }
        return Tensor.record(out, inputs: [self], name: "permute") { g in [g.permuted(inverse)] }
    }

    /// PyTorch's name for `permuted`.
    public func permute(_ axes: [Int]) -> Tensor { permuted(axes) }

    /// Swaps two axes (a copy).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var p = Array(0..<rank)
        p.swapAt(normalizedAxis(a), normalizedAxis(b))
        return permuted(p)
    }

    /// PyTorch's name for `transposed`.
    public func transpose(_ a: Int, _ b: Int) -> Tensor { transposed(a, b) }

    /// The last two axes swapped.
    public var T: Tensor { transposed(-2, -1) }

    /// Elements `start..<start+length` along `axis` (a copy). Gradient: zero-padded back.
    public func narrow(axis: Int, start: Int, length: Int) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(start >= 0 && length >= 0 && start + length <= shape[a], "narrow: \(start)..<\(start + length) out of range for axis \(axis) of \(shape)")
        if start == 0 && length == shape[a] { return self }
        var outShape = shape; outShape[a] = length
        var origin = [Int](repeating: 0, count: rank); origin[a] = start
        let out = Tensor.empty(outShape)
        copyBox(storage.pointer, shape, origin, out.storage.pointer, outShape, [Int](repeating: 0, count: rank), outShape)
        let inShape = shape
        return Tensor.record(out, inputs: [self], name: "narrow") { g in
            let gx = Tensor(zeros: inShape)
            copyBox(g.storage.pointer, outShape, [Int](repeating: 0, count: outShape.count), gx.storage.pointer, inShape, origin, outShape)
            return [gx]
        }
    }

    /// Elements in `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor { narrow(axis: axis, start: range.lowerBound, length: range.count) }

    /// Index `i` along `axis`, that axis removed.
    public func select(axis: Int, index i: Int) -> Tensor {
        let a = normalizedAxis(axis)
        return narrow(axis: a, start: i, length: 1).squeezed(a)
    }

    /// Splits into pieces of the given sizes along `axis`.
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        let a = normalizedAxis(axis)
        precondition(sizes.reduce(0, +) == shape[a], "split: sizes \(sizes) do not sum to \(shape[a]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { s in defer { start += s }; return narrow(axis: a, start: start, length: s) }
    }

    /// Splits into pieces of `size` along `axis` (the last may be smaller), as torch.split(int).
    public func split(size: Int, axis: Int = 0) -> [Tensor] {
        let n = shape[normalizedAxis(axis)]
        var sizes: [Int] = []
        var r = n
        while r > 0 { sizes.append(Swift.min(size, r)); r -= size }
        return split(sizes: sizes, axis: axis)
    }

    /// Splits into `chunks` nearly equal pieces (torch.chunk).
    public func chunked(_ chunks: Int, axis: Int = 0) -> [Tensor] {
        let n = shape[normalizedAxis(axis)]
        return split(size: (n + chunks - 1) / chunks, axis: axis)
    }

    /// Pads with `value`: `padding[i] = (before, after)` for axis i (fewer entries pad the
    /// leading axes only as given; missing trailing entries mean no padding). Gradient: the interior.
    public func padded(_ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        precondition(padding.count <= rank, "pad: \(padding.count) pairs for shape \(shape)")
        var pads = padding
        while pads.count < rank { pads.append((0, 0)) }
        precondition(pads.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad: negative padding \(padding)")
        let outShape = zip(shape, pads).map { $0 + $1.before + $1.after }
        let origin = pads.map { $0.before }
        let out = Tensor(repeating: value, shape: outShape)
        let zeros = [Int](repeating: 0, count: rank)
        copyBox(storage.pointer, shape, zeros, out.storage.pointer, outShape, origin, shape)
        let inShape = shape
        return Tensor.record(out, inputs: [self], name: "pad") { g in
            let gx = Tensor.empty(inShape)
            copyBox(g.storage.pointer, outShape, origin, gx.storage.pointer, inShape, zeros, inShape)
            return [gx]
        }
    }

    /// Selects `indices` along `axis` (torch.index_select). Gradient: scatter-add.
    public func indexSelect(axis: Int, indices: [Int]) -> Tensor {
        let a = normalizedAxis(axis)
        let (outer, n, inner) = axisSplit(shape, a)
        for i in indices { precondition(i >= 0 && i < n, "indexSelect: index \(i) out of range for axis \(axis) of \(shape)") }
        var outShape = shape; outShape[a] = indices.count
        let out = Tensor.empty(outShape)
        let s = storage.pointer, d = out.storage.pointer, m = indices.count
        for o in 0..<outer { for (t, i) in indices.enumerated() { (d + (o * m + t) * inner).update(from: s + (o * n + i) * inner, count: inner) } }
        let inShape = shape
        return Tensor.record(out, inputs: [self], name: "indexSelect") { g in
            let gx = Tensor(zeros: inShape)
            let gp = g.storage.pointer, dp = gx.storage.pointer
            for o in 0..<outer { for (t, i) in indices.enumerated() {
                let src = gp + (o * m + t) * inner, dst = dp + (o * n + i) * inner
                for j in 0..<inner { dst[j] += src[j] }
            } }
            return [gx]
        }
    }

    /// `indexSelect` with indices held in a tensor (Float values that are integers).
    public func indexSelect(axis: Int, indices: Tensor) -> Tensor { indexSelect(axis: axis, indices: indices.scalars.map { Int($0) }) }

    /// torch.gather: out[..., i, ...] = x[..., index[..., i, ...], ...] along `axis`; `index` has
    /// the rank of `x`, sizes ≤ x's on other axes, integer values as Floats. Gradient: scatter-add.
    public func gather(axis: Int, index: Tensor) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(index.rank == rank, "gather: index rank \(index.rank) != input rank \(rank)")
        for i in 0..<rank where i != a { precondition(index.shape[i] <= shape[i], "gather: index shape \(index.shape) exceeds input \(shape) on axis \(i)") }
        let outShape = index.shape
        let os = Tensor.strides(of: outShape), xs = Tensor.strides(of: shape)
        let n = index.count
        var offsets = [Int](repeating: 0, count: n)
        let ip = index.storage.pointer
        for e in 0..<n {
            var rem = e, off = 0
            for d in 0..<rank {
                let c = rem / os[d]; rem %= os[d]
                if d == a {
                    let v = Int(ip[e])
                    precondition(v >= 0 && v < shape[a], "gather: index \(v) out of range for axis \(axis) of \(shape)")
                    off += v * xs[d]
                } else { off += c * xs[d] }
            }
            offsets[e] = off
        }
        return gathered(offsets: offsets, shape: outShape, name: "gather")
    }

    /// out[e] = self[offsets[e]] (flat offsets into this tensor, one per element of `shape`).
    /// Gradient: scatter-add back through `offsets` (repeated offsets accumulate).
    func gathered(offsets: [Int], shape outShape: [Int], name: String) -> Tensor {
        let n = offsets.count
        let out = Tensor.empty(outShape)
        let s = storage.pointer, d = out.storage.pointer
        for e in 0..<n { d[e] = s[offsets[e]] }
        let inShape = shape
        return Tensor.record(out, inputs: [self], name: name) { g in
            let gx = Tensor(zeros: inShape)
            let gp = g.storage.pointer, dp = gx.storage.pointer
            for e in 0..<n { dp[offsets[e]] += gp[e] }
            return [gx]
        }
    }

    /// Replaces elements where `mask` (broadcast to this shape) is nonzero by `value`.
    /// Gradient: zero where filled.
    public func maskedFill(_ mask: Tensor, _ value: Float) -> Tensor {
        let m = broadcastCopy(mask, to: shape)
        let y = zipKernel(self.detached(), m) { x, c in c != 0 ? value : x }
        return Tensor.record(y, inputs: [self], name: "maskedFill") { g in [zipKernel(g, m) { g, c in c != 0 ? 0 : g }] }
    }
}

/// Concatenates along `axis` (all other sizes equal). Gradient: the matching slices.
public func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    precondition(!tensors.isEmpty, "concat: no tensors")
    let first = tensors[0]
    let a = first.normalizedAxis(axis)
    var outShape = first.shape
    outShape[a] = 0
    for t in tensors {
        precondition(t.rank == first.rank, "concat: rank mismatch \(t.shape) vs \(first.shape)")
        for i in 0..<t.rank where i != a { precondition(t.shape[i] == first.shape[i], "concat: shapes \(t.shape) and \(first.shape) differ off axis \(axis)") }
        outShape[a] += t.shape[a]
    }
    let out = Tensor.empty(outShape)
    var starts: [Int] = []
    var start = 0
    for t in tensors {
        var origin = [Int](repeating: 0, count: first.rank); origin[a] = start
        copyBox(t.storage.pointer, t.shape, [Int](repeating: 0, count: t.rank), out.storage.pointer, outShape, origin, t.shape)
        starts.append(start); start += t.shape[a]
    }
    let sizes = tensors.map { $0.shape[a] }
    return Tensor.record(out, inputs: tensors, name: "concat") { g in
        zip(starts, sizes).map { s, n in g.narrow(axis: a, start: s, length: n) }
    }
}

/// Stacks equal-shaped tensors along a new axis.
public func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    precondition(!tensors.isEmpty, "stack: no tensors")
    let a = axis < 0 ? axis + tensors[0].rank + 1 : axis
    return concat(tensors.map { $0.unsqueezed(a) }, axis: a)
}

/// Elementwise select with broadcasting: `a` where `condition` is nonzero, else `b`.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let outShape = broadcastShape(broadcastShape(condition.shape, a.shape), b.shape)
    let c = broadcastCopy(condition, to: outShape)
    let y = zip3Kernel(c, broadcastCopy(a, to: outShape), broadcastCopy(b, to: outShape)) { c, x, y in c != 0 ? x : y }
    let (sa, sb) = (a.shape, b.shape)
    return Tensor.record(y, inputs: [a, b], name: "where") { g in
        [reduceToShape(zipKernel(g, c) { g, c in c != 0 ? g : 0 }, sa), reduceToShape(zipKernel(g, c) { g, c in c != 0 ? 0 : g }, sb)]
    }
}
