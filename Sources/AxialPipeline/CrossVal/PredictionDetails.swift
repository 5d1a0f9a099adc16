import AxialCore
import AxialEval
import AxialTensor
import Foundation

/// What `axial report` needs beside `patient_preds.csv` / `slice_attention.csv`, written by
/// crossval (per fold) and deploy:
///
/// - `prediction_ci.csv`: `patient_id, class, score, ci_low, ci_high, resamples` — a 95% interval
///   of each patient's score from an instance bootstrap: the bag's rows are resampled with
///   replacement (`resamples` times, seeded by the patient id) and scored by the same model(s);
///   it says how much the prediction hangs on which slices are in the bag (not a population CI).
/// - `attention_keyslices.csv`: `patient_id, rank, slice_index, z_mm, attention` — the top-k slices
///   by attention (summed over the windows of a slice), rank 1 first.
public enum PredictionDetails {
    public static let resamples = 50
    public static let keySliceCount = 5

    /// 2.5 / 97.5 percentiles of the ensemble's class probabilities on `resamples` row-bootstraps of
    /// `bag` (rows drawn with replacement, kept in slice order). [class] → (low, high).
    static func interval(_ models: [MILModel], bag: PatientBag, resamples: Int, seed: UInt64) -> [(Double, Double)] {
        let c = models[0].task.classes.count
        guard bag.count > 1, resamples > 1 else { return [(Double, Double)](repeating: (.nan, .nan), count: c) }
        var rng = RandomGenerator(seed: combineSeeds(seed, fnv1a64("ci:" + bag.patientID)))
        var draws = [[Double]](repeating: [], count: c)
        let chunk = 10
        withNoGrad {
            var done = 0
            while done < resamples {
                let m = min(chunk, resamples - done)
                let bags = (0..<m).map { _ in bag.subset((0..<bag.count).map { _ in rng.int(below: bag.count) }.sorted()) }
                let (x, mask) = Bags.batch(bags)
                var sum = [[Double]](repeating: [Double](repeating: 0, count: c), count: m)
                for model in models {
                    let p = CrossVal.probabilities(model.forward(x, mask: mask).logits, kind: model.task.kind)
                    for i in 0..<m { for k in 0..<c { sum[i][k] += p[i][k] } }
                }
                for i in 0..<m { for k in 0..<c { draws[k].append(sum[i][k] / Double(models.count)) } }
                done += m
            }
        }
        return draws.map { (Bootstrap.percentile($0, 2.5), Bootstrap.percentile($0, 97.5)) }
    }

    /// Attention summed per slice, sorted by attention (descending, then slice index), top `k`.
    public static func keySlices(_ p: CrossVal.PatientPrediction, k: Int = keySliceCount) -> [(slice: Int, z: Float, attention: Double)] {
        var bySlice: [Int: (z: Float, a: Double)] = [:]
        for i in 0..<p.bag.count {
            let s = p.bag.sliceIndex[i]
            bySlice[s, default: (p.bag.zMM[i], 0)].a += Double(p.attention[i])
        }
        return bySlice.map { (slice: $0.key, z: $0.value.z, attention: $0.value.a) }
            .sorted { $0.attention != $1.attention ? $0.attention > $1.attention : $0.slice < $1.slice }
            .prefix(k).map { $0 }
    }

    /// Writes `prediction_ci.csv` and `attention_keyslices.csv` into `dir` (atomically).
    static func write(_ preds: [CrossVal.PatientPrediction], task: TaskSpec, resamples: Int = PredictionDetails.resamples, to dir: URL) throws {
        var ci = CSVTable(header: ["patient_id", "class", "score", "ci_low", "ci_high", "resamples"])
        var ks = CSVTable(header: ["patient_id", "rank", "slice_index", "z_mm", "attention"])
        func g(_ v: Double) -> String { v.isFinite ? String(format: "%.8g", v) : "" }
        for p in preds {
            for (k, cls) in task.classes.enumerated() {
                let (lo, hi) = k < p.interval.count ? p.interval[k] : (.nan, .nan)
                ci.rows.append([p.bag.patientID, cls.name, g(p.scores[k]), g(lo), g(hi), lo.isFinite ? "\(resamples)" : "0"])
            }
            for (r, s) in keySlices(p).enumerated() {
                ks.rows.append([p.bag.patientID, "\(r + 1)", "\(s.slice)", String(format: "%.3f", s.z), String(format: "%.6g", s.attention)])
            }
        }
        try ci.write(to: dir.appendingPathComponent("prediction_ci.csv"))
        try ks.write(to: dir.appendingPathComponent("attention_keyslices.csv"))
    }
}
