import Foundation
import AxialTestSupport
import Testing
@testable import AxialStore

/// A small store with values that are exact in float16 (multiples of 1/8 under 64), so both
/// precisions round-trip exactly.
func sampleFeatures(n: Int = 6, d: Int = 5) -> PatientFeatures {
    let meta = FeatureStoreMetadata(
        encoder: "vit-s16-lecl", encoderSHA256: String(repeating: "ab", count: 32),
        windows: [StoredWindow(name: "abdomen", width: 400, level: 40), StoredWindow(name: "lung", width: 1500, level: -600)],
        patientID: "PAT-001 ü", studyUID: "1.2.3", seriesUID: "1.2.3.4",
        spacingMM: [0.7, 0.7, 1.25], preprocessingJSON: #"{"mean":[0.5],"size":224}"#, created: "2024-01-01T00:00:00Z")
    let feats = (0..<(n * d)).map { Float($0 % 97) / 8 - 4 }
    return PatientFeatures(metadata: meta, featDim: d, feats: feats,
                           sliceIndex: (0..<n).map { Int32($0 / 2) },
                           zMM: (0..<n).map { Float($0 / 2) * 1.25 - 100 },
                           window: (0..<n).map { Int32($0 % 2) })
}

@Suite struct FeatureStoreTests {
    @Test(arguments: FeaturePrecision.allCases)
    func roundTrip(precision: FeaturePrecision) throws {
        let dir = temporaryFolder("rt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(FeatureStore.fileName(patientID: "PAT-001 ü"))
        #expect(url.lastPathComponent == "PAT-001__.h5")
        let f = sampleFeatures()
        try FeatureStore.write(f, to: url, precision: precision)
        #expect(FeatureStore.isComplete(url))
        let (back, p) = try FeatureStore.read(url)
        #expect(p == precision)
        #expect(back == f)
        // No temporary left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == [url.lastPathComponent])
    }

    @Test func float16RoundsToNearest() throws {
        let dir = temporaryFolder("f16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        var f = sampleFeatures(n: 2, d: 3)
        f.feats = [0.1, -3.14159, 65504, 1e-5, 70000, 1.0 / 3]
        try FeatureStore.write(f, to: url, precision: .float16)
        let (back, _) = try FeatureStore.read(url)
        #expect(back.feats == f.feats.map { Float(Float16($0)) })
        #expect(back.feats[4] == .infinity)  // overflow beyond float16's max, as numpy
    }

    @Test func emptyStore() throws {
        let dir = temporaryFolder("empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        let f = PatientFeatures(metadata: sampleFeatures().metadata, featDim: 4, feats: [], sliceIndex: [], zMM: [], window: [])
        try FeatureStore.write(f, to: url)
        #expect(try FeatureStore.read(url).features == f)
    }

    @Test func rejectsInconsistentShapes() throws {
        let dir = temporaryFolder("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        var f = sampleFeatures()
        f.zMM.removeLast()
        #expect(throws: StoreError.invalid(path: url.path, object: "z_mm", reason: "5 values for N=6")) {
            try FeatureStore.write(f, to: url)
        }
        f = sampleFeatures(); f.window[0] = 2
        #expect(throws: StoreError.self) { try FeatureStore.write(f, to: url) }
        f = sampleFeatures(); f.metadata.preprocessingJSON = "{nope"
        #expect(throws: StoreError.invalid(path: url.path, object: "preprocessing", reason: "not valid JSON")) {
            try FeatureStore.write(f, to: url)
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func incompleteAndForeignFilesAreReported() throws {
        let dir = temporaryFolder("incomplete")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Not HDF5 at all.
        let junk = dir.appendingPathComponent("junk.h5")
        try Data("not hdf5".utf8).write(to: junk)
        #expect(!FeatureStore.isComplete(junk))
        do {
            _ = try FeatureStore.read(junk)
            Issue.record("expected an error")
        } catch let e as StoreError {
            guard case .hdf5(let path, let object, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(path == junk.path && object == "file")
        }
        // Missing file.
        #expect(!FeatureStore.isComplete(dir.appendingPathComponent("absent.h5")))
        // A truncated store (half a file, as a killed writer without rename would leave).
        let good = dir.appendingPathComponent("good.h5")
        try FeatureStore.write(sampleFeatures(), to: good)
        let bytes = try Data(contentsOf: good)
        let half = dir.appendingPathComponent("half.h5")
        try bytes.prefix(bytes.count / 2).write(to: half)
        #expect(!FeatureStore.isComplete(half))
        #expect(throws: StoreError.self) { try FeatureStore.read(half) }
    }

    @Test func missingDatasetIsNamed() throws {
        // Written by h5py without `window` (when h5py is there) — otherwise via the Swift writer's
        // internals is not possible, so this check needs python.
        guard let python = Python.withH5py else { return }
        let dir = temporaryFolder("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        try FeatureStore.write(sampleFeatures(), to: url)
        _ = try Python.run(python, "import h5py,sys\nwith h5py.File(sys.argv[1], 'a') as f: del f['window']", args: [url.path])
        #expect(!FeatureStore.isComplete(url))
        #expect(throws: StoreError.missing(path: url.path, object: "window")) { try FeatureStore.read(url) }
    }
}
