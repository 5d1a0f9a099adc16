import AxialCore
// Per-class, macro and micro metrics over a patients × classes table, and their bootstrap CIs.
//
// Semantics (documented in statistics.md too):
// - binary / multi-label: one column per class, labels 1 / 0 / −1 (unknown, dropped for that class);
// - multi-class: one-hot columns from the class index (an unknown row is −1 in every column), so the
//   per-class values are one-vs-rest and the macro AUROC equals `roc_auc_score(multi_class="ovr",
//   average="macro")`;
// - macro = unweighted mean over the classes whose metric is defined (both label values present).
//   sklearn returns NaN for the macro when any class has one label value; Axial excludes those
//   classes and names them in `excludedFromMacro` instead;
// - micro = the binary metric on all known (patient, class) entries pooled (sklearn `average="micro"`
//   on the raveled matrix, unknown entries dropped).

/// Labels and scores for one set of patients: `labels[p][c]` ∈ {1, 0, −1}, `scores[p][c]` continuous.
public struct LabelScores: Sendable, Equatable {
    public var classes: [String]
    public var patientIDs: [String]
    public var labels: [[Int]]
    public var scores: [[Double]]

    public init(classes: [String], patientIDs: [String], labels: [[Int]], scores: [[Double]]) {
        precondition(labels.count == patientIDs.count && scores.count == patientIDs.count,
                     "labels (\(labels.count)), scores (\(scores.count)) and patients (\(patientIDs.count)) differ")
        for (l, s) in zip(labels, scores) {
            precondition(l.count == classes.count && s.count == classes.count,
                         "a row has \(l.count) labels / \(s.count) scores for \(classes.count) classes")
        }
        self.classes = classes; self.patientIDs = patientIDs; self.labels = labels; self.scores = scores
    }

    /// Multi-class rows: `classIndex[p]` in 0..<classes.count or −1 (unknown) → one-hot labels.
    public init(classes: [String], patientIDs: [String], classIndex: [Int], scores: [[Double]]) {
        let labels = classIndex.map { k in
            (0..<classes.count).map { c in k < 0 || k >= classes.count ? -1 : (c == k ? 1 : 0) }
        }
        self.init(classes: classes, patientIDs: patientIDs, labels: labels, scores: scores)
    }

    public var count: Int { patientIDs.count }

    public func column(_ c: Int) -> (labels: [Int], scores: [Double]) {
        (labels.map { $0[c] }, scores.map { $0[c] })
    }

    /// The patients at `indices` (repeats allowed, as in a bootstrap resample).
    public func subset(_ indices: [Int]) -> LabelScores {
        LabelScores(classes: classes, patientIDs: indices.map { patientIDs[$0] },
                    labels: indices.map { labels[$0] }, scores: indices.map { scores[$0] })
    }

    /// All known entries pooled (micro averaging).
    public func raveled() -> (labels: [Int], scores: [Double]) {
        var l: [Int] = [], s: [Double] = []
        for p in 0..<count { for c in classes.indices where labels[p][c] == 0 || labels[p][c] == 1 {
            l.append(labels[p][c]); s.append(scores[p][c])
        } }
        return (l, s)
    }

    public func positives(_ c: Int) -> Int { labels.reduce(0) { $0 + ($1[c] == 1 ? 1 : 0) } }
    public func negatives(_ c: Int) -> Int { labels.reduce(0) { $0 + ($1[c] == 0 ? 1 : 0) } }
}

/// AUROC and AP per class, macro and micro. `nil` = undefined (one label value only).
public struct SummaryMetrics: Sendable, Equatable {
    public var auroc: [Double?]
    public var averagePrecision: [Double?]
    public var macroAUROC: Double?
    public var microAUROC: Double?
    public var macroAveragePrecision: Double?
    public var microAveragePrecision: Double?
    /// Class indices left out of the macro AUROC (and AP) because one label value is missing.
    public var excludedFromMacro: [Int]
}

extension Metrics {
    public static func summarize(_ data: LabelScores) -> SummaryMetrics {
        var auc: [Double?] = [], ap: [Double?] = []
        for c in data.classes.indices {
            let col = data.column(c)
            let k = known(labels: col.labels, scores: col.scores)
            let a = auroc(labels: k.labels, scores: k.scores)
            auc.append(a)
            // AP is reported with the same class set as AUROC (both label values needed).
            ap.append(a == nil ? nil : averagePrecision(labels: k.labels, scores: k.scores))
        }
        let defined = auc.indices.filter { auc[$0] != nil }
        let r = data.raveled()
        return SummaryMetrics(
            auroc: auc, averagePrecision: ap,
            macroAUROC: mean(defined.map { auc[$0]! }),
            microAUROC: auroc(labels: r.labels, scores: r.scores),
            macroAveragePrecision: mean(defined.map { ap[$0]! }),
            microAveragePrecision: auroc(labels: r.labels, scores: r.scores) == nil ? nil : averagePrecision(labels: r.labels, scores: r.scores),
            excludedFromMacro: auc.indices.filter { auc[$0] == nil })
    }

    /// Threshold metrics per class; multi-class tasks should use `argmaxMetrics` instead.
    public static func thresholdMetrics(_ data: LabelScores, threshold: Double) -> [ThresholdMetrics] {
        data.classes.indices.map { c in
            let col = data.column(c)
            return thresholdMetrics(labels: col.labels, scores: col.scores, threshold: threshold)
        }
    }

    /// Multi-class: the predicted class is the arg-max score (first on ties, as numpy); one-vs-rest
    /// counts per class (sklearn `f1_score(average=None)` on the arg-max predictions).
    public static func argmaxMetrics(_ data: LabelScores) -> [ThresholdMetrics] {
        var out = [ThresholdMetrics](repeating: ThresholdMetrics(), count: data.classes.count)
        for p in 0..<data.count {
            guard let truth = data.labels[p].firstIndex(of: 1) else { continue }
            var best = 0
            for c in data.classes.indices where data.scores[p][c] > data.scores[p][best] { best = c }
            for c in data.classes.indices {
                switch (c == truth, c == best) {
                case (true, true): out[c].truePositives += 1
                case (true, false): out[c].falseNegatives += 1
                case (false, true): out[c].falsePositives += 1
                case (false, false): out[c].trueNegatives += 1
                }
            }
        }
        return out
    }

    static func mean(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.reduce(0, +) / Double(v.count) }
}

// MARK: - Bootstrap

/// Percentile bootstrap over patients.
///
/// Each resample draws `count` patients with replacement (plain bootstrap; with `stratified` the
/// draw is done within each stratum — positives / negatives of a binary task, each class of a
/// multi-class task — keeping the stratum sizes). A metric's CI uses only the resamples where that
/// metric is defined: a class with one label value in a resample is skipped for that class, as
/// sklearn users do (`if len(np.unique(y[idx])) < 2: continue`); the macro skips a resample when
/// any class that entered the point macro is undefined in it. Bounds are the (1−c)/2 and (1+c)/2
/// percentiles with numpy's default linear interpolation.
public struct BootstrapOptions: Sendable, Equatable {
    public var resamples: Int
    public var seed: UInt64
    public var confidence: Double
    public var stratified: Bool

    public init(resamples: Int = 1000, seed: UInt64 = 0, confidence: Double = 0.95, stratified: Bool = false) {
        self.resamples = resamples; self.seed = seed; self.confidence = confidence; self.stratified = stratified
    }
}

/// A percentile interval and how many resamples defined it.
public struct ConfidenceInterval: Sendable, Equatable {
    public var low: Double
    public var high: Double
    public var validResamples: Int
}

public struct BootstrapSummary: Sendable, Equatable {
    public var auroc: [ConfidenceInterval?]
    public var averagePrecision: [ConfidenceInterval?]
    public var macroAUROC: ConfidenceInterval?
    public var microAUROC: ConfidenceInterval?
    public var macroAveragePrecision: ConfidenceInterval?
    public var microAveragePrecision: ConfidenceInterval?
}

public enum Bootstrap {
    /// Resample index lists. `strata` (one key per patient) enables the stratified variant.
    public static func resampleIndices(count: Int, options: BootstrapOptions, strata: [Int]? = nil) -> [[Int]] {
        var rng = SplitMix64(seed: options.seed)
        var groups: [[Int]] = [Array(0..<count)]
        if options.stratified, let strata {
            precondition(strata.count == count, "strata (\(strata.count)) must have one key per patient (\(count))")
            var byKey: [Int: [Int]] = [:]
            for (i, k) in strata.enumerated() { byKey[k, default: []].append(i) }
            groups = byKey.keys.sorted().map { byKey[$0]! }
        }
        return (0..<options.resamples).map { _ in
            var idx: [Int] = []
            idx.reserveCapacity(count)
            for g in groups { for _ in 0..<g.count { idx.append(g[rng.uniform(below: g.count)]) } }
            return idx
        }
    }

    /// CIs for every metric of `Metrics.summarize` from the given resamples.
    public static func summarize(_ data: LabelScores, resamples: [[Int]], confidence: Double = 0.95) -> BootstrapSummary {
        let point = Metrics.summarize(data)
        let macroSet = data.classes.indices.filter { point.auroc[$0] != nil }
        let nc = data.classes.count
        var auc = [[Double]](repeating: [], count: nc), ap = auc
        var macroAUC: [Double] = [], microAUC: [Double] = [], macroAP: [Double] = [], microAP: [Double] = []
        for idx in resamples {
            let m = Metrics.summarize(data.subset(idx))
            for c in 0..<nc {
                if let v = m.auroc[c] { auc[c].append(v) }
                if let v = m.averagePrecision[c] { ap[c].append(v) }
            }
            if !macroSet.isEmpty, macroSet.allSatisfy({ m.auroc[$0] != nil }) {
                macroAUC.append(macroSet.map { m.auroc[$0]! }.reduce(0, +) / Double(macroSet.count))
                macroAP.append(macroSet.map { m.averagePrecision[$0]! }.reduce(0, +) / Double(macroSet.count))
            }
            if let v = m.microAUROC { microAUC.append(v) }
            if let v = m.microAveragePrecision { microAP.append(v) }
        }
        func ci(_ v: [Double]) -> ConfidenceInterval? {
            guard !v.isEmpty else { return nil }
            let lowQ = (1 - confidence) / 2 * 100, highQ = (1 + confidence) / 2 * 100
            return ConfidenceInterval(low: percentile(v, lowQ), high: percentile(v, highQ), validResamples: v.count)
        }
        return BootstrapSummary(auroc: auc.map(ci), averagePrecision: ap.map(ci),
                                macroAUROC: ci(macroAUC), microAUROC: ci(microAUC),
                                macroAveragePrecision: ci(macroAP), microAveragePrecision: ci(microAP))
    }

    /// Seeded resampling + `summarize`. Multi-class tasks stratify on the class index, binary
    /// and single-column tasks on the label; multi-label tasks always resample plainly.
    public static func summarize(_ data: LabelScores, options: BootstrapOptions) -> BootstrapSummary {
        var strata: [Int]? = nil
        if options.stratified {
            strata = data.labels.map { row in
                if data.classes.count == 1 { return row[0] }
                let ones = row.indices.filter { row[$0] == 1 }
                return ones.count == 1 && row.allSatisfy({ $0 == 0 || $0 == 1 }) ? ones[0] : -1
            }
        }
        let idx = resampleIndices(count: data.count, options: options, strata: strata)
        return summarize(data, resamples: idx, confidence: options.confidence)
    }

    /// numpy `percentile(v, q)` with the default "linear" method (q in 0…100).
    public static func percentile(_ values: [Double], _ q: Double) -> Double {
        precondition(!values.isEmpty, "percentile of an empty list")
        let s = values.sorted()
        let pos = q / 100 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        let frac = pos - Double(lo)
        // numpy's _lerp: a + (b − a)·t, switched to b − (b − a)·(1 − t) for t ≥ 0.5.
        let a = s[lo], b = s[hi], d = b - a
        return frac >= 0.5 ? b - d * (1 - frac) : a + d * frac
    }
}
