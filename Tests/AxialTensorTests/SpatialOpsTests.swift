import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

/// The fixture written by Tools/goldens/make_spatial_goldens.py (PyTorch, float64 on float32 inputs).
enum SpatialGoldens {
    static let url = Bundle.module.url(forResource: "Fixtures/spatial", withExtension: "safetensors")!
    nonisolated(unsafe) static let file: (tensors: [String: Tensor], metadata: [String: String]) = try! SafeTensors.read(url)
    static var cases: [String: [Bool]] {
        try! JSONDecoder().decode([String: [Bool]].self, from: file.metadata["cases"]!.data(using: .utf8)!)
    }
    static func t(_ key: String) -> Tensor {
        guard let t = file.tensors[key] else { fatalError("spatial fixture key \(key) missing") }
        return t
    }
}

/// Batch norm with running statistics taken from inputs 3 and 4 (x, weight, bias, mean, var),
/// or 1 and 2 without affine; returns y (the updated statistics are checked separately).
private func bn(_ xs: [Tensor], affine: Bool, training: Bool) -> Tensor {
    var rm = xs[affine ? 3 : 1].copy(), rv = xs[affine ? 4 : 2].copy()
    return batchNorm(xs[0], runningMean: &rm, runningVar: &rv, weight: affine ? xs[1] : nil, bias: affine ? xs[2] : nil, training: training)
}

/// Swift side of each spatial golden case.
let spatialCases: [String: @Sendable ([Tensor]) -> Tensor] = {
    var c: [String: @Sendable ([Tensor]) -> Tensor] = [
        "conv2d_basic": { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1) },
        "conv2d_stride_pad": { conv2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 3], padding: [1, 2]) },
        "conv2d_dilation": { conv2d($0[0], weight: $0[1], padding: 2, dilation: 2) },
        "conv2d_groups": { conv2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, groups: 2) },
        "conv2d_1x1": { conv2d($0[0], weight: $0[1], bias: $0[2]) },
        "conv2d_nograd_w": { conv2d($0[0], weight: $0[1], stride: 2) },
        "conv2d_dw7": { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 3, groups: 4) },
        "conv2d_dw_stride": { conv2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, groups: 3) },
        "conv2d_dw_dilation": { conv2d($0[0], weight: $0[1], padding: [2, 4], dilation: 2, groups: 3) },
        "conv2d_dw_wide": { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 3, groups: 2) },
        "conv1d_basic": { conv1d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1) },
        "conv1d_dw3": { conv1d($0[0], weight: $0[1], bias: $0[2], padding: 1, groups: 6) },
        "conv1d_dil_groups": { conv1d($0[0], weight: $0[1], dilation: 2, groups: 2) },
        "convt_basic": { convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1) },
        "convt_dilation": { convTranspose2d($0[0], weight: $0[1], stride: [1, 2], padding: [0, 1], dilation: [2, 1]) },
        "convt_groups": { convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: 2, groups: 2) },
        "avgpool": { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1) },
        "avgpool_exclude_pad": { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, countIncludePad: false) },
        "avgpool_k2": { avgPool2d($0[0], kernelSize: 2) },
        "maxpool": { maxPool2d($0[0], kernelSize: 3, stride: 2, padding: 1) },
        "maxpool_dilation": { maxPool2d($0[0], kernelSize: 2, stride: 1, dilation: 2) },
        "maxpool_k2": { maxPool2d($0[0], kernelSize: 2) },
        "adaptive_avg": { adaptiveAvgPool2d($0[0], outputSize: [3, 4]) },
        "adaptive_avg_up": { adaptiveAvgPool2d($0[0], outputSize: [4, 7]) },
        "global_avg": { globalAveragePool($0[0]) },
        "nearest_up": { interpolate($0[0], size: [7, 9], mode: .nearest) },
        "nearest_down": { interpolate($0[0], size: [3, 4], mode: .nearest) },
        "nearest_scale2": { interpolate($0[0], scaleFactor: 2, mode: .nearest) },
        "nearest_scale1p7": { interpolate($0[0], scaleFactor: 1.7, mode: .nearest) },
        "bn2d_train": { bn($0, affine: true, training: true) },
        "bn1d_train_ncl": { bn($0, affine: true, training: true) },
        "bn1d_train_nc": { bn($0, affine: true, training: true) },
        "bn1d_train_noaffine": { bn($0, affine: false, training: true) },
        "bn2d_eval": { bn($0, affine: true, training: false) },
        "bn1d_eval_noaffine": { bn($0, affine: false, training: false) },
        "bn_batchstats": { batchNorm($0[0], weight: $0[1], bias: $0[2]) },
        "gru": { gruCell($0[0], hidden: $0[1], weightIH: $0[2], weightHH: $0[3], biasIH: $0[4], biasHH: $0[5]) },
        "gru_nobias": { gruCell($0[0], hidden: $0[1], weightIH: $0[2], weightHH: $0[3]) },
        "lstm": {
            let (h, c) = lstmCell($0[0], hidden: $0[1], cell: $0[2], weightIH: $0[3], weightHH: $0[4], biasIH: $0[5], biasHH: $0[6])
            return concat([h, c], axis: 1)
        },
        "pad_reflect2d": { $0[0].padded([(0, 0), (0, 0), (2, 1), (1, 3)], mode: .reflect) },
        "pad_replicate2d": { $0[0].padded([(0, 0), (0, 0), (2, 1), (1, 3)], mode: .replicate) },
        "pad_reflect1d": { $0[0].padded([(0, 0), (0, 0), (3, 2)], mode: .reflect) },
        "pad_replicate1d": { $0[0].padded([(0, 0), (0, 0), (5, 2)], mode: .replicate) },
    ]
    for (name, mode) in [("bilinear", InterpolationMode.bilinear), ("bicubic", .bicubic)] {
        for ac in [false, true] {
            let tag = "\(name)_\(ac ? "ac" : "noac")"
            c["\(tag)_up"] = { interpolate($0[0], size: [7, 9], mode: mode, alignCorners: ac) }
            c["\(tag)_down"] = { interpolate($0[0], size: [3, 4], mode: mode, alignCorners: ac) }
            c["\(tag)_mixed"] = { interpolate($0[0], size: [9, 4], mode: mode, alignCorners: ac) }
        }
        c["\(name)_scale2"] = { interpolate($0[0], scaleFactor: 2, mode: mode) }
        c["\(name)_scale1p7"] = { interpolate($0[0], scaleFactor: 1.7, mode: mode) }
        c["\(name)_scale0p6"] = { interpolate($0[0], scaleFactor: 0.6, mode: mode) }
    }
    return c
}()

/// Tolerance relative to the scale of the reference: |Δ| ≤ 1e-5·(1 + max|ref|) per element,
/// plus 1e-5 relative (long conv/bn reductions accumulate a few ulps of the largest terms).
private func spatialMismatch(_ a: Tensor, _ ref: Tensor) -> String? {
    let scale = ref.withUnsafeBufferPointer { $0.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) } }
    return closeness(a, ref, atol: 1e-5 * (1 + scale), rtol: 1e-5)
}

@Suite("Spatial and recurrent ops vs PyTorch goldens")
struct SpatialOpsTests {
    @Test func everyFixtureCaseHasASwiftOp() {
        #expect(Set(SpatialGoldens.cases.keys) == Set(spatialCases.keys))
    }

    @Test(arguments: spatialCases.keys.sorted())
    func forwardAndGradients(name: String) throws {
        let flags = try #require(SpatialGoldens.cases[name], "case \(name) missing in fixture")
        let f = try #require(spatialCases[name])
        let inputs = flags.indices.map { i in
            flags[i] ? SpatialGoldens.t("\(name).in\(i)").requiringGrad() : SpatialGoldens.t("\(name).in\(i)")
        }
        let out = f(inputs)
        if let msg = spatialMismatch(out, SpatialGoldens.t("\(name).out")) { Issue.record("\(name) forward: \(msg)") }
        guard flags.contains(true) else { return }
        (out * SpatialGoldens.t("\(name).R")).sum().backward()
        for (i, g) in flags.enumerated() where g {
            let grad = inputs[i].grad ?? Tensor(zeros: inputs[i].shape)
            if let msg = spatialMismatch(grad, SpatialGoldens.t("\(name).grad\(i)")) { Issue.record("\(name) grad of input \(i): \(msg)") }
        }
    }

    @Test(arguments: spatialCases.keys.sorted())
    func finiteDifferences(name: String) throws {
        let flags = try #require(SpatialGoldens.cases[name])
        let wrt = flags.indices.filter { flags[$0] }
        guard !wrt.isEmpty else { return }
        let f = try #require(spatialCases[name])
        let inputs = flags.indices.map { SpatialGoldens.t("\(name).in\($0)") }
        // Ops linear (or piecewise linear away from ties) in every input have no truncation error:
        // a larger step only shrinks the float rounding noise of the many-term loss.
        let nonlinear = name.hasPrefix("bn") || name.hasPrefix("gru") || name.hasPrefix("lstm")
        let failures = GradCheck.check(inputs: inputs, wrt: wrt, epsilon: nonlinear ? 1e-3 : 1e-2, f)
        #expect(failures.isEmpty, "\(name): \(failures.prefix(4))")
    }

    @Test(arguments: ["bn2d_train", "bn1d_train_ncl", "bn1d_train_nc", "bn1d_train_noaffine", "bn2d_eval", "bn1d_eval_noaffine"])
    func batchNormRunningStatistics(name: String) throws {
        let affine = !name.hasSuffix("noaffine"), training = name.contains("train")
        let x = SpatialGoldens.t("\(name).in0")
        var rm = SpatialGoldens.t("\(name).in\(affine ? 3 : 1)").copy(), rv = SpatialGoldens.t("\(name).in\(affine ? 4 : 2)").copy()
        _ = batchNorm(x, runningMean: &rm, runningVar: &rv, weight: affine ? SpatialGoldens.t("\(name).in1") : nil,
                      bias: affine ? SpatialGoldens.t("\(name).in2") : nil, training: training)
        #expect(closeness(rm, SpatialGoldens.t("\(name).running_mean"), atol: 1e-6, rtol: 1e-5) == nil)
        #expect(closeness(rv, SpatialGoldens.t("\(name).running_var"), atol: 1e-6, rtol: 1e-5) == nil)
    }

    @Test func runningStatisticsUpdateDoesNotTouchSharedCopies() {
        let x = Tensor(shape: [4, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        var rm = Tensor(zeros: [2]), rv = Tensor(ones: [2])
        let keep = rm
        _ = batchNorm(x, runningMean: &rm, runningVar: &rv, training: true)
        #expect(keep.scalars == [0, 0])
        // mean [4, 5], unbiased var 20/3 → 0.1·mean and 0.9 + 0.1·20/3.
        #expect(closeness(rm, Tensor([0.4, 0.5]), atol: 1e-6, rtol: 1e-6) == nil)
        #expect(closeness(rv, Tensor([0.9 + 2.0 / 3.0, 0.9 + 2.0 / 3.0]), atol: 1e-6, rtol: 1e-6) == nil)
    }

    /// The depthwise kernel and the general (im2col + GEMM) path agree, values and gradients, on
    /// problems large enough for the 32-wide register blocks, several workers, stride and dilation.
    @Test(arguments: [(1, 1, 3), (2, 1, 3), (1, 2, 2)])
    func depthwiseKernelMatchesGeneralPath(stride: Int, dilation: Int, padding: Int) {
        var g = RandomGenerator(seed: 11)
        let x = Tensor.normal([3, 5, 13, 90], generator: &g)
        let w = Tensor.normal([5, 1, 7, 7], generator: &g)
        let b = Tensor.normal([5], generator: &g)
        var results: [[Tensor]] = []
        for direct in [true, false] {
            let (xl, wl, bl) = (x.requiringGrad(), w.requiringGrad(), b.requiringGrad())
            let y = conv2d(xl, weight: wl, bias: bl, stride: Size2D(stride, stride), padding: Size2D(padding, padding),
                           dilation: Size2D(dilation, dilation), groups: 5, directDepthwise: direct)
            var rg = RandomGenerator(seed: 5)
            (y * Tensor.normal(y.shape, generator: &rg)).sum().backward()
            results.append([y, xl.grad!, wl.grad!, bl.grad!])
        }
        for (a, b) in zip(results[0], results[1]) { #expect(closeness(a, b, atol: 1e-4, rtol: 1e-4) == nil) }
    }

    @Test func interpolateSameSizeIsIdentity() {
        var g = RandomGenerator(seed: 3)
        let x = Tensor.normal([1, 2, 5, 6], generator: &g)
        for mode in [InterpolationMode.nearest, .bilinear, .bicubic] {
            for ac in mode == .nearest ? [false] : [false, true] {
                #expect(interpolate(x, size: [5, 6], mode: mode, alignCorners: ac).scalars == x.scalars)
            }
        }
    }
}
