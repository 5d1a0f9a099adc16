import AxialNN
import AxialTensor
import Foundation

// What the MIL heads (ABMIL, PMA, PsPG) share beyond AxialNN's layers: their error type and the
// translation of AxialNN's state-dict errors into it (one key named per error).

/// Errors of the heads: bad state dicts, bad configs.
public enum HeadError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingParameter(name: String, source: String)
    case unexpectedParameter(name: String, source: String)
    case shapeMismatch(name: String, expected: [Int], got: [Int], source: String)
    case badConfig(String)

    public var description: String {
        switch self {
        case .missingParameter(let n, let s): return "\(s): parameter '\(n)' is missing"
        case .unexpectedParameter(let n, let s): return "\(s): unexpected parameter '\(n)' (not part of this head)"
        case .shapeMismatch(let n, let e, let g, let s): return "\(s): parameter '\(n)' has shape \(g), the head expects \(e)"
        case .badConfig(let m): return "head config: \(m)"
        }
    }
}

extension MILHead {
    /// `Module.loadStateDict(state, strict: true)` with the first problem reported as a `HeadError`
    /// naming the key and `source` (a file, a fixture). Nothing is modified when it throws.
    public func loadStateDict(_ state: [String: Tensor], source: String) throws {
        do { try loadStateDict(state, strict: true) } catch ModuleError.stateDictMismatch(let missing, let unexpected, let misshaped) {
            if let m = misshaped.first { throw HeadError.shapeMismatch(name: m.key, expected: m.expected, got: m.got, source: source) }
            if let m = missing.sorted().first { throw HeadError.missingParameter(name: m, source: source) }
            if let u = unexpected.sorted().first { throw HeadError.unexpectedParameter(name: u, source: source) }
        }
    }

    /// The state dict as independent copies (a snapshot: later optimizer steps do not change it).
    public func stateDictCopy() -> [String: Tensor] { stateDict().mapValues { $0.copy() } }
}
