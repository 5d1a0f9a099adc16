import AxialCore
import AxialTensor
import Foundation

/// A synthetic CT phantom written as an uncompressed DICOM series (Explicit VR Little Endian,
/// int16, RescaleSlope 1 / Intercept −1024), with optional bright spherical "lesions" — for
/// `axial demo` and tests, no Python needed.
///
/// Phantom (HU): air −1000 outside an elliptic body of soft tissue (40), two elliptic lungs
/// (−850) whose size varies along z, a bone rim (700), lesions (their `hu`, inside their sphere),
/// plus optional Gaussian noise (deterministic from `seed`). Geometry: standard axial (row
/// direction +x, column direction +y), slices along +z from `firstZ`, centred in x and y.
public struct SyntheticCT: Sendable {
    public struct Lesion: Sendable, Codable, Equatable {
        /// Centre in patient coordinates (mm, LPS).
        public var center: SIMD3<Double>
        public var radius: Double
        public var hu: Double
        public init(center: SIMD3<Double>, radius: Double, hu: Double = 160) {
            self.center = center; self.radius = radius; self.hu = hu
        }
    }

    public var patientID: String
    public var rows: Int
    public var columns: Int
    public var slices: Int
    public var pixelSpacing: Double
    public var sliceSpacing: Double
    public var firstZ: Double
    public var lesions: [Lesion]
    public var noise: Double
    public var seed: UInt64
    public var studyUID: String
    public var seriesUID: String

    public init(patientID: String, rows: Int = 64, columns: Int = 64, slices: Int = 24, pixelSpacing: Double = 5.0,
                sliceSpacing: Double = 5.0, firstZ: Double = -60, lesions: [Lesion] = [], noise: Double = 0,
                seed: UInt64 = 1) {
        self.patientID = patientID; self.rows = rows; self.columns = columns; self.slices = slices
        self.pixelSpacing = pixelSpacing; self.sliceSpacing = sliceSpacing; self.firstZ = firstZ
        self.lesions = lesions; self.noise = noise; self.seed = seed
        var g = SplitMix64(seed: seed ^ 0x5EED)
        studyUID = SyntheticCT.uid(&g)
        seriesUID = SyntheticCT.uid(&g)
    }

    /// ImagePositionPatient of slice k (the first voxel's centre).
    public func position(slice k: Int) -> SIMD3<Double> {
        SIMD3(-Double(columns - 1) * pixelSpacing / 2, -Double(rows - 1) * pixelSpacing / 2, firstZ + Double(k) * sliceSpacing)
    }

    /// The phantom's HU values (integers), `slices * rows * columns`, x fastest — exactly what a
    /// reader must return for the written series.
    public func huVolume() -> [Float] {
        var out = [Float](repeating: 0, count: slices * rows * columns)
        var rng = SplitMix64(seed: seed)
        for k in 0..<slices {
            let z = firstZ + Double(k) * sliceSpacing
            let lungWidth = 0.25 + 0.1 * sin(Double(k) / 8)
            for j in 0..<rows {
                for i in 0..<columns {
                    let p = position(slice: k) + SIMD3(Double(i) * pixelSpacing, Double(j) * pixelSpacing, 0)
                    let x = p.x / (Double(columns) * pixelSpacing / 2), y = p.y / (Double(rows) * pixelSpacing / 2)
                    let body = (x / 0.85) * (x / 0.85) + (y / 0.65) * (y / 0.65)
                    var hu = -1000.0
                    if body < 1 {
                        hu = 40
                        let lx = (abs(x) - 0.4) / lungWidth, ly = y / 0.4
                        if lx * lx + ly * ly < 1 { hu = -850 }
                        if (x / 0.80) * (x / 0.80) + (y / 0.60) * (y / 0.60) > 0.92 { hu = 700 }
                        for l in lesions {
                            let d = SIMD3(p.x, p.y, z) - l.center
                            if (d * d).sum() <= l.radius * l.radius { hu = l.hu }
                        }
                        if noise > 0 { hu += noise * rng.nextGaussian() }
                    }
                    out[(k * rows + j) * columns + i] = Float(min(max(hu.rounded(), -1024), 31743))
                }
            }
        }
        return out
    }

    /// Writes one file per slice (`IM0001.dcm`, … in slice order) into `folder` (created), each
    /// through a temporary name and a rename. Returns the paths.
    @discardableResult
    public func write(to folder: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let hu = huVolume()
        var g = SplitMix64(seed: seed ^ 0xF00D)
        let frameUID = SyntheticCT.uid(&g)
        var urls: [URL] = []
        let plane = rows * columns
        for k in 0..<slices {
            let sopUID = SyntheticCT.uid(&g)
            var pixels = [Int16](repeating: 0, count: plane)
            for i in 0..<plane { pixels[i] = Int16(hu[k * plane + i] + 1024) }
            let bytes = slice(k: k, sopUID: sopUID, frameUID: frameUID, pixels: pixels)
            let url = folder.appendingPathComponent(String(format: "IM%04d.dcm", k + 1))
            do { try AtomicFile.write(Data(bytes), to: url) } catch {
                throw ImagingError.unreadable(path: url.path, reason: "cannot write synthetic slice: \(error)")
            }
            urls.append(url)
        }
        return urls
    }

    static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    static let explicitVRLittleEndian = "1.2.840.10008.1.2.1"

    /// A Part-10 file: preamble, "DICM", file meta group (0002), then the data set, all Explicit
    /// VR Little Endian, elements in ascending tag order.
    func slice(k: Int, sopUID: String, frameUID: String, pixels: [Int16]) -> [UInt8] {
        var meta = DICOMWriter()
        meta.element(0x0002, 0x0001, "OB", [0, 1])
        meta.string(0x0002, 0x0002, "UI", SyntheticCT.ctImageStorage)
        meta.string(0x0002, 0x0003, "UI", sopUID)
        meta.string(0x0002, 0x0010, "UI", SyntheticCT.explicitVRLittleEndian)
        meta.string(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.10.1442.1")   // implementation class
        meta.string(0x0002, 0x0013, "SH", "AXIAL_SYNTH")
        var out = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8)
        var group = DICOMWriter()
        group.element(0x0002, 0x0000, "UL", le32(UInt32(meta.bytes.count)))
        out += group.bytes + meta.bytes

        let p = position(slice: k)
        func ds(_ v: Double) -> String {                       // DS: at most 16 characters
            var s = String(format: "%.6f", v)
            while s.contains(".") && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
            return s == "-0" ? "0" : s
        }
        var d = DICOMWriter()
        d.string(0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL")
        d.string(0x0008, 0x0016, "UI", SyntheticCT.ctImageStorage)
        d.string(0x0008, 0x0018, "UI", sopUID)
        d.string(0x0008, 0x0020, "DA", "20240101")
        d.string(0x0008, 0x0060, "CS", "CT")
        d.string(0x0008, 0x0070, "LO", "Axial synthetic")
        d.string(0x0008, 0x103E, "LO", "synthetic phantom")
        d.string(0x0010, 0x0010, "PN", "Synthetic^\(patientID)")
        d.string(0x0010, 0x0020, "LO", patientID)
        d.string(0x0018, 0x0050, "DS", ds(sliceSpacing))
        d.string(0x0020, 0x000D, "UI", studyUID)
        d.string(0x0020, 0x000E, "UI", seriesUID)
        d.string(0x0020, 0x0011, "IS", "1")
        d.string(0x0020, 0x0013, "IS", "\(k + 1)")
        d.string(0x0020, 0x0032, "DS", "\(ds(p.x))\\\(ds(p.y))\\\(ds(p.z))")
        d.string(0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0")
        d.string(0x0020, 0x0052, "UI", frameUID)
        d.string(0x0020, 0x1041, "DS", ds(p.z))
        d.element(0x0028, 0x0002, "US", le16(1))
        d.string(0x0028, 0x0004, "CS", "MONOCHROME2")
        d.element(0x0028, 0x0010, "US", le16(UInt16(rows)))
        d.element(0x0028, 0x0011, "US", le16(UInt16(columns)))
        d.string(0x0028, 0x0030, "DS", "\(ds(pixelSpacing))\\\(ds(pixelSpacing))")
        d.element(0x0028, 0x0100, "US", le16(16))
        d.element(0x0028, 0x0101, "US", le16(16))
        d.element(0x0028, 0x0102, "US", le16(15))
        d.element(0x0028, 0x0103, "US", le16(1))
        d.string(0x0028, 0x1050, "DS", "40")
        d.string(0x0028, 0x1051, "DS", "400")
        d.string(0x0028, 0x1052, "DS", "-1024")
        d.string(0x0028, 0x1053, "DS", "1")
        d.string(0x0028, 0x1054, "LO", "HU")
        var pixelBytes = [UInt8](repeating: 0, count: pixels.count * 2)
        for (i, v) in pixels.enumerated() {
            let u = UInt16(bitPattern: v)
            pixelBytes[2 * i] = UInt8(u & 0xFF); pixelBytes[2 * i + 1] = UInt8(u >> 8)
        }
        d.element(0x7FE0, 0x0010, "OW", pixelBytes)
        return out + d.bytes
    }

    /// A "2.25." UID from 128 random bits (ITU-T X.667), deterministic in the generator.
    static func uid(_ g: inout SplitMix64) -> String {
        var words = [UInt32](repeating: 0, count: 4)
        for i in 0..<4 { words[i] = UInt32(truncatingIfNeeded: g.next()) }
        words[0] |= 0x1000_0000                            // no leading zero digits, ~38 digits
        var digits: [Character] = []
        while words.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in 0..<4 {
                let cur = (remainder << 32) | UInt64(words[i])
                words[i] = UInt32(cur / 10)
                remainder = cur % 10
            }
            digits.append(Character(String(remainder)))
        }
        return "2.25." + String(digits.reversed())
    }
}

/// Explicit VR Little Endian element writer.
struct DICOMWriter {
    var bytes: [UInt8] = []

    mutating func element(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: [UInt8]) {
        var v = value
        if v.count % 2 == 1 { v.append(vr == "UI" || vr == "OB" ? 0 : 0x20) }
        bytes += le16(group) + le16(element) + Array(vr.utf8)
        if ["OB", "OW", "OF", "SQ", "UT", "UN"].contains(vr) {
            bytes += [0, 0] + le32(UInt32(v.count))
        } else {
            bytes += le16(UInt16(v.count))
        }
        bytes += v
    }

    mutating func string(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: String) {
        self.element(group, element, vr, Array(value.utf8))
    }
}

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }

