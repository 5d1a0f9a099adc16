import AxialStore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import AxialTestSupport
import Testing
@testable import AxialEval

func isWellFormedXML(_ url: URL) -> Bool {
    guard let parser = XMLParser(contentsOf: url) else { return false }
    return parser.parse()
}

@Suite struct StatisticsStageTests {
    /// The multi-label goldens split over three fold folders; pooled values equal sklearn's.
    @Test func crossvalFolderMatchesSklearn() throws {
        let g = Goldens.shared.multilabel
        let dir = try temporaryFolder("stats")
        defer { try? FileManager.default.removeItem(at: dir) }
        let preds = dir.appendingPathComponent("preds"), out = dir.appendingPathComponent("out")
        let classes = ["a", "b", "c", "d"]
        for f in 0..<3 {
            var rows: [[String]] = [["patient_id"] + classes + classes.map { "score_" + $0 }]
            for p in stride(from: f, to: g.labels.count, by: 3) {
                rows.append(["p\(p)"] + g.labels[p].map { $0 == -1 ? "" : "\($0)" } + g.scores[p].map { "\($0)" })
            }
            try CSVTable(header: rows[0], rows: Array(rows.dropFirst())).write(to: preds.appendingPathComponent("fold-\(f)/patient_preds.csv"))
        }
        let attention = CSVTable(header: ["patient_id", "slice_index", "z_mm", "window", "attention"],
                                 rows: (0..<6).flatMap { i in [["p0", "\(i)", "\(2.5 * Double(i))", "0", "\(Double(i) / 15)"],
                                                               ["p0", "\(i)", "\(2.5 * Double(i))", "1", "\(0.1)"]] })
        try attention.write(to: preds.appendingPathComponent("fold-0/slice_attention.csv"))

        let result = try StatisticsStage.run(preds: preds, out: out, options: StatisticsOptions(bootstrap: BootstrapOptions(resamples: 60, seed: 3)))
        #expect(result.task.kind == .multilabel && result.perFold.count == 3)

        let table = try CSVTable.read(out.appendingPathComponent("statistics.csv"))
        #expect(table.header == ["class", "n_pos", "n_neg", "auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high"])
        #expect(try table.column("class") == classes + ["macro", "micro"])
        let auc = try table.column("auroc").map { Double($0) }, ap = try table.column("auprc").map { Double($0) }
        for c in 0..<4 {
            #expect(close(auc[c], g.auroc[c]) && close(ap[c], g.average_precision[c]), "class \(c)")
            #expect(try table.column("n_pos")[c] == "\(g.labels.filter { $0[c] == 1 }.count)")
        }
        #expect(close(auc[4], g.macro_auroc) && close(auc[5], g.micro_auroc))
        #expect(close(ap[4], g.macro_average_precision) && close(ap[5], g.micro_average_precision))
        // CIs bracket the point estimate; the one-valued class has none.
        for r in [0, 1, 4, 5] {
            let row = table.rows[r]
            #expect(Double(row[4])! <= Double(row[3])! && Double(row[3])! <= Double(row[5])!)
        }
        #expect(table.rows[3][3] == "" && table.rows[3][4] == "")

        let perFold = try CSVTable.read(out.appendingPathComponent("statistics_per_fold.csv"))
        #expect(perFold.header == ["fold", "class", "n_pos", "n_neg", "auroc", "auprc", "f1"])
        let foldA = perFold.rows.filter { $0[1] == "a" && $0[0].hasPrefix("fold-") }.compactMap { Double($0[4]) }
        let meanA = perFold.rows.first { $0[0] == "mean" && $0[1] == "a" }.flatMap { Double($0[4]) }
        #expect(foldA.count == 3 && close(meanA, foldA.reduce(0, +) / 3))

        let thr = try CSVTable.read(out.appendingPathComponent("statistics_threshold.csv"))
        #expect(close(try thr.column("f1").prefix(4).map { Double($0)! }, g.f1))
        #expect(close(Double(thr.rows[5][8]), g.micro_f1))

        let md = try String(contentsOf: out.appendingPathComponent("statistics.md"), encoding: .utf8)
        #expect(md.contains("'d' had only one label value") && md.contains("percentile bootstrap"))
        for name in ["roc_a.svg", "pr_a.svg", "roc_c.svg", "attention/p0.svg"] {
            #expect(isWellFormedXML(out.appendingPathComponent(name)), "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("roc_d.svg").path))
    }

    /// A deploy-style single file, multi-class, task inferred from the columns.
    @Test func deployFileMultiClass() throws {
        let g = Goldens.shared.multiclass
        let dir = try temporaryFolder("stats-mc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = ["I", "II", "III", "IV"]
        let rows = g.class_index.indices.map { p in ["s\(p)", g.class_index[p] < 0 ? "" : names[g.class_index[p]]] + g.scores[p].map { "\($0)" } }
        try CSVTable(header: ["patient_id", "stage"] + names.map { "score_" + $0 }, rows: rows).write(to: dir.appendingPathComponent("patient_preds.csv"))
        let result = try StatisticsStage.run(preds: dir, out: dir.appendingPathComponent("out"), options: StatisticsOptions(bootstrap: BootstrapOptions(resamples: 20)))
        #expect(result.task.kind == .multiclass)
        #expect(close(result.pooled.auroc.map { $0! }, g.auroc))
        #expect(close(result.pooled.macroAUROC, g.macro_auroc) && close(result.pooled.microAUROC, g.micro_auroc))
        #expect(close(result.thresholdMetrics.map(\.f1), g.argmax_f1))
        let table = try CSVTable.read(dir.appendingPathComponent("out/statistics.csv"))
        #expect(close(Double(table.rows[4][3]), g.macro_auroc))
    }

    @Test func badPredictionsNameTheFileAndLine() throws {
        let dir = try temporaryFolder("stats-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "patient_id,x,score_x\np1,1,0.4\np2,0,abc\n".write(to: dir.appendingPathComponent("patient_preds.csv"), atomically: true, encoding: .utf8)
        #expect { try StatisticsStage.run(preds: dir, out: dir) } throws: { "\($0)".contains("patient_preds.csv:3") && "\($0)".contains("abc") }
        #expect { try StatisticsStage.run(preds: dir.appendingPathComponent("nope"), out: dir) } throws: { "\($0)".contains("no such file") }
    }

    @Test func svgPlotTicksAndEscaping() {
        #expect(SVGPlot.niceTicks(0...1) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map { $0 } || SVGPlot.niceTicks(0...1).count == 6)
        #expect(SVGPlot.niceTicks(0...37).count >= 4)
        var p = SVGPlot(title: "a < b & c", xLabel: "x", yLabel: "y")
        p.add(x: [0, 1, 2], y: [1, 3, 2], label: "loss")
        p.markers = [(1, "key slice")]
        let svg = p.svg
        #expect(svg.contains("a &lt; b &amp; c") && svg.contains("<polyline") && svg.contains("key slice"))
        #expect(XMLParser(data: Data(svg.utf8)).parse())
    }
}
