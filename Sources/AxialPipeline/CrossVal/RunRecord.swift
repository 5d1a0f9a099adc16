import AxialCore
import AxialEval
import Foundation

/// `run.json` in a crossval output folder: the inputs its folds were trained from. A rerun into the
/// same `--out` continues (finished folds are skipped) only when they are the same; otherwise it
/// stops and says what changed, so folds of two setups are never mixed.
///
///     {"format": "axial-crossval-run/1",
///      "task": "…", "folds": 5, "seed": 0, "validation_fraction": 0.2,   split settings
///      "patients": 120, "labels_fingerprint": "…",                      cohort (patients + labels)
///      "features": ["vit_s16 (weights sha256 0123456789ab…)"],           feature provenance
///      "head": "abmil", "training": "epochs 32, lr 0.001, …",            what trains a fold
///      "created": "…"}
public struct RunRecord: Codable, Sendable, Equatable {
    public static let fileName = "run.json"
    public static let formatName = "axial-crossval-run/1"

    public var format = RunRecord.formatName
    public var task: String
    public var folds: Int
    public var seed: UInt64
    public var validationFraction: Double
    public var patients: Int
    public var labelsFingerprint: String
    public var features: [String]
    public var head: String
    public var training: String
    public var created: String

    enum CodingKeys: String, CodingKey {
        case format, task, folds, seed, patients, features, head, training, created
        case validationFraction = "validation_fraction", labelsFingerprint = "labels_fingerprint"
    }

    /// The record of a run with options `o` on `cohort` whose feature files came from `features`.
    init(_ o: CrossValOptions, task: TaskSpec, cohort: CohortLabels, features: [String]) {
        self.task = task.name; folds = o.folds; seed = o.seed; validationFraction = o.validationFraction
        patients = cohort.count; labelsFingerprint = cohort.fingerprint
        self.features = features.sorted(); head = o.head.rawValue + (o.tokens == .dense ? " on dense tokens" : "")
        training = "epochs \(o.epochs), lr \(o.learningRate), weight decay \(o.weightDecay), batch \(o.batchSize), max bag \(o.maxBag.map(String.init) ?? "none"), "
            + "patience \(o.patience), windows \(o.windows?.joined(separator: "+") ?? "all"), standardize \(o.standardize), "
            + "hidden \(o.hidden.map(String.init) ?? "default"), attention hidden \(o.attentionHidden.map(String.init) ?? "default"), "
            + "seeds \(o.seeds.map(String.init) ?? "default"), heads \(o.heads.map(String.init) ?? "default"), pair loss \(o.pairLossWeight)"
        created = ISO8601DateFormatter().string(from: Date())
    }

    /// What differs from `old`, in words (empty: the same inputs).
    func changes(since old: RunRecord) -> [String] {
        var c: [String] = []
        if old.task != task { c.append("task '\(old.task)' → '\(task)'") }
        if old.folds != folds { c.append("folds \(old.folds) → \(folds)") }
        if old.seed != seed { c.append("seed \(old.seed) → \(seed)") }
        if old.validationFraction != validationFraction { c.append("validation fraction \(old.validationFraction) → \(validationFraction)") }
        if old.patients != patients || old.labelsFingerprint != labelsFingerprint {
            c.append("cohort \(old.patients) patients (labels fingerprint \(old.labelsFingerprint)) → \(patients) patients (\(labelsFingerprint))")
        }
        if old.features != features { c.append("feature files made by \(old.features.joined(separator: "; ")) → \(features.joined(separator: "; "))") }
        if old.head != head { c.append("head \(old.head) → \(head)") }
        if old.training != training { c.append("training settings '\(old.training)' → '\(training)'") }
        return c
    }

    /// Continues when `<out>/run.json` records the same inputs (or does not exist yet: writes it);
    /// throws naming every change otherwise. Folders from before run.json: fold outputs present and
    /// no record → an error too (nothing to check them against).
    static func checkOrWrite(_ record: RunRecord, out: URL) throws -> Bool {
        let url = out.appendingPathComponent(fileName)
        if FileManager.default.fileExists(atPath: url.path) {
            let old: RunRecord
            do { old = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: url)) } catch {
                throw MILError.options("\(url.path): not a valid run record (\(error)); delete it only if the folder's folds match this run's inputs, or use another --out")
            }
            let changes = record.changes(since: old)
            guard changes.isEmpty else {
                throw MILError.options("\(out.path) holds a crossval run with other inputs — \(changes.joined(separator: "; ")); its folds would be mixed with this run's: use another --out, or delete the folder to start over")
            }
            return true
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        if entries.contains(where: { $0.hasPrefix("fold-") && FileManager.default.fileExists(atPath: out.appendingPathComponent($0).appendingPathComponent("model.safetensors").path) }) {
            throw MILError.options("\(out.path) has trained folds but no \(fileName) recording their inputs (made by an older Axial): they cannot be checked against this run; use another --out, or delete the fold-* folders to retrain")
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try e.encode(record), to: url)
        return false
    }
}
