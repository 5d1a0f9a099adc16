/// Convolutions (PyTorch semantics, NCHW / NCL): conv2d, conv1d, convTranspose2d.
///
/// General case: im2col per image and group, then one sgemm per (image, group) with the bias
/// folded in (beta = 1), images split over `parallelFor` workers (OpenBLAS on one thread each).
/// Depthwise (groups == in == out channels) uses a direct kernel vectorised over the output width.
/// Each op's backward sits beside its forward.

/// A pair of sizes (height, width) for kernel, stride, padding, dilation: `3` or `[3, 1]`.
public struct Size2D: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(integerLiteral value: Int) { h = value; w = value }
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 2, "Size2D: need [h, w], got \(elements)")
        h = elements[0]; w = elements[1]
    }
    public var description: String { "(\(h), \(w))" }
}

/// Geometry of one im2col: an image of `channels × height × width` seen through a
/// `kh × kw` kernel (stride, padding, dilation) giving `outH × outW` positions.
@usableFromInline
struct ConvGeometry {
    var channels: Int, height: Int, width: Int
    var kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int, dh: Int, dw: Int
    var outH: Int, outW: Int
    /// Rows of the column matrix (channels·kh·kw) and its columns (outH·outW).
    var rows: Int { channels * kh * kw }
    var cols: Int { outH * outW }
    /// True when im2col is the identity (1×1 kernel, stride 1, no padding).
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }

    /// Output positions o in 0..<outSize with 0 ≤ o·stride + offset < size.
    @inline(__always)
    static func validRange(offset: Int, stride: Int, size: Int, outSize: Int) -> Range<Int> {
        let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let last = size - 1 - offset
        let hi = last < 0 ? 0 : Swift.min(outSize, last / stride + 1)
        return Swift.min(lo, hi)..<hi
    }

    /// Entry checks of im2col / col2im (O(1), kept in release builds): every size ≥ 0, strides and
    /// dilations ≥ 1 (the valid-range arithmetic divides by the stride). Reads of the image stay
    /// inside channels × height × width by construction (`validRange`); the column matrix is
    /// rows × cols. The callers check their tensors' counts against these sizes (`checkBuffers`).
    @inline(__always)
    func checkGeometry() {
        precondition(channels >= 0 && height >= 0 && width >= 0 && kh >= 1 && kw >= 1 && outH >= 0 && outW >= 0
                     && sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && ph >= 0 && pw >= 0,
                     "im2col: invalid geometry \(self)")
    }

    /// The image / column buffer sizes one (image, group) needs, against what the caller holds:
    /// `image` floats from the image pointer's base, `columns` from the column matrix's.
    func checkBuffers(image: Int, columns: Int, caller: String) {
        checkGeometry()
        precondition(image >= channels * height * width, "\(caller): image buffer of \(image) floats < \(channels)×\(height)×\(width)")
        precondition(columns >= rows * cols, "\(caller): column buffer of \(columns) floats < \(rows)×\(cols)")
    }

    /// col[(c·kh + i)·kw + j, oh·outW + ow] = src[c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] (0 outside).
    func im2col(_ src: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        checkGeometry()
        let plane = height * width, P = cols
        for c in 0..<channels {
            let s = src + c * plane
            for i in 0..<kh {
                let offH = i * dh - ph
                for j in 0..<kw {
                    let offW = j * dw - pw
                    let row = col + ((c * kh + i) * kw + j) * P
                    let wr = ConvGeometry.validRange(offset: offW, stride: sw, size: width, outSize: outW)
                    for oh in 0..<outH {
                        let d = row + oh * outW
                        let ih = oh * sh + offH
                        if ih < 0 || ih >= height { d.update(repeating: 0, count: outW); continue }
                        if wr.lowerBound > 0 { d.update(repeating: 0, count: wr.lowerBound) }
                        if wr.upperBound < outW { (d + wr.upperBound).update(repeating: 0, count: outW - wr.upperBound) }
                        let sr = s + ih * width + offW
                        if sw == 1 {
                            if !wr.isEmpty { (d + wr.lowerBound).update(from: sr + wr.lowerBound, count: wr.count) }
                        } else {
                            for ow in wr { d[ow] = sr[ow * sw] }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: dst[c, ih, iw] += col[...] for every position that read it.
    func col2im(_ col: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        checkGeometry()
        let plane = height * width, P = cols
        for c in 0..<channels {
            let dp = dst + c * plane
            for i in 0..<kh {
                let offH = i * dh - ph
                for j in 0..<kw {
                    let offW = j * dw - pw
                    let row = col + ((c * kh + i) * kw + j) * P
                    let wr = ConvGeometry.validRange(offset: offW, stride: sw, size: width, outSize: outW)
                    if wr.isEmpty { continue }
                    for oh in 0..<outH {
                        let ih = oh * sh + offH
                        if ih < 0 || ih >= height { continue }
                        let s = row + oh * outW
                        let d = dp + ih * width + offW
                        if sw == 1 {
                            SpatialKernels.add(d + wr.lowerBound, s + wr.lowerBound, wr.count)
                        } else {
                            for ow in wr { d[ow * sw] += s[ow] }
                        }
                    }
                }
            }
        }
    }
}

/// SIMD helpers shared by the spatial kernels.
@usableFromInline
enum SpatialKernels {
    /// y[i] += x[i].
    @inline(__always)
    static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        let ry = UnsafeMutableRawPointer(y), rx = UnsafeRawPointer(x)
        while i + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// y[i] += a·x[i] (fused multiply-add).
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, _ n: Int) {
        var i = 0
        let av = SIMD8<Float>(repeating: a)
        let ry = UnsafeMutableRawPointer(y), rx = UnsafeRawPointer(x)
        while i + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                .addingProduct(av, rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] = y[i].addingProduct(a, x[i]); i += 1 }
    }

    /// Σ a[i]·b[i] with one SIMD8 accumulator per 8 lanes (short rows).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 8 <= n {
            acc.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            i += 8
        }
        var s = acc.sum()
        while i < n { s = s.addingProduct(a[i], b[i]); i += 1 }
        return s
    }

    /// Σ over n of the channel sums of g [N, C, P] → [C].
    static func channelSums(_ g: Tensor, n: Int, c: Int, p: Int) -> Tensor {
        let out = Tensor(zeros: [c])
        let gp = g.storage.pointer, o = out.storage.pointer
        for b in 0..<n { for ch in 0..<c { o[ch] += Kernels.sum(gp + (b * c + ch) * p, p) } }
        return out
    }

    /// Per-worker partition of `0..<n` into `parts` contiguous chunks.
    @inline(__always)
    static func chunk(_ w: Int, of parts: Int, _ n: Int) -> Range<Int> { (w * n / parts)..<((w + 1) * n / parts) }
}

// MARK: - conv2d

/// 2-D convolution (cross-correlation), as torch.nn.functional.conv2d.
///
/// x: [N, C, H, W], weight: [O, C/groups, kh, kw], bias: [O] → [N, O, OH, OW] with
/// OH = ⌊(H + 2·padding.h − dilation.h·(kh − 1) − 1)/stride.h⌋ + 1 (same for W).
/// Gradients for input, weight and bias. Depthwise (groups == C == O) runs a direct SIMD kernel.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Size2D = 0,
                   dilation: Size2D = 1, groups: Int = 1) -> Tensor {
    conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups, directDepthwise: true)
}

/// `conv2d` with the depthwise kernel switchable (tests compare it with the GEMM path).
func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D, dilation: Size2D, groups: Int,
            directDepthwise: Bool) -> Tensor {
    precondition(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(weight.rank == 4, "conv2d: weight must be [O, C/groups, kh, kw], got \(weight.shape)")
    let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (O, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    precondition(groups >= 1 && C % groups == 0 && O % groups == 0, "conv2d: groups \(groups) must divide in channels \(C) and out channels \(O)")
    precondition(weight.shape[1] == C / groups, "conv2d: weight \(weight.shape) needs \(C / groups) input channels per group for input \(x.shape), groups \(groups)")
    if let bias { precondition(bias.shape == [O], "conv2d: bias \(bias.shape) != [\(O)]") }
    precondition(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
                 "conv2d: stride \(stride), dilation \(dilation) must be positive and padding \(padding) non-negative")
    let OH = (H + 2 * padding.h - dilation.h * (kh - 1) - 1) / stride.h + 1
    let OW = (W + 2 * padding.w - dilation.w * (kw - 1) - 1) / stride.w + 1
    precondition(OH > 0 && OW > 0, "conv2d: input \(x.shape) too small for kernel \(kh)×\(kw), padding \(padding), dilation \(dilation)")
    let geo = ConvGeometry(channels: C / groups, height: H, width: W, kh: kh, kw: kw, sh: stride.h, sw: stride.w,
                           ph: padding.h, pw: padding.w, dh: dilation.h, dw: dilation.w, outH: OH, outW: OW)
    if directDepthwise && groups == C && O == C && C > 1 {
        return depthwiseConv2d(x, weight: weight, bias: bias, geo: geo, batch: N)
    }
    let (xd, wd) = (x.detached(), weight.detached())
    let y = convForward(xd, wd, bias, geo: geo, batch: N, groups: groups, outChannels: O)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    let (nx, nw, nb) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    let hasBias = bias != nil
    return Tensor.record(y, inputs: inputs, name: "conv2d") { g in
        let (gx, gw) = convBackward(g, xd, wd, geo: geo, batch: N, groups: groups, outChannels: O, needX: nx, needW: nw)
        var r: [Tensor?] = [gx, gw]
        if hasBias { r.append(nb ? SpatialKernels.channelSums(g, n: N, c: O, p: geo.cols) : nil) }
        return r
    }
}

/// y[n, g·Og + o] = W_g · im2col(x[n, g·Cg ...]) + bias, one sgemm per (image, group).
func convForward(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, geo: ConvGeometry, batch N: Int, groups: Int, outChannels O: Int) -> Tensor {
    let C = geo.channels * groups, K = geo.rows, P = geo.cols, Og = O / groups
    let plane = geo.height * geo.width
    let y = Tensor.empty([N, O, geo.outH, geo.outW])
    geo.checkBuffers(image: x.count / Swift.max(1, N * groups), columns: geo.rows * geo.cols, caller: "conv forward")
    precondition(x.count == N * C * plane && w.count >= O * K && O % groups == 0 && (bias?.count ?? O) >= O,
                 "conv forward: input \(x.shape) / weight \(w.shape) disagree with geometry \(geo), \(N) images, \(groups) groups")
    let xp = SendablePointer(x.storage.pointer), wp = SendablePointer(w.storage.pointer), yp = SendablePointer(y.storage.pointer)
    let bp = bias.map { SendablePointer($0.storage.pointer) }
    let pointwise = geo.isPointwise
    let workers = Swift.min(Parallel.workerCount, N)
    parallelFor(workers) { wr in
        for wk in wr {
            let col = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: K * P)
            defer { col?.deallocate() }
            for n in SpatialKernels.chunk(wk, of: workers, N) {
                for gi in 0..<groups {
                    let xin = xp.p + (n * C + gi * geo.channels) * plane
                    let out = yp.p + (n * O + gi * Og) * P
                    if let bp { for o in 0..<Og { (out + o * P).update(repeating: bp.p[gi * Og + o], count: P) } }
                    let b: UnsafePointer<Float>
                    if let col { geo.im2col(xin, col); b = UnsafePointer(col) } else { b = UnsafePointer(xin) }
                    BLAS.sgemm(transA: false, transB: false, m: Og, n: P, k: K, a: wp.p + gi * Og * K, lda: K, b: b, ldb: P,
                               beta: bp == nil ? 0 : 1, c: out, ldc: P, partition: workers == 1)
                }
            }
        }
    }
    return y
}

/// Input and weight gradients of `convForward`: dcol = W_gᵀ·g → col2im; dW_g = Σₙ g·colᵀ
/// (per-worker partial sums, added at the end).
func convBackward(_ g: Tensor, _ x: Tensor, _ w: Tensor, geo: ConvGeometry, batch N: Int, groups: Int, outChannels O: Int,
                  needX: Bool, needW: Bool) -> (Tensor?, Tensor?) {
    if !needX && !needW { return (nil, nil) }
    let C = geo.channels * groups, K = geo.rows, P = geo.cols, Og = O / groups
    let plane = geo.height * geo.width
    let gx = needX ? Tensor(zeros: [N, C, geo.height, geo.width]) : nil
    geo.checkGeometry()
    precondition(x.count == N * C * plane && w.count >= O * K && g.count == N * O * P && O % groups == 0,
                 "conv backward: input \(x.shape) / weight \(w.shape) / gradient \(g.shape) disagree with geometry \(geo)")
    let workers = Swift.min(Parallel.workerCount, N)
    let partials = needW ? Tensor.empty([workers, O * K]) : nil
    let xp = SendablePointer(x.storage.pointer), wp = SendablePointer(w.storage.pointer), gp = SendablePointer(g.storage.pointer)
    let gxp = gx.map { SendablePointer($0.storage.pointer) }, pp = partials.map { SendablePointer($0.storage.pointer) }
    let pointwise = geo.isPointwise
    parallelFor(workers) { wr in
        for wk in wr {
            let col = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: K * P)
            defer { col?.deallocate() }
            let part = pp.map { $0.p + wk * O * K }
            var first = true
            for n in SpatialKernels.chunk(wk, of: workers, N) {
                for gi in 0..<groups {
                    let gout = gp.p + (n * O + gi * Og) * P
                    if let part {
                        let xin = xp.p + (n * C + gi * geo.channels) * plane
                        let b: UnsafePointer<Float>
                        if let col { geo.im2col(xin, col); b = UnsafePointer(col) } else { b = UnsafePointer(xin) }
                        BLAS.sgemm(transA: false, transB: true, m: Og, n: K, k: P, a: gout, lda: P, b: b, ldb: P,
                                   beta: first ? 0 : 1, c: part + gi * Og * K, ldc: K, partition: workers == 1)
                    }
                    if let gxp {
                        let dst = gxp.p + (n * C + gi * geo.channels) * plane
                        BLAS.sgemm(transA: true, transB: false, m: K, n: P, k: Og, a: wp.p + gi * Og * K, lda: K, b: gout, ldb: P,
                                   beta: 0, c: col ?? dst, ldc: P, partition: workers == 1)
                        if let col { geo.col2im(col, dst) }
                    }
                }
                first = false
            }
            if first, let part { part.update(repeating: 0, count: O * K) }
        }
    }
    var gw: Tensor? = nil
    if let partials {
        let total = Tensor.empty(w.shape)
        let t = total.storage.pointer, p = partials.storage.pointer
        t.update(from: p, count: O * K)
        for wk in 1..<Swift.max(workers, 1) { SpatialKernels.add(t, p + wk * O * K, O * K) }
        gw = total
    }
    return (gx, gw)
}

// MARK: - depthwise

/// Zeroed floats after each depthwise scratch plane, so that 32-wide row blocks may read past
/// the last row (lanes beyond the row are computed and discarded).
let depthwiseSlack = 40

/// Copies a [rows, cols] plane into a zero-bordered scratch plane of row length `ld` at (top, left).
@inline(__always)
func copyIntoScratch(_ src: UnsafePointer<Float>, rows: Int, cols: Int, _ dst: UnsafeMutablePointer<Float>, ld: Int, top: Int, left: Int) {
    for r in 0..<rows { (dst + (r + top) * ld + left).update(from: src + r * cols, count: cols) }
}

/// Depthwise conv2d (weight [C, 1, kh, kw]), direct kernel. Each (image, channel) plane is
/// copied into a zero-padded scratch plane; every output row accumulates the kh·kw taps in
/// SIMD8 registers (`depthwiseRow`, 32 columns at a time).
/// Backward, split over channels: with stride 1 and padding ≤ dilation·(k − 1) the input
/// gradient is the same row kernel run over the zero-padded output gradient with the flipped
/// kernel (else a scatter); the weight gradient of each tap is one SIMD dot product of the
/// output-gradient plane with the shifted input plane.
func depthwiseConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geo: ConvGeometry, batch N: Int) -> Tensor {
    let C = x.shape[1]
    let (H, W, OH, OW) = (geo.height, geo.width, geo.outH, geo.outW)
    let (kh, kw, sh, sw, ph, pw, dh, dw) = (geo.kh, geo.kw, geo.sh, geo.sw, geo.ph, geo.pw, geo.dh, geo.dw)
    let Hp = H + 2 * ph, Wp = W + 2 * pw, P = OH * OW, taps = kh * kw
    let y = Tensor.empty([N, C, OH, OW])
    let xp = SendablePointer(x.storage.pointer), wp = SendablePointer(weight.storage.pointer), yp = SendablePointer(y.storage.pointer)
    let bp = bias.map { SendablePointer($0.storage.pointer) }
    parallelFor(N * C, grain: Swift.max(1, 4096 / Swift.max(P * taps, 1))) { r in
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: Hp * Wp + depthwiseSlack)
        defer { pad.deallocate() }
        pad.initialize(repeating: 0, count: Hp * Wp + depthwiseSlack)
        for planeIndex in r {
            let c = planeIndex % C
            copyIntoScratch(xp.p + planeIndex * H * W, rows: H, cols: W, pad, ld: Wp, top: ph, left: pw)
            let wc = wp.p + c * taps
            let b = bp?.p[c] ?? 0
            let out = yp.p + planeIndex * P
            for oh in 0..<OH {
                let o = out + oh * OW
                let base = pad + oh * sh * Wp
                if sw == 1 {
                    depthwiseRow(o, base, wc, bias: b, width: OW, kh: kh, kw: kw, dh: dh, dw: dw, rowStride: Wp)
                } else {
                    for ow in 0..<OW {
                        var s = b
                        for i in 0..<kh { for j in 0..<kw { s = s.addingProduct(wc[i * kw + j], base[i * dh * Wp + ow * sw + j * dw]) } }
                        o[ow] = s
                    }
                }
            }
        }
    }
    let (xd, wd) = (x.detached(), weight.detached())
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    let (nx, nw, nb) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    let hasBias = bias != nil
    let wshape = weight.shape
    // Gather form of the input gradient: g zero-padded by (k − 1)·d − p, flipped kernel.
    let qh = (kh - 1) * dh - ph, qw = (kw - 1) * dw - pw
    let gather = sh == 1 && sw == 1 && qh >= 0 && qw >= 0
    let Hg = H + (kh - 1) * dh, Wg = W + (kw - 1) * dw
    let OWr = (OW + 7) / 8 * 8
    return Tensor.record(y, inputs: inputs, name: "depthwiseConv2d") { g in
        let gx = nx ? Tensor.empty([N, C, H, W]) : nil
        let gw = nw ? Tensor.empty(wshape) : nil
        let gp = SendablePointer(g.storage.pointer), xq = SendablePointer(xd.storage.pointer), wq = SendablePointer(wd.storage.pointer)
        let gxp = gx.map { SendablePointer($0.storage.pointer) }, gwp = gw.map { SendablePointer($0.storage.pointer) }
        parallelFor(C) { r in
            let xpad = UnsafeMutablePointer<Float>.allocate(capacity: Hp * Wp + depthwiseSlack)
            let gsize = gather ? Hg * Wg : Hp * Wp
            let gpad = UnsafeMutablePointer<Float>.allocate(capacity: gsize + depthwiseSlack)
            let gbuf = UnsafeMutablePointer<Float>.allocate(capacity: OH * OWr)
            let flipped = UnsafeMutablePointer<Float>.allocate(capacity: taps)
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: taps)
            defer { xpad.deallocate(); gpad.deallocate(); gbuf.deallocate(); flipped.deallocate(); acc.deallocate() }
            xpad.initialize(repeating: 0, count: Hp * Wp + depthwiseSlack)
            gpad.initialize(repeating: 0, count: gsize + depthwiseSlack)
            gbuf.initialize(repeating: 0, count: OH * OWr)
            for c in r {
                acc.initialize(repeating: 0, count: taps)
                let wc = wq.p + c * taps
                for t in 0..<taps { flipped[t] = wc[taps - 1 - t] }
                for n in 0..<N {
                    let plane = n * C + c
                    let gplane = gp.p + plane * P
                    if gwp != nil {
                        copyIntoScratch(xq.p + plane * H * W, rows: H, cols: W, xpad, ld: Wp, top: ph, left: pw)
                        if sw == 1 {
                            copyIntoScratch(gplane, rows: OH, cols: OW, gbuf, ld: OWr, top: 0, left: 0)
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    acc[i * kw + j] += depthwiseTapDot(gbuf, rowLength: OWr, rows: OH, xpad + i * dh * Wp + j * dw, rowStride: sh * Wp)
                                }
                            }
                        } else {
                            for oh in 0..<OH {
                                for i in 0..<kh {
                                    let off = (oh * sh + i * dh) * Wp
                                    for j in 0..<kw {
                                        var s: Float = 0
                                        for ow in 0..<OW { s = s.addingProduct(gplane[oh * OW + ow], xpad[off + ow * sw + j * dw]) }
                                        acc[i * kw + j] += s
                                    }
                                }
                            }
                        }
                    }
                    guard let gxp else { continue }
                    let dst = gxp.p + plane * H * W
                    if gather {
                        copyIntoScratch(gplane, rows: OH, cols: OW, gpad, ld: Wg, top: qh, left: qw)
                        for ih in 0..<H {
                            depthwiseRow(dst + ih * W, gpad + ih * Wg, flipped, bias: 0, width: W, kh: kh, kw: kw, dh: dh, dw: dw, rowStride: Wg)
                        }
                    } else {
                        gpad.update(repeating: 0, count: Hp * Wp)
                        for oh in 0..<OH {
                            let grow = gplane + oh * OW
                            for i in 0..<kh {
                                let off = (oh * sh + i * dh) * Wp
                                for j in 0..<kw {
                                    let wv = wc[i * kw + j]
                                    if sw == 1 {
                                        SpatialKernels.axpy(gpad + off + j * dw, grow, wv, OW)
                                    } else {
                                        for ow in 0..<OW { let k = off + ow * sw + j * dw; gpad[k] = gpad[k].addingProduct(wv, grow[ow]) }
                                    }
                                }
                            }
                        }
                        for ih in 0..<H { (dst + ih * W).update(from: gpad + (ih + ph) * Wp + pw, count: W) }
                    }
                }
                if let gwp { (gwp.p + c * taps).update(from: acc, count: taps) }
            }
        }
        var res: [Tensor?] = [gx, gw]
        if hasBias { res.append(nb ? SpatialKernels.channelSums(g, n: N, c: C, p: P) : nil) }
        return res
    }
}

/// Σ over `rows` rows of Σ_k a[r·rowLength + k]·b[r·rowStride + k], k < rowLength (a multiple
/// of 8; a's padding columns are zero), with four SIMD8 accumulators.
@inline(__always)
func depthwiseTapDot(_ a: UnsafePointer<Float>, rowLength: Int, rows: Int, _ b: UnsafePointer<Float>, rowStride: Int) -> Float {
    var s0 = SIMD8<Float>(), s1 = s0, s2 = s0, s3 = s0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    for r in 0..<rows {
        let ao = r * rowLength * 4, bo = r * rowStride * 4
        var k = 0
        while k + 32 <= rowLength {
            s0.addProduct(ra.loadUnaligned(fromByteOffset: ao + k * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: bo + k * 4, as: SIMD8<Float>.self))
            s1.addProduct(ra.loadUnaligned(fromByteOffset: ao + k * 4 + 32, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: bo + k * 4 + 32, as: SIMD8<Float>.self))
            s2.addProduct(ra.loadUnaligned(fromByteOffset: ao + k * 4 + 64, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: bo + k * 4 + 64, as: SIMD8<Float>.self))
            s3.addProduct(ra.loadUnaligned(fromByteOffset: ao + k * 4 + 96, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: bo + k * 4 + 96, as: SIMD8<Float>.self))
            k += 32
        }
        while k < rowLength {
            s1.addProduct(ra.loadUnaligned(fromByteOffset: ao + k * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: bo + k * 4, as: SIMD8<Float>.self))
            swap(&s1, &s2)
            k += 8
        }
    }
    return ((s0 + s1) + (s2 + s3)).sum()
}

/// One depthwise output row (stride 1 along the width): o[ow] = b + Σᵢⱼ w[i,j]·base[i·dh·ld + ow + j·dw].
/// Partial sums stay in SIMD8 registers: 32-column blocks with four accumulators, then one
/// 8/16/24/32-wide tail block whose lanes past the row end are computed and dropped (reads may
/// run up to 31 floats past the last tap's row end: callers keep `depthwiseSlack` zeros there).
@inline(__always)
func depthwiseRow(_ o: UnsafeMutablePointer<Float>, _ base: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: Float,
                  width OW: Int, kh: Int, kw: Int, dh: Int, dw: Int, rowStride ld: Int) {
    let raw = UnsafeRawPointer(base)
    let ro = UnsafeMutableRawPointer(o)
    var ow = 0
    while ow < OW {
        let rest = OW - ow
        var a0 = SIMD8<Float>(repeating: bias), a1 = a0, a2 = a0, a3 = a0
        if rest > 16 {
            for i in 0..<kh {
                for j in 0..<kw {
                    let wv = SIMD8<Float>(repeating: w[i * kw + j])
                    let off = (i * dh * ld + j * dw + ow) * 4
                    a0.addProduct(wv, raw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self))
                    a1.addProduct(wv, raw.loadUnaligned(fromByteOffset: off + 32, as: SIMD8<Float>.self))
                    a2.addProduct(wv, raw.loadUnaligned(fromByteOffset: off + 64, as: SIMD8<Float>.self))
                    a3.addProduct(wv, raw.loadUnaligned(fromByteOffset: off + 96, as: SIMD8<Float>.self))
                }
            }
        } else {
            // ≤ 16 columns: two column vectors, taps split over even/odd kernel rows for two
            // independent FMA chains each.
            a2 = SIMD8<Float>(); a3 = a2
            var i = 0
            while i < kh {
                for j in 0..<kw {
                    let wv = SIMD8<Float>(repeating: w[i * kw + j])
                    let off = (i * dh * ld + j * dw + ow) * 4
                    a0.addProduct(wv, raw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self))
                    a1.addProduct(wv, raw.loadUnaligned(fromByteOffset: off + 32, as: SIMD8<Float>.self))
                }
                if i + 1 < kh {
                    for j in 0..<kw {
                        let wv = SIMD8<Float>(repeating: w[(i + 1) * kw + j])
                        let off = ((i + 1) * dh * ld + j * dw + ow) * 4
                        a2.addProduct(wv, raw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self))
                        a3.addProduct(wv, raw.loadUnaligned(fromByteOffset: off + 32, as: SIMD8<Float>.self))
                    }
                }
                i += 2
            }
            a0 += a2; a1 += a3
        }
        if rest >= 32 {
            ro.storeBytes(of: a0, toByteOffset: ow * 4, as: SIMD8<Float>.self)
            ro.storeBytes(of: a1, toByteOffset: ow * 4 + 32, as: SIMD8<Float>.self)
            ro.storeBytes(of: a2, toByteOffset: ow * 4 + 64, as: SIMD8<Float>.self)
            ro.storeBytes(of: a3, toByteOffset: ow * 4 + 96, as: SIMD8<Float>.self)
        } else {
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 4) { t in
                t[0] = a0; t[1] = a1; t[2] = a2; t[3] = a3
                (o + ow).update(from: UnsafeRawPointer(t.baseAddress!).assumingMemoryBound(to: Float.self), count: rest)
            }
        }
        ow += 32
    }
}

// MARK: - conv1d

/// 1-D convolution, as torch.nn.functional.conv1d. x: [N, C, L], weight: [O, C/groups, k],
/// bias: [O] → [N, O, ⌊(L + 2·padding − dilation·(k − 1) − 1)/stride⌋ + 1]. Runs as conv2d over a
/// height-1 image (so depthwise, e.g. a 3-tap channel filter, gets the direct kernel).
public func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    precondition(x.rank == 3, "conv1d: input must be [N, C, L], got \(x.shape)")
    precondition(weight.rank == 3, "conv1d: weight must be [O, C/groups, k], got \(weight.shape)")
    let y = conv2d(x.unsqueezed(2), weight: weight.unsqueezed(2), bias: bias, stride: Size2D(1, stride),
                   padding: Size2D(0, padding), dilation: Size2D(1, dilation), groups: groups)
    return y.squeezed(2)
}

// MARK: - convTranspose2d

/// Transposed 2-D convolution, as torch.nn.functional.conv_transpose2d (the adjoint of conv2d).
///
/// x: [N, Cin, H, W], weight: [Cin, Cout/groups, kh, kw], bias: [Cout] → [N, Cout, OH, OW] with
/// OH = (H − 1)·stride.h − 2·padding.h + dilation.h·(kh − 1) + outputPadding.h + 1 (same for W).
/// Forward: col = W_gᵀ·x (one sgemm per image and group) → col2im; backward: im2col(g) then
/// dx = W_g·col, dW_g = Σₙ x·colᵀ, db = Σ g.
public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Size2D = 0,
                            outputPadding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1) -> Tensor {
    precondition(x.rank == 4, "convTranspose2d: input must be [N, Cin, H, W], got \(x.shape)")
    precondition(weight.rank == 4, "convTranspose2d: weight must be [Cin, Cout/groups, kh, kw], got \(weight.shape)")
    let (N, Cin, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    precondition(weight.shape[0] == Cin, "convTranspose2d: weight \(weight.shape) first axis != input channels \(Cin)")
    precondition(groups >= 1 && Cin % groups == 0, "convTranspose2d: groups \(groups) must divide input channels \(Cin)")
    let (Coutg, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let Cout = Coutg * groups, Cing = Cin / groups
    if let bias { precondition(bias.shape == [Cout], "convTranspose2d: bias \(bias.shape) != [\(Cout)]") }
    precondition(outputPadding.h >= 0 && outputPadding.w >= 0 && (outputPadding.h < stride.h || outputPadding.h < dilation.h)
                 && (outputPadding.w < stride.w || outputPadding.w < dilation.w),
                 "convTranspose2d: output padding \(outputPadding) must be smaller than stride \(stride) or dilation \(dilation)")
    let OH = (H - 1) * stride.h - 2 * padding.h + dilation.h * (kh - 1) + outputPadding.h + 1
    let OW = (W - 1) * stride.w - 2 * padding.w + dilation.w * (kw - 1) + outputPadding.w + 1
    precondition(OH > 0 && OW > 0, "convTranspose2d: non-positive output size \(OH)×\(OW) for input \(x.shape)")
    // The conv whose adjoint this is maps the output (Coutg channels, OH × OW) to H × W.
    let geo = ConvGeometry(channels: Coutg, height: OH, width: OW, kh: kh, kw: kw, sh: stride.h, sw: stride.w,
                           ph: padding.h, pw: padding.w, dh: dilation.h, dw: dilation.w, outH: H, outW: W)
    let K = geo.rows, P = H * W, plane = OH * OW
    geo.checkGeometry()
    precondition(x.count == N * Cin * P && weight.count == Cin * K, "convTranspose2d: input \(x.shape) / weight \(weight.shape) disagree with geometry \(geo)")
    let (xd, wd) = (x.detached(), weight.detached())
    let y = Tensor(zeros: [N, Cout, OH, OW])
    let xp = SendablePointer(xd.storage.pointer), wp = SendablePointer(wd.storage.pointer), yp = SendablePointer(y.storage.pointer)
    let workers = Swift.min(Parallel.workerCount, N)
    parallelFor(workers) { wr in
        for wk in wr {
            let col = UnsafeMutablePointer<Float>.allocate(capacity: K * P)
            defer { col.deallocate() }
            for n in SpatialKernels.chunk(wk, of: workers, N) {
                for gi in 0..<groups {
                    BLAS.sgemm(transA: true, transB: false, m: K, n: P, k: Cing, a: wp.p + gi * Cing * K, lda: K,
                               b: xp.p + (n * Cin + gi * Cing) * P, ldb: P, c: col, ldc: P, partition: workers == 1)
                    geo.col2im(col, yp.p + (n * Cout + gi * Coutg) * plane)
                }
            }
        }
    }
    if let bias {
        let b = bias.storage.pointer, o = y.storage.pointer
        for n in 0..<N { for c in 0..<Cout { let row = o + (n * Cout + c) * plane; for i in 0..<plane { row[i] += b[c] } } }
    }
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    let (nx, nw, nb) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    let hasBias = bias != nil
    return Tensor.record(y, inputs: inputs, name: "convTranspose2d") { g in
        let gx = nx ? Tensor.empty([N, Cin, H, W]) : nil
        let partials = nw ? Tensor(zeros: [workers, Cin * K]) : nil
        let gp = SendablePointer(g.storage.pointer)
        let gxp = gx.map { SendablePointer($0.storage.pointer) }, pp = partials.map { SendablePointer($0.storage.pointer) }
        parallelFor(workers) { wr in
            for wk in wr {
                let col = UnsafeMutablePointer<Float>.allocate(capacity: K * P)
                defer { col.deallocate() }
                for n in SpatialKernels.chunk(wk, of: workers, N) {
                    for gi in 0..<groups {
                        geo.im2col(gp.p + (n * Cout + gi * Coutg) * plane, col)
                        if let gxp {
                            BLAS.sgemm(transA: false, transB: false, m: Cing, n: P, k: K, a: wp.p + gi * Cing * K, lda: K,
                                       b: col, ldb: P, c: gxp.p + (n * Cin + gi * Cing) * P, ldc: P, partition: workers == 1)
                        }
                        if let pp {
                            BLAS.sgemm(transA: false, transB: true, m: Cing, n: K, k: P, a: xp.p + (n * Cin + gi * Cing) * P, lda: P,
                                       b: col, ldb: P, beta: 1, c: pp.p + wk * Cin * K + gi * Cing * K, ldc: K, partition: workers == 1)
                        }
                    }
                }
            }
        }
        var gw: Tensor? = nil
        if let partials {
            let total = Tensor.empty(wd.shape)
            let t = total.storage.pointer, p = partials.storage.pointer
            t.update(from: p, count: Cin * K)
            for wk in 1..<Swift.max(workers, 1) { SpatialKernels.add(t, p + wk * Cin * K, Cin * K) }
            gw = total
        }
        var r: [Tensor?] = [gx, gw]
        if hasBias { r.append(nb ? SpatialKernels.channelSums(g, n: N, c: Cout, p: plane) : nil) }
        return r
    }
}
