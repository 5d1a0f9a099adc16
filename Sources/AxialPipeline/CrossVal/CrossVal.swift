import AxialCore
import AxialEval
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

/// `axial crossval`: patient-level stratified K-fold training of a MIL head on the feature store.
///
/// Fixes over CLEAR's downstream code (REFERENCE.md §1 [Q]): splits are stratified (multi-label:
/// iterative stratification) and saved to `splits.json` for reuse; every fold starts from a fresh,
/// per-fold-seeded initialisation; early stopping and model selection use a validation split drawn
/// from the training patients only; imbalance uses `pos_weight` (n_neg/n_pos per class); padding
/// is masked in the attention; AUROC (in `axial statistics`) is computed on continuous scores.
///
/// Output folder:
///
///     task.yaml  splits.json  cohort_report.txt
///     fold-k/model.safetensors     state dict + metadata (head config JSON, task YAML, windows, …)
///     fold-k/patient_preds.csv     patient_id, label columns, score_<class> (probabilities)
///     fold-k/slice_attention.csv   patient_id, slice_index, z_mm, window, attention
///     fold-k/prediction_ci.csv     patient_id, class, score, ci_low, ci_high, resamples (instance bootstrap)
///     fold-k/attention_keyslices.csv  patient_id, rank, slice_index, z_mm, attention (top 5 slices)
///     fold-k/training.csv          epoch, train_loss, valid_loss, valid_macro_auroc, seconds, best
///     fold-k/loss_curve.svg
///
/// A fold whose `patient_preds.csv` and `model.safetensors` exist is skipped on rerun.
///
/// As cluster jobs: `onlyFold` (`--fold k`) trains fold k alone (same splits, seeds and files as
/// in a full run, so K fold jobs give byte-identical fold outputs), and `CrossVal.merge`
/// (`--merge`) checks that every fold of splits.json is complete and consistent — the folder is
/// then exactly what one full run writes, ready for `axial statistics`.
public struct CrossValOptions: Sendable {
    /// Train only this fold (nil: all folds).
    public var onlyFold: Int? = nil
    public var features: URL
    public var table: URL
    /// Task name (Manifests/tasks/<name>.yaml) or YAML path.
    public var task: String
    /// Folders a bare task name is looked up in, in order (`TaskSpec.searchDirectories`).
    public var taskDirectories: [URL] = TaskSpec.searchDirectories()
    public var head: HeadKind
    public var out: URL
    public var folds = 5
    public var seed: UInt64 = 0
    /// CLEAR: 32 epochs, lr 1e-4, batch 64, bag 512, patience 8, Adam. Axial's default lr is 1e-3:
    /// on standardised features and cohorts of tens to hundreds of patients (a few Adam steps an
    /// epoch) 1e-4 barely moves the head in 32 epochs.
    public var epochs = 32
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    public var batchSize = 64
    public var maxBag: Int? = 512
    public var windows: [String]? = nil
    public var keySlices: URL? = nil
    public var patience = 8
    public var validationFraction = 0.2
    /// Standardise features with the training fold's per-feature mean and std (saved with the model).
    public var standardize = true
    /// Log every epoch (else one summary line per fold).
    public var verbose = false
    /// Exclude patients whose feature file holds NaN / Inf rows (with a warning) instead of stopping.
    public var skipNonFinite = false
    /// The stage's progress bar (epochs of all folds) on standard error; nil: a bar on a terminal,
    /// a line every ~10% otherwise. Quiet by default in the library (the CLI passes nil).
    public var progress: Progress.Style? = .quiet
    /// Instance-bootstrap resamples of each test patient's score interval (`prediction_ci.csv`; 0: none).
    public var intervalResamples = PredictionDetails.resamples
    /// Head sizes (nil: the head's defaults).
    public var hidden: Int? = nil
    public var attentionHidden: Int? = nil
    public var seeds: Int? = nil
    public var heads: Int? = nil
    /// PsPG: class-name embeddings (safetensors: one [E] tensor per class name or id, or
    /// `embeddings` [C, E]); else from `textEncoder`; else fixed pseudo-random unit vectors per
    /// class name (no meaning: no zero-shot).
    public var classEmbeddings: URL? = nil
    /// PsPG: a text tower that encodes `promptTemplate` with each class's display name
    /// (`ClassNameEncoder`): its open_clip checkpoint (`textWeights`, safetensors) and, for
    /// BiomedCLIP, its WordPiece `vocab.txt` (`textVocabulary`).
    public var textEncoder: ClassNameEncoder.Kind? = nil
    public var textWeights: URL? = nil
    public var textVocabulary: URL? = nil
    public var promptTemplate = ClassNameEncoder.defaultTemplate
    public var pairLossWeight: Float = 0
    /// PsPG: train on the files' dense tokens (`axial extract --tokens dense`; `PsPGHead`'s
    /// dense mode) instead of the pooled `feats`.
    public var tokens: ExtractTokens = .pooled
    public var log: @Sendable (String) -> Void = { print($0) }

    public init(features: URL, table: URL, task: String, head: HeadKind, out: URL) {
        self.features = features; self.table = table; self.task = task; self.head = head; self.out = out
    }
}

extension CrossValOptions {
    /// Range checks of every numeric option, each error naming its flag (also run by the CLI's
    /// `validate()`). Folds beyond the patient count are refused once the cohort is known.
    public func validate() throws {
        func bad(_ flag: String, _ rule: String, _ value: Any) -> MILError { .options("\(flag) \(rule), got \(value)") }
        guard folds >= 2 && folds <= 1000 else { throw bad("--folds", "must be 2…1000 (and at most the number of patients)", folds) }
        guard epochs >= 1 && epochs <= 1_000_000 else { throw bad("--epochs", "must be 1…1000000", epochs) }
        guard batchSize >= 1 && batchSize <= 1_000_000 else { throw bad("--batch", "must be 1…1000000", batchSize) }
        guard patience >= 1 else { throw bad("--patience", "must be ≥ 1", patience) }
        if let m = maxBag, m < 1 { throw bad("--max-bag", "must be ≥ 1 (0 on the command line: no limit)", m) }
        guard learningRate.isFinite && learningRate > 0 else { throw bad("--lr", "must be a finite number > 0", learningRate) }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw bad("--weight-decay", "must be a finite number ≥ 0", weightDecay) }
        guard validationFraction.isFinite && validationFraction >= 0 && validationFraction < 1 else {
            throw bad("--validation-fraction", "must be in [0, 1)", validationFraction)
        }
        if let h = hidden, h < 1 || h > 65536 { throw bad("--hidden", "must be 1…65536", h) }
        if let h = attentionHidden, h < 1 || h > 65536 { throw bad("--attention-hidden", "must be 1…65536", h) }
        if let k = seeds, k < 1 || k > 4096 { throw bad("--seeds", "must be 1…4096", k) }
        if let h = heads, h < 1 || h > 1024 { throw bad("--heads", "must be 1…1024", h) }
        guard pairLossWeight.isFinite && pairLossWeight >= 0 else { throw bad("--pair-loss", "must be a finite number ≥ 0", pairLossWeight) }
        if tokens == .dense && head != .pspg {
            throw MILError.options("--tokens dense is for --head pspg (its spatial fusion runs over each slice's tokens); --head \(head.rawValue) reads the pooled feats")
        }
    }
}

public struct CrossValResult: Sendable {
    public var task: TaskSpec
    public var splits: Splits
    public var foldsTrained: [Int]
    public var foldsSkipped: [Int]
    public var warnings: [String]
}

/// What a trained fold model needs at inference.
public struct MILModel {
    public var head: MILHead
    public var task: TaskSpec
    public var taskYAML: String
    public var windows: [String]?
    public var maxBag: Int?
    /// Fitted on the training fold (nil in models written before standardisation existed).
    public var standardizer: Standardizer? = nil
    public var url: URL?
    /// PsPG trained with `--text-encoder`: the tower its class embeddings came from (zero-shot `deploy --classes`).
    public var textTower: TextTowerRecord? = nil

    /// The head's forward on a batch, standardised first.
    public func forward(_ x: Tensor, mask: Tensor) -> HeadOutput {
        head.forward(standardizer.map { $0.apply(x) } ?? x, mask: mask)
    }
}

public enum CrossVal {
    public static let modelFormat = "axial-mil/1"

    public static func run(_ o: CrossValOptions) throws -> CrossValResult {
        try o.validate()
        let (task, taskYAML) = try loadTask(o.task, directories: o.taskDirectories)
        if o.head == .pspg && task.kind == .multiclass {
            throw MILError.options("the PsPG head is for binary / multi-label tasks; '\(task.name)' is multi-class")
        }
        try AtomicFile.createFolder(o.out)

        // 1. Validate the cohort before any training.
        let files = try Cohort.featureFiles(in: o.features)
        var (cohort, report) = try Cohort.load(table: o.table, task: task, featureFiles: files)
        var warnings = report.warnings.map(\.message)
        for w in warnings { o.log("warning: \(w)") }

        // Bags of every usable patient (chosen windows), before the splits: a patient whose file
        // holds NaN / Inf rows stops the run, or with skipNonFinite is excluded with a warning.
        let layouts = FeatureLayoutLog()
        var bags: [String: PatientBag] = [:]
        var dimension = 0
        var nonFinite: [NonFiniteFeatures] = []
        // Untrusted files go through the HDF5 probe child first (a file that crashes libhdf5 is an error, not a crash).
        let probed = try FeatureProbe.check(cohort.patientIDs.map { o.features.appendingPathComponent(FeatureStore.fileName(patientID: $0)) })
        for id in cohort.patientIDs {
            let url = o.features.appendingPathComponent(FeatureStore.fileName(patientID: id))
            if let why = probed[url.path] { throw MILError.features(path: url.path, reason: why) }
            let bag: PatientBag
            do { bag = try Bags.load(url, patientID: id, windows: o.windows, layouts: layouts, denseTokens: o.tokens == .dense) } catch let e as NonFiniteFeatures {
                nonFinite.append(e); continue
            }
            if dimension == 0 { dimension = bag.dimension }
            guard bag.dimension == dimension else {
                throw MILError.features(path: url.path, reason: "feature width \(bag.dimension) differs from the other patients' \(dimension)")
            }
            bags[id] = bag
        }
        for line in layouts.lines { o.log(line) }
        if !nonFinite.isEmpty {
            guard o.skipNonFinite else {
                throw MILError.features(path: o.features.path, reason: "\(nonFinite.count) patient(s) have NaN / Inf features — "
                    + nonFinite.prefix(5).map(\.description).joined(separator: "; ")
                    + (nonFinite.count > 5 ? "; …" : "") + "; re-extract them, or pass --skip-nonfinite to exclude them")
            }
            let dropped = Set(nonFinite.map(\.patientID))
            let keep = cohort.patientIDs.indices.filter { !dropped.contains(cohort.patientIDs[$0]) }
            cohort = CohortLabels(task: task, patientIDs: keep.map { cohort.patientIDs[$0] }, labels: keep.map { cohort.labels[$0] })
            for e in nonFinite {
                let w = "patient '\(e.patientID)' excluded (--skip-nonfinite): \(e.description)"
                warnings.append(w); o.log("warning: \(w)")
                report.issues.append(CohortIssue(severity: .warning, kind: .missingFeatures, message: w))
            }
            guard cohort.count >= o.folds else {
                throw MILError.options("\(cohort.count) patient(s) left after excluding \(dropped.count) with NaN / Inf features; \(o.folds) folds need at least \(o.folds)")
            }
        }
        // Feature files of two extractions (encoders or weights, or another tool's files among
        // Axial's) are never mixed without a word.
        var makers: [String: [String]] = [:]
        for id in cohort.patientIDs {
            makers[bags[id]!.provenance, default: []].append(FeatureStore.fileName(patientID: id))
        }
        if makers.count > 1 {
            let groups = makers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.count) file(s), e.g. \($0.value.prefix(3).joined(separator: ", "))" }
            throw MILError.features(path: o.features.path, reason: "feature files made by \(makers.count) different extractions — \(groups.joined(separator: "; ")); use one encoder's files per crossval")
        }

        // Stale outputs: a rerun continues only with the inputs recorded in run.json.
        let record = RunRecord(o, task: task, cohort: cohort, features: Array(Set(makers.keys)))
        if try RunRecord.checkOrWrite(record, out: o.out) { o.log("crossval: \(o.out.path) holds a run with the same inputs (run.json): continuing") }
        try AtomicFile.write(Data(report.description.utf8), to: o.out.appendingPathComponent("cohort_report.txt"))
        try AtomicFile.write(Data(taskYAML.utf8), to: o.out.appendingPathComponent("task.yaml"))

        // 2. Splits (reused when present).
        let (splits, reused, splitWarnings) = try Splitter.loadOrCreate(at: o.out.appendingPathComponent("splits.json"), cohort: cohort,
                                                                       folds: o.folds, seed: o.seed, validationFraction: o.validationFraction)
        warnings += splitWarnings
        for w in splitWarnings { o.log("warning: \(w)") }
        if let k = o.onlyFold, !(0..<splits.folds.count).contains(k) {
            throw MILError.options("--fold \(k) is outside 0..<\(splits.folds.count) (the folds of \(o.out.appendingPathComponent("splits.json").path))")
        }
        o.log("crossval: \(task.name) (\(task.kind.rawValue), \(task.classes.count) class(es)), \(cohort.count) patients, \(o.folds) folds (\(splits.method)\(reused ? ", splits.json reused" : "")), head \(o.head.rawValue)")

        // 3. Key slices.
        let keySlices = try o.keySlices.map(Bags.readKeySlices) ?? [:]
        let labelOf = Dictionary(uniqueKeysWithValues: zip(cohort.patientIDs, cohort.labels))
        let tokensPerSlice = bags.values.first?.tokens ?? 1
        var config = HeadConfig(kind: o.head, inputDimension: dimension / tokensPerSlice, classes: task.classes.count)
        if o.tokens == .dense { config.tokensPerInstance = tokensPerSlice }
        if let h = o.hidden { config.hidden = h }
        if let a = o.attentionHidden { config.attentionHidden = a }
        if let s = o.seeds { config.seeds = s }
        if let h = o.heads { config.heads = h }
        var embeddings: Tensor? = nil
        var textTower: TextTowerRecord? = nil
        if o.head == .pspg {
            if let kind = o.textEncoder {
                guard o.classEmbeddings == nil else { throw MILError.options("give either --class-embeddings or --text-encoder, not both") }
                guard let weights = o.textWeights else { throw MILError.options("--text-encoder \(kind.rawValue) needs --text-weights <open_clip .safetensors>") }
                let encoder = try ClassNameEncoder.load(kind, weights: weights, vocabulary: o.textVocabulary)
                textTower = try TextTowerRecord(encoder: kind, weights: weights, vocabulary: o.textVocabulary, template: o.promptTemplate)
                embeddings = ClassEmbeddings.encode(task: task, encoder: encoder, template: o.promptTemplate)
                o.log("PsPG class embeddings: \(kind.rawValue) text tower, prompt '\(o.promptTemplate)', [\(task.classes.count), \(encoder.embedDimensions)]")
            } else {
                embeddings = try ClassEmbeddings.load(task: task, file: o.classEmbeddings, dimension: config.embeddingDimension)
            }
            config.embeddingDimension = embeddings!.shape[1]
        }
        try config.validate()

        var trained: [Int] = [], skipped: [Int] = []
        // One progress bar for the stage (epochs of all folds; early stops shrink the total); log
        // lines are printed around it. Folds are named by their folder, fold-0 … fold-(K−1), everywhere.
        let progress = Progress(label: "crossval \(o.head.rawValue)", total: (o.onlyFold == nil ? splits.folds.count : 1) * o.epochs, unit: "epochs", style: o.progress)
        defer { progress.finish() }
        var lo = o
        lo.log = { line in progress.interrupt { o.log(line) } }
        let range = "folds 0–\(splits.folds.count - 1)"
        for fold in splits.folds where o.onlyFold.map({ $0 == fold.fold }) ?? true {
            let dir = o.out.appendingPathComponent("fold-\(fold.fold)")
            let done = ["patient_preds.csv", "model.safetensors"].allSatisfy { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }
            if done {
                progress.addTotal(-o.epochs)
                lo.log("fold-\(fold.fold) (\(range)): done already, skipped")
                skipped.append(fold.fold); continue
            }
            try AtomicFile.createFolder(dir)
            let foldSeed = o.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(fold.fold + 1) &* 0xBF58_476D_1CE4_E5B9
            let head = try Heads.make(config, seed: foldSeed, classEmbeddings: embeddings)
            let trainBags = fold.train.map { bags[$0]! }, trainLabels = fold.train.map { labelOf[$0]! }
            let validBags = fold.valid.map { bags[$0]! }, validLabels = fold.valid.map { labelOf[$0]! }
            let loss = LossFunction(task: task, head: o.head, trainLabels: trainLabels, pairWeight: o.pairLossWeight)
            let standardizer = o.standardize ? Standardizer(fitting: trainBags) : nil
            let history = try train(head, loss: loss, task: task, train: (trainBags, trainLabels), valid: (validBags, validLabels),
                                    options: lo, seed: foldSeed, keySlices: keySlices, standardizer: standardizer,
                                    fold: fold.fold, totalFolds: splits.folds.count, progress: progress)
            let model = MILModel(head: head, task: task, taskYAML: taskYAML, windows: o.windows, maxBag: o.maxBag,
                                 standardizer: standardizer, url: nil, textTower: textTower)
            try writeModel(model, to: dir.appendingPathComponent("model.safetensors"),
                           extra: ["fold": "\(fold.fold)", "best_epoch": "\(history.bestEpoch)", "seed": "\(o.seed)", "splits_seed": "\(splits.seed)"])
            try writeHistory(history, fold: fold.fold, to: dir)
            let testBags = fold.test.map { bags[$0]! }
            let preds = predict([model], bags: testBags, keySlices: keySlices, seed: o.seed, intervalResamples: o.intervalResamples)
            try writePredictions(preds, task: task, labels: fold.test.map { labelOf[$0]! }, to: dir, intervalResamples: o.intervalResamples)
            let bestRow = history.rows.first { $0.epoch == history.bestEpoch }
            func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
            lo.log("fold-\(fold.fold) (\(range)): \(history.rows.count) epoch(s), best \(history.bestEpoch) (validation AUROC \(f(bestRow?.auroc)), loss \(f(bestRow?.valid))), \(fold.test.count) test patients → fold-\(fold.fold)/")
            trained.append(fold.fold)
        }
        return CrossValResult(task: task, splits: splits, foldsTrained: trained, foldsSkipped: skipped, warnings: warnings)
    }

    /// What `merge` found.
    public struct MergeResult: Sendable {
        public var folds: Int
        public var patients: Int
        public var text: String { "crossval: all \(folds) folds complete, \(patients) out-of-fold patients" }
    }

    /// Gathers the folds of a crossval run made fold by fold (`--fold k` jobs): every fold of
    /// `<out>/splits.json` must have `model.safetensors` and `patient_preds.csv`, its model must
    /// have been trained for that fold with the splits' seed, and its predictions must cover
    /// exactly the fold's test patients. Missing or inconsistent folds are errors naming them
    /// (rerun those with `--fold k`); nothing is written — a complete folder is what one full run gives.
    public static func merge(out: URL) throws -> MergeResult {
        let splitsURL = out.appendingPathComponent("splits.json")
        guard FileManager.default.fileExists(atPath: splitsURL.path) else {
            throw MILError.options("\(splitsURL.path) does not exist: run the fold jobs (`axial crossval … --fold k`) first")
        }
        let splits = try Splitter.read(splitsURL)
        var missing: [Int] = [], patients = 0
        for fold in splits.folds {
            let dir = out.appendingPathComponent("fold-\(fold.fold)")
            let modelURL = dir.appendingPathComponent("model.safetensors"), predsURL = dir.appendingPathComponent("patient_preds.csv")
            guard FileManager.default.fileExists(atPath: modelURL.path), FileManager.default.fileExists(atPath: predsURL.path) else {
                missing.append(fold.fold); continue
            }
            let meta = try SafeTensors.read(modelURL).metadata
            if meta["fold"] != "\(fold.fold)" || meta["splits_seed"] != "\(splits.seed)" {
                throw MILError.features(path: modelURL.path, reason: "was trained for fold \(meta["fold"] ?? "?") with splits seed \(meta["splits_seed"] ?? "?"), splits.json has fold \(fold.fold) with seed \(splits.seed); rerun `axial crossval … --fold \(fold.fold)`")
            }
            let ids = try CSVTable.read(predsURL).column("patient_id", path: predsURL.path)
            if ids.sorted() != fold.test.sorted() {
                throw MILError.features(path: predsURL.path, reason: "lists \(ids.count) patients, fold \(fold.fold) of splits.json has \(fold.test.count) other or different test patients; rerun `axial crossval … --fold \(fold.fold)`")
            }
            patients += ids.count
        }
        if !missing.isEmpty {
            throw MILError.options("fold(s) \(missing.map(String.init).joined(separator: ", ")) of \(splits.folds.count) not finished in \(out.path) (no model.safetensors / patient_preds.csv); run `axial crossval … --fold k` for each")
        }
        return MergeResult(folds: splits.folds.count, patients: patients)
    }

    /// Task spec and its YAML text (copied to the output as task.yaml).
    public static func loadTask(_ nameOrPath: String, directories: [URL]) throws -> (TaskSpec, String) {
        let url = try TaskSpec.locate(nameOrPath, directories: directories)
        let spec = try TaskSpec.load(url.path, directories: [])
        return (spec, try String(contentsOf: url, encoding: .utf8))
    }

    public static func loadTask(_ nameOrPath: String, tasksDirectory: URL) throws -> (TaskSpec, String) {
        try loadTask(nameOrPath, directories: [tasksDirectory])
    }

    // MARK: Training

    /// The task's loss: BCE-with-logits with pos_weight (binary / multi-label), cross-entropy with
    /// inverse-frequency class weights (multi-class), PsPG's ASL + margin (+ pair) for the PsPG head.
    public struct LossFunction: Sendable {
        public var task: TaskSpec
        public var head: HeadKind
        public var posWeight: [Float]
        public var classWeight: [Float]
        public var pairWeight: Float

        public init(task: TaskSpec, head: HeadKind, trainLabels: [[Int]], pairWeight: Float = 0) {
            self.task = task; self.head = head; self.pairWeight = pairWeight
            let c = task.classes.count
            posWeight = HeadLosses.posWeight(trainLabels, classes: c)
            classWeight = HeadLosses.classWeights(trainLabels.map { $0.firstIndex(of: 1) ?? -1 }, classes: c)
        }

        public func callAsFunction(_ out: HeadOutput, labels: [[Int]]) -> Tensor {
            let c = task.classes.count
            if task.kind == .multiclass {
                return HeadLosses.crossEntropy(out.logits, classIndex: labels.map { $0.firstIndex(of: 1) ?? -1 }, weight: classWeight)
            }
            let y = Tensor(shape: [labels.count, c], scalars: labels.flatMap { $0.map(Float.init) })
            if head == .pspg { return HeadLosses.pspg(out, targets: y, pairWeight: pairWeight) }
            return HeadLosses.bceWithLogits(out.logits, targets: y, posWeight: posWeight)
        }
    }

    public struct History: Sendable {
        public var rows: [(epoch: Int, train: Double, valid: Double?, auroc: Double?, seconds: Double)] = []
        public var bestEpoch = 0
    }

    static func train(_ head: MILHead, loss: LossFunction, task: TaskSpec, train: ([PatientBag], [[Int]]), valid: ([PatientBag], [[Int]]),
                      options o: CrossValOptions, seed: UInt64, keySlices: [String: Set<Int>], standardizer: Standardizer?,
                      fold: Int, totalFolds: Int, progress: Progress? = nil) throws -> History {
        let adam = Adam(head.parameters(), lr: Double(o.learningRate), weightDecay: Double(o.weightDecay))
        var history = History()
        // Model selection on the inner validation split: macro AUROC first, the validation loss
        // deciding between epochs whose AUROC is within `tolerance` of the best seen — two discordant
        // patient pairs of the smallest class (at least 0.02): on a split of a dozen patients one
        // swapped pair moves the AUROC by ~0.03 and a chance spike must not freeze the model at a
        // barely trained epoch. Without a validation split: the training loss.
        let tolerance = aurocTolerance(valid.1, classes: task.classes.count)
        var best: (auroc: Double, loss: Double) = (-.infinity, .infinity), peakAUROC = -Double.infinity
        var bestState = head.stateDictCopy(), sinceBest = 0
        let n = train.0.count
        for epoch in 1...o.epochs {
            let t0 = Date()
            var rng = RandomGenerator(seed: combineSeeds(seed, UInt64(epoch)))
            let order = rng.permutation(n)
            var total = 0.0, seen = 0
            for start in stride(from: 0, to: n, by: o.batchSize) {
                let idx = Array(order[start..<min(n, start + o.batchSize)])
                let sampled = idx.map { i -> PatientBag in
                    let bag = train.0[i]
                    return bag.subset(Bags.sampleRows(sliceIndex: bag.sliceIndex, maxSize: o.maxBag, keySlices: keySlices[bag.patientID] ?? [], rng: &rng))
                }
                let (raw, mask) = Bags.batch(sampled)
                let x = standardizer.map { $0.apply(raw) } ?? raw
                adam.zeroGrad()
                let out = head.forward(x, mask: mask, training: true, rng: &rng)
                let l = loss(out, labels: idx.map { train.1[$0] })
                l.backward()
                adam.step()
                total += Double(l.item()) * Double(idx.count); seen += idx.count
            }
            let trainLoss = total / Double(max(seen, 1))
            var validLoss: Double? = nil, auroc: Double? = nil
            if !valid.0.isEmpty {
                let (l, scores) = evaluate(head, loss: loss, bags: valid.0, labels: valid.1, maxBag: o.maxBag, keySlices: keySlices, seed: seed,
                                           batch: o.batchSize, standardizer: standardizer)
                validLoss = l
                let data = LabelScores(classes: task.classes.map(\.name), patientIDs: valid.0.map(\.patientID), labels: valid.1, scores: scores)
                auroc = Metrics.summarize(data).macroAUROC
            }
            let current = (auroc: auroc ?? -.infinity, loss: validLoss ?? trainLoss)
            let improved = current.auroc > peakAUROC + tolerance
                || (current.auroc >= peakAUROC - tolerance && current.loss < best.loss - 1e-7)
                || (auroc == nil && current.loss < best.loss - 1e-7)
            peakAUROC = max(peakAUROC, current.auroc)
            if improved { best = current; bestState = head.stateDictCopy(); history.bestEpoch = epoch; sinceBest = 0 } else { sinceBest += 1 }
            let secs = Date().timeIntervalSince(t0)
            history.rows.append((epoch, trainLoss, validLoss, auroc, secs))
            func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
            progress?.detail = "fold-\(fold) epoch \(epoch): train \(f(trainLoss)) valid \(f(validLoss)) AUROC \(f(auroc))"
            progress?.advance()
            if o.verbose {
                o.log("fold-\(fold) (folds 0–\(totalFolds - 1)) epoch \(epoch)/\(o.epochs): train \(f(trainLoss)) valid \(f(validLoss)) auroc \(f(auroc))\(improved ? " *" : "") (\(String(format: "%.2f", secs)) s)")
            }
            if sinceBest >= o.patience {
                progress?.addTotal(-(o.epochs - epoch))
                if o.verbose { o.log("fold-\(fold) (folds 0–\(totalFolds - 1)): early stop after epoch \(epoch) (best \(history.bestEpoch))") }
                break
            }
        }
        try head.loadStateDict(bestState, source: "best epoch state")
        return history
    }

    /// The AUROC difference treated as a tie in model selection: two discordant pairs of the class
    /// with the fewest (positive, negative) pairs in the validation labels, at least 0.02.
    static func aurocTolerance(_ labels: [[Int]], classes: Int) -> Double {
        var pairs = Int.max
        for c in 0..<classes {
            let pos = labels.filter { $0[c] == 1 }.count, neg = labels.filter { $0[c] == 0 }.count
            if pos > 0 && neg > 0 { pairs = min(pairs, pos * neg) }
        }
        return pairs == Int.max ? 0.02 : max(0.02, 2 / Double(pairs))
    }

    /// Mean loss and probabilities on bags (no dropout, deterministic sampling).
    static func evaluate(_ head: MILHead, loss: LossFunction, bags: [PatientBag], labels: [[Int]], maxBag: Int?, keySlices: [String: Set<Int>],
                         seed: UInt64, batch: Int, standardizer: Standardizer?) -> (Double, [[Double]]) {
        var total = 0.0, scores: [[Double]] = []
        withNoGrad {
            for start in stride(from: 0, to: bags.count, by: batch) {
                let range = start..<min(bags.count, start + batch)
                let sampled = range.map { i in inferenceBag(bags[i], maxBag: maxBag, keySlices: keySlices, seed: seed) }
                let (x, mask) = Bags.batch(sampled)
                let out = head.forward(standardizer.map { $0.apply(x) } ?? x, mask: mask)
                total += Double(loss(out, labels: Array(labels[range])).item()) * Double(range.count)
                scores += probabilities(out.logits, kind: loss.task.kind)
            }
        }
        return (total / Double(max(bags.count, 1)), scores)
    }

    /// The rows used at inference: all, or a deterministic key-slice-aware sample per patient.
    static func inferenceBag(_ bag: PatientBag, maxBag: Int?, keySlices: [String: Set<Int>], seed: UInt64) -> PatientBag {
        guard let m = maxBag, bag.count > m else { return bag }
        var rng = RandomGenerator(seed: combineSeeds(seed, fnv1a64(bag.patientID)))
        return bag.subset(Bags.sampleRows(sliceIndex: bag.sliceIndex, maxSize: m, keySlices: keySlices[bag.patientID] ?? [], rng: &rng))
    }

    /// Sigmoid (binary / multi-label) or softmax (multi-class) of logits [B, C].
    static func probabilities(_ logits: Tensor, kind: TaskKind) -> [[Double]] {
        let p = kind == .multiclass ? softmax(logits, axis: 1) : sigmoid(logits)
        let c = logits.shape[1], s = p.scalars
        return (0..<logits.shape[0]).map { b in (0..<c).map { Double(s[b * c + $0]) } }
    }

    // MARK: Prediction (shared with deploy)

    public struct PatientPrediction: Sendable {
        public var bag: PatientBag
        public var scores: [Double]
        public var attention: [Float]
        /// Per class: 95% instance-bootstrap interval of the score (`PredictionDetails`).
        public var interval: [(Double, Double)] = []
    }

    /// Mean ensemble of `models` (probabilities and attention averaged) on each bag.
    public static func predict(_ models: [MILModel], bags: [PatientBag], keySlices: [String: Set<Int>], seed: UInt64, batch: Int = 16,
                               intervalResamples: Int = PredictionDetails.resamples) -> [PatientPrediction] {
        var out: [PatientPrediction] = []
        withNoGrad {
            for start in stride(from: 0, to: bags.count, by: batch) {
                let used = bags[start..<min(bags.count, start + batch)].map { inferenceBag($0, maxBag: models[0].maxBag, keySlices: keySlices, seed: seed) }
                let (x, mask) = Bags.batch(used)
                var scores = [[Double]](repeating: [], count: used.count)
                var att = [[Float]](repeating: [], count: used.count)
                for model in models {
                    let o = model.forward(x, mask: mask)
                    let p = probabilities(o.logits, kind: model.task.kind)
                    let a = o.attention.scalars, nmax = x.shape[1]
                    for b in used.indices {
                        scores[b] = scores[b].isEmpty ? p[b] : zip(scores[b], p[b]).map(+)
                        let row = Array(a[(b * nmax)..<(b * nmax + used[b].count)])
                        att[b] = att[b].isEmpty ? row : zip(att[b], row).map(+)
                    }
                }
                let k = Double(models.count)
                for b in used.indices {
                    out.append(PatientPrediction(bag: used[b], scores: scores[b].map { $0 / k }, attention: att[b].map { $0 / Float(k) },
                                                 interval: PredictionDetails.interval(models, bag: used[b], resamples: intervalResamples, seed: seed)))
                }
            }
        }
        return out
    }

    /// Label cell as written to patient_preds.csv: 1 / 0 / blank, or the class name (multi-class).
    static func labelCells(_ labels: [Int]?, task: TaskSpec) -> [String] {
        guard let labels else { return task.labelColumns.map { _ in "" } }
        if task.kind == .multiclass { return [labels.firstIndex(of: 1).map { task.classes[$0].name } ?? ""] }
        return labels.map { $0 == 1 ? "1" : $0 == 0 ? "0" : "" }
    }

    /// Writes patient_preds.csv and slice_attention.csv (atomically).
    public static func writePredictions(_ preds: [PatientPrediction], task: TaskSpec, labels: [[Int]?], to dir: URL,
                                        intervalResamples: Int = PredictionDetails.resamples) throws {
        var pp = CSVTable(header: ["patient_id"] + task.labelColumns + task.scoreColumns)
        var sa = CSVTable(header: ["patient_id", "slice_index", "z_mm", "window", "attention"])
        for (p, l) in zip(preds, labels) {
            pp.rows.append([p.bag.patientID] + labelCells(l, task: task) + p.scores.map { String(format: "%.8g", $0) })
            for i in 0..<p.bag.count {
                sa.rows.append([p.bag.patientID, "\(p.bag.sliceIndex[i])", String(format: "%.3f", p.bag.zMM[i]), p.bag.window[i], String(format: "%.6g", p.attention[i])])
            }
        }
        try sa.write(to: dir.appendingPathComponent("slice_attention.csv"))
        try PredictionDetails.write(preds, task: task, resamples: intervalResamples, to: dir)
        try pp.write(to: dir.appendingPathComponent("patient_preds.csv"))
    }

    static func writeHistory(_ h: History, fold: Int, to dir: URL) throws {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        var t = CSVTable(header: ["epoch", "train_loss", "valid_loss", "valid_macro_auroc", "seconds", "best"])
        for r in h.rows { t.rows.append(["\(r.epoch)", f(r.train), f(r.valid), f(r.auroc), String(format: "%.3f", r.seconds), r.epoch == h.bestEpoch ? "1" : "0"]) }
        try t.write(to: dir.appendingPathComponent("training.csv"))
        var plot = SVGPlot(title: "Fold \(fold) loss", xLabel: "epoch", yLabel: "loss")
        let epochs = h.rows.map { Double($0.epoch) }
        plot.add(x: epochs, y: h.rows.map(\.train), label: "train")
        let v = h.rows.filter { $0.valid != nil }
        if !v.isEmpty { plot.add(x: v.map { Double($0.epoch) }, y: v.map { $0.valid! }, label: "validation") }
        plot.markers = [(Double(h.bestEpoch), "best")]
        try plot.write(to: dir.appendingPathComponent("loss_curve.svg"))
    }

    // MARK: Model files

    public static func writeModel(_ m: MILModel, to url: URL, extra: [String: String] = [:]) throws {
        var tensors = m.head.stateDict()
        if let p = m.head as? PsPGHead { tensors["buffer.class_embeddings"] = p.classEmbeddings }
        if let s = m.standardizer {
            tensors["standardize.mean"] = Tensor(shape: [s.mean.count], scalars: s.mean)
            tensors["standardize.std"] = Tensor(shape: [s.std.count], scalars: s.std)
        }
        var meta = extra
        meta["format"] = modelFormat
        meta["head_config"] = m.head.config.json
        meta["task_yaml"] = m.taskYAML
        meta["windows"] = m.windows?.joined(separator: "\n") ?? ""
        meta["max_bag"] = m.maxBag.map(String.init) ?? ""
        meta["axial_version"] = AxialStore.axialVersion
        if let t = m.textTower { meta[TextTowerRecord.metadataKey] = t.json }
        try SafeTensors.write(tensors, metadata: meta, to: url)   // errors: "cannot write <path>: <reason>"
    }

    public static func readModel(_ url: URL) throws -> MILModel {
        let tensors: [String: Tensor], meta: [String: String]
        do { (tensors, meta) = try SafeTensors.readWeights(url) } catch { throw MILError.model(path: url.path, reason: "cannot read: \(error)") }
        guard meta["format"] == modelFormat, let cfgText = meta["head_config"], let yaml = meta["task_yaml"] else {
            throw MILError.model(path: url.path, reason: "not an Axial MIL model (metadata 'format' = \(meta["format"] ?? "none"), expected \(modelFormat))")
        }
        do {
            let config = try HeadConfig.fromJSON(cfgText)
            let task = try TaskSpec.parse(yaml, path: url.path + ":task_yaml")
            var state = tensors
            let emb = state.removeValue(forKey: "buffer.class_embeddings")
            let mean = state.removeValue(forKey: "standardize.mean"), std = state.removeValue(forKey: "standardize.std")
            var standardizer: Standardizer? = nil
            if let mean, let std {
                guard mean.count == config.inputDimension, std.count == config.inputDimension, std.scalars.allSatisfy({ $0 > 0 && $0.isFinite }),
                      mean.scalars.allSatisfy(\.isFinite) else {
                    throw MILError.model(path: url.path, reason: "standardize.mean / standardize.std must be \(config.inputDimension) finite values (std > 0)")
                }
                standardizer = Standardizer(mean: mean.scalars, std: std.scalars)
            } else if (mean == nil) != (std == nil) {
                throw MILError.model(path: url.path, reason: "standardize.mean and standardize.std come together")
            }
            let head = try Heads.make(config, seed: 0, classEmbeddings: emb)
            try head.loadStateDict(state, source: url.path)
            let windows = meta["windows"].flatMap { $0.isEmpty ? nil : $0.components(separatedBy: "\n") }
            var textTower: TextTowerRecord? = nil
            if let t = meta[TextTowerRecord.metadataKey] {
                do { textTower = try JSONDecoder().decode(TextTowerRecord.self, from: Data(t.utf8)) } catch {
                    throw MILError.model(path: url.path, reason: "metadata '\(TextTowerRecord.metadataKey)' is not a text tower record: \(error)")
                }
            }
            return MILModel(head: head, task: task, taskYAML: yaml, windows: windows, maxBag: meta["max_bag"].flatMap { Int($0) },
                            standardizer: standardizer, url: url, textTower: textTower)
        } catch let e as MILError { throw e } catch {
            throw MILError.model(path: url.path, reason: "\(error)")
        }
    }
}

/// Class-name embeddings for the PsPG head.
public enum ClassEmbeddings {
    /// The task's class display names through `encoder` with `template` ("… {name} …"): [C, E].
    public static func encode(task: TaskSpec, encoder: ClassNameEncoder, template: String = ClassNameEncoder.defaultTemplate) -> Tensor {
        encoder.encodeClassNames(task.classes.map(\.name), template: template)
    }

    /// From a safetensors file (a tensor per class name or id, or `embeddings` [C, E]); without a
    /// file, fixed pseudo-random unit vectors seeded by each class name (stand-ins until a text
    /// tower provides real ones; they identify classes but carry no meaning, so no zero-shot).
    public static func load(task: TaskSpec, file: URL?, dimension: Int) throws -> Tensor {
        let c = task.classes.count
        guard let file else {
            var rows: [Float] = []
            for cls in task.classes {
                var g = RandomGenerator(seed: fnv1a64(cls.name))
                let v = (0..<dimension).map { _ in g.normal() }
                let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
                rows += v.map { $0 / norm }
            }
            return Tensor(shape: [c, dimension], scalars: rows)
        }
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors.read(file).tensors } catch { throw MILError.model(path: file.path, reason: "cannot read class embeddings: \(error)") }
        if let all = tensors["embeddings"] {
            guard all.rank == 2, all.shape[0] == c else { throw MILError.model(path: file.path, reason: "'embeddings' is \(all.shape), expected [\(c), E]") }
            return all.detached()
        }
        let rows = try task.classes.map { cls -> Tensor in
            guard let t = tensors[cls.name] ?? tensors[cls.id] else {
                throw MILError.model(path: file.path, reason: "no embedding for class '\(cls.name)' (keys: \(tensors.keys.sorted().joined(separator: ", ")))")
            }
            return t.reshaped([t.count])
        }
        guard Set(rows.map(\.count)).count == 1 else { throw MILError.model(path: file.path, reason: "class embeddings differ in length") }
        return stack(rows, axis: 0).detached()
    }
}
