import Foundation

/// Where a volume came from: identifiers and the files it was read from.
public struct Provenance: Sendable, Codable, Equatable {
    public var patientID: String
    public var studyUID: String
    public var seriesUID: String
    public var modality: String
    public var seriesDescription: String
    /// Source files in slice order (one per slice for DICOM, one file for NIfTI).
    public var sourceFiles: [String]

    public init(patientID: String, studyUID: String, seriesUID: String, modality: String = "CT",
                seriesDescription: String = "", sourceFiles: [String] = []) {
        self.patientID = patientID; self.studyUID = studyUID; self.seriesUID = seriesUID
        self.modality = modality; self.seriesDescription = seriesDescription; self.sourceFiles = sourceFiles
    }
}

/// A CT volume in Hounsfield units with its geometry, in Axial's canonical order.
///
/// Canonical order (the same for DICOM and NIfTI input): voxels are stored `[z][y][x]`, x fastest.
/// Patient coordinates are **LPS** (DICOM's convention). x and y are the in-plane row/column axes of
/// the axial image as DICOM stores them; z runs along the slice normal (row × column direction) in
/// increasing order of position, so slice 0 is the most inferior slice of a standard axial scan.
/// `origin` is the patient position (mm) of voxel (0,0,0); `direction` is the 3×3 matrix whose
/// columns are the directions of the x, y and z voxel axes, stored row by row (SimpleITK's
/// `GetDirection()`); `spacing` is (x, y, z) in mm.
public struct Volume: Sendable {
    /// HU values, `depth * height * width`, x fastest.
    public var voxels: [Float]
    public var width: Int
    public var height: Int
    public var depth: Int
    /// (x, y, z) spacing in mm.
    public var spacing: SIMD3<Double>
    /// Patient (LPS) position of voxel (0,0,0) in mm.
    public var origin: SIMD3<Double>
    /// Row-major 3×3, columns are the x, y, z axis directions.
    public var direction: [Double]
    public var provenance: Provenance
    /// Non-fatal findings (non-uniform spacing, gantry tilt, skipped localizers, …).
    public var warnings: [String]

    public init(voxels: [Float], width: Int, height: Int, depth: Int, spacing: SIMD3<Double>,
                origin: SIMD3<Double>, direction: [Double], provenance: Provenance, warnings: [String] = []) {
        precondition(voxels.count == width * height * depth,
                     "Volume: \(voxels.count) voxels for shape [\(depth), \(height), \(width)]")
        precondition(direction.count == 9, "Volume: direction needs 9 numbers, got \(direction.count)")
        self.voxels = voxels; self.width = width; self.height = height; self.depth = depth
        self.spacing = spacing; self.origin = origin; self.direction = direction
        self.provenance = provenance; self.warnings = warnings
    }

    /// Patient position (mm, LPS) of the centre of voxel (x, y, z).
    public func position(x: Double, y: Double, z: Double) -> SIMD3<Double> {
        let d = direction
        let v = SIMD3(x * spacing.x, y * spacing.y, z * spacing.z)
        return origin + SIMD3(d[0] * v.x + d[1] * v.y + d[2] * v.z,
                              d[3] * v.x + d[4] * v.y + d[5] * v.z,
                              d[6] * v.x + d[7] * v.y + d[8] * v.z)
    }

    /// Position of slice `k` along the slice normal (mm): the z_mm written to manifests and stores.
    public func sliceZ(_ k: Int) -> Double {
        let n = SIMD3(direction[2], direction[5], direction[8])
        return (position(x: 0, y: 0, z: Double(k)) * n).sum()
    }

    /// Slice `k` as a `height * width` array of HU values.
    public func slice(_ k: Int) -> ArraySlice<Float> {
        precondition(k >= 0 && k < depth, "Volume.slice: index \(k) outside 0..<\(depth)")
        return voxels[(k * width * height)..<((k + 1) * width * height)]
    }
}

/// One series found while scanning an input tree, before pixels are read.
public struct SeriesInfo: Sendable {
    public var patientID: String
    public var studyUID: String
    public var seriesUID: String
    public var modality: String
    public var files: [String]
    public var warnings: [String]
    public init(patientID: String, studyUID: String, seriesUID: String, modality: String, files: [String], warnings: [String] = []) {
        self.patientID = patientID; self.studyUID = studyUID; self.seriesUID = seriesUID
        self.modality = modality; self.files = files; self.warnings = warnings
    }
}

/// A file that could not be used, with the reason (becomes a row of `ingest_errors.csv`).
public struct InputProblem: Sendable, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// One backend (DICOM through GDCM, NIfTI through libnifti2) behind one interface.
public protocol VolumeReader: Sendable {
    /// Finds the series under `root` (a file or a folder tree). Files this reader does not
    /// recognise are ignored; recognised but unusable files are returned as problems.
    func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem])
    /// Reads one series found by `scan` into HU with its geometry.
    func read(_ series: SeriesInfo) throws -> Volume
}

/// Errors from reading images. Every case names the file.
public enum ImagingError: Error, CustomStringConvertible, Sendable {
    case unreadable(path: String, reason: String)
    case unsupported(path: String, reason: String)
    case inconsistentSeries(seriesUID: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        case .unsupported(let p, let r): return "\(p): not supported: \(r)"
        case .inconsistentSeries(let s, let r): return "series \(s): \(r)"
        }
    }
}
