import Foundation
import AxialTestSupport
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
