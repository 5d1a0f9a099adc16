import Foundation
import AxialTestSupport
import Testing
@testable import AxialEval

/// sklearn goldens from Tools/goldens/make_eval_goldens.py.
struct Goldens: Decodable {
    struct BinaryCase: Decodable {
        let name: String
        let labels: [Int]
        let scores: [Double]
        let auroc, average_precision: Double
        let roc_fpr, roc_tpr, roc_thresholds: [Double]
        let roc_all_fpr, roc_all_tpr, roc_all_thresholds: [Double]
        let pr_precision, pr_recall, pr_thresholds: [Double]
        let threshold, precision, recall, f1, accuracy: Double
    }
    struct MultiLabel: Decodable {
        let labels: [[Int]]
        let scores: [[Double]]
        let threshold: Double
        let auroc, average_precision: [Double?]
        let macro_auroc, macro_average_precision, micro_auroc, micro_average_precision: Double?
        let f1: [Double]
        let micro_f1: Double
        let excluded: [Int]
        let sklearn_direct_macro, sklearn_direct_micro, sklearn_direct_ap_macro, sklearn_direct_ap_micro: Double
    }
    struct BootstrapCase: Decodable {
        let resamples: [[Int]]
        let auroc, average_precision: [[Double]?]
        let macro_auroc, micro_auroc, macro_average_precision, micro_average_precision: [Double]?
    }
    struct MultiClass: Decodable {
        let class_index: [Int]
        let scores: [[Double]]
        let auroc: [Double]
        let macro_auroc, micro_auroc: Double
        let average_precision, argmax_f1: [Double]
        let accuracy: Double
    }
    struct Percentiles: Decodable { let values, q, expected: [Double] }
    let binary: [BinaryCase]
    let multilabel: MultiLabel
    let bootstrap: BootstrapCase
    let multiclass: MultiClass
    let percentiles: Percentiles

    static let shared: Goldens = {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/eval_goldens.json")
        return try! JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }()
}

func close(_ a: Double?, _ b: Double?, tol: Double = 1e-12) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return abs(x - y) <= tol
    default: return false
    }
}

func close(_ a: [Double], _ b: [Double], tol: Double = 1e-12) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol }
}

@Suite struct BinaryMetricsTests {
    @Test(arguments: Goldens.shared.binary.map(\.name))
    func matchesSklearn(_ name: String) throws {
        let g = Goldens.shared.binary.first { $0.name == name }!
        let labels = g.labels.map { $0 == 1 }
        #expect(close(Metrics.auroc(labels: labels, scores: g.scores), g.auroc))
        #expect(close(Metrics.averagePrecision(labels: labels, scores: g.scores), g.average_precision))

        let roc = try #require(Metrics.rocCurve(labels: labels, scores: g.scores))
        #expect(close(roc.fpr, g.roc_fpr) && close(roc.tpr, g.roc_tpr))
        #expect(roc.thresholds.first == .infinity && close(Array(roc.thresholds.dropFirst()), g.roc_thresholds))
        let all = try #require(Metrics.rocCurve(labels: labels, scores: g.scores, dropIntermediate: false))
        #expect(close(all.fpr, g.roc_all_fpr) && close(all.tpr, g.roc_all_tpr))
        #expect(close(Array(all.thresholds.dropFirst()), g.roc_all_thresholds))

        let pr = try #require(Metrics.precisionRecallCurve(labels: labels, scores: g.scores))
        #expect(close(pr.precision, g.pr_precision) && close(pr.recall, g.pr_recall) && close(pr.thresholds, g.pr_thresholds))

        let t = Metrics.thresholdMetrics(labels: g.labels, scores: g.scores, threshold: g.threshold)
        #expect(close(t.precision, g.precision) && close(t.recall, g.recall))
        #expect(close(t.f1, g.f1) && close(t.accuracy, g.accuracy))
    }

    @Test func undefinedWithOneClass() {
        #expect(Metrics.auroc(labels: [true, true], scores: [0.1, 0.2]) == nil)
        #expect(Metrics.auroc(labels: [1, -1, 1], scores: [0.1, 0.5, 0.2]) == nil)
        #expect(Metrics.averagePrecision(labels: [false, false], scores: [0.1, 0.2]) == nil)
    }

    @Test func unknownLabelsAreDropped() {
        let g = Goldens.shared.binary[0]
        var labels = g.labels, scores = g.scores
        labels.insert(-1, at: 3); scores.insert(0.99, at: 3)
        labels.append(-1); scores.append(-5)
        #expect(close(Metrics.auroc(labels: labels, scores: scores), g.auroc))
        #expect(close(Metrics.averagePrecision(labels: labels, scores: scores), g.average_precision))
    }
}

@Suite struct MultiLabelMetricsTests {
    @Test func perClassMacroMicro() {
        let g = Goldens.shared.multilabel
        let data = LabelScores(classes: ["a", "b", "c", "d"], patientIDs: g.labels.indices.map { "p\($0)" },
                               labels: g.labels, scores: g.scores)
        let m = Metrics.summarize(data)
        for c in 0..<4 {
            #expect(close(m.auroc[c], g.auroc[c]), "class \(c)")
            #expect(close(m.averagePrecision[c], g.average_precision[c]), "class \(c)")
        }
        #expect(m.excludedFromMacro == g.excluded)
        #expect(close(m.macroAUROC, g.macro_auroc) && close(m.microAUROC, g.micro_auroc))
        #expect(close(m.macroAveragePrecision, g.macro_average_precision))
        #expect(close(m.microAveragePrecision, g.micro_average_precision))

        let t = Metrics.thresholdMetrics(data, threshold: g.threshold)
        #expect(close(t.map(\.f1), g.f1))
        #expect(close(t.reduce(ThresholdMetrics(), +).f1, g.micro_f1))
    }

    @Test func plainSklearnMacroMicroWithoutUnknowns() {
        let g = Goldens.shared.multilabel
        let labels = g.labels.map { Array($0.prefix(3)).map { max($0, 0) } }
        let data = LabelScores(classes: ["a", "b", "c"], patientIDs: labels.indices.map { "p\($0)" },
                               labels: labels, scores: g.scores.map { Array($0.prefix(3)) })
        let m = Metrics.summarize(data)
        #expect(close(m.macroAUROC, g.sklearn_direct_macro) && close(m.microAUROC, g.sklearn_direct_micro))
        #expect(close(m.macroAveragePrecision, g.sklearn_direct_ap_macro))
        #expect(close(m.microAveragePrecision, g.sklearn_direct_ap_micro))
    }
}

@Suite struct MultiClassMetricsTests {
    @Test func oneVsRest() {
        let g = Goldens.shared.multiclass
        let data = LabelScores(classes: ["I", "II", "III", "IV"], patientIDs: g.class_index.indices.map { "p\($0)" },
                               classIndex: g.class_index, scores: g.scores)
        let m = Metrics.summarize(data)
        #expect(close(m.auroc.map { $0! }, g.auroc))
        #expect(close(m.macroAUROC, g.macro_auroc) && close(m.microAUROC, g.micro_auroc))
        #expect(close(m.averagePrecision.map { $0! }, g.average_precision))
        let t = Metrics.argmaxMetrics(data)
        #expect(close(t.map(\.f1), g.argmax_f1))
        let correct = t.reduce(0) { $0 + $1.truePositives }
        #expect(close(Double(correct) / Double(g.class_index.filter { $0 >= 0 }.count), g.accuracy))
    }
}

@Suite struct BootstrapTests {
    @Test func intervalsFromExplicitResamples() {
        let g = Goldens.shared, b = g.bootstrap
        let data = LabelScores(classes: ["a", "b", "c", "d"], patientIDs: g.multilabel.labels.indices.map { "p\($0)" },
                               labels: g.multilabel.labels, scores: g.multilabel.scores)
        let s = Bootstrap.summarize(data, resamples: b.resamples)
        func same(_ ci: ConfidenceInterval?, _ e: [Double]?) -> Bool {
            guard let ci, let e else { return ci == nil && e == nil }
            return close(ci.low, e[0]) && close(ci.high, e[1]) && ci.validResamples == Int(e[2])
        }
        for c in 0..<4 {
            #expect(same(s.auroc[c], b.auroc[c]), "class \(c)")
            #expect(same(s.averagePrecision[c], b.average_precision[c]), "class \(c)")
        }
        #expect(same(s.macroAUROC, b.macro_auroc) && same(s.microAUROC, b.micro_auroc))
        #expect(same(s.macroAveragePrecision, b.macro_average_precision))
        #expect(same(s.microAveragePrecision, b.micro_average_precision))
    }

    @Test func percentileMatchesNumpy() {
        let p = Goldens.shared.percentiles
        for (q, e) in zip(p.q, p.expected) { #expect(close(Bootstrap.percentile(p.values, q), e), "q=\(q)") }
    }

    @Test func seededAndStratified() {
        let o = BootstrapOptions(resamples: 50, seed: 7, stratified: true)
        let strata = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
        let a = Bootstrap.resampleIndices(count: 10, options: o, strata: strata)
        #expect(a == Bootstrap.resampleIndices(count: 10, options: o, strata: strata))
        #expect(a != Bootstrap.resampleIndices(count: 10, options: BootstrapOptions(resamples: 50, seed: 8, stratified: true), strata: strata))
        for r in a {   // stratum sizes preserved
            #expect(r.filter { strata[$0] == 0 }.count == 3 && r.filter { strata[$0] == 1 }.count == 2)
        }
        let g = Goldens.shared.binary[0]
        let data = LabelScores(classes: ["x"], patientIDs: g.labels.indices.map { "p\($0)" },
                               labels: g.labels.map { [$0] }, scores: g.scores.map { [$0] })
        let ci = Bootstrap.summarize(data, options: BootstrapOptions(resamples: 200, seed: 1)).auroc[0]!
        #expect(ci.low < g.auroc && g.auroc < ci.high && ci.validResamples == 200)
    }
}
