import ArgumentParser
import AxialModels
import AxialPipeline
import Foundation

/// `axial anomaly train|test|predict`: MVFA / MLA-LP anomaly detection on a frozen CLIP.
struct AnomalyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anomaly",
        abstract: "Anomaly detection and maps with a frozen CLIP, multi-level adapters and learned prompts (MVFA → MLA-LP).",
        subcommands: [AnomalyTrain.self, AnomalyTest.self, AnomalyPredict.self])
}

func anomalyFail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}

struct AnomalyTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the seg/det adapters (and prompt contexts) on a BMAD-layout dataset.",
        discussion: """
            --data is an <Obj>_AD folder: {train?,valid,test}/{good,Ungood}/img/*.png with Ungood/anomaly_mask/ \
            for segmentation datasets. Trains on train/ when present, else on --shots K normal + K abnormal images \
            of valid/ (×11 augmentation); the K normal shots form the few-shot memory bank. The checkpoint is chosen \
            on valid/ (minus the shots), never on test/. Writes RUN/run.json, adapters.safetensors (keys \
            seg_adapters.*, det_adapters.*, prompt_learner.*), bank.safetensors, checkpoint.safetensors, training.csv.
            """)
    @OptionGroup var configFile: ConfigFileOption
    @Option(help: .path("BMAD-layout dataset folder (<Obj>_AD).")) var data: String
    @Option(help: "CLIP encoder (registry name: clip_vit_l14_336_at240 as MVFA, clip_test for tests).") var encoder: String
    @Option(help: .path("CLIP checkpoint (.safetensors, open_clip names).")) var weights: String?
    @Flag(name: .customLong("random-init"), help: "Random CLIP weights from --seed (tests, demos).") var randomInit = false
    @Option(help: "K normal + K abnormal shots from valid/ (0: zero-shot, needs train/).") var shots: Int = 0
    @Option(name: .customLong("seed-file"), help: .path("MVFA few-shot seed file (lines 'a-<i>: …' and 'n-<i>: …').")) var seedFile: String?
    @Option(help: "Iteration of the seed file.") var iterate: Int = 0
    @Option(help: "Text: learned (MLA-LP prompt learner) or templates (MVFA ensemble).") var prompts: String = "learned"
    @Option(help: "Object name for the templates (default: from the folder name, e.g. Brain_AD → Brain).") var object: String?
    @Option(help: "Epochs.") var epochs: Int = 50
    @Option(name: .customLong("adapter-lr"), help: "Adapter learning rate.") var adapterLR: Double = 1e-4
    @Option(name: .customLong("prompt-lr"), help: "Prompt-context learning rate.") var promptLR: Double = 1e-3
    @Option(help: "Seed (initialisation, shot choice, order).") var seed: UInt64 = 0
    @Option(help: .path("Run folder.")) var out: String
    @Flag(help: "Continue from RUN/checkpoint.safetensors.") var resume = false
    @Option(name: .customLong("stop-after"), help: ArgumentHelp("Stop after N epochs of this invocation.", visibility: .hidden)) var stopAfter: Int?
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        do {
            guard let mode = AnomalyTextMode(rawValue: prompts) else { throw AnomalyError.badOptions("--prompts must be learned or templates, got '\(prompts)'") }
            var o = AnomalyStage.TrainOptions(data: data, encoder: encoder, out: out)
            o.weights = weights; o.randomInit = randomInit; o.shots = shots; o.seedFile = seedFile; o.iterate = iterate
            o.text = mode; o.object = object; o.epochs = epochs; o.adapterLR = adapterLR; o.promptLR = promptLR
            o.seed = seed; o.resume = resume; o.stopAfter = stopAfter
            print(try AnomalyStage.train(o, progressStyle: quiet ? .quiet : nil).text)
        } catch { throw anomalyFail(error) }
    }
}

struct AnomalyTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Score <data>/test with a trained run: scores.csv, anomaly_maps.h5, metrics.csv (image / pixel AUROC), overlays/.")
    @OptionGroup var configFile: ConfigFileOption
    @Option(help: .path("BMAD-layout dataset folder (<Obj>_AD).")) var data: String
    @Option(name: .customLong("run"), help: .path("Run folder of `axial anomaly train`.")) var runFolder: String
    @Option(help: .path("Output folder.")) var out: String
    @Option(help: "Split to score.") var split: String = "test"
    @Flag(help: "No progress output.") var quiet = false
    func run() throws {
        do { print(try AnomalyStage.test(data: data, run: runFolder, out: out, split: split, progressStyle: quiet ? .quiet : nil).text) }
        catch { throw anomalyFail(error) }
    }
}

struct AnomalyPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Score every PNG under --input with a trained run: scores.csv, anomaly_maps.h5, overlays/.")
    @OptionGroup var configFile: ConfigFileOption
    @Option(help: .path("Folder of PNG images (searched recursively).")) var input: String
    @Option(name: .customLong("run"), help: .path("Run folder of `axial anomaly train`.")) var runFolder: String
    @Option(help: .path("Output folder.")) var out: String
    @Flag(help: "No progress output.") var quiet = false
    func run() throws {
        do { print(try AnomalyStage.predict(input: input, run: runFolder, out: out, progressStyle: quiet ? .quiet : nil)) }
        catch { throw anomalyFail(error) }
    }
}
