import AxialEval
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// Stages as cluster jobs: `--shard` from a Slurm array, crossval fold by fold + merge.
@Suite struct ClusterJobsTests {
    @Test func shardComesFromTheFlagThenTheSlurmArray() throws {
        #expect(try Shard.resolve(nil, environment: [:]) == .all)
        #expect(try Shard.resolve("1/3", environment: [:]) == Shard(index: 1, count: 3))
        let array = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"]
        #expect(try Shard.resolve(nil, environment: array) == Shard(index: 2, count: 4))
        #expect(try Shard.resolve("0/2", environment: array) == Shard(index: 0, count: 2))   // the flag wins
        // --array=1-4: task 4 is shard 3/4.
        #expect(try Shard.resolve(nil, environment: ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"])
                == Shard(index: 3, count: 4))
        #expect(throws: PipelineError.self) { try Shard.resolve(nil, environment: ["SLURM_ARRAY_TASK_ID": "1"]) }
        #expect(throws: PipelineError.self) {   // --array=0-15:4 is not consecutive
            try Shard.resolve(nil, environment: ["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"])
        }
    }

    /// Three `--fold k` runs into one folder, then merge, give the one-shot run's files: the
    /// same predictions, attention and model weights bit for bit; merge names missing folds.
    @Test func foldByFoldPlusMergeEqualsOneShot() throws {
        let dir = temporaryFolder("cv-jobs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let task = try TaskSpec.parse(CrossValTests.taskYAML)
        var cfg = SyntheticCohortConfig(task: task)
        cfg.patients = 24; cfg.featureDimension = 8; cfg.slices = 6...9; cfg.windows = [StoredWindow(name: "abdomen", width: 400, level: 40)]
        cfg.informativeSlices = 2; cfg.signal = 4; cfg.prevalence = 0.5; cfg.seed = 3
        let cohort = SyntheticCohort(cfg)
        let features = try cohort.write(to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try CrossValTests.taskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        func options(_ out: URL) -> CrossValOptions {
            var o = CrossValOptions(features: features, table: dir.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .abmil, out: out)
            o.folds = 3; o.seed = 5; o.epochs = 4; o.batchSize = 4; o.hidden = 16; o.attentionHidden = 8
            o.log = { _ in }
            return o
        }
        let whole = dir.appendingPathComponent("whole"), jobs = dir.appendingPathComponent("jobs")
        _ = try CrossVal.run(options(whole))
        #expect(throws: MILError.self) { try CrossVal.merge(out: jobs) }   // nothing yet
        for k in [2, 0] {
            var o = options(jobs); o.onlyFold = k
            let r = try CrossVal.run(o)
            #expect(r.foldsTrained == [k])
        }
        do {
            _ = try CrossVal.merge(out: jobs)
            Issue.record("merge accepted a folder without fold 1")
        } catch {
            #expect("\(error)".contains("fold(s) 1 of 3"), "\(error)")
        }
        var o = options(jobs); o.onlyFold = 3
        #expect(throws: MILError.self) { try CrossVal.run(o) }
        o.onlyFold = 1
        _ = try CrossVal.run(o)
        let merged = try CrossVal.merge(out: jobs)
        #expect(merged.folds == 3 && merged.patients == cohort.patients.count)
        for k in 0..<3 {
            for f in ["patient_preds.csv", "slice_attention.csv"] {
                let a = try Data(contentsOf: whole.appendingPathComponent("fold-\(k)/\(f)"))
                let b = try Data(contentsOf: jobs.appendingPathComponent("fold-\(k)/\(f)"))
                #expect(a == b, "fold-\(k)/\(f) differs between the one-shot run and the fold job")
            }
            let ma = try SafeTensors.read(whole.appendingPathComponent("fold-\(k)/model.safetensors")).tensors
            let mb = try SafeTensors.read(jobs.appendingPathComponent("fold-\(k)/model.safetensors")).tensors
            #expect(ma.keys.sorted() == mb.keys.sorted())
            for (key, v) in ma { #expect(mb[key]?.scalars == v.scalars, "fold-\(k) \(key)") }
        }
        let pw = try Predictions.load(whole), pj = try Predictions.load(jobs)
        #expect(Metrics.summarize(pw.pooled).auroc[0]! == Metrics.summarize(pj.pooled).auroc[0]!)
    }
}
