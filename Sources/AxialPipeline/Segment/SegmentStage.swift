import AxialImaging
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation

// `axial segment train | test | predict`.
//
// train: DiceCE on logits (λ_dice, λ_ce), AdamW (wd 1e-3), gradient-norm clip 0.5, ReduceLROnPlateau
//   (max mode on validation Dice, factor 0.3, patience 5), early stopping on validation Dice
//   (patience), best model → model.safetensors, per-epoch checkpoint.safetensors (model, optimizer,
//   data RNG, scheduler, best, bad epochs) so `--resume` continues bit-identically; training.csv.
// test: per-image Dice / IoU / HD95 (per_image.csv) and per class mean ± 95% CI (per_class.csv);
//   with transformers weights and no training this is zero-shot evaluation.
// predict: every slice of a CT (DICOM series or NIfTI), windowed, segmented for one prompt → a
//   uint8 NIfTI label volume on the scan's grid + overlay PNGs of the slices with foreground.

public struct SegmentTrainOptions: Sendable {
    public var model = "clipseg"
    public var adapters: PromptSegmenter.Adapters = .none
    public var variant = "vlc"
    public var adapterDim: Int? = nil
    public var weights: URL? = nil
    public var seed: UInt64 = 42
    /// BiomedCLIPSeg: the WordPiece vocabulary (tokens in id order) and its file name, the taps.
    public var vocabulary: [String]? = nil
    public var vocabularyFile = "<vocabulary>"
    public var taps: BiomedCLIPSegTaps = .clipseg
    public var prompts: URL
    public var images: URL
    public var masks: URL
    public var valPrompts: URL? = nil
    public var valImages: URL? = nil
    public var valMasks: URL? = nil
    public var valFraction = 0.2
    public var out: URL
    public var epochs = 20
    public var batchSize = 8
    /// nil: the reference's (CLIPSeg / dense 1e-3, shallow 3e-4, CRIS 2e-5 as medvlsm).
    public var learningRate: Double? = nil
    public var weightDecay = 1e-3
    /// nil: VLSM's 1.5 / 1.0 for CLIPSeg, medvlsm's 1.0 / 0.2 for CRIS.
    public var lambdaDice: Float? = nil
    public var lambdaCE: Float? = nil
    public var gradientClip: Float = 0.5
    public var patience = 20
    public var plateauFactor = 0.3
    public var plateauPatience = 5
    public var validationPrompt = "p1"
    /// nil: train the decoder without adapters, freeze it with adapters (as VLSM-Adapter).
    public var trainDecoder: Bool? = nil
    public var trainEncoders = false
    public var resume = false
    public var log: (@Sendable (String) -> Void)? = nil

    public init(prompts: URL, images: URL, masks: URL, out: URL) {
        self.prompts = prompts; self.images = images; self.masks = masks; self.out = out
    }
}

public struct SegmentTrainResult: Sendable {
    public var epochsRun: Int
    public var bestValidationDice: Double
    public var trainLoss: [Double]
    public var validationDice: [Double]
    public var trainableParameters: Int
    public var modelFile: URL
}

public struct SegmentTestResult: Sendable {
    public var perImage: [(image: String, category: String, prompt: String, scores: SegmentMetrics.Scores)]
    public var meanDice: Double
    public var meanIoU: Double
    public var files: [URL]
}

public enum SegmentStage {
    /// Binary predictions (logits > the model's threshold: 0 = sigmoid 0.5, CRIS sigmoid 0.35) and scores for a set, prompt key `key`.
    public static func evaluate(_ model: PromptSegmenter, _ data: SegmentDataset, promptKey key: String, file: String,
                                batchSize: Int = 8) throws -> [(prompt: String, scores: SegmentMetrics.Scores)] {
        model.module.eval()
        defer { model.module.train() }
        var out: [(String, SegmentMetrics.Scores)] = []
        let S = data.size
        for start in stride(from: 0, to: data.count, by: batchSize) {
            let idx = Array(start..<min(start + batchSize, data.count))
            let prompts = try idx.map { try data.prompt($0, key: key, file: file) }
            let logits = withNoGrad { model.logits(stack(idx.map { data.images[$0] }, axis: 0), prompts: prompts) }.scalars
            let t = model.logitThreshold
            for (b, i) in idx.enumerated() {
                let p = (0..<(S * S)).map { logits[b * S * S + $0] > t }
                let g = data.masks[i].scalars.map { $0 > 0.5 }
                out.append((prompts[b], SegmentMetrics.scores(prediction: p, target: g, width: S, height: S)))
            }
        }
        return out
    }

    /// Batch index ranges over n items of `size`; a last batch smaller than `minimum` joins the one before.
    public static func batches(_ n: Int, size: Int, minimum: Int = 1) -> [Range<Int>] {
        var out = stride(from: 0, to: n, by: size).map { $0..<min($0 + size, n) }
        if out.count > 1, let last = out.last, last.count < minimum {
            out.removeLast()
            out[out.count - 1] = out[out.count - 1].lowerBound..<last.upperBound
        }
        return out
    }

    /// Trains under its own default generator (dropout draws), seeded from `o.seed` and saved in every
    /// checkpoint, so a resumed run repeats the same dropout masks.
    public static func train(_ o: SegmentTrainOptions) throws -> SegmentTrainResult {
        try DefaultGenerator.withScopedGenerator(seed: o.seed &+ 0xd20) { try trainScoped(o) }
    }

    static func trainScoped(_ o: SegmentTrainOptions) throws -> SegmentTrainResult {
        guard o.epochs >= 1, o.batchSize >= 1 else { throw SegmentError.badOption("--epochs and --batch-size must be ≥ 1") }
        let family = try PromptSegmenter.family(named: o.model)
        let S = try PromptSegmenter.inputSize(named: o.model)
        let norm = PromptSegmenter.normalization(family)
        if family == .cris && o.batchSize < 2 { throw SegmentError.badOption("--batch-size must be ≥ 2 for \(o.model) (BatchNorm batch statistics in training)") }
        let all = try SegmentDataset.load(prompts: o.prompts, images: o.images, masks: o.masks, size: S, normalization: norm)
        let train: SegmentDataset, val: SegmentDataset
        let valFile: String
        if let vp = o.valPrompts {
            train = all
            val = try SegmentDataset.load(prompts: vp, images: o.valImages ?? o.images, masks: o.valMasks ?? o.masks, size: S,
                                          normalization: norm)
            valFile = vp.path
        } else {
            guard all.count >= 2 else { throw SegmentError.badOption("need ≥ 2 entries in \(o.prompts.path) to split off a validation set (or pass --val-prompts)") }
            var g = RandomGenerator(seed: o.seed &+ 0x5e9)
            let perm = g.permutation(all.count)
            let nv = min(max(1, Int((Double(all.count) * o.valFraction).rounded())), all.count - 1)
            val = all.subset(Array(perm.prefix(nv)).sorted())
            train = all.subset(Array(perm.dropFirst(nv)).sorted())
            valFile = o.prompts.path
        }
        for i in 0..<val.count { _ = try val.prompt(i, key: o.validationPrompt, file: valFile) }

        try FileManager.default.createDirectory(at: o.out, withIntermediateDirectories: true)
        let model = try PromptSegmenter(model: o.model, adapters: o.adapters, variant: o.variant, adapterDim: o.adapterDim,
                                        weights: o.weights, seed: o.seed, vocabulary: o.vocabulary, vocabularyFile: o.vocabularyFile,
                                        taps: o.taps)
        model.setTrainable(decoder: o.trainDecoder ?? (o.adapters == .none), encoders: o.trainEncoders)
        let params = model.trainableParameters
        guard !params.isEmpty else { throw SegmentError.badOption("nothing to train: no adapters, decoder and encoders frozen") }
        let lr = o.learningRate ?? (family == .cris ? 2e-5 : family == .biomedclipseg ? 2e-4 : o.adapters == .shallow ? 3e-4 : 1e-3)
        let medvlsm = family != .clipseg
        let lambdaDice = o.lambdaDice ?? (medvlsm ? 1.0 : 1.5), lambdaCE = o.lambdaCE ?? (medvlsm ? 0.2 : 1.0)
        if model.needsBatchOfTwo && train.count < 2 {
            throw SegmentError.badOption("\(o.model) trains with BatchNorm batch statistics: need ≥ 2 training entries, have \(train.count)")
        }
        let opt = AdamW(params, lr: lr, weightDecay: o.weightDecay)
        var plateau = ReduceLROnPlateau(mode: .max, factor: o.plateauFactor, patience: o.plateauPatience)
        var rng = RandomGenerator(seed: o.seed)
        var startEpoch = 0, best = -Double.infinity, bad = 0
        var rows: [[String]] = []
        let ckpt = o.out.appendingPathComponent("checkpoint.safetensors")
        let modelFile = o.out.appendingPathComponent("model.safetensors")
        let logFile = o.out.appendingPathComponent("training.csv")
        let header = ["epoch", "train_loss", "val_dice", "lr", "best_val_dice"]
        if o.resume, FileManager.default.fileExists(atPath: ckpt.path) {
            let info = try Checkpoint.load(from: ckpt, model: model.module, optimizer: opt)
            startEpoch = info.step
            if let s = info.rngStates["data"] { rng = RandomGenerator(state: s) }
            if let p = info.extra["scheduler"], let d = p.data(using: .utf8) { plateau = try JSONDecoder().decode(ReduceLROnPlateau.self, from: d) }
            best = info.extra["best"].flatMap(Double.init) ?? best
            bad = info.extra["bad_epochs"].flatMap(Int.init) ?? 0
            if let t = try? CSVTable.read(logFile) { rows = Array(t.rows.prefix(startEpoch)) }
            o.log?("resumed from \(ckpt.path) after epoch \(startEpoch)")
        }
        var losses: [Double] = rows.compactMap { Double($0[1]) }, dices: [Double] = rows.compactMap { Double($0[2]) }
        var epoch = startEpoch
        while epoch < o.epochs && bad < o.patience {
            let perm = rng.permutation(train.count)
            var total = 0.0, batches = 0
            for range in Self.batches(train.count, size: o.batchSize, minimum: model.needsBatchOfTwo ? 2 : 1) {
                let idx = Array(perm[range])
                let prompts = idx.map { train.randomPrompt($0, generator: &rng) }
                let pixels = stack(idx.map { train.images[$0] }, axis: 0)
                let masks = stack(idx.map { train.masks[$0] }, axis: 0)
                opt.zeroGrad()
                let loss = diceCELoss(model.logits(pixels, prompts: prompts), masks, lambdaDice: lambdaDice, lambdaCE: lambdaCE)
                loss.backward()
                _ = clipGradNorm(params.map(\.value), maxNorm: o.gradientClip)
                opt.step()
                total += Double(loss.item()); batches += 1
            }
            let scores = try evaluate(model, val, promptKey: o.validationPrompt, file: valFile, batchSize: o.batchSize)
            let valDice = scores.map(\.scores.dice).reduce(0, +) / Double(max(scores.count, 1))
            plateau.step(metric: valDice, optimizer: opt)
            if valDice > best { best = valDice; bad = 0; try model.save(to: modelFile) } else { bad += 1 }
            epoch += 1
            let meanLoss = total / Double(max(batches, 1))
            losses.append(meanLoss); dices.append(valDice)
            rows.append([String(epoch), String(format: "%.6f", meanLoss), String(format: "%.6f", valDice),
                         String(opt.groups[0].lr), String(format: "%.6f", best)])
            try CSVTable(header: header, rows: rows).write(to: logFile)
            let sched = String(data: try JSONEncoder().encode(plateau), encoding: .utf8)!
            try Checkpoint.save(to: ckpt, model: model.module, optimizer: opt, step: epoch, generators: ["data": rng],
                                extra: ["scheduler": sched, "best": String(best), "bad_epochs": String(bad)])
            o.log?(String(format: "epoch %d: train loss %.4f, val Dice %.4f (best %.4f), lr %.2g", epoch, meanLoss, valDice, best, opt.groups[0].lr))
        }
        return SegmentTrainResult(epochsRun: epoch, bestValidationDice: best, trainLoss: losses, validationDice: dices,
                                  trainableParameters: params.reduce(0) { $0 + $1.count }, modelFile: modelFile)
    }

    /// Evaluates on a prompt file; writes per_image.csv and per_class.csv to `out`.
    public static func test(_ model: PromptSegmenter, prompts: URL, images: URL, masks: URL, promptKey: String,
                            out: URL, batchSize: Int = 8) throws -> SegmentTestResult {
        let data = try SegmentDataset.load(prompts: prompts, images: images, masks: masks, size: model.inputSize,
                                           normalization: model.normalization)
        let scores = try evaluate(model, data, promptKey: promptKey, file: prompts.path, batchSize: batchSize)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        var rows: [[String]] = []
        var perImage: [(String, String, String, SegmentMetrics.Scores)] = []
        for (i, s) in scores.enumerated() {
            let e = data.entries[i]
            rows.append([e.imageName, e.maskName, e.category, s.prompt, f(s.scores.dice), f(s.scores.iou), f(s.scores.hd95)])
            perImage.append((e.imageName, e.category, s.prompt, s.scores))
        }
        let imageFile = out.appendingPathComponent("per_image.csv"), classFile = out.appendingPathComponent("per_class.csv")
        try CSVTable(header: ["img_name", "mask_name", "cat", "prompt", "dice", "iou", "hd95"], rows: rows).write(to: imageFile)
        var classRows: [[String]] = []
        let cats = Array(Set(data.entries.map(\.category))).sorted()
        for cat in ["(all)"] + (cats.count > 1 ? cats : []) {
            let s = perImage.filter { cat == "(all)" || $0.1 == cat }.map(\.3)
            let d = SegmentMetrics.summary(s.map(\.dice)), j = SegmentMetrics.summary(s.map(\.iou)), h = SegmentMetrics.summary(s.map(\.hd95))
            classRows.append([cat, String(s.count), f(d.mean), f(d.lo), f(d.hi), f(j.mean), f(j.lo), f(j.hi), f(h.mean), f(h.lo), f(h.hi),
                              String(s.count - h.n)])
        }
        try CSVTable(header: ["cat", "n", "dice", "dice_lo", "dice_hi", "iou", "iou_lo", "iou_hi", "hd95", "hd95_lo", "hd95_hi", "hd95_undefined"],
                     rows: classRows).write(to: classFile)
        let n = Double(max(scores.count, 1))
        return SegmentTestResult(perImage: perImage, meanDice: scores.map(\.scores.dice).reduce(0, +) / n,
                                 meanIoU: scores.map(\.scores.iou).reduce(0, +) / n, files: [imageFile, classFile])
    }

    /// Reads one CT volume: a NIfTI file, or a folder holding exactly one series.
    public static func readScan(_ input: URL) throws -> Volume {
        let lower = input.path.lowercased()
        if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") { return try NIfTIReader.readFile(input.path) }
        let (series, problems) = try scanInput(input)
        guard series.count == 1 else {
            let why = problems.prefix(3).map { "\($0)" }.joined(separator: "; ")
            throw SegmentError.badOption("\(input.path) holds \(series.count) series (need exactly one)\(why.isEmpty ? "" : ": \(why)")")
        }
        return try VolumeSource().read(series[0])
    }

    /// Segments every slice of `volume` for `prompt`; returns the label volume (x fastest, z slowest).
    public static func segment(_ model: PromptSegmenter, volume v: Volume, prompt: String, window: CTWindow,
                               batchSize: Int = 8) -> [UInt8] {
        model.module.eval()
        let S = model.inputSize, W = v.width, H = v.height, t = model.logitThreshold
        var labels = [UInt8](repeating: 0, count: W * H * v.depth)
        let back = Resampler(inWidth: S, inHeight: S, outWidth: W, outHeight: H)
        for start in stride(from: 0, to: v.depth, by: batchSize) {
            let zs = Array(start..<min(start + batchSize, v.depth))
            let px = zs.map { z in SegmentDataset.pixels(window.apply(Array(v.slice(z)), width: W, height: H), size: S,
                                                          normalization: model.normalization) }
            let logits = withNoGrad { model.logits(stack(px, axis: 0), prompts: Array(repeating: prompt, count: zs.count)) }.scalars
            for (b, z) in zs.enumerated() {
                let plane = Array(logits[(b * S * S)..<((b + 1) * S * S)])
                let up = (W == S && H == S) ? plane : back(plane)
                for i in 0..<(W * H) where up[i] > t { labels[z * W * H + i] = 1 }
            }
        }
        return labels
    }

    /// predict: label NIfTI on the scan's grid; overlays (gray slice, foreground tinted red) of the
    /// slices with foreground into `overlays` if given. Returns the foreground voxel count.
    @discardableResult
    public static func predict(_ model: PromptSegmenter, input: URL, prompt: String, window: CTWindow, out: URL,
                               overlays: URL?, batchSize: Int = 8) throws -> Int {
        let v = try readScan(input)
        let labels = segment(model, volume: v, prompt: prompt, window: window, batchSize: batchSize)
        try NIfTIWriter.writeLabels(labels, like: v, to: out)
        if let overlays {
            try FileManager.default.createDirectory(at: overlays, withIntermediateDirectories: true)
            let W = v.width, H = v.height
            for z in 0..<v.depth {
                let lab = labels[(z * W * H)..<((z + 1) * W * H)]
                guard lab.contains(1) else { continue }
                let gray = window.apply(Array(v.slice(z)), width: W, height: H).pixels
                var rgb = [UInt8](repeating: 0, count: W * H * 3)
                for i in 0..<(W * H) {
                    let g = gray[i], on = lab[lab.startIndex + i] == 1
                    rgb[3 * i] = on ? UInt8((Int(g) + 255) / 2) : g
                    rgb[3 * i + 1] = on ? g / 2 : g
                    rgb[3 * i + 2] = on ? g / 2 : g
                }
                try PNG.write(Image8(width: W, height: H, channels: 3, pixels: rgb),
                              to: overlays.appendingPathComponent(String(format: "slice_%04d.png", z)))
            }
        }
        return labels.reduce(0) { $0 + Int($1) }
    }
}
