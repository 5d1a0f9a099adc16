import ArgumentParser
import AxialModels
import AxialPipeline
import Foundation

/// `axial classify train|test|predict`: PsPG multi-label classification of 2D images.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "PsPG (pseudo-prompts through a frozen CLIP) multi-label classification of 2D images.",
        discussion: """
            Data: JSON lines {"id", "filepath", "text", "labels": [1, 0, -1, …]} (-1 = unknown; filepath \
            relative to the jsonl file; PNG images). Class names: one per line (--classes), in label order.
            """,
        subcommands: [Train.self, Test.self, Predict.self])

    static func fail(_ error: Error) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return ExitCode(1)
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train PsPG's prompt generator (frozen CLIP RN image and text towers).",
            discussion: """
                Writes <out>/training.csv, <out>/checkpoint.safetensors after every epoch (--resume continues \
                exactly) and <out>/model.safetensors at the end. --backbone tiny is a random-init miniature \
                (tests, demos); clip_rn50 needs --weights (open_clip / OpenAI RN50 .safetensors).
                """)
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: .path("Training jsonl.")) var train: String
        @Option(help: .path("Validation jsonl (metrics after every epoch).")) var val: String?
        @Option(help: .path("Class names, one per line, in label order.")) var classes: String
        @Option(help: .path("Output folder.")) var out: String
        @Option(help: "clip_rn50 or tiny.") var backbone = "clip_rn50"
        @Option(help: .path("CLIP checkpoint (.safetensors) for clip_rn50.")) var weights: String?
        @Option(help: "Prompt decoder: gru, lstm, transformer or mlp.") var decoder: String = "gru"
        @Option(name: .customLong("decoder-hidden"), help: "Decoder hidden size (default 512; tiny 16).") var decoderHidden: Int?
        @Option(name: .customLong("decoder-max-length"), help: "Pseudo-tokens per prompt (default 16; tiny 4).") var decoderMaxLength: Int?
        @Flag(name: .customLong("name-prefix"), help: "Put the class name's tokens after the pseudo-tokens (ENABLE_PREFIX).") var namePrefix = false
        @Flag(name: .customLong("pair-loss"), help: "Pair prompts + co-occurrence loss instead of the margin term.") var pairLoss = false
        @Option(help: "Initial temperature T (logit_scale = log 1/T, trained).") var temperature: Double = 0.07
        @Option(help: "Epochs.") var epochs = 50
        @Option(help: "Images per batch.") var batch = 64
        @Option(help: "Peak learning rate.") var lr: Double = 1e-4
        @Option(name: .customLong("min-lr"), help: "Learning rate at the end of the cosine.") var minLR: Double = 5e-6
        @Option(name: .customLong("weight-decay"), help: "SGD weight decay (weights only).") var weightDecay: Double = 0.05
        @Option(name: .customLong("warmup-epochs"), help: "Linear warm-up epochs.") var warmupEpochs = 5
        @Flag(help: "Keep an EMA of the weights (used for validation and the final model).") var ema = false
        @Option(name: .customLong("ema-decay"), help: "EMA decay.") var emaDecay: Float = 0.9998
        @Flag(name: .customLong("no-augment"), help: "No augmentation.") var noAugment = false
        @Option(help: "Seed (initialisation, order, augmentation, dropout).") var seed: UInt64 = 0
        @Flag(help: "Continue from <out>/checkpoint.safetensors.") var resume = false
        @Option(name: .customLong("stop-after"), help: ArgumentHelp("Stop after N epochs of this invocation.", visibility: .hidden)) var stopAfter: Int?
        @Flag(help: "No per-epoch lines.") var quiet = false

        func run() throws {
            guard let kind = PsPGDecoderKind(rawValue: decoder) else {
                throw ClassifyCommand.fail(ValidationError("--decoder \(decoder): use gru, lstm, transformer or mlp"))
            }
            var o = Classify.TrainOptions(train: train, classes: classes, out: out)
            o.val = val; o.backbone = backbone; o.weights = weights; o.decoder = kind
            o.hidden = decoderHidden; o.promptSteps = decoderMaxLength; o.namePrefix = namePrefix; o.pairLoss = pairLoss; o.temperature = temperature
            o.epochs = epochs; o.batch = batch; o.lr = lr; o.minLR = minLR; o.weightDecay = weightDecay; o.warmupEpochs = warmupEpochs
            o.ema = ema; o.emaDecay = emaDecay; o.augment = !noAugment; o.seed = seed; o.resume = resume; o.stopAfterEpochs = stopAfter
            if !quiet { o.log = { print($0) } }
            do {
                let r = try Classify.train(o)
                print(r.finished ? "model: \(r.modelPath)" : "stopped after epoch \(r.rows.last.map { $0.epoch + 1 } ?? 0); continue with --resume")
            } catch { throw ClassifyCommand.fail(error) }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Metrics of a trained model on a labelled jsonl (metrics.json, predictions.csv).")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: .path("model.safetensors from `axial classify train`.")) var model: String
        @Option(help: .path("Labelled jsonl.")) var data: String
        @Option(help: .path("Output folder.")) var out: String
        @Option(help: .path("Score these class names instead of the trained ones (one per line, in label order).")) var classes: String?
        @Option(help: .path("CLIP checkpoint (clip_rn50; default: the one used in training).")) var weights: String?
        @Option(help: "Images per batch.") var batch = 64

        func run() throws {
            do {
                let m = try Classify.test(model: model, data: data, out: out, weights: weights, classes: classes, batch: batch)
                func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "–" }
                print("macro AUC \(f(m.macroAUC))  micro AUC \(f(m.microAUC))  mAP \(f(m.meanAveragePrecision))  macro F1 \(f(m.macroF1))  micro F1 \(f(m.microF1))  MCC \(f(m.mcc))")
            } catch { throw ClassifyCommand.fail(error) }
        }
    }

    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "P(positive) per image and class (predictions.csv); --classes scores names never seen in training.")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: .path("model.safetensors from `axial classify train`.")) var model: String
        @Option(help: .path("jsonl (labels optional).")) var data: String
        @Option(help: .path("Output folder.")) var out: String
        @Option(help: .path("Class names to score (one per line; default: the trained ones).")) var classes: String?
        @Option(help: .path("CLIP checkpoint (clip_rn50; default: the one used in training).")) var weights: String?
        @Option(help: "Images per batch.") var batch = 64

        func run() throws {
            do {
                let r = try Classify.predict(model: model, data: data, out: out, weights: weights, classes: classes, batch: batch)
                print("\(r.scores.count) images × \(r.names.count) classes → \(out)/predictions.csv")
            } catch { throw ClassifyCommand.fail(error) }
        }
    }
}
