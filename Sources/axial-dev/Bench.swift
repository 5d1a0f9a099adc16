import AxialTestSupport
import AxialPipeline
import AxialImaging
import Foundation

/// In-process benchmark workloads behind the hidden `axial bench <workload> [args…]` command,
/// which `Tools/bench/run` calls next to each workload's peer. A workload prepares once, then its
/// body is timed (1 warm-up + `iterations` runs); the result is one JSON object:
/// `{"workload", "median_ms", "runs_ms": [...], "rss_mb", "threads", "detail"}` (rss = peak RSS of the process).
///
/// To add one: append a `BenchWorkload` to `Bench.workloads` (in your module's file, as a
/// `static let` in an extension, and one line in the list below), and add
/// `Tools/bench/workloads/<name>.sh` with its peer.
public struct BenchWorkload: Sendable {
    public var name: String
    public var summary: String
    /// Parses arguments, prepares inputs, and returns the body to time (and a short detail text).
    public var prepare: @Sendable ([String]) throws -> (body: @Sendable () throws -> Void, detail: String)
    /// Run untimed before every run (e.g. removing the previous run's output); gets the arguments.
    public var reset: (@Sendable ([String]) -> Void)?
    public init(name: String, summary: String,
                prepare: @escaping @Sendable ([String]) throws -> (body: @Sendable () throws -> Void, detail: String),
                reset: (@Sendable ([String]) -> Void)? = nil) {
        self.name = name; self.summary = summary; self.prepare = prepare; self.reset = reset
    }
}

public enum Bench {
    public static var workloads: [BenchWorkload] { [dicomRead, ingest, abmilTrain, pmaTrain, crossval200, mocoViTS16, vitB16Infer, gemm4096, gemm6304, vitSmallTrain, extractViTB16, clipTextB16, clipImageB16, clipRN50ImageB32, mpiAllReduce, crisTrainStep, pspgTrainB64, clipsegInfer, clipsegDenseTrain, anomalyTrainL14, anomalyInferL14] }

    public static func run(_ name: String, arguments: [String], iterations: Int = 3) throws -> String {
        guard let w = workloads.first(where: { $0.name == name }) else {
            throw PipelineError.invalidOption(option: "workload",
                                              reason: "unknown '\(name)'; known: \(workloads.map(\.name).joined(separator: ", "))")
        }
        let (body, detail) = try w.prepare(arguments)
        w.reset?(arguments)
        try body()   // warm-up (page cache, lazy init)
        var runs: [Double] = []
        for _ in 0..<max(1, iterations) {
            w.reset?(arguments)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            runs.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let median = runs.sorted()[runs.count / 2]
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let rss = Double(usage.ru_maxrss) / 1024
        let object: [String: Any] = [
            "workload": name, "median_ms": median, "runs_ms": runs, "rss_mb": rss,
            "threads": ProcessInfo.processInfo.activeProcessorCount, "detail": detail,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `dicom-read-300 <folder>`: scan a DICOM folder and read its series into HU (Float32).
    static let dicomRead = BenchWorkload(name: "dicom-read-300",
                                         summary: "scan + read a DICOM series folder into a HU volume") { args in
        guard let folder = args.first else {
            throw PipelineError.invalidOption(option: "dicom-read-300", reason: "needs <folder>")
        }
        let root = URL(fileURLWithPath: folder)
        let reader = DICOMReader()
        let (series, _) = try reader.scan(root)
        guard let s = series.first else { throw PipelineError.nothingToDo(reason: "\(folder): no DICOM series") }
        let v = try reader.read(s)
        let mean = v.voxels.reduce(0.0) { $0 + Double($1) } / Double(v.voxels.count)
        let detail = "shape [\(v.depth), \(v.height), \(v.width)] mean \(String(format: "%.4f", mean))"
        return ({
            let (found, _) = try reader.scan(root)
            let volume = try reader.read(found[0])
            precondition(volume.depth == v.depth)
        }, detail)
    }

    /// `ingest-300 <folder> <scratch-out>`: full `axial ingest` (abdomen + lung, separate PNGs,
    /// native size) into a fresh output folder each run (the previous run's output is removed
    /// before the clock starts: deleting 600 files is not part of ingesting).
    static let ingest = BenchWorkload(name: "ingest-300",
                                      summary: "axial ingest of a DICOM folder to PNG, two windows", prepare: { args in
        guard args.count >= 2 else {
            throw PipelineError.invalidOption(option: "ingest-300", reason: "needs <folder> <scratch-output-folder>")
        }
        let input = URL(fileURLWithPath: args[0]), scratch = URL(fileURLWithPath: args[1])
        let windows = try CTWindow.parseList("abdomen,lung")
        return ({
            let s = try Ingest.run(IngestOptions(input: input, output: scratch, windows: windows, progress: .quiet))
            guard s.seriesIngested == 1 else { throw PipelineError.nothingToDo(reason: "ingest-300: \(s.text)") }
        }, "windows abdomen,lung; separate PNGs (FastDeflate); native size")
    }, reset: { args in
        if args.count >= 2 { try? FileManager.default.removeItem(at: URL(fileURLWithPath: args[1])) }
    })
}
