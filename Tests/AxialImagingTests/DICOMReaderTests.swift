import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

@Suite struct DICOMReaderTests {
    func volume(_ name: String) throws -> Volume {
        let vs = try ReaderFixtures.volumes(ReaderFixtures.url(ReaderFixtures.expected[name]!)).volumes
        try #require(vs.count == 1)
        return vs[0]
    }

    /// Lossless compressed copies (RLE, JPEG-LS, JPEG 2000, JPEG lossless) decode to the same voxels.
    @Test(arguments: ["compressed_rle", "compressed_jpegls", "compressed_j2k", "compressed_jpeg"])
    func compressedEqualsUncompressed(_ name: String) throws {
        let a = try volume("axial_basic"), b = try volume(name)
        #expect(a.voxels == b.voxels)
        #expect(a.origin == b.origin && a.spacing == b.spacing && a.direction == b.direction)
    }

    @Test func slicesSortedAlongNormalNotByName() throws {
        let v = try volume("axial_basic")
        let z = (0..<v.depth).map { v.sliceZ($0) }
        #expect(z == z.sorted() && Set(z).count == z.count)
        // Files are named randomly: the order must not be the file-name order.
        let names = v.provenance.sourceFiles.map { ($0 as NSString).lastPathComponent }
        #expect(names != names.sorted())
        #expect(v.provenance.sourceFiles.count == 6)
    }

    @Test func localizersAndOddImagesAreSkipped() throws {
        let found = try DICOMReader().scan(ReaderFixtures.url(ReaderFixtures.expected["localizer"]!))
        #expect(found.series.count == 1 && found.series[0].files.count == 5)
        #expect(!found.series[0].files.contains { $0.hasSuffix("scout1") || $0.hasSuffix("scout2") })
        #expect(found.series[0].warnings.count == 2)
    }

    @Test func malformedFilesAreProblemsWithReasons() throws {
        let found = try DICOMReader().scan(ReaderFixtures.url(ReaderFixtures.expected["malformed"]!))
        #expect(found.series.isEmpty)
        let byName = Dictionary(uniqueKeysWithValues: found.problems.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        #expect(byName["truncated"]?.contains("truncated") == true)
        #expect(byName["truncated_rle"]?.contains("truncated") == true)
        #expect(byName["colour.dcm"]?.contains("colour") == true)
        #expect(byName["multiframe.dcm"]?.contains("not supported") == true)
        #expect(byName["notes.txt"] == nil)
    }

    /// A series whose files are given out of order (not from scan) is still sorted by position.
    @Test func readSortsFilesItself() throws {
        let c = ReaderFixtures.expected["flipped"]!
        let found = try DICOMReader().scan(ReaderFixtures.url(c))
        var info = found.series[0]
        let sorted = try DICOMReader().read(info)
        info.files.reverse()
        let reversed = try DICOMReader().read(info)
        #expect(sorted.voxels == reversed.voxels && sorted.origin == reversed.origin)
    }

    @Test func twoSeriesInOneStudy() throws {
        let found = try DICOMReader().scan(ReaderFixtures.url(ReaderFixtures.expected["two_series"]!))
        #expect(found.series.count == 2)
        #expect(Set(found.series.map(\.studyUID)).count == 1)
        #expect(found.series.map(\.files.count).sorted() == [4, 5])
    }

    @Test func monochrome1IsInverted() throws {
        // Stored 4095 − v with intercept −1024 must read back as v − 1024 (MONOCHROME2 convention).
        let v = try volume("monochrome1")
        let e = ReaderFixtures.expected["monochrome1"]!.series[0]
        #expect(abs(Double(v.voxels.max()!) - e.hu_max) < 1e-3 && abs(Double(v.voxels.min()!) - e.hu_min) < 1e-3)
    }
}
