import Foundation
import AxialTestSupport
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
        #expect(report.problems.first?.reason.hasPrefix("not supported: not an image volume") == true)   // the path once, in .path
    }

    @Test func unrecognisedSingleFileSaysWhy() throws {
        // A named file neither reader recognises (e.g. pydicom's no_meta.dcm, big-endian without
        // preamble) used to give an empty report and no problem.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-unrecognised-\(UUID().uuidString).bin")
        try Data([0x20, 0x08, 0x00, 0x05, 0x43, 0x53] + [UInt8](repeating: 7, count: 200)).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let report = try InspectionReport(inspecting: url)
        #expect(report.series.isEmpty)
        #expect(report.problems.first?.reason.contains("not recognised as a DICOM image") == true)
    }

    @Test func dicomdirIsSkippedBeforeGDCMParsesIt() throws {
        // GDCM asserted (SIGABRT) on this DICOMDIR when `axial inspect` scanned pydicom's test folder.
        let folder = Self.dir.appendingPathComponent("dicomdir")
        #expect(DICOMFile.metaSOPClassUID(folder.appendingPathComponent("DICOMDIR-nooffset").path) == "1.2.840.10008.1.3.10")
        let report = try InspectionReport(inspecting: folder)
        #expect(report.series.isEmpty && report.problems.isEmpty)
        #expect(DICOMFile.metaSOPClassUID(Self.dir.appendingPathComponent("MR_small.dcm").path) == "1.2.840.10008.5.1.4.1.1.4")
    }

    @Test func filesNamedLikeDICOMButNotDICOMAreProblems() throws {
        // nibabel's siemens_dwi_0.dcm.gz in a study folder was skipped silently.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("axial-named-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([0x1F, 0x8B, 8, 0, 0, 0, 0, 0]).write(to: folder.appendingPathComponent("slice.dcm.gz"))
        try Data("not an image".utf8).write(to: folder.appendingPathComponent("junk.dcm"))
        try Data("notes".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        let report = try InspectionReport(inspecting: folder)
        #expect(report.series.isEmpty && report.problems.count == 2)
        #expect(report.problems.contains { $0.path.hasSuffix("slice.dcm.gz") && $0.reason.contains("gzip-compressed") })
        #expect(report.problems.contains { $0.path.hasSuffix("junk.dcm") && $0.reason.contains("named like DICOM but not DICOM") })
    }
}
