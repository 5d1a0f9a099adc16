import AxialCore
import AxialImaging
import AxialStore
import Foundation

/// What the mask PNGs hold.
public enum MaskValues: String, Sendable, CaseIterable {
    /// 0 for background, 255 for any non-zero label (BMAD's `anomaly_mask/` convention).
    case binary
    /// The integer label itself (0…255; other values are refused).
    case labels
}

/// `axial ingest --masks MASKS [--mask-values binary|labels]`: label volumes cut into per-slice
/// mask PNGs beside the image slices.
///
/// Matching: `MASKS` is a folder of NIfTI files (`.nii` / `.nii.gz`, top level only). A mask file
/// `<stem>.nii.gz` belongs to the series whose series UID is `<stem>` (raw or sanitised as in the
/// output folder names), else to the patient whose ID is `<stem>` when that patient has exactly one
/// series. For NIfTI input the series UID and patient ID are the image's file stem, so a mask
/// carries its image's file name (`images/case7.nii.gz` ↔ `masks/case7.nii.gz`, the nnU-Net /
/// Medical Segmentation Decathlon layout). A mask file that matches no series, a patient-named mask
/// of a patient with several series, and `x.nii` beside `x.nii.gz` are listed in
/// `ingest_errors.csv` (exit status 3). Series without a mask are ingested as usual, without mask
/// PNGs. NIfTI files under `MASKS` are never ingested as CT series, even when `MASKS` lies inside
/// the input tree.
///
/// Grid: the mask is read with the same reader as a NIfTI series (so both are in Axial's canonical
/// LPS voxel order) and must then have the series' grid: the same dimensions, spacing and origin
/// within 1e-3 mm, direction cosines within 1e-4. A mask stored in another voxel order (e.g.
/// SimpleITK's LPS order beside a nibabel RAS image) but on the same physical grid is accepted
/// and lands on the same voxels. Otherwise the series fails with both grids named, and nothing of
/// it is written.
///
/// Output, in the series folder: `<slice>_mask.png` (8-bit gray, one per slice, the same slice
/// index, rows and columns as `<slice>_<window>.png`) and `masks.csv` (slice_index, z_mm, path
/// relative to the output root, foreground_pixels = non-zero pixels of the PNG). With `--size N`
/// masks are resized to N×N by nearest neighbour on the image resize's pixel-centre grid (source
/// index ⌊(o + ½)·in/out⌋, torch's `nearest-exact`), so labels are never blended. The mask file's
/// SHA-256 and `--mask-values` are part of the series' `.complete` settings: a changed mask redoes
/// the series.
public struct IngestMasks: Sendable {
    public var folder: URL
    public var values: MaskValues

    public init(folder: URL, values: MaskValues = .binary) { self.folder = folder; self.values = values }

    /// Tolerances of the grid comparison.
    public static let positionTolerance = 1e-3      // mm, spacing and origin
    public static let directionTolerance = 1e-4     // direction cosines

    public static let csvName = "masks.csv"
    public static let csvHeader = ["slice_index", "z_mm", "path", "foreground_pixels"]

    /// File name of slice `k`'s mask.
    public static func pngName(_ k: Int) -> String { String(format: "%04d_mask.png", k) }

    /// The NIfTI files of the folder, stem → path; duplicate stems are problems (both files skipped).
    func listFiles() throws -> (files: [String: String], problems: [InputProblem]) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw PipelineError.invalidOption(option: "--masks", reason: "\(folder.path) is not a folder")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() } catch {
            throw PipelineError.io(path: folder.path, reason: "cannot list the masks folder: \(error.localizedDescription)")
        }
        var byStem: [String: [String]] = [:]
        for n in names where !n.hasPrefix(".") {
            let l = n.lowercased()
            guard l.hasSuffix(".nii") || l.hasSuffix(".nii.gz") else { continue }
            var stem = n
            for ext in [".nii.gz", ".nii"] where stem.lowercased().hasSuffix(ext) { stem = String(stem.dropLast(ext.count)); break }
            byStem[stem, default: []].append(folder.appendingPathComponent(n).path)
        }
        var files: [String: String] = [:]
        var problems: [InputProblem] = []
        for (stem, paths) in byStem.sorted(by: { $0.key < $1.key }) {
            if paths.count == 1 { files[stem] = paths[0]; continue }
            for p in paths {
                problems.append(InputProblem(path: p, reason: "mask: \(paths.count) mask files for '\(stem)' (\(paths.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))); keep one"))
            }
        }
        if files.isEmpty && problems.isEmpty {
            throw PipelineError.invalidOption(option: "--masks", reason: "no .nii / .nii.gz files in \(folder.path)")
        }
        return (files, problems)
    }

    /// Mask path per series index, and the mask files that could not be matched.
    static func match(series: [SeriesInfo], files: [String: String]) -> (masks: [Int: String], problems: [InputProblem]) {
        var masks: [Int: String] = [:]
        var used = Set<String>()
        var problems: [InputProblem] = []
        var seriesOfPatient: [String: [Int]] = [:]
        for (i, s) in series.enumerated() { seriesOfPatient[s.patientID, default: []].append(i) }
        // By series UID first (raw, then sanitised as the output folder is named).
        for (i, s) in series.enumerated() {
            let uid = s.seriesUID.isEmpty ? "unknown" : s.seriesUID
            if let p = files[uid] ?? files[sanitizedName(uid)] { masks[i] = p; used.insert(p) }
        }
        // Then by patient ID, for patients with one series.
        for (stem, path) in files.sorted(by: { $0.key < $1.key }) where !used.contains(path) {
            let owners = seriesOfPatient.filter { $0.key == stem || patientFileStem($0.key) == stem }
            let indices = owners.values.flatMap { $0 }
            if indices.isEmpty {
                problems.append(InputProblem(path: path, reason: "mask: no series UID or patient ID '\(stem)' among the \(series.count) series found"))
            } else if indices.count > 1 {
                problems.append(InputProblem(path: path, reason: "mask: patient '\(stem)' has \(indices.count) series; name the mask by series UID (\(indices.map { series[$0].seriesUID }.sorted().joined(separator: ", ")))"))
            } else if masks[indices[0]] != nil {
                problems.append(InputProblem(path: path, reason: "mask: series \(series[indices[0]].seriesUID) already has the mask \(masks[indices[0]]!) (named by series UID)"))
            } else {
                masks[indices[0]] = path
                used.insert(path)
            }
        }
        return (masks, problems)
    }

    /// One line naming a volume's grid, for the mismatch error.
    static func gridText(_ v: Volume) -> String {
        func f(_ x: Double) -> String { String(format: "%.4g", x) }
        return "\(v.width)×\(v.height)×\(v.depth) voxels, spacing (\(f(v.spacing.x)), \(f(v.spacing.y)), \(f(v.spacing.z))) mm, "
            + "origin (\(f(v.origin.x)), \(f(v.origin.y)), \(f(v.origin.z))) mm, direction [\(v.direction.map(f).joined(separator: ", "))]"
    }

    /// The first difference between two grids, or nil when they agree within the tolerances.
    static func gridDifference(_ a: Volume, _ b: Volume) -> String? {
        if a.width != b.width || a.height != b.height || a.depth != b.depth { return "dimensions differ" }
        for (x, y) in zip([a.spacing.x, a.spacing.y, a.spacing.z], [b.spacing.x, b.spacing.y, b.spacing.z]) where abs(x - y) > positionTolerance {
            return "spacing differs by more than \(positionTolerance) mm"
        }
        for (x, y) in zip([a.origin.x, a.origin.y, a.origin.z], [b.origin.x, b.origin.y, b.origin.z]) where abs(x - y) > positionTolerance {
            return "origin differs by more than \(positionTolerance) mm"
        }
        for (x, y) in zip(a.direction, b.direction) where abs(x - y) > directionTolerance {
            return "direction differs by more than \(directionTolerance)"
        }
        return nil
    }

    /// Reads the mask at `path` for `volume` and returns its voxels as PNG values (canonical order,
    /// as `volume.voxels`). Throws `PipelineError.io` naming the mask, with both grids on mismatch.
    func read(_ path: String, for volume: Volume) throws -> [UInt8] {
        let mask: Volume
        do { mask = try NIfTIReader.readFile(path) } catch {
            throw PipelineError.io(path: path, reason: "mask: \(error)")
        }
        if let why = IngestMasks.gridDifference(mask, volume) {
            throw PipelineError.io(path: path, reason: "mask grid does not match series \(volume.provenance.seriesUID) (\(why)): mask "
                + IngestMasks.gridText(mask) + "; series " + IngestMasks.gridText(volume))
        }
        var out = [UInt8](repeating: 0, count: mask.voxels.count)
        for (i, v) in mask.voxels.enumerated() where v != 0 {
            switch values {
            case .binary: out[i] = 255
            case .labels:
                guard v == v.rounded(), v >= 0, v <= 255 else {
                    let x = i % mask.width, y = (i / mask.width) % mask.height, z = i / (mask.width * mask.height)
                    throw PipelineError.io(path: path, reason: "mask: voxel (x \(x), y \(y), slice \(z)) is \(v); --mask-values labels needs integers 0…255 (or use binary)")
                }
                out[i] = UInt8(v)
            }
        }
        return out
    }

    /// Slice `k` of `labels` (a `width × height × depth` volume) as an 8-bit gray image, resized to
    /// `size × size` by nearest neighbour (`⌊(o + ½)·in/out⌋`) when `size` is given.
    public static func slice(_ labels: [UInt8], width: Int, height: Int, _ k: Int, size: Int?) -> Image8 {
        let base = k * width * height
        guard let s = size, s != width || s != height else {
            return Image8(width: width, height: height, channels: 1, pixels: Array(labels[base..<(base + width * height)]))
        }
        func source(_ o: Int, _ inSize: Int) -> Int { min(Int((Double(o) + 0.5) * Double(inSize) / Double(s)), inSize - 1) }
        let xs = (0..<s).map { source($0, width) }, ys = (0..<s).map { source($0, height) }
        var pixels = [UInt8](repeating: 0, count: s * s)
        for oy in 0..<s {
            let row = base + ys[oy] * width
            for ox in 0..<s { pixels[oy * s + ox] = labels[row + xs[ox]] }
        }
        return Image8(width: s, height: s, channels: 1, pixels: pixels)
    }
}

extension IngestMasks {
    /// `masks.csv` of a series: one row per slice (`folder` = the series folder relative to the output root, with `/`).
    static func csv(_ labels: [UInt8], volume: Volume, size: Int?, folder: String) -> CSVTable {
        var rows: [[String]] = []
        rows.reserveCapacity(volume.depth)
        for k in 0..<volume.depth {
            let image = slice(labels, width: volume.width, height: volume.height, k, size: size)
            rows.append([String(k), String(format: "%.4f", volume.sliceZ(k)), folder + pngName(k),
                         String(image.pixels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) })])
        }
        return CSVTable(header: csvHeader, rows: rows)
    }
}
