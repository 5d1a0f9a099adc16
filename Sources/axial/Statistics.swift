import ArgumentParser
import AxialEval
import AxialPipeline
import Foundation

/// `axial statistics --preds <crossval-or-deploy-dir> --out <dir> [--task …] [--threshold 0.5] [--bootstrap 1000]`.
struct Statistics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "AUROC / AUPRC with bootstrap 95% CIs, macro/micro, F1, ROC/PR and attention plots from patient_preds.csv files.")

    @OptionGroup var configFile: ConfigFileOption

    @Option(help: .path("A crossval folder (fold-*/patient_preds.csv), a deploy folder (patient_preds.csv) or one CSV file."))
    var preds: String

    @Option(help: .path("Output folder (statistics.csv, statistics_per_fold.csv, statistics.md, SVG plots)."))
    var out: String

    @Option(help: .nameOrPath("Task name (Manifests/tasks/<name>.yaml) or YAML path; default: <preds>/task.yaml, else inferred from the columns."))
    var task: String?

    @Option(help: "Decision threshold on the scores for F1 / precision / recall (binary and multi-label).")
    var threshold: Double = 0.5

    @Option(help: "Bootstrap resamples for the 95% CIs (0: no CIs).")
    var bootstrap: Int = 1000

    @Option(help: "Seed of the bootstrap.")
    var seed: UInt64 = 0

    @Flag(help: "Resample within label strata (binary / multi-class) instead of plain patient resampling.")
    var stratifiedBootstrap = false

    @Flag(help: "Skip the per-patient attention plots.")
    var noAttentionPlots = false

    func validate() throws {
        guard bootstrap >= 0 && bootstrap <= 1_000_000 else { throw ValidationError("--bootstrap must be 0…1000000, got \(bootstrap)") }
        guard threshold.isFinite && threshold >= 0 && threshold <= 1 else { throw ValidationError("--threshold must be a number in [0, 1], got \(threshold)") }
    }

    func run() throws {
        let options = StatisticsOptions(
            threshold: threshold,
            bootstrap: BootstrapOptions(resamples: bootstrap, seed: seed, stratified: stratifiedBootstrap),
            attentionPlots: !noAttentionPlots)
        let result: StatisticsResult
        do {
            let spec = try task.map { try TaskSpec.load($0, directories: TaskSpec.searchDirectories(configFile: configFile.path.map { URL(fileURLWithPath: $0) })) }
            result = try StatisticsStage.run(preds: URL(fileURLWithPath: preds), out: URL(fileURLWithPath: out), task: spec, options: options)
        } catch let e as EvalError {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        }
        let m = result.pooled
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
        print("statistics: \(result.task.name) (\(result.task.kind.rawValue)), \(result.perFold.count) file(s); macro AUROC \(f(m.macroAUROC)), micro AUROC \(f(m.microAUROC))")
        if !m.excludedFromMacro.isEmpty {
            print("note: left out of the macro (one label value): " + m.excludedFromMacro.map { result.task.classes[$0].name }.joined(separator: ", "))
        }
        if let mean = result.meanFoldMacroAUROC, result.perFold.count > 1 { print("per-fold macro AUROC mean \(f(mean)) over \(result.perFold.count) folds") }
        if let note = result.foldDisagreement { print("note: \(note)") }
        print("wrote \(result.files.count) file(s) to \(out)")
    }
}
