import Foundation

// Fused neural-network ops with hand-written backwards: softmax, logSoftmax, layerNorm, and the
// composites built from primitives: l2Normalize, cosineSimilarity, dropout, embedding, attention.

/// Applies `body(offset, n, stride)` to every 1-D fibre along `axis`, fibres split over
/// `parallelFor` workers (each fibre is written by one worker only).
@inline(__always)
private func forEachFibre(_ shape: [Int], _ axis: Int, _ body: (_ offset: Int, _ n: Int, _ stride: Int) -> Void) {
    let (outer, n, inner) = axisSplit(shape, axis)
    parallelFor(outer * inner, grain: Swift.max(1, elementwiseGrain / Swift.max(n, 1))) { r in
        for f in r { let o = f / inner, j = f % inner; body(o * n * inner + j, n, inner) }
    }
}

/// max of s[off + k·st] for k in 0..<n, with −∞ (every element −∞, or n = 0) replaced by 0: the
/// shift that softmax and logSoftmax subtract on strided fibres.
@inline(__always)
private func stridedMax(_ s: UnsafeMutablePointer<Float>, _ off: Int, _ n: Int, _ st: Int) -> Float {
    var m = -Float.infinity
    for k in 0..<n { m = Swift.max(m, s[off + k * st]) }
    return m == -.infinity ? 0 : m
}

/// Softmax along `axis` (max-subtracted). Backward: y·(g − Σ g·y).
public func softmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    let a = x.normalizedAxis(axis)
    let y = Tensor.empty(x.shape)
    let sp = SendablePointer(x.storage.pointer), dp = SendablePointer(y.storage.pointer)
    forEachFibre(x.shape, a) { off, n, st in
        let s = sp.p, d = dp.p
        if st == 1 {
            // Contiguous fibre: vectorised max, exp pass, SIMD sum, scale pass.
            let xs = s + off, ys = d + off
            var m = Kernels.maximum(xs, n)
            if m == -.infinity { m = 0 }
            for k in 0..<n { ys[k] = Kernels.exp(xs[k] - m) }
            let inv = 1 / Kernels.sum(ys, n)
            for k in 0..<n { ys[k] *= inv }
            return
        }
        let m = stridedMax(s, off, n, st)
        var sum: Float = 0
        for k in 0..<n { let e = Kernels.exp(s[off + k * st] - m); d[off + k * st] = e; sum += e }
        let inv = 1 / sum
        for k in 0..<n { d[off + k * st] *= inv }
    }
    let shape = x.shape
    return Tensor.record(y, inputs: [x], name: "softmax") { g in
        let gx = Tensor.empty(shape)
        let gq = SendablePointer(g.storage.pointer), yq = SendablePointer(y.storage.pointer), oq = SendablePointer(gx.storage.pointer)
        forEachFibre(shape, a) { off, n, st in
            let gp = gq.p, yp = yq.p, o = oq.p
            if st == 1 {
                let gs = gp + off, ys = yp + off, os = o + off
                let dot = Kernels.dot(gs, ys, n)
                for k in 0..<n { os[k] = ys[k] * (gs[k] - dot) }
                return
            }
            var dot: Float = 0
            for k in 0..<n { dot += gp[off + k * st] * yp[off + k * st] }
            for k in 0..<n { let i = off + k * st; o[i] = yp[i] * (gp[i] - dot) }
        }
        return [gx]
    }
}

/// log(softmax(x)) along `axis`, computed stably. Backward: g − softmax·Σ g.
public func logSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    let a = x.normalizedAxis(axis)
    let y = Tensor.empty(x.shape)
    let sp = SendablePointer(x.storage.pointer), dp = SendablePointer(y.storage.pointer)
    forEachFibre(x.shape, a) { off, n, st in
        let s = sp.p, d = dp.p
        let m = stridedMax(s, off, n, st)
        var sum: Float = 0
        for k in 0..<n { sum += Kernels.exp(s[off + k * st] - m) }
        let lse = m + Foundation.log(sum)
        for k in 0..<n { d[off + k * st] = s[off + k * st] - lse }
    }
    let shape = x.shape
    return Tensor.record(y, inputs: [x], name: "logSoftmax") { g in
        let gx = Tensor.empty(shape)
        let gq = SendablePointer(g.storage.pointer), yq = SendablePointer(y.storage.pointer), oq = SendablePointer(gx.storage.pointer)
        forEachFibre(shape, a) { off, n, st in
            let gp = gq.p, yp = yq.p, o = oq.p
            var sg: Float = 0
            for k in 0..<n { sg += gp[off + k * st] }
            for k in 0..<n { let i = off + k * st; o[i] = gp[i] - Kernels.exp(yp[i]) * sg }
        }
        return [gx]
    }
}

/// Layer normalisation over the last axis: (x − mean)/√(var + eps)·weight + bias (biased
/// variance, as torch.nn.LayerNorm). Forward caches mean and 1/σ per row for the backward:
/// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·weight; dweight = Σ g·x̂; dbias = Σ g.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let d = x.shape[x.rank - 1]
    if let weight { precondition(weight.shape == [d], "layerNorm: weight \(weight.shape) != [\(d)] for input \(x.shape)") }
    if let bias { precondition(bias.shape == [d], "layerNorm: bias \(bias.shape) != [\(d)] for input \(x.shape)") }
    let rows = x.count / Swift.max(d, 1)
    let y = Tensor.empty(x.shape)
    let xhat = Tensor.empty(x.shape)
    var rstd = [Float](repeating: 0, count: rows)
    let sp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer), hp = SendablePointer(xhat.storage.pointer)
    let wp = weight.map { SendablePointer($0.storage.pointer) }, bp = bias.map { SendablePointer($0.storage.pointer) }
    rstd.withUnsafeMutableBufferPointer { rb in
        let rp = SendablePointer(rb.baseAddress!)
        parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(d, 1))) { r in
            for row in r {
                let s = sp.p + row * d, o = yp.p + row * d, h = hp.p + row * d
                let mean = Kernels.sum(s, d) / Float(d)
                let v = Kernels.sumOfSquaredDeviations(s, d, mean: mean)
                let rs = 1 / (v / Float(d) + eps).squareRoot()
                rp.p[row] = rs
                for k in 0..<d {
                    let xh = (s[k] - mean) * rs
                    h[k] = xh
                    var out = xh
                    if let wp { out *= wp.p[k] }
                    if let bp { out += bp.p[k] }
                    o[k] = out
                }
            }
        }
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let wd = weight?.detached()
    let (nx, nw, nb) = (x.requiresGrad, weight?.requiresGrad ?? false, bias?.requiresGrad ?? false)
    let shape = x.shape
    return Tensor.record(y, inputs: inputs, name: "layerNorm") { g in
        let gq = SendablePointer(g.storage.pointer), hq = SendablePointer(xhat.storage.pointer)
        var result: [Tensor?] = []
        if nx {
            let gx = Tensor.empty(shape)
            let oq = SendablePointer(gx.storage.pointer)
            let wq = wd.map { SendablePointer($0.storage.pointer) }
            rstd.withUnsafeBufferPointer { rb in
                let rq = SendablePointer(UnsafeMutablePointer(mutating: rb.baseAddress!))
                parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(d, 1))) { r in
                    for row in r {
                        let gr = gq.p + row * d, hr = hq.p + row * d, o = oq.p + row * d
                        let rs = rq.p[row]
                        if let w = wq?.p {
                            let m1 = Kernels.dot(gr, w, d) / Float(d), m2 = Kernels.dot3(gr, w, hr, d) / Float(d)
                            for k in 0..<d { o[k] = rs * (gr[k] * w[k] - m1 - hr[k] * m2) }
                        } else {
                            let m1 = Kernels.sum(gr, d) / Float(d), m2 = Kernels.dot(gr, hr, d) / Float(d)
                            for k in 0..<d { o[k] = rs * (gr[k] - m1 - hr[k] * m2) }
                        }
                    }
                }
            }
            result.append(gx)
        } else { result.append(nil) }
        if wd != nil {
            if nw {
                // Σ over rows of g·x̂, columns split over workers (each column summed in row order).
                let gw = Tensor(zeros: [d]); let oq = SendablePointer(gw.storage.pointer)
                parallelFor(d, grain: 64) { cols in
                    let o = oq.p
                    for row in 0..<rows {
                        let gr = gq.p + row * d, hr = hq.p + row * d
                        for k in cols { o[k] += gr[k] * hr[k] }
                    }
                }
                result.append(gw)
            } else { result.append(nil) }
        }
        if bias != nil { result.append(nb ? sumAxisKernel(g.reshaped([rows, d]), 0).reshaped([d]) : nil) }
        return result
    }
}

extension Tensor {
    /// Euclidean norm over `axis`. Backward x/‖x‖ (0 where the norm is 0, as PyTorch).
    public func norm(axis: Int, keepDims: Bool = false) -> Tensor {
        let a = normalizedAxis(axis)
        let ss = sumKernel(zipKernel(self.detached(), self.detached()) { $0 * $1 }, axes: [a])
        let nrm = mapKernel(ss) { $0.squareRoot() }
        let outShape = Tensor.reducedShape(shape, [a], keepDims: keepDims)
        let xd = self.detached(), keptShape = nrm.shape
        return Tensor.record(nrm.reshaped(outShape), inputs: [self], name: "norm") { g in
            let scale = zipKernel(g.reshaped(keptShape), nrm) { g, n in n == 0 ? 0 : g / n }
            return [broadcastKernel(xd, scale) { $0 * $1 }]
        }
    }
}

/// x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize with p = 2).
public func l2Normalize(_ x: Tensor, axis: Int = -1, eps: Float = 1e-12) -> Tensor {
    x / x.norm(axis: axis, keepDims: true).clamp(min: eps)
}

/// Cosine similarity along `axis`: Σ (a/max(‖a‖, eps))·(b/max(‖b‖, eps)) (torch 2.x formula),
/// with broadcasting between `a` and `b`.
public func cosineSimilarity(_ a: Tensor, _ b: Tensor, axis: Int = 1, eps: Float = 1e-8) -> Tensor {
    let an = a / a.norm(axis: axis, keepDims: true).clamp(min: eps)
    let bn = b / b.norm(axis: axis, keepDims: true).clamp(min: eps)
    let outShape = broadcastShape(a.shape, b.shape)
    let ax = axis < 0 ? axis + outShape.count : axis
    return (an * bn).sum(axis: ax)
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by 1/(1−p).
/// Identity when `training` is false or p = 0. The mask comes from `generator`.
public func dropout(_ x: Tensor, p: Float, training: Bool = true, generator: inout RandomGenerator) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout: p = \(p) must be in [0, 1)")
    if !training || p == 0 { return x }
    let scale = 1 / (1 - p)
    let mask = Tensor(shape: x.shape) { q in for i in 0..<q.count { q[i] = generator.uniform() < p ? 0 : scale } }
    return x * mask
}

/// Embedding lookup: rows of `weight` [vocabulary, dim] at `indices` → indices.shape + [dim].
/// Gradient: scatter-add into the rows used.
public func embedding(_ indices: [Int], shape: [Int]? = nil, weight: Tensor) -> Tensor {
    precondition(weight.rank == 2, "embedding: weight must be [vocabulary, dim], got \(weight.shape)")
    let outLead = shape ?? [indices.count]
    precondition(outLead.reduce(1, *) == indices.count, "embedding: shape \(outLead) does not hold \(indices.count) indices")
    return weight.indexSelect(axis: 0, indices: indices).reshaped(outLead + [weight.shape[1]])
}

/// Embedding lookup with indices held in a tensor of integer-valued Floats.
public func embedding(_ indices: Tensor, weight: Tensor) -> Tensor {
    embedding(indices.scalars.map { Int($0) }, shape: indices.shape, weight: weight)
}

/// An attention mask: `.boolean` (nonzero = may attend, as PyTorch's bool `attn_mask`) or
/// `.additive` (added to the scores, e.g. −inf to block). Both broadcast to [..., Lq, Lk].
public enum AttentionMask: Sendable {
    case boolean(Tensor)
    case additive(Tensor)
}

/// softmax(q·kᵀ·scale + mask)·v with batched BLAS. q: [..., Lq, d], k: [..., Lk, d],
/// v: [..., Lk, dv] → [..., Lq, dv]; scale defaults to 1/√d (torch's scaled_dot_product_attention).
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: AttentionMask? = nil,
                                      scale: Float? = nil) -> Tensor {
    let d = q.shape[q.rank - 1]
    precondition(k.shape[k.rank - 1] == d, "attention: q \(q.shape) and k \(k.shape) head sizes differ")
    let sc = scale ?? 1 / Float(d).squareRoot()
    var scores = matmulTransposedB(q, k) * sc
    switch mask {
    case .none: break
    case .additive(let m): scores = scores + m
    case .boolean(let m):
        let blocked = mapKernel(m.detached()) { $0 != 0 ? 0 : 1 }
        scores = scores.maskedFill(blocked, -.infinity)
    }
    return matmul(softmax(scores, axis: -1), v)
}
