import Foundation
import Testing
@testable import AxialImaging

/// Regressions found by Tools/check_real_data.py on the pydicom / nibabel wheels' test files
/// (Fixtures/readers/real_regressions, see LICENSES.md there). Expected values from SimpleITK 2.5
/// (`DICOMOrient(ReadImage(f), "LPS")`).
struct RealDataRegressionTests {
    static let dir = ReaderFixtures.root.appendingPathComponent("real_regressions")

    @Test func rtDoseWithoutNumberOfFramesIsAProblemNotACrash() throws {
        // GDCM's ImageReader asserted (SIGABRT) on this file; it must be refused at scan time.
        let url = Self.dir.appendingPathComponent("rtdose_1frame.dcm")
        let report = try InspectionReport(inspecting: url)
        #expect(report.series.isEmpty)
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.reason.contains("RT Dose") == true)
    }

    @Test(arguments: [("693_J2KI.dcm", 20.0, -1032.3228454589844), ("MR_small.dcm", 1.0, 518.88134765625)])
    func singleSliceZSpacingAsSimpleITK(file: String, z: Double, mean: Double) throws {
        // One slice: SpacingBetweenSlices, else 1 (was SliceThickness: 5 and 0.8).
        let report = try InspectionReport(inspecting: Self.dir.appendingPathComponent(file))
        let s = try #require(report.series.first)
        #expect(s.shape[0] == 1)
        #expect(abs(s.spacing[0] - z) < 1e-9)
        #expect(abs(s.huMean - mean) < 1e-3)
    }

    @Test func ciftiMatrixIsNotReadAsAVolume() throws {
        // Was read as a 1×1×1 "volume" with a "6D NIfTI with 100 volumes" warning.
        let report = try InspectionReport(inspecting: Self.dir.appendingPathComponent("row_major.dconn.nii"))
        #expect(report.series.isEmpty)
        #expect(report.problems.first?.reason.contains("not an image volume") == true)
    }

    @Test func unrecognisedSingleFileSaysWhy() throws {
        // A named file neither reader recognises (e.g. pydicom's no_meta.dcm, big-endian without
        // preamble) used to give an empty report and no problem.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-unrecognised-\(UUID().uuidString).dcm")
        try Data([0x20, 0x08, 0x00, 0x05, 0x43, 0x53] + [UInt8](repeating: 7, count: 200)).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let report = try InspectionReport(inspecting: url)
        #expect(report.series.isEmpty)
        #expect(report.problems.first?.reason.contains("not recognised as DICOM") == true)
    }
}
