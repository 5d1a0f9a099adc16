import AxialCore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging
import AxialTensor

@Suite struct SyntheticCTTests {
    let spec = SyntheticCT(patientID: "SYN1", rows: 24, columns: 20, slices: 7, pixelSpacing: 2.5, sliceSpacing: 3,
                           firstZ: -9, lesions: [.init(center: SIMD3(5, 0, 0), radius: 6, hu: 180)], noise: 5, seed: 3)

    func tempFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("axial-synth-\(UUID().uuidString)")
    }

    @Test func dicomReaderReadsItBackExactly() throws {
        let dir = tempFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try spec.write(to: dir)
        let found = try DICOMReader().scan(dir)
        #expect(found.problems.isEmpty && found.series.count == 1)
        let v = try DICOMReader().read(found.series[0])
        #expect(v.voxels == spec.huVolume())
        #expect(v.width == 20 && v.height == 24 && v.depth == 7)
        #expect(v.spacing == SIMD3(2.5, 2.5, 3))
        #expect(v.origin == spec.position(slice: 0))
        #expect(v.provenance.patientID == "SYN1" && v.provenance.modality == "CT" && v.warnings.isEmpty)
        #expect(v.voxels.contains(180))
    }

    @Test func uidsAreValidAndDistinct() {
        var g = SplitMix64(seed: 1)
        let uids = (0..<50).map { _ in SyntheticCT.uid(&g) }
        #expect(Set(uids).count == 50)
        for u in uids { #expect(u.count <= 64 && u.hasPrefix("2.25.") && !u.dropFirst(5).hasPrefix("0")) }
    }

    /// A Python with pydicom + numpy: `$AXIAL_PYTHON`, the dev venv, then `python3` on PATH and Debian's
    /// `/usr/bin/python3` (Tools/setup installs python3-pydicom there, so a clean CI machine runs this test).
    static let python: String? = {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["AXIAL_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates += ["/tmp/venv/bin/python", "python3", "/usr/bin/python3"]
        for c in candidates {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [c, "-c", "import pydicom, numpy"]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return c }
        }
        return nil
    }()

    /// pydicom (an independent parser) reads a written file: tags and pixel values.
    @Test(.enabled(if: python != nil, "no python with pydicom + numpy: run Tools/setup (or set AXIAL_PYTHON)"))
    func pydicomReadsIt() throws {
        let dir = tempFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try spec.write(to: dir)
        let script = """
        import sys, pydicom, numpy as np
        d = pydicom.dcmread(sys.argv[1])
        hu = d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept)
        print(d.file_meta.TransferSyntaxUID, d.Modality, d.PatientID, d.Rows, d.Columns, list(map(float, d.ImagePositionPatient)), float(hu.sum()))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [try #require(Self.python), "-c", script, files[2].path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run(); p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let plane = 24 * 20
        let sum = spec.huVolume()[(2 * plane)..<(3 * plane)].reduce(0.0) { $0 + Double($1) }
        let pos = spec.position(slice: 2)
        #expect(p.terminationStatus == 0)
        #expect(out.hasPrefix("1.2.840.10008.1.2.1 CT SYN1 24 20 [\(pos.x), \(pos.y), \(pos.z)] \(sum)"), "pydicom said: \(out)")
    }
}
