import AxialCore
import AxialStore
import Foundation

/// One cross-validation fold: disjoint patient lists. `valid` is drawn from the training patients
/// only (never the test fold) and is used for early stopping / model selection.
public struct Fold: Sendable, Equatable, Codable {
    public var fold: Int
    public var train: [String]
    public var valid: [String]
    public var test: [String]
}

/// Contents of `splits.json`.
///
/// ```json
/// {
///   "format": "axial-splits/1",
///   "task": "lesion_location", "task_kind": "multilabel",
///   "method": "iterative-stratification",        // or "stratified-kfold"
///   "seed": 1337, "folds_count": 5, "validation_fraction": 0.2,
///   "created": "2025-01-01T12:00:00Z", "axial_version": "0.1.0",
///   "patients_count": 200,
///   "labels_fingerprint": "…",                   // FNV-1a 64 over sorted (patient, labels)
///   "folds": [{"fold": 0, "train": […], "valid": […], "test": […]}, …]
/// }
/// ```
/// Test folds are disjoint and cover every usable patient; patient ids are sorted inside each list.
public struct Splits: Sendable, Equatable, Codable {
    public var format = Splits.formatName
    public var task: String
    public var taskKind: TaskKind
    public var method: String
    public var seed: UInt64
    public var foldsCount: Int
    public var validationFraction: Double
    public var created: String
    public var axialVersion: String
    public var patientsCount: Int
    public var labelsFingerprint: String
    public var folds: [Fold]

    public static let formatName = "axial-splits/1"

    enum CodingKeys: String, CodingKey {
        case format, task, method, seed, created, folds
        case taskKind = "task_kind", foldsCount = "folds_count", validationFraction = "validation_fraction"
        case axialVersion = "axial_version", patientsCount = "patients_count", labelsFingerprint = "labels_fingerprint"
    }

    /// Every patient in the splits (the union of the test folds), sorted.
    public var patients: [String] { folds.flatMap(\.test).sorted() }
}

public enum Splitter {
    /// Stratified K-fold on one stratum key per item: items are grouped by key (keys ascending), each
    /// group is shuffled, the groups are concatenated and dealt round-robin to the folds. Each fold
    /// then holds ⌊n_c/K⌋ or ⌈n_c/K⌉ items of every stratum c, and fold sizes differ by at most one.
    /// Returns the fold of each item.
    public static func stratifiedKFold(strata: [Int], folds k: Int, rng: inout SplitMix64) -> [Int] {
        precondition(k >= 2, "need at least 2 folds, got \(k)")
        var assignment = [Int](repeating: 0, count: strata.count)
        var position = 0
        for key in Set(strata).sorted() {
            var members = strata.indices.filter { strata[$0] == key }
            rng.shuffle(&members)
            for i in members { assignment[i] = position % k; position += 1 }
        }
        return assignment
    }

    /// Iterative stratification for multi-label data (Sechidis, Tsoumakas & Vlahavas, ECML PKDD
    /// 2011, Algorithm 1). `labels[i][l]` is 1 for a positive label (0 / −1 otherwise); `ratios`
    /// are the desired subset proportions. Repeatedly takes the label with the fewest remaining
    /// positive items and gives each of its items to the subset that most wants that label (ties:
    /// the subset that most wants items overall, then at random). Items without any positive label
    /// go last to the subsets that most want items. Returns the subset of each item.
    public static func iterativeStratification(labels: [[Int]], ratios: [Double], rng: inout SplitMix64) -> [Int] {
        let n = labels.count, m = ratios.count
        precondition(m >= 2, "need at least 2 subsets")
        let total = ratios.reduce(0, +)
        let r = ratios.map { $0 / total }
        let nLabels = labels.first?.count ?? 0
        var order = Array(0..<n)
        rng.shuffle(&order)
        var desired = r.map { $0 * Double(n) }
        var desiredLabel = r.map { rj in (0..<nLabels).map { l in rj * Double(labels.reduce(0) { $0 + ($1[l] == 1 ? 1 : 0) }) } }
        var assignment = [Int](repeating: -1, count: n)
        var remainingPerLabel = (0..<nLabels).map { l in order.filter { labels[$0][l] == 1 } }

        func pick(_ candidates: [Int]) -> Int {
            candidates.count == 1 ? candidates[0] : candidates[rng.uniform(below: candidates.count)]
        }
        func argmaxAll(_ values: [Double], among idx: [Int]) -> [Int] {
            let best = idx.map { values[$0] }.max()!
            return idx.filter { values[$0] == best }
        }
        while true {
            // Label with the fewest (but > 0) unassigned positive items; lowest index on ties.
            var best = -1
            for l in 0..<nLabels {
                remainingPerLabel[l].removeAll { assignment[$0] >= 0 }
                if !remainingPerLabel[l].isEmpty && (best < 0 || remainingPerLabel[l].count < remainingPerLabel[best].count) { best = l }
            }
            guard best >= 0 else { break }
            for i in remainingPerLabel[best] where assignment[i] < 0 {
                var cands = argmaxAll(desiredLabel.map { $0[best] }, among: Array(0..<m))
                if cands.count > 1 { cands = argmaxAll(desired, among: cands) }
                let j = pick(cands)
                assignment[i] = j
                desired[j] -= 1
                for l in 0..<nLabels where labels[i][l] == 1 { desiredLabel[j][l] -= 1 }
            }
        }
        for i in order where assignment[i] < 0 {
            let j = pick(argmaxAll(desired, among: Array(0..<m)))
            assignment[i] = j
            desired[j] -= 1
        }
        return assignment
    }

    /// Splits `items` into (held-out, rest) with `fraction` held out, stratified: per stratum
    /// round(n_c·fraction) items (single-label), or iterative stratification (multi-label).
    static func holdOut(_ items: [Int], cohort: CohortLabels, fraction: Double, rng: inout SplitMix64) -> (held: [Int], rest: [Int]) {
        guard fraction > 0, items.count >= 2 else { return ([], items) }
        var held: [Int] = [], rest: [Int] = []
        if cohort.task.kind == .multilabel {
            let a = iterativeStratification(labels: items.map { cohort.labels[$0] }, ratios: [fraction, 1 - fraction], rng: &rng)
            for (k, i) in items.enumerated() { if a[k] == 0 { held.append(i) } else { rest.append(i) } }
        } else {
            var byKey: [Int: [Int]] = [:]
            for i in items { byKey[cohort.classIndex(i), default: []].append(i) }
            for key in byKey.keys.sorted() {
                var members = byKey[key]!
                rng.shuffle(&members)
                let h = Int((Double(members.count) * fraction).rounded())
                held += members.prefix(h); rest += members.dropFirst(h)
            }
        }
        return (held, rest)
    }

    /// Patient-level splits for a cohort: stratified K-fold (binary / multi-class) or iterative
    /// stratification (multi-label) for the test folds; per fold a stratified validation split of
    /// `validationFraction` of the training patients. Deterministic for a seed: patients are sorted
    /// by id first, so the table's row order does not matter.
    public static func make(_ cohort: CohortLabels, folds k: Int, seed: UInt64, validationFraction: Double = 0.2) -> Splits {
        precondition(k >= 2 && k <= cohort.count, "folds (\(k)) must be in 2…\(cohort.count) (the number of patients)")
        precondition(validationFraction >= 0 && validationFraction < 1, "validation fraction \(validationFraction) must be in [0, 1)")
        let sorted = cohort.patientIDs.indices.sorted { cohort.patientIDs[$0] < cohort.patientIDs[$1] }
        let ordered = CohortLabels(task: cohort.task, patientIDs: sorted.map { cohort.patientIDs[$0] }, labels: sorted.map { cohort.labels[$0] })
        var rng = SplitMix64(seed: seed)
        let assignment: [Int]
        let method: String
        if cohort.task.kind == .multilabel {
            assignment = iterativeStratification(labels: ordered.labels, ratios: Array(repeating: 1, count: k), rng: &rng)
            method = "iterative-stratification"
        } else {
            assignment = stratifiedKFold(strata: ordered.patientIDs.indices.map(ordered.classIndex), folds: k, rng: &rng)
            method = "stratified-kfold"
        }
        var result: [Fold] = []
        for f in 0..<k {
            let test = ordered.patientIDs.indices.filter { assignment[$0] == f }
            let train = ordered.patientIDs.indices.filter { assignment[$0] != f }
            let (valid, rest) = holdOut(train, cohort: ordered, fraction: validationFraction, rng: &rng)
            let ids = { (x: [Int]) in x.map { ordered.patientIDs[$0] }.sorted() }
            result.append(Fold(fold: f, train: ids(rest), valid: ids(valid), test: ids(test)))
        }
        return Splits(task: cohort.task.name, taskKind: cohort.task.kind, method: method, seed: seed, foldsCount: k,
                      validationFraction: validationFraction, created: FeatureStoreMetadata.now(),
                      axialVersion: AxialStore.axialVersion, patientsCount: cohort.count,
                      labelsFingerprint: cohort.fingerprint, folds: result)
    }

    /// Reuses `url` if it exists and matches the cohort and the request, else makes new splits and
    /// writes them atomically. A file made for another task, fold count, seed or patient set is an
    /// error naming the difference (delete it to re-split); changed labels for the same patients
    /// give a warning and the saved splits are kept.
    public static func loadOrCreate(at url: URL, cohort: CohortLabels, folds k: Int, seed: UInt64,
                                    validationFraction: Double = 0.2) throws -> (splits: Splits, reused: Bool, warnings: [String]) {
        if FileManager.default.fileExists(atPath: url.path) {
            let s = try read(url)
            let path = url.path
            let fix = "delete it to make new splits, or use the original settings"
            if s.task != cohort.task.name || s.taskKind != cohort.task.kind {
                throw EvalError.splits(path: path, reason: "made for task '\(s.task)' (\(s.taskKind.rawValue)), not '\(cohort.task.name)' (\(cohort.task.kind.rawValue)); \(fix)")
            }
            if s.foldsCount != k { throw EvalError.splits(path: path, reason: "has \(s.foldsCount) folds, \(k) requested; \(fix)") }
            if s.seed != seed { throw EvalError.splits(path: path, reason: "made with seed \(s.seed), \(seed) requested; \(fix)") }
            let saved = Set(s.patients), now = Set(cohort.patientIDs)
            if saved != now {
                let added = now.subtracting(saved).sorted(), removed = saved.subtracting(now).sorted()
                var parts: [String] = []
                if !added.isEmpty { parts.append("\(added.count) patient(s) not in the splits: \(Cohort.preview(added))") }
                if !removed.isEmpty { parts.append("\(removed.count) patient(s) in the splits but no longer in the cohort: \(Cohort.preview(removed))") }
                throw EvalError.splits(path: path, reason: "the cohort changed since the splits were made — \(parts.joined(separator: "; ")); \(fix)")
            }
            var warnings: [String] = []
            if s.labelsFingerprint != cohort.fingerprint {
                warnings.append("\(path): labels changed since the splits were made (same patients); keeping the saved splits, whose stratification may be slightly off")
            }
            return (s, true, warnings)
        }
        guard k >= 2 && k <= cohort.count else {
            throw EvalError.splits(path: url.path, reason: "--folds \(k) must be in 2…\(cohort.count) (the number of patients with labels)")
        }
        guard validationFraction >= 0 && validationFraction < 1 else {
            throw EvalError.splits(path: url.path, reason: "--validation-fraction \(validationFraction) must be in [0, 1)")
        }
        let s = make(cohort, folds: k, seed: seed, validationFraction: validationFraction)
        try write(s, to: url)
        return (s, false, [])
    }

    /// Reads and checks `splits.json` (format, disjoint and complete folds).
    public static func read(_ url: URL) throws -> Splits {
        let s: Splits
        do {
            s = try JSONDecoder().decode(Splits.self, from: Data(contentsOf: url))
        } catch let e as DecodingError {
            throw EvalError.splits(path: url.path, reason: "not a valid splits file: \(describe(e))")
        } catch {
            throw EvalError.splits(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard s.format == Splits.formatName else {
            throw EvalError.splits(path: url.path, reason: "format '\(s.format)', expected '\(Splits.formatName)'")
        }
        var seen = Set<String>()
        for f in s.folds {
            for id in f.test where !seen.insert(id).inserted {
                throw EvalError.splits(path: url.path, reason: "patient '\(id)' is in more than one test fold")
            }
            let tr = Set(f.train), va = Set(f.valid), te = Set(f.test)
            if let id = tr.intersection(va).union(tr.intersection(te)).union(va.intersection(te)).sorted().first {
                throw EvalError.splits(path: url.path, reason: "fold \(f.fold): patient '\(id)' is in more than one of train / valid / test")
            }
            if tr.union(va).union(te).count != s.patientsCount {
                throw EvalError.splits(path: url.path, reason: "fold \(f.fold) covers \(tr.union(va).union(te).count) patients, patients_count is \(s.patientsCount)")
            }
        }
        if s.folds.count != s.foldsCount || seen.count != s.patientsCount {
            throw EvalError.splits(path: url.path, reason: "\(s.folds.count) folds / \(seen.count) test patients do not match folds_count \(s.foldsCount) / patients_count \(s.patientsCount)")
        }
        return s
    }

    /// Writes `splits.json` atomically (temporary name + rename), keys sorted, pretty-printed.
    public static func write(_ splits: Splits, to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try AtomicFile.write(try enc.encode(splits), to: url)
        } catch let e as FileError {
            throw EvalError.io(path: url.path, reason: e.description)
        }
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return (c.codingPath.map(\.stringValue).joined(separator: ".") + " " + c.debugDescription).trimmingCharacters(in: .whitespaces)
        @unknown default: return "\(e)"
        }
    }
}
