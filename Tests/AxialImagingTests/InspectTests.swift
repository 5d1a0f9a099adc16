import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// `axial inspect` against SimpleITK / nibabel values for every fixture case.
@Suite struct InspectTests {
    @Test(arguments: ReaderFixtures.caseNames)
    func agreesWithTrustedTools(_ name: String) throws {
        let c = ReaderFixtures.expected[name]!
        let report = try InspectionReport(inspecting: ReaderFixtures.url(c))
        try #require(report.series.count == c.series.count, "\(name): \(report.series.count) series, problems \(report.problems)")
        // Series order: by series UID order in the expected list (two_series: a then b).
        for (got, want) in zip(report.series, c.series) {
            #expect(got.shape == want.shape, "\(name) shape")
            for (a, b) in zip(got.spacing, want.spacing) where b != nil { #expect(abs(a - b!) < 1e-4, "\(name) spacing \(got.spacing) vs \(want.spacing)") }
            for (a, b) in zip(got.origin, want.origin) { #expect(abs(a - b) < 1e-4, "\(name) origin \(got.origin) vs \(want.origin)") }
            for (a, b) in zip(got.direction, want.direction) { #expect(abs(a - b) < 1e-4, "\(name) direction \(got.direction) vs \(want.direction)") }
            #expect(abs(got.huMean - want.hu_mean) < 1e-3, "\(name) hu_mean \(got.huMean) vs \(want.hu_mean)")
            #expect(abs(got.huMin - want.hu_min) < 1e-3 && abs(got.huMax - want.hu_max) < 1e-3, "\(name) hu range")
            for w in want.warnings { #expect(got.warnings.contains { $0.contains(w) }, "\(name): no warning about \(w) in \(got.warnings)") }
            if want.warnings.isEmpty { #expect(got.warnings.filter { !$0.contains("4D NIfTI") }.isEmpty, "\(name): unexpected warnings \(got.warnings)") }
        }
        for p in c.problems ?? [] {
            #expect(report.problems.contains { ($0.path as NSString).lastPathComponent == p }, "\(name): \(p) not reported: \(report.problems)")
        }
        for f in c.ignored ?? [] { #expect(!report.problems.contains { $0.path.hasSuffix(f) }, "\(name): \(f) should be ignored quietly") }
    }

    /// Voxel order: sampled voxels equal SimpleITK's / nibabel's arrays at the same [z, y, x].
    @Test(arguments: ReaderFixtures.caseNames)
    func voxelsAtProbesAgree(_ name: String) throws {
        let c = ReaderFixtures.expected[name]!
        let volumes = try ReaderFixtures.volumes(ReaderFixtures.url(c)).volumes
        for (v, want) in zip(volumes, c.series) {
            for p in want.probes {
                let (z, y, x) = (Int(p[0]), Int(p[1]), Int(p[2]))
                let got = v.voxels[(z * v.height + y) * v.width + x]
                #expect(abs(Double(got) - p[3]) < 1e-3 * max(1, abs(p[3])), "\(name) voxel [\(z),\(y),\(x)] = \(got), expected \(p[3])")
            }
        }
    }

    @Test func jsonHasTheIssueKeys() throws {
        let c = ReaderFixtures.expected["axial_basic"]!
        let json = try InspectionReport(inspecting: ReaderFixtures.url(c)).json()
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(Array(object.keys) == ["series"])
        let s = (object["series"] as! [[String: Any]])[0]
        #expect(Set(s.keys) == ["patient_id", "study_uid", "series_uid", "modality", "shape", "spacing", "origin",
                                "direction", "hu_min", "hu_max", "hu_mean", "warnings"])
        #expect(s["patient_id"] as? String == "P1")
        #expect((s["shape"] as? [Int]) == [6, 24, 32])
        #expect((s["direction"] as? [Double])?.count == 9)
    }

    @Test func singleDICOMFileIsOneSlice() throws {
        let c = ReaderFixtures.expected["single_file"]!
        let r = try InspectionReport(inspecting: ReaderFixtures.url(c))
        #expect(r.series.map(\.shape) == [[1, 24, 32]])
    }

    @Test func missingInputIsAClearError() {
        #expect(throws: ImagingError.self) { try InspectionReport(inspecting: URL(fileURLWithPath: "/nonexistent/axial")) }
    }
}
