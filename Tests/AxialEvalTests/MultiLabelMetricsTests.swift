import Foundation
import Testing
@testable import AxialEval

/// MultiLabelMetrics vs scikit-learn 1.9 (Tools/goldens/make_multilabel_metrics_goldens.py).
@Suite struct PsPGValidatorMetricsTests {
    struct Expected: Decodable {
        let macro_auc, micro_auc, map, macro_f1, micro_f1, mcc: Double
        let class_auc, class_ap: [Double?]
    }
    struct Case: Decodable { let labels: [[Int]]; let scores: [[Double]]; let expected: Expected }
    struct File: Decodable { let sklearn: String; let cases: [Case] }

    static let file = Result {
        try JSONDecoder().decode(File.self, from: Data(contentsOf: Bundle.module.resourceURL!.appendingPathComponent("Fixtures/multilabel_metrics.json")))
    }

    /// |a − b| ≤ 1e-12, false for any non-finite value or a missing one.
    func close(_ a: Double?, _ b: Double?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case let (x?, y?): return x.isFinite && y.isFinite && abs(x - y) <= 1e-12
        default: return false
        }
    }

    @Test func matchesScikitLearn() throws {
        let f = try Self.file.get()
        #expect(f.cases.count == 4)
        for (i, c) in f.cases.enumerated() {
            let m = MultiLabelMetrics.compute(labels: c.labels, scores: c.scores)
            let e = c.expected
            #expect(close(m.macroAUC, e.macro_auc), "case \(i) macro AUC \(String(describing: m.macroAUC)) vs \(e.macro_auc)")
            #expect(close(m.microAUC, e.micro_auc), "case \(i) micro AUC")
            #expect(close(m.meanAveragePrecision, e.map), "case \(i) mAP \(String(describing: m.meanAveragePrecision)) vs \(e.map)")
            #expect(close(m.macroF1, e.macro_f1), "case \(i) macro F1 \(m.macroF1) vs \(e.macro_f1)")
            #expect(close(m.microF1, e.micro_f1), "case \(i) micro F1 \(m.microF1) vs \(e.micro_f1)")
            #expect(close(m.mcc, e.mcc), "case \(i) MCC \(m.mcc) vs \(e.mcc)")
            #expect(m.classAUC.count == e.class_auc.count && zip(m.classAUC, e.class_auc).allSatisfy { close($0, $1) }, "case \(i) per-class AUC")
            #expect(m.classAP.count == e.class_ap.count && zip(m.classAP, e.class_ap).allSatisfy { close($0, $1) }, "case \(i) per-class AP")
        }
    }

    @Test func undefinedClassesAreLeftOut() {
        // Class 0 has no positive: no AUC, no AP; it still counts in F1 / MCC (as 0).
        let m = MultiLabelMetrics.compute(labels: [[0, 1], [0, 0], [-1, 1]], scores: [[0.9, 0.8], [0.1, 0.2], [0.5, 0.7]])
        #expect(m.classAUC[0] == nil && m.classAP[0] == nil)
        #expect(m.classAUC[1] == 1 && m.macroAUC == 1)
        #expect(m.mcc == 0.5)   // class 0: undefined → 0; class 1: perfect → 1
    }
}
