/// Pooling over [N, C, H, W] (PyTorch semantics, ceil_mode = false): avgPool2d, maxPool2d,
/// adaptiveAvgPool2d, globalAveragePool2d. Planes (image, channel) are split over workers.

/// Output size of a pooling window sweep: ⌊(size + 2·padding − dilation·(kernel − 1) − 1)/stride⌋ + 1.
@inline(__always)
func pooledSize(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1) -> Int {
    (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
}

/// Checks a pooling call's input and window; returns (N·C planes, H, W).
private func poolingInput(_ name: String, _ x: Tensor, kernel: Size2D, stride: Size2D, padding: Size2D) -> (Int, Int, Int) {
    precondition(x.rank == 4, "\(name): input must be [N, C, H, W], got \(x.shape)")
    precondition(kernel.h > 0 && kernel.w > 0 && stride.h > 0 && stride.w > 0, "\(name): kernel \(kernel) and stride \(stride) must be positive")
    precondition(padding.h >= 0 && padding.w >= 0 && padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2,
                 "\(name): padding \(padding) must be between 0 and half the kernel \(kernel)")
    return (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
}

/// Average pooling, as torch.nn.functional.avg_pool2d (ceil_mode = false). `stride` defaults to
/// the kernel size. With `countIncludePad` the divisor is the window size clipped to the padded
/// image (kh·kw here); otherwise the number of real pixels in the window.
/// Gradient: each output's g/divisor spread over its window.
public func avgPool2d(_ x: Tensor, kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0,
                      countIncludePad: Bool = true) -> Tensor {
    let st = stride ?? kernelSize
    let (planes, H, W) = poolingInput("avgPool2d", x, kernel: kernelSize, stride: st, padding: padding)
    let OH = pooledSize(H, kernel: kernelSize.h, stride: st.h, padding: padding.h)
    let OW = pooledSize(W, kernel: kernelSize.w, stride: st.w, padding: padding.w)
    precondition(OH > 0 && OW > 0, "avgPool2d: input \(x.shape) too small for kernel \(kernelSize)")
    // Window bounds per output row/column and the divisor per output position.
    func windows(_ n: Int, _ size: Int, _ k: Int, _ s: Int, _ p: Int) -> (lo: [Int], hi: [Int], padded: [Int]) {
        var lo = [Int](), hi = [Int](), padded = [Int]()
        for o in 0..<n {
            let start = o * s - p, end = Swift.min(start + k, size + p)
            padded.append(end - start)
            lo.append(Swift.max(start, 0)); hi.append(Swift.min(end, size))
        }
        return (lo, hi, padded)
    }
    let rows = windows(OH, H, kernelSize.h, st.h, padding.h), cols = windows(OW, W, kernelSize.w, st.w, padding.w)
    var inv = [Float](repeating: 0, count: OH * OW)
    for oh in 0..<OH {
        for ow in 0..<OW {
            let count = countIncludePad ? rows.padded[oh] * cols.padded[ow] : (rows.hi[oh] - rows.lo[oh]) * (cols.hi[ow] - cols.lo[ow])
            inv[oh * OW + ow] = 1 / Float(count)
        }
    }
    let y = Tensor.empty([x.shape[0], x.shape[1], OH, OW])
    let xp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer)
    parallelFor(planes, grain: Swift.max(1, 8192 / Swift.max(H * W, 1))) { r in
        for pl in r {
            let s = xp.p + pl * H * W, o = yp.p + pl * OH * OW
            for oh in 0..<OH {
                for ow in 0..<OW {
                    var acc: Float = 0
                    for i in rows.lo[oh]..<rows.hi[oh] { for j in cols.lo[ow]..<cols.hi[ow] { acc += s[i * W + j] } }
                    o[oh * OW + ow] = acc * inv[oh * OW + ow]
                }
            }
        }
    }
    let inShape = x.shape
    return Tensor.record(y, inputs: [x], name: "avgPool2d") { g in
        let gx = Tensor(zeros: inShape)
        let gp = SendablePointer(g.storage.pointer), dp = SendablePointer(gx.storage.pointer)
        parallelFor(planes, grain: Swift.max(1, 8192 / Swift.max(H * W, 1))) { r in
            for pl in r {
                let s = gp.p + pl * OH * OW, d = dp.p + pl * H * W
                for oh in 0..<OH {
                    for ow in 0..<OW {
                        let v = s[oh * OW + ow] * inv[oh * OW + ow]
                        for i in rows.lo[oh]..<rows.hi[oh] { for j in cols.lo[ow]..<cols.hi[ow] { d[i * W + j] += v } }
                    }
                }
            }
        }
        return [gx]
    }
}

/// Max pooling, as torch.nn.functional.max_pool2d (ceil_mode = false; padding counts as −∞).
/// `stride` defaults to the kernel size. Ties and NaN follow PyTorch's CPU kernel: the first
/// maximum in row-major window order wins; a NaN (the last one) wins over numbers.
/// Gradient: g routed to the winning input of each window (accumulated where windows overlap).
public func maxPool2d(_ x: Tensor, kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0,
                      dilation: Size2D = 1) -> Tensor {
    let st = stride ?? kernelSize
    let (planes, H, W) = poolingInput("maxPool2d", x, kernel: kernelSize, stride: st, padding: padding)
    precondition(dilation.h > 0 && dilation.w > 0, "maxPool2d: dilation \(dilation) must be positive")
    let OH = pooledSize(H, kernel: kernelSize.h, stride: st.h, padding: padding.h, dilation: dilation.h)
    let OW = pooledSize(W, kernel: kernelSize.w, stride: st.w, padding: padding.w, dilation: dilation.w)
    precondition(OH > 0 && OW > 0, "maxPool2d: input \(x.shape) too small for kernel \(kernelSize)")
    let (kh, kw) = (kernelSize.h, kernelSize.w)
    let y = Tensor.empty([x.shape[0], x.shape[1], OH, OW])
    var argmax = [Int32](repeating: 0, count: planes * OH * OW)
    let xp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer)
    argmax.withUnsafeMutableBufferPointer { ab in
        let ap = SendablePointer(ab.baseAddress!)
        parallelFor(planes, grain: Swift.max(1, 8192 / Swift.max(H * W, 1))) { r in
            for pl in r {
                let s = xp.p + pl * H * W, o = yp.p + pl * OH * OW, a = ap.p + pl * OH * OW
                for oh in 0..<OH {
                    let h0 = oh * st.h - padding.h
                    for ow in 0..<OW {
                        let w0 = ow * st.w - padding.w
                        var best = -Float.infinity, bestIndex = -1
                        for i in 0..<kh {
                            let ih = h0 + i * dilation.h
                            if ih < 0 || ih >= H { continue }
                            for j in 0..<kw {
                                let iw = w0 + j * dilation.w
                                if iw < 0 || iw >= W { continue }
                                let v = s[ih * W + iw]
                                if bestIndex < 0 || v > best || v.isNaN { best = v; bestIndex = ih * W + iw }
                            }
                        }
                        o[oh * OW + ow] = best
                        a[oh * OW + ow] = Int32(bestIndex)
                    }
                }
            }
        }
    }
    let inShape = x.shape
    return Tensor.record(y, inputs: [x], name: "maxPool2d") { g in
        let gx = Tensor(zeros: inShape)
        let gp = g.storage.pointer, dp = gx.storage.pointer
        argmax.withUnsafeBufferPointer { a in
            for pl in 0..<planes {
                let s = gp + pl * OH * OW, d = dp + pl * H * W, ai = a.baseAddress! + pl * OH * OW
                for k in 0..<(OH * OW) where ai[k] >= 0 { d[Int(ai[k])] += s[k] }
            }
        }
        return [gx]
    }
}

/// Adaptive average pooling to `outputSize`, as torch.nn.functional.adaptive_avg_pool2d:
/// output cell i averages input rows ⌊i·H/OH⌋ ..< ⌈(i+1)·H/OH⌉ (same for columns).
/// Gradient: g/area spread over each cell's window.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2D) -> Tensor {
    precondition(x.rank == 4, "adaptiveAvgPool2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(outputSize.h > 0 && outputSize.w > 0, "adaptiveAvgPool2d: output size \(outputSize) must be positive")
    let (planes, H, W) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let (OH, OW) = (outputSize.h, outputSize.w)
    let rl = (0..<OH).map { $0 * H / OH }, rh = (0..<OH).map { (($0 + 1) * H + OH - 1) / OH }
    let cl = (0..<OW).map { $0 * W / OW }, ch = (0..<OW).map { (($0 + 1) * W + OW - 1) / OW }
    let y = Tensor.empty([x.shape[0], x.shape[1], OH, OW])
    let xp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer)
    parallelFor(planes, grain: Swift.max(1, 8192 / Swift.max(H * W, 1))) { r in
        for pl in r {
            let s = xp.p + pl * H * W, o = yp.p + pl * OH * OW
            for oh in 0..<OH {
                for ow in 0..<OW {
                    var acc: Float = 0
                    for i in rl[oh]..<rh[oh] { acc += Kernels.sum(s + i * W + cl[ow], ch[ow] - cl[ow]) }
                    o[oh * OW + ow] = acc / Float((rh[oh] - rl[oh]) * (ch[ow] - cl[ow]))
                }
            }
        }
    }
    let inShape = x.shape
    return Tensor.record(y, inputs: [x], name: "adaptiveAvgPool2d") { g in
        let gx = Tensor(zeros: inShape)
        let gp = SendablePointer(g.storage.pointer), dp = SendablePointer(gx.storage.pointer)
        parallelFor(planes, grain: Swift.max(1, 8192 / Swift.max(H * W, 1))) { r in
            for pl in r {
                let s = gp.p + pl * OH * OW, d = dp.p + pl * H * W
                for oh in 0..<OH {
                    for ow in 0..<OW {
                        let v = s[oh * OW + ow] / Float((rh[oh] - rl[oh]) * (ch[ow] - cl[ow]))
                        for i in rl[oh]..<rh[oh] { for j in cl[ow]..<ch[ow] { d[i * W + j] += v } }
                    }
                }
            }
        }
        return [gx]
    }
}

/// Global average pooling: mean over all spatial axes of [N, C, ...] → [N, C] (or [N, C, 1, …, 1]
/// with `keepDims`), as `x.mean((2, 3))` / adaptive_avg_pool2d(x, 1).
public func globalAveragePool(_ x: Tensor, keepDims: Bool = false) -> Tensor {
    precondition(x.rank >= 3, "globalAveragePool: input must be [N, C, spatial...], got \(x.shape)")
    return x.mean(axes: Array(2..<x.rank), keepDims: keepDims)
}
