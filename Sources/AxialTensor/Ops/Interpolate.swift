/// Resampling of [N, C, H, W] as torch.nn.functional.interpolate (antialias = false):
/// nearest, bilinear and bicubic (A = −0.75) with PyTorch's align_corners semantics, up and down.
///
/// Every mode is separable: each output row/column reads a few input rows/columns (1, 2 or 4
/// taps) with fixed weights, computed once per axis exactly as PyTorch's CPU kernels do (in
/// Float). Forward: a pass along W into [H, OW], then along H (SIMD axpy over rows).
/// Backward: the two passes transposed (scatter-add with the same weights).

/// Resampling filter.
public enum InterpolationMode: Sendable, Equatable {
    /// torch 'nearest': source index ⌊dst·scale⌋ (clamped), no align_corners.
    case nearest
    /// torch 'bilinear': two taps per axis.
    case bilinear
    /// torch 'bicubic': Keys cubic convolution with A = −0.75, four taps per axis, borders clamped.
    case bicubic
}

/// Source indices and weights of one axis: output o reads `index[o·taps + t]` with `weight[o·taps + t]`.
struct AxisTaps {
    let taps: Int
    var index: [Int]
    var weight: [Float]

    /// PyTorch's area_pixel_compute_scale: (in−1)/(out−1) with align_corners, else 1/scale_factor
    /// when one was given, else in/out.
    static func scale(input: Int, output: Int, alignCorners: Bool, scaleFactor: Double?) -> Float {
        if alignCorners { return output > 1 ? Float(input - 1) / Float(output - 1) : 0 }
        if let scaleFactor, scaleFactor > 0 { return Float(1.0 / scaleFactor) }
        return Float(input) / Float(output)
    }

    /// (⌊real⌋ clamped to input−1, fractional part clamped to [0, 1]) — guard_index_and_lambda.
    @inline(__always)
    static func guarded(_ real: Float, _ input: Int) -> (Int, Float) {
        let i = Swift.min(Int(real.rounded(.down)), input - 1)
        return (i, Swift.min(Swift.max(real - Float(i), 0), 1))
    }

    init(mode: InterpolationMode, input: Int, output: Int, alignCorners: Bool, scaleFactor: Double?) {
        switch mode {
        case .nearest:
            taps = 1
            let s = AxisTaps.scale(input: input, output: output, alignCorners: false, scaleFactor: scaleFactor)
            index = (0..<output).map { o in
                if output == input { return o }
                if output == 2 * input { return o >> 1 }
                return Swift.min(Int((Float(o) * s).rounded(.down)), input - 1)
            }
            weight = [Float](repeating: 1, count: output)
        case .bilinear:
            taps = 2
            let s = AxisTaps.scale(input: input, output: output, alignCorners: alignCorners, scaleFactor: scaleFactor)
            index = []; weight = []
            for o in 0..<output {
                if output == input { index += [o, o]; weight += [1, 0]; continue }
                var real = alignCorners ? s * Float(o) : s * (Float(o) + 0.5) - 0.5
                if !alignCorners && real < 0 { real = 0 }
                let (i0, l1) = AxisTaps.guarded(real, input)
                index += [i0, i0 + (i0 < input - 1 ? 1 : 0)]
                weight += [1 - l1, l1]
            }
        case .bicubic:
            taps = 4
            let s = AxisTaps.scale(input: input, output: output, alignCorners: alignCorners, scaleFactor: scaleFactor)
            index = []; weight = []
            let A: Float = -0.75
            func cc1(_ x: Float) -> Float { ((A + 2) * x - (A + 3)) * x * x + 1 }
            func cc2(_ x: Float) -> Float { ((A * x - 5 * A) * x + 8 * A) * x - 4 * A }
            for o in 0..<output {
                let real = alignCorners ? s * Float(o) : s * (Float(o) + 0.5) - 0.5
                let (i0, t) = AxisTaps.guarded(real, input)
                for k in 0..<4 { index.append(Swift.max(Swift.min(i0 - 1 + k, input - 1), 0)) }
                weight += [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)]
            }
        }
    }
}

/// Resamples x [N, C, H, W] to `size` (torch.nn.functional.interpolate(x, size=…, mode=…,
/// align_corners=…)). `alignCorners` must be false for `.nearest`. Gradient for every mode.
public func interpolate(_ x: Tensor, size: Size2D, mode: InterpolationMode = .nearest, alignCorners: Bool = false) -> Tensor {
    resample(x, outH: size.h, outW: size.w, mode: mode, alignCorners: alignCorners, scaleFactors: nil)
}

/// Resamples by `scaleFactor` on both axes: output ⌊in·scaleFactor⌋, and (as PyTorch with
/// recompute_scale_factor unset) source coordinates mapped with 1/scaleFactor.
public func interpolate(_ x: Tensor, scaleFactor: Double, mode: InterpolationMode = .nearest, alignCorners: Bool = false) -> Tensor {
    interpolate(x, scaleFactors: (scaleFactor, scaleFactor), mode: mode, alignCorners: alignCorners)
}

/// Resamples by (height, width) scale factors; see `interpolate(_:scaleFactor:mode:alignCorners:)`.
public func interpolate(_ x: Tensor, scaleFactors: (h: Double, w: Double), mode: InterpolationMode = .nearest,
                        alignCorners: Bool = false) -> Tensor {
    precondition(x.rank == 4, "interpolate: input must be [N, C, H, W], got \(x.shape)")
    precondition(scaleFactors.h > 0 && scaleFactors.w > 0, "interpolate: scale factors \(scaleFactors) must be positive")
    let outH = Int((Double(x.shape[2]) * scaleFactors.h).rounded(.down))
    let outW = Int((Double(x.shape[3]) * scaleFactors.w).rounded(.down))
    return resample(x, outH: outH, outW: outW, mode: mode, alignCorners: alignCorners, scaleFactors: scaleFactors)
}

/// Runs `body` with the index and weight buffers of the column taps `tx` and row taps `ty`
/// (xi, xw, yi, yw), once per worker rather than per element.
@inline(__always)
private func withTapBuffers(_ tx: AxisTaps, _ ty: AxisTaps,
                            _ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Int>, UnsafeBufferPointer<Float>) -> Void) {
    tx.index.withUnsafeBufferPointer { xi in tx.weight.withUnsafeBufferPointer { xw in
    ty.index.withUnsafeBufferPointer { yi in ty.weight.withUnsafeBufferPointer { yw in
        body(xi, xw, yi, yw)
    } } } }
}

private func resample(_ x: Tensor, outH OH: Int, outW OW: Int, mode: InterpolationMode, alignCorners: Bool,
                      scaleFactors: (h: Double, w: Double)?) -> Tensor {
    precondition(x.rank == 4, "interpolate: input must be [N, C, H, W], got \(x.shape)")
    precondition(OH > 0 && OW > 0, "interpolate: output size \(OH)×\(OW) must be positive (input \(x.shape))")
    precondition(!(mode == .nearest && alignCorners), "interpolate: alignCorners applies only to bilinear and bicubic")
    let (planes, H, W) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let ty = AxisTaps(mode: mode, input: H, output: OH, alignCorners: alignCorners, scaleFactor: scaleFactors?.h)
    let tx = AxisTaps(mode: mode, input: W, output: OW, alignCorners: alignCorners, scaleFactor: scaleFactors?.w)
    let T = ty.taps
    let y = Tensor.empty([x.shape[0], x.shape[1], OH, OW])
    let xp = SendablePointer(x.storage.pointer), yp = SendablePointer(y.storage.pointer)
    let grain = Swift.max(1, 8192 / Swift.max(OH * OW, 1))
    parallelFor(planes, grain: grain) { r in
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: H * OW)
        defer { tmp.deallocate() }
        withTapBuffers(tx, ty) { xi, xw, yi, yw in
            for pl in r {
                let s = xp.p + pl * H * W, o = yp.p + pl * OH * OW
                for h in 0..<H {
                    let srow = s + h * W, trow = tmp + h * OW
                    for ow in 0..<OW {
                        var acc: Float = 0
                        for t in 0..<T { acc = acc.addingProduct(xw[ow * T + t], srow[xi[ow * T + t]]) }
                        trow[ow] = acc
                    }
                }
                for oh in 0..<OH {
                    let orow = o + oh * OW
                    orow.update(repeating: 0, count: OW)
                    for t in 0..<T { SpatialKernels.axpy(orow, tmp + yi[oh * T + t] * OW, yw[oh * T + t], OW) }
                }
            }
        }
    }
    let inShape = x.shape
    return Tensor.record(y, inputs: [x], name: "interpolate") { g in
        let gx = Tensor(zeros: inShape)
        let gp = SendablePointer(g.storage.pointer), dp = SendablePointer(gx.storage.pointer)
        parallelFor(planes, grain: grain) { r in
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: H * OW)
            defer { tmp.deallocate() }
            withTapBuffers(tx, ty) { xi, xw, yi, yw in
                for pl in r {
                    let gs = gp.p + pl * OH * OW, d = dp.p + pl * H * W
                    tmp.update(repeating: 0, count: H * OW)
                    for oh in 0..<OH {
                        for t in 0..<T { SpatialKernels.axpy(tmp + yi[oh * T + t] * OW, gs + oh * OW, yw[oh * T + t], OW) }
                    }
                    for h in 0..<H {
                        let drow = d + h * W, trow = tmp + h * OW
                        for ow in 0..<OW {
                            let v = trow[ow]
                            for t in 0..<T { drow[xi[ow * T + t]] += xw[ow * T + t] * v }
                        }
                    }
                }
            }
        }
        return [gx]
    }
}
