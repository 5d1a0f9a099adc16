import AxialEval
import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

// `axial classify train | test | predict`: PsPG on 2D images (chest X-rays, single slices).
//
// train: jsonl + class names → per epoch: shuffled batches, each image → PsPG augmentation (two of
//   crop / rotate / jitter / affine + h-flip) → frozen RN dense tokens → PsPGModel → 0.1·ASL +
//   0.07·margin (or + pair loss) → SGD Nesterov (momentum 0.9, wd 0.05 on weights only) with a
//   per-step linear warm-up + cosine schedule (→ min lr), optional EMA of the trainable weights;
//   then optional validation metrics. Files in --out:
//     checkpoint.safetensors  after every epoch (model [+ EMA], optimizer, step, epoch, RNG): --resume
//                             continues with exactly the numbers of an uninterrupted run
//     training.csv            epoch, step, loss, lr, val macro/micro AUC, mAP, macro/micro F1, MCC
//     model.safetensors       the final trainable weights (EMA when on) + spec + class names
// test: model + jsonl with labels → metrics.json, predictions.csv.
// predict: model + jsonl (labels optional) → predictions.csv; --classes FILE scores other class
//   names (zero-shot: names never seen in training, encoded by the frozen text tower).
//
// Sample order and each image's augmentation come from generators derived from (seed, epoch,
// index), dropout from the checkpointed default generator: a resumed run is bit-identical.

public enum Classify {
    public struct TrainOptions: Sendable {
        public var train: String, classes: String, out: String
        public var val: String?
        public var backbone = "tiny", weights: String?
        public var decoder: PsPGDecoderKind = .gru
        public var hidden: Int?, promptSteps: Int?
        public var namePrefix = false, pairLoss = false
        /// Initial temperature (logit_scale = log 1/T, trained); the reference's 0.07.
        public var temperature = 0.07
        public var epochs = 50, batch = 64
        public var lr = 1e-4, minLR = 5e-6, weightDecay = 0.05, momentum = 0.9
        public var warmupEpochs = 5
        public var ema = false, emaDecay: Float = 0.9998
        public var seed: UInt64 = 0
        public var augment = true
        public var resume = false
        public var stopAfterEpochs: Int?
        public var log: (@Sendable (String) -> Void)?
        public init(train: String, classes: String, out: String) { self.train = train; self.classes = classes; self.out = out }
    }

    public struct EpochRow: Sendable, Equatable {
        public var epoch: Int, step: Int
        public var loss: Double, lr: Double
        public var metrics: MultiLabelMetrics?
    }

    public struct TrainResult: Sendable {
        public var rows: [EpochRow]
        public var modelPath: String
        public var finished: Bool
    }

    /// The trainable model and its EMA copy, as one module for checkpoints (`model.*`, `ema.*`).
    final class CheckpointState: Module {
        let model: PsPGModel
        let shadow: PsPGModel?
        init(model: PsPGModel, shadow: PsPGModel?) { self.model = model; self.shadow = shadow; super.init() }
        override func namedChildren() -> [(String, ModuleChild)] {
            var c: [(String, ModuleChild)] = [("model", .module(model))]
            if let shadow { c.append(("ema", .module(shadow))) }
            return c
        }
    }

    static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var g = RandomGenerator(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ (c &* 0xC2B2_AE3D_27D4_EB4F))
        return g.next()
    }

    /// A batch of images → [B, 3, S, S] (augmented with per-image generators when `augment`).
    static func batchTensor(_ records: [ClassifyRecord], backbone: ClassifyBackbone, augment: PsPGAugmentConfig?,
                            seeds: [UInt64]) throws -> Tensor {
        let s = backbone.spec.imageSize, per = 3 * s * s
        var data = [Float](repeating: 0, count: records.count * per)
        for (i, r) in records.enumerated() {
            var img = try ClassifyData.image(r)
            if let augment {
                var g = RandomGenerator(seed: seeds[i])
                img = PsPGAugment.view(img, config: augment, generator: &g).0
            }
            let px = backbone.pixels(img)
            data.replaceSubrange((i * per)..<((i + 1) * per), with: px)
        }
        return Tensor(shape: [records.count, 3, s, s], scalars: data)
    }

    static func labelTensor(_ records: [ClassifyRecord]) -> Tensor {
        let c = records[0].labels.count
        return Tensor(shape: [records.count, c], scalars: records.flatMap { $0.labels.map(Float.init) })
    }

    /// P(positive) per record and class, eval mode, no augmentation.
    public static func scores(_ model: PsPGModel, backbone: ClassifyBackbone, records: [ClassifyRecord], batch: Int) throws -> [[Double]] {
        let wasTraining = model.isTraining
        model.eval(); defer { model.train(wasTraining) }
        var out: [[Double]] = []
        for start in stride(from: 0, to: records.count, by: max(1, batch)) {
            let part = Array(records[start..<min(records.count, start + batch)])
            let x = try batchTensor(part, backbone: backbone, augment: nil, seeds: [])
            let p = withNoGrad { model.forward(tokens: backbone.tokens(x)).probabilities }
            let c = p.shape[1], v = p.scalars
            for i in 0..<part.count { out.append((0..<c).map { Double(v[i * c + $0]) }) }
        }
        return out
    }

    static func makeModel(_ spec: ClassifyModelSpec, backbone: ClassifyBackbone, classes: PsPGClassSet, seed: UInt64) throws -> PsPGModel {
        var g = RandomGenerator(seed: seed)
        return try PsPGModel(spec.pspg, text: backbone.text, classes: classes, generator: &g)
    }

    // MARK: train

    public static func train(_ o: TrainOptions) throws -> TrainResult {
        guard o.epochs >= 1, o.batch >= 1 else { throw ClassifyError.badOption("--epochs and --batch must be ≥ 1") }
        guard o.lr > 0, o.minLR >= 0, o.weightDecay >= 0, o.warmupEpochs >= 0 else {
            throw ClassifyError.badOption("--lr must be > 0; --min-lr, --weight-decay, --warmup-epochs ≥ 0")
        }
        let names = try ClassifyData.loadClasses(o.classes)
        let records = try ClassifyData.load(o.train, classes: names.count)
        let valRecords = try o.val.map { try ClassifyData.load($0, classes: names.count) }
        let outDir = URL(fileURLWithPath: o.out)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let ckptURL = outDir.appendingPathComponent("checkpoint.safetensors")

        var spec = try ClassifyModelSpec.make(backbone: o.backbone, weights: o.weights, seed: o.seed, decoder: o.decoder,
                                              hidden: o.hidden, promptSteps: o.promptSteps, namePrefix: o.namePrefix, pairLoss: o.pairLoss,
                                              temperature: o.temperature)
        var savedMeta: [String: String] = [:]
        if o.resume {
            guard FileManager.default.fileExists(atPath: ckptURL.path) else {
                throw ClassifyError.checkpoint(path: ckptURL.path, reason: "--resume: no checkpoint")
            }
            savedMeta = try SafeTensors.read(ckptURL).metadata
            guard let s = savedMeta["config"] else { throw ClassifyError.checkpoint(path: ckptURL.path, reason: "no model spec") }
            spec = try ClassifyModelSpec.parse(s, source: ckptURL.path)
            if spec.pspg.generator.decoder != o.decoder {
                throw ClassifyError.checkpoint(path: ckptURL.path, reason: "was trained with --decoder \(spec.pspg.generator.decoder.rawValue), not \(o.decoder.rawValue)")
            }
            if savedMeta["classes"] != jsonString(names) {
                throw ClassifyError.checkpoint(path: ckptURL.path, reason: "was trained with other class names than \(o.classes)")
            }
        }
        let backbone = try ClassifyBackbone(spec, weightsOverride: o.weights)
        let classSet = try backbone.classSet(names)

        return try DefaultGenerator.withScopedGenerator(seed: o.seed) {
            let model = try makeModel(spec, backbone: backbone, classes: classSet, seed: o.seed &+ 1)
            let shadow = o.ema ? try makeModel(spec, backbone: backbone, classes: classSet, seed: o.seed &+ 1) : nil
            let ema = try shadow.map { try ExponentialMovingAverage(shadow: $0, copyingFrom: model, decay: o.emaDecay) }
            let sgd = SGD(model.parameterGroups(lr: o.lr, weightDecay: o.weightDecay), momentum: o.momentum,
                          weightDecay: o.weightDecay, nesterov: true)
            let perEpoch = (records.count + o.batch - 1) / o.batch
            let total = perEpoch * o.epochs
            let schedule = WarmupCosineSchedule(warmupSteps: o.warmupEpochs * perEpoch, totalSteps: total,
                                                minFactor: min(1, o.minLR / o.lr), optimizer: sgd)
            let state = CheckpointState(model: model, shadow: shadow)
            var step = 0, startEpoch = 0
            var rows: [EpochRow] = [], earlier: [String] = []
            let csvURL = outDir.appendingPathComponent("training.csv")
            if o.resume {
                let info = try Checkpoint.load(from: ckptURL, model: state, optimizer: sgd)
                step = info.step
                startEpoch = Int(info.extra["epoch"] ?? "") ?? 0
                earlier = earlierLines(csvURL, before: startEpoch)
            }
            let augment: PsPGAugmentConfig? = o.augment ? PsPGAugmentConfig(size: spec.imageSize) : nil
            var epochsRun = 0
            model.train()
            for epoch in startEpoch..<o.epochs {
                if let stop = o.stopAfterEpochs, epochsRun >= stop { break }
                var shuffle = RandomGenerator(seed: mix(o.seed, UInt64(epoch), 0x5A))
                let order = shuffle.permutation(records.count)
                var lossSum = 0.0, lastLR = 0.0
                for b in 0..<perEpoch {
                    let idx = Array(order[(b * o.batch)..<min(records.count, (b + 1) * o.batch)])
                    let part = idx.map { records[$0] }
                    let x = try batchTensor(part, backbone: backbone, augment: augment,
                                            seeds: idx.map { mix(o.seed, UInt64(epoch), UInt64($0) &+ 1) })
                    schedule.apply(step: step, to: sgd)
                    lastLR = sgd.groups[0].lr
                    let out = model.forward(tokens: backbone.tokens(x), pairs: spec.pspg.pairLoss)
                    let loss = model.loss(out, targets: labelTensor(part))
                    let lv = Double(loss.item())
                    guard lv.isFinite else {
                        throw ClassifyError.badOption("loss is \(lv) at epoch \(epoch + 1), step \(step + 1): lower --lr")
                    }
                    sgd.zeroGrad()
                    loss.backward()
                    sgd.step()
                    ema?.update(from: model)
                    lossSum += lv
                    step += 1
                }
                let evalModel = shadow ?? model
                let metrics = try valRecords.map { v in
                    MultiLabelMetrics.compute(labels: v.map(\.labels), scores: try scores(evalModel, backbone: backbone, records: v, batch: o.batch))
                }
                let row = EpochRow(epoch: epoch, step: step, loss: lossSum / Double(perEpoch), lr: lastLR, metrics: metrics)
                rows.append(row)
                try writeRows(rows, after: earlier, to: csvURL)
                try Checkpoint.save(to: ckptURL, model: state, optimizer: sgd, step: step, config: spec.json(),
                                    extra: ["epoch": String(epoch + 1), "classes": jsonString(names)])
                o.log?(row.text)
                epochsRun += 1
            }
            let finished = startEpoch + epochsRun == o.epochs
            let modelURL = outDir.appendingPathComponent("model.safetensors")
            if finished { try saveModel(shadow ?? model, spec: spec, names: names, to: modelURL) }
            return TrainResult(rows: rows, modelPath: modelURL.path, finished: finished)
        }
    }

    // MARK: model files

    static func jsonString(_ v: [String]) -> String { String(data: try! JSONEncoder().encode(v), encoding: .utf8)! }

    public static func saveModel(_ model: PsPGModel, spec: ClassifyModelSpec, names: [String], to url: URL) throws {
        try SafeTensors.write(model.stateDict(), metadata: ["format": "axial.pspg.v1", "spec": spec.json(), "classes": jsonString(names)], to: url)
    }

    /// Loads a model file; `classes` (names) replaces the trained label set (zero-shot).
    public static func loadModel(_ path: String, weights: String? = nil, classes: [String]? = nil) throws -> (PsPGModel, ClassifyBackbone, [String]) {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path) else { throw ClassifyError.checkpoint(path: path, reason: "no such model file") }
        let (tensors, meta) = try SafeTensors.read(url)
        guard meta["format"] == "axial.pspg.v1", let s = meta["spec"], let c = meta["classes"] else {
            throw ClassifyError.checkpoint(path: path, reason: "not an `axial classify train` model file (metadata format \(meta["format"] ?? "missing"))")
        }
        let spec = try ClassifyModelSpec.parse(s, source: path)
        guard let trained = try? JSONDecoder().decode([String].self, from: Data(c.utf8)) else {
            throw ClassifyError.checkpoint(path: path, reason: "class names are not a JSON list")
        }
        let backbone = try ClassifyBackbone(spec, weightsOverride: weights)
        let names = classes ?? trained
        let model = try makeModel(spec, backbone: backbone, classes: try backbone.classSet(names), seed: 0)
        do { try model.loadStateDict(tensors, strict: true) } catch {
            throw ClassifyError.checkpoint(path: path, reason: "\(error)")
        }
        model.eval()
        return (model, backbone, names)
    }

    // MARK: test / predict

    public static func writePredictions(_ records: [ClassifyRecord], scores: [[Double]], names: [String], to url: URL) throws {
        var lines = [(["id"] + names).map(CSV.escape).joined(separator: ",")]
        for (r, s) in zip(records, scores) {
            lines.append(([CSV.escape(r.id)] + s.map { String(format: "%.6f", $0) }).joined(separator: ","))
        }
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: url)
    }

    /// Metrics of a model on labelled records (written to out/metrics.json and out/predictions.csv).
    public static func test(model path: String, data: String, out: String, weights: String? = nil, classes: String? = nil,
                            batch: Int = 64) throws -> MultiLabelMetrics {
        let names = try classes.map { try ClassifyData.loadClasses($0) }
        let (model, backbone, used) = try loadModel(path, weights: weights, classes: names)
        let records = try ClassifyData.load(data, classes: used.count)
        let s = try scores(model, backbone: backbone, records: records, batch: batch)
        let m = MultiLabelMetrics.compute(labels: records.map(\.labels), scores: s)
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(m), to: dir.appendingPathComponent("metrics.json"))
        try writePredictions(records, scores: s, names: used, to: dir.appendingPathComponent("predictions.csv"))
        return m
    }

    /// P(positive) for every record and class name → out/predictions.csv.
    public static func predict(model path: String, data: String, out: String, weights: String? = nil, classes: String? = nil,
                               batch: Int = 64) throws -> (names: [String], scores: [[Double]]) {
        let names = try classes.map { try ClassifyData.loadClasses($0) }
        let (model, backbone, used) = try loadModel(path, weights: weights, classes: names)
        let records = try ClassifyData.load(data, classes: nil, requireLabels: false)
        let s = try scores(model, backbone: backbone, records: records, batch: batch)
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try writePredictions(records, scores: s, names: used, to: dir.appendingPathComponent("predictions.csv"))
        return (used, s)
    }

    // MARK: training.csv

    static let header = "epoch,step,loss,lr,val_macro_auc,val_micro_auc,val_map,val_macro_f1,val_micro_f1,val_mcc"

    static func writeRows(_ rows: [EpochRow], after earlier: [String], to url: URL) throws {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        var lines = [header] + earlier
        for r in rows {
            let m = r.metrics
            lines.append([String(r.epoch + 1), String(r.step), String(r.loss), String(r.lr), f(m?.macroAUC), f(m?.microAUC),
                          f(m?.meanAveragePrecision), f(m?.macroF1), f(m?.microF1), f(m?.mcc)].joined(separator: ","))
        }
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: url)
    }

    /// The lines an earlier run wrote for epochs before `epoch` (kept verbatim on resume).
    static func earlierLines(_ url: URL, before epoch: Int) -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().map(String.init).filter { line in
            guard let e = Int(line.prefix { $0 != "," }) else { return false }
            return e <= epoch
        }
    }
}

extension Classify.EpochRow {
    public var text: String {
        var s = "epoch \(epoch + 1): loss \(String(format: "%.4f", loss)), lr \(String(format: "%.3g", lr))"
        if let m = metrics {
            s += ", val macro AUC \(m.macroAUC.map { String(format: "%.4f", $0) } ?? "–"), mAP \(m.meanAveragePrecision.map { String(format: "%.4f", $0) } ?? "–")"
        }
        return s
    }
}
