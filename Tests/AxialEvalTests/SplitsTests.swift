import AxialCore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialEval

func syntheticSingleLabel(_ n: Int, classes: Int, seed: UInt64, kind: TaskKind = .multiclass) -> CohortLabels {
    var rng = SplitMix64(seed: seed)
    let names = (0..<classes).map { "c\($0)" }
    let task = TaskSpec(name: "t", kind: kind, classes: names.map { TaskClass(name: $0, id: $0, column: nil) }, labelColumn: "y")
    // Imbalanced class sizes: class c drawn with weight c+1.
    let labels: [[Int]] = (0..<n).map { _ in
        var u = rng.uniform(below: classes * (classes + 1) / 2), k = 0
        while u >= k + 1 { u -= k + 1; k += 1 }
        return kind == .binary ? [k] : (0..<classes).map { $0 == k ? 1 : 0 }
    }
    return CohortLabels(task: task, patientIDs: (0..<n).map { String(format: "pt%03d", $0) }, labels: labels)
}

func syntheticMultiLabel(_ n: Int, seed: UInt64) -> CohortLabels {
    var rng = SplitMix64(seed: seed)
    let prevalence = [0.5, 0.3, 0.15, 0.08, 0.04, 0.25]
    let task = TaskSpec(name: "ml", kind: .multilabel, classes: prevalence.indices.map { TaskClass(name: "l\($0)", id: "l\($0)", column: "l\($0)") })
    let labels = (0..<n).map { _ in prevalence.map { rng.nextUniform() < $0 ? 1 : (rng.nextUniform() < 0.05 ? -1 : 0) } }
    return CohortLabels(task: task, patientIDs: (0..<n).map { "m\($0)" }, labels: labels)
}

func checkPartition(_ s: Splits, _ cohort: CohortLabels) {
    let all = Set(cohort.patientIDs)
    let tests = s.folds.flatMap(\.test)
    #expect(tests.count == all.count && Set(tests) == all)  // disjoint + covering
    for f in s.folds {
        let tr = Set(f.train), va = Set(f.valid), te = Set(f.test)
        #expect(tr.isDisjoint(with: va) && tr.isDisjoint(with: te) && va.isDisjoint(with: te))
        #expect(tr.union(va).union(te) == all)
    }
}

@Suite struct SplitsTests {
    @Test(arguments: [(97, 3, 5), (40, 2, 4), (203, 4, 5)])
    func stratifiedKFoldProperties(_ n: Int, _ classes: Int, _ k: Int) {
        let cohort = syntheticSingleLabel(n, classes: classes, seed: UInt64(n), kind: classes == 2 ? .binary : .multiclass)
        let s = Splitter.make(cohort, folds: k, seed: 42)
        checkPartition(s, cohort)
        #expect(s.method == "stratified-kfold" && s.folds.count == k)
        let index = Dictionary(uniqueKeysWithValues: cohort.patientIDs.enumerated().map { ($1, $0) })
        for c in 0..<classes {
            let nc = cohort.patientIDs.indices.filter { cohort.classIndex($0) == c }.count
            let ideal = Double(nc) / Double(k)
            for f in s.folds {
                let inFold = f.test.filter { cohort.classIndex(index[$0]!) == c }.count
                #expect(abs(Double(inFold) - ideal) < 1, "class \(c) fold \(f.fold): \(inFold) vs \(ideal)")
                // Validation split is stratified too: its class share is within 1 of the ideal.
                let trainC = (f.train + f.valid).filter { cohort.classIndex(index[$0]!) == c }.count
                let validC = f.valid.filter { cohort.classIndex(index[$0]!) == c }.count
                #expect(abs(Double(validC) - 0.2 * Double(trainC)) <= 0.5 + 1e-9)
            }
        }
        let sizes = s.folds.map(\.test.count)
        #expect(sizes.max()! - sizes.min()! <= 1)
        // Deterministic for a seed, independent of row order; another seed differs.
        let shuffled = CohortLabels(task: cohort.task, patientIDs: cohort.patientIDs.reversed(), labels: cohort.labels.reversed())
        #expect(Splitter.make(shuffled, folds: k, seed: 42).folds == s.folds)
        #expect(Splitter.make(cohort, folds: k, seed: 43).folds != s.folds)
    }

    /// Label-distribution spread across folds: iterative stratification beats random K-fold.
    @Test func iterativeStratificationBalancesLabels() {
        let cohort = syntheticMultiLabel(150, seed: 3)
        let k = 5
        func spread(_ assignment: [Int]) -> Double {
            var total = 0.0
            for l in cohort.task.classes.indices {
                let pos = cohort.patientIDs.indices.filter { cohort.labels[$0][l] == 1 }
                let ideal = Double(pos.count) / Double(k)
                for f in 0..<k { total += abs(Double(pos.filter { assignment[$0] == f }.count) - ideal) }
            }
            return total
        }
        var iterative = 0.0, random = 0.0
        for seed in 0..<10 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            iterative += spread(Splitter.iterativeStratification(labels: cohort.labels, ratios: Array(repeating: 1, count: k), rng: &rng))
            var order = Array(0..<cohort.count)
            rng.shuffle(&order)
            var a = [Int](repeating: 0, count: cohort.count)
            for (pos, i) in order.enumerated() { a[i] = pos % k }
            random += spread(a)
        }
        #expect(iterative < 0.5 * random, "iterative \(iterative) vs random \(random)")
        let s = Splitter.make(cohort, folds: k, seed: 9)
        checkPartition(s, cohort)
        #expect(s.method == "iterative-stratification")
        let sizes = s.folds.map(\.test.count)
        #expect(sizes.max()! - sizes.min()! <= 2)
        #expect(Splitter.make(cohort, folds: k, seed: 9).folds == s.folds)
    }

    @Test func splitsFileIsReusedOrRejected() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-splits-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("splits.json")
        let cohort = syntheticSingleLabel(30, classes: 2, seed: 1, kind: .binary)
        let first = try Splitter.loadOrCreate(at: url, cohort: cohort, folds: 3, seed: 5)
        #expect(!first.reused)
        let again = try Splitter.loadOrCreate(at: url, cohort: cohort, folds: 3, seed: 5)
        #expect(again.reused && again.splits == first.splits && again.warnings.isEmpty)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"format\" : \"axial-splits/1\"") && text.contains("\"labels_fingerprint\""))

        var relabeled = cohort
        relabeled.labels[0][0] = 1 - relabeled.labels[0][0]
        #expect(try Splitter.loadOrCreate(at: url, cohort: relabeled, folds: 3, seed: 5).warnings.count == 1)

        var grown = cohort
        grown.patientIDs.append("new-patient"); grown.labels.append([1])
        #expect { try Splitter.loadOrCreate(at: url, cohort: grown, folds: 3, seed: 5) } throws: { e in
            "\(e)".contains("cohort changed") && "\(e)".contains("new-patient")
        }
        #expect { try Splitter.loadOrCreate(at: url, cohort: cohort, folds: 4, seed: 5) } throws: { "\($0)".contains("3 folds") }
        #expect { try Splitter.loadOrCreate(at: url, cohort: cohort, folds: 3, seed: 6) } throws: { "\($0)".contains("seed 5") }
        try "{\"format\": \"axial-splits/1\"}".write(to: url, atomically: true, encoding: .utf8)
        #expect { try Splitter.read(url) } throws: { "\($0)".contains("missing key") }
    }
}
