import AxialImaging
import Foundation

// PsPG's data format (REFERENCE.md §5): JSON lines {"id", "filepath", "text", "labels": [...]},
// labels 1 / 0 / −1 (−1 = unknown, ignored by the loss and the metrics). `filepath` is relative to
// the jsonl file's folder unless absolute; `text` (the report) is optional and unused by training.
// Class names: one per line in a text file (`--classes`), in label order.

public enum ClassifyDataError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case badLine(path: String, line: Int, reason: String)
    case empty(path: String)
    case badClasses(path: String, line: Int, reason: String)
    case image(path: String, id: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read (\(r))"
        case .badLine(let p, let l, let r): return "\(p):\(l): \(r)"
        case .empty(let p): return "\(p): no records"
        case .badClasses(let p, let l, let r): return "\(p):\(l): \(r)"
        case .image(let p, let id, let r): return "\(p) (record '\(id)'): \(r)"
        }
    }
}

public struct ClassifyRecord: Sendable, Equatable {
    public var id: String
    /// Resolved image path.
    public var path: String
    public var text: String
    /// 1 / 0 / −1 per class; empty when the file has no labels (predict).
    public var labels: [Int]
}

public enum ClassifyData {
    /// Reads a jsonl file. `classes`: the expected label count (nil: every line has the first line's
    /// count); `requireLabels` false allows lines without "labels" (prediction).
    public static func load(_ path: String, classes: Int?, requireLabels: Bool = true) throws -> [ClassifyRecord] {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ClassifyDataError.unreadable(path: path, reason: error.localizedDescription) }
        guard let text = String(data: data, encoding: .utf8) else { throw ClassifyDataError.unreadable(path: path, reason: "not UTF-8") }
        let folder = url.deletingLastPathComponent()
        var records: [ClassifyRecord] = [], seen: [String: Int] = [:]
        var expected = classes
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let no = n + 1
            func bad(_ r: String) -> ClassifyDataError { .badLine(path: path, line: no, reason: r) }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw bad("not a JSON object")
            }
            let id: String
            if let s = obj["id"] as? String { id = s } else if let i = obj["id"] as? Int { id = String(i) } else {
                throw bad("field 'id' missing or not a string / integer")
            }
            if let first = seen[id] { throw bad("id '\(id)' repeats line \(first)") }
            seen[id] = no
            guard let file = obj["filepath"] as? String, !file.isEmpty else { throw bad("field 'filepath' missing or not a string") }
            let resolved = file.hasPrefix("/") ? file : folder.appendingPathComponent(file).path
            var reportText = ""
            if let t = obj["text"] {
                guard let s = t as? String else { throw bad("field 'text' is not a string") }
                reportText = s
            }
            var labels: [Int] = []
            if let l = obj["labels"] {
                guard let arr = l as? [Any] else { throw bad("field 'labels' is not an array") }
                for (k, v) in arr.enumerated() {
                    guard let num = v as? NSNumber, let i = Int(exactly: num.doubleValue), [-1, 0, 1].contains(i) else {
                        throw bad("labels[\(k)] = \(v) must be 1, 0 or -1")
                    }
                    labels.append(i)
                }
                if let e = expected, labels.count != e { throw bad("\(labels.count) labels, expected \(e) (one per class)") }
                expected = labels.count
            } else if requireLabels {
                throw bad("field 'labels' missing")
            }
            records.append(ClassifyRecord(id: id, path: resolved, text: reportText, labels: labels))
        }
        if records.isEmpty { throw ClassifyDataError.empty(path: path) }
        return records
    }

    /// Class names, one per non-empty line (trimmed); duplicates are an error.
    public static func loadClasses(_ path: String) throws -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ClassifyDataError.unreadable(path: path, reason: error.localizedDescription)
        }
        var names: [String] = [], seen: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if name.isEmpty { continue }
            if let first = seen[name] { throw ClassifyDataError.badClasses(path: path, line: n + 1, reason: "class '\(name)' repeats line \(first)") }
            seen[name] = n + 1
            names.append(name)
        }
        if names.isEmpty { throw ClassifyDataError.empty(path: path) }
        return names
    }

    /// The record's image as RGB planes (PNG; gray is expanded to 3 channels).
    public static func image(_ r: ClassifyRecord) throws -> PlanarImage8 {
        guard FileManager.default.fileExists(atPath: r.path) else { throw ClassifyDataError.image(path: r.path, id: r.id, reason: "no such file") }
        do { return PlanarImage8(try PNG.read(URL(fileURLWithPath: r.path))).rgb } catch {
            throw ClassifyDataError.image(path: r.path, id: r.id, reason: "\(error)")
        }
    }
}
