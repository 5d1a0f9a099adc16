import AxialCore
import AxialStore
import Foundation

/// Out-of-fold (or deploy) predictions: `patient_preds.csv` files with `patient_id`, the true label
/// columns and one `score_<class id>` column per class.
public struct Predictions: Sendable {
    public var task: TaskSpec
    /// Pooled over all files.
    public var pooled: LabelScores
    /// One entry per file: its name ("fold-0", or "all" for a single file) and its patients.
    public var parts: [(name: String, data: LabelScores)]
    /// The folders the files came from (for `slice_attention.csv`).
    public var folders: [URL]

    /// Finds the prediction files: `<dir>/fold-*/patient_preds.csv` (crossval, sorted by fold
    /// number), else `<dir>/patient_preds.csv` (deploy), or `path` itself when it is a file.
    public static func files(at path: URL) throws -> [(name: String, url: URL)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw EvalError.io(path: path.path, reason: "no such file or folder")
        }
        if !isDir.boolValue { return [("all", path)] }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path.path)) ?? []
        let folds = entries.filter { $0.hasPrefix("fold-") }
            .compactMap { name -> (Int, String)? in Int(name.dropFirst(5)).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
            .map { (name: $0.1, url: path.appendingPathComponent($0.1).appendingPathComponent("patient_preds.csv")) }
            .filter { FileManager.default.fileExists(atPath: $0.url.path) }
        if !folds.isEmpty { return folds }
        let single = path.appendingPathComponent("patient_preds.csv")
        if FileManager.default.fileExists(atPath: single.path) { return [("all", single)] }
        throw EvalError.io(path: path.path, reason: "no fold-*/patient_preds.csv and no patient_preds.csv here")
    }

    /// Reads every prediction file. With `task` nil, `<dir>/task.yaml` is used if present, else the
    /// task is inferred from the first file's columns: as many label columns as score columns →
    /// multi-label (binary for one), one label column and several score columns → multi-class.
    public static func load(_ path: URL, task: TaskSpec? = nil) throws -> Predictions {
        let files = try files(at: path)
        var task = task
        if task == nil {
            let yaml = path.appendingPathComponent("task.yaml")
            if FileManager.default.fileExists(atPath: yaml.path) { task = try TaskSpec.load(yaml.path) }
        }
        var parts: [(name: String, data: LabelScores)] = []
        var seen: [String: String] = [:]
        for (name, url) in files {
            let table: CSVTable
            do { table = try CSVTable.read(url) } catch let e as FileError { throw EvalError.predictions(path: url.path, line: nil, reason: e.description) }
            if task == nil { task = try infer(table.header, path: url.path) }
            let data = try parse(table, task: task!, path: url.path)
            for id in data.patientIDs {
                if let other = seen[id] {
                    throw EvalError.predictions(path: url.path, line: nil, reason: "patient '\(id)' is also in \(other); test folds must be disjoint")
                }
                seen[id] = url.path
            }
            parts.append((name, data))
        }
        let t = task!
        let pooled = LabelScores(classes: t.classes.map(\.name), patientIDs: parts.flatMap(\.data.patientIDs),
                                 labels: parts.flatMap(\.data.labels), scores: parts.flatMap(\.data.scores))
        return Predictions(task: t, pooled: pooled, parts: parts, folders: files.map { $0.url.deletingLastPathComponent() })
    }

    static func infer(_ header: [String], path: String) throws -> TaskSpec {
        guard header.contains(Cohort.patientColumn) else {
            throw EvalError.predictions(path: path, line: 1, reason: "no 'patient_id' column (columns: \(header.joined(separator: ", ")))")
        }
        let ids = header.filter { $0.hasPrefix("score_") }.map { String($0.dropFirst(6)) }
        let labels = header.filter { $0 != Cohort.patientColumn && $0 != "fold" && !$0.hasPrefix("score_") }
        guard !ids.isEmpty else { throw EvalError.predictions(path: path, line: 1, reason: "no score_<class> columns") }
        if labels.count == ids.count {
            let columns = Set(labels) == Set(ids) ? ids : labels
            let classes = zip(ids, columns).map { TaskClass(name: $0, id: $0, column: $1) }
            if ids.count == 1 { return TaskSpec(name: "inferred", kind: .binary, classes: classes, labelColumn: columns[0]) }
            return TaskSpec(name: "inferred", kind: .multilabel, classes: classes)
        }
        if labels.count == 1 && ids.count >= 2 {
            return TaskSpec(name: "inferred", kind: .multiclass, classes: ids.map { TaskClass(name: $0, id: $0, column: nil) }, labelColumn: labels[0])
        }
        throw EvalError.predictions(path: path, line: 1, reason: "cannot tell the task from the columns: \(labels.count) label column(s) (\(labels.joined(separator: ", "))) and \(ids.count) score column(s); pass --task")
    }

    static func parse(_ table: CSVTable, task: TaskSpec, path: String) throws -> LabelScores {
        func col(_ name: String) throws -> Int {
            guard let i = table.header.firstIndex(of: name) else {
                throw EvalError.predictions(path: path, line: 1, reason: "no column '\(name)' (columns: \(table.header.joined(separator: ", ")))")
            }
            return i
        }
        let pc = try col(Cohort.patientColumn)
        let lc = try task.labelColumns.map(col)
        let sc = try task.scoreColumns.map(col)
        var ids: [String] = [], labels: [[Int]] = [], scores: [[Double]] = []
        for (r, row) in table.rows.enumerated() {
            let line = r + 2
            ids.append(row[pc])
            var s: [Double] = []
            for (k, c) in sc.enumerated() {
                guard let v = Double(row[c].trimmingCharacters(in: .whitespaces)), v.isFinite else {
                    throw EvalError.predictions(path: path, line: line, reason: "'\(task.scoreColumns[k])' = '\(row[c])' is not a finite number")
                }
                s.append(v)
            }
            scores.append(s)
            switch task.kind {
            case .binary, .multilabel:
                labels.append(try lc.enumerated().map { k, c in
                    let v = row[c].trimmingCharacters(in: .whitespaces)
                    if task.positiveValues.contains(v) { return 1 }
                    if task.negativeValues.contains(v) { return 0 }
                    if task.unknownValues.contains(v) || v.isEmpty { return -1 }
                    let d: Double? = Double(v)
                    if d == 1 { return 1 }
                    if d == 0 { return 0 }
                    if d == -1 { return -1 }
                    throw EvalError.predictions(path: path, line: line, reason: "'\(task.labelColumns[k])' = '\(v)' is not 1, 0, -1 or blank")
                })
            case .multiclass:
                let v = row[lc[0]].trimmingCharacters(in: .whitespaces)
                if let k = task.classes.firstIndex(where: { $0.name == v || $0.id == v }) {
                    labels.append(task.classes.indices.map { $0 == k ? 1 : 0 })
                } else if v.isEmpty || task.unknownValues.contains(v) {
                    labels.append(Array(repeating: -1, count: task.classes.count))
                } else {
                    throw EvalError.predictions(path: path, line: line, reason: "'\(task.labelColumns[0])' = '\(v)' is not one of \(task.classes.map(\.name).joined(separator: ", "))")
                }
            }
        }
        return LabelScores(classes: task.classes.map(\.name), patientIDs: ids, labels: labels, scores: scores)
    }
}

/// Options of `axial statistics`.
public struct StatisticsOptions: Sendable {
    /// Binary / multi-label decision threshold on the scores (multi-class uses the arg-max).
    public var threshold: Double = 0.5
    public var bootstrap = BootstrapOptions()
    /// Write one attention plot per patient when `slice_attention.csv` exists.
    public var attentionPlots = true
    public init(threshold: Double = 0.5, bootstrap: BootstrapOptions = BootstrapOptions(), attentionPlots: Bool = true) {
        self.threshold = threshold; self.bootstrap = bootstrap; self.attentionPlots = attentionPlots
    }
}

/// What `StatisticsStage.run` computed (also written to disk).
public struct StatisticsResult: Sendable {
    public var task: TaskSpec
    public var pooled: SummaryMetrics
    public var intervals: BootstrapSummary
    public var perFold: [(name: String, metrics: SummaryMetrics)]
    public var thresholdMetrics: [ThresholdMetrics]
    public var files: [String]
}

/// `axial statistics`: metrics on the pooled out-of-fold predictions, per-fold values, plots.
///
/// Outputs in `out`:
/// - `statistics.csv`: `class, n_pos, n_neg, auroc, auroc_ci_low, auroc_ci_high, auprc, auprc_ci_low,
///   auprc_ci_high`, one row per class, then `macro` and `micro` (their n_pos / n_neg are sums over
///   classes); undefined values are blank;
/// - `statistics_per_fold.csv`: `fold, class, n_pos, n_neg, auroc, auprc, f1` per fold and class
///   (+ macro, micro), then `mean` and `sd` rows (sd with ddof = 1, over the folds where defined);
/// - `statistics_threshold.csv`: counts, precision, recall, F1, accuracy at the threshold per class,
///   plus `macro` (mean) and `micro` (pooled counts);
/// - `statistics.md`: a summary; `roc_<id>.svg`, `pr_<id>.svg`; `attention/<patient>.svg`.
public enum StatisticsStage {
    public static func run(preds: URL, out: URL, task: TaskSpec? = nil, options: StatisticsOptions = StatisticsOptions()) throws -> StatisticsResult {
        let p = try Predictions.load(preds, task: task)
        let t = p.task
        let pooled = Metrics.summarize(p.pooled)
        let ci = Bootstrap.summarize(p.pooled, options: options.bootstrap)
        let perFold = p.parts.map { ($0.name, Metrics.summarize($0.data)) }
        let thr = t.kind == .multiclass ? Metrics.argmaxMetrics(p.pooled) : Metrics.thresholdMetrics(p.pooled, threshold: options.threshold)
        var written: [String] = []
        func write(_ name: String, _ text: String) throws {
            let url = out.appendingPathComponent(name)
            do { try AtomicFile.write(Data(text.utf8), to: url) } catch let e as FileError { throw EvalError.io(path: url.path, reason: e.description) }
            written.append(name)
        }
        let names = t.classes.map(\.name)
        let nPos = t.classes.indices.map(p.pooled.positives), nNeg = t.classes.indices.map(p.pooled.negatives)

        // statistics.csv
        var rows: [[String]] = [["class", "n_pos", "n_neg", "auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high"]]
        for c in names.indices {
            rows.append([names[c], "\(nPos[c])", "\(nNeg[c])"] + triple(pooled.auroc[c], ci.auroc[c]) + triple(pooled.averagePrecision[c], ci.averagePrecision[c]))
        }
        let sp = "\(nPos.reduce(0, +))", sn = "\(nNeg.reduce(0, +))"
        rows.append(["macro", sp, sn] + triple(pooled.macroAUROC, ci.macroAUROC) + triple(pooled.macroAveragePrecision, ci.macroAveragePrecision))
        rows.append(["micro", sp, sn] + triple(pooled.microAUROC, ci.microAUROC) + triple(pooled.microAveragePrecision, ci.microAveragePrecision))
        try write("statistics.csv", CSV.format(rows))

        // statistics_per_fold.csv
        var fold: [[String]] = [["fold", "class", "n_pos", "n_neg", "auroc", "auprc", "f1"]]
        var collected: [String: (auc: [Double], ap: [Double], f1: [Double])] = [:]
        for (k, part) in p.parts.enumerated() {
            let m = perFold[k].1, d = part.data
            let tm = t.kind == .multiclass ? Metrics.argmaxMetrics(d) : Metrics.thresholdMetrics(d, threshold: options.threshold)
            var entries: [(String, Int, Int, Double?, Double?, Double?)] = names.indices.map { c in
                (names[c], d.positives(c), d.negatives(c), m.auroc[c], m.averagePrecision[c], tm[c].f1)
            }
            let fp = names.indices.reduce(0) { $0 + d.positives($1) }, fn = names.indices.reduce(0) { $0 + d.negatives($1) }
            let macroF1: Double = tm.map(\.f1).reduce(0, +) / Double(max(tm.count, 1))
            entries.append(("macro", fp, fn, m.macroAUROC, m.macroAveragePrecision, macroF1))
            entries.append(("micro", fp, fn, m.microAUROC, m.microAveragePrecision, tm.reduce(ThresholdMetrics(), +).f1))
            for e in entries {
                fold.append([part.name, e.0, "\(e.1)", "\(e.2)", num(e.3), num(e.4), num(e.5)])
                var acc = collected[e.0] ?? ([], [], [])
                if let v = e.3 { acc.auc.append(v) }
                if let v = e.4 { acc.ap.append(v) }
                if let v = e.5 { acc.f1.append(v) }
                collected[e.0] = acc
            }
        }
        var meanSD: [String: (auc: (Double?, Double?), ap: (Double?, Double?))] = [:]
        for stat in ["mean", "sd"] {
            for name in names + ["macro", "micro"] {
                let a = collected[name] ?? ([], [], [])
                func f(_ v: [Double]) -> Double? { stat == "mean" ? meanOf(v) : sdOf(v) }
                fold.append([stat, name, "", "", num(f(a.auc)), num(f(a.ap)), num(f(a.f1))])
                meanSD[name] = ((meanOf(a.auc), sdOf(a.auc)), (meanOf(a.ap), sdOf(a.ap)))
            }
        }
        try write("statistics_per_fold.csv", CSV.format(fold))

        // statistics_threshold.csv
        let thrName = t.kind == .multiclass ? "argmax" : "\(options.threshold)"
        var th: [[String]] = [["class", "threshold", "tp", "fp", "tn", "fn", "precision", "recall", "f1", "accuracy"]]
        func thRow(_ name: String, _ m: ThresholdMetrics) -> [String] {
            [name, thrName, "\(m.truePositives)", "\(m.falsePositives)", "\(m.trueNegatives)", "\(m.falseNegatives)",
             num(m.precision), num(m.recall), num(m.f1), num(m.accuracy)]
        }
        for c in names.indices { th.append(thRow(names[c], thr[c])) }
        let n = Double(max(thr.count, 1))
        let macroP: Double = thr.map(\.precision).reduce(0, +) / n
        let macroR: Double = thr.map(\.recall).reduce(0, +) / n
        let macroF: Double = thr.map(\.f1).reduce(0, +) / n
        let macroA: Double = thr.map(\.accuracy).reduce(0, +) / n
        th.append(["macro", thrName, "", "", "", "", num(macroP), num(macroR), num(macroF), num(macroA)])
        th.append(thRow("micro", thr.reduce(ThresholdMetrics(), +)))
        try write("statistics_threshold.csv", CSV.format(th))

        // Curves.
        for (c, cls) in t.classes.enumerated() where pooled.auroc[c] != nil {
            let col = p.pooled.column(c)
            let k = Metrics.known(labels: col.labels, scores: col.scores)
            var roc = SVGPlot(title: "ROC — \(cls.name)", xLabel: "False positive rate", yLabel: "True positive rate")
            roc.xRange = 0...1; roc.yRange = 0...1; roc.diagonal = true
            var pr = SVGPlot(title: "Precision–recall — \(cls.name)", xLabel: "Recall", yLabel: "Precision")
            pr.xRange = 0...1; pr.yRange = 0...1
            if p.parts.count > 1 {
                for (name, d) in p.parts {
                    let fc = d.column(c)
                    let fk = Metrics.known(labels: fc.labels, scores: fc.scores)
                    if let r = Metrics.rocCurve(labels: fk.labels, scores: fk.scores) { roc.add(x: r.fpr, y: r.tpr, label: "", color: "#bbbbbb") }
                    if fk.labels.contains(true), let q = Metrics.precisionRecallCurve(labels: fk.labels, scores: fk.scores) {
                        pr.add(x: q.recall, y: q.precision, label: "", color: "#bbbbbb", step: true)
                    }
                    _ = name
                }
            }
            let r = Metrics.rocCurve(labels: k.labels, scores: k.scores)!
            roc.add(x: r.fpr, y: r.tpr, label: String(format: "pooled AUROC %.3f", pooled.auroc[c]!), color: SVGPlot.palette[0])
            if p.parts.count > 1 { roc.add(x: [], y: [], label: "single folds", color: "#bbbbbb") }
            let q = Metrics.precisionRecallCurve(labels: k.labels, scores: k.scores)!
            pr.add(x: q.recall, y: q.precision, label: String(format: "pooled AP %.3f", pooled.averagePrecision[c]!), color: SVGPlot.palette[1], step: true)
            let prevalence = Double(k.labels.filter { $0 }.count) / Double(k.labels.count)
            pr.add(x: [0, 1], y: [prevalence, prevalence], label: String(format: "prevalence %.3f", prevalence), color: "#999999", dashed: true)
            try write("roc_\(cls.id).svg", roc.svg)
            try write("pr_\(cls.id).svg", pr.svg)
        }

        // Attention over slices.
        if options.attentionPlots {
            for folder in p.folders {
                let url = folder.appendingPathComponent("slice_attention.csv")
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                for (patient, svg) in try attentionPlots(url) {
                    try write("attention/\(sanitizedName(patient)).svg", svg)
                }
            }
        }

        // statistics.md
        var md = "# Statistics — \(t.name) (\(t.kind.rawValue))\n\n"
        md += "Predictions: `\(preds.path)` — \(p.parts.count) file(s) (\(p.parts.map(\.name).joined(separator: ", "))), \(p.pooled.count) patients, pooled out-of-fold.\n\n"
        md += "| class | n+ | n− | AUROC (95% CI) | AUPRC (95% CI) | per-fold AUROC mean ± sd | \(t.kind == .multiclass ? "F1 (argmax)" : "F1 @ \(options.threshold)") |\n|---|---|---|---|---|---|---|\n"
        func cell(_ v: Double?, _ i: ConfidenceInterval?) -> String {
            guard let v else { return "n/a" }
            return String(format: "%.3f", v) + (i.map { String(format: " (%.3f–%.3f)", $0.low, $0.high) } ?? "")
        }
        func foldCell(_ name: String) -> String {
            guard let m = meanSD[name], let mean = m.auc.0 else { return "n/a" }
            return String(format: "%.3f", mean) + (m.auc.1.map { String(format: " ± %.3f", $0) } ?? "")
        }
        for c in names.indices {
            md += "| \(names[c]) | \(nPos[c]) | \(nNeg[c]) | \(cell(pooled.auroc[c], ci.auroc[c])) | \(cell(pooled.averagePrecision[c], ci.averagePrecision[c])) | \(foldCell(names[c])) | \(String(format: "%.3f", thr[c].f1)) |\n"
        }
        md += "| **macro** | \(sp) | \(sn) | \(cell(pooled.macroAUROC, ci.macroAUROC)) | \(cell(pooled.macroAveragePrecision, ci.macroAveragePrecision)) | \(foldCell("macro")) | \(String(format: "%.3f", thr.map(\.f1).reduce(0, +) / n)) |\n"
        md += "| **micro** | \(sp) | \(sn) | \(cell(pooled.microAUROC, ci.microAUROC)) | \(cell(pooled.microAveragePrecision, ci.microAveragePrecision)) | \(foldCell("micro")) | \(String(format: "%.3f", thr.reduce(ThresholdMetrics(), +).f1)) |\n\n"
        if !pooled.excludedFromMacro.isEmpty {
            md += "**Note:** \(pooled.excludedFromMacro.map { "'\(names[$0])'" }.joined(separator: ", ")) had only one label value among known labels; AUROC/AUPRC are undefined there and these classes are left out of the macro averages (scikit-learn would return NaN for the macro).\n\n"
        }
        let b = options.bootstrap
        md += "Method: AUROC on continuous scores and average precision (AUPRC) as scikit-learn's `roc_auc_score` / `average_precision_score`; unknown labels (blank or −1) are ignored per class; "
        md += t.kind == .multiclass ? "multi-class values are one-vs-rest, F1 uses the arg-max class. " : "F1 uses score ≥ \(options.threshold). "
        md += "95% CIs: percentile bootstrap over patients (\(b.stratified ? "stratified" : "plain") resampling, \(b.resamples) resamples, seed \(b.seed)); resamples where a metric is undefined (one label value) are skipped for that metric. "
        md += "Macro = unweighted mean over classes; micro = all known (patient, class) pairs pooled.\n\n"
        md += "Files: `statistics.csv`, `statistics_per_fold.csv`, `statistics_threshold.csv`, `roc_<class>.svg`, `pr_<class>.svg`" + (written.contains { $0.hasPrefix("attention/") } ? ", `attention/<patient>.svg`" : "") + ".\n"
        try write("statistics.md", md)
        return StatisticsResult(task: t, pooled: pooled, intervals: ci, perFold: perFold, thresholdMetrics: thr, files: written)
    }

    /// One SVG per patient from `slice_attention.csv` (`patient_id, slice_index, z_mm, window,
    /// attention`): attention against z (mm), one line per window.
    public static func attentionPlots(_ url: URL) throws -> [(patient: String, svg: String)] {
        let table: CSVTable
        do { table = try CSVTable.read(url) } catch let e as FileError { throw EvalError.predictions(path: url.path, line: nil, reason: e.description) }
        let cols = try ["patient_id", "slice_index", "z_mm", "window", "attention"].map { name -> Int in
            guard let i = table.header.firstIndex(of: name) else {
                throw EvalError.predictions(path: url.path, line: 1, reason: "no column '\(name)' (columns: \(table.header.joined(separator: ", ")))")
            }
            return i
        }
        var order: [String] = []
        var data: [String: [String: [(z: Double, a: Double)]]] = [:]
        var windows: [String: [String]] = [:]
        for (r, row) in table.rows.enumerated() {
            let id = row[cols[0]], w = row[cols[3]]
            guard let z = Double(row[cols[2]]) ?? Double(row[cols[1]]), let a = Double(row[cols[4]]) else {
                throw EvalError.predictions(path: url.path, line: r + 2, reason: "z_mm / slice_index / attention are not numbers")
            }
            if data[id] == nil { order.append(id); data[id] = [:]; windows[id] = [] }
            if data[id]![w] == nil { windows[id]!.append(w) }
            data[id]![w, default: []].append((z, a))
        }
        return order.map { id in
            var plot = SVGPlot(title: "Attention over slices — \(id)", xLabel: "z (mm)", yLabel: "attention")
            plot.width = 640; plot.height = 300
            for w in windows[id]! {
                let pts = data[id]![w]!.sorted { $0.z < $1.z }
                plot.add(x: pts.map(\.z), y: pts.map(\.a), label: "window \(w)")
            }
            return (id, plot.svg)
        }
    }

    static func num(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
    static func triple(_ v: Double?, _ i: ConfidenceInterval?) -> [String] { [num(v), num(i?.low), num(i?.high)] }
    static func meanOf(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.reduce(0, +) / Double(v.count) }
    static func sdOf(_ v: [Double]) -> Double? {
        guard v.count > 1, let m = meanOf(v) else { return nil }
        return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
    }
}
