import Foundation

/// Write-to-a-temporary-name-then-rename, so a killed run never leaves a half-written file under
/// its final name. The temporary lives in the destination's folder (same file system, so
/// `rename(2)` is atomic) and starts with a dot: `.<name>.tmp-<pid>-<random>`.
public enum AtomicFile {
    /// A fresh temporary path next to `url`.
    public static func temporaryURL(for url: URL) -> URL {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(tag)")
    }

    /// Renames `temporary` to `url`, replacing `url` if it exists (files) — atomic on POSIX.
    public static func commit(_ temporary: URL, to url: URL) throws {
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw FileError.io(path: url.path, reason: "cannot rename \(temporary.lastPathComponent): \(reason)")
        }
    }

    /// Writes `data` to `url` atomically, creating the parent folder if needed.
    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw FileError.io(path: folder.path, reason: "cannot create folder: \(error.localizedDescription)")
        }
        let temporary = temporaryURL(for: url)
        do {
            try data.write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw FileError.io(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
        try commit(temporary, to: url)
    }

    /// Runs `body` with a temporary path next to `url`, then renames it to `url`. The temporary is
    /// removed if `body` throws.
    public static func withTemporary<R>(for url: URL, _ body: (URL) throws -> R) throws -> R {
        let temporary = temporaryURL(for: url)
        let result: R
        do {
            result = try body(temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        try commit(temporary, to: url)
        return result
    }
}

/// A file could not be read, parsed or written. Every case names the file.
public enum FileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A CSV file could not be parsed or lacks a column.
    case csv(path: String, line: Int, reason: String)
    /// A file could not be read, written or renamed.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .csv(let p, let l, let r): return "\(p):\(l): \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        }
    }
}
