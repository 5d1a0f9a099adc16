@testable import AxialEval
import AxialImaging
import AxialStore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// Collects the elements of a well-formed page.
final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text: [String: String] = [:]
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append((name, attributes))
    }
}

@Suite(.serialized) struct ReportTests {
    /// TPR between ROC points is linear, the top of a vertical segment at its FPR; calibration bins
    /// average score and label per equal-width bin; Youden picks the first maximum of TPR − FPR.
    @Test func curveHelpers() {
        let roc = ROCCurve(fpr: [0, 0, 0.5, 0.5, 1], tpr: [0, 0.5, 0.5, 1, 1], thresholds: [.infinity, 0.9, 0.6, 0.4, 0.1])
        #expect(Report.tpr(at: 0, roc) == 0.5 && Report.tpr(at: 0.25, roc) == 0.5 && Report.tpr(at: 0.5, roc) == 1 && Report.tpr(at: 0.75, roc) == 1)
        let y = Report.youden(roc)
        #expect(y.threshold == 0.9 && y.j == 0.5)  // 0.9 and 0.4 both give J = 0.5: the higher threshold
        let bins = Report.calibration(labels: [false, true, true, false, true], scores: [0.05, 0.15, 0.55, 0.58, 0.95], bins: 5)
        #expect(bins.count == 3)
        #expect(bins[0].count == 2 && abs(bins[0].score - 0.1) < 1e-12 && bins[0].observed == 0.5)
        #expect(bins[1].count == 2 && abs(bins[1].score - 0.565) < 1e-12 && bins[1].observed == 0.5)
        #expect(bins[2].count == 1 && bins[2].score == 0.95 && bins[2].observed == 1)
        // The band holds every resample's curve between its percentiles: a perfectly separated
        // sample gives TPR 1 everywhere above FPR 0.
        let band = Report.rocBand(labels: [true, true, false, false], scores: [0.9, 0.8, 0.2, 0.1], resamples: 50, seed: 1)
        #expect(band.fpr.count == 101 && band.low.dropFirst().allSatisfy { $0 == 1 } && band.high.allSatisfy { $0 == 1 })
    }

    /// A deploy folder without labels: no ROC (said so), cards with scores, no crash.
    @Test func reportOfAnUnlabelledDeploy() throws {
        let dir = temporaryFolder("report-deploy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cv = dir.appendingPathComponent("cv")
        _ = try FeatureInteropTests.run(features: FeatureInteropTests.fixtures.appendingPathComponent("clam"),
                                        table: FeatureInteropTests.fixtures.appendingPathComponent("labels.csv"), out: cv, logs: LockedLines())
        var d = DeployOptions(models: [cv], features: FeatureInteropTests.fixtures.appendingPathComponent("stamp"), out: dir.appendingPathComponent("deploy"))
        d.log = { _ in }
        try Deploy.run(d)
        var o = ReportOptions(run: d.out, out: dir.appendingPathComponent("r.html"))
        o.bootstrap = 20
        let s = try Report.run(o)
        let html = try String(contentsOf: o.out, encoding: .utf8)
        #expect(s.patients == 10 && s.thresholds == [nil] && s.thumbnails == 0)
        #expect(html.contains("AUROC undefined: 0 positive and 0 negative patient(s) with known labels."))
        #expect(html.components(separatedBy: "<div class=\"card\"").count == 11)
        #expect(XMLParser(data: Data(html.utf8)).parse())
    }

    /// A tiny real run (2-fold crossval on the CLEAR-layout fixtures), a synthetic ingest folder
    /// with the same patients and slices, a lesion table; the page must parse as XML, hold one card
    /// per patient whose scores are those of patient_preds.csv, the pooled AUROC, the Youden
    /// threshold and its confusion counts (recomputed here), 3 thumbnails per patient, the boxes of
    /// the lesion table, and nothing fetched from the network.
    @Test func reportOfATinyRun() throws {
        let dir = temporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cv")
        _ = try FeatureInteropTests.run(features: FeatureInteropTests.fixtures.appendingPathComponent("clear"),
                                        table: FeatureInteropTests.fixtures.appendingPathComponent("labels.csv"), out: out, logs: LockedLines())
        let ids = (0..<10).map { "P\(String(format: "%02d", $0))" }
        let ingest = dir.appendingPathComponent("ingest")
        try syntheticIngest(ingest, patients: ids, slices: 6, windows: [FeatureStore.unnamedWindow])
        let lesions = dir.appendingPathComponent("lesions.csv")
        // A box on every slice 1 (the informative row of the positives), in the 20×16 PNG's pixels.
        try ("patient_id,slice_index,x1,y1,x2,y2\n" + ids.map { "\($0),1,2,3,12,10" }.joined(separator: "\n") + "\n")
            .write(to: lesions, atomically: true, encoding: .utf8)

        // crossval wrote the key slices and intervals the report reads.
        for fold in ["fold-0", "fold-1"] {
            let ks = try CSVTable.read(out.appendingPathComponent("\(fold)/attention_keyslices.csv"))
            #expect(ks.header == ["patient_id", "rank", "slice_index", "z_mm", "attention"])
            let sa = try CSVTable.read(out.appendingPathComponent("\(fold)/slice_attention.csv"))
            for id in Set(sa.rows.map { $0[0] }) {
                let rows: [[String]] = sa.rows.filter { $0[0] == id }
                var mine: [(slice: Int, attention: Double)] = rows.map { (slice: Int($0[1])!, attention: Double($0[4])!) }
                mine.sort { (a: (slice: Int, attention: Double), b: (slice: Int, attention: Double)) -> Bool in
                    a.attention != b.attention ? a.attention > b.attention : a.slice < b.slice
                }
                let theirs: [[String]] = ks.rows.filter { $0[0] == id }
                let ranks: [String] = (1...min(5, mine.count)).map { String($0) }
                #expect(theirs.map { $0[1] } == ranks)
                let top: [Int] = mine.prefix(5).map { $0.slice }
                #expect(theirs.map { Int($0[2])! } == top)
            }
            let ci = try CSVTable.read(out.appendingPathComponent("\(fold)/prediction_ci.csv"))
            #expect(ci.rows.count == 5)
            for r in ci.rows {
                let lo = Double(r[3])!, hi = Double(r[4])!
                #expect(lo <= hi && lo >= 0 && hi <= 1 && r[5] == "50", "\(r)")
            }
        }

        var o = ReportOptions(run: out, out: dir.appendingPathComponent("report.html"))
        o.ingest = ingest; o.lesions = lesions; o.bootstrap = 100; o.features = FeatureInteropTests.fixtures.appendingPathComponent("clear")
        let s = try Report.run(o)
        #expect(s.patients == 10 && s.thumbnails == 30)
        let html = try String(contentsOf: o.out, encoding: .utf8)

        // Well-formed, self-contained.
        let collector = ElementCollector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "") line \(parser.lineNumber)")
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("src=\""))
        let images = collector.elements.filter { $0.name == "image" }
        #expect(images.count == 30 && images.allSatisfy { $0.attributes["href"]?.hasPrefix("data:image/png;base64,") == true })
        // Each thumbnail decodes as a PNG of the ingest slice (20×16 fits in 128 px: unchanged).
        if let href = images.first?.attributes["href"], let data = Data(base64Encoded: String(href.dropFirst("data:image/png;base64,".count))) {
            let file = dir.appendingPathComponent("thumb.png")
            try data.write(to: file)
            let im = try PNG.read(file)
            #expect(im.width == 20 && im.height == 16)
        }

        // Cards carry the scores of patient_preds.csv.
        let preds = try Predictions.load(out)
        let cards = collector.elements.filter { $0.attributes["class"] == "card" }
        #expect(cards.map { $0.attributes["data-id"]! } == ids)
        for (i, id) in preds.pooled.patientIDs.enumerated() {
            let score = preds.pooled.scores[i][0]
            #expect(html.contains("<div class=\"card\" data-id=\"\(id)\" data-score=\"\(String(format: "%.8g", score))\""))
            #expect(html.contains("<td class=\"score\">\(String(format: "%.4f", score))</td>"))
        }

        // Pooled AUROC and the Youden threshold with its confusion counts, recomputed.
        let col = preds.pooled.column(0)
        let auc = Metrics.auroc(labels: col.labels, scores: col.scores)!
        #expect(html.contains("ROC · AUROC \(String(format: "%.3f", auc)) (95% CI "))
        var best = (t: 0.0, j: -1.0)
        for t in Set(col.scores).sorted(by: >) {
            let tp = zip(col.labels, col.scores).filter { $0 == 1 && $1 >= t }.count, fp = zip(col.labels, col.scores).filter { $0 == 0 && $1 >= t }.count
            let j = Double(tp) / Double(col.labels.filter { $0 == 1 }.count) - Double(fp) / Double(col.labels.filter { $0 == 0 }.count)
            if j > best.j { best = (t, j) }
        }
        #expect(s.thresholds.count == 1 && s.thresholds[0] == best.t)
        let m = Metrics.thresholdMetrics(labels: col.labels, scores: col.scores, threshold: best.t)
        #expect(html.contains("Confusion at threshold \(String(format: "%.4f", best.t)) (Youden J \(String(format: "%.3f", best.j)))"))
        #expect(html.contains("<td class=\"tp\">\(m.truePositives)</td><td class=\"fn\">\(m.falseNegatives)</td>"))
        #expect(html.contains("<td class=\"fp\">\(m.falsePositives)</td><td class=\"tn\">\(m.trueNegatives)</td>"))
        // Per-fold rows and the per-patient tags agree with the counts.
        #expect(html.contains("<tr><td>fold-0</td><td>5</td>") && html.contains("<tr><td>fold-1</td><td>5</td>"))
        let tags = ["TP", "FP", "TN", "FN"].map { t in html.components(separatedBy: "<td class=\"tag \(t)\">\(t)</td>").count - 1 }
        #expect(tags == [m.truePositives, m.falsePositives, m.trueNegatives, m.falseNegatives])

        // Lesion boxes drawn on exactly the slice-1 thumbnails.
        let keyRows = try ["fold-0", "fold-1"].flatMap { try CSVTable.read(out.appendingPathComponent("\($0)/attention_keyslices.csv")).rows }
        let slice1 = keyRows.filter { Int($0[1])! <= 3 && $0[2] == "1" }.count
        #expect(s.boxes == slice1 && collector.elements.filter { $0.attributes["class"] == "lesion" }.count == slice1)
        #expect(html.contains("<rect class=\"lesion\" x=\"2.0\" y=\"3.0\" width=\"10.0\" height=\"7.0\"/>") == (slice1 > 0))
    }
}
