import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

/// The fixture written by Tools/goldens/make_tensor_goldens.py (PyTorch 2.x, float64 on float32 inputs).
enum Goldens {
    static let url = Bundle.module.url(forResource: "Fixtures/ops", withExtension: "safetensors")!
    nonisolated(unsafe) static let file: (tensors: [String: Tensor], metadata: [String: String]) = try! SafeTensors.read(url)
    static var cases: [String: [Bool]] {
        let data = file.metadata["cases"]!.data(using: .utf8)!
        return try! JSONDecoder().decode([String: [Bool]].self, from: data)
    }
    static func t(_ key: String) -> Tensor {
        guard let t = file.tensors[key] else { fatalError("fixture key \(key) missing") }
        return t
    }
}

/// Swift side of each golden case: inputs → output.
let opCases: [String: @Sendable ([Tensor]) -> Tensor] = [
    "add_bcast": { $0[0] + $0[1] },
    "sub_bcast": { $0[0] - $0[1] },
    "mul_bcast": { $0[0] * $0[1] },
    "div_bcast": { $0[0] / $0[1] },
    "add_scalar": { $0[0] + 1.5 },
    "mul_scalar": { $0[0] * -2.5 },
    "rsub_scalar": { 2 - $0[0] },
    "rdiv_scalar": { 3 / $0[0] },
    "neg": { -$0[0] },
    "exp": { $0[0].exp() },
    "log": { $0[0].log() },
    "sqrt": { $0[0].sqrt() },
    "rsqrt": { $0[0].rsqrt() },
    "abs": { $0[0].abs() },
    "square": { $0[0].square() },
    "pow_scalar": { $0[0].pow(2.5) },
    "pow_tensor": { pow($0[0], $0[1]) },
    "clamp": { $0[0].clamp(min: -0.5, max: 0.7) },
    "maximum": { maximum($0[0], $0[1]) },
    "minimum": { minimum($0[0], $0[1]) },
    "relu": { relu($0[0]) },
    "leaky_relu": { leakyRelu($0[0], negativeSlope: 0.1) },
    "sigmoid": { sigmoid($0[0]) },
    "tanh": { tanh($0[0]) },
    "tanh_small": { tanh($0[0]) },
    "silu": { silu($0[0]) },
    "quick_gelu": { quickGelu($0[0]) },
    "gelu": { gelu($0[0]) },
    "gelu_tanh": { gelu($0[0], approximate: .tanh) },
    "sum_all": { $0[0].sum() },
    "sum_axes": { $0[0].sum(axes: [0, 2]) },
    "sum_keep": { $0[0].sum(axis: 1, keepDims: true) },
    "mean_axis": { $0[0].mean(axis: -1) },
    "var_unbiased": { $0[0].variance(axis: 1) },
    "var_biased": { $0[0].variance(axes: [0, 2], unbiased: false, keepDims: true) },
    "max_axis": { $0[0].max(axis: 1) },
    "min_axis": { $0[0].min(axis: 0) },
    "reshape": { $0[0].reshaped([4, 6]) },
    "permute": { $0[0].permuted([2, 0, 1]) },
    "transpose": { $0[0].transposed(0, 1) },
    "narrow": { $0[0].narrow(axis: 1, start: 1, length: 3) },
    "concat": { concat($0, axis: 1) },
    "stack": { stack($0, axis: 1) },
    "split": { $0[0].split(sizes: [2, 3], axis: 1)[1] },
    "pad": { $0[0].padded([(1, 2), (0, 0), (0, 1)], value: 0.5) },
    "gather": { $0[0].gather(axis: 1, index: $0[1]) },
    "index_select": { $0[0].indexSelect(axis: 0, indices: [2, 0, 2, 3]) },
    "masked_fill": { $0[0].maskedFill($0[1], -1) },
    "where": { `where`($0[0], $0[1], $0[2]) },
    "expand": { $0[0].expand(to: [2, 3, 4]) },
    "matmul_2d": { matmul($0[0], $0[1]) },
    "matmul_batched": { matmul($0[0], $0[1]) },
    "linear": { linear($0[0], weight: $0[1], bias: $0[2]) },
    "linear_nobias": { linear($0[0], weight: $0[1]) },
    "softmax": { softmax($0[0]) },
    "softmax_axis1": { softmax($0[0], axis: 1) },
    "log_softmax": { logSoftmax($0[0]) },
    "layer_norm": { layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) },
    "layer_norm_noaffine": { layerNorm($0[0], weight: nil, bias: nil, eps: 1e-6) },
    "norm": { $0[0].norm(axis: 1) },
    "l2_normalize": { l2Normalize($0[0], axis: -1) },
    "cosine_similarity": { cosineSimilarity($0[0], $0[1], axis: 1) },
    "embedding": { embedding($0[0], weight: $0[1]) },
    "sdpa": { scaledDotProductAttention($0[0], $0[1], $0[2]) },
    "sdpa_bool": { scaledDotProductAttention($0[0], $0[1], $0[2], mask: .boolean($0[3])) },
    "sdpa_additive": { scaledDotProductAttention($0[0], $0[1], $0[2], mask: .additive($0[3]), scale: 0.3) },
    "argmax": { $0[0].argmax(axis: 1) },
    "topk_values": { $0[0].topK(3).values },
    "topk_indices": { $0[0].topK(3).indices },
]

/// Stated fp32 tolerances against PyTorch (float64 reference): |Δ| ≤ 1e-5 + 1e-5·|ref| for
/// values and gradients (a few ulps of float32 across short reductions).
let goldenAtol: Float = 1e-5, goldenRtol: Float = 1e-5

@Suite("Ops vs PyTorch goldens")
struct OpGoldenTests {
    @Test func everyFixtureCaseHasASwiftOp() {
        #expect(Set(Goldens.cases.keys) == Set(opCases.keys))
    }

    @Test(arguments: opCases.keys.sorted())
    func forwardAndGradients(name: String) throws {
        let flags = try #require(Goldens.cases[name], "case \(name) missing in fixture")
        let f = try #require(opCases[name])
        let inputs = flags.indices.map { i in flags[i] ? Goldens.t("\(name).in\(i)").requiringGrad() : Goldens.t("\(name).in\(i)") }
        let out = f(inputs)
        if let msg = closeness(out, Goldens.t("\(name).out"), atol: goldenAtol, rtol: goldenRtol) { Issue.record("\(name) forward: \(msg)") }
        guard flags.contains(true) else { return }
        (out * Goldens.t("\(name).R")).sum().backward()
        for (i, g) in flags.enumerated() where g {
            let grad = inputs[i].grad ?? Tensor(zeros: inputs[i].shape)
            if let msg = closeness(grad, Goldens.t("\(name).grad\(i)"), atol: goldenAtol, rtol: goldenRtol) {
                Issue.record("\(name) grad of input \(i): \(msg)")
            }
        }
    }

    @Test(arguments: opCases.keys.sorted())
    func finiteDifferences(name: String) throws {
        let flags = try #require(Goldens.cases[name])
        let wrt = flags.indices.filter { flags[$0] }
        guard !wrt.isEmpty else { return }
        let f = try #require(opCases[name])
        let inputs = flags.indices.map { Goldens.t("\(name).in\($0)") }
        let failures = GradCheck.check(inputs: inputs, wrt: wrt, f)
        #expect(failures.isEmpty, "\(name): \(failures.prefix(4))")
    }

    @Test func clipGradNormMatchesTorch() {
        let p0 = Tensor(zeros: [3, 2]).requiringGrad(), p1 = Tensor(zeros: [4]).requiringGrad()
        p0.grad = Goldens.t("clip.g0"); p1.grad = Goldens.t("clip.g1")
        let total = clipGradNorm([p0, p1], maxNorm: 1)
        #expect(Swift.abs(total - Goldens.t("clip.total").item()) < 1e-5)
        #expect(closeness(p0.grad!, Goldens.t("clip.clipped0"), atol: 1e-6, rtol: 1e-5) == nil)
        #expect(closeness(p1.grad!, Goldens.t("clip.clipped1"), atol: 1e-6, rtol: 1e-5) == nil)
    }
}
