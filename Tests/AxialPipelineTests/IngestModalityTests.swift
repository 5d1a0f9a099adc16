import AxialImaging
import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// Non-CT series (pydicom's MR_small.dcm, examples_overlay.dcm were windowed as HU by `axial ingest`,
/// found by Tools/check_real_data.py) go to ingest_errors.csv with their modality; CT and a missing
/// Modality are ingested.
@Suite struct IngestModalityTests {
    struct Reader: VolumeReader {
        let volumes: [(Volume, String)]
        func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
            (volumes.map { v, m in
                SeriesInfo(patientID: v.provenance.patientID, studyUID: v.provenance.studyUID, seriesUID: v.provenance.seriesUID,
                           modality: m, files: v.provenance.sourceFiles)
            }, [])
        }
        func read(_ series: SeriesInfo) throws -> Volume { volumes.first { $0.0.provenance.seriesUID == series.seriesUID }!.0 }
    }

    @Test func nonCTSeriesAreSkippedWithAReason() throws {
        let out = scratch("modality")
        defer { try? FileManager.default.removeItem(at: out) }
        let reader = Reader(volumes: [(testVolume(patient: "A", series: "1.1"), "CT"), (testVolume(patient: "B", series: "2.1"), "MR"),
                                      (testVolume(patient: "C", series: "3.1"), ""), (testVolume(patient: "D", series: "4.1"), "PT")])
        let options = IngestOptions(input: FileManager.default.temporaryDirectory, output: out, windows: try CTWindow.parseList("abdomen"),
                                    readers: [reader], progress: .quiet)
        let summary = try Ingest.run(options)
        // Skipped by design, not failed: no exit code 3 for non-CT series.
        #expect(summary.seriesIngested == 2 && summary.seriesFailed == 0 && summary.seriesNotCT == 2)
        #expect(summary.exitCode == nil)
        let errors = try CSVTable.read(out.appendingPathComponent("ingest_errors.csv"))
        #expect(errors.rows.count == 2)
        #expect(errors.rows.contains(["/in/B/2.1/0.dcm", "series 2.1: modality MR, not CT (no Hounsfield units), skipped"]))
        #expect(errors.rows.contains { $0[0] == "/in/D/4.1/0.dcm" && $0[1].contains("modality PT") })
        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(Set(manifest.rows.map { $0[0] }) == ["A", "C"])
    }

    /// Only non-CT series: nothing to ingest, exit 2 (as with no series), not 1 or 3.
    @Test func onlyNonCTSeriesExitTwo() throws {
        let out = scratch("modality-only")
        defer { try? FileManager.default.removeItem(at: out) }
        let reader = Reader(volumes: [(testVolume(patient: "B", series: "2.1"), "MR")])
        let options = IngestOptions(input: FileManager.default.temporaryDirectory, output: out, windows: try CTWindow.parseList("abdomen"),
                                    readers: [reader], progress: .quiet)
        let summary = try Ingest.run(options)
        #expect(summary.seriesNotCT == 1 && summary.seriesFailed == 0 && summary.exitCode == 2)
    }

    /// Each shard writes its own error list, rewritten on its rerun (never a shared appended one).
    @Test func shardsWriteTheirOwnErrorLists() throws {
        let out = scratch("modality-shards")
        defer { try? FileManager.default.removeItem(at: out) }
        let reader = Reader(volumes: [(testVolume(patient: "B", series: "2.1"), "MR"), (testVolume(patient: "D", series: "4.1"), "PT")])
        for _ in 0..<2 {   // the rerun rewrites each shard's list instead of appending
            for i in 0..<2 {
                let options = IngestOptions(input: FileManager.default.temporaryDirectory, output: out, windows: try CTWindow.parseList("abdomen"),
                                            shard: Shard(index: i, count: 2), readers: [reader], progress: .quiet)
                let summary = try Ingest.run(options)
                #expect(summary.errors.lastPathComponent == "ingest_errors.shard-\(i)-of-2.csv")
            }
        }
        let lists = try (0..<2).map { try CSVTable.read(out.appendingPathComponent("ingest_errors.shard-\($0)-of-2.csv")).rows }
        #expect(lists[0].count + lists[1].count == 2)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("ingest_errors.csv").path))
    }
}
