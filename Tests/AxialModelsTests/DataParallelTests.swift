import Foundation
import AxialTestSupport
import Testing
import AxialTensor
import AxialNN
@testable import AxialModels

/// The data-parallel maths without MPI: 2 ranks as 2 threads (`ThreadCollective`) against one
/// process on the whole batch.
@Suite struct DataParallelTests {
    /// Synchronised BatchNorm: forward, running statistics and the gradients of x, weight and bias
    /// of Σ y·R over the global batch equal plain BatchNorm on the whole batch.
    @Test func synchronisedBatchNormEqualsWholeBatch() {
        var g = RandomGenerator(seed: 4)
        let x = Tensor.normal([8, 5, 3], generator: &g) * 2 + 1
        let R = Tensor.normal([8, 5, 3], generator: &g)
        let w0 = Tensor.normal([5], generator: &g), b0 = Tensor.normal([5], generator: &g)

        func step(_ x: Tensor, _ R: Tensor, _ comm: (any Collective)?) -> [Tensor] {
            let xl = x.requiringGrad(), w = w0.requiringGrad(), b = b0.requiringGrad()
            var rm = Tensor(zeros: [5]), rv = Tensor(ones: [5])
            let y = withSynchronizedBatchNorm(comm) { batchNorm(xl, runningMean: &rm, runningVar: &rv, weight: w, bias: b, training: true) }
            (y * R).sum().backward()
            return [y.detached(), xl.grad!, w.grad!, b.grad!, rm, rv]
        }
        let whole = step(x, R, nil)
        let parts = ThreadCollective.run(ranks: 2) { comm in
            step(x.narrow(axis: 0, start: 4 * comm.rank, length: 4), R.narrow(axis: 0, start: 4 * comm.rank, length: 4), comm)
        }
        expectClose(concat([parts[0][0], parts[1][0]], axis: 0), whole[0], atol: 1e-5, rtol: 1e-5, "y")
        expectClose(concat([parts[0][1], parts[1][1]], axis: 0), whole[1], atol: 1e-5, rtol: 1e-5, "dx")
        expectClose(parts[0][2] + parts[1][2], whole[2], atol: 1e-5, rtol: 1e-5, "dweight (sum of the ranks' local parts)")
        expectClose(parts[0][3] + parts[1][3], whole[3], atol: 1e-5, rtol: 1e-5, "dbias")
        for r in 0..<2 {
            expectClose(parts[r][4], whole[4], atol: 1e-6, rtol: 1e-5, "running mean, rank \(r)")
            expectClose(parts[r][5], whole[5], atol: 1e-6, rtol: 1e-5, "running var (unbiased by the global count), rank \(r)")
        }
    }

    /// One MoCo v3 / LeCL step on 2 ranks × 8 rows = the step on 16 rows in one process: the loss
    /// (mean over ranks), every averaged gradient (DataParallel buckets of 4096 floats) and the
    /// weights after an SGD step. (Float32 through the ViT and five BatchNorms: gradients agree to
    /// ~4e-6 of each tensor's largest entry at 16 rows; at 4 rows BatchNorm over so few samples
    /// amplifies rounding to ~3e-5, in the one-process run as much as in the split one.)
    @Test func mocoStepOnTwoRanksEqualsOneProcess() throws {
        let spec = try EncoderRegistry.spec("vit_test")
        func model() -> MoCo {
            var g = RandomGenerator(seed: 21)
            return MoCo(config: MoCoConfig(dim: 16, mlpDim: 32, temperature: 0.2, lesionWeight: 1), generator: &g) { spec.makeModel(seed: 2) }
        }
        var g = RandomGenerator(seed: 8)
        let x1 = Tensor.normal([16, 3, 32, 32], generator: &g), x2 = Tensor.normal([16, 3, 32, 32], generator: &g)
        let lesion = (0..<16).map { $0 % 3 == 0 }

        func step(_ m: MoCo, _ a: Tensor, _ b: Tensor, _ les: [Bool], _ dp: DataParallel?) -> (Float, [String: Tensor], [String: Tensor]) {
            m.train()
            let opt = SGD(m.optimizedParameters, lr: 0.1, momentum: 0.9)
            let loss = m.trainStep(a, b, lesion: les, momentum: 0.99, optimizer: opt, dataParallel: dp)
            var grads: [String: Tensor] = [:]
            for (k, p) in m.namedParameters() { if let gr = p.grad { grads[k] = gr } }
            return (loss, grads, m.stateDict())
        }
        let whole = step(model(), x1, x2, lesion, nil)
        let parts = ThreadCollective.run(ranks: 2) { comm in
            let rows = { (t: Tensor) in t.narrow(axis: 0, start: 8 * comm.rank, length: 8) }
            let dp = DataParallel(collective: comm, bucketElements: 4096)
            let r = step(model(), rows(x1), rows(x2), Array(lesion[(8 * comm.rank)..<(8 * comm.rank + 8)]), dp)
            return (r, dp.lastBucketCount)
        }
        #expect(parts[0].1 > 1, "several buckets: \(parts[0].1)")
        for (r, part) in parts.enumerated() {
            let (loss, grads, state) = part.0
            #expect(abs(loss - whole.0) <= 1e-5 * max(1, abs(whole.0)), "rank \(r) loss \(loss) vs \(whole.0)")
            #expect(grads.keys.sorted() == whole.1.keys.sorted())
            for (k, gw) in whole.1 {
                let scale = gw.scalars.map(abs).max() ?? 0
                // Floor 1e-6: the encoder's final LayerNorm bias feeds a bias-free Linear + BatchNorm,
                // so its gradient is zero in exact arithmetic (±1e-7 of rounding in both runs).
                expectClose(grads[k]!, gw, atol: max(2e-5 * scale, 1e-6), rtol: 1e-3, "rank \(r) grad \(k)")
            }
            for (k, v) in whole.2 { expectClose(state[k]!, v, atol: 1e-6, rtol: 1e-4, "rank \(r) \(k) after the step") }
        }
        // The ranks agree bit for bit (they hold the same model).
        for (k, v) in parts[0].0.2 { #expect(parts[1].0.2[k]!.scalars == v.scalars, "\(k) differs between the ranks") }
    }
}
