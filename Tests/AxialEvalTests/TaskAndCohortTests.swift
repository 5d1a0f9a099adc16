import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialEval

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let tasksDirectory = repoRoot.appendingPathComponent("Manifests/tasks")

@Suite struct TaskSpecTests {
    @Test func shippedTasksParse() throws {
        let loc = try TaskSpec.load("lesion_location", tasksDirectory: tasksDirectory)
        #expect(loc.kind == .multilabel)
        #expect(loc.classes.map(\.name) == ["bone", "abdomen", "mediastinum", "liver", "lung", "kidney", "soft tissue", "pelvis"])
        #expect(loc.labelColumns[6] == "soft_tissue" && loc.scoreColumns[6] == "score_soft_tissue")
        let st = try TaskSpec.load("staging", tasksDirectory: tasksDirectory)
        #expect(st.kind == .multiclass && st.labelColumns == ["stage"] && st.classes.map(\.name) == ["I", "II", "III", "IV"])
        let b = try TaskSpec.load(tasksDirectory.appendingPathComponent("binary_example.yaml").path)
        #expect(b.kind == .binary && b.labelColumns == ["malignant"] && b.scoreColumns == ["score_malignant"])
    }

    @Test func rejectsBadFiles() {
        func fails(_ yaml: String, key: String) -> Bool {
            do { _ = try TaskSpec.parse(yaml, path: "t.yaml"); return false } catch let EvalError.task(_, k, _) { return k == key } catch { return false }
        }
        #expect(fails("name: x\nkind: binary\ncolumn: y\ncolour: red\n", key: "colour"))
        #expect(fails("name: x\nkind: ternary\n", key: "kind"))
        #expect(fails("name: x\nkind: multiclass\ncolumn: s\nclasses: [I]\n", key: "classes"))
        #expect(fails("name: x\nkind: multilabel\nclasses: [a, a]\n", key: "classes"))
        #expect(fails("name: x\nkind: multilabel\nclasses: [a]\ncolumns: {b: c}\n", key: "columns"))
        #expect(fails("name: x\nkind: binary\ncolumn: y\npositive_values: [1]\nnegative_values: [1]\n", key: "positive_values"))
        #expect(fails("kind: binary\ncolumn: y\n", key: "name"))
        #expect(throws: EvalError.self) { try TaskSpec.load("nonexistent", tasksDirectory: tasksDirectory) }
    }
}

@Suite struct CohortTests {
    let staging = try! TaskSpec.load("staging", tasksDirectory: tasksDirectory)
    let location = try! TaskSpec.load("lesion_location", tasksDirectory: tasksDirectory)

    @Test func reportsEveryProblemAtOnce() throws {
        let csv = """
        patient_id,stage,age
        p1,I,50
        p2,Stage II,61
        p3,,70
        p1,III,44
        p4,iv,80
        p5,IV,55
        p6,II,58
        """
        let table = try CSVTable.parse(csv, path: "clin.csv")
        let files: Set<String> = ["p1.h5", "p3.h5", "p4.h5", "p5.h5", "p9.h5"]
        let (labels, report) = Cohort.check(table, path: "clin.csv", task: staging, featureFiles: files)
        let kinds = report.issues.map(\.kind)
        #expect(report.errors.count == 3)  // Stage II, duplicate p1, iv
        #expect(kinds.filter { $0 == .invalidLabel }.count == 2 && kinds.contains(.duplicatePatient))
        #expect(report.issues.contains { $0.message.contains("'Stage II'") && $0.message.contains("did you mean 'II'") })
        #expect(report.issues.contains { $0.message.contains("'iv'") && $0.message.contains("did you mean 'IV'") })
        #expect(report.issues.contains { $0.kind == .missingFeatures && $0.message.contains("p6") })
        #expect(report.issues.contains { $0.kind == .unknownPatient && $0.message.contains("p9.h5") })
        #expect(report.issues.contains { $0.kind == .allLabelsUnknown && $0.message.contains("p3") })
        #expect(labels.patientIDs == ["p1", "p5"])
        #expect(report.description.contains("clin.csv: 3 error(s)"))
    }

    @Test func missingColumnsAndTypos() throws {
        let t1 = try CSVTable.parse("patient_id,bone\np1,1\n")
        let r1 = Cohort.check(t1, path: "a.csv", task: location, featureFiles: nil).report
        #expect(r1.errors.count == 1 && r1.errors[0].kind == .missingColumn && r1.errors[0].message.contains("'soft_tissue'"))

        let header = "patient_id," + location.labelColumns.joined(separator: ",")
        let t2 = try CSVTable.parse(header + "\np1,1,0,0,0,0,0,-1,\np2,yes,0,0,0,1.0,0,0,0\np3,0,1,0,0,0,0,0,1\n")
        let (labels, r2) = Cohort.check(t2, path: "b.csv", task: location, featureFiles: nil)
        #expect(r2.errors.count == 2)
        #expect(r2.errors.contains { $0.message.contains("'yes'") && $0.message.contains("positive_values") })
        #expect(r2.errors.contains { $0.message.contains("'1.0'") && $0.message.contains("did you mean '1'") })
        #expect(labels.labels == [[1, 0, 0, 0, 0, 0, -1, -1], [0, 1, 0, 0, 0, 0, 0, 1]])
    }

    @Test func loadThrowsWithTheReport() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-cohort-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("clin.csv")
        try "patient_id,stage\na,I\nb,V\n".write(to: url, atomically: true, encoding: .utf8)
        #expect { try Cohort.load(table: url, task: staging) } throws: { e in
            guard case EvalError.cohort(let r) = e else { return false }
            return r.errors.count == 1 && r.description.contains("line 3") && r.description.contains("'V'")
        }
        try "patient_id,stage\na,I\nb,IV\nc,\n".write(to: url, atomically: true, encoding: .utf8)
        let (labels, report) = try Cohort.load(table: url, task: staging)
        #expect(labels.count == 2 && labels.classIndex(1) == 3 && report.warnings.contains { $0.kind == .allLabelsUnknown })
    }
}
