/// Errors from AxialEval. Every case names the file (and key / column / line where there is one).
public enum EvalError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A task file is malformed: `key` is the YAML key (or "" for the whole file).
    case task(path: String, key: String, reason: String)
    /// The clinical table does not fit the task or the feature files (every problem, listed).
    case cohort(CohortReport)
    /// `splits.json` is malformed or does not match the cohort.
    case splits(path: String, reason: String)
    /// A predictions file (`patient_preds.csv`, `slice_attention.csv`) is malformed.
    case predictions(path: String, line: Int?, reason: String)
    /// A file or folder could not be read / written.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .task(let p, let k, let r): return k.isEmpty ? "\(p): \(r)" : "\(p): key '\(k)': \(r)"
        case .cohort(let report): return report.description
        case .splits(let p, let r): return "\(p): \(r)"
        case .predictions(let p, let l, let r): return l.map { "\(p):\($0): \(r)" } ?? "\(p): \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        }
    }
}
