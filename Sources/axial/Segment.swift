import ArgumentParser
import AxialImaging
import AxialPipeline
import Foundation

/// `axial segment train | test | predict`: text-prompted segmentation (CLIPSeg, VLSM adapters).
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Text-prompted segmentation: CLIPSeg (transformers-exact) with optional VLSM shallow / dense adapters, CRIS or BiomedCLIPSeg (medvlsm's).",
        subcommands: [SegmentTrain.self, SegmentTest.self, SegmentPredict.self])
}

/// Model choice shared by the three subcommands.
struct SegmentModelOptions: ParsableArguments {
    @Option(help: "Model: clipseg (CIDAS/clipseg-rd64-refined shapes, 352²), clipseg_test (tiny), cris (medvlsm's CRIS: CLIP RN50 + FPN + 3-layer decoder, 416², threshold 0.35), cris_test (tiny), biomedclipseg (frozen BiomedCLIP towers + CLIPSeg decoder, 224²) or biomedclipseg_test (tiny).")
    var model = "clipseg"

    @Option(help: "BiomedCLIPSeg: which ViT blocks feed the decoder — clipseg (CLIPSeg's hidden states 3,6,9 = blocks 4/7/10) or medvlsm (its off-by-one 4,7,10 = blocks 5/8/11, for its published numbers).")
    var taps = "clipseg"

    @Option(help: .path("BiomedCLIPSeg: PubMedBERT's WordPiece vocab.txt (from microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224; kept in the saved model)."))
    var vocab: String?

    @Option(help: "VLSM adapters: none, shallow (dim 512) or dense (dim 64).")
    var adapters = "none"

    @Option(help: "Adapter variant: v, vl or vlc (vision / + language / + conditional).")
    var variant = "vlc"

    @Option(help: "Adapter bottleneck width (default: shallow 512, dense 64).")
    var adapterDim: Int?

    @Option(help: .path("Weights: a transformers CLIPSeg .safetensors (clip.* / decoder.* keys), a CRIS checkpoint (backbone.* / neck.* / decoder.* / proj.*; .pth via Tools/convert_weights.py), an RN50 CLIP for CRIS's backbone (visual.* keys), or a model.safetensors from `axial segment train`."))
    var weights: String?

    @Flag(help: "Start from random weights (seeded) instead of --weights.")
    var randomInit = false

    @Option(help: "Seed (initialisation, data order, prompt draws).")
    var seed: UInt64 = 42

    func validate() throws {
        guard PromptSegmenter.Adapters(rawValue: adapters) != nil else {
            throw ValidationError("--adapters must be none, shallow or dense, got '\(adapters)'")
        }
        guard (weights != nil) != randomInit else { throw ValidationError("pass exactly one of --weights F and --random-init") }
        do { _ = try PromptSegmenter.taps(taps) } catch { throw ValidationError("\(error)") }
    }

    func vocabulary() throws -> [String]? { try vocab.map { try PromptSegmenter.readVocabulary(URL(fileURLWithPath: $0)) } }

    func build() throws -> PromptSegmenter {
        // A model saved by `axial segment train` carries its own model / adapter settings.
        if let w = weights, PromptSegmenter.isSavedModel(URL(fileURLWithPath: w)) {
            return try PromptSegmenter.open(URL(fileURLWithPath: w))
        }
        return try PromptSegmenter(model: model, adapters: PromptSegmenter.Adapters(rawValue: adapters)!, variant: variant,
                                   adapterDim: adapterDim, weights: weights.map { URL(fileURLWithPath: $0) }, seed: seed,
                                   vocabulary: try vocabulary(), vocabularyFile: vocab ?? "<vocabulary>", taps: try PromptSegmenter.taps(taps))
    }
}

func segmentFail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}

struct SegmentTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Fine-tune on 2D image / mask folders with a medvlsm prompt JSON.")

    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var modelOptions: SegmentModelOptions
    @Option(help: .path("Training prompt file (medvlsm JSON: img_name, mask_name, bbox, cat, prompts{p0…p9}).")) var prompts: String
    @Option(help: .path("Image folder.")) var images: String
    @Option(help: .path("Mask folder.")) var masks: String
    @Option(help: .path("Validation prompt file (default: a seeded split of the training file).")) var valPrompts: String?
    @Option(help: .path("Validation image folder (default: --images).")) var valImages: String?
    @Option(help: .path("Validation mask folder (default: --masks).")) var valMasks: String?
    @Option(help: "Validation fraction when no --val-prompts.") var valFraction = 0.2
    @Option(help: .path("Output folder (model.safetensors, checkpoint.safetensors, training.csv).")) var out: String
    @Option(help: "Epochs.") var epochs = 20
    @Option(help: "Batch size.") var batchSize = 8
    @Option(help: "Learning rate (default: 1e-3, shallow adapters 3e-4, CRIS 2e-5, BiomedCLIPSeg 2e-4).") var lr: Double?
    @Option(help: "AdamW weight decay.") var weightDecay = 1e-3
    @Option(help: "Dice weight of DiceCE (default: VLSM's 1.5 for CLIPSeg, medvlsm's 1.0 for CRIS and BiomedCLIPSeg).") var lambdaDice: Float?
    @Option(help: "Cross-entropy weight of DiceCE (default: VLSM's 1.0 for CLIPSeg, medvlsm's 0.2 for CRIS and BiomedCLIPSeg).") var lambdaCe: Float?
    @Option(help: "Gradient-norm clip.") var gradClip: Float = 0.5
    @Option(help: "Early-stopping patience (epochs without a better validation Dice).") var patience = 20
    @Option(help: "Prompt key used for validation.") var valPrompt = "p1"
    @Flag(help: "Train the decoder too when adapters are used (VLSM freezes it).") var trainDecoder = false
    @Flag(help: "Fine-tune the CLIP encoders as well (really: no no_grad; CRIS: the RN50 + text backbone, as medvlsm's CRIS runs).") var trainEncoders = false
    @Flag(help: "Continue from <out>/checkpoint.safetensors.") var resume = false

    func run() throws {
        do {
            var o = SegmentTrainOptions(prompts: URL(fileURLWithPath: prompts), images: URL(fileURLWithPath: images),
                                        masks: URL(fileURLWithPath: masks), out: URL(fileURLWithPath: out))
            let m = modelOptions
            o.model = m.model; o.adapters = PromptSegmenter.Adapters(rawValue: m.adapters)!; o.variant = m.variant
            o.adapterDim = m.adapterDim; o.weights = m.weights.map { URL(fileURLWithPath: $0) }; o.seed = m.seed
            o.vocabulary = try m.vocabulary(); o.vocabularyFile = m.vocab ?? "<vocabulary>"; o.taps = try PromptSegmenter.taps(m.taps)
            o.valPrompts = valPrompts.map { URL(fileURLWithPath: $0) }; o.valImages = valImages.map { URL(fileURLWithPath: $0) }
            o.valMasks = valMasks.map { URL(fileURLWithPath: $0) }; o.valFraction = valFraction
            o.epochs = epochs; o.batchSize = batchSize; o.learningRate = lr; o.weightDecay = weightDecay
            o.lambdaDice = lambdaDice; o.lambdaCE = lambdaCe; o.gradientClip = gradClip; o.patience = patience
            o.validationPrompt = valPrompt; o.trainDecoder = o.adapters == .none ? true : trainDecoder
            o.trainEncoders = trainEncoders; o.resume = resume
            o.log = { print($0) }
            let r = try SegmentStage.train(o)
            print("segment train: \(r.epochsRun) epoch(s), \(r.trainableParameters) trainable parameters, best validation Dice \(String(format: "%.4f", r.bestValidationDice)); wrote \(r.modelFile.path)")
        } catch { throw segmentFail(error) }
    }
}

struct SegmentTest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Dice / IoU / HD95 per image and per class (zero-shot with transformers weights).")

    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var modelOptions: SegmentModelOptions
    @Option(help: .path("Test prompt file (medvlsm JSON).")) var prompts: String
    @Option(help: .path("Image folder.")) var images: String
    @Option(help: .path("Mask folder.")) var masks: String
    @Option(help: "Prompt key to evaluate (p0…p9).") var prompt = "p1"
    @Option(help: .path("Output folder (per_image.csv, per_class.csv).")) var out: String
    @Option(help: "Batch size.") var batchSize = 8

    func run() throws {
        do {
            let model = try modelOptions.build()
            let r = try SegmentStage.test(model, prompts: URL(fileURLWithPath: prompts), images: URL(fileURLWithPath: images),
                                          masks: URL(fileURLWithPath: masks), promptKey: prompt, out: URL(fileURLWithPath: out),
                                          batchSize: batchSize)
            print(String(format: "segment test: %d image(s), Dice %.4f, IoU %.4f; wrote ", r.perImage.count, r.meanDice, r.meanIoU)
                  + r.files.map(\.path).joined(separator: ", "))
        } catch { throw segmentFail(error) }
    }
}

struct SegmentPredict: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "predict", abstract: "Segment every slice of a CT (DICOM series or NIfTI) for a prompt → NIfTI label volume + overlays.")

    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var modelOptions: SegmentModelOptions
    @Option(help: .path("A NIfTI file or a folder with one DICOM series.")) var input: String
    @Option(help: "Text prompt.") var prompt: String
    @Option(help: "CT window (preset name or W/L, e.g. lung, W400/L40).") var window = "soft_tissue"
    @Option(help: .path("Output label volume (.nii or .nii.gz), on the scan's grid.")) var out: String
    @Option(help: .path("Folder for overlay PNGs of the slices with foreground.")) var overlays: String?
    @Option(help: "Slices per forward pass.") var batchSize = 8

    func run() throws {
        do {
            let model = try modelOptions.build()
            let w = try CTWindow.parse(window)
            let n = try SegmentStage.predict(model, input: URL(fileURLWithPath: input), prompt: prompt, window: w,
                                             out: URL(fileURLWithPath: out), overlays: overlays.map { URL(fileURLWithPath: $0) },
                                             batchSize: batchSize)
            print("segment predict: \(n) foreground voxel(s); wrote \(out)")
        } catch { throw segmentFail(error) }
    }
}
