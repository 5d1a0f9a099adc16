import Foundation

/// A fresh, empty folder under the system temporary directory (`axial-<tag>-<uuid>`); the caller
/// removes it.
public func temporaryFolder(_ tag: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-\(tag)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
