import CGDCM
import Foundation

/// One parsed DICOM file (a CGDCM handle). Not shared between threads.
final class DICOMFile {
    let handle: OpaquePointer
    let path: String

    /// Parses `path`; `withPixels` reads the whole file as an image, otherwise only the header.
    /// The file is first walked in Swift (`DICOMValidate`) so GDCM never sees a malformed header;
    /// `validated: true` skips that when the caller has just done it.
    init(path: String, withPixels: Bool, validated: Bool = false) throws {
        DICOMFile.initialiseOnce
        if !validated, let why = DICOMValidate.problem(path) {
            throw ImagingError.unreadable(path: path, reason: why)
        }
        var err = [CChar](repeating: 0, count: 512)
        guard let h = axial_dcm_open(path, withPixels ? 1 : 0, &err, err.count) else {
            throw ImagingError.unreadable(path: path, reason: DICOMFile.text(err))
        }
        handle = h
        self.path = path
    }

    deinit { axial_dcm_free(handle) }

    /// GDCM's dictionaries are global: load them once before any parallel use.
    static let initialiseOnce: Void = { axial_gdcm_init() }()

    static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The element's value as text (trimmed), nil when absent.
    func string(_ group: UInt16, _ element: UInt16) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = axial_dcm_tag(handle, group, element, &buffer, buffer.count)
        if n < 0 { return nil }
        if n >= buffer.count {
            buffer = [CChar](repeating: 0, count: n + 1)
            _ = axial_dcm_tag(handle, group, element, &buffer, buffer.count)
        }
        return DICOMFile.text(buffer)
    }

    /// Backslash-separated numbers; nil when absent or not numeric.
    func doubles(_ group: UInt16, _ element: UInt16) -> [Double]? {
        guard let s = string(group, element), !s.isEmpty else { return nil }
        var out: [Double] = []
        for part in s.split(separator: "\\", omittingEmptySubsequences: false) {
            guard let v = Double(part.trimmingCharacters(in: .whitespaces)) else { return nil }
            out.append(v)
        }
        return out
    }

    func int(_ group: UInt16, _ element: UInt16) -> Int? {
        guard let v = doubles(group, element)?.first, v.isFinite else { return nil }
        return Int(v)
    }

    var headerEnd: Int64 { axial_dcm_header_end(handle) }
    var isEncapsulated: Bool { axial_dcm_is_encapsulated(handle) != 0 }

    func pixelInfo() throws -> AxialDcmPixelInfo {
        var info = AxialDcmPixelInfo()
        var err = [CChar](repeating: 0, count: 512)
        if axial_dcm_pixel_info(handle, &info, &err, err.count) != 0 {
            throw ImagingError.unreadable(path: path, reason: DICOMFile.text(err))
        }
        return info
    }

    func decode(into buffer: UnsafeMutableRawBufferPointer) throws {
        var err = [CChar](repeating: 0, count: 512)
        if axial_dcm_decode(handle, buffer.baseAddress, Int64(buffer.count), &err, err.count) != 0 {
            throw ImagingError.unreadable(path: path, reason: DICOMFile.text(err))
        }
    }

    /// True when the file starts with the gzip magic bytes 1f 8b.
    static func isGzip(_ path: String) -> Bool {
        guard let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        var b = [UInt8](repeating: 0, count: 2)
        return fread(&b, 1, 2, f) == 2 && b[0] == 0x1F && b[1] == 0x8B
    }

    /// MediaStorageSOPClassUID (0002,0002) read from the file meta group without GDCM (explicit
    /// VR little endian after the "DICM" preamble; nil when absent or unparsable). Lets the scan
    /// skip DICOMDIRs before GDCM parses them: GDCM asserts (aborts the process) on some, e.g.
    /// pydicom's dicomdirtests/DICOMDIR-nooffset. Reads at most 4 KiB.
    static func metaSOPClassUID(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var b = [UInt8](repeating: 0, count: 4096)
        let n = fread(&b, 1, b.count, f)
        guard n > 140, b[128] == 0x44, b[129] == 0x49, b[130] == 0x43, b[131] == 0x4D else { return nil }
        let long: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
        var i = 132
        while i + 8 <= n {
            let group = UInt16(b[i]) | UInt16(b[i + 1]) << 8
            let element = UInt16(b[i + 2]) | UInt16(b[i + 3]) << 8
            guard group == 0x0002 else { return nil }
            let vr = String(decoding: b[(i + 4)..<(i + 6)], as: UTF8.self)
            var length: Int, start: Int
            if long.contains(vr) {
                guard i + 12 <= n else { return nil }
                length = Int(UInt32(b[i + 8]) | UInt32(b[i + 9]) << 8 | UInt32(b[i + 10]) << 16 | UInt32(b[i + 11]) << 24)
                start = i + 12
            } else {
                length = Int(UInt16(b[i + 6]) | UInt16(b[i + 7]) << 8)
                start = i + 8
            }
            guard length >= 0, start + length <= n else { return nil }
            if element == 0x0002 {
                return String(decoding: b[start..<(start + length)], as: UTF8.self)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
            }
            i = start + length
        }
        return nil
    }

    /// True when the file starts like DICOM: "DICM" after the 128-byte preamble, or (files
    /// without preamble) a first element in group 0002 or 0008. Reads at most 132 bytes.
    static func looksLikeDICOM(_ path: String) -> Bool {
        guard let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        var b = [UInt8](repeating: 0, count: 132)
        let n = fread(&b, 1, 132, f)
        if n == 132 && b[128] == 0x44 && b[129] == 0x49 && b[130] == 0x43 && b[131] == 0x4D { return true }
        guard n >= 8 else { return false }
        let group = UInt16(b[0]) | UInt16(b[1]) << 8
        let element = UInt16(b[2]) | UInt16(b[3]) << 8
        guard group == 0x0002 || group == 0x0008, element <= 0x0020 else { return false }
        let vrLetters = (65...90).contains(b[4]) && (65...90).contains(b[5])
        let implicitLength = UInt32(b[4]) | UInt32(b[5]) << 8 | UInt32(b[6]) << 16 | UInt32(b[7]) << 24
        return vrLetters || implicitLength < 1024
    }
}

/// The header fields a CT reader needs from one file.
struct DICOMSliceHeader: Sendable {
    var path: String
    var patientID = ""
    var studyUID = ""
    var seriesUID = ""
    var sopClassUID = ""
    var modality = ""
    var seriesDescription = ""
    var imageType: [String] = []
    var position: SIMD3<Double>?
    var orientation: [Double]?
    /// (between columns = x, between rows = y), from PixelSpacing = row spacing \ column spacing.
    var pixelSpacing: SIMD2<Double>?
    var sliceThickness: Double?
    var spacingBetweenSlices: Double?
    var rows = 0
    var columns = 0
    var frames = 1
    var samplesPerPixel = 1
    var bitsAllocated = 16
    var photometric = "MONOCHROME2"
    var slope = 1.0
    var intercept = 0.0

    init(path: String) { self.path = path }

    init(_ f: DICOMFile) {
        path = f.path
        patientID = f.string(0x0010, 0x0020) ?? ""
        studyUID = f.string(0x0020, 0x000D) ?? ""
        seriesUID = f.string(0x0020, 0x000E) ?? ""
        sopClassUID = f.string(0x0008, 0x0016) ?? f.string(0x0002, 0x0002) ?? ""
        modality = f.string(0x0008, 0x0060) ?? ""
        seriesDescription = f.string(0x0008, 0x103E) ?? ""
        imageType = (f.string(0x0008, 0x0008) ?? "").split(separator: "\\").map {
            $0.trimmingCharacters(in: .whitespaces).uppercased()
        }
        if let p = f.doubles(0x0020, 0x0032), p.count == 3 { position = SIMD3(p[0], p[1], p[2]) }
        if let o = f.doubles(0x0020, 0x0037), o.count == 6 { orientation = o }
        if let s = f.doubles(0x0028, 0x0030), s.count == 2 { pixelSpacing = SIMD2(s[1], s[0]) }
        sliceThickness = f.doubles(0x0018, 0x0050)?.first
        spacingBetweenSlices = f.doubles(0x0018, 0x0088)?.first
        rows = f.int(0x0028, 0x0010) ?? 0
        columns = f.int(0x0028, 0x0011) ?? 0
        frames = max(1, f.int(0x0028, 0x0008) ?? 1)
        samplesPerPixel = f.int(0x0028, 0x0002) ?? 1
        bitsAllocated = f.int(0x0028, 0x0100) ?? 16
        photometric = (f.string(0x0028, 0x0004) ?? "MONOCHROME2").uppercased()
        if let s = f.doubles(0x0028, 0x1053)?.first, s != 0 { slope = s }
        if let i = f.doubles(0x0028, 0x1052)?.first { intercept = i }
    }

    var isLocalizer: Bool { imageType.contains("LOCALIZER") }
    var isColour: Bool { samplesPerPixel > 1 || !photometric.hasPrefix("MONOCHROME") && photometric != "" }

    /// Unit slice normal (row direction × column direction).
    var normal: SIMD3<Double>? {
        guard let o = orientation else { return nil }
        let r = SIMD3(o[0], o[1], o[2]), c = SIMD3(o[3], o[4], o[5])
        let n = SIMD3(r.y * c.z - r.z * c.y, r.z * c.x - r.x * c.z, r.x * c.y - r.y * c.x)
        let len = (n * n).sum().squareRoot()
        return len > 0 ? n / len : nil
    }
}
