import Foundation

/// RFC 4180 CSV: comma-separated, CRLF or LF line ends accepted on reading, fields containing a
/// comma, quote, CR or LF (or leading/trailing spaces) written in double quotes with `"` doubled.
/// Used for manifests, clinical tables, error lists and results.
public enum CSV {
    /// One field, quoted when needed.
    public static func escape(_ field: String) -> String {
        // Scalars, not Characters: "\r\n" is one Character in Swift.
        let needsQuotes = field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            || field.hasPrefix(" ") || field.hasSuffix(" ")
        guard needsQuotes else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// One record with its line end (`\n`).
    public static func line(_ fields: [String]) -> String {
        fields.map(escape).joined(separator: ",") + "\n"
    }

    /// A whole document.
    public static func format(_ rows: [[String]]) -> String { rows.map(line).joined() }

    /// One record and the line it starts on (1-based), for error messages.
    public struct Record: Sendable, Equatable {
        public var fields: [String]
        public var line: Int
    }

    /// Parses a document into records. `path` only labels errors. A trailing newline does not add an
    /// empty record; an unterminated quoted field is an error naming the line where it started.
    public static func parse(_ text: String, path: String = "<csv>") throws -> [[String]] {
        try records(text, path: path).map(\.fields)
    }

    /// As `parse`, keeping each record's first line; a leading UTF-8 byte-order mark is skipped.
    public static func records(_ text: String, path: String = "<csv>") throws -> [Record] {
        var records: [Record] = []
        var recordLine = 1
        var record: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var fieldWasQuoted = false
        var line = 1, quoteStartLine = 1
        let bytes = Array(text.utf8)
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }
        func endRecord() {
            endField()
            records.append(Record(fields: record, line: recordLine))
            record = []
        }
        while i < bytes.count {
            let c = bytes[i]
            if inQuotes {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(c); i += 2; continue
                    }
                    inQuotes = false
                } else {
                    if c == UInt8(ascii: "\n") { line += 1 }
                    field.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: ","):
                endField()
            case UInt8(ascii: "\r"):
                if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n") { i += 1 }
                endRecord(); line += 1; recordLine = line
            case UInt8(ascii: "\n"):
                endRecord(); line += 1; recordLine = line
            case UInt8(ascii: "\""):
                if field.isEmpty && !fieldWasQuoted {
                    inQuotes = true; fieldWasQuoted = true; quoteStartLine = line
                } else {
                    throw FileError.csv(path: path, line: line, reason: "stray quote inside an unquoted field")
                }
            default:
                if fieldWasQuoted {
                    throw FileError.csv(path: path, line: line, reason: "text after a closing quote")
                }
                field.append(c)
            }
            i += 1
        }
        if inQuotes { throw FileError.csv(path: path, line: quoteStartLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !record.isEmpty || fieldWasQuoted { endRecord() }
        return records
    }
}

/// A CSV file with a header row; rows are accessed by column name.
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]

    public init(header: [String], rows: [[String]] = []) {
        self.header = header; self.rows = rows
    }

    /// Reads a file; every row must have as many fields as the header.
    public static func read(_ url: URL) throws -> CSVTable {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw FileError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, path: url.path)
    }

    public static func parse(_ text: String, path: String = "<csv>") throws -> CSVTable {
        var records = try CSV.parse(text, path: path)
        guard !records.isEmpty else { throw FileError.csv(path: path, line: 1, reason: "empty file (no header)") }
        let header = records.removeFirst()
        for (k, r) in records.enumerated() where r.count != header.count {
            if r == [""] { continue }
            throw FileError.csv(path: path, line: k + 2, reason: "\(r.count) fields, header has \(header.count)")
        }
        return CSVTable(header: header, rows: records.filter { $0 != [""] })
    }

    /// Index of `name`, or an error naming the file and the column.
    public func columnIndex(_ name: String, path: String = "<csv>") throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw FileError.csv(path: path, line: 1, reason: "no column '\(name)' (columns: \(header.joined(separator: ", ")))")
        }
        return i
    }

    /// All values of a column.
    public func column(_ name: String, path: String = "<csv>") throws -> [String] {
        let i = try columnIndex(name, path: path)
        return rows.map { $0[i] }
    }

    public var text: String { CSV.format([header] + rows) }

    /// Writes the table atomically.
    public func write(to url: URL) throws { try AtomicFile.write(Data(text.utf8), to: url) }
}

/// Appends whole records to a CSV file (header written when the file is new). Each `append` is one
/// `write(2)` on an `O_APPEND` descriptor followed by `fsync`, so concurrent appenders never
/// interleave records and a killed run leaves only complete records.
public final class CSVAppender: @unchecked Sendable {
    public let url: URL
    private let fd: Int32
    private let lock = NSLock()

    public init(url: URL, header: [String]) throws {
        self.url = url
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw FileError.io(path: url.path, reason: "cannot open for appending: \(String(cString: strerror(errno)))") }
        self.fd = fd
        var st = stat()
        if fstat(fd, &st) == 0 && st.st_size == 0 { try append([header]) }
    }

    deinit { close(fd) }

    /// Appends `records` in one write.
    public func append(_ records: [[String]]) throws {
        guard !records.isEmpty else { return }
        let bytes = Array(CSV.format(records).utf8)
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.io(path: url.path, reason: "cannot append: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        fsync(fd)
    }
}
