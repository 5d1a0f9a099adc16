// Binary ranking and threshold metrics with scikit-learn's semantics (sklearn 1.9 `_ranking.py`,
// `_classification.py`). Scores are continuous (probabilities or logits), never thresholded before
// AUROC / AP — the CLEAR reference computes AUROC on thresholded predictions (REFERENCE.md §1 [Q]).
//
// Labels are `Int`: 1 positive, 0 negative, anything else (−1) unknown and dropped per class.

/// ROC curve points, as `sklearn.metrics.roc_curve`: fpr/tpr increasing, thresholds decreasing,
/// first threshold +∞ (the (0, 0) point).
public struct ROCCurve: Sendable, Equatable {
    public var fpr: [Double]
    public var tpr: [Double]
    public var thresholds: [Double]
}

/// Precision–recall curve, as `sklearn.metrics.precision_recall_curve`: recall decreasing, ending
/// with the (recall 0, precision 1) point that has no threshold; `thresholds` increasing.
public struct PRCurve: Sendable, Equatable {
    public var precision: [Double]
    public var recall: [Double]
    public var thresholds: [Double]
}

/// Confusion counts at one threshold (`score >= threshold` is a positive prediction) and the
/// derived rates. A 0/0 rate is 0, as sklearn's `zero_division="warn"` default.
public struct ThresholdMetrics: Sendable, Equatable {
    public var truePositives = 0, falsePositives = 0, trueNegatives = 0, falseNegatives = 0

    public init(truePositives: Int = 0, falsePositives: Int = 0, trueNegatives: Int = 0, falseNegatives: Int = 0) {
        self.truePositives = truePositives; self.falsePositives = falsePositives
        self.trueNegatives = trueNegatives; self.falseNegatives = falseNegatives
    }

    public var count: Int { truePositives + falsePositives + trueNegatives + falseNegatives }
    public var precision: Double { Self.ratio(truePositives, truePositives + falsePositives) }
    public var recall: Double { Self.ratio(truePositives, truePositives + falseNegatives) }
    public var specificity: Double { Self.ratio(trueNegatives, trueNegatives + falsePositives) }
    public var accuracy: Double { Self.ratio(truePositives + trueNegatives, count) }
    /// F1 = 2·TP / (2·TP + FP + FN) (sklearn ≥ 1.3 formula; 0 when the denominator is 0).
    public var f1: Double { Self.ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives) }

    public static func + (a: Self, b: Self) -> Self {
        Self(truePositives: a.truePositives + b.truePositives, falsePositives: a.falsePositives + b.falsePositives,
             trueNegatives: a.trueNegatives + b.trueNegatives, falseNegatives: a.falseNegatives + b.falseNegatives)
    }

    static func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}

public enum Metrics {
    /// Keeps the entries whose label is 0 or 1; returns positives as `true`.
    public static func known(labels: [Int], scores: [Double]) -> (labels: [Bool], scores: [Double]) {
        precondition(labels.count == scores.count, "labels (\(labels.count)) and scores (\(scores.count)) differ in length")
        var l: [Bool] = [], s: [Double] = []
        l.reserveCapacity(labels.count); s.reserveCapacity(labels.count)
        for i in labels.indices where labels[i] == 0 || labels[i] == 1 {
            l.append(labels[i] == 1); s.append(scores[i])
        }
        return (l, s)
    }

    /// Cumulative false / true positives at each distinct score, scores decreasing
    /// (sklearn `confusion_matrix_at_thresholds`, formerly `_binary_clf_curve`). Tied scores form
    /// one threshold, so the order inside a tie never matters.
    public static func countsAtThresholds(labels: [Bool], scores: [Double]) -> (fps: [Double], tps: [Double], thresholds: [Double]) {
        precondition(labels.count == scores.count, "labels (\(labels.count)) and scores (\(scores.count)) differ in length")
        precondition(!scores.contains { $0.isNaN }, "scores contain NaN")
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var fps: [Double] = [], tps: [Double] = [], thresholds: [Double] = []
        var tp = 0.0
        for (k, i) in order.enumerated() {
            if labels[i] { tp += 1 }
            let last = k == order.count - 1
            if last || scores[order[k + 1]] != scores[i] {
                tps.append(tp); fps.append(Double(k + 1) - tp); thresholds.append(scores[i])
            }
        }
        return (fps, tps, thresholds)
    }

    /// `sklearn.metrics.roc_curve`. Nil when the known labels lack positives or negatives (sklearn
    /// returns NaN rates there).
    public static func rocCurve(labels: [Bool], scores: [Double], dropIntermediate: Bool = true) -> ROCCurve? {
        var (fps, tps, thr) = countsAtThresholds(labels: labels, scores: scores)
        guard let fMax = fps.last, let tMax = tps.last, fMax > 0, tMax > 0 else { return nil }
        if dropIntermediate && fps.count > 2 {
            // Keep the ends and each point where the curve bends (second differences ≠ 0).
            var keep = [0]
            for i in 1..<(fps.count - 1) {
                let d2f = fps[i + 1] - 2 * fps[i] + fps[i - 1]
                let d2t = tps[i + 1] - 2 * tps[i] + tps[i - 1]
                if d2f != 0 || d2t != 0 { keep.append(i) }
            }
            keep.append(fps.count - 1)
            fps = keep.map { fps[$0] }; tps = keep.map { tps[$0] }; thr = keep.map { thr[$0] }
        }
        return ROCCurve(fpr: [0] + fps.map { $0 / fMax }, tpr: [0] + tps.map { $0 / tMax },
                        thresholds: [.infinity] + thr)
    }

    /// Area under the ROC curve on continuous scores (`roc_auc_score`, binary). Nil when only one
    /// class is present among the known labels.
    public static func auroc(labels: [Bool], scores: [Double]) -> Double? {
        guard let roc = rocCurve(labels: labels, scores: scores) else { return nil }
        return trapezoid(x: roc.fpr, y: roc.tpr)
    }

    /// AUROC with unknown labels (−1) dropped.
    public static func auroc(labels: [Int], scores: [Double]) -> Double? {
        let k = known(labels: labels, scores: scores)
        return auroc(labels: k.labels, scores: k.scores)
    }

    /// `sklearn.metrics.precision_recall_curve` (drop_intermediate default false, as sklearn).
    /// Nil when there are no samples at all. With no positives sklearn sets recall to 1; so does this.
    public static func precisionRecallCurve(labels: [Bool], scores: [Double], dropIntermediate: Bool = false) -> PRCurve? {
        var (fps, tps, thr) = countsAtThresholds(labels: labels, scores: scores)
        guard let tMax = tps.last else { return nil }
        if dropIntermediate && fps.count > 2 {
            // Keep the first and last point of each run of equal tps.
            var keep = [0]
            for i in 1..<(tps.count - 1) where tps[i] != tps[i - 1] || tps[i + 1] != tps[i] { keep.append(i) }
            keep.append(tps.count - 1)
            fps = keep.map { fps[$0] }; tps = keep.map { tps[$0] }; thr = keep.map { thr[$0] }
        }
        var precision: [Double] = [], recall: [Double] = []
        for i in tps.indices.reversed() {
            let ps = tps[i] + fps[i]
            precision.append(ps != 0 ? tps[i] / ps : 0)
            recall.append(tMax == 0 ? 1 : tps[i] / tMax)
        }
        return PRCurve(precision: precision + [1], recall: recall + [0], thresholds: thr.reversed())
    }

    /// Average precision (`average_precision_score`, binary): Σ (Rₙ − Rₙ₋₁)·Pₙ, the step integral
    /// of the PR curve without interpolation. Nil when there are no positives (sklearn warns and
    /// returns a meaningless value there).
    public static func averagePrecision(labels: [Bool], scores: [Double]) -> Double? {
        guard labels.contains(true), let pr = precisionRecallCurve(labels: labels, scores: scores) else { return nil }
        var s = 0.0
        for i in 0..<(pr.recall.count - 1) { s += (pr.recall[i + 1] - pr.recall[i]) * pr.precision[i] }
        return max(0, -s)
    }

    /// Average precision with unknown labels (−1) dropped.
    public static func averagePrecision(labels: [Int], scores: [Double]) -> Double? {
        let k = known(labels: labels, scores: scores)
        return averagePrecision(labels: k.labels, scores: k.scores)
    }

    /// Trapezoidal area (numpy `trapezoid`), as `sklearn.metrics.auc` on an increasing x.
    public static func trapezoid(x: [Double], y: [Double]) -> Double {
        precondition(x.count == y.count, "x (\(x.count)) and y (\(y.count)) differ in length")
        var s = 0.0
        if x.count > 1 { for i in 1..<x.count { s += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0 } }
        return s
    }

    /// Confusion counts with `score >= threshold` as the positive prediction; unknown labels dropped.
    public static func thresholdMetrics(labels: [Int], scores: [Double], threshold: Double) -> ThresholdMetrics {
        precondition(labels.count == scores.count, "labels (\(labels.count)) and scores (\(scores.count)) differ in length")
        var m = ThresholdMetrics()
        for i in labels.indices where labels[i] == 0 || labels[i] == 1 {
            switch (labels[i] == 1, scores[i] >= threshold) {
            case (true, true): m.truePositives += 1
            case (true, false): m.falseNegatives += 1
            case (false, true): m.falsePositives += 1
            case (false, false): m.trueNegatives += 1
            }
        }
        return m
    }
}
