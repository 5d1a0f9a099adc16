import Foundation
import AxialTestSupport
import Testing
@testable import AxialStore

/// Finds a Python with h5py: `$AXIAL_PYTHON`, then `python3` on PATH, then Debian's
/// `/usr/bin/python3` (where Tools/setup's python3-h5py lands even when pyenv/conda shadow it).
enum Python {
    static let withH5py: String? = {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["AXIAL_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates += ["python3", "/usr/bin/python3"]
        for c in candidates where (try? run(c, "import h5py, numpy", args: [])) != nil { return c }
        return nil
    }()

    /// Runs `python -c code args…`; returns stdout, throws with stderr on a non-zero exit.
    @discardableResult
    static func run(_ python: String, _ code: String, args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-c", code] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw PythonError(message: String(decoding: e, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }
    struct PythonError: Error, CustomStringConvertible { var message: String; var description: String { message } }
}

/// h5py (what CLEAR, STAMP and most Python tooling use) must read every dataset and attribute
/// with the right dtype and value. CI installs python3-h5py (Tools/setup).
@Suite struct H5pyInteropTests {
    static let check = #"""
import sys, json, h5py, numpy as np
path, precision = sys.argv[1], sys.argv[2]
with h5py.File(path, "r") as f:
    assert set(f.keys()) == {"feats", "slice_index", "z_mm", "window", "coords"}, list(f.keys())
    c = f["coords"]
    assert c.dtype == np.dtype("<f4") and c.shape == (6, 2) and c.attrs["columns"] == "slice_index,z_mm", (c.dtype, c.shape)
    assert np.array_equal(c[()], np.array([[0, -100], [0, -100], [1, -98.75], [1, -98.75], [2, -97.5], [2, -97.5]], "f4")), c[()]
    feats = f["feats"]
    want = np.dtype("<f2") if precision == "float16" else np.dtype("<f4")
    assert feats.dtype == want, feats.dtype
    assert feats.shape == (6, 5), feats.shape
    exp = (np.arange(30) % 97 / 8 - 4).reshape(6, 5).astype(want)
    assert np.array_equal(feats[()], exp), feats[()]
    assert f["slice_index"].dtype == np.dtype("<i4") and list(f["slice_index"][()]) == [0, 0, 1, 1, 2, 2]
    assert f["z_mm"].dtype == np.dtype("<f4")
    assert np.array_equal(f["z_mm"][()], np.array([-100, -100, -98.75, -98.75, -97.5, -97.5], "f4"))
    assert f["window"].dtype == np.dtype("<i4") and list(f["window"][()]) == [0, 1, 0, 1, 0, 1]
    a = f.attrs
    for k in ["axial_version", "encoder", "encoder_sha256", "windows", "patient_id", "study_uid",
              "series_uid", "preprocessing", "created"]:
        assert isinstance(a[k], str), (k, type(a[k]))
    assert a["encoder"] == "vit-s16-lecl" and a["encoder_sha256"] == "ab" * 32
    assert a["patient_id"] == "PAT-001 \u00fc" and a["study_uid"] == "1.2.3" and a["series_uid"] == "1.2.3.4"
    assert json.loads(a["windows"]) == [{"name": "abdomen", "width": 400, "level": 40},
                                        {"name": "lung", "width": 1500, "level": -600}], a["windows"]
    assert json.loads(a["preprocessing"]) == {"mean": [0.5], "size": 224}
    assert a["created"] == "2024-01-01T00:00:00Z"
    assert a["feat_dim"] == 5 and a["feat_dim"].dtype == np.dtype("int64") and np.ndim(a["feat_dim"]) == 0
    sp = a["spacing_mm"]
    assert sp.dtype == np.dtype("float64") and list(sp) == [0.7, 0.7, 1.25], sp
print("ok")
"""#

    @Test(.enabled(if: Python.withH5py != nil, "python3 with h5py+numpy not found: run Tools/setup (or set AXIAL_PYTHON)"),
          arguments: FeaturePrecision.allCases)
    func h5pyReadsEverything(precision: FeaturePrecision) throws {
        let dir = temporaryFolder("h5py")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        try FeatureStore.write(sampleFeatures(), to: url, precision: precision)
        let out = try Python.run(Python.withH5py!, Self.check, args: [url.path, precision.rawValue])
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
    }

    /// A store written by h5py (float16 feats, attributes as h5py writes them) is read back by Axial.
    @Test(.enabled(if: Python.withH5py != nil, "python3 with h5py+numpy not found: run Tools/setup (or set AXIAL_PYTHON)"))
    func readsH5pyWrittenStore() throws {
        let dir = temporaryFolder("h5py-w")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.h5")
        try Python.run(Python.withH5py!, #"""
import sys, json, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["feats"] = (np.arange(8, dtype="f4").reshape(4, 2) / 4 - 1).astype("f2")
    f["slice_index"] = np.array([3, 3, 4, 4], "i4")
    f["z_mm"] = np.array([1.5, 1.5, 2.5, 2.5], "f4")
    f["window"] = np.array([0, 1, 0, 1], "i4")
    for k, v in dict(axial_version="0.0.1", encoder="e", encoder_sha256="00", patient_id="P",
                     study_uid="S", series_uid="R", preprocessing="{}", created="now").items():
        f.attrs[k] = v
    f.attrs["windows"] = json.dumps([{"name": "a", "width": 1, "level": 2}, {"name": "b", "width": 3, "level": 4}])
    f.attrs["feat_dim"] = np.int64(2)
    f.attrs["spacing_mm"] = np.array([1.0, 2.0, 3.0])
"""#, args: [url.path])
        let (f, precision) = try FeatureStore.read(url)
        #expect(precision == .float16)
        #expect(f.feats == (0..<8).map { Float($0) / 4 - 1 })
        #expect(f.sliceIndex == [3, 3, 4, 4] && f.window == [0, 1, 0, 1] && f.zMM == [1.5, 1.5, 2.5, 2.5])
        #expect(f.metadata.windows == [StoredWindow(name: "a", width: 1, level: 2), StoredWindow(name: "b", width: 3, level: 4)])
        #expect(f.metadata.spacingMM == [1, 2, 3] && f.featDim == 2 && f.metadata.patientID == "P")
    }
}
