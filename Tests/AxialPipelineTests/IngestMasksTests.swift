import AxialImaging
import AxialStore
import AxialTestSupport
import Foundation
import Testing
@testable import AxialPipeline

/// `axial ingest --masks`: the fixtures (Tools/fixtures/make_mask_fixtures.py) hold two NIfTI CTs
/// and their label volumes, each mask in the other storage order than its image (nibabel RAS vs
/// SimpleITK LPS), and a mask with the wrong spacing. Expected pixels are nibabel's reorientation of
/// the mask files to LPS.
@Suite struct IngestMasksTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures/masks", withExtension: nil)!

    struct Expected: Decodable { var shape: [Int]; var labels: [[[Int]]]; var resized6: [[[Int]]] }
    static func expected() throws -> [String: Expected] {
        try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))
    }

    /// An input tree with images/ and masks/ (the masks folder inside the input, as users do).
    func inputTree(_ tag: String, masks: String = "masks") throws -> URL {
        let root = temporaryFolder("ingest-masks-\(tag)")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("images"), to: root.appendingPathComponent("images"))
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent(masks), to: root.appendingPathComponent("masks"))
        return root
    }

    func options(_ input: URL, _ out: URL, values: MaskValues, size: Int? = nil) throws -> IngestOptions {
        IngestOptions(input: input, output: out, windows: try CTWindow.parseList("abdomen"), size: size,
                      readers: [NIfTIReader()], progress: .quiet,
                      masks: IngestMasks(folder: input.appendingPathComponent("masks"), values: values))
    }

    @Test func maskPixelsAreTheSliceVoxelsAndAlignWithTheImage() throws {
        let input = try inputTree("labels")
        let out = input.appendingPathComponent("out")
        let summary = try Ingest.run(try options(input, out, values: .labels))
        // The two mask files are not CT series.
        #expect(summary.seriesFound == 2 && summary.seriesIngested == 2 && summary.seriesWithMasks == 2)
        #expect(summary.problems.isEmpty && summary.exitCode == nil)
        for (name, e) in try Self.expected() {
            let folder = Ingest.seriesFolder(out, name, name)
            let table = try CSVTable.read(folder.appendingPathComponent(IngestMasks.csvName))
            #expect(table.header == IngestMasks.csvHeader && table.rows.count == e.shape[0])
            for z in 0..<e.shape[0] {
                let mask = try PNG.read(folder.appendingPathComponent(IngestMasks.pngName(z)), channels: 1)
                #expect(mask.width == e.shape[2] && mask.height == e.shape[1])
                let want = e.labels[z].flatMap { $0 }.map(UInt8.init)
                #expect(mask.pixels == want, "\(name) slice \(z)")
                #expect(want.contains(2) && want.contains(1))
                // The CT is 700 HU (255 in the abdomen window) exactly on the labelled voxels.
                let image = try PNG.read(folder.appendingPathComponent(Ingest.imageName(z, "abdomen")), channels: 1)
                #expect(image.pixels.map { $0 == 255 } == want.map { $0 != 0 }, "\(name) slice \(z) image vs mask")
                let row = table.rows[z]
                #expect(row[0] == String(z) && row[2] == "\(name)/\(name)/\(IngestMasks.pngName(z))")
                #expect(row[3] == String(want.filter { $0 != 0 }.count))
            }
        }
        // A rerun with the same masks skips; without masks the series are redone (and lose their masks).
        #expect(try Ingest.run(try options(input, out, values: .labels)).seriesSkipped == 2)
        var plain = try options(input, out, values: .labels)
        plain.masks = nil
        plain.input = input.appendingPathComponent("images")
        let again = try Ingest.run(plain)
        #expect(again.seriesIngested == 2 && again.seriesWithMasks == 0)
        #expect(!FileManager.default.fileExists(atPath: Ingest.seriesFolder(out, "caseA", "caseA").appendingPathComponent(IngestMasks.pngName(0)).path))
    }

    @Test func binaryMasksResizeByNearestNeighbour() throws {
        let input = try inputTree("binary")
        let out = input.appendingPathComponent("out")
        let summary = try Ingest.run(try options(input, out, values: .binary, size: 6))
        #expect(summary.seriesWithMasks == 2)
        for (name, e) in try Self.expected() {
            for z in 0..<e.shape[0] {
                let mask = try PNG.read(Ingest.seriesFolder(out, name, name).appendingPathComponent(IngestMasks.pngName(z)), channels: 1)
                #expect(mask.width == 6 && mask.height == 6)
                #expect(mask.pixels == e.resized6[z].flatMap { $0 }.map { $0 != 0 ? UInt8(255) : 0 }, "\(name) slice \(z)")
            }
        }
    }

    @Test func aMaskOffTheSeriesGridIsRefusedWithBothGrids() throws {
        let input = try inputTree("bad", masks: "bad")
        let out = input.appendingPathComponent("out")
        let summary = try Ingest.run(try options(input, out, values: .binary))
        #expect(summary.seriesFound == 2 && summary.seriesIngested == 1 && summary.seriesFailed == 1 && summary.exitCode == 3)
        let problem = try #require(summary.problems.first)
        #expect(problem.path.hasSuffix("masks/caseA.nii.gz"))
        #expect(problem.reason.contains("mask grid does not match series caseA (spacing differs"))
        #expect(problem.reason.contains("mask 10×8×3 voxels, spacing (0.7, 1, 2.5) mm"))
        #expect(problem.reason.contains("series 10×8×3 voxels, spacing (0.7, 0.9, 2.5) mm"))
        // Nothing of caseA was written (no folder, no temporary), caseB was ingested without a mask.
        let patient = out.appendingPathComponent("caseA")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: patient.path)) ?? []).isEmpty)
        #expect(FileManager.default.fileExists(atPath: Ingest.seriesFolder(out, "caseB", "caseB").appendingPathComponent(".complete").path))
        let errors = try CSVTable.read(out.appendingPathComponent("ingest_errors.csv"))
        #expect(errors.rows.count == 1 && errors.rows[0][1].contains("mask grid does not match"))
        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(manifest.rows.allSatisfy { $0[0] == "caseB" } && !manifest.rows.isEmpty)
    }

    @Test func masksMatchBySeriesUIDThenBySingleSeriesPatient() {
        let series = [SeriesInfo(patientID: "P1", studyUID: "s", seriesUID: "1.2.3", modality: "CT", files: ["/a"]),
                      SeriesInfo(patientID: "P1", studyUID: "s", seriesUID: "1.2.4", modality: "CT", files: ["/b"]),
                      SeriesInfo(patientID: "P/2", studyUID: "t", seriesUID: "9.9", modality: "CT", files: ["/c"])]
        let files = ["1.2.3": "/m/1.2.3.nii.gz", "P1": "/m/P1.nii.gz", "P_2": "/m/P_2.nii", "stranger": "/m/stranger.nii.gz"]
        let (masks, problems) = IngestMasks.match(series: series, files: files)
        #expect(masks == [0: "/m/1.2.3.nii.gz", 2: "/m/P_2.nii"])
        #expect(problems.count == 2)
        #expect(problems.contains { $0.path == "/m/P1.nii.gz" && $0.reason.contains("patient 'P1' has 2 series") })
        #expect(problems.contains { $0.path == "/m/stranger.nii.gz" && $0.reason.contains("no series UID or patient ID 'stranger'") })
    }

    @Test func badMaskOptionsAreRefused() throws {
        let input = try inputTree("opts")
        let out = input.appendingPathComponent("out")
        var o = try options(input, out, values: .binary)
        o.masks = IngestMasks(folder: input.appendingPathComponent("nowhere"))
        #expect(throws: PipelineError.self) { try Ingest.run(o) }
        o = try options(input, out, values: .binary)
        o.windows = [CTWindow(name: "mask", width: 400, level: 40)]
        #expect(throws: PipelineError.self) { try Ingest.run(o) }
    }
}
