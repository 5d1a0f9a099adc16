import AxialTestSupport
import ArgumentParser
import AxialEval
import AxialModels
import AxialNN
import AxialPipeline
import AxialStore
import AxialTensor
import Foundation

/// `axial-dev pspg-zeroshot --out <dir>` — seen- and unseen-label AUC of the slice-level PsPG head on a
/// synthetic multi-label cohort (Tools/experiments/pspg_zeroshot.sh, README "PsPG zero-shot").
///
/// Cohort (`SyntheticCohort`): `seen + unseen` classes, each a random unit direction u_c in the D-dim
/// slice features, added (signal 4, noise sd 1) to 2 consecutive slices of the patients positive for it.
/// `axial crossval --head pspg` (3 folds) is trained on the seen classes' labels only; the unseen
/// classes' signal is in the features but never labelled. Seen AUC: macro AUROC of the out-of-fold
/// scores. Unseen AUC: `axial deploy --classes <unseen names>` of the 3 fold models on every patient,
/// macro AUROC against the unseen classes' true labels (never used in training). Class-name embeddings:
///   tower   — a random-init CLIP text tower (`clip_test`) on the names: they carry no meaning;
///   aligned — a file of e_c = normalize(M u_c), M a fixed random E×D matrix: each name's embedding
///             encodes its class's feature direction (what a text tower trained on matching data gives);
///   random  — a file of random unit vectors per name (control).
struct PsPGZeroShotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pspg-zeroshot", abstract: "Seen / unseen-label AUC of the PsPG head on a synthetic multi-label cohort.")
    @Option(help: "Working folder.") var out: String
    @Option var patients = 200
    @Option var dimension = 8
    @Option var epochs = 25
    @Option var seed: UInt64 = 0
    @Option(help: "Comma-separated settings: tower, aligned, random.") var settings = "tower,aligned,random"

    static let seenNames = ["liver", "lung", "kidney", "bone", "spleen", "pancreas", "stomach", "colon", "adrenal", "thyroid"]
    static let unseenNames = ["heart", "bladder", "prostate"]

    func run() throws {
        do {
            let root = URL(fileURLWithPath: out)
            try? FileManager.default.removeItem(at: root)
            let all = Self.seenNames + Self.unseenNames
            let task = try TaskSpec.parse("name: zs_all\nkind: multilabel\nclasses: [\(all.joined(separator: ", "))]\n")
            var cfg = SyntheticCohortConfig(task: task)
            cfg.patients = patients; cfg.featureDimension = dimension; cfg.slices = 8...12
            cfg.windows = [StoredWindow(name: "abdomen", width: 400, level: 40)]
            cfg.informativeSlices = 2; cfg.signal = 4; cfg.prevalence = 0.3; cfg.seed = seed
            let cohort = SyntheticCohort(cfg)
            let features = try cohort.write(to: root)
            // Training table and task: the seen classes only.
            let seenTaskYAML = "name: zs_seen\nkind: multilabel\nclasses: [\(Self.seenNames.joined(separator: ", "))]\n"
            let taskURL = root.appendingPathComponent("seen.yaml")
            try seenTaskYAML.write(to: taskURL, atomically: true, encoding: .utf8)
            let seen = Self.seenNames.count
            var table = CSVTable(header: ["patient_id"] + Self.seenNames)
            for p in cohort.patients { table.rows.append([p.id] + p.labels.prefix(seen).map(String.init)) }
            let tableURL = root.appendingPathComponent("seen.csv")
            try table.write(to: tableURL)
            let unseenURL = root.appendingPathComponent("unseen.txt")
            try (Self.unseenNames.joined(separator: "\n") + "\n").write(to: unseenURL, atomically: true, encoding: .utf8)

            // Embedding files.
            let e = 32
            var g = RandomGenerator(seed: seed &+ 77)
            let m = (0..<(e * dimension)).map { _ in Float(g.normal()) }
            func unit(_ v: [Float]) -> Tensor {
                let n = v.map { $0 * $0 }.reduce(0, +).squareRoot()
                return Tensor(shape: [v.count], scalars: v.map { $0 / n })
            }
            var aligned: [String: Tensor] = [:], random: [String: Tensor] = [:]
            for (c, name) in all.enumerated() {
                let u = cohort.classDirections[c]
                aligned[name] = unit((0..<e).map { i in (0..<dimension).reduce(Float(0)) { $0 + m[i * dimension + $1] * u[$1] } })
                random[name] = unit((0..<e).map { _ in Float(g.normal()) })
            }
            let alignedURL = root.appendingPathComponent("aligned_embeddings.safetensors")
            let randomURL = root.appendingPathComponent("random_embeddings.safetensors")
            try SafeTensors.write(aligned, metadata: [:], to: alignedURL)
            try SafeTensors.write(random, metadata: [:], to: randomURL)
            var tg = RandomGenerator(seed: seed &+ 5)
            let towerURL = root.appendingPathComponent("clip_test.safetensors")
            try SafeTensors.write(CLIPModel(.test, generator: &tg).stateDict(), metadata: [:], to: towerURL)

            print("pspg-zeroshot: \(patients) patients, D \(dimension), \(seen) seen + \(Self.unseenNames.count) unseen classes, 3 folds, ≤\(epochs) epochs, seed \(seed)")
            for setting in settings.split(separator: ",").map(String.init) {
                let t0 = Date()
                let cv = root.appendingPathComponent("cv-\(setting)")
                var o = CrossValOptions(features: features, table: tableURL, task: taskURL.path, head: .pspg, out: cv)
                o.folds = 3; o.seed = seed; o.epochs = epochs; o.patience = 10; o.batchSize = 16; o.learningRate = 1e-3
                o.hidden = 32; o.intervalResamples = 0; o.log = { _ in }
                var d = DeployOptions(models: [cv], features: features, out: root.appendingPathComponent("deploy-\(setting)"))
                d.classes = unseenURL; d.intervalResamples = 0; d.log = { _ in }
                switch setting {
                case "tower": o.textEncoder = .clipTest; o.textWeights = towerURL
                case "aligned": o.classEmbeddings = alignedURL; d.classEmbeddings = alignedURL
                case "random": o.classEmbeddings = randomURL; d.classEmbeddings = randomURL
                default: throw ValidationError("unknown setting \(setting)")
                }
                _ = try CrossVal.run(o)
                let seenSummary = Metrics.summarize(try Predictions.load(cv).pooled)
                try Deploy.run(d)
                let dep = try Predictions.load(root.appendingPathComponent("deploy-\(setting)")).pooled
                let truth = Dictionary(uniqueKeysWithValues: cohort.patients.map { ($0.id, Array($0.trueLabels.suffix(Self.unseenNames.count))) })
                let unseenData = LabelScores(classes: Self.unseenNames, patientIDs: dep.patientIDs, labels: dep.patientIDs.map { truth[$0]! }, scores: dep.scores)
                let u = Metrics.summarize(unseenData)
                func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
                print("  \(setting): seen macro AUROC \(f(seenSummary.macroAUROC)) (out-of-fold); unseen macro AUROC \(f(u.macroAUROC)) ("
                      + zip(Self.unseenNames, u.auroc).map { "\($0) \(f($1))" }.joined(separator: ", ")
                      + String(format: "); %.0f s", Date().timeIntervalSince(t0)))
            }
        } catch let e as ValidationError { throw e } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
