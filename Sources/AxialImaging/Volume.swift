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
/// Patient coordinates are **LPS** (DICOM's convention; NIfTI's RAS is converted by negating the
/// first two coordinates). Both readers bring every volume to the voxel-axis order that is closest
/// to LPS ("LPS" in SimpleITK's `DICOMOrient`): the voxel axes are permuted and flipped (never
/// resampled) so that x points as nearly as possible towards the patient's left, y towards
/// posterior and z towards superior — so `direction` is the identity for a standard axial scan and
/// a near-identity rotation for an oblique one. Slice 0 is then the most inferior slice, row 0 the
/// most anterior, column 0 the patient's right (radiological display). A standard axial DICOM
/// series (row direction +x, column direction +y) keeps the order DICOM stores it in, sorted by
/// position along the slice normal; the same scan written as NIfTI by SimpleITK or dcm2niix gives
/// bit-identical voxels and the same geometry. (Permutation rule: of the 6 axis permutations the
/// one maximising Σ|direction[r][perm[r]]| wins, ties going to the earlier of identity, then the
/// others in lexicographic order; an axis is flipped when its entry is negative.)
/// `origin` is the patient position (mm) of voxel (0,0,0) — for DICOM the first slice's
/// ImagePositionPatient in canonical order; `direction` is the 3×3 matrix whose
/// columns are the directions of the x, y and z voxel axes, stored row by row (SimpleITK's
/// `GetDirection()`); `spacing` is (x, y, z) in mm, z measured between slice positions along the
/// slice normal (never SliceThickness).
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

extension Volume {
    /// This volume with its voxel axes permuted and flipped into Axial's canonical order (see the
    /// type's documentation). Geometry is exact: every voxel keeps its patient position.
    public func canonicalized() -> Volume {
        let d = direction
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        var best = perms[0]
        var bestScore = -Double.infinity
        for p in perms {
            let score = abs(d[0 * 3 + p[0]]) + abs(d[1 * 3 + p[1]]) + abs(d[2 * 3 + p[2]])
            if score > bestScore + 1e-9 { best = p; bestScore = score }
        }
        let flip = (0..<3).map { r in d[r * 3 + best[r]] < 0 }
        if best == [0, 1, 2] && !flip.contains(true) { return self }

        let oldSize = [width, height, depth]
        let oldStride = [1, width, width * height]
        let oldSpacing = [spacing.x, spacing.y, spacing.z]
        let newSize = best.map { oldSize[$0] }
        var start = 0
        var step = [0, 0, 0]
        var cornerIndex = [0.0, 0.0, 0.0]           // old voxel index that becomes (0,0,0)
        for r in 0..<3 {
            let a = best[r]
            if flip[r] {
                start += (oldSize[a] - 1) * oldStride[a]
                step[r] = -oldStride[a]
                cornerIndex[a] = Double(oldSize[a] - 1)
            } else {
                step[r] = oldStride[a]
            }
        }
        var newDirection = [Double](repeating: 0, count: 9)
        for r in 0..<3 {
            let sign = flip[r] ? -1.0 : 1.0
            for row in 0..<3 { newDirection[row * 3 + r] = sign * d[row * 3 + best[r]] }
        }
        let newOrigin = position(x: cornerIndex[0], y: cornerIndex[1], z: cornerIndex[2])
        let (nx, ny, nz) = (newSize[0], newSize[1], newSize[2])
        let (s0, s1, s2, base) = (step[0], step[1], step[2], start)
        var out = [Float](repeating: 0, count: voxels.count)
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                nonisolated(unsafe) let s = src
                nonisolated(unsafe) let o = dst
                imagingParallelFor(nz) { z in
                    for y in 0..<ny {
                        var i = base + z * s2 + y * s1
                        let rowBase = (z * ny + y) * nx
                        for x in 0..<nx { o[rowBase + x] = s[i]; i += s0 }
                    }
                }
            }
        }
        var v = self
        v.voxels = out
        v.width = nx; v.height = ny; v.depth = nz
        v.spacing = SIMD3(oldSpacing[best[0]], oldSpacing[best[1]], oldSpacing[best[2]])
        v.origin = newOrigin
        v.direction = newDirection
        // Per-slice source files follow their slices when the slice axis is only flipped.
        if best[2] == 2 && flip[2] && v.provenance.sourceFiles.count == depth { v.provenance.sourceFiles.reverse() }
        return v
    }
}

/// Runs `body(i)` for i in 0..<count on all cores (DispatchQueue.concurrentPerform), in chunks.
/// Callers write only disjoint outputs from each iteration.
func imagingParallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
    if count <= 1 { for i in 0..<count { body(i) }; return }
    DispatchQueue.concurrentPerform(iterations: count) { body($0) }
}
