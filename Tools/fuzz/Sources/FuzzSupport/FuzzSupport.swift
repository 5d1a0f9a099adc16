import Foundation
import FuzzDriver

/// One scratch folder per fuzzing process: the readers under test take paths, so each input is
/// written to a file there first (the same bytes a user's file would hold).
public enum FuzzScratch {
    public static let folder: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("axial-fuzz-\(ProcessInfo.processInfo.processIdentifier)", isDirectory: true)
        try? FileManager.default.removeItem(at: url)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `bytes` to `name` inside a fresh subfolder (so folder scans see only this input).
    public static func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> URL {
        let dir = folder.appendingPathComponent("in", isDirectory: true)
        try? FileManager.default.removeItem(at: dir)
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try! Data(bytes).write(to: url)
        return url
    }

    /// The input as text, or nil when it is not UTF-8 (the text readers get only valid UTF-8 from
    /// `String(contentsOf:encoding:)`, which refuses the rest).
    public static func text(_ bytes: UnsafeRawBufferPointer) -> String? {
        String(validating: bytes, as: UTF8.self)
    }
}

/// Runs libFuzzer over `body` with the process's arguments (libFuzzer's flags, corpus folders) and
/// exits with its status: each input is one call; a thrown error is a handled input, a trap or an
/// AddressSanitizer report is a finding.
public func fuzzMain(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// One input as bytes, given to `body`; errors are swallowed (a clear error is a pass).
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    _ = try? body(bytes)
    return 0
}
