import ArgumentParser
import AxialEval
import AxialModels
import AxialPipeline
import Foundation

extension HeadKind: ExpressibleByArgument {}
extension ClassNameEncoder.Kind: ExpressibleByArgument {}

/// `axial crossval --features <dir> --table <csv> --task <name-or-yaml> --head abmil|abmil-gated|pma|pspg --out <dir> …`
struct CrossValCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crossval",
        abstract: "Patient-level stratified K-fold training of a MIL head (ABMIL, gated ABMIL, PMA, PsPG) on HDF5 slice features.")

    @OptionGroup var configFile: ConfigFileOption
    @Option(help: .path("Folder of <patient>.h5 feature files (Axial's, or CLEAR / STAMP / CLAM layout).")) var features: String
    @Option(help: .path("Clinical table (CSV: patient_id + label columns).")) var table: String
    @Option(help: .nameOrPath("Task name (Manifests/tasks/<name>.yaml) or a task YAML path.")) var task: String
    @Option(help: "Head: abmil, abmil-gated, pma or pspg.") var head: HeadKind
    @Option(help: .path("Output folder (task.yaml, splits.json, fold-*/…).")) var out: String
    @Option(help: "Number of folds.") var folds = 5
    @Option(help: "Seed of the splits, initialisation and bag sampling.") var seed: UInt64 = 0
    @Option(help: "Maximum epochs (early stopping and model selection on the inner validation split: macro AUROC, then loss).") var epochs = 32
    @Option(help: "Learning rate (Adam; CLEAR used 1e-4).") var lr: Float = 1e-3
    @Option(help: "Weight decay (Adam, L2).") var weightDecay: Float = 0
    @Option(help: "Bags per batch.") var batch = 64
    @Option(help: "Maximum rows per bag (0: no limit); key slices are kept, the rest sampled.") var maxBag = 512
    @Option(help: .list("Windows to use, comma-separated (default: all in the files).")) var windows: String?
    @Option(help: .path("CSV of key slices (patient_id, slice_index) kept when a bag is cut to --max-bag.")) var keySlices: String?
    @Option(help: "Epochs without validation improvement (AUROC, then loss) before stopping.") var patience = 8
    @Option(help: "Fraction of the training patients held out for validation.") var validationFraction = 0.2
    @Option(help: "Head width (default: the head's).") var hidden: Int?
    @Option(help: "PMA seeds k (default 1).") var seeds: Int?
    @Option(help: .path("PsPG: class-name embeddings (safetensors).")) var classEmbeddings: String?
    @Option(help: "PsPG: encode the class names with this text tower: clip_vit_b16 (OpenAI, QuickGELU), clip_vit_b16_gelu (open_clip ViT-B-16 LAION/DataComp) or biomedclip.") var textEncoder: ClassNameEncoder.Kind?
    @Option(help: .path("PsPG: the text tower's open_clip checkpoint (.safetensors).")) var textWeights: String?
    @Option(help: .path("PsPG + biomedclip: the WordPiece vocab.txt of BiomedCLIP's tokenizer.")) var textVocab: String?
    @Option(help: "PsPG: prompt template for the class names ({name} is replaced).") var promptTemplate = ClassNameEncoder.defaultTemplate
    @Option(help: "PsPG: weight of the pair co-occurrence loss (0: off).") var pairLoss: Float = 0
    @Option(help: "pooled (the files' feats) or dense: PsPG on each slice's dense tokens (files from axial extract --tokens dense; the spatial fusion runs over every slice's tokens).") var tokens: ExtractTokens = .pooled
    @Flag(help: "Train on the raw features (default: standardised with the training fold's per-feature mean and std, saved with the model).") var noStandardize = false
    @Option(help: "Instance-bootstrap resamples of each patient's score interval in prediction_ci.csv (0: none; each costs one forward pass per patient and model).") var ciResamples = 50
    @Flag(help: "Exclude patients whose feature file holds NaN / Inf rows, with a warning (default: stop naming them).") var skipNonfinite = false
    @Flag(help: "Log every epoch (default: one summary line per fold).") var verbose = false
    @Flag(help: "Only errors and the final line.") var quiet = false
    @Option(help: "Train only fold k (0-based; one cluster job per fold, then --merge).") var fold: Int?
    @Flag(help: "Check that every fold of <out>/splits.json is complete (after --fold jobs); trains nothing.") var merge = false

    func validate() throws {
        if merge { return }
        if maxBag < 0 { throw ValidationError("--max-bag must be ≥ 0 (0: no limit), got \(maxBag)") }
        do { try options().validate() } catch { throw ValidationError("\(error)") }
    }

    func options() -> CrossValOptions {
        var o = CrossValOptions(features: URL(fileURLWithPath: features), table: URL(fileURLWithPath: table), task: task, head: head,
                                out: URL(fileURLWithPath: out))
        o.folds = folds; o.seed = seed; o.epochs = epochs; o.learningRate = lr; o.weightDecay = weightDecay; o.batchSize = batch
        o.maxBag = maxBag > 0 ? maxBag : nil
        o.windows = windows.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        o.keySlices = keySlices.map { URL(fileURLWithPath: $0) }
        o.patience = patience; o.validationFraction = validationFraction; o.hidden = hidden; o.seeds = seeds
        o.classEmbeddings = classEmbeddings.map { URL(fileURLWithPath: $0) }; o.pairLossWeight = pairLoss
        o.textEncoder = textEncoder; o.textWeights = textWeights.map { URL(fileURLWithPath: $0) }
        o.textVocabulary = textVocab.map { URL(fileURLWithPath: $0) }; o.promptTemplate = promptTemplate
        o.standardize = !noStandardize; o.verbose = verbose; o.skipNonFinite = skipNonfinite; o.intervalResamples = max(0, ciResamples)
        o.onlyFold = fold
        o.tokens = tokens
        o.progress = quiet ? .quiet : nil
        o.taskDirectories = TaskSpec.searchDirectories(configFile: configFile.path.map { URL(fileURLWithPath: $0) })
        return o
    }

    func run() throws {
        if merge {
            do { print(try AxialPipeline.CrossVal.merge(out: URL(fileURLWithPath: out)).text + "  (next: axial statistics --preds \(out) --out \(out)/statistics)") } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
            return
        }
        var o = options()
        if quiet { o.log = { line in if line.hasPrefix("warning:") { FileHandle.standardError.write(Data((line + "\n").utf8)) } } }
        do {
            let r = try AxialPipeline.CrossVal.run(o)
            print("crossval: \(r.foldsTrained.count) fold(s) trained, \(r.foldsSkipped.count) skipped → \(out)  (next: axial statistics --preds \(out) --out \(out)/statistics)")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `axial deploy --models <crossval-dir or model files> --features <dir> --out <dir> [--table]`
struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Score a cohort with one or several trained fold models (mean ensemble).")

    @OptionGroup var configFile: ConfigFileOption
    @Option(parsing: .upToNextOption, help: .path("Crossval folders and/or model.safetensors files.")) var models: [String]
    @Option(help: .path("Folder of <patient>.h5 feature files (Axial's, or CLEAR / STAMP / CLAM layout).")) var features: String
    @Option(help: .path("Output folder (task.yaml, patient_preds.csv, slice_attention.csv).")) var out: String
    @Option(help: .path("Clinical table with labels (optional; scores every feature file without it).")) var table: String?
    @Option(help: .path("CSV of key slices (patient_id, slice_index).")) var keySlices: String?
    @Option(help: "Instance-bootstrap resamples of each patient's score interval in prediction_ci.csv (0: none; each costs one forward pass per patient and model).") var ciResamples = 50
    @Flag(help: "Exclude patients whose feature file holds NaN / Inf rows, with a warning (default: stop naming them).") var skipNonfinite = false
    @Option(help: .path("PsPG zero-shot: file of class names, one per line, scored instead of the trained classes through the model's text tower (labels from --table columns named as the classes).")) var classes: String?
    @Option(help: .path("PsPG zero-shot: the text tower checkpoint (default: the path recorded at training; its sha256 must match).")) var textWeights: String?
    @Option(help: .path("PsPG zero-shot + biomedclip: the WordPiece vocab.txt (default: the recorded path).")) var textVocab: String?
    @Option(help: .path("PsPG zero-shot: embeddings of the --classes names (safetensors: one [E] tensor per name or id, or embeddings [C, E]) instead of the text tower.")) var classEmbeddings: String?

    func run() throws {
        var o = DeployOptions(models: models.map { URL(fileURLWithPath: $0) }, features: URL(fileURLWithPath: features), out: URL(fileURLWithPath: out))
        o.table = table.map { URL(fileURLWithPath: $0) }
        o.keySlices = keySlices.map { URL(fileURLWithPath: $0) }
        o.skipNonFinite = skipNonfinite; o.intervalResamples = max(0, ciResamples)
        o.classes = classes.map { URL(fileURLWithPath: $0) }
        o.classEmbeddings = classEmbeddings.map { URL(fileURLWithPath: $0) }
        if o.classes == nil && o.classEmbeddings != nil {
            FileHandle.standardError.write(Data("error: --class-embeddings needs --classes (the names they embed)\n".utf8))
            throw ExitCode(1)
        }
        o.textWeights = textWeights.map { URL(fileURLWithPath: $0) }; o.textVocabulary = textVocab.map { URL(fileURLWithPath: $0) }
        do { try AxialPipeline.Deploy.run(o) } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
