import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

@Suite struct NIfTIReaderTests {
    /// The same scan as DICOM and as NIfTI (SimpleITK .nii/.nii.gz, dcm2niix-style flipped rows,
    /// NIfTI-2) gives identical voxels and geometry.
    @Test(arguments: ["axial_basic_sitk.nii", "axial_basic_sitk.nii.gz", "axial_basic_flipped_rows.nii.gz", "axial_basic_nifti2.nii"])
    func sameScanSameSlices(_ file: String) throws {
        let dicom = try ReaderFixtures.volumes(ReaderFixtures.root.appendingPathComponent("axial_basic")).volumes[0]
        let nifti = try NIfTIReader.readFile(ReaderFixtures.root.appendingPathComponent("nifti/\(file)").path)
        #expect(nifti.width == dicom.width && nifti.height == dicom.height && nifti.depth == dicom.depth)
        #expect(nifti.voxels == dicom.voxels)
        for i in 0..<3 { #expect(abs(nifti.origin[i] - dicom.origin[i]) < 1e-4 && abs(nifti.spacing[i] - dicom.spacing[i]) < 1e-4) }
        for i in 0..<9 { #expect(abs(nifti.direction[i] - dicom.direction[i]) < 1e-6) }
        for k in 0..<dicom.depth { #expect(abs(nifti.sliceZ(k) - dicom.sliceZ(k)) < 1e-4) }
    }

    @Test func patientIDIsTheFileStem() throws {
        let found = try NIfTIReader().scan(ReaderFixtures.root.appendingPathComponent("nifti"))
        #expect(found.series.map(\.patientID).contains("axial_basic_sitk"))
        #expect(found.series.count == 5)
    }

    @Test func canonicalizationKeepsEveryVoxelsPosition() throws {
        // A volume with flipped x and z and permuted axes maps each voxel to the same LPS point.
        let v = Volume(voxels: (0..<24).map(Float.init), width: 2, height: 3, depth: 4, spacing: SIMD3(1, 2, 3),
                       origin: SIMD3(10, 20, 30), direction: [0, 0, -1, 1, 0, 0, 0, -1, 0],
                       provenance: Provenance(patientID: "p", studyUID: "s", seriesUID: "r"))
        let c = v.canonicalized()
        #expect(c.direction == [1, 0, 0, 0, 1, 0, 0, 0, 1].map(Double.init))
        for z in 0..<v.depth { for y in 0..<v.height { for x in 0..<v.width {
            let value = v.voxels[(z * v.height + y) * v.width + x]
            let p = v.position(x: Double(x), y: Double(y), z: Double(z))
            let q = p - c.origin
            let (cx, cy, cz) = (Int((q.x / c.spacing.x).rounded()), Int((q.y / c.spacing.y).rounded()), Int((q.z / c.spacing.z).rounded()))
            #expect(c.voxels[(cz * c.height + cy) * c.width + cx] == value)
        } } }
    }
}
