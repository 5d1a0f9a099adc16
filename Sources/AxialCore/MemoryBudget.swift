import Foundation

/// Bounds large allocations by the memory the system can give now, so that an absurd flag
/// (`extract --input-size 2048`, `pretrain --batch 100000`) is refused with a clear error before
/// anything is allocated instead of being killed by the OOM killer (or swapping for an hour).
///
/// The bound is `MemAvailable` from `/proc/meminfo` (Linux); where that file is missing the
/// physical memory. `AXIAL_MEMORY_LIMIT_BYTES` in the environment overrides both (tests, shared
/// nodes whose cgroup limit is below the machine's memory).
public enum MemoryBudget {
    public struct TooLarge: Error, CustomStringConvertible, Sendable {
        public let option: String
        public let what: String
        public let bytes: Int
        public let available: Int
        public var description: String {
            "\(option): \(what) needs about \(MemoryBudget.format(bytes)), only \(MemoryBudget.format(available)) of memory is available (MemAvailable); lower it"
        }
    }

    /// Bytes the process may still allocate: the override, else MemAvailable, else physical memory.
    public static func available() -> Int {
        if let s = ProcessInfo.processInfo.environment["AXIAL_MEMORY_LIMIT_BYTES"], let v = Int(s), v > 0 { return v }
        if let v = memAvailable(meminfo: try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) { return v }
        return Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    /// `MemAvailable:   123456 kB` → bytes (nil when absent or malformed).
    public static func memAvailable(meminfo: String?) -> Int? {
        guard let meminfo else { return nil }
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Int(parts[1]) else { return nil }
            return kb.multipliedReportingOverflow(by: 1024).overflow ? Int.max : kb * 1024
        }
        return nil
    }

    /// Throws `TooLarge` naming `option` when `bytes` exceeds `available`.
    public static func check(bytes: Int, what: String, option: String, available: Int = MemoryBudget.available()) throws {
        if bytes < 0 || bytes > available { throw TooLarge(option: option, what: what, bytes: max(bytes, 0), available: available) }
    }

    /// The product of `factors` in bytes, saturating at `Int.max` instead of trapping on overflow.
    public static func product(_ factors: Int...) -> Int {
        var r = 1
        for f in factors {
            let (v, o) = r.multipliedReportingOverflow(by: max(f, 0))
            if o { return Int.max }
            r = v
        }
        return r
    }

    public static func format(_ bytes: Int) -> String {
        let g = Double(bytes) / 1_073_741_824
        return g >= 1 ? String(format: "%.1f GiB", g) : String(format: "%.0f MiB", Double(bytes) / 1_048_576)
    }
}
