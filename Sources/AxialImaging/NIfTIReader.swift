import CNIfTI
import Foundation

/// Reads NIfTI-1 and NIfTI-2 volumes (`.nii`, `.nii.gz`) through libnifti2.
///
/// Geometry: the sform when `sform_code > 0`, else the qform (libnifti2's `qto_xyz`, which is
/// pixdim scaling alone when `qform_code` is 0 too). NIfTI's RAS world coordinates become LPS by
/// negating x and y; spacing is the length of each affine column, direction its unit vector.
/// Values: `scl_slope`/`scl_inter` applied when the slope is non-zero and finite; any integer or
/// float datatype becomes Float. 4D files: the first volume is read (with a warning). The volume
/// is then brought to Axial's canonical order (`Volume.canonicalized()`), so the same scan saved as
/// DICOM and as NIfTI gives the same voxels and geometry.
/// Identifiers: NIfTI stores none, so patient, study and series id are all the file name stem
/// (`scan.nii.gz` → `scan`); modality is assumed "CT".
///
/// Every file first passes `NIfTIValidate` (header fields, data size, `.nii.gz` inflated size) in
/// Swift, before libnifti2 sees it. NaN / Inf voxels (float datatypes) are an error naming the file
/// and the count, or with `nonFiniteVoxels: .warn` (`--nonfinite-voxels warn`) a warning, the
/// voxels set to −1024 HU (air).
public struct NIfTIReader: VolumeReader {
    /// What a NaN / Inf voxel does.
    public enum NonFinitePolicy: String, Sendable, CaseIterable { case refuse, warn }
    public var nonFiniteVoxels: NonFinitePolicy

    public init(nonFiniteVoxels: NonFinitePolicy = .refuse) { self.nonFiniteVoxels = nonFiniteVoxels }

    static func isNIfTIPath(_ path: String) -> Bool {
        let l = path.lowercased()
        return l.hasSuffix(".nii") || l.hasSuffix(".nii.gz")
    }

    static func stem(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.lowercased().hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        return name
    }

    public func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
        var series: [SeriesInfo] = []
        var problems: [InputProblem] = []
        for path in try listInputFiles(root) where NIfTIReader.isNIfTIPath(path) {
            if let why = NIfTIValidate.problem(path: path) {      // Swift header check before libnifti2 sees the file
                problems.append(InputProblem(path: path, reason: why.hasPrefix("truncated") || why.hasPrefix("corrupt") ? why : "refused NIfTI: \(why)"))
                continue
            }
            nifti_set_debug_level(0)
            guard let nim = nifti_image_read(path, 0) else {
                problems.append(InputProblem(path: path, reason: "corrupt or unreadable NIfTI header"))
                continue
            }
            nifti_image_free(nim)
            let id = NIfTIReader.stem(path)
            series.append(SeriesInfo(patientID: id, studyUID: id, seriesUID: id, modality: "CT", files: [path]))
        }
        return (series, problems)
    }

    public func read(_ series: SeriesInfo) throws -> Volume {
        guard series.files.count == 1, let path = series.files.first else {
            throw ImagingError.inconsistentSeries(seriesUID: series.seriesUID, reason: "a NIfTI series is exactly one file, got \(series.files.count)")
        }
        var v = try NIfTIReader.readFile(path, nonFiniteVoxels: nonFiniteVoxels)
        v.provenance = Provenance(patientID: series.patientID, studyUID: series.studyUID, seriesUID: series.seriesUID,
                                  modality: series.modality, seriesDescription: "", sourceFiles: [path])
        v.warnings = series.warnings + v.warnings
        return v
    }

    /// Reads one NIfTI file into a canonical volume (identifiers from the file name).
    public static func readFile(_ path: String, nonFiniteVoxels: NonFinitePolicy = .refuse) throws -> Volume {
        let report = NIfTIValidate.inspect(path: path)
        if let why = report.problem { throw ImagingError.unreadable(path: path, reason: why) }
        nifti_set_debug_level(0)
        guard let nim = nifti_image_read(path, 1) else {
            throw ImagingError.unreadable(path: path, reason: "libnifti2 could not read the file (corrupt, truncated or not NIfTI)")
        }
        defer { nifti_image_free(nim) }
        let n = nim.pointee
        guard let data = n.data else { throw ImagingError.unreadable(path: path, reason: "no voxel data") }
        var warnings: [String] = []
        let nx = Int(n.nx), ny = Int(max(n.ny, 1)), nz = Int(max(n.nz, 1))
        // dim[5…7] hold vector / matrix / CIFTI data (e.g. a .dconn.nii connectivity matrix), not volumes.
        let extra = Int(max(n.nu, 1)) * Int(max(n.nv, 1)) * Int(max(n.nw, 1))
        if extra > 1 || (3000..<3100).contains(Int(n.intent_code)) {
            throw ImagingError.unsupported(path: path, reason: "not an image volume: \(n.ndim)D NIfTI with dim[5…7] = \(n.nu)×\(n.nv)×\(n.nw), intent code \(n.intent_code) (vector, matrix or CIFTI data)")
        }
        let volumes = Int(max(n.nt, 1))
        if volumes > 1 { warnings.append("\(n.ndim)D NIfTI with \(volumes) volumes: read the first one") }
        let count = nx * ny * nz
        guard count > 0 else { throw ImagingError.unreadable(path: path, reason: "empty image (dim \(nx)x\(ny)x\(nz))") }

        var slope = n.scl_slope, intercept = n.scl_inter
        if slope == 0 || !slope.isFinite { slope = 1; intercept = 0 }
        if !intercept.isFinite { intercept = 0 }
        var voxels = [Float](repeating: 0, count: count)
        try voxels.withUnsafeMutableBufferPointer { out in
            func convert<T: BinaryInteger>(_: T.Type) {
                let p = data.assumingMemoryBound(to: T.self)
                let (s, i) = (Float(slope), Float(intercept))
                for k in 0..<count { out[k] = Float(p[k]) * s + i }
            }
            func convertFloat<T: BinaryFloatingPoint>(_: T.Type) {
                let p = data.assumingMemoryBound(to: T.self)
                for k in 0..<count { out[k] = Float(Double(p[k]) * slope + intercept) }
            }
            switch n.datatype {
            case Int32(DT_UINT8): convert(UInt8.self)
            case Int32(DT_INT8): convert(Int8.self)
            case Int32(DT_INT16): convert(Int16.self)
            case Int32(DT_UINT16): convert(UInt16.self)
            case Int32(DT_INT32): convert(Int32.self)
            case Int32(DT_UINT32): convert(UInt32.self)
            case Int32(DT_INT64): convert(Int64.self)
            case Int32(DT_UINT64): convert(UInt64.self)
            case Int32(DT_FLOAT32): convertFloat(Float.self)
            case Int32(DT_FLOAT64): convertFloat(Double.self)
            default:
                throw ImagingError.unsupported(path: path, reason: "NIfTI datatype \(n.datatype) (colour, complex or 128-bit) cannot hold CT values")
            }
        }

        // NaN / Inf voxels never become silent 0 HU: libnifti2 zeroes non-finite float voxels while
        // reading, so they were counted on the raw bytes (`report`); an overflowing scaling is caught here.
        var nonFinite = report.nonFinite
        voxels.withUnsafeMutableBufferPointer { p in
            for k in report.nonFiniteIndices where k < count { p[k] = -1024 }
            for k in 0..<count where !p[k].isFinite { nonFinite += 1; p[k] = -1024 }
        }
        if nonFinite > 0 {
            let what = "\(nonFinite) of \(Int(n.nvox)) voxels are NaN or Inf"
            switch nonFiniteVoxels {
            case .refuse: throw ImagingError.unreadable(path: path, reason: "\(what) (use --nonfinite-voxels warn to read them as −1024 HU)")
            case .warn: warnings.append("\(what): set to −1024 HU (air)")
            }
        }

        // Affine (RAS) → spacing, direction, origin (LPS).
        let useS = n.sform_code > 0
        if !useS && n.qform_code <= 0 { warnings.append("neither sform nor qform set: geometry from pixdim only") }
        let m: [Double] = withUnsafeBytes(of: useS ? n.sto_xyz.m : n.qto_xyz.m) { Array($0.bindMemory(to: Double.self)) }
        let flipRAS = [-1.0, -1.0, 1.0]
        var spacing = [0.0, 0.0, 0.0]
        var direction = [Double](repeating: 0, count: 9)
        for c in 0..<3 {
            let col = (0..<3).map { r in flipRAS[r] * m[r * 4 + c] }
            let len = (col.map { $0 * $0 }.reduce(0, +)).squareRoot()
            guard len > 0, len.isFinite else {
                throw ImagingError.unreadable(path: path, reason: "degenerate \(useS ? "sform" : "qform"): axis \(c) has zero length")
            }
            spacing[c] = len
            for r in 0..<3 { direction[r * 3 + c] = col[r] / len }
        }
        func dot(_ a: Int, _ b: Int) -> Double { (0..<3).map { direction[$0 * 3 + a] * direction[$0 * 3 + b] }.reduce(0, +) }
        if abs(dot(0, 1)) > 1e-4 || abs(dot(0, 2)) > 1e-4 || abs(dot(1, 2)) > 1e-4 {
            warnings.append("the \(useS ? "sform" : "qform") has shear (axes not orthogonal): direction columns kept as given")
        }
        let origin = SIMD3(-m[3], -m[7], m[11])
        let stem = stem(path)
        let volume = Volume(voxels: voxels, width: nx, height: ny, depth: nz,
                            spacing: SIMD3(spacing[0], spacing[1], spacing[2]), origin: origin, direction: direction,
                            provenance: Provenance(patientID: stem, studyUID: stem, seriesUID: stem, modality: "CT",
                                                   sourceFiles: [path]),
                            warnings: warnings)
        return volume.canonicalized()
    }
}
