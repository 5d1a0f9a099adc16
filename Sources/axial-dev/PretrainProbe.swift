import AxialTestSupport
import AxialPipeline
import AxialEval
import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

/// Evidence that pretraining learns: a linear probe (logistic regression on frozen, standardised
/// features) separating lesion from normal slices, train/test split by patient.
/// `experiment` runs the whole comparison on a synthetic cohort (`PretrainCohort`): the encoder at
/// initialisation, after MoCo v3 with random views only, after MoCo v3 with LeCL's lesion views
/// but w = 0 (CLEAR's `--sampling Lesion --sample-weight 0`), and after LeCL (w > 0), at equal steps.
public enum PretrainProbe {
    public struct Score: Sendable {
        public var name: String
        public var trainAccuracy: Double
        public var testAccuracy: Double
        public var testAUROC: Double
        public var finalLoss: Float?
        public var seconds: Double
        public var line: String {
            name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: " test AUROC %.3f  test acc %.3f  train acc %.3f", testAUROC, testAccuracy, trainAccuracy)
                + (finalLoss.map { String(format: "  final loss %.4f", $0) } ?? "")
                + String(format: "  (%.0f s)", seconds)
        }
    }

    /// Encodes each PNG (resized to the encoder's input size, bilinear, ImageNet normalisation) without grad.
    public static func features(encoder: any ImageEncoder, paths: [String], batch: Int = 64) throws -> [[Float]] {
        let size = encoder.inputSize
        let pre = Preprocess(resize: .shorterSide(size), crop: size, interpolation: .bilinear)
        var out: [[Float]] = []
        encoder.eval()
        for start in stride(from: 0, to: paths.count, by: batch) {
            let images = try paths[start..<min(paths.count, start + batch)].map { PlanarImage8(try PNG.read(URL(fileURLWithPath: $0))) }
            let f = withNoGrad { encoder.encode(pre.batch(images)) }
            let d = f.shape[1], s = f.scalars
            for i in 0..<images.count { out.append(Array(s[i * d..<(i + 1) * d])) }
        }
        return out
    }

    /// L2-regularised logistic regression (full-batch gradient descent on standardised features,
    /// λ = `l2`), fitted on `train` rows; returns (train accuracy, test accuracy, test AUROC).
    public static func logisticProbe(features x: [[Float]], labels y: [Bool], train: [Int], test: [Int],
                                     l2: Double = 1e-2, iterations: Int = 2000, lr: Double = 0.5) -> (Double, Double, Double) {
        let d = x[0].count
        var mean = [Double](repeating: 0, count: d), sd = [Double](repeating: 0, count: d)
        for i in train { for j in 0..<d { mean[j] += Double(x[i][j]) } }
        for j in 0..<d { mean[j] /= Double(train.count) }
        for i in train { for j in 0..<d { let v = Double(x[i][j]) - mean[j]; sd[j] += v * v } }
        for j in 0..<d { sd[j] = max((sd[j] / Double(train.count)).squareRoot(), 1e-8) }
        func z(_ i: Int) -> [Double] { (0..<d).map { (Double(x[i][$0]) - mean[$0]) / sd[$0] } }
        let zt = train.map(z), zs = test.map(z)
        var w = [Double](repeating: 0, count: d), b = 0.0
        for _ in 0..<iterations {
            var gw = [Double](repeating: 0, count: d), gb = 0.0
            for (k, i) in train.enumerated() {
                var s = b
                for j in 0..<d { s += w[j] * zt[k][j] }
                let p = 1 / (1 + Foundation.exp(-s)), e = p - (y[i] ? 1 : 0)
                for j in 0..<d { gw[j] += e * zt[k][j] }
                gb += e
            }
            let n = Double(train.count)
            for j in 0..<d { w[j] -= lr * (gw[j] / n + l2 * w[j]) }
            b -= lr * gb / n
        }
        func score(_ v: [Double]) -> Double { var s = b; for j in 0..<d { s += w[j] * v[j] }; return s }
        let trainAcc = Double(zip(train, zt).filter { (score($0.1) > 0) == y[$0.0] }.count) / Double(train.count)
        let testScores = zs.map(score)
        let testAcc = Double(zip(test, testScores).filter { ($0.1 > 0) == y[$0.0] }.count) / Double(test.count)
        let auc = Metrics.auroc(labels: test.map { y[$0] }, scores: testScores) ?? .nan
        return (trainAcc, testAcc, auc)
    }

    /// Probe of `encoder` on the cohort's slices: patients in the first `trainFraction` (by sorted
    /// id) train, the rest test.
    public static func probe(encoder: any ImageEncoder, cohort: URL, name: String, trainFraction: Double = 0.6,
                             finalLoss: Float? = nil, seconds: Double = 0) throws -> Score {
        let table = try CSVTable.read(cohort.appendingPathComponent("slice_labels.csv"))
        let rel = try table.column("path"), labels = try table.column("lesion").map { $0 == "1" }
        let paths = rel.map { cohort.appendingPathComponent($0).path }
        let patients = rel.map { String($0.split(separator: "/")[0]) }
        let ids = Array(Set(patients)).sorted()
        let trainIDs = Set(ids.prefix(Int((Double(ids.count) * trainFraction).rounded())))
        let train = patients.indices.filter { trainIDs.contains(patients[$0]) }, test = patients.indices.filter { !trainIDs.contains(patients[$0]) }
        let f = try features(encoder: encoder, paths: paths)
        let (tr, te, auc) = logisticProbe(features: f, labels: labels, train: train, test: test)
        return Score(name: name, trainAccuracy: tr, testAccuracy: te, testAUROC: auc, finalLoss: finalLoss, seconds: seconds)
    }

    /// The comparison: cohort → {initialisation, MoCo v3 (w = 0), LeCL (w = `weight`)} at `steps`
    /// steps each, same seed, same schedule → linear-probe scores. Writes runs under `folder`.
    public static func experiment(folder: URL, arch: String = "vit_test", steps: Int = 1000, batch: Int = 32,
                                  size: Int = 32, patients: Int = 30, slicesPerPatient: Int = 10, weight: Float = 1.0,
                                  lr: Double = 0.05, temperature: Float = 0.2, seed: UInt64 = 0,
                                  log: (String) -> Void = { print($0) }) throws -> [Score] {
        let cohort = folder.appendingPathComponent("cohort")
        if !FileManager.default.fileExists(atPath: cohort.appendingPathComponent("slice_labels.csv").path) {
            let c = try PretrainCohort.write(to: cohort, patients: patients, slicesPerPatient: slicesPerPatient, size: 64, seed: seed &+ 11)
            log("probe: cohort \(c.slices) slices, \(c.lesionSlices) with lesions, in \(cohort.path)")
        }
        var scores: [Score] = []
        let initial = try EncoderRegistry.spec(arch).makeModel(seed: seed)
        scores.append(try probe(encoder: initial, cohort: cohort, name: "initialisation"))
        log("probe: " + scores.last!.line)
        let runs: [(String, String, Float, Bool)] = [("MoCo v3, random views", "moco-plain", 0, false),
                                                     ("MoCo v3 + lesion views", "moco", 0, true),
                                                     ("LeCL (w = \(weight))", "lecl", weight, true)]
        for (name, dir, w, lesionViews) in runs {
            let out = folder.appendingPathComponent(dir)
            try? FileManager.default.removeItem(at: out)
            var o = Pretrain.Options(input: cohort.path, lesions: lesionViews ? cohort.appendingPathComponent("lesions.csv").path : nil,
                                     arch: arch, steps: steps, batch: batch, out: out.path)
            o.size = size; o.dim = 64; o.mlpDim = 256; o.lr = lr; o.temperature = temperature; o.lesionWeight = w
            o.seed = seed; o.checkpointEvery = steps; o.weightDecay = 0.05
            let r = try Pretrain.run(o, progressStyle: .quiet)
            let encoder = try EncoderRegistry.load(arch, weights: out.appendingPathComponent("encoder.safetensors"))
            scores.append(try probe(encoder: encoder, cohort: cohort, name: name, finalLoss: r.finalLoss, seconds: r.seconds))
            log("probe: " + scores.last!.line)
        }
        return scores
    }
}
