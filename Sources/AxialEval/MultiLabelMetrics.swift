import Foundation

// Multi-label metrics of PsPG's validator (macro / micro AUC, mAP, macro / micro F1, MCC) with
// scikit-learn's definitions, checked against sklearn 1.9 (Tools/goldens/make_multilabel_metrics_goldens.py
// → Tests/AxialEvalTests/Fixtures/multilabel_metrics.json). Labels 1 / 0 / −1: an unknown (−1) entry
// is dropped from every metric, per class (the reference keeps them and would fail on them).
//
//   macro AUC   mean over classes with both a positive and a negative of roc_auc_score(y_c, s_c)
//   micro AUC   roc_auc_score over all known (sample, class) entries flattened
//   mAP         mean over classes with a positive of average_precision_score(y_c, s_c)
//               ([Q] the reference integrates the PR curve with the trapezoid rule, auc(recall,
//               precision); sklearn's step-wise AP is used here)
//   F1          prediction = score > threshold (the reference's `y_pred > threshold`, 0.5);
//               macro = mean over all classes of f1_score(y_c, ŷ_c) (0 when undefined), micro =
//               f1 over the pooled counts ([Q] the reference's confusion matrix counts a missed
//               positive as a false positive and a false alarm as a false negative; sklearn's
//               counts are used here)
//   MCC         mean over classes of matthews_corrcoef(y_c, ŷ_c) (0 when undefined), the
//               reference's Average_MCC

public struct MultiLabelMetrics: Sendable, Equatable, Codable {
    public var macroAUC: Double?
    public var microAUC: Double?
    public var meanAveragePrecision: Double?
    public var macroF1: Double
    public var microF1: Double
    public var mcc: Double
    /// Per-class AUC (nil where a class lacks positives or negatives) and AP (nil without positives).
    public var classAUC: [Double?]
    public var classAP: [Double?]
    public var threshold: Double

    /// labels[i][c] ∈ {1, 0, −1}, scores[i][c] continuous (P(positive)).
    public static func compute(labels: [[Int]], scores: [[Double]], threshold: Double = 0.5) -> MultiLabelMetrics {
        precondition(labels.count == scores.count, "multi-label metrics: \(labels.count) label rows, \(scores.count) score rows")
        let c = labels.first?.count ?? 0
        precondition(labels.allSatisfy { $0.count == c } && scores.allSatisfy { $0.count == c },
                     "multi-label metrics: every row needs \(c) classes")
        var classAUC: [Double?] = [], classAP: [Double?] = []
        var f1s: [Double] = [], mccs: [Double] = []
        var pooled = ThresholdMetrics()
        var allLabels: [Int] = [], allScores: [Double] = []
        // `score > threshold` as a positive = `score >= threshold.nextUp` for Double scores.
        let cut = threshold.nextUp
        for j in 0..<c {
            let y = labels.map { $0[j] }, s = scores.map { $0[j] }
            classAUC.append(Metrics.auroc(labels: y, scores: s))
            classAP.append(y.contains(1) ? Metrics.averagePrecision(labels: y, scores: s) : nil)
            let m = Metrics.thresholdMetrics(labels: y, scores: s, threshold: cut)
            f1s.append(m.f1); mccs.append(matthews(m)); pooled = pooled + m
            allLabels += y; allScores += s
        }
        func mean(_ v: [Double?]) -> Double? { let k = v.compactMap { $0 }; return k.isEmpty ? nil : k.reduce(0, +) / Double(k.count) }
        return MultiLabelMetrics(
            macroAUC: mean(classAUC), microAUC: Metrics.auroc(labels: allLabels, scores: allScores),
            meanAveragePrecision: mean(classAP),
            macroF1: c == 0 ? 0 : f1s.reduce(0, +) / Double(c), microF1: pooled.f1,
            mcc: c == 0 ? 0 : mccs.reduce(0, +) / Double(c), classAUC: classAUC, classAP: classAP, threshold: threshold)
    }

    /// sklearn `matthews_corrcoef` for one binary problem: (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)), 0 when undefined.
    public static func matthews(_ m: ThresholdMetrics) -> Double {
        let tp = Double(m.truePositives), tn = Double(m.trueNegatives), fp = Double(m.falsePositives), fn = Double(m.falseNegatives)
        let d = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).squareRoot()
        return d == 0 ? 0 : (tp * tn - fp * fn) / d
    }
}
