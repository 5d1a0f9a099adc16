import AxialCore
import AxialEval
import AxialImaging
import AxialStore
import Foundation

/// Options of `axial report`.
public struct ReportOptions: Sendable {
    /// A crossval folder (fold-*/patient_preds.csv …) or a deploy folder (patient_preds.csv …).
    public var run: URL
    /// The feature folder the run used (optional): encoder provenance and layout per patient.
    public var features: URL? = nil
    /// The ingest output (optional): `manifest.csv` + PNG slices for the key-slice thumbnails.
    public var ingest: URL? = nil
    /// A lesion table (DeepLesion or Axial format, optional): boxes drawn on the thumbnails.
    public var lesions: URL? = nil
    public var out: URL
    /// Thumbnails per patient (the top-k attended slices).
    public var topK = 3
    /// Bootstrap resamples for the ROC band and the AUROC / AP intervals.
    public var bootstrap = 500
    public var seed: UInt64 = 0
    /// Longest side of a thumbnail in pixels.
    public var thumbnailSize = 128
    public var log: @Sendable (String) -> Void = { print($0) }
    public init(run: URL, out: URL) { self.run = run; self.out = out }
}

/// What `Report.run` put into the page (for the command line and tests).
public struct ReportSummary: Sendable {
    public var patients: Int
    public var thumbnails: Int
    public var boxes: Int
    /// Per class: the Youden threshold on the pooled out-of-fold scores (nil when undefined).
    public var thresholds: [Double?]
    public var bytes: Int
}

/// `axial report`: one self-contained static HTML page of a crossval or deploy run — no network,
/// inline CSS / SVG / a few lines of JS, thumbnails as base64 PNG.
///
/// Cohort view per class: ROC of the pooled out-of-fold scores with a 95% bootstrap band
/// (patients resampled, TPR percentiles at 101 FPR points), PR curve, calibration plot (equal-width
/// bins), confusion matrix at the Youden threshold (max TPR − FPR on the pooled out-of-fold
/// scores), per-fold table (AUROC, AP, best epoch and its validation AUROC from training.csv).
/// One card per patient: scores with the instance-bootstrap interval (`prediction_ci.csv`),
/// attention over z, the top-k attended slices as thumbnails of the ingest PNGs (already windowed;
/// the window with the most attention at that slice), lesion boxes from the lesion table.
public enum Report {
    struct SliceRow { var slice: Int; var z: Float; var window: String; var attention: Double }

    public static func run(_ o: ReportOptions) throws -> ReportSummary {
        guard o.topK >= 0, o.bootstrap >= 0, o.thumbnailSize >= 8 else {
            throw MILError.options("report: --top-k and --bootstrap must be ≥ 0 (got \(o.topK), \(o.bootstrap)), thumbnails ≥ 8 px")
        }
        let preds = try Predictions.load(o.run)
        let task = preds.task
        let folderOf = Dictionary(uniqueKeysWithValues: zip(preds.parts.map(\.name), preds.folders))

        // Per-patient details from each folder.
        var attention: [String: [SliceRow]] = [:]
        var interval: [String: [String: (Double, Double)]] = [:]
        var keySlices: [String: [(slice: Int, z: Float, attention: Double)]] = [:]
        var foldOf: [String: String] = [:]
        var training: [String: (epochs: Int, best: Int, validAUROC: Double?)] = [:]
        for (name, data) in preds.parts {
            for id in data.patientIDs { foldOf[id] = name }
            let folder = folderOf[name]!
            let sa = folder.appendingPathComponent("slice_attention.csv")
            if FileManager.default.fileExists(atPath: sa.path) {
                let t = try CSVTable.read(sa)
                let c = try ["patient_id", "slice_index", "z_mm", "window", "attention"].map { try t.columnIndex($0, path: sa.path) }
                for (i, r) in t.rows.enumerated() {
                    guard let s = Int(r[c[1]]), let a = Double(r[c[4]]) else {
                        throw EvalError.predictions(path: sa.path, line: i + 2, reason: "slice_index '\(r[c[1]])' / attention '\(r[c[4]])' are not numbers")
                    }
                    attention[r[c[0]], default: []].append(SliceRow(slice: s, z: Float(r[c[2]]) ?? .nan, window: r[c[3]], attention: a))
                }
            }
            let ci = folder.appendingPathComponent("prediction_ci.csv")
            if FileManager.default.fileExists(atPath: ci.path) {
                let t = try CSVTable.read(ci)
                let c = try ["patient_id", "class", "ci_low", "ci_high"].map { try t.columnIndex($0, path: ci.path) }
                for r in t.rows { if let lo = Double(r[c[2]]), let hi = Double(r[c[3]]) { interval[r[c[0]], default: [:]][r[c[1]]] = (lo, hi) } }
            }
            let ks = folder.appendingPathComponent("attention_keyslices.csv")
            if FileManager.default.fileExists(atPath: ks.path) {
                let t = try CSVTable.read(ks)
                let c = try ["patient_id", "rank", "slice_index", "z_mm", "attention"].map { try t.columnIndex($0, path: ks.path) }
                for r in t.rows.sorted(by: { (Int($0[c[1]]) ?? 0) < (Int($1[c[1]]) ?? 0) }) {
                    if let s = Int(r[c[2]]), let a = Double(r[c[4]]) { keySlices[r[c[0]], default: []].append((s, Float(r[c[3]]) ?? .nan, a)) }
                }
            }
            let tr = folder.appendingPathComponent("training.csv")
            if FileManager.default.fileExists(atPath: tr.path) {
                let t = try CSVTable.read(tr)
                if let ce = t.header.firstIndex(of: "epoch"), let cb = t.header.firstIndex(of: "best"), let ca = t.header.firstIndex(of: "valid_macro_auroc") {
                    let best = t.rows.first { $0[cb] == "1" }
                    training[name] = (t.rows.count, best.flatMap { Int($0[ce]) } ?? 0, best.flatMap { Double($0[ca]) })
                }
            }
        }
        // Key slices computed from the attention when the run predates attention_keyslices.csv.
        for (id, rows) in attention where keySlices[id] == nil {
            var by: [Int: (Float, Double)] = [:]
            for r in rows { by[r.slice, default: (r.z, 0)].1 += r.attention }
            keySlices[id] = by.map { ($0.key, $0.value.0, $0.value.1) }
                .sorted { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 < $1.0 }.prefix(PredictionDetails.keySliceCount).map { $0 }
        }

        // Thumbnails: ingest manifest (patient, slice, window) → PNG; lesion boxes.
        var pngOf: [String: URL] = [:]
        var seriesFolderOf: [String: URL] = [:]
        if let ingest = o.ingest {
            let m = ingest.appendingPathComponent("manifest.csv")
            let t = try CSVTable.read(m)
            let c = try ["patient_id", "slice_index", "window", "path"].map { try t.columnIndex($0, path: m.path) }
            for r in t.rows {
                let url = ingest.appendingPathComponent(r[c[3]])
                pngOf["\(r[c[0]])|\(r[c[1]])|\(r[c[2]])"] = url
                if pngOf["\(r[c[0]])|\(r[c[1]])|"] == nil { pngOf["\(r[c[0]])|\(r[c[1]])|"] = url }
                seriesFolderOf[r[c[0]]] = url.deletingLastPathComponent()
            }
        }
        let lesions = try o.lesions.map(LesionTable.read)

        // Feature provenance.
        var provenance: [String: String] = [:]
        if let f = o.features {
            let present = preds.pooled.patientIDs.map { f.appendingPathComponent(FeatureStore.fileName(patientID: $0)) }
                .filter { FileManager.default.fileExists(atPath: $0.path) }
            // Through the HDF5 probe child first: a damaged file gets no provenance line, not a crash.
            let probed = try FeatureProbe.check(present)
            for id in preds.pooled.patientIDs {
                let url = f.appendingPathComponent(FeatureStore.fileName(patientID: id))
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                if let why = probed[url.path] { provenance[id] = "unreadable feature file: \(why)"; continue }
                if let p = FeatureStore.readProvenance(url) { provenance[id] = "\(p.encoder), weights sha256 \(p.encoderSHA256.prefix(12))…" }
                else if let l = try? FeatureStore.layout(of: url) { provenance[id] = "\(l.displayName) layout (\(l.contents))" }
            }
        }

        // Cohort view.
        var html = HTML()
        let title = "Axial report — \(task.name)"
        html.head(title: title)
        html.raw("<h1>\(esc(title))</h1>\n")
        let files = preds.parts.count
        html.raw("<p class=\"meta\">Run <code>\(esc(o.run.path))</code> · \(esc(task.kind.rawValue)) task, \(task.classes.count) class(es) · \(preds.pooled.count) patients in \(files) prediction file(s) (\(esc(preds.parts.map(\.name).joined(separator: ", ")))) · generated \(esc(FeatureStoreMetadata.now()))</p>\n")
        if !provenance.isEmpty {
            let kinds = Set(provenance.values).sorted()
            html.raw("<p class=\"meta\">Features: \(esc(kinds.prefix(3).joined(separator: "; ")))\(kinds.count > 3 ? " …" : "")</p>\n")
        }
        let boot = BootstrapOptions(resamples: o.bootstrap, seed: o.seed)
        let ci = o.bootstrap > 0 ? Bootstrap.summarize(preds.pooled, options: boot) : nil
        let pooled = Metrics.summarize(preds.pooled)
        var thresholds: [Double?] = []
        html.raw("<section id=\"cohort\"><h2>Cohort (pooled out-of-fold predictions)</h2>\n")
        for (c, cls) in task.classes.enumerated() {
            let col = preds.pooled.column(c)
            let k = Metrics.known(labels: col.labels, scores: col.scores)
            html.raw("<div class=\"cls\" data-class=\"\(esc(cls.name))\"><h3>\(esc(cls.name))</h3>\n<div class=\"row\">\n")
            guard let roc = Metrics.rocCurve(labels: k.labels, scores: k.scores, dropIntermediate: false), let auc = pooled.auroc[c] else {
                html.raw("<p>AUROC undefined: \(k.labels.filter { $0 }.count) positive and \(k.labels.filter { !$0 }.count) negative patient(s) with known labels.</p></div></div>\n")
                thresholds.append(nil); continue
            }
            // ROC with band.
            let band = o.bootstrap > 0 ? rocBand(labels: k.labels, scores: k.scores, resamples: o.bootstrap, seed: o.seed) : nil
            let aucCI = ci?.auroc[c]
            html.raw(Charts.roc(roc, band: band, label: "AUROC " + f3(auc) + (aucCI.map { " (95% CI \(f3($0.low))–\(f3($0.high)))" } ?? "")))
            // PR.
            if let pr = Metrics.precisionRecallCurve(labels: k.labels, scores: k.scores), let ap = pooled.averagePrecision[c] {
                let prevalence = Double(k.labels.filter { $0 }.count) / Double(k.labels.count)
                html.raw(Charts.pr(pr, prevalence: prevalence, label: "AP " + f3(ap) + (ci?.averagePrecision[c].map { " (95% CI \(f3($0.low))–\(f3($0.high)))" } ?? "")))
            }
            // Calibration.
            let bins = calibration(labels: k.labels, scores: k.scores, bins: k.labels.count >= 100 ? 10 : 5)
            let brier = zip(k.labels, k.scores).map { ($1 - ($0 ? 1 : 0)) * ($1 - ($0 ? 1 : 0)) }.reduce(0, +) / Double(k.labels.count)
            html.raw(Charts.calibration(bins, label: "Brier " + f3(brier)))
            // Confusion at Youden.
            let y = youden(roc)
            thresholds.append(y.threshold)
            let m = Metrics.thresholdMetrics(labels: col.labels, scores: col.scores, threshold: y.threshold)
            html.raw(confusion(m, threshold: y.threshold, j: y.j))
            html.raw("</div></div>\n")
        }
        // Per-fold table.
        html.raw("<h3>Per fold</h3>\n<table class=\"folds\"><thead><tr><th>fold</th><th>test patients</th>")
        for cls in task.classes { html.raw("<th>\(esc(cls.name)) n+ / n−</th><th>\(esc(cls.name)) AUROC</th><th>\(esc(cls.name)) AP</th>") }
        html.raw("<th>epochs</th><th>best epoch</th><th>validation AUROC at best</th></tr></thead><tbody>\n")
        for (name, data) in preds.parts {
            let m = Metrics.summarize(data)
            html.raw("<tr><td>\(esc(name))</td><td>\(data.count)</td>")
            for c in task.classes.indices {
                html.raw("<td>\(data.positives(c)) / \(data.negatives(c))</td><td>\(m.auroc[c].map(f3) ?? "n/a")</td><td>\(m.averagePrecision[c].map(f3) ?? "n/a")</td>")
            }
            let t = training[name]
            html.raw("<td>\(t.map { "\($0.epochs)" } ?? "")</td><td>\(t.map { "\($0.best)" } ?? "")</td><td>\(t?.validAUROC.map(f3) ?? "")</td></tr>\n")
        }
        html.raw("<tr class=\"pooled\"><td>pooled</td><td>\(preds.pooled.count)</td>")
        for c in task.classes.indices {
            html.raw("<td>\(preds.pooled.positives(c)) / \(preds.pooled.negatives(c))</td><td>\(pooled.auroc[c].map(f3) ?? "n/a")</td><td>\(pooled.averagePrecision[c].map(f3) ?? "n/a")</td>")
        }
        html.raw("<td></td><td></td><td></td></tr>\n</tbody></table>\n")
        html.raw("<p class=\"note\">Threshold for the confusion matrices and the patient tags: Youden's J (max TPR − FPR) on the pooled out-of-fold scores of each class — chosen on the same predictions it is shown on, so the counts are optimistic. ROC band: 95% percentile band of TPR at 101 FPR points over \(o.bootstrap) patient bootstrap resamples (seed \(o.seed)); AUROC / AP CIs: percentile bootstrap over patients. Calibration: equal-width bins of the score, observed fraction of positives per bin (bin size in the tooltip). Patient score intervals: instance bootstrap (the bag's slices resampled with replacement, \(PredictionDetails.resamples)×) — how much a score hangs on which slices are in the bag.</p>\n</section>\n")

        // Patient cards.
        html.raw("<section id=\"patients\"><h2>Patients</h2>\n<div class=\"controls\"><label>Filter <input id=\"filter\" type=\"search\" placeholder=\"patient id\"/></label> <label>Sort <select id=\"sort\"><option value=\"id\">patient id</option><option value=\"score\">score (first class), high first</option><option value=\"fold\">fold</option></select></label> <span id=\"shown\"></span></div>\n<div id=\"cards\">\n")
        var thumbs = 0, boxes = 0
        let order = preds.pooled.patientIDs.indices.sorted { preds.pooled.patientIDs[$0] < preds.pooled.patientIDs[$1] }
        for p in order {
            let id = preds.pooled.patientIDs[p]
            let labels = preds.pooled.labels[p], scores = preds.pooled.scores[p]
            html.raw("<div class=\"card\" data-id=\"\(esc(id))\" data-score=\"\(String(format: "%.8g", scores.first ?? 0))\" data-fold=\"\(esc(foldOf[id] ?? ""))\">\n<h4>\(esc(id)) <span class=\"fold\">\(esc(foldOf[id] ?? ""))</span></h4>\n<table class=\"scores\"><tr><th>class</th><th>label</th><th>score</th><th>95% interval</th><th>at threshold</th></tr>\n")
            for (c, cls) in task.classes.enumerated() {
                let label = labels[c] == 1 ? "1" : labels[c] == 0 ? "0" : "?"
                let iv = interval[id]?[cls.name]
                var tag = ""
                if let t = thresholds[c], labels[c] >= 0 {
                    let predicted = scores[c] >= t
                    tag = predicted ? (labels[c] == 1 ? "TP" : "FP") : (labels[c] == 1 ? "FN" : "TN")
                }
                html.raw("<tr><td>\(esc(cls.name))</td><td>\(label)</td><td class=\"score\">\(String(format: "%.4f", scores[c]))</td><td>\(iv.map { String(format: "%.4f–%.4f", $0.0, $0.1) } ?? "n/a")</td><td class=\"tag \(tag)\">\(tag)</td></tr>\n")
            }
            html.raw("</table>\n")
            if let prov = provenance[id] { html.raw("<p class=\"meta\">\(esc(prov))</p>\n") }
            let rows = attention[id] ?? []
            let keys = keySlices[id] ?? []
            if !rows.isEmpty { html.raw(Charts.attention(rows, keys: keys.map(\.slice))) }
            if !keys.isEmpty {
                html.raw("<div class=\"thumbs\">\n")
                for (rank, k) in keys.prefix(o.topK).enumerated() {
                    // The window with the most attention at this slice.
                    let window = rows.filter { $0.slice == k.slice }.max { $0.attention < $1.attention }?.window ?? ""
                    let caption = "#\(rank + 1) slice \(k.slice)" + (k.z.isFinite ? String(format: ", z %.1f mm", k.z) : "") + String(format: ", attention %.3f", k.attention) + (window.isEmpty ? "" : ", \(window)")
                    guard let url = pngOf["\(id)|\(k.slice)|\(window)"] ?? pngOf["\(id)|\(k.slice)|"] else {
                        html.raw("<figure class=\"thumb none\"><figcaption>\(esc(caption))</figcaption></figure>\n"); continue
                    }
                    var found: [LesionBox] = lesions?.boxes(patientID: id, sliceIndex: k.slice) ?? []
                    if found.isEmpty, let l = lesions { found = l.boxes(forPath: url.path) }
                    let reference = try seriesFolderOf[id].flatMap { try SeriesInfoFile.readIfPresent($0.appendingPathComponent(SeriesInfoFile.name)) }
                    let (svg, drawn) = try thumbnail(url, boxes: found, volumeSize: reference.map { ($0.shape[2], $0.shape[1]) }, size: o.thumbnailSize, title: caption)
                    thumbs += 1; boxes += drawn
                    html.raw("<figure class=\"thumb\">\(svg)<figcaption>\(esc(caption))\(drawn > 0 ? " · \(drawn) lesion box(es)" : "")</figcaption></figure>\n")
                }
                html.raw("</div>\n")
            }
            html.raw("</div>\n")
        }
        html.raw("</div></section>\n")
        html.finish()
        let data = Data(html.text.utf8)
        do { try AtomicFile.write(data, to: o.out) } catch let e as FileError { throw EvalError.io(path: o.out.path, reason: e.description) }
        return ReportSummary(patients: preds.pooled.count, thumbnails: thumbs, boxes: boxes, thresholds: thresholds, bytes: data.count)
    }

    // MARK: Numbers

    /// Youden's J = max(TPR − FPR) over the ROC's thresholds (the first maximum, i.e. the highest
    /// threshold); an infinite first threshold (sklearn's extra point) is never chosen.
    public static func youden(_ roc: ROCCurve) -> (threshold: Double, j: Double) {
        var best = (threshold: 0.5, j: -Double.infinity)
        for i in roc.thresholds.indices where roc.thresholds[i].isFinite {
            let j = roc.tpr[i] - roc.fpr[i]
            if j > best.j { best = (roc.thresholds[i], j) }
        }
        return best
    }

    /// TPR of a ROC curve at `x` (linear between points; the highest TPR at a vertical segment).
    static func tpr(at x: Double, _ r: ROCCurve) -> Double {
        var i = 0
        while i + 1 < r.fpr.count && r.fpr[i + 1] <= x { i += 1 }
        guard i + 1 < r.fpr.count, r.fpr[i + 1] > r.fpr[i] else { return r.tpr[i] }
        return r.tpr[i] + (r.tpr[i + 1] - r.tpr[i]) * (x - r.fpr[i]) / (r.fpr[i + 1] - r.fpr[i])
    }

    /// 2.5 / 97.5 percentiles of TPR at 101 FPR points over patient bootstrap resamples (resamples
    /// with one class only are skipped).
    public static func rocBand(labels: [Bool], scores: [Double], resamples: Int, seed: UInt64) -> (fpr: [Double], low: [Double], high: [Double]) {
        let grid = (0...100).map { Double($0) / 100 }
        var curves: [[Double]] = []
        var g = SplitMix64(seed: combineSeeds(seed, 0x524F_4342))
        let n = labels.count
        for _ in 0..<resamples {
            let idx = (0..<n).map { _ in Int(g.next() % UInt64(n)) }
            let l = idx.map { labels[$0] }, s = idx.map { scores[$0] }
            guard l.contains(true), l.contains(false), let r = Metrics.rocCurve(labels: l, scores: s, dropIntermediate: false) else { continue }
            curves.append(grid.map { tpr(at: $0, r) })
        }
        guard !curves.isEmpty else { return (grid, [], []) }
        let low = grid.indices.map { i in Bootstrap.percentile(curves.map { $0[i] }, 2.5) }
        let high = grid.indices.map { i in Bootstrap.percentile(curves.map { $0[i] }, 97.5) }
        return (grid, low, high)
    }

    /// Equal-width bins of [0, 1]: (mean score, fraction positive, count) of the non-empty bins.
    public static func calibration(labels: [Bool], scores: [Double], bins: Int) -> [(score: Double, observed: Double, count: Int)] {
        var sum = [Double](repeating: 0, count: bins), pos = [Int](repeating: 0, count: bins), count = [Int](repeating: 0, count: bins)
        for (l, s) in zip(labels, scores) {
            let b = min(bins - 1, max(0, Int(s * Double(bins))))
            sum[b] += s; count[b] += 1; if l { pos[b] += 1 }
        }
        return (0..<bins).filter { count[$0] > 0 }.map { (sum[$0] / Double(count[$0]), Double(pos[$0]) / Double(count[$0]), count[$0]) }
    }

    static func confusion(_ m: ThresholdMetrics, threshold: Double, j: Double) -> String {
        """
        <div class="chart confusion"><table class="cm"><caption>Confusion at threshold \(String(format: "%.4f", threshold)) (Youden J \(f3(j)))</caption>
        <tr><td></td><th>predicted +</th><th>predicted −</th></tr>
        <tr><th>true +</th><td class="tp">\(m.truePositives)</td><td class="fn">\(m.falseNegatives)</td></tr>
        <tr><th>true −</th><td class="fp">\(m.falsePositives)</td><td class="tn">\(m.trueNegatives)</td></tr>
        </table><p>sensitivity \(f3(m.recall)) · specificity \(f3(m.specificity)) · precision \(f3(m.precision)) · accuracy \(f3(m.accuracy))</p></div>

        """
    }

    // MARK: Thumbnails

    /// An inline SVG: the PNG downscaled (box filter) to at most `size` pixels, base64, with the
    /// lesion boxes as rectangles. Boxes without a reference size are taken in the volume's pixel
    /// grid (`volumeSize`, from series.json) when known, else in the PNG's.
    static func thumbnail(_ url: URL, boxes: [LesionBox], volumeSize: (Int, Int)?, size: Int, title: String) throws -> (String, Int) {
        let image: Image8
        do { image = try PNG.read(url) } catch { throw EvalError.io(path: url.path, reason: "cannot read the slice PNG: \(error)") }
        let scale = min(1, Double(size) / Double(max(image.width, image.height)))
        let w = max(1, Int((Double(image.width) * scale).rounded())), h = max(1, Int((Double(image.height) * scale).rounded()))
        let small = downscale(image, width: w, height: h)
        let png = try PNG.encode(small)
        var svg = "<svg class=\"slice\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\"><title>\(esc(title))</title>"
        svg += "<image width=\"\(w)\" height=\"\(h)\" href=\"data:image/png;base64,\(Data(png).base64EncodedString())\"/>"
        var drawn = 0
        for box in boxes {
            let b: LesionBox
            if box.referenceWidth != nil { b = box.scaled(toWidth: w, height: h) } else {
                let (rw, rh) = volumeSize ?? (image.width, image.height)
                b = LesionBox(x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2, referenceWidth: rw, referenceHeight: rh).scaled(toWidth: w, height: h)
            }
            svg += String(format: "<rect class=\"lesion\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1)
            drawn += 1
        }
        return (svg + "</svg>", drawn)
    }

    /// Box-filter downscale (area average) of an 8-bit image.
    static func downscale(_ im: Image8, width w: Int, height h: Int) -> Image8 {
        if w == im.width && h == im.height { return im }
        let ch = im.channels
        var out = [UInt8](repeating: 0, count: w * h * ch)
        for y in 0..<h {
            let y0 = y * im.height / h, y1 = max(y0 + 1, (y + 1) * im.height / h)
            for x in 0..<w {
                let x0 = x * im.width / w, x1 = max(x0 + 1, (x + 1) * im.width / w)
                for c in 0..<ch {
                    var s = 0
                    for yy in y0..<y1 { for xx in x0..<x1 { s += Int(im.pixels[(yy * im.width + xx) * ch + c]) } }
                    out[(y * w + x) * ch + c] = UInt8((s + (y1 - y0) * (x1 - x0) / 2) / ((y1 - y0) * (x1 - x0)))
                }
            }
        }
        return Image8(width: w, height: h, channels: ch, pixels: out)
    }
}

func f3(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "n/a" }

/// Escapes text for HTML / XML content and attribute values.
func esc(_ s: String) -> String {
    var o = ""
    o.reserveCapacity(s.count)
    for ch in s {
        switch ch {
        case "&": o += "&amp;"
        case "<": o += "&lt;"
        case ">": o += "&gt;"
        case "\"": o += "&quot;"
        case "'": o += "&#39;"
        default: o.append(ch)
        }
    }
    return o
}

/// The page: head with inline CSS, body, inline JS (filter / sort of the patient cards). Written
/// as well-formed XML (XHTML syntax) so that tests can parse it.
struct HTML {
    var text = ""
    mutating func raw(_ s: String) { text += s }

    mutating func head(title: String) {
        text += """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>\(esc(title))</title>
        <style>
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
        h3{font-size:15px;margin:16px 0 6px}h4{font-size:14px;margin:0 0 6px}
        .meta{color:#666;margin:2px 0}.note{color:#555;font-size:12px;max-width:1100px}
        .row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
        .chart{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px}
        svg text{font:11px system-ui,sans-serif;fill:#333}
        .axis{stroke:#444;stroke-width:1}.grid{stroke:#eee;stroke-width:1}.diag{stroke:#aaa;stroke-dasharray:4 3}
        .curve{fill:none;stroke:#1f77b4;stroke-width:2}.band{fill:#1f77b4;fill-opacity:.18;stroke:none}
        .pr{fill:none;stroke:#d62728;stroke-width:2}.prev{stroke:#999;stroke-dasharray:4 3}
        .cal{fill:#2ca02c}.calline{fill:none;stroke:#2ca02c;stroke-width:1.5}
        table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
        th{background:#f0f0f0}.folds tr.pooled td{font-weight:600}
        .cm td{width:64px;height:36px;text-align:center;font-size:16px}.cm .tp,.cm .tn{background:#e3f1e3}.cm .fp,.cm .fn{background:#f8e3e3}
        .cm caption{font-size:12px;color:#444;padding-bottom:4px}.confusion p{font-size:12px;color:#444;margin:4px 0 0}
        .controls{margin:8px 0 12px}#cards{display:flex;flex-wrap:wrap;gap:12px}
        .card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;width:430px}
        .card .fold{color:#888;font-weight:400;font-size:12px}.scores{font-size:12px;margin-bottom:6px}
        .tag.TP,.tag.TN{color:#2a7a2a;font-weight:600}.tag.FP,.tag.FN{color:#b22;font-weight:600}
        .att{fill:none;stroke:#9467bd;stroke-width:1.5}.key{fill:#ff7f0e}
        .thumbs{display:flex;gap:6px;flex-wrap:wrap}.thumb{margin:0;font-size:11px;color:#555;width:130px}
        .thumb svg{display:block;background:#000}.lesion{fill:none;stroke:#ff3030;stroke-width:1.5}
        .hidden{display:none}
        </style></head><body>

        """
    }

    mutating func finish() {
        text += """
        <script>//<![CDATA[
        (function () {
          var cards = Array.prototype.slice.call(document.querySelectorAll('#cards .card'));
          var box = document.getElementById('cards'), filter = document.getElementById('filter'), sort = document.getElementById('sort');
          var shown = document.getElementById('shown');
          function update() {
            var q = filter.value.trim().toLowerCase(), key = sort.value, n = 0;
            cards.sort(function (a, b) {
              if (key === 'score') { return parseFloat(b.dataset.score) - parseFloat(a.dataset.score); }
              var x = key === 'fold' ? a.dataset.fold + ' ' + a.dataset.id : a.dataset.id;
              var y = key === 'fold' ? b.dataset.fold + ' ' + b.dataset.id : b.dataset.id;
              return x < y ? -1 : (x > y ? 1 : 0);
            });
            cards.forEach(function (c) {
              var hide = q.length > 0 && c.dataset.id.toLowerCase().indexOf(q) === -1;
              c.classList.toggle('hidden', hide);
              if (!hide) { n += 1; }
              box.appendChild(c);
            });
            shown.textContent = n + ' of ' + cards.length + ' patients';
          }
          filter.addEventListener('input', update);
          sort.addEventListener('change', update);
          update();
        })();
        //]]></script>
        </body></html>

        """
    }
}

/// Small inline SVG charts (no external code).
enum Charts {
    static let w = 260.0, h = 220.0, left = 46.0, bottom = 34.0, top = 22.0, right = 10.0

    static func px(_ x: Double) -> Double { left + x * (w - left - right) }
    static func py(_ y: Double) -> Double { h - bottom - y * (h - bottom - top) }

    static func points(_ xs: [Double], _ ys: [Double]) -> String {
        zip(xs, ys).map { String(format: "%.1f,%.1f", px($0), py($1)) }.joined(separator: " ")
    }

    static func frame(title: String, x: String, y: String, _ body: String) -> String {
        var s = "<div class=\"chart\"><svg width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\"><title>\(esc(title))</title>"
        for t in stride(from: 0.0, through: 1.0, by: 0.25) {
            s += String(format: "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(t), py(0), px(t), py(1))
            s += String(format: "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(t), px(1), py(t))
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2g</text>", px(t), py(0) + 13, t)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2g</text>", px(0) - 4, py(t) + 4, t)
        }
        s += String(format: "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(0), px(1), py(0))
        s += String(format: "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(0), px(0), py(1))
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px(0.5), h - 4) + esc(x) + "</text>"
        s += String(format: "<text transform=\"translate(10 %.1f) rotate(-90)\" text-anchor=\"middle\">", py(0.5)) + esc(y) + "</text>"
        s += String(format: "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\">", w / 2) + esc(title) + "</text>"
        return s + body + "</svg></div>\n"
    }

    static func roc(_ r: ROCCurve, band: (fpr: [Double], low: [Double], high: [Double])?, label: String) -> String {
        var body = ""
        if let b = band, !b.low.isEmpty {
            body += "<polygon class=\"band\" points=\"\(points(b.fpr + b.fpr.reversed(), b.high + b.low.reversed()))\"/>"
        }
        body += String(format: "<line class=\"diag\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(0), px(1), py(1))
        body += "<polyline class=\"curve\" points=\"\(points(r.fpr, r.tpr))\"/>"
        return frame(title: "ROC · " + label, x: "false positive rate", y: "true positive rate", body)
    }

    static func pr(_ c: PRCurve, prevalence: Double, label: String) -> String {
        // Steps as matplotlib's drawstyle "steps-post" on the curve's own order (as scikit-learn's
        // PrecisionRecallDisplay draws it): from each point horizontally to the next recall, then vertically.
        var xs: [Double] = [], ys: [Double] = []
        for (i, p) in zip(c.recall, c.precision).enumerated() {
            if i > 0 { xs.append(p.0); ys.append(ys.last!) }
            xs.append(p.0); ys.append(p.1)
        }
        var body = String(format: "<line class=\"prev\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(prevalence), px(1), py(prevalence))
        body += "<polyline class=\"pr\" points=\"\(points(xs, ys))\"/>"
        return frame(title: "PR · " + label, x: "recall", y: "precision", body)
    }

    static func calibration(_ bins: [(score: Double, observed: Double, count: Int)], label: String) -> String {
        var body = String(format: "<line class=\"diag\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px(0), py(0), px(1), py(1))
        body += "<polyline class=\"calline\" points=\"\(points(bins.map(\.score), bins.map(\.observed)))\"/>"
        for b in bins {
            body += String(format: "<circle class=\"cal\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"><title>", px(b.score), py(b.observed), 2.5 + min(4, Double(b.count).squareRoot() / 2))
                + esc(String(format: "mean score %.3f, observed %.3f, %d patient(s)", b.score, b.observed, b.count)) + "</title></circle>"
        }
        return frame(title: "Calibration · " + label, x: "mean predicted score", y: "observed fraction positive", body)
    }

    /// Attention summed per slice over z (slice index when z is unknown); key slices as dots.
    static func attention(_ rows: [Report.SliceRow], keys: [Int]) -> String {
        var by: [Int: (z: Float, a: Double)] = [:]
        for r in rows { by[r.slice, default: (r.z, 0)].a += r.attention }
        let slices = by.keys.sorted()
        let useZ = slices.allSatisfy { by[$0]!.z.isFinite }
        let xs = slices.map { useZ ? Double(by[$0]!.z) : Double($0) }, ys = slices.map { by[$0]!.a }
        let (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1), ymax = max(ys.max() ?? 1, 1e-12)
        let W = 410.0, H = 70.0, L = 6.0, R = 6.0, T = 6.0, B = 16.0
        func X(_ x: Double) -> Double { L + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - L - R) }
        func Y(_ y: Double) -> Double { H - B - y / ymax * (H - B - T) }
        var s = "<svg class=\"attention\" width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" role=\"img\"><title>attention over \(useZ ? "z (mm)" : "slice index")</title>"
        s += String(format: "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", L, H - B, W - R, H - B)
        s += "<polyline class=\"att\" points=\"" + zip(xs, ys).map { String(format: "%.1f,%.1f", X($0), Y($1)) }.joined(separator: " ") + "\"/>"
        for k in keys { if let i = slices.firstIndex(of: k) { s += String(format: "<circle class=\"key\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", X(xs[i]), Y(ys[i])) } }
        let lo = useZ ? String(format: "z %.1f mm", x0) : "slice \(Int(x0))", hi = useZ ? String(format: "z %.1f mm", x1) : "slice \(Int(x1))"
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\">", L, H - 3) + lo + "</text>"
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", W - R, H - 3) + hi + "</text>"
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", W / 2, H - 3) + "attention over " + (useZ ? "z" : "slice") + String(format: " (max %.3f)</text>", ymax)
        return s + "</svg>\n"
    }
}
