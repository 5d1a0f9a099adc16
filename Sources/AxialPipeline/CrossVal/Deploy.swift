import AxialCore
import AxialEval
import AxialModels
import AxialStore
import AxialTensor
import Foundation

/// `axial deploy`: one or several trained fold models on a (new) cohort, mean ensemble.
/// Writes `task.yaml`, `patient_preds.csv` (labels from `--table` when given, else blank) and
/// `slice_attention.csv` — the same files as a crossval fold, so `axial statistics` reads them.
public struct DeployOptions: Sendable {
    /// Crossval folders (their fold-*/model.safetensors) and/or model files.
    public var models: [URL]
    public var features: URL
    public var out: URL
    public var table: URL? = nil
    public var keySlices: URL? = nil
    public var seed: UInt64 = 0
    /// Exclude patients whose feature file holds NaN / Inf rows (with a warning) instead of stopping.
    public var skipNonFinite = false
    /// Instance-bootstrap resamples of each patient's score interval (`prediction_ci.csv`; 0: none).
    public var intervalResamples = PredictionDetails.resamples
    /// Zero-shot: class names (one per line) scored instead of the trained ones, through the models'
    /// text tower (`ZeroShot`); `textWeights` / `textVocabulary` override the paths recorded at training.
    public var classes: URL? = nil
    public var textWeights: URL? = nil
    public var textVocabulary: URL? = nil
    /// Zero-shot with given embeddings (`classEmbeddings` file: a tensor per class name) instead of the text tower.
    public var classEmbeddings: URL? = nil
    public var log: @Sendable (String) -> Void = { print($0) }
    public init(models: [URL], features: URL, out: URL) { self.models = models; self.features = features; self.out = out }
}

public enum Deploy {
    /// Model files: a file as is; a folder → its fold-*/model.safetensors (fold order), else model.safetensors.
    public static func modelFiles(_ paths: [URL]) throws -> [URL] {
        var out: [URL] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p.path, isDirectory: &isDir) else { throw MILError.model(path: p.path, reason: "no such file or folder") }
            if !isDir.boolValue { out.append(p); continue }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: p.path)) ?? []
            let folds = entries.compactMap { e -> (Int, URL)? in
                guard e.hasPrefix("fold-"), let k = Int(e.dropFirst(5)) else { return nil }
                let u = p.appendingPathComponent(e).appendingPathComponent("model.safetensors")
                return FileManager.default.fileExists(atPath: u.path) ? (k, u) : nil
            }.sorted { $0.0 < $1.0 }.map(\.1)
            if !folds.isEmpty { out += folds; continue }
            let single = p.appendingPathComponent("model.safetensors")
            guard FileManager.default.fileExists(atPath: single.path) else { throw MILError.model(path: p.path, reason: "no fold-*/model.safetensors or model.safetensors here") }
            out.append(single)
        }
        return out
    }

    @discardableResult
    public static func run(_ o: DeployOptions) throws -> (task: TaskSpec, patients: Int, models: Int) {
        let files = try modelFiles(o.models)
        let trained = try files.map(CrossVal.readModel)
        let models = try o.classes.map { try ZeroShot.rebind(trained, classes: $0, textWeights: o.textWeights, textVocabulary: o.textVocabulary,
                                                           embeddings: o.classEmbeddings) } ?? trained
        let first = models[0]
        for m in models.dropFirst() {
            guard m.task.classes == first.task.classes, m.task.kind == first.task.kind else {
                throw MILError.model(path: m.url!.path, reason: "task '\(m.task.name)' differs from \(first.url!.lastPathComponent)'s '\(first.task.name)'; an ensemble needs one task")
            }
            guard m.head.config.inputDimension == first.head.config.inputDimension, m.windows == first.windows,
                  m.head.config.tokensPerInstance == first.head.config.tokensPerInstance else {
                throw MILError.model(path: m.url!.path, reason: "input width, dense tokens or windows differ from \(first.url!.path)")
            }
        }
        let task = first.task
        try AtomicFile.createFolder(o.out)
        try AtomicFile.write(Data(first.taskYAML.utf8), to: o.out.appendingPathComponent("task.yaml"))

        var ids: [String] = [], labels: [[Int]?] = [], urls: [URL] = []
        if let table = o.table {
            let (cohort, report) = try Cohort.load(table: table, task: task, featureFiles: try Cohort.featureFiles(in: o.features))
            for w in report.warnings { o.log("warning: \(w)") }
            ids = cohort.patientIDs; labels = cohort.labels
            urls = ids.map { o.features.appendingPathComponent(FeatureStore.fileName(patientID: $0)) }
        } else {
            let names = try Cohort.featureFiles(in: o.features).sorted()
            let probed = try FeatureProbe.check(names.map { o.features.appendingPathComponent($0) })
            for name in names {
                let url = o.features.appendingPathComponent(name)
                if let why = probed[url.path] { throw MILError.features(path: url.path, reason: why) }
                let id: String
                do { id = try FeatureStore.readAnyLayout(url).features.metadata.patientID } catch {
                    throw MILError.features(path: url.path, reason: "cannot read: \(error)")
                }
                ids.append(id); labels.append(nil); urls.append(url)
            }
        }
        let keySlices = try o.keySlices.map(Bags.readKeySlices) ?? [:]
        let layouts = FeatureLayoutLog()
        var bags: [PatientBag] = [], kept: [[Int]?] = [], nonFinite: [NonFiniteFeatures] = []
        // The HDF5 probe child first (the table branch; the other branch probed its files above).
        let probed = o.table == nil ? [:] : try FeatureProbe.check(urls)
        for (i, (id, url)) in zip(ids, urls).enumerated() {
            if let why = probed[url.path] { throw MILError.features(path: url.path, reason: why) }
            let b: PatientBag
            let dense = first.head.config.tokensPerInstance
            do { b = try Bags.load(url, patientID: id, windows: first.windows, layouts: layouts, denseTokens: dense != nil) } catch let e as NonFiniteFeatures {
                nonFinite.append(e); continue
            }
            guard b.dimension == first.head.config.inputDimension * (dense ?? 1), b.tokens == (dense ?? 1) else {
                throw MILError.features(path: url.path, reason: dense == nil ? "feature width \(b.dimension), the model expects \(first.head.config.inputDimension)"
                    : "\(b.tokens) dense tokens of width \(b.dimension / max(b.tokens, 1)) per slice, the model expects \(dense!) of \(first.head.config.inputDimension)")
            }
            bags.append(b); kept.append(labels[i])
        }
        for line in layouts.lines { o.log(line) }
        if !nonFinite.isEmpty {
            guard o.skipNonFinite else {
                throw MILError.features(path: o.features.path, reason: "\(nonFinite.count) patient(s) have NaN / Inf features — "
                    + nonFinite.prefix(5).map(\.description).joined(separator: "; ")
                    + (nonFinite.count > 5 ? "; …" : "") + "; re-extract them, or pass --skip-nonfinite to exclude them")
            }
            for e in nonFinite { o.log("warning: patient '\(e.patientID)' excluded (--skip-nonfinite): \(e.description)") }
        }
        labels = kept
        guard !bags.isEmpty else { throw MILError.features(path: o.features.path, reason: "no patient left to score") }
        let preds = CrossVal.predict(models, bags: bags, keySlices: keySlices, seed: o.seed, intervalResamples: o.intervalResamples)
        // A NaN / Inf score is never written as a result (non-finite features or a diverged model).
        let bad = preds.filter { p in p.scores.contains { !$0.isFinite } }
        if !bad.isEmpty {
            let names = bad.prefix(5).map(\.bag.patientID).joined(separator: ", ")
            throw MILError.features(path: o.features.path, reason: "\(bad.count) of \(preds.count) patient(s) score NaN or Inf — \(names)\(bad.count > 5 ? ", …" : ""): check those feature files for non-finite values (or the models for diverged weights); nothing was written")
        }
        try CrossVal.writePredictions(preds, task: task, labels: labels, to: o.out, intervalResamples: o.intervalResamples)
        o.log("deploy: \(models.count) model(s), \(bags.count) patient(s) → \(o.out.path)")
        return (task, bags.count, models.count)
    }
}
