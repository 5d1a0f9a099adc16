import AxialTestSupport
import AxialPipeline
import AxialEval
import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// MIL benchmark workloads (same sizes as ../shared/peers/mil.py): 100 train steps of gated ABMIL
/// (768→256, attention 128) or PMA (1 seed, 8 heads, d 256) on single 300×768 bags, AdamW
/// lr 2e-4 wd 1e-4, cross-entropy over 2 classes, encoder dropout 0.25; and a 5-fold crossval of a
/// 200-patient synthetic cohort.
extension Bench {
    static func milTrain(_ kind: HeadKind) -> BenchWorkload {
        BenchWorkload(name: kind == .pma ? "pma-train" : "abmil-train",
                      summary: "100 \(kind.rawValue) train steps on 300×768 bags (peers/mil.py)") { _ in
            var cfg = HeadConfig(kind: kind, inputDimension: 768, classes: 2)
            cfg.hidden = 256
            if kind == .abmilGated { cfg.attentionHidden = 128 }
            cfg.inputDropout = 0.25; cfg.seeds = 1; cfg.heads = 8
            let head = try Heads.make(cfg, seed: 0)
            let adam = OptimizerBox(AdamW(head.parameters(), lr: 2e-4, weightDecay: 1e-4))
            var g = RandomGenerator(seed: 1)
            let steps = 100
            let bags = (0..<steps).map { _ in Tensor.normal([1, 300, 768], generator: &g) }
            let ys = (0..<steps).map { _ in g.int(below: 2) }
            let mask = Tensor(ones: [1, 300])
            return ({
                var rng = RandomGenerator(seed: 2)
                for i in 0..<steps {
                    adam.optimizer.zeroGrad()
                    let out = head.forward(bags[i], mask: mask, training: true, rng: &rng)
                    let loss = HeadLosses.crossEntropy(out.logits, classIndex: [ys[i]])
                    loss.backward()
                    adam.optimizer.step()
                }
            }, "\(steps) steps, \(kind.rawValue), \(head.parameterCount()) parameters")
        }
    }

    /// The benchmark's optimizer, used by one thread at a time.
    final class OptimizerBox: @unchecked Sendable {
        let optimizer: Adam
        init(_ optimizer: Adam) { self.optimizer = optimizer }
    }

    static let abmilTrain = milTrain(.abmilGated)
    static let pmaTrain = milTrain(.pma)

    /// `crossval-200 <scratch>`: 5-fold ABMIL crossval of a 200-patient synthetic cohort
    /// (D 768, 20–40 slices × 2 windows, 32 epochs max, batch 16) into a fresh folder each run.
    static let crossval200 = BenchWorkload(name: "crossval-200", summary: "5-fold ABMIL crossval, 200 synthetic patients") { args in
        let scratch = URL(fileURLWithPath: args.first ?? "/tmp/axial-bench-crossval")
        try? FileManager.default.removeItem(at: scratch)
        let task = try TaskSpec.parse("name: synthetic\nkind: binary\ncolumn: label\n")
        var cfg = SyntheticCohortConfig(task: task)
        cfg.patients = 200; cfg.featureDimension = 768; cfg.seed = 3
        let features = try SyntheticCohort(cfg).write(to: scratch)
        let taskURL = scratch.appendingPathComponent("task.yaml")
        try "name: synthetic\nkind: binary\ncolumn: label\n".write(to: taskURL, atomically: true, encoding: .utf8)
        return ({
            let out = scratch.appendingPathComponent("cv")
            try? FileManager.default.removeItem(at: out)
            var o = CrossValOptions(features: features, table: scratch.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .abmil, out: out)
            o.epochs = 32; o.learningRate = 1e-3; o.batchSize = 16; o.log = { _ in }
            _ = try CrossVal.run(o)
        }, "200 patients, D 768, 5 folds, ≤32 epochs")
    }
}
