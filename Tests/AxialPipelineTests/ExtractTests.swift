import AxialImaging
import AxialModels
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// A synthetic ingest folder: patients × slices × windows gray PNGs + manifest.csv.
func syntheticIngest(_ root: URL, patients: [String], slices: Int = 3, windows: [String] = ["abdomen", "lung"],
                     missing: Set<String> = []) throws {
    var groups: [[[String]]] = []
    for (pi, p) in patients.enumerated() {
        for s in 0..<slices {
            var rows: [[String]] = []
            defer { groups.append(rows) }
            for (wi, w) in windows.enumerated() {
                let rel = "\(p)/1.2.3/\(String(format: "%04d", s))_\(w).png"
                let url = root.appendingPathComponent(rel)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                let (w0, h0) = (20, 16)
                var px = [UInt8](repeating: 0, count: w0 * h0)
                for y in 0..<h0 { for x in 0..<w0 { px[y * w0 + x] = UInt8((x * 11 + y * 7 + s * 29 + wi * 53 + pi * 71) % 256) } }
                if !missing.contains(p) { try PNG.write(Image8(width: w0, height: h0, channels: 1, pixels: px), to: url) }
                rows.append([p, "1.2", "1.2.3", String(s), String(Double(s) * 2.5 - 10), w, rel])
            }
        }
    }
    // manifest rows deliberately not in slice order (windows in order within a slice)
    try CSVTable(header: Ingest.manifestHeader, rows: groups.reversed().flatMap { $0 }).write(to: root.appendingPathComponent("manifest.csv"))
}

/// `python3 -c code args…` → stdout (nil when there is no python3 with h5py).
func runPython(_ code: String, _ args: [String]) throws -> String? {
    for py in [ProcessInfo.processInfo.environment["AXIAL_PYTHON"], "python3", "/usr/bin/python3"].compactMap({ $0 }) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [py, "-c", "import h5py, numpy"]
        p.standardOutput = Pipe(); p.standardError = Pipe()
        guard (try? p.run()) != nil else { continue }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { continue }
        let q = Process()
        q.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        q.arguments = [py, "-c", code] + args
        let out = Pipe(), err = Pipe()
        q.standardOutput = out; q.standardError = err
        try q.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        q.waitUntilExit()
        if q.terminationStatus != 0 { Issue.record("python: \(String(decoding: e, as: UTF8.self))") }
        return String(decoding: o, as: UTF8.self)
    }
    return nil
}

@Suite struct ExtractTests {
    @Test func extractsPerPatientFilesThatMatchTheEncoder() throws {
        let root = scratch("extract-in"), out = scratch("extract-out")
        try syntheticIngest(root, patients: ["P1", "P2", "P3"], missing: ["P3"])
        let o = ExtractOptions(input: root, output: out, encoder: "vit_test", seed: 7, batchSize: 4, progress: .quiet)
        let s = try Extract.run(o)
        #expect(s.patients == 3 && s.written == 2 && s.failed == 1 && s.slices == 12)
        let errors = try CSVTable.read(out.appendingPathComponent("extract_errors.csv"))
        #expect(errors.rows.count == 1 && errors.rows[0][0] == "P3")

        // Rows: slice order, then window order; each row = the encoder on that slice alone.
        let spec = try EncoderRegistry.spec("vit_test")
        let model = spec.makeModel(seed: 7)
        let pre = Extract.preprocess(for: spec)
        let (f, precision) = try FeatureStore.read(out.appendingPathComponent("P2.h5"))
        #expect(precision == .float32 && f.featDim == 32 && f.count == 6)
        #expect(f.sliceIndex == [0, 0, 1, 1, 2, 2] && f.window == [0, 1, 0, 1, 0, 1])
        #expect(f.zMM == [-10, -10, -7.5, -7.5, -5, -5])
        #expect(f.metadata.encoder == "vit_test" && f.metadata.encoderSHA256 == "random-init-seed-7")
        #expect(f.metadata.windows.map(\.name) == ["abdomen", "lung"] && f.metadata.windows[0].width == 400)
        #expect(f.metadata.spacingMM[2] == 2.5)
        for i in 0..<f.count {
            let path = root.appendingPathComponent("P2/1.2.3/\(String(format: "%04d", f.sliceIndex[i]))_\(["abdomen", "lung"][Int(f.window[i])]).png")
            let x = pre.batch([PlanarImage8(try PNG.read(path))])
            let y = withNoGrad { model.encode(x) }.scalars
            let row = Array(f.row(i))
            let err = maxAbsDifference(Array(row), Array(y))
            #expect(err < 1e-5, "row \(i): \(err)")
        }

        // Rerun skips complete files; the failed patient fails again.
        let s2 = try Extract.run(o)
        #expect(s2.written == 0 && s2.skipped == 2 && s2.failed == 1)

        // h5py reads what we wrote.
        let check = """
        import sys, json, h5py, numpy as np
        with h5py.File(sys.argv[1], "r") as f:
            assert f["feats"].shape == (6, 32) and f["feats"].dtype == np.dtype("<f4")
            assert list(f["slice_index"][()]) == [0, 0, 1, 1, 2, 2]
            assert f.attrs["encoder"] == "vit_test" and int(f.attrs["feat_dim"]) == 32
            assert json.loads(f.attrs["preprocessing"])["crop"] == 32
            print("ok")
        """
        if let r = try runPython(check, [out.appendingPathComponent("P2.h5").path]) { #expect(r.contains("ok")) }
    }

    @Test func shardsFloat16AndWindowFilter() throws {
        let root = scratch("extract-in2"), out = scratch("extract-out2")
        try syntheticIngest(root, patients: ["A", "B", "C", "D"], slices: 2)
        var o = ExtractOptions(input: root, output: out, encoder: "vit_test", seed: 1, batchSize: 3, precision: .float16,
                               shard: Shard(index: 0, count: 2), windows: ["lung"], progress: .quiet)
        let s = try Extract.run(o)
        #expect(s.written + s.otherShards == 4 && s.written > 0 && s.otherShards > 0)
        o.shard = Shard(index: 1, count: 2)
        let s1 = try Extract.run(o)
        #expect(s.written + s1.written == 4)
        let (f, precision) = try FeatureStore.read(out.appendingPathComponent("A.h5"))
        #expect(precision == .float16 && f.count == 2 && f.window == [0, 0] && f.metadata.windows.map(\.name) == ["lung"])
        o.windows = ["brain"]
        #expect(throws: PipelineError.self) { try Extract.run(o) }
    }

    @Test func sha256MatchesKnownVectors() throws {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var s = SHA256()
        for _ in 0..<1000 { s.update([UInt8](repeating: 0x61, count: 1000)) }
        #expect(s.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
