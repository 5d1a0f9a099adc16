import CNIfTI
import Foundation

/// Writes label volumes (uint8) as NIfTI-1 through libnifti2, on the grid of a source `Volume`, so
/// ITK-SNAP / 3D Slicer overlay them on the scan they came from.
///
/// Geometry: Axial's canonical volume is LPS with voxels [z][y][x], `direction` columns = the x, y, z
/// voxel axes, `origin` = voxel (0, 0, 0). NIfTI's sform / qform are RAS: row r of the affine is
/// flip_r·direction[r][c]·spacing[c] with flip = (−1, −1, +1), translation flip·origin (the inverse
/// of `NIfTIReader`'s conversion, so reading the written file back gives the source geometry).
/// sform_code = qform_code = 1 (scanner). The file is written to a temporary name in the target
/// folder and renamed into place (nothing half-written under the final name).
public enum NIfTIWriter {
    /// labels: width·height·depth values (x fastest, then y, then z), as `volume.voxels`.
    public static func writeLabels(_ labels: [UInt8], like volume: Volume, to url: URL) throws {
        let n = volume.width * volume.height * volume.depth
        guard labels.count == n else {
            throw ImagingError.unsupported(path: url.path, reason: "label volume has \(labels.count) voxels, the source grid \(volume.width)×\(volume.height)×\(volume.depth) = \(n)")
        }
        let name = url.lastPathComponent
        guard name.hasSuffix(".nii") || name.hasSuffix(".nii.gz") else {
            throw ImagingError.unsupported(path: url.path, reason: "a NIfTI output name must end in .nii or .nii.gz")
        }
        let dims: [Int64] = [3, Int64(volume.width), Int64(volume.height), Int64(volume.depth), 1, 1, 1, 1]
        guard let nim = dims.withUnsafeBufferPointer({ nifti_make_new_nim($0.baseAddress, Int32(DT_UINT8), 0) }) else {
            throw ImagingError.unsupported(path: url.path, reason: "libnifti2 could not allocate the image")
        }
        defer { nifti_image_free(nim) }
        // Voxel data (freed by nifti_image_free).
        guard let data = malloc(max(n, 1)) else { throw ImagingError.unsupported(path: url.path, reason: "out of memory") }
        labels.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: n) }
        nim.pointee.data = data

        let flip = [-1.0, -1.0, 1.0]
        let sp = [volume.spacing.x, volume.spacing.y, volume.spacing.z]
        let origin = [volume.origin.x, volume.origin.y, volume.origin.z]
        var m = nifti_dmat44()
        withUnsafeMutableBytes(of: &m.m) { raw in
            let p = raw.bindMemory(to: Double.self)
            for r in 0..<4 { for c in 0..<4 { p[r * 4 + c] = 0 } }
            for r in 0..<3 {
                for c in 0..<3 { p[r * 4 + c] = flip[r] * volume.direction[r * 3 + c] * sp[c] }
                p[r * 4 + 3] = flip[r] * origin[r]
            }
            p[15] = 1
        }
        nim.pointee.sto_xyz = m
        nim.pointee.sform_code = 1
        nim.pointee.qto_xyz = m
        nim.pointee.qform_code = 1
        var qb = 0.0, qc = 0.0, qd = 0.0, qx = 0.0, qy = 0.0, qz = 0.0, dx = 0.0, dy = 0.0, dz = 0.0, qfac = 0.0
        nifti_dmat44_to_quatern(m, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac)
        nim.pointee.quatern_b = qb; nim.pointee.quatern_c = qc; nim.pointee.quatern_d = qd
        nim.pointee.qoffset_x = qx; nim.pointee.qoffset_y = qy; nim.pointee.qoffset_z = qz
        nim.pointee.qfac = qfac
        nim.pointee.dx = sp[0]; nim.pointee.dy = sp[1]; nim.pointee.dz = sp[2]
        nim.pointee.pixdim.1 = sp[0]; nim.pointee.pixdim.2 = sp[1]; nim.pointee.pixdim.3 = sp[2]
        nim.pointee.xyz_units = Int32(NIFTI_UNITS_MM)
        nim.pointee.scl_slope = 1
        nim.pointee.scl_inter = 0

        let folder = url.deletingLastPathComponent()
        let ext = name.hasSuffix(".nii.gz") ? ".nii.gz" : ".nii"
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = folder.appendingPathComponent(".\(name.dropLast(ext.count)).tmp-\(getpid())-\(tag)\(ext)")
        nifti_set_debug_level(0)
        guard nifti_set_filenames(nim, temporary.path, 0, 1) == 0 else {
            throw ImagingError.unsupported(path: url.path, reason: "libnifti2 rejected the file name")
        }
        nim.pointee.nifti_type = Int32(NIFTI_FTYPE_NIFTI1_1)
        nifti_image_write(nim)
        let fm = FileManager.default
        guard let attrs = try? fm.attributesOfItem(atPath: temporary.path), let size = attrs[.size] as? Int, size > 0 else {
            try? fm.removeItem(at: temporary)
            throw ImagingError.unsupported(path: url.path, reason: "libnifti2 did not write the file (folder not writable?)")
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(at: temporary)
            throw ImagingError.unsupported(path: url.path, reason: "cannot move the written file into place: \(reason)")
        }
    }
}
