import AxialEval
import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

// `axial anomaly train | test | predict`: MVFA / MLA-LP on a frozen CLIP (AxialModels CLIPAnomaly).
//
// train  --data <Obj>_AD --encoder NAME (--weights F | --random-init) [--shots K] [--prompts learned|templates] --out RUN
//   training images: <data>/train/ when present, else the K normal + K abnormal shots of valid/
//   (×11 augmentation, masks transformed with the images, as MVFA); batch 1, Adam β (0.5, 0.999),
//   adapters lr 1e-4, prompt contexts lr 1e-3; after every epoch the model is scored on valid/
//   (minus the shots) — pixel AUROC + image AUROC with masks, else image AUROC — and the best epoch's
//   weights are kept (never chosen on test/; MVFA/MLA-LP choose on the test set [Q]).
//   RUN/run.json (what the detector is), adapters.safetensors (best epoch; keys seg_adapters.*,
//   det_adapters.*, prompt_learner.*), bank.safetensors (the K normal shots ×11, adapted tokens per
//   level), checkpoint.safetensors (last epoch: weights, Adam state, shuffle RNG; --resume continues
//   bit-identically), training.csv. All writes atomic.
// test   --data <Obj>_AD --run RUN --out DIR: scores.csv (image, label, score, zero_shot_score,
//   few_shot_score), anomaly_maps.h5 (one float32 [H, W] dataset per image at the source PNG's size,
//   named <good|Ungood>-<file>), metrics.csv (image_auroc, pixel_auroc over those files' values),
//   overlays/<name>.png (heat map over the image).
// predict --input DIR_OF_PNGS --run RUN --out DIR: scores.csv (image, score), anomaly_maps.h5, overlays.
//
// Scores: zero-shot = the det-branch score (Σ levels mean abnormal probability); with a bank, the
// final score is 0.5·minmax(zero-shot) + 0.5·minmax(few-shot det score) over the images scored
// together, and the map likewise fuses the seg-branch zero-shot and few-shot maps.

public enum AnomalyError: Error, CustomStringConvertible {
    case badOptions(String)
    case badRun(path: String, reason: String)
    public var description: String {
        switch self {
        case .badOptions(let s): return "anomaly: \(s)"
        case let .badRun(p, r): return "\(p): \(r)"
        }
    }
}

/// What a run is (RUN/run.json).
public struct AnomalyRunInfo: Codable, Sendable, Equatable {
    public var encoder: String
    public var weights: String?
    public var randomInitSeed: UInt64?
    public var text: AnomalyTextMode
    public var object: String
    public var shots: Int
    public var seed: UInt64
    public var epochs: Int
    public var levels: [Int]
    public var bottleneck: Int
}

public enum AnomalyStage {
    public struct TrainOptions: Sendable {
        public var data: String
        public var encoder: String
        public var weights: String?
        public var randomInit = false
        public var shots = 0
        public var seedFile: String?
        public var iterate = 0
        public var text: AnomalyTextMode = .learned
        public var object: String?
        public var epochs = 50
        public var adapterLR = 1e-4
        public var promptLR = 1e-3
        public var seed: UInt64 = 0
        public var out: String
        public var resume = false
        /// Stop after this many epochs of this invocation (resume later).
        public var stopAfter: Int?
        public init(data: String, encoder: String, out: String) { self.data = data; self.encoder = encoder; self.out = out }
    }

    public struct TrainResult: Sendable {
        public var epochsDone: Int
        public var bestEpoch: Int
        public var bestMetric: Double
        public var text: String
    }

    // MARK: detector

    static func makeDetector(_ info: AnomalyRunInfo) throws -> CLIPAnomalyDetector {
        var config = try CLIPAnomalyConfig.forEncoder(info.encoder, text: info.text, object: info.object)
        config.adapters.levels = info.levels
        config.adapters.bottleneck = info.bottleneck
        let clip: CLIPModel
        if let w = info.weights {
            clip = try CLIPModel.load(config.clip, weights: URL(fileURLWithPath: w))
        } else {
            var g = RandomGenerator(seed: info.randomInitSeed ?? 0)
            clip = CLIPModel(config.clip, generator: &g)
        }
        return try CLIPAnomalyDetector(config, clip: clip, seed: info.seed &+ 1)
    }

    /// An object name for the template text from the folder name (`Brain_AD` → MVFA's "Brain").
    static func objectName(_ data: URL) -> String {
        var n = data.standardizedFileURL.lastPathComponent
        if n.hasSuffix("_AD") { n = String(n.dropLast(3)) }
        return AnomalyPrompts.objectNames[n] ?? n.replacingOccurrences(of: "_", with: " ")
    }

    // MARK: samples

    struct Sample { var image: Tensor; var mask: Tensor?; var label: Float }

    static func load(_ images: [AnomalyImage], size: Int, masks: Bool) throws -> [Sample] {
        try images.map { im in
            let (x, w, h) = try AnomalyData.loadImage(im.path, size: size)
            var m: Tensor? = nil
            if masks {
                let raw = try im.maskPath.map { try AnomalyData.loadMask($0, width: w, height: h) } ?? [Float](repeating: 0, count: w * h)
                m = AnomalyData.resizeMask(raw, width: w, height: h, size: size)
            }
            return Sample(image: x, mask: m, label: Float(im.label))
        }
    }

    /// ×11 (FewShotAugment) of each sample; masks go through the same transforms, then > 0.5.
    static func augmented(_ samples: [Sample]) -> [Sample] {
        var out: [Sample] = []
        for s in samples {
            let xs = FewShotAugment.augment(s.image)
            let ms = s.mask.map { m in
                let a = FewShotAugment.augment(concat([m, m, m]).reshaped([1, 3, m.shape[1], m.shape[2]]))
                return a.select(axis: 1, index: 0)
            }
            for i in 0..<xs.shape[0] {
                let mask = ms.map { Tensor(shape: [1, $0.shape[1], $0.shape[2]], scalars: $0.select(axis: 0, index: i).scalars.map { $0 > 0.5 ? 1 : 0 }) }
                out.append(Sample(image: xs.narrow(axis: 0, start: i, length: 1), mask: mask, label: s.label))
            }
        }
        return out
    }

    /// valid/ AUROCs at S×S: (image AUROC of the final scores, pixel AUROC of the final maps or nil).
    static func evaluate(_ d: CLIPAnomalyDetector, _ samples: [Sample], bank: AnomalyMemoryBank?) throws -> (Double, Double?) {
        var zero: [Float] = [], few: [Float] = [], maps: [Float] = [], fewMaps: [Float] = [], pix: [Int] = []
        let text = try withNoGrad { try d.textFeatures() }
        for s in samples {
            let p = try d.predict(s.image, bank: bank, text: text)
            zero.append(p.score.item()); maps += p.map.scalars
            if let f = p.fewShotScore { few.append(f.item()); fewMaps += p.fewShotMap!.scalars }
            if let m = s.mask { pix += m.scalars.map { Int($0) } }
        }
        let scores = bank == nil ? zero : AnomalyMaps.fuse(zeroShot: zero, fewShot: few)
        let finalMaps = bank == nil ? maps : AnomalyMaps.fuse(zeroShot: maps, fewShot: fewMaps)
        let image = Metrics.auroc(labels: samples.map { Int($0.label) }, scores: scores.map(Double.init)) ?? .nan
        let pixel = pix.count == finalMaps.count && !pix.isEmpty ? Metrics.auroc(labels: pix, scores: finalMaps.map(Double.init)) : nil
        return (image, pixel)
    }

    // MARK: train

    public static func train(_ o: TrainOptions, progressStyle: Progress.Style? = nil) throws -> TrainResult {
        guard o.randomInit != (o.weights != nil) else { throw AnomalyError.badOptions("give exactly one of --weights FILE and --random-init") }
        guard o.epochs >= 0 else { throw AnomalyError.badOptions("--epochs \(o.epochs) must be ≥ 0") }
        guard o.shots >= 0 else { throw AnomalyError.badOptions("--shots \(o.shots) must be ≥ 0") }
        let root = URL(fileURLWithPath: o.data), out = URL(fileURLWithPath: o.out)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let infoURL = out.appendingPathComponent("run.json"), ckptURL = out.appendingPathComponent("checkpoint.safetensors")
        let baseConfig = try CLIPAnomalyConfig.forEncoder(o.encoder)
        let info = AnomalyRunInfo(encoder: o.encoder, weights: o.weights.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                                  randomInitSeed: o.randomInit ? o.seed : nil, text: o.text, object: o.object ?? objectName(root),
                                  shots: o.shots, seed: o.seed, epochs: o.epochs, levels: baseConfig.adapters.levels,
                                  bottleneck: baseConfig.adapters.bottleneck)
        if o.resume {
            guard let data = try? Data(contentsOf: infoURL), let old = try? JSONDecoder().decode(AnomalyRunInfo.self, from: data) else {
                throw AnomalyError.badRun(path: infoURL.path, reason: "--resume: no readable run.json")
            }
            guard old == info else { throw AnomalyError.badRun(path: infoURL.path, reason: "--resume with other options than the run was started with") }
        } else if FileManager.default.fileExists(atPath: ckptURL.path) {
            throw AnomalyError.badRun(path: out.path, reason: "already holds a run (checkpoint.safetensors): use --resume or another --out")
        }
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(enc.encode(info), to: infoURL)

        let d = try makeDetector(info)
        let S = d.imageSize
        // Data: shots from valid/, training set, validation set.
        let valid = try AnomalyData.split(root, "valid")
        let segmentation = AnomalyData.hasMasks(valid)
        var shotNormal: [AnomalyImage] = [], shotAbnormal: [AnomalyImage] = []
        if o.shots > 0 {
            let normals = valid.filter { $0.label == 0 }, abnormals = valid.filter { $0.label == 1 }
            if let sf = o.seedFile {
                let names = try AnomalyData.seedFile(URL(fileURLWithPath: sf), iterate: o.iterate, shots: o.shots)
                func pick(_ pool: [AnomalyImage], _ ns: [String], _ what: String) throws -> [AnomalyImage] {
                    try ns.map { n in
                        guard let im = pool.first(where: { $0.path.lastPathComponent == n }) else {
                            throw AnomalyDataError.badSeedFile(path: sf, reason: "\(what) shot \(n) is not in \(root.path)/valid")
                        }
                        return im
                    }
                }
                shotNormal = try pick(normals, names.normal, "normal"); shotAbnormal = try pick(abnormals, names.abnormal, "abnormal")
            } else {
                guard normals.count >= o.shots, abnormals.count >= o.shots else {
                    throw AnomalyDataError.notEnough(what: "\(root.path)/valid shots (normal \(normals.count), abnormal \(abnormals.count))", have: min(normals.count, abnormals.count), need: o.shots)
                }
                var g = RandomGenerator(seed: o.seed &+ 7)
                shotNormal = g.permutation(normals.count).prefix(o.shots).map { normals[$0] }
                shotAbnormal = g.permutation(abnormals.count).prefix(o.shots).map { abnormals[$0] }
            }
        }
        let shotIDs = Set((shotNormal + shotAbnormal).map(\.id))
        var validation = valid.filter { !shotIDs.contains($0.id) }
        if validation.isEmpty || Set(validation.map(\.label)).count < 2 { validation = valid }
        var trainSamples: [Sample]
        if FileManager.default.fileExists(atPath: root.appendingPathComponent("train").path) {
            let tr = try AnomalyData.split(root, "train")
            trainSamples = try load(tr, size: S, masks: AnomalyData.hasMasks(tr))
        } else if o.shots > 0 {
            trainSamples = augmented(try load(shotAbnormal + shotNormal, size: S, masks: segmentation))
        } else {
            throw AnomalyError.badOptions("\(root.path) has no train/ split: give --shots K to train on K normal + K abnormal shots of valid/")
        }
        let validSamples = try load(validation, size: S, masks: segmentation)
        var bank: AnomalyMemoryBank? = nil
        if o.shots > 0 {
            let shots = try load(shotNormal, size: S, masks: false).map(\.image)
            bank = try d.memoryBank(shots: concat(shots, axis: 0))
            var t: [String: Tensor] = [:]
            for (k, v) in bank!.seg.enumerated() { t["seg.\(k)"] = v }
            for (k, v) in bank!.det.enumerated() { t["det.\(k)"] = v }
            try SafeTensors.write(t, metadata: ["shots": shotNormal.map(\.id).joined(separator: ",")], to: out.appendingPathComponent("bank.safetensors"))
        }

        // Optimiser, resume.
        let opt = d.makeOptimizer(adapterLR: o.adapterLR, promptLR: o.promptLR)
        var shuffle = RandomGenerator(seed: o.seed &+ 11)
        var startEpoch = 0, bestEpoch = -1, bestMetric = -Double.infinity
        var rows: [[String]] = []
        let csvURL = out.appendingPathComponent("training.csv")
        let adaptersURL = out.appendingPathComponent("adapters.safetensors")
        if o.resume, FileManager.default.fileExists(atPath: ckptURL.path) {
            let ck = try Checkpoint.load(from: ckptURL, model: d.trainable, optimizer: opt)
            startEpoch = ck.step
            if let s = ck.rngStates["shuffle"] { shuffle = RandomGenerator(state: s) }
            bestEpoch = Int(ck.extra["best_epoch"] ?? "") ?? -1
            bestMetric = Double(ck.extra["best_metric"] ?? "") ?? -.infinity
            let text = (try? String(contentsOf: csvURL, encoding: .utf8)) ?? ""
            rows = Array(try CSV.parse(text, path: csvURL.path).dropFirst().prefix(startEpoch + 1))
        }
        let header = ["epoch", "loss", "valid_image_auroc", "valid_pixel_auroc", "selection_metric", "best"]
        func record(epoch: Int, loss: Double?) throws {
            let (image, pixel) = try evaluate(d, validSamples, bank: bank)
            let metric = image + (pixel ?? 0)
            let best = metric > bestMetric
            if best {
                bestMetric = metric; bestEpoch = epoch
                try SafeTensors.write(d.stateDict(), metadata: ["epoch": String(epoch), "selection_metric": String(metric),
                                                                "run": String(decoding: try enc.encode(info), as: UTF8.self)], to: adaptersURL)
            }
            func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
            rows.append([String(epoch), f(loss), f(image), f(pixel), f(metric), best ? "1" : "0"])
            try AtomicFile.write(Data(CSV.format([header] + rows).utf8), to: csvURL)
        }
        if startEpoch == 0 && rows.isEmpty { try record(epoch: 0, loss: nil) }     // the untrained adapters are a candidate
        let progress = Progress(label: "anomaly train", total: max(0, o.epochs - startEpoch) * trainSamples.count, unit: "images",
                                style: progressStyle)
        var done = 0
        for epoch in startEpoch..<max(startEpoch, o.epochs) {
            if let s = o.stopAfter, done >= s { break }
            var total = 0.0
            for i in shuffle.permutation(trainSamples.count) {
                let s = trainSamples[i]
                opt.zeroGrad()
                let l = try d.loss(images: s.image, masks: s.mask, labels: Tensor([s.label]))
                guard l.total.item().isFinite else { throw AnomalyError.badRun(path: out.path, reason: "loss is not finite at epoch \(epoch + 1)") }
                l.total.backward()
                opt.step()
                total += Double(l.total.item())
                progress.advance()
            }
            try record(epoch: epoch + 1, loss: total / Double(max(trainSamples.count, 1)))
            try Checkpoint.save(to: ckptURL, model: d.trainable, optimizer: opt, step: epoch + 1, generators: ["shuffle": shuffle],
                                extra: ["best_epoch": String(bestEpoch), "best_metric": String(bestMetric)])
            done += 1
        }
        progress.finish()
        let epochsDone = startEpoch + done
        return TrainResult(epochsDone: epochsDone, bestEpoch: bestEpoch, bestMetric: bestMetric,
                           text: "anomaly train: \(epochsDone)/\(o.epochs) epochs, \(trainSamples.count) training images, best epoch \(bestEpoch) (valid metric \(String(format: "%.4f", bestMetric))) → \(adaptersURL.path)")
    }

    // MARK: test / predict

    public struct TestResult: Sendable {
        public var imageAUROC: Double?
        public var pixelAUROC: Double?
        public var count: Int
        public var text: String
    }

    /// Loads RUN: run.json, adapters.safetensors, bank.safetensors (when the run has shots).
    public static func loadRun(_ run: URL) throws -> (CLIPAnomalyDetector, AnomalyMemoryBank?) {
        let infoURL = run.appendingPathComponent("run.json")
        guard let data = try? Data(contentsOf: infoURL) else { throw AnomalyError.badRun(path: infoURL.path, reason: "missing (not an `axial anomaly train` run)") }
        let info: AnomalyRunInfo
        do { info = try JSONDecoder().decode(AnomalyRunInfo.self, from: data) } catch {
            throw AnomalyError.badRun(path: infoURL.path, reason: "unreadable: \(error)")
        }
        let d = try makeDetector(info)
        let aURL = run.appendingPathComponent("adapters.safetensors")
        try d.load(state: try SafeTensors.read(aURL).tensors, file: aURL.path)
        var bank: AnomalyMemoryBank? = nil
        if info.shots > 0 {
            let bURL = run.appendingPathComponent("bank.safetensors")
            let t = try SafeTensors.read(bURL).tensors
            func level(_ p: String, _ k: Int) throws -> Tensor {
                guard let v = t["\(p).\(k)"] else { throw AnomalyError.badRun(path: bURL.path, reason: "no tensor \(p).\(k)") }
                return v
            }
            let n = info.levels.count
            bank = AnomalyMemoryBank(seg: try (0..<n).map { try level("seg", $0) }, det: try (0..<n).map { try level("det", $0) })
        }
        return (d, bank)
    }

    struct Scored { var image: AnomalyImage; var width: Int; var height: Int; var zero: Float; var few: Float?; var map: [Float]; var fewMap: [Float]? }

    static func score(_ d: CLIPAnomalyDetector, bank: AnomalyMemoryBank?, images: [AnomalyImage], progress: Progress) throws -> [Scored] {
        let text = try withNoGrad { try d.textFeatures() }     // once for the set, not per image
        return try images.map { im in
            let (x, w, h) = try AnomalyData.loadImage(im.path, size: d.imageSize)
            let p = try d.predict(x, bank: bank, outputSize: Size2D(h, w), text: text)
            progress.advance()
            return Scored(image: im, width: w, height: h, zero: p.score.item(), few: p.fewShotScore?.item(),
                          map: p.map.scalars, fewMap: p.fewShotMap?.scalars)
        }
    }

    /// Final scores and maps (fused over the set when there is a bank).
    static func finalize(_ s: [Scored]) -> (scores: [Float], maps: [[Float]]) {
        guard s.allSatisfy({ $0.few != nil }), !s.isEmpty else { return (s.map(\.zero), s.map(\.map)) }
        let scores = AnomalyMaps.fuse(zeroShot: s.map(\.zero), fewShot: s.map { $0.few! })
        let flat = AnomalyMaps.fuse(zeroShot: s.flatMap(\.map), fewShot: s.flatMap { $0.fewMap! })
        var maps: [[Float]] = [], o = 0
        for x in s { maps.append(Array(flat[o..<(o + x.map.count)])); o += x.map.count }
        return (scores, maps)
    }

    static func writeOutputs(_ s: [Scored], scores: [Float], maps: [[Float]], out: URL, labels: Bool) throws {
        try FileManager.default.createDirectory(at: out.appendingPathComponent("overlays"), withIntermediateDirectories: true)
        var rows = [labels ? ["image", "label", "score", "zero_shot_score", "few_shot_score"] : ["image", "score", "zero_shot_score", "few_shot_score"]]
        for (i, x) in s.enumerated() {
            let few = x.few.map { String($0) } ?? ""
            rows.append(labels ? [x.image.id, String(x.image.label), String(scores[i]), String(x.zero), few]
                               : [x.image.id, String(scores[i]), String(x.zero), few])
        }
        try AtomicFile.write(Data(CSV.format(rows).utf8), to: out.appendingPathComponent("scores.csv"))
        try MapStore.write(zip(s, maps).map { MapStore.Map(name: $0.image.storeName, height: $0.height, width: $0.width, values: $1) },
                           to: out.appendingPathComponent("anomaly_maps.h5"))
        let all = maps.flatMap { $0 }
        let lo = all.min() ?? 0, hi = all.max() ?? 1
        for (x, m) in zip(s, maps) {
            let gray = try PNG.read(x.image.path, channels: 1)
            var px = [UInt8](repeating: 0, count: x.width * x.height * 3)
            for i in 0..<(x.width * x.height) {
                let v = hi > lo ? (m[i] - lo) / (hi - lo) : 0
                let (r, g, b) = heat(v)
                let base = Float(gray.pixels[i])
                px[i * 3] = UInt8(min(255, 0.5 * base + 0.5 * r)); px[i * 3 + 1] = UInt8(min(255, 0.5 * base + 0.5 * g))
                px[i * 3 + 2] = UInt8(min(255, 0.5 * base + 0.5 * b))
            }
            try PNG.write(Image8(width: x.width, height: x.height, channels: 3, pixels: px),
                          to: out.appendingPathComponent("overlays").appendingPathComponent(x.image.storeName.hasSuffix(".png") ? x.image.storeName : x.image.storeName + ".png"))
        }
    }

    /// A jet-like colour ramp: blue → cyan → yellow → red, v in [0, 1].
    static func heat(_ v: Float) -> (Float, Float, Float) {
        let t = min(max(v, 0), 1) * 4
        let r = min(max(t - 1.5, 0), 1), g = min(max(t < 2 ? t - 0.5 : 3.5 - t, 0), 1), b = min(max(t < 1 ? 0.5 + t / 2 : 2.5 - t, 0), 1)
        return (r * 255, g * 255, b * 255)
    }

    /// `axial anomaly test`: scores, maps, metrics on `<data>/test`.
    public static func test(data: String, run: String, out: String, split: String = "test", progressStyle: Progress.Style? = nil) throws -> TestResult {
        let (d, bank) = try loadRun(URL(fileURLWithPath: run))
        let images = try AnomalyData.split(URL(fileURLWithPath: data), split)
        let progress = Progress(label: "anomaly test", total: images.count, unit: "images", style: progressStyle)
        let s = try score(d, bank: bank, images: images, progress: progress)
        progress.finish()
        let (scores, maps) = finalize(s)
        let outURL = URL(fileURLWithPath: out)
        try writeOutputs(s, scores: scores, maps: maps, out: outURL, labels: true)
        let imageAUROC = Metrics.auroc(labels: s.map(\.image.label), scores: scores.map(Double.init))
        var pixelAUROC: Double? = nil
        if AnomalyData.hasMasks(images) {
            var labels: [Int] = [], values: [Double] = []
            for (x, m) in zip(s, maps) {
                let mask = try x.image.maskPath.map { try AnomalyData.loadMask($0, width: x.width, height: x.height) }
                    ?? [Float](repeating: 0, count: x.width * x.height)
                labels += mask.map { Int($0) }; values += m.map(Double.init)
            }
            pixelAUROC = Metrics.auroc(labels: labels, scores: values)
        }
        func f(_ v: Double?) -> String { v.map { String($0) } ?? "" }
        try AtomicFile.write(Data(CSV.format([["metric", "value"], ["image_auroc", f(imageAUROC)], ["pixel_auroc", f(pixelAUROC)],
                                              ["images", String(s.count)]]).utf8),
                             to: outURL.appendingPathComponent("metrics.csv"))
        return TestResult(imageAUROC: imageAUROC, pixelAUROC: pixelAUROC, count: s.count,
                          text: "anomaly test: \(s.count) images, image AUROC \(f(imageAUROC)), pixel AUROC \(f(pixelAUROC)) → \(out)")
    }

    /// `axial anomaly predict`: every PNG under `input` (recursively), no labels.
    public static func predict(input: String, run: String, out: String, progressStyle: Progress.Style? = nil) throws -> String {
        let (d, bank) = try loadRun(URL(fileURLWithPath: run))
        let root = URL(fileURLWithPath: input).standardizedFileURL
        guard let e = FileManager.default.enumerator(atPath: root.path) else { throw AnomalyError.badOptions("\(input): not a readable folder") }
        let names = e.compactMap { $0 as? String }.filter { $0.lowercased().hasSuffix(".png") }.sorted()
        if names.isEmpty { throw AnomalyError.badOptions("\(input): no PNG images") }
        let named = names.map { n in
            AnomalyImage(id: "predict/" + n.replacingOccurrences(of: "/", with: "-"), path: root.appendingPathComponent(n), label: 0, maskPath: nil)
        }
        let progress = Progress(label: "anomaly predict", total: named.count, unit: "images", style: progressStyle)
        let s = try score(d, bank: bank, images: named, progress: progress)
        progress.finish()
        let (scores, maps) = finalize(s)
        try writeOutputs(s, scores: scores, maps: maps, out: URL(fileURLWithPath: out), labels: false)
        return "anomaly predict: \(s.count) images → \(out)"
    }
}
