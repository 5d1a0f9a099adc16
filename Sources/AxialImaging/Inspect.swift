import Foundation

/// Both readers over one input tree: what the ingest stage and `axial inspect` call.
public struct VolumeSource: Sendable {
    public var dicom = DICOMReader()
    public var nifti = NIfTIReader()
    public init() {}

    /// All series (DICOM first, then NIfTI, each in path order) and all problems under `root`
    /// (a file or a folder tree).
    public func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
        let d = try dicom.scan(root)
        let n = try nifti.scan(root)
        var problems = d.problems + n.problems
        let series = d.series + n.series
        // A file named on its own that neither reader recognises gets a reason instead of silence.
        var isDirectory: ObjCBool = false
        if series.isEmpty, problems.isEmpty, FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            problems.append(InputProblem(path: root.path, reason: DICOMFile.isGzip(root.path) ? "no image series: a gzip-compressed file that is not .nii.gz; decompress it first (gunzip)" : "no image series: not recognised as a DICOM image (no 'DICM' preamble and no little-endian group 0002/0008 element at the start, or a DICOMDIR index) nor as NIfTI (.nii, .nii.gz)"))
        }
        return (series, problems)
    }

    /// Reads a series found by `scan` with the reader that found it.
    public func read(_ series: SeriesInfo) throws -> Volume {
        if series.files.count == 1, NIfTIReader.isNIfTIPath(series.files[0]) { return try nifti.read(series) }
        return try dicom.read(series)
    }
}

/// All series and problems under `root`, from both readers.
public func scanInput(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
    try VolumeSource().scan(root)
}

/// What `axial inspect` reports for one series. JSON keys are snake_case; `shape` and `spacing`
/// are [z, y, x], `origin` [x, y, z] (mm, LPS, voxel (0,0,0)), `direction` row-major 3×3 whose
/// columns are the x, y, z voxel axes (SimpleITK's `GetDirection()`).
public struct SeriesReport: Codable, Sendable, Equatable {
    public var patientID: String
    public var studyUID: String
    public var seriesUID: String
    public var modality: String
    public var shape: [Int]
    public var spacing: [Double]
    public var origin: [Double]
    public var direction: [Double]
    public var huMin: Double
    public var huMax: Double
    public var huMean: Double
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case patientID = "patient_id", studyUID = "study_uid", seriesUID = "series_uid", modality
        case shape, spacing, origin, direction
        case huMin = "hu_min", huMax = "hu_max", huMean = "hu_mean", warnings
    }

    public init(volume v: Volume) {
        patientID = v.provenance.patientID
        studyUID = v.provenance.studyUID
        seriesUID = v.provenance.seriesUID
        modality = v.provenance.modality
        shape = [v.depth, v.height, v.width]
        spacing = [v.spacing.z, v.spacing.y, v.spacing.x]
        origin = [v.origin.x, v.origin.y, v.origin.z]
        direction = v.direction
        let stats = huStatistics(v.voxels)
        huMin = stats.min; huMax = stats.max; huMean = stats.mean
        warnings = v.warnings
    }

    /// One readable block.
    public var text: String {
        func n(_ x: [Double]) -> String { "[" + x.map { String(format: "%.6g", $0) }.joined(separator: ", ") + "]" }
        var lines = [
            "series \(seriesUID)",
            "  patient \(patientID)   study \(studyUID)   modality \(modality)",
            "  shape [z, y, x] \(shape)   spacing [z, y, x] \(n(spacing)) mm",
            "  origin [x, y, z] \(n(origin)) mm (LPS)",
            "  direction \(n(direction))",
            String(format: "  HU min %.6g  max %.6g  mean %.6g", huMin, huMax, huMean),
        ]
        for w in warnings { lines.append("  warning: \(w)") }
        return lines.joined(separator: "\n")
    }
}

/// The `{"series": [...]}` document of `axial inspect --json`, and the problems (not encoded).
public struct InspectionReport: Codable, Sendable {
    public var series: [SeriesReport]
    /// Files and series that could not be used (printed separately, not part of the JSON).
    public var problems: [InputProblem] = []

    enum CodingKeys: String, CodingKey { case series }

    public init(series: [SeriesReport], problems: [InputProblem]) { self.series = series; self.problems = problems }

    /// Scans `root` with both readers and reads every series; unreadable series become problems.
    public init(inspecting root: URL) throws {
        let source = VolumeSource()
        let found = try source.scan(root)
        var reports: [SeriesReport] = []
        var problems = found.problems
        for s in found.series {
            do { reports.append(SeriesReport(volume: try source.read(s))) } catch {
                // The path once: ImagingError's description starts with it, the problem names it already.
                if let e = error as? ImagingError, case let .unreadable(path, reason) = e {
                    problems.append(InputProblem(path: path, reason: "cannot read: \(reason)"))
                } else if let e = error as? ImagingError, case let .unsupported(path, reason) = e {
                    problems.append(InputProblem(path: path, reason: "not supported: \(reason)"))
                } else {
                    problems.append(InputProblem(path: s.files.first ?? s.seriesUID, reason: "\(error)"))
                }
            }
        }
        self.init(series: reports, problems: problems)
    }

    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    public var text: String {
        var blocks = series.map(\.text)
        if series.isEmpty { blocks.append("no series found") }
        if !problems.isEmpty {
            blocks.append("problems (\(problems.count)):\n" + problems.map { "  \($0.path): \($0.reason)" }.joined(separator: "\n"))
        }
        return blocks.joined(separator: "\n\n")
    }
}

/// Min, max and mean of the finite voxels: Float lanes over blocks of 1024 (exact for integer HU),
/// blocks added in Double; blocks holding NaN or ±inf take a scalar path.
func huStatistics(_ v: [Float]) -> (min: Double, max: Double, mean: Double) {
    let block = 1024
    let blocks = (v.count + block - 1) / block
    let chunks = max(1, min(64, blocks / 16))
    var partial = [(Float, Float, Double, Int)](repeating: (.infinity, -.infinity, 0, 0), count: chunks)
    v.withUnsafeBufferPointer { src in
        partial.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let src = src, out = out
            imagingParallelFor(chunks) { c in
                var lo = Float.infinity, hi = -Float.infinity, sum = 0.0, n = 0
                for b in (c * blocks / chunks)..<((c + 1) * blocks / chunks) {
                    let start = b * block, end = min(src.count, start + block)
                    if end - start == block {
                        var s8 = SIMD8<Float>(repeating: 0)
                        var lo8 = SIMD8<Float>(repeating: .infinity), hi8 = SIMD8<Float>(repeating: -.infinity)
                        let base = UnsafeRawPointer(src.baseAddress! + start)
                        for i in stride(from: 0, to: block, by: 8) {
                            let x = base.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                            s8 += x; lo8 = pointwiseMin(lo8, x); hi8 = pointwiseMax(hi8, x)
                        }
                        let s = s8.sum()
                        if s.isFinite {
                            sum += Double(s); n += block
                            lo = min(lo, lo8.min()); hi = max(hi, hi8.max())
                            continue
                        }
                    }
                    for i in start..<end {
                        let x = src[i]
                        guard x.isFinite else { continue }
                        lo = min(lo, x); hi = max(hi, x); sum += Double(x); n += 1
                    }
                }
                out[c] = (lo, hi, sum, n)
            }
        }
    }
    let lo = partial.map(\.0).min()!, hi = partial.map(\.1).max()!
    let sum = partial.map(\.2).reduce(0, +), n = partial.map(\.3).reduce(0, +)
    return (Double(lo), Double(hi), n > 0 ? sum / Double(n) : .nan)
}
