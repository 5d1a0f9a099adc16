/// Batch normalisation over the channel axis 1 of [N, C], [N, C, L] or [N, C, H, W]
/// (torch.nn.functional.batch_norm), with a fused forward that caches x̂ and 1/σ per channel
/// and a hand-written backward. Channels are split over workers.

/// Batch norm with running statistics, as torch.nn.functional.batch_norm.
///
/// Training: normalise with the batch mean and biased variance over (N, spatial); update
/// running_mean ← (1 − momentum)·running_mean + momentum·mean and running_var likewise with the
/// unbiased variance (in place, as PyTorch; not recorded on the graph). Eval: normalise with the
/// running statistics. y = x̂·weight + bias (affine optional).
/// Backward (training): dx = weight·rstd·(g − mean(g) − x̂·mean(g·x̂)); eval: dx = weight·rstd·g;
/// dweight = Σ g·x̂; dbias = Σ g.
public func batchNorm(_ x: Tensor, runningMean: inout Tensor, runningVar: inout Tensor, weight: Tensor? = nil,
                      bias: Tensor? = nil, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
    let C = batchNormChannels(x, weight: weight, bias: bias)
    precondition(runningMean.shape == [C] && runningVar.shape == [C],
                 "batchNorm: running mean \(runningMean.shape) / var \(runningVar.shape) must be [\(C)] for input \(x.shape)")
    if !training {
        return batchNormCore(x, C: C, weight: weight, bias: bias, eps: eps, stats: (runningMean.detached(), runningVar.detached())).y
    }
    let r: (y: Tensor, mean: [Float], variance: [Float]), count: Int
    if let comm = BatchNormSync.collective {
        let s = batchNormSynchronized(x, C: C, weight: weight, bias: bias, eps: eps, collective: comm)
        r = (s.y, s.mean, s.variance); count = s.count
    } else {
        r = batchNormCore(x, C: C, weight: weight, bias: bias, eps: eps, stats: nil)
        count = x.count / Swift.max(C, 1)
    }
    precondition(count > 1, "batchNorm: expected more than 1 value per channel when training, got input \(x.shape)")
    let unbias = Float(count) / Float(count - 1)
    runningMean.withUnsafeMutableBufferPointer { m in
        for c in 0..<C { m[c] = (1 - momentum) * m[c] + momentum * r.mean[c] }
    }
    runningVar.withUnsafeMutableBufferPointer { v in
        for c in 0..<C { v[c] = (1 - momentum) * v[c] + momentum * r.variance[c] * unbias }
    }
    return r.y
}

/// Batch norm with batch statistics only (track_running_stats = False, or training without
/// keeping running estimates).
public func batchNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) -> Tensor {
    let C = batchNormChannels(x, weight: weight, bias: bias)
    if let comm = BatchNormSync.collective {
        return batchNormSynchronized(x, C: C, weight: weight, bias: bias, eps: eps, collective: comm).y
    }
    return batchNormCore(x, C: C, weight: weight, bias: bias, eps: eps, stats: nil).y
}

/// Training-mode batch norm over the global batch of a data-parallel job (`withSynchronizedBatchNorm`).
///
/// Forward: per channel the local count, Σx and Σx² (Double) are all-reduced; mean = Σx/n,
/// var = Σx²/n − mean² (biased), n = global count. Backward: Σg and Σg·x̂ are all-reduced, then
/// dx = weight·rstd·(g − Σg/n − x̂·Σg·x̂/n), the gradient of each rank's loss through the global
/// statistics (torch `SyncBatchNorm`); dweight = Σ_local g·x̂, dbias = Σ_local g (averaged later by
/// the gradient all-reduce with the other parameters). Returns y, mean, biased var, global count.
func batchNormSynchronized(_ x: Tensor, C: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                           collective comm: any Collective) -> (y: Tensor, mean: [Float], variance: [Float], count: Int) {
    let N = x.shape[0], S = x.count / Swift.max(N * C, 1), localCount = N * S
    // [Σx (C), Σx² (C), count]
    var stats = [Double](repeating: 0, count: 2 * C + 1)
    x.withUnsafeBufferPointer { xp in
        for c in 0..<C {
            var s = 0.0, q = 0.0
            for n in 0..<N {
                let row = xp.baseAddress! + (n * C + c) * S
                for k in 0..<S { let v = Double(row[k]); s += v; q += v * v }
            }
            stats[c] = s; stats[C + c] = q
        }
    }
    stats[2 * C] = Double(localCount)
    stats.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
    let total = stats[2 * C]
    let count = Int(total.rounded())
    precondition(count > 0, "batchNorm (synchronised): empty global batch for input \(x.shape)")
    var mean = [Float](repeating: 0, count: C), variance = [Float](repeating: 0, count: C), rstd = [Float](repeating: 0, count: C)
    for c in 0..<C {
        let m = stats[c] / total
        let v = Swift.max(0, stats[C + c] / total - m * m)
        mean[c] = Float(m); variance[c] = Float(v); rstd[c] = Float(1 / (v + Double(eps)).squareRoot())
    }
    let y = Tensor.empty(x.shape), xhat = Tensor.empty(x.shape)
    x.withUnsafeBufferPointer { xp in
        let yp = y.storage.pointer, hp = xhat.storage.pointer
        let w = weight?.scalars, b = bias?.scalars
        for n in 0..<N {
            for c in 0..<C {
                let off = (n * C + c) * S
                let m = mean[c], rs = rstd[c], scale = w?[c] ?? 1, shift = b?[c] ?? 0
                for k in 0..<S {
                    let xh = (xp[off + k] - m) * rs
                    hp[off + k] = xh
                    yp[off + k] = xh * scale + shift
                }
            }
        }
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let wd = weight?.scalars
    let (nx, nw, nb) = (x.requiresGrad, weight?.requiresGrad ?? false, bias?.requiresGrad ?? false)
    let (hasW, hasB) = (weight != nil, bias != nil)
    let shape = x.shape
    let out = Tensor.record(y, inputs: inputs, name: "batchNormSynchronized") { g in
        // Local Σg, Σg·x̂ per channel (Double), then their global sums.
        var sums = [Double](repeating: 0, count: 2 * C)
        g.withUnsafeBufferPointer { gp in xhat.withUnsafeBufferPointer { hp in
            for n in 0..<N {
                for c in 0..<C {
                    let off = (n * C + c) * S
                    var a = 0.0, b = 0.0
                    for k in 0..<S { let gv = Double(gp[off + k]); a += gv; b += gv * Double(hp[off + k]) }
                    sums[c] += a; sums[C + c] += b
                }
            }
        } }
        let local = sums
        sums.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        var gx: Tensor? = nil
        if nx {
            let d = Tensor.empty(shape)
            g.withUnsafeBufferPointer { gp in xhat.withUnsafeBufferPointer { hp in
                let dp = d.storage.pointer
                for n in 0..<N {
                    for c in 0..<C {
                        let off = (n * C + c) * S
                        let k0 = (wd?[c] ?? 1) * rstd[c]
                        let m1 = Float(sums[c] / total), m2 = Float(sums[C + c] / total)
                        for k in 0..<S { dp[off + k] = k0 * (gp[off + k] - m1 - hp[off + k] * m2) }
                    }
                }
            } }
            gx = d
        }
        var res: [Tensor?] = [gx]
        if hasW { res.append(nw ? Tensor(shape: [C], scalars: (0..<C).map { Float(local[C + $0]) }) : nil) }
        if hasB { res.append(nb ? Tensor(shape: [C], scalars: (0..<C).map { Float(local[$0]) }) : nil) }
        return res
    }
    return (out, mean, variance, count)
}

private func batchNormChannels(_ x: Tensor, weight: Tensor?, bias: Tensor?) -> Int {
    precondition(x.rank >= 2, "batchNorm: input must be [N, C, ...], got \(x.shape)")
    let C = x.shape[1]
    if let weight { precondition(weight.shape == [C], "batchNorm: weight \(weight.shape) != [\(C)] for input \(x.shape)") }
    if let bias { precondition(bias.shape == [C], "batchNorm: bias \(bias.shape) != [\(C)] for input \(x.shape)") }
    return C
}

/// Shared forward/backward. `stats` = (mean, var) to normalise with (eval); nil = batch statistics.
/// Returns y and the batch mean and biased variance per channel (training only).
private func batchNormCore(_ x: Tensor, C: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                           stats: (Tensor, Tensor)?) -> (y: Tensor, mean: [Float], variance: [Float]) {
    let N = x.shape[0], S = x.count / Swift.max(N * C, 1), count = N * S
    let training = stats == nil
    let y = Tensor.empty(x.shape)
    let xhat = Tensor.empty(x.shape)
    var mean = [Float](repeating: 0, count: C), variance = [Float](repeating: 0, count: C), rstd = [Float](repeating: 0, count: C)
    let xp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer), hp = SendablePointer(xhat.storage.pointer)
    let wp = weight.map { SendablePointer($0.storage.pointer) }, bp = bias.map { SendablePointer($0.storage.pointer) }
    let sm = stats.map { (SendablePointer($0.0.storage.pointer), SendablePointer($0.1.storage.pointer)) }
    mean.withUnsafeMutableBufferPointer { mb in variance.withUnsafeMutableBufferPointer { vb in rstd.withUnsafeMutableBufferPointer { rb in
        let mp = SendablePointer(mb.baseAddress!), vp = SendablePointer(vb.baseAddress!), rp = SendablePointer(rb.baseAddress!)
        parallelFor(C, grain: Swift.max(1, 16384 / Swift.max(count, 1))) { r in
            for c in r {
                var m: Float, v: Float
                if let sm {
                    m = sm.0.p[c]; v = sm.1.p[c]
                } else {
                    var s: Float = 0
                    for n in 0..<N { s += Kernels.sum(xp.p + (n * C + c) * S, S) }
                    m = s / Float(count)
                    var q: Float = 0
                    for n in 0..<N {
                        let row = xp.p + (n * C + c) * S
                        for k in 0..<S { let d = row[k] - m; q = q.addingProduct(d, d) }
                    }
                    v = q / Float(count)
                }
                let rs = 1 / (v + eps).squareRoot()
                mp.p[c] = m; vp.p[c] = v; rp.p[c] = rs
                let scale = wp?.p[c] ?? 1, shift = bp?.p[c] ?? 0
                for n in 0..<N {
                    let off = (n * C + c) * S
                    let s = xp.p + off, h = hp.p + off, o = yp.p + off
                    for k in 0..<S {
                        let xh = (s[k] - m) * rs
                        h[k] = xh
                        o[k] = xh * scale + shift
                    }
                }
            }
        }
    } } }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let wd = weight?.detached()
    let (nx, nw, nb) = (x.requiresGrad, weight?.requiresGrad ?? false, bias?.requiresGrad ?? false)
    let (hasW, hasB) = (weight != nil, bias != nil)
    let shape = x.shape
    let rstdCopy = rstd
    let out = Tensor.record(y, inputs: inputs, name: "batchNorm") { g in
        let gx = nx ? Tensor.empty(shape) : nil
        var sumG = [Float](repeating: 0, count: C), sumGH = [Float](repeating: 0, count: C)
        let gp = SendablePointer(g.storage.pointer), hq = SendablePointer(xhat.storage.pointer)
        let gxp = gx.map { SendablePointer($0.storage.pointer) }
        let wq = wd.map { SendablePointer($0.storage.pointer) }
        sumG.withUnsafeMutableBufferPointer { sg in sumGH.withUnsafeMutableBufferPointer { sgh in
            let sgp = SendablePointer(sg.baseAddress!), sghp = SendablePointer(sgh.baseAddress!)
            rstdCopy.withUnsafeBufferPointer { rb in
                let rp = SendablePointer(UnsafeMutablePointer(mutating: rb.baseAddress!))
                parallelFor(C, grain: Swift.max(1, 16384 / Swift.max(count, 1))) { r in
                    for c in r {
                        var a: Float = 0, b: Float = 0
                        for n in 0..<N {
                            let off = (n * C + c) * S
                            a += Kernels.sum(gp.p + off, S)
                            b += Kernels.dot(gp.p + off, hq.p + off, S)
                        }
                        sgp.p[c] = a; sghp.p[c] = b
                        guard let gxp else { continue }
                        let k0 = (wq?.p[c] ?? 1) * rp.p[c]
                        let m1 = a / Float(count), m2 = b / Float(count)
                        for n in 0..<N {
                            let off = (n * C + c) * S
                            let gs = gp.p + off, h = hq.p + off, d = gxp.p + off
                            if training {
                                for k in 0..<S { d[k] = k0 * (gs[k] - m1 - h[k] * m2) }
                            } else {
                                for k in 0..<S { d[k] = k0 * gs[k] }
                            }
                        }
                    }
                }
            }
        } }
        var res: [Tensor?] = [gx]
        if hasW { res.append(nw ? Tensor(shape: [C], scalars: sumGH) : nil) }
        if hasB { res.append(nb ? Tensor(shape: [C], scalars: sumG) : nil) }
        return res
    }
    return (out, mean, variance)
}
