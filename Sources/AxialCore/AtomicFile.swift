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

    /// Writes `data` to `url` atomically, creating the parent folder if needed. Errors are
    /// `FileError.unwritable` ("cannot write <path>: <reason>", the reason from errno: permission
    /// denied, no space left on device, read-only file system, …).
    public static func write(_ data: Data, to url: URL) throws {
        try createFolder(url.deletingLastPathComponent())
        let temporary = temporaryURL(for: url)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.unwritable(path: url.path, reason: String(cString: strerror(errno))) }
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                done += n
            }
        }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure != 0 {
            try? FileManager.default.removeItem(at: temporary)
            throw FileError.unwritable(path: url.path, reason: String(cString: strerror(failure)))
        }
        try commit(temporary, to: url)
    }

    /// Creates `folder` (and its parents) unless it exists; `FileError.unwritable` naming the
    /// folder and the reason (not Foundation's "NSCocoaErrorDomain error 512").
    public static func createFolder(_ folder: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileError.unwritable(path: folder.path, reason: "exists and is not a folder") }
            return
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw FileError.unwritable(path: folder.path, reason: "cannot create the folder: \(FileError.reason(error))")
        }
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
    /// An output could not be written: "cannot write <path>: <reason>".
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .csv(let p, let l, let r): return "\(p):\(l): \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        case .unwritable(let p, let r): return "cannot write \(p): \(r)"
        }
    }

    /// A short human reason for any error from Foundation's file APIs: the POSIX error behind a
    /// CocoaError (its underlying error or its code), never "The operation could not be completed.
    /// (NSCocoaErrorDomain error 512.)".
    public static func reason(_ error: Error) -> String {
        if let e = error as? FileError {
            switch e { case .csv(_, _, let r), .io(_, let r), .unwritable(_, let r): return r }
        }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if ns.domain != NSCocoaErrorDomain && !(error is CocoaError) { return String(describing: error) }
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError {
            if u.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(u.code))) }
            return reason(u)
        }
        if ns.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or folder"
            case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
            case .fileWriteOutOfSpace: return "no space left on device"
            case .fileWriteVolumeReadOnly: return "read-only file system"
            case .fileWriteFileExists: return "a file of that name exists"
            case .fileWriteInvalidFileName, .fileReadInvalidFileName: return "invalid file name"
            case .fileReadCorruptFile: return "corrupt file"
            case .fileReadTooLarge: return "file too large"
            case .fileLocking: return "file is locked"
            default: break
            }
            if let path = ns.userInfo[NSFilePathErrorKey] as? String, ns.code == CocoaError.fileWriteUnknown.rawValue {
                // Foundation lost the errno: find the first ancestor that exists and say what is wrong with it.
                var dir = URL(fileURLWithPath: path)
                while !FileManager.default.fileExists(atPath: dir.path) && dir.path != "/" { dir = dir.deletingLastPathComponent() }
                var isDir: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir)
                if !isDir.boolValue { return "\(dir.path) is a file, not a folder" }
                if !FileManager.default.isWritableFile(atPath: dir.path) { return "permission denied (\(dir.path) is not writable)" }
            }
            return "file system error (Foundation code \(ns.code))"
        }
        return ns.localizedDescription
    }
}
