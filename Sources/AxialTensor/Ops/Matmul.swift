/// Matrix products through the one BLAS wrapper: matmul, batched matmul, linear.

/// op(A)·op(B) over broadcast batch dims. `a` stores [..., m, k] ([..., k, m] when `transA`),
/// `b` stores [..., k, n] ([..., n, k] when `transB`). No graph.
func batchedGemm(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, alpha: Float = 1) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transA ? (ac, ar) : (ar, ac)
    let (k2, n) = transB ? (bc, br) : (br, bc)
    precondition(k == k2, "matmul: inner sizes differ: \(a.shape)\(transA ? "ᵀ" : "") · \(b.shape)\(transB ? "ᵀ" : "")")
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    let batch = broadcastShape(aBatch, bBatch)
    let nb = batch.reduce(1, *)
    let out = Tensor.empty(batch + [m, n])
    let sa = broadcastStrides(aBatch, to: batch), sb = broadcastStrides(bBatch, to: batch)
    let aMat = ar * ac, bMat = br * bc
    let pa = SendablePointer(a.storage.pointer), pb = SendablePointer(b.storage.pointer), pc = SendablePointer(out.storage.pointer)
    let lda = ac, ldb = bc
    func offsets(_ i: Int) -> (Int, Int) {
        var rem = i, oa = 0, ob = 0
        var d = batch.count - 1
        while d >= 0 { let c = rem % batch[d]; rem /= batch[d]; oa += c * sa[d]; ob += c * sb[d]; d -= 1 }
        return (oa * aMat, ob * bMat)
    }
    if nb == 1 {
        BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa.p, lda: lda, b: pb.p, ldb: ldb, c: pc.p, ldc: n,
                   aCount: a.count, bCount: b.count, cCount: out.count)
    } else {
        parallelFor(nb, grain: Swift.max(1, (1 << 16) / Swift.max(m * n * k, 1))) { r in
            for i in r {
                let (oa, ob) = offsets(i)
                BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa.p + oa, lda: lda,
                           b: pb.p + ob, ldb: ldb, c: pc.p + i * m * n, ldc: n, partition: false,
                           aCount: a.count - oa, bCount: b.count - ob, cCount: out.count - i * m * n)
            }
        }
    }
    return out
}

/// Matrix product with PyTorch's batching: [..., m, k] · [..., k, n] → [..., m, n], batch axes
/// broadcast. Both operands must have rank ≥ 2. Gradients: g·Bᵀ and Aᵀ·g (summed over broadcast axes).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (ad, bd) = (a.detached(), b.detached())
    let (na, nb) = (a.requiresGrad, b.requiresGrad)
    let y = batchedGemm(a, transA: false, b, transB: false)
    return Tensor.record(y, inputs: [a, b], name: "matmul") { g in
        [na ? reduceToShape(batchedGemm(g, transA: false, bd, transB: true), ad.shape) : nil,
         nb ? reduceToShape(batchedGemm(ad, transA: true, g, transB: false), bd.shape) : nil]
    }
}

/// a·bᵀ over the last two axes ([..., m, k] · [..., n, k] → [..., m, n]) without materialising bᵀ.
public func matmulTransposedB(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (ad, bd) = (a.detached(), b.detached())
    let (na, nb) = (a.requiresGrad, b.requiresGrad)
    let y = batchedGemm(a, transA: false, b, transB: true)
    return Tensor.record(y, inputs: [a, b], name: "matmulTB") { g in
        [na ? reduceToShape(batchedGemm(g, transA: false, bd, transB: false), ad.shape) : nil,
         nb ? reduceToShape(batchedGemm(g, transA: true, ad, transB: false), bd.shape) : nil]
    }
}

/// y = x·Wᵀ + b.  x: [..., in], weight: [out, in], bias: [out] → [..., out] (one GEMM; the bias
/// is folded in with beta = 1). Gradients: dx = g·W, dW = gᵀ·x, db = Σ g over rows.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let inF = weight.shape[1], outF = weight.shape[0]
    precondition(x.rank >= 1 && x.shape[x.rank - 1] == inF, "linear: input \(x.shape) last axis != weight in-features \(inF) (weight \(weight.shape))")
    if let bias { precondition(bias.shape == [outF], "linear: bias \(bias.shape) != [\(outF)]") }
    let m = x.count / Swift.max(inF, 1)
    let outShape = Array(x.shape.dropLast()) + [outF]
    let y = Tensor.empty(outShape)
    let yp = y.storage.pointer
    if let bias {
        let bp = bias.storage.pointer
        for r in 0..<m { (yp + r * outF).update(from: bp, count: outF) }
    }
    BLAS.sgemm(transA: false, transB: true, m: m, n: outF, k: inF, a: x.storage.pointer, lda: inF,
               b: weight.storage.pointer, ldb: inF, beta: bias == nil ? 0 : 1, c: yp, ldc: outF,
               aCount: x.count, bCount: weight.count, cCount: y.count)
    let (xd, wd) = (x.detached(), weight.detached())
    let (nx, nw, nbias) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    let hasBias = bias != nil
    return Tensor.record(y, inputs: inputs, name: "linear") { g in
        var r: [Tensor?] = []
        if nx {
            let gx = Tensor.empty(xd.shape)
            BLAS.sgemm(transA: false, transB: false, m: m, n: inF, k: outF, a: g.storage.pointer, lda: outF,
                       b: wd.storage.pointer, ldb: inF, c: gx.storage.pointer, ldc: inF,
                       aCount: g.count, bCount: wd.count, cCount: gx.count)
            r.append(gx)
        } else { r.append(nil) }
        if nw {
            let gw = Tensor.empty([outF, inF])
            BLAS.sgemm(transA: true, transB: false, m: outF, n: inF, k: m, a: g.storage.pointer, lda: outF,
                       b: xd.storage.pointer, ldb: inF, c: gw.storage.pointer, ldc: inF,
                       aCount: g.count, bCount: xd.count, cCount: gw.count)
            r.append(gw)
        } else { r.append(nil) }
        if hasBias { r.append(nbias ? sumAxisKernel(g.reshaped([m, outF]), 0).reshaped([outF]) : nil) }
        return r
    }
}
