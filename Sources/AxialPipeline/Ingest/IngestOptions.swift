import AxialImaging
import AxialStore
import Foundation
import Yams

/// `--shard i/n`: this process handles the patients whose stable hash (FNV-1a 64 of the patient ID)
/// is `i` modulo `n`, so a job array of `n` tasks covers every patient exactly once.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let all = Shard(index: 0, count: 1)

    /// The error list this shard writes, rewritten on each of its runs: `<stem>.csv` unsharded,
    /// `<stem>.shard-<i>-of-<n>.csv` for shard i/n (shards running at once never share a list, and
    /// a shard's rerun drops the failures it fixed).
    public func errorListName(_ stem: String) -> String {
        count == 1 ? "\(stem).csv" : "\(stem).shard-\(index)-of-\(count).csv"
    }

    public init(index: Int, count: Int) {
        precondition(count >= 1 && index >= 0 && index < count, "Shard \(index)/\(count) out of range")
        self.index = index; self.count = count
    }

    /// Parses `i/n` with `0 ≤ i < n`.
    public static func parse(_ text: String) throws -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else {
            throw PipelineError.invalidOption(option: "--shard", reason: "expected i/n with 0 ≤ i < n, got '\(text)'")
        }
        return Shard(index: i, count: n)
    }

    /// The shard of this job: `flag` (`--shard i/n`, from the command line or the config) when
    /// given; else a Slurm job array's task (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`, i.e. `sbatch --array=0-(n−1)` or `1-n`, step 1); else all patients.
    public static func resolve(_ flag: String?, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
        if let flag { return try parse(flag) }
        guard let idText = env["SLURM_ARRAY_TASK_ID"] else { return .all }
        guard let id = Int(idText), let countText = env["SLURM_ARRAY_TASK_COUNT"], let n = Int(countText), n >= 1 else {
            throw PipelineError.invalidOption(option: "--shard", reason: "SLURM_ARRAY_TASK_ID=\(idText) is set but SLURM_ARRAY_TASK_COUNT is \(env["SLURM_ARRAY_TASK_COUNT"].map { "'\($0)'" } ?? "not set"); give --shard i/n")
        }
        let minimum = env["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
        let i = id - minimum
        guard i >= 0, i < n else {
            throw PipelineError.invalidOption(option: "--shard", reason: "Slurm array task \(id) (min \(minimum), count \(n)) is not one of \(n) consecutive tasks (use --array=0-\(n - 1)); give --shard i/n")
        }
        return Shard(index: i, count: n)
    }

    public func contains(patientID: String) -> Bool {
        count == 1 || Int(Shard.fnv1a(patientID) % UInt64(count)) == index
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    public var description: String { "\(index)/\(count)" }
}

/// Errors of the pipeline stages; the CLI prints `description` and exits non-zero.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    case invalidOption(option: String, reason: String)
    case invalidConfig(path: String, key: String, reason: String)
    case io(path: String, reason: String)
    case nothingToDo(reason: String)

    public var description: String {
        switch self {
        case .invalidOption(let o, let r): return "\(o): \(r)"
        case .invalidConfig(let p, let k, let r): return "\(p): '\(k)': \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        case .nothingToDo(let r): return r
        }
    }
}

/// Loads window presets from a YAML file shaped like `Manifests/windows.yaml`:
/// `windows: [{name, width, level}, …]`. Unknown keys are errors.
public enum WindowPresets {
    public static func load(_ url: URL) throws -> [CTWindow] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw PipelineError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, path: url.path)
    }

    public static func parse(_ text: String, path: String = "<yaml>") throws -> [CTWindow] {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw PipelineError.invalidConfig(path: path, key: "", reason: "not valid YAML: \(error)")
        }
        guard let top = root as? [String: Any] else {
            throw PipelineError.invalidConfig(path: path, key: "", reason: "expected a mapping with a 'windows' list")
        }
        for key in top.keys where key != "windows" {
            throw PipelineError.invalidConfig(path: path, key: key, reason: "unknown key (expected 'windows')")
        }
        guard let list = top["windows"] as? [Any], !list.isEmpty else {
            throw PipelineError.invalidConfig(path: path, key: "windows", reason: "expected a non-empty list")
        }
        var out: [CTWindow] = []
        for (i, item) in list.enumerated() {
            let key = "windows[\(i)]"
            guard let m = item as? [String: Any] else {
                throw PipelineError.invalidConfig(path: path, key: key, reason: "expected {name, width, level}")
            }
            for k in m.keys where !["name", "width", "level"].contains(k) {
                throw PipelineError.invalidConfig(path: path, key: "\(key).\(k)", reason: "unknown key")
            }
            guard let name = m["name"] as? String, !name.isEmpty else {
                throw PipelineError.invalidConfig(path: path, key: "\(key).name", reason: "missing or not a string")
            }
            func number(_ k: String) throws -> Double {
                if let d = m[k] as? Double { return d }
                if let i = m[k] as? Int { return Double(i) }
                throw PipelineError.invalidConfig(path: path, key: "\(key).\(k)", reason: "missing or not a number")
            }
            let width = try number("width"), level = try number("level")
            guard width > 0 else { throw PipelineError.invalidConfig(path: path, key: "\(key).width", reason: "must be > 0") }
            if out.contains(where: { $0.name == name }) {
                throw PipelineError.invalidConfig(path: path, key: "\(key).name", reason: "'\(name)' defined twice")
            }
            out.append(CTWindow(name: name, width: width, level: level))
        }
        return out
    }
}

/// Everything `axial ingest` needs.
public struct IngestOptions: Sendable {
    public var input: URL
    public var output: URL
    public var windows: [CTWindow]
    public var channels: ChannelMode
    /// Resize slices to `size × size` pixels (nil: keep the acquired matrix).
    public var size: Int?
    public var shard: Shard
    /// Backends tried on the input (each scans the tree; files none recognises are ignored).
    public var readers: [any VolumeReader]
    /// Progress style (`nil`: bar on a terminal, lines otherwise).
    public var progress: Progress.Style?
    /// zlib speed over size for PNGs.
    public var fastPNG: Bool
    /// `--masks`: label volumes cut into `<slice>_mask.png` beside the images (`IngestMasks`).
    public var masks: IngestMasks?

    /// DICOM (GDCM) and NIfTI (libnifti2): what `axial ingest` uses.
    public static var defaultReaders: [any VolumeReader] { [DICOMReader(), NIfTIReader()] }

    public init(input: URL, output: URL, windows: [CTWindow] = [CTWindow.presets[0]], channels: ChannelMode = .separate,
                size: Int? = nil, shard: Shard = .all, readers: [any VolumeReader] = IngestOptions.defaultReaders, progress: Progress.Style? = nil,
                fastPNG: Bool = true, masks: IngestMasks? = nil) {
        self.input = input; self.output = output; self.windows = windows; self.channels = channels
        self.size = size; self.shard = shard; self.readers = readers; self.progress = progress; self.fastPNG = fastPNG
        self.masks = masks
    }

    /// What a series' `.complete` marker records: a series is redone when these change.
    var settingsFingerprint: String {
        let w = windows.map { "\($0.name)=W\($0.width)/L\($0.level)" }.joined(separator: ",")
        return "axial-ingest v1 windows=\(w) channels=\(channels.rawValue) size=\(size.map(String.init) ?? "native")\n"
    }

    /// The `.complete` settings of a series with a mask (its SHA-256); without one, `settingsFingerprint`.
    func settingsFingerprint(maskSHA256: String?) -> String {
        guard let sha = maskSHA256, let m = masks else { return settingsFingerprint }
        return settingsFingerprint + "mask sha256=\(sha) values=\(m.values.rawValue)\n"
    }

    func validate() throws {
        guard !windows.isEmpty else { throw PipelineError.invalidOption(option: "--windows", reason: "no windows given") }
        if channels == .stacked && windows.count > 3 {
            throw PipelineError.invalidOption(option: "--channels",
                                              reason: "stacked images have 3 channels, got \(windows.count) windows")
        }
        if let s = size, s < 1 || s > 8192 {
            throw PipelineError.invalidOption(option: "--size", reason: "must be 1…8192, got \(s)")
        }
        if masks != nil {
            let labels = channels == .separate ? windows.map(\.name) : [windows.map(\.name).joined(separator: "+")]
            if labels.contains(where: { sanitizedName($0) == "mask" }) {
                throw PipelineError.invalidOption(option: "--windows", reason: "a window named 'mask' would share its file names with --masks' <slice>_mask.png")
            }
        }
        guard !readers.isEmpty else { throw PipelineError.invalidOption(option: "readers", reason: "no volume readers") }
    }
}
