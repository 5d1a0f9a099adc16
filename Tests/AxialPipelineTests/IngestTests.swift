import AxialImaging
import AxialStore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// A `VolumeReader` over in-memory volumes: series whose first file is in `broken` fail to read.
struct MemoryReader: VolumeReader {
    var volumes: [Volume]
    var broken: [String: String] = [:]       // path → reason
    var scanProblems: [InputProblem] = []

    func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
        var out = volumes.map {
            SeriesInfo(patientID: $0.provenance.patientID, studyUID: $0.provenance.studyUID,
                       seriesUID: $0.provenance.seriesUID, modality: "CT", files: $0.provenance.sourceFiles)
        }
        for (path, _) in broken.sorted(by: { $0.key < $1.key }) {
            out.append(SeriesInfo(patientID: "BROKEN", studyUID: "9", seriesUID: "9.9", modality: "CT", files: [path]))
        }
        return (out, scanProblems)
    }

    func read(_ series: SeriesInfo) throws -> Volume {
        if let path = series.files.first, let reason = broken[path] { throw ImagingError.unreadable(path: path, reason: reason) }
        guard let v = volumes.first(where: { $0.provenance.seriesUID == series.seriesUID }) else {
            throw ImagingError.unreadable(path: series.files.first ?? "?", reason: "unknown series")
        }
        return v
    }
}

/// A small volume whose HU values are a known function of (x, y, z).
func testVolume(patient: String, series: String, width: Int = 8, height: Int = 6, depth: Int = 4) -> Volume {
    var voxels = [Float](repeating: 0, count: width * height * depth)
    for z in 0..<depth { for y in 0..<height { for x in 0..<width {
        voxels[(z * height + y) * width + x] = Float(-1000 + 37 * x + 101 * y + 211 * z)
    } } }
    return Volume(voxels: voxels, width: width, height: height, depth: depth, spacing: SIMD3(0.8, 0.8, 2.5),
                  origin: SIMD3(-100, -100, -50), direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
                  provenance: Provenance(patientID: patient, studyUID: "1.2.\(patient.count)", seriesUID: series,
                                         sourceFiles: (0..<depth).map { "/in/\(patient)/\(series)/\($0).dcm" }))
}

func scratch(_ tag: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-ingest-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct IngestTests {
    let reader = MemoryReader(
        volumes: [testVolume(patient: "P1", series: "1.2.3.1"), testVolume(patient: "P1", series: "1.2.3.2", depth: 2),
                  testVolume(patient: "P/2", series: "1.2.9.1", depth: 3)],
        broken: ["/in/bad/file.dcm": "truncated pixel data"],
        scanProblems: [InputProblem(path: "/in/notes.txt", reason: "not DICOM")])

    func options(_ out: URL, windows: String = "abdomen,lung", channels: ChannelMode = .separate, size: Int? = nil,
                 shard: Shard = .all) throws -> IngestOptions {
        IngestOptions(input: FileManager.default.temporaryDirectory, output: out, windows: try CTWindow.parseList(windows),
                      channels: channels, size: size, shard: shard, readers: [reader], progress: .quiet)
    }

    @Test func writesImagesManifestAndErrors() throws {
        let out = scratch("basic")
        defer { try? FileManager.default.removeItem(at: out) }
        let summary = try Ingest.run(try options(out))
        #expect(summary.seriesFound == 4 && summary.seriesIngested == 3 && summary.seriesFailed == 1)
        #expect(summary.slices == 9 && summary.images == 18)

        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(manifest.header == Ingest.manifestHeader)
        #expect(manifest.rows.count == 18)
        // Sorted by patient folder, series, slice, window; paths relative to <out>.
        #expect(manifest.rows[0] == ["P1", "1.2.2", "1.2.3.1", "0", "-50.0000", "abdomen", "P1/1.2.3.1/0000_abdomen.png"])
        #expect(manifest.rows[12] == ["P/2", "1.2.3", "1.2.9.1", "0", "-50.0000", "abdomen", "P_2/1.2.9.1/0000_abdomen.png"])
        #expect(manifest.rows[1][5] == "lung" && manifest.rows[2][3] == "1" && manifest.rows[2][4] == "-47.5000")

        // Every image exists and holds the windowed HU values.
        let abdomen = try CTWindow.parse("abdomen"), lung = try CTWindow.parse("lung")
        for row in manifest.rows {
            let image = try PNG.read(out.appendingPathComponent(row[6]))
            #expect(image.width == 8 && image.height == 6 && image.channels == 1)
            let z = Int(row[3])!
            let window = row[5] == "abdomen" ? abdomen : lung
            for y in 0..<6 { for x in 0..<8 {
                #expect(image.pixels[y * 8 + x] == window.byte(Float(-1000 + 37 * x + 101 * y + 211 * z)))
            } }
        }
        let errors = try CSVTable.read(out.appendingPathComponent("ingest_errors.csv"))
        #expect(errors.header == ["path", "reason"])
        #expect(Set(errors.rows.map { $0[0] }) == ["/in/notes.txt", "/in/bad/file.dcm"])
        #expect(errors.rows.contains(["/in/bad/file.dcm", "series 9.9: truncated pixel data"]))
        // Nothing half-written: no temporaries, no folder for the broken series.
        let all = FileManager.default.enumerator(atPath: out.path)!.compactMap { $0 as? String }
        #expect(!all.contains { $0.contains(".tmp-") })
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("BROKEN").path))
    }

    @Test func rerunSkipsCompleteSeriesAndRepairsTheManifest() throws {
        let out = scratch("rerun")
        defer { try? FileManager.default.removeItem(at: out) }
        try Ingest.run(try options(out))
        let manifestURL = out.appendingPathComponent("manifest.csv")
        let first = try String(contentsOf: manifestURL, encoding: .utf8)

        let again = try Ingest.run(try options(out))
        #expect(again.seriesSkipped == 3 && again.seriesIngested == 0)
        #expect(try String(contentsOf: manifestURL, encoding: .utf8) == first)

        // A run killed after a series was renamed into place but before its rows were appended,
        // plus a half-written temporary folder of a dead process and a series without its marker.
        try "patient_id,study_uid,series_uid,slice_index,z_mm,window,path\n".write(to: manifestURL, atomically: true, encoding: .utf8)
        let dead = out.appendingPathComponent("P1/.1.2.3.1.tmp-999999-abc")
        try FileManager.default.createDirectory(at: dead, withIntermediateDirectories: true)
        try Data([1, 2]).write(to: dead.appendingPathComponent("0000_abdomen.png"))
        try FileManager.default.removeItem(at: out.appendingPathComponent("P1/1.2.3.2/.complete"))
        let third = try Ingest.run(try options(out))
        #expect(third.seriesSkipped == 2 && third.seriesIngested == 1)
        #expect(try String(contentsOf: manifestURL, encoding: .utf8) == first)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
    }

    @Test func changedSettingsRedoASeries() throws {
        let out = scratch("settings")
        defer { try? FileManager.default.removeItem(at: out) }
        try Ingest.run(try options(out))
        let s = try Ingest.run(try options(out, windows: "bone"))
        #expect(s.seriesIngested == 3 && s.seriesSkipped == 0)
        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(manifest.rows.count == 9 && manifest.rows.allSatisfy { $0[5] == "bone" })
        let names = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("P1/1.2.3.1").path)
        #expect(!names.contains("0000_abdomen.png") && names.contains("0000_bone.png"))
    }

    @Test func stackedAndResized() throws {
        let out = scratch("stacked")
        defer { try? FileManager.default.removeItem(at: out) }
        try Ingest.run(try options(out, windows: "abdomen,lung,bone", channels: .stacked, size: 4))
        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(manifest.rows.count == 9 && manifest.rows[0][5] == "abdomen+lung+bone")
        let image = try PNG.read(out.appendingPathComponent("P1/1.2.3.1/0001_abdomen_lung_bone.png"))
        #expect(image.width == 4 && image.height == 4 && image.channels == 3)
        // Expected: area-resize the HU slice 8×6 → 4×4, then window into R, G, B.
        let v = testVolume(patient: "P1", series: "1.2.3.1")
        let hu = Resampler(inWidth: 8, inHeight: 6, outWidth: 4, outHeight: 4)(Array(v.slice(1)))
        let windows = try CTWindow.parseList("abdomen,lung,bone")
        #expect(image.pixels == (try CTWindow.stack(hu, width: 4, height: 4, windows: windows)).pixels)
    }

    @Test func shardsPartitionPatients() throws {
        let out = scratch("shards")
        defer { try? FileManager.default.removeItem(at: out) }
        let a = try Ingest.run(try options(out, shard: Shard(index: 0, count: 2)))
        let b = try Ingest.run(try options(out, shard: Shard(index: 1, count: 2)))
        #expect(a.seriesIngested + b.seriesIngested == 3)
        #expect(a.seriesOtherShards + b.seriesOtherShards == 4)   // each of the 4 series belongs to one shard
        let manifest = try CSVTable.read(out.appendingPathComponent("manifest.csv"))
        #expect(manifest.rows.count == 18)
        // Each shard its own list (the scan problem once, in shard 0's; the broken series in its shard's).
        let lists = try (0..<2).map { try CSVTable.read(out.appendingPathComponent("ingest_errors.shard-\($0)-of-2.csv")).rows }
        #expect(lists[0].count + lists[1].count == 2)
        #expect(lists[0].contains { $0[0] == "/in/notes.txt" })
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("ingest_errors.csv").path))
    }

    @Test func badOptionsAreClearErrors() throws {
        let out = scratch("badopts")
        defer { try? FileManager.default.removeItem(at: out) }
        #expect(throws: PipelineError.self) { try Ingest.run(try options(out, windows: "abdomen,lung,bone,brain", channels: .stacked)) }
        #expect(throws: PipelineError.self) { try Ingest.run(try options(out, size: 0)) }
        var o = try options(out)
        o.input = URL(fileURLWithPath: "/nonexistent/input")
        do { try Ingest.run(o); Issue.record("expected an error") } catch let e as PipelineError {
            #expect(e.description == "/nonexistent/input: input does not exist")
        }
        #expect(throws: PipelineError.self) { try Shard.parse("2/2") }
        #expect(try Shard.parse("1/3") == Shard(index: 1, count: 3))
    }
}

@Suite struct WindowManifestTests {
    @Test func manifestFileMatchesEmbeddedPresets() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let windows = try WindowPresets.load(root.appendingPathComponent("Manifests/windows.yaml"))
        #expect(windows == CTWindow.presets)
    }

    @Test func unknownKeysAndBadValuesAreNamed() {
        #expect(throws: PipelineError.self) { try WindowPresets.parse("windows:\n  - {name: a, width: 1, level: 2, extra: 3}\n") }
        #expect(throws: PipelineError.self) { try WindowPresets.parse("windwos: []\n") }
        #expect(throws: PipelineError.self) { try WindowPresets.parse("windows:\n  - {name: a, width: 0, level: 2}\n") }
        do {
            _ = try WindowPresets.parse("windows:\n  - {name: a, width: x, level: 2}\n", path: "w.yaml")
            Issue.record("expected an error")
        } catch let e as PipelineError {
            #expect(e.description == "w.yaml: 'windows[0].width': missing or not a number")
        } catch { Issue.record("\(error)") }
    }
}

@Suite struct ProgressTests {
    final class Sink: @unchecked Sendable {
        var text = ""
        let lock = NSLock()
        func add(_ s: String) { lock.lock(); text += s; lock.unlock() }
    }
    final class Clock: @unchecked Sendable { var t = 0.0 }

    @Test func plainLinesWithRateAndETA() {
        let sink = Sink(), clock = Clock()
        let p = Progress(label: "ingest", total: 100, style: .lines, lineInterval: 5,
                         write: { sink.add($0) }, clock: { clock.t })
        clock.t = 1; p.advance(by: 10)           // too early for a line
        #expect(sink.text == "")
        clock.t = 5; p.advance(by: 40)           // 50 in 5 s
        #expect(sink.text == "ingest 50/100 slices  10.0 slices/s  ETA 0:05\n")
        clock.t = 10; p.advance(by: 50); p.finish()
        #expect(sink.text.hasSuffix("ingest 100/100 slices  10.0 slices/s  in 0:10\n"))
    }

    @Test func barRedrawsInPlace() {
        let sink = Sink(), clock = Clock()
        let p = Progress(label: "x", total: 4, unit: "series", style: .bar, write: { sink.add($0) }, clock: { clock.t })
        clock.t = 2; p.advance()
        #expect(sink.text == "\r\u{1B}[2Kx [#####...............] 1/4 series  0.50 series/s  ETA 0:06")
        #expect(Progress.formatDuration(3725) == "1:02:05")
    }
}
