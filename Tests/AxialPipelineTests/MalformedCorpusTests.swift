import AxialEval
import AxialImaging
import AxialPipeline
import AxialStore
import AxialTensor
import Foundation
import Testing

/// The committed corpus of malformed inputs (issue 17; `Tools/fixtures/make_malformed_corpus.py`
/// → `Tests/Fixtures/malformed/`, `manifest.tsv`): each file goes through its reader's one entry
/// point, must be refused (never accepted, never a crash) with a message holding the manifest's
/// substring (the field, tag, tensor, dataset or line) and naming the file.
/// The `config` rows run in axialTests (they need the CLI's schema).
public enum MalformedCorpus {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/malformed")
    public static let repo = root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public struct Case: Sendable { public let file: String; public let reader: String; public let expected: String }

    public static func cases() throws -> [Case] {
        let text = try String(contentsOf: root.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Case(file: f[0], reader: f[1], expected: f[2])
        }
    }
}

@Suite struct MalformedCorpusTests {
    /// Runs one file through its reader; returns the error text, or nil when the reader accepted it.
    static func refusal(_ c: MalformedCorpus.Case) throws -> String? {
        let url = MalformedCorpus.root.appendingPathComponent(c.file)
        do {
            switch c.reader {
            case "dicom":
                let found = try DICOMReader().scan(url)
                if let p = found.problems.first { return "\(p.path): \(p.reason)" }
                let v = try found.series.map { try DICOMReader().read($0) }
                return v.isEmpty ? "\(url.path): no series" : nil
            case "nifti": _ = try NIfTIReader.readFile(url.path)
            case "safetensors": _ = try SafeTensors.readWeights(url)
            case "features": _ = try FeatureStore.read(url)
            case "png": _ = try PNG.read(url)
            case "labels":
                let task = try TaskSpec.load("binary_example", tasksDirectory: MalformedCorpus.repo.appendingPathComponent("Manifests/tasks"))
                _ = try Cohort.load(table: url, task: task)
            case "lesions": _ = try LesionTable.read(url)
            case "task": _ = try TaskSpec.load(url.path)
            case "windows": _ = try WindowPresets.load(url)
            default: Issue.record("unknown reader \(c.reader) for \(c.file)")
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    @Test func corpusHasEveryFormatAndAtLeastForty() throws {
        let all = try MalformedCorpus.cases()
        #expect(all.count >= 40)
        let readers = Set(all.map(\.reader))
        for r in ["dicom", "nifti", "safetensors", "features", "png", "labels", "task", "windows", "config"] {
            #expect(readers.contains(r), "no malformed \(r) file")
        }
        for c in all {
            let size = (try? FileManager.default.attributesOfItem(atPath: MalformedCorpus.root.appendingPathComponent(c.file).path)[.size] as? Int) ?? -1
            #expect(size >= 0 && size <= 16384, "\(c.file): \(size) bytes")
        }
    }

    @Test func everyMalformedFileIsRefusedWithItsMessage() throws {
        for c in try MalformedCorpus.cases() where c.reader != "config" {
            let why = try Self.refusal(c)
            guard let why else { Issue.record("\(c.file) (\(c.reader)): accepted"); continue }
            #expect(why.contains(c.expected), "\(c.file) (\(c.reader)): \(why)")
            #expect(why.contains(c.file), "\(c.file) (\(c.reader)): the message does not name the file: \(why)")
        }
    }
}
