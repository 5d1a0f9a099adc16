import AxialImaging
import AxialModels
import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// `axial extract` on DICOM directly (no manifest.csv) equals ingest → extract; `series.json`
/// gives spacing_mm and the windows (stacked labels with their components).
@Suite struct ExtractVolumeTests {
    static func writeSeries(_ root: URL) throws {
        for (i, p) in ["PA", "PB"].enumerated() {
            let ct = SyntheticCT(patientID: p, rows: 48, columns: 40, slices: 5, pixelSpacing: 0.8, sliceSpacing: 2.5, firstZ: -5,
                                 lesions: [.init(center: SIMD3(3, -2, 0), radius: 6)], noise: 30, seed: UInt64(i + 3))
            _ = try ct.write(to: root.appendingPathComponent(p))
        }
    }

    @Test(arguments: [ChannelMode.separate, .stacked])
    func dicomInputMatchesIngestThenExtract(_ mode: ChannelMode) throws {
        let dicom = scratch("xv-dicom"), ingest = scratch("xv-ingest"), viaIngest = scratch("xv-out1"), direct = scratch("xv-out2")
        try Self.writeSeries(dicom)
        let windows = try CTWindow.parseList("abdomen,lung")
        let s = try Ingest.run(IngestOptions(input: dicom, output: ingest, windows: windows, channels: mode, size: 44, progress: .quiet))
        #expect(s.seriesIngested == 2)
        let a = try Extract.run(ExtractOptions(input: ingest, output: viaIngest, encoder: "vit_test", seed: 5, batchSize: 3, progress: .quiet))
        let b = try Extract.run(ExtractOptions(input: dicom, output: direct, encoder: "vit_test", seed: 5, batchSize: 4,
                                               windows: ["abdomen", "lung"], progress: .quiet, channels: mode, size: 44))
        #expect(a.written == 2 && b.written == 2 && b.failed == 0 && a.slices == b.slices)
        #expect(a.slices == 2 * 5 * (mode == .separate ? 2 : 1))
        for p in ["PA", "PB"] {
            let (fa, _) = try FeatureStore.read(viaIngest.appendingPathComponent("\(p).h5"))
            let (fb, _) = try FeatureStore.read(direct.appendingPathComponent("\(p).h5"))
            #expect(fa.count == fb.count && fa.sliceIndex == fb.sliceIndex && fa.zMM == fb.zMM && fa.window == fb.window)
            let err = maxAbsDifference(fa.feats, fb.feats)
            #expect(err <= 1e-5, "\(p): max |Δ| \(err)")
            // Spacing from the volume (x, y, z), through series.json for the ingest folder.
            #expect(fa.metadata.spacingMM.map { ($0 * 1e6).rounded() / 1e6 } == [0.8, 0.8, 2.5])
            #expect(fb.metadata.spacingMM == fa.metadata.spacingMM)
            #expect(fa.metadata.windows == fb.metadata.windows)
            #expect(fa.metadata.seriesUID == fb.metadata.seriesUID && fa.metadata.studyUID == fb.metadata.studyUID)
            #expect(fa.zMM.first == -5 && fa.sliceIndex.last == 4)
            switch mode {
            case .separate:
                #expect(fa.metadata.windows == [StoredWindow(name: "abdomen", width: 400, level: 40),
                                                 StoredWindow(name: "lung", width: 1500, level: -600)])
            case .stacked:
                let w = fa.metadata.windows
                #expect(w.count == 1 && w[0].name == "abdomen+lung" && w[0].width.isNaN && w[0].level.isNaN)
                #expect(w[0].components == [StoredWindow(name: "abdomen", width: 400, level: 40),
                                            StoredWindow(name: "lung", width: 1500, level: -600)])
            }
        }
        // series.json beside slices.csv.
        let series = try #require(try FileManager.default.contentsOfDirectory(atPath: ingest.appendingPathComponent("PA").path).first { !$0.hasPrefix(".") })
        let info = try #require(try SeriesInfoFile.readIfPresent(ingest.appendingPathComponent("PA/\(series)/series.json")))
        #expect(info.shape == [5, 48, 40] && info.imageSize == [44, 44] && info.channels == mode)
        #expect(abs(info.pixelSpacingMM[0] - 0.8 * 40 / 44) < 1e-12 && abs(info.pixelSpacingMM[1] - 0.8 * 48 / 44) < 1e-12)
        #expect(info.windows == windows)

        // h5py reads the windows attribute (null width / level for a stacked label).
        let check = """
        import sys, json, h5py
        with h5py.File(sys.argv[1], "r") as f:
            w = json.loads(f.attrs["windows"]); s = list(f.attrs["spacing_mm"])
            assert abs(s[0] - 0.8) < 1e-9 and abs(s[2] - 2.5) < 1e-9, s
            if len(w) == 1:
                assert w[0]["width"] is None and [c["name"] for c in w[0]["components"]] == ["abdomen", "lung"], w
            else:
                assert w[1] == {"name": "lung", "width": 1500.0, "level": -600.0}, w
            print("ok")
        """
        if let r = try runPython(check, [direct.appendingPathComponent("PA.h5").path]) { #expect(r.contains("ok")) }
    }

    @Test func dicomInputErrors() throws {
        let empty = scratch("xv-empty"), out = scratch("xv-out3")
        #expect(throws: PipelineError.self) {
            try Extract.run(ExtractOptions(input: empty, output: out, encoder: "vit_test", progress: .quiet))
        }
        let dicom = scratch("xv-dicom2")
        try Self.writeSeries(dicom)
        #expect(throws: PipelineError.self) {
            try Extract.run(ExtractOptions(input: dicom, output: out, encoder: "vit_test", windows: ["nonsense"], progress: .quiet))
        }
        // Default window (abdomen, as ingest), float16, shard.
        let s = try Extract.run(ExtractOptions(input: dicom, output: out, encoder: "vit_test", precision: .float16, progress: .quiet))
        #expect(s.written == 2 && s.slices == 10)
        let (f, precision) = try FeatureStore.read(out.appendingPathComponent("PB.h5"))
        #expect(precision == .float16 && f.metadata.windows.map(\.name) == ["abdomen"] && f.count == 5)
        let again = try Extract.run(ExtractOptions(input: dicom, output: out, encoder: "vit_test", progress: .quiet))
        #expect(again.skipped == 2 && again.written == 0)
    }

    @Test func oldIngestFoldersWithoutSeriesJSONStillWork() throws {
        let root = scratch("xv-old"), out = scratch("xv-out4")
        try syntheticIngest(root, patients: ["Q"], slices: 3, windows: ["abdomen", "W100/L20", "abdomen+lung"])
        let s = try Extract.run(ExtractOptions(input: root, output: out, encoder: "vit_test", progress: .quiet))
        #expect(s.written == 1)
        let (f, _) = try FeatureStore.read(out.appendingPathComponent("Q.h5"))
        let w = f.metadata.windows
        #expect(w.count == 3 && w[0] == StoredWindow(name: "abdomen", width: 400, level: 40))
        #expect(w[1].width == 100 && w[1].level == 20)
        #expect(w[2].width.isNaN && w[2].components?.map(\.name) == ["abdomen", "lung"] && w[2].components?[1].width == 1500)
        #expect(f.metadata.spacingMM[0].isNaN && f.metadata.spacingMM[2] == 2.5)
    }
}
