import Foundation

// Fused ops for training pre-norm transformer blocks (ViT): each is one node on the tape with a
// hand-written backward that saves only what the backward needs.
//
//   packedSelfAttention(qkv)             softmax(q·kᵀ·scale)·v per head; saves qkv, out, lse per row
//   preNormAttentionResidual(x, …)       x + proj(attention(qkv(layerNorm(x))))
//                                        saves x, mean/rstd per row, qkv, the attention output, lse
//   preNormMLPResidual(x, …)             x + fc2(gelu(fc1(layerNorm(x))))
//                                        saves x, mean/rstd per row, fc1's pre-activation
//
// Nothing of shape [B, heads, N, N] is kept: the backward recomputes the probabilities from the
// log-sum-exp, the LayerNorm output from the statistics and gelu(u) from u. Compared with the
// composition of the separate differentiable ops this keeps ≈ 15·N·D floats per block instead of
// ≈ 45·N·D + 3·heads·N² (D = width, MLP 4·D). Numbers equal the unfused composition up to float
// rounding (goldens against torch, Tools/goldens/make_fused_goldens.py).

private func checkVector(_ t: Tensor?, _ n: Int, _ what: String, _ op: String) {
    if let t { precondition(t.shape == [n], "\(op): \(what) \(t.shape) != [\(n)]") }
}

/// Multi-head self-attention core on a packed projection: qkv [B, N, 3·D] (q, k, v each [B, N, D]
/// with heads of D / heads channels side by side, as `Linear(D, 3·D)` produces them) → [B, N, D],
/// out[b, i, h·hd + j] = Σ_t softmax_t(q_i·k_t·scale)·v_t[j] per head h; scale defaults to 1/√hd.
/// Memory-efficient: the backward keeps qkv, the output and one log-sum-exp per score row.
public func packedSelfAttention(_ qkv: Tensor, heads: Int, scale: Float? = nil) -> Tensor {
    precondition(qkv.rank == 3 && heads > 0 && qkv.shape[2] % (3 * heads) == 0,
                 "packedSelfAttention: qkv \(qkv.shape) must be [B, N, 3·D] with D divisible by \(heads) heads")
    let (b, n, d) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    let hd = d / heads, sc = scale ?? 1 / Float(hd).squareRoot()
    let out = Tensor.empty([b, n, d])
    guard b > 0 && n > 0 && hd > 0 else { return Tensor.record(out, inputs: [qkv], name: "packedSelfAttention") { _ in [Tensor(zeros: [b, n, 3 * d])] } }
    let lse = Tensor.empty([b * heads * n])
    TransformerKernels.attentionForward(batch: b, tokens: n, heads: heads, headDim: hd, scale: sc, qkv: qkv.storage.pointer,
                                        out: out.storage.pointer, lse: lse.storage.pointer)
    let qd = qkv.detached()
    return Tensor.record(out, inputs: [qkv], name: "packedSelfAttention") { g in
        let dq = Tensor.empty(qd.shape)
        TransformerKernels.attentionBackward(batch: b, tokens: n, heads: heads, headDim: hd, scale: sc, qkv: qd.storage.pointer,
                                             out: out.storage.pointer, lse: lse.storage.pointer, dOut: g.storage.pointer,
                                             dqkv: dq.storage.pointer)
        return [dq]
    }
}

/// The attention half of a pre-norm transformer block, fused:
/// y = x + proj(attention(qkv(layerNorm(x)))) for x [B, N, D], with
/// qkv = h·qkvWeightᵀ + qkvBias (qkvWeight [3·D, D]), heads as `packedSelfAttention`
/// (scale 1/√(D/heads)), proj = o·projWeightᵀ + projBias (projWeight [D, D]), layerNorm as
/// AxialTensor's `layerNorm` (biased variance, eps). Gradients for every input that requires one.
public func preNormAttentionResidual(_ x: Tensor, normWeight: Tensor?, normBias: Tensor?, eps: Float,
                                     qkvWeight: Tensor, qkvBias: Tensor?, projWeight: Tensor, projBias: Tensor?,
                                     heads: Int) -> Tensor {
    let op = "preNormAttentionResidual"
    precondition(x.rank == 3, "\(op): input \(x.shape) must be [B, N, D]")
    let (b, n, d) = (x.shape[0], x.shape[1], x.shape[2])
    precondition(heads > 0 && d > 0 && d % heads == 0, "\(op): width \(d) not divisible by \(heads) heads")
    checkVector(normWeight, d, "norm weight", op); checkVector(normBias, d, "norm bias", op)
    precondition(qkvWeight.shape == [3 * d, d], "\(op): qkv weight \(qkvWeight.shape) != [\(3 * d), \(d)]")
    checkVector(qkvBias, 3 * d, "qkv bias", op)
    precondition(projWeight.shape == [d, d], "\(op): proj weight \(projWeight.shape) != [\(d), \(d)]")
    checkVector(projBias, d, "proj bias", op)
    let m = b * n, hd = d / heads, scale = 1 / Float(hd).squareRoot(), d3 = 3 * d
    let stats = Tensor.empty([2, m]), qkv = Tensor.empty([m, d3]), o = Tensor.empty([m, d])
    let lse = Tensor.empty([Swift.max(b * heads * n, 0)]), y = Tensor.empty(x.shape)
    let xp = x.storage.pointer, sp = stats.storage.pointer, qp = qkv.storage.pointer, op_ = o.storage.pointer, yp = y.storage.pointer
    let lw = normWeight?.storage.pointer, lb = normBias?.storage.pointer
    let wq = qkvWeight.storage.pointer, bqp = qkvBias?.storage.pointer, wpp = projWeight.storage.pointer, bpp = projBias?.storage.pointer
    if m > 0 {
        let h = TransformerScratch.shared.take(m * d)
        let hp = h.pointer
        TransformerKernels.forEachTile(m) { r in
            TransformerKernels.layerNormRows(r, d: d, x: xp, weight: lw, bias: lb, eps: eps, out: hp, mean: sp, rstd: sp + m)
            let c = qp + r.lowerBound * d3
            if let bqp { for i in 0..<r.count { (c + i * d3).update(from: bqp, count: d3) } }
            BLAS.sgemm(transA: false, transB: true, m: r.count, n: d3, k: d, a: hp + r.lowerBound * d, lda: d, b: wq, ldb: d,
                       beta: bqp == nil ? 0 : 1, c: c, ldc: d3, partition: false)
        }
        TransformerScratch.shared.give(h)
        TransformerKernels.attentionForward(batch: b, tokens: n, heads: heads, headDim: hd, scale: scale, qkv: qp, out: op_,
                                            lse: lse.storage.pointer)
        TransformerKernels.forEachTile(m) { r in
            let c = yp + r.lowerBound * d
            for i in 0..<r.count {
                let row = c + i * d, s = xp + (r.lowerBound + i) * d
                if let bpp { for k in 0..<d { row[k] = s[k] + bpp[k] } } else { row.update(from: s, count: d) }
            }
            BLAS.sgemm(transA: false, transB: true, m: r.count, n: d, k: d, a: op_ + r.lowerBound * d, lda: d, b: wpp, ldb: d,
                       beta: 1, c: c, ldc: d, partition: false)
        }
    }
    guard Tensor.isGradEnabled else { return y }
    var inputs = [x]
    for t in [normWeight, normBias] { if let t { inputs.append(t) } }
    inputs.append(qkvWeight)
    if let qkvBias { inputs.append(qkvBias) }
    inputs.append(projWeight)
    if let projBias { inputs.append(projBias) }
    let need = inputs.map(\.requiresGrad)
    let xd = x.detached(), lwd = normWeight?.detached(), lbd = normBias?.detached()
    let wqd = qkvWeight.detached(), wpd = projWeight.detached()
    let (hasLW, hasLB, hasQB, hasPB) = (normWeight != nil, normBias != nil, qkvBias != nil, projBias != nil)
    return Tensor.record(y, inputs: inputs, name: op) { g in
        var k = 0
        func next() -> Bool { defer { k += 1 }; return need[k] }
        let nx = next(), nlw = hasLW ? next() : false, nlb = hasLB ? next() : false
        let nqw = next(), nqb = hasQB ? next() : false, npw = next(), npb = hasPB ? next() : false
        let gp = g.storage.pointer, xq = xd.storage.pointer, st = stats.storage.pointer
        var gx: Tensor? = nil, gLW: Tensor? = nil, gLB: Tensor? = nil, gQW: Tensor? = nil, gQB: Tensor? = nil, gPW: Tensor? = nil, gPB: Tensor? = nil
        if npw {
            let t = Tensor.empty([d, d])
            BLAS.sgemm(transA: true, transB: false, m: d, n: d, k: m, a: gp, lda: d, b: o.storage.pointer, ldb: d, c: t.storage.pointer, ldc: d)
            gPW = t
        }
        if npb { gPB = Tensor.empty([d]) }
        let upstream = nx || nlw || nlb || nqw || nqb
        if upstream && m > 0 {
            let dO = TransformerScratch.shared.take(m * d), dQ = TransformerScratch.shared.take(m * d3)
            BLAS.sgemm(transA: false, transB: false, m: m, n: d, k: d, a: gp, lda: d, b: wpd.storage.pointer, ldb: d, c: dO.pointer, ldc: d)
            TransformerKernels.attentionBackward(batch: b, tokens: n, heads: heads, headDim: hd, scale: scale, qkv: qkv.storage.pointer,
                                                 out: o.storage.pointer, lse: lse.storage.pointer, dOut: dO.pointer, dqkv: dQ.pointer)
            if nqb {
                let t = Tensor.empty([d3])
                TransformerKernels.columnSums(rows: m, cols: d3, dQ.pointer, ld: d3, into: t.storage.pointer)
                gQB = t
            }
            if nqw {
                let h = TransformerScratch.shared.take(m * d)
                let hp = h.pointer, lwp = lwd?.storage.pointer, lbp = lbd?.storage.pointer
                parallelFor(m, grain: 64) { r in
                    TransformerKernels.layerNormRecompute(r, d: d, x: xq, mean: st, rstd: st + m, weight: lwp, bias: lbp, out: hp)
                }
                let t = Tensor.empty([d3, d])
                BLAS.sgemm(transA: true, transB: false, m: d3, n: d, k: m, a: dQ.pointer, lda: d3, b: hp, ldb: d, c: t.storage.pointer, ldc: d)
                TransformerScratch.shared.give(h)
                gQW = t
            }
            if nx || nlw || nlb {
                // dh = dqkv·W_qkv (into dO's buffer), then the LayerNorm backward plus the residual.
                BLAS.sgemm(transA: false, transB: false, m: m, n: d, k: d3, a: dQ.pointer, lda: d3, b: wqd.storage.pointer, ldb: d,
                           c: dO.pointer, ldc: d)
                if nx { gx = Tensor.empty(xd.shape) }
                if nlw { gLW = Tensor.empty([d]) }
                if nlb { gLB = Tensor.empty([d]) }
                TransformerKernels.layerNormBackward(rows: m, d: d, x: xq, mean: st, rstd: st + m, weight: lwd?.storage.pointer,
                                                     dy: dO.pointer, residual: gp, dx: gx?.storage.pointer,
                                                     dWeight: gLW?.storage.pointer, dBias: gLB?.storage.pointer,
                                                     residualSum: gPB?.storage.pointer)
            }
            TransformerScratch.shared.give(dO); TransformerScratch.shared.give(dQ)
            if let t = gPB, !(nx || nlw || nlb) { TransformerKernels.columnSums(rows: m, cols: d, gp, ld: d, into: t.storage.pointer) }
        } else {
            if let t = gPB { TransformerKernels.columnSums(rows: m, cols: d, gp, ld: d, into: t.storage.pointer) }
            if nx { gx = g.copy() }
            if nlw { gLW = Tensor(zeros: [d]) }
            if nlb { gLB = Tensor(zeros: [d]) }
            if nqw { gQW = Tensor(zeros: [d3, d]) }
            if nqb { gQB = Tensor(zeros: [d3]) }
        }
        var res: [Tensor?] = [nx ? gx : nil]
        if hasLW { res.append(gLW) }
        if hasLB { res.append(gLB) }
        res.append(gQW)
        if hasQB { res.append(gQB) }
        res.append(gPW)
        if hasPB { res.append(gPB) }
        return res
    }
}

/// The MLP half of a pre-norm transformer block, fused:
/// y = x + fc2(gelu(fc1(layerNorm(x)))) for x [B…, D] (any leading axes), fc1 = h·fc1Weightᵀ + fc1Bias
/// (fc1Weight [H, D]), GELU the exact erf form, fc2 = a·fc2Weightᵀ + fc2Bias (fc2Weight [D, H]).
/// Saves x, the row statistics and fc1's output u; the backward recomputes layerNorm(x) and gelu(u).
public func preNormMLPResidual(_ x: Tensor, normWeight: Tensor?, normBias: Tensor?, eps: Float,
                               fc1Weight: Tensor, fc1Bias: Tensor?, fc2Weight: Tensor, fc2Bias: Tensor?) -> Tensor {
    let op = "preNormMLPResidual"
    precondition(x.rank >= 1 && x.shape[x.rank - 1] > 0, "\(op): input \(x.shape) must be [..., D]")
    let d = x.shape[x.rank - 1]
    checkVector(normWeight, d, "norm weight", op); checkVector(normBias, d, "norm bias", op)
    precondition(fc1Weight.rank == 2 && fc1Weight.shape[1] == d, "\(op): fc1 weight \(fc1Weight.shape) must be [H, \(d)]")
    let hid = fc1Weight.shape[0]
    checkVector(fc1Bias, hid, "fc1 bias", op)
    precondition(fc2Weight.shape == [d, hid], "\(op): fc2 weight \(fc2Weight.shape) != [\(d), \(hid)]")
    checkVector(fc2Bias, d, "fc2 bias", op)
    let m = x.count / d
    let stats = Tensor.empty([2, m]), u = Tensor.empty([m, hid]), y = Tensor.empty(x.shape)
    let xp = x.storage.pointer, sp = stats.storage.pointer, up = u.storage.pointer, yp = y.storage.pointer
    let lw = normWeight?.storage.pointer, lb = normBias?.storage.pointer
    let w1 = fc1Weight.storage.pointer, b1 = fc1Bias?.storage.pointer, w2 = fc2Weight.storage.pointer, b2 = fc2Bias?.storage.pointer
    if m > 0 {
        let h = TransformerScratch.shared.take(m * d), a = TransformerScratch.shared.take(m * hid)
        let hp = h.pointer, ap = a.pointer
        TransformerKernels.forEachTile(m) { r in
            let r0 = r.lowerBound, rows = r.count
            TransformerKernels.layerNormRows(r, d: d, x: xp, weight: lw, bias: lb, eps: eps, out: hp, mean: sp, rstd: sp + m)
            let uc = up + r0 * hid
            if let b1 { for i in 0..<rows { (uc + i * hid).update(from: b1, count: hid) } }
            BLAS.sgemm(transA: false, transB: true, m: rows, n: hid, k: d, a: hp + r0 * d, lda: d, b: w1, ldb: d,
                       beta: b1 == nil ? 0 : 1, c: uc, ldc: hid, partition: false)
            TransformerSIMD.geluForward(uc, ap + r0 * hid, rows * hid)
            let yc = yp + r0 * d
            for i in 0..<rows {
                let row = yc + i * d, s = xp + (r0 + i) * d
                if let b2 { for k in 0..<d { row[k] = s[k] + b2[k] } } else { row.update(from: s, count: d) }
            }
            BLAS.sgemm(transA: false, transB: true, m: rows, n: d, k: hid, a: ap + r0 * hid, lda: hid, b: w2, ldb: hid,
                       beta: 1, c: yc, ldc: d, partition: false)
        }
        TransformerScratch.shared.give(h); TransformerScratch.shared.give(a)
    }
    guard Tensor.isGradEnabled else { return y }
    var inputs = [x]
    for t in [normWeight, normBias] { if let t { inputs.append(t) } }
    inputs.append(fc1Weight)
    if let fc1Bias { inputs.append(fc1Bias) }
    inputs.append(fc2Weight)
    if let fc2Bias { inputs.append(fc2Bias) }
    let need = inputs.map(\.requiresGrad)
    let xd = x.detached(), lwd = normWeight?.detached(), lbd = normBias?.detached()
    let w1d = fc1Weight.detached(), w2d = fc2Weight.detached()
    let (hasLW, hasLB, hasB1, hasB2) = (normWeight != nil, normBias != nil, fc1Bias != nil, fc2Bias != nil)
    return Tensor.record(y, inputs: inputs, name: op) { g in
        var k = 0
        func next() -> Bool { defer { k += 1 }; return need[k] }
        let nx = next(), nlw = hasLW ? next() : false, nlb = hasLB ? next() : false
        let nw1 = next(), nb1 = hasB1 ? next() : false, nw2 = next(), nb2 = hasB2 ? next() : false
        let gp = g.storage.pointer, xq = xd.storage.pointer, st = stats.storage.pointer, uq = u.storage.pointer
        var gx: Tensor? = nil, gLW: Tensor? = nil, gLB: Tensor? = nil, gW1: Tensor? = nil, gB1: Tensor? = nil, gW2: Tensor? = nil, gB2: Tensor? = nil
        if nb2 { gB2 = Tensor.empty([d]) }
        let upstream = nx || nlw || nlb || nw1 || nb1
        if m > 0 && (nw2 || upstream) {
            let a = TransformerScratch.shared.take(m * hid)
            let ap = a.pointer
            if nw2 {
                TransformerKernels.gelu(uq, ap, m * hid)
                let t = Tensor.empty([d, hid])
                BLAS.sgemm(transA: true, transB: false, m: d, n: hid, k: m, a: gp, lda: d, b: ap, ldb: hid, c: t.storage.pointer, ldc: hid)
                gW2 = t
            }
            if upstream {
                // da = g·W2 (over a's buffer), du = da·gelu′(u) in place.
                BLAS.sgemm(transA: false, transB: false, m: m, n: hid, k: d, a: gp, lda: d, b: w2d.storage.pointer, ldb: hid, c: ap, ldc: hid)
                if nb1 { gB1 = Tensor.empty([hid]) }
                TransformerKernels.geluBackwardInPlace(rows: m, cols: hid, da: ap, u: uq, columnSums: gB1?.storage.pointer)
                if nw1 {
                    let h = TransformerScratch.shared.take(m * d)
                    let hp = h.pointer, lwp = lwd?.storage.pointer, lbp = lbd?.storage.pointer
                    parallelFor(m, grain: 64) { r in
                        TransformerKernels.layerNormRecompute(r, d: d, x: xq, mean: st, rstd: st + m, weight: lwp, bias: lbp, out: hp)
                    }
                    let t = Tensor.empty([hid, d])
                    BLAS.sgemm(transA: true, transB: false, m: hid, n: d, k: m, a: ap, lda: hid, b: hp, ldb: d, c: t.storage.pointer, ldc: d)
                    TransformerScratch.shared.give(h)
                    gW1 = t
                }
                if nx || nlw || nlb {
                    let dh = TransformerScratch.shared.take(m * d)
                    BLAS.sgemm(transA: false, transB: false, m: m, n: d, k: hid, a: ap, lda: hid, b: w1d.storage.pointer, ldb: d,
                               c: dh.pointer, ldc: d)
                    if nx { gx = Tensor.empty(xd.shape) }
                    if nlw { gLW = Tensor.empty([d]) }
                    if nlb { gLB = Tensor.empty([d]) }
                    TransformerKernels.layerNormBackward(rows: m, d: d, x: xq, mean: st, rstd: st + m, weight: lwd?.storage.pointer,
                                                         dy: dh.pointer, residual: gp, dx: gx?.storage.pointer,
                                                         dWeight: gLW?.storage.pointer, dBias: gLB?.storage.pointer,
                                                         residualSum: gB2?.storage.pointer)
                    TransformerScratch.shared.give(dh)
                } else if let t = gB2 {
                    TransformerKernels.columnSums(rows: m, cols: d, gp, ld: d, into: t.storage.pointer)
                }
            } else if let t = gB2 {
                TransformerKernels.columnSums(rows: m, cols: d, gp, ld: d, into: t.storage.pointer)
            }
            TransformerScratch.shared.give(a)
        } else {
            if let t = gB2 { TransformerKernels.columnSums(rows: m, cols: d, gp, ld: d, into: t.storage.pointer) }
            if nw2 { gW2 = Tensor(zeros: [d, hid]) }
            if nx { gx = g.copy() }
            if nlw { gLW = Tensor(zeros: [d]) }
            if nlb { gLB = Tensor(zeros: [d]) }
            if nw1 { gW1 = Tensor(zeros: [hid, d]) }
            if nb1 { gB1 = Tensor(zeros: [hid]) }
        }
        var res: [Tensor?] = [nx ? gx : nil]
        if hasLW { res.append(gLW) }
        if hasLB { res.append(gLB) }
        res.append(gW1)
        if hasB1 { res.append(gB1) }
        res.append(gW2)
        if hasB2 { res.append(gB2) }
        return res
    }
}

/// Frees the idle scratch buffers the fused transformer ops keep between calls.
public func releaseFusedTransformerScratch() { TransformerScratch.shared.clear() }
