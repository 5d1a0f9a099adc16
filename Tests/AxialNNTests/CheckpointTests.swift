import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

/// A run interrupted at step k, saved, reloaded into fresh objects and resumed gives bit-identical
/// losses to an uninterrupted run (dropout + data shuffling exercise both RNG streams).
@Suite(.serialized) struct CheckpointTests {
    struct Run {
        let model: MLP
        let opt: Adam
        var data: RandomGenerator
        init(seed: UInt64) {
            var g = RandomGenerator(seed: seed)
            model = MLP(6, hidden: [12, 8], 3, activation: .gelu, dropout: 0.2, generator: &g)
            opt = AdamW(model.parameters(), lr: 5e-3)
            data = RandomGenerator(seed: 99)
        }
        mutating func step(_ x: Tensor, _ y: Tensor) -> Float {
            let perm = data.permutation(x.shape[0]).prefix(8).map { $0 }
            opt.zeroGrad()
            let loss = crossEntropy(model(x.indexSelect(axis: 0, indices: perm)), y.indexSelect(axis: 0, indices: perm))
            loss.backward()
            opt.step()
            return loss.item()
        }
    }

    @Test func resumedRunIsBitIdentical() throws {
      try DefaultGenerator.withScopedGenerator(seed: 0) {
        var g = RandomGenerator(seed: 1)
        let x = Tensor.normal([20, 6], generator: &g)
        let y = Tensor((0..<20).map { Float($0 % 3) })
        let n = 10, k = 4
        DefaultGenerator.seed(123)
        var full = Run(seed: 5)
        let reference = (0..<n).map { _ in full.step(x, y) }

        DefaultGenerator.seed(123)
        var first = Run(seed: 5)
        var losses = (0..<k).map { _ in first.step(x, y) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-ckpt-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Checkpoint.save(to: url, model: first.model, optimizer: first.opt, step: k, generators: ["data": first.data],
                            config: #"{"hidden":[12,8]}"#)
        DefaultGenerator.seed(777)                 // disturb the global stream
        var resumed = Run(seed: 6)                 // different initial weights
        let info = try Checkpoint.load(from: url, model: resumed.model, optimizer: resumed.opt)
        resumed.data = RandomGenerator(state: info.rngStates["data"]!)
        #expect(info.step == k && info.config == #"{"hidden":[12,8]}"#)
        for _ in k..<n { losses.append(resumed.step(x, y)) }
        #expect(losses == reference)
        #expect(Set(reference).count == n)
      }
    }

    @Test func loadRejectsWrongModel() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-ckpt-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Checkpoint.save(to: url, model: Linear(3, 2), step: 1)
        do {
            try Checkpoint.load(from: url, model: Linear(3, 4))
            Issue.record("expected an error")
        } catch let e as CheckpointError {
            #expect(e.description.contains("weight expected [4, 3] got [2, 3]"))
        }
    }
}
