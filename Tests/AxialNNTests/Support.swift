import Foundation
import Testing
@testable import AxialNN
import AxialTensor

/// The fixture written by Tools/goldens/make_nn_goldens.py.
enum NNGoldens {
    static let url = Bundle.module.url(forResource: "Fixtures/nn", withExtension: "safetensors")!
    nonisolated(unsafe) static let tensors: [String: Tensor] = try! SafeTensors.read(url).tensors
    static func t(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("fixture key \(key) missing") }
        return t
    }
    /// `prefix.<rest>` entries with the prefix removed.
    static func group(_ prefix: String) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix(prefix + ".") { out[String(k.dropFirst(prefix.count + 1))] = v }
        return out
    }
}

/// Max |a − b| / (atol + rtol·|b|) ≤ 1 elementwise; returns a message for the worst element.
func closeness(_ a: Tensor, _ b: Tensor, atol: Float, rtol: Float) -> String? {
    guard a.shape == b.shape else { return "shape \(a.shape) vs \(b.shape)" }
    var worst: (Int, Float) = (-1, 0)
    for i in 0..<a.count {
        let x = a.storage.pointer[i], y = b.storage.pointer[i]
        if x == y || (x.isNaN && y.isNaN) { continue }
        let r = Swift.abs(x - y) / (atol + rtol * Swift.abs(y))
        if !(r <= worst.1) { worst = (i, r) }
    }
    if worst.0 >= 0 && !(worst.1 <= 1) {
        return "element \(worst.0): \(a.storage.pointer[worst.0]) vs expected \(b.storage.pointer[worst.0]) (ratio \(worst.1))"
    }
    return nil
}

func expectClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    if let m = closeness(a, b, atol: atol, rtol: rtol) { Issue.record("\(what): \(m)", sourceLocation: sourceLocation) }
}

/// Central finite differences of a scalar function of one tensor (Double accumulation).
func finiteDifferenceCheck(_ x: Tensor, epsilon: Float = 1e-3, atol: Float = 2e-3, rtol: Float = 2e-2,
                           _ f: (Tensor) -> Tensor) -> [String] {
    let leaf = x.detached().requiringGrad()
    f(leaf).backward()
    let analytic = leaf.grad ?? Tensor(zeros: x.shape)
    var failures: [String] = []
    for e in 0..<x.count {
        var plus = x.copy(), minus = x.copy()
        plus.withUnsafeMutableBufferPointer { $0[e] += epsilon }
        minus.withUnsafeMutableBufferPointer { $0[e] -= epsilon }
        let h = Double(plus.storage.pointer[e]) - Double(minus.storage.pointer[e])
        let lp = Double(withNoGrad { f(plus) }.item()), lm = Double(withNoGrad { f(minus) }.item())
        let numeric = Float((lp - lm) / h)
        let a = analytic.storage.pointer[e]
        if !(Swift.abs(a - numeric) <= atol + rtol * Swift.abs(numeric)) { failures.append("[\(e)] analytic \(a) vs numeric \(numeric)") }
    }
    return failures
}
