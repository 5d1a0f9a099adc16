import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// Hostile DICOM headers (issue 17) made by byte surgery on a valid SyntheticCT slice: each is
/// refused by the Swift header walk with a message naming the tag, before GDCM sees it, and a scan
/// of a folder holding all of them reports each as a problem without crashing.
@Suite struct DICOMValidateTests {
    struct Element { var group: UInt16; var element: UInt16; var vr: String; var value: [UInt8] }

    /// A valid 16×16 synthetic CT slice.
    static func validSlice() throws -> [UInt8] {
        let folder = temporaryFolder("dcmvalid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let urls = try SyntheticCT(patientID: "p1", rows: 16, columns: 16, slices: 1).write(to: folder)
        return [UInt8](try Data(contentsOf: urls[0]))
    }

    /// Splits an explicit-VR-little-endian file (no sequences) into preamble and elements.
    static func parse(_ b: [UInt8]) -> [Element] {
        var out: [Element] = []
        var i = 132
        let long: Set<String> = ["OB", "OW", "SQ", "UN", "UT", "OF"]
        while i + 8 <= b.count {
            let g = UInt16(b[i]) | UInt16(b[i + 1]) << 8, e = UInt16(b[i + 2]) | UInt16(b[i + 3]) << 8
            let vr = String(decoding: b[(i + 4)..<(i + 6)], as: UTF8.self)
            var n: Int, start: Int
            if long.contains(vr) {
                n = Int(UInt32(b[i + 8]) | UInt32(b[i + 9]) << 8 | UInt32(b[i + 10]) << 16 | UInt32(b[i + 11]) << 24); start = i + 12
            } else {
                n = Int(UInt16(b[i + 6]) | UInt16(b[i + 7]) << 8); start = i + 8
            }
            out.append(Element(group: g, element: e, vr: vr, value: Array(b[start..<(start + n)])))
            i = start + n
        }
        return out
    }

    static func serialise(_ preamble: [UInt8], _ elements: [Element]) -> [UInt8] {
        var out = Array(preamble.prefix(132))
        for el in elements {
            var v = el.value
            if v.count % 2 == 1 { v.append(el.vr == "UI" || el.vr == "OB" ? 0 : 0x20) }
            out += [UInt8(el.group & 0xFF), UInt8(el.group >> 8), UInt8(el.element & 0xFF), UInt8(el.element >> 8)]
            out += Array(el.vr.utf8)
            if ["OB", "OW", "SQ", "UN", "UT", "OF"].contains(el.vr) {
                out += [0, 0] + withUnsafeBytes(of: UInt32(v.count).littleEndian, Array.init)
            } else {
                out += withUnsafeBytes(of: UInt16(v.count).littleEndian, Array.init)
            }
            out += v
        }
        return out
    }

    static func edit(_ b: [UInt8], _ change: (inout [Element]) -> Void) -> [UInt8] {
        var els = parse(b)
        change(&els)
        return serialise(b, els)
    }

    static func set(_ g: UInt16, _ e: UInt16, us v: UInt16) -> (inout [Element]) -> Void {
        { els in if let i = els.firstIndex(where: { $0.group == g && $0.element == e }) { els[i].value = [UInt8(v & 0xFF), UInt8(v >> 8)] } }
    }
    static func set(_ g: UInt16, _ e: UInt16, text: String) -> (inout [Element]) -> Void {
        { els in if let i = els.firstIndex(where: { $0.group == g && $0.element == e }) { els[i].value = Array(text.utf8) } }
    }

    /// (name, bytes, expected message substring).
    static func cases() throws -> [(String, [UInt8], String)] {
        let b = try validSlice()
        let pixelStart = b.count - 16 * 16 * 2
        var out: [(String, [UInt8], String)] = []
        // Truncated inside the header (the interrupted transfer of the issue), every 29 bytes.
        for cut in stride(from: 132, to: pixelStart - 12, by: 29) {
            out.append(("cut_\(cut)", Array(b.prefix(cut)), "truncated|no PixelData"))
        }
        out.append(("cut_in_pixels", Array(b.prefix(pixelStart + 100)), "truncated DICOM: PixelData (7FE0,0010)"))
        out.append(("bits_allocated_12", edit(b, set(0x0028, 0x0100, us: 12)), "BitsAllocated (0028,0100) = 12"))
        out.append(("bits_allocated_1", edit(b, set(0x0028, 0x0100, us: 1)), "BitsAllocated (0028,0100) = 1"))
        out.append(("bits_allocated_8_over_16bit", edit(b) { els in
            set(0x0028, 0x0100, us: 8)(&els); set(0x0028, 0x0101, us: 8)(&els); set(0x0028, 0x0102, us: 7)(&els)
        }, "BitsAllocated disagrees with the data"))
        out.append(("bits_stored_20", edit(b, set(0x0028, 0x0101, us: 20)), "BitsStored (0028,0101) = 20"))
        out.append(("high_bit_3", edit(b, set(0x0028, 0x0102, us: 3)), "HighBit (0028,0102) = 3"))
        out.append(("pixel_representation_2", edit(b, set(0x0028, 0x0103, us: 2)), "PixelRepresentation (0028,0103) = 2"))
        out.append(("no_pixel_data", edit(b) { $0.removeAll { $0.group == 0x7FE0 } }, "no PixelData (7FE0,0010)"))
        out.append(("short_pixel_data", edit(b) { els in els[els.count - 1].value.removeLast(64) }, "PixelData (7FE0,0010) holds 448 bytes"))
        out.append(("rows_zero", edit(b, set(0x0028, 0x0010, us: 0)), "Rows (0028,0010) = 0"))
        for (name, v) in [("nan", "NaN"), ("inf", "inf"), ("text", "abc")] {
            out.append(("slope_\(name)", edit(b, set(0x0028, 0x1053, text: v)), "RescaleSlope (0028,1053) = '"))
        }
        out.append(("slope_1e308", edit(b, set(0x0028, 0x1053, text: "1e308")), "implausible"))
        out.append(("slope_zero", edit(b, set(0x0028, 0x1053, text: "0")), "RescaleSlope (0028,1053) = 0"))
        out.append(("intercept_nan", edit(b, set(0x0028, 0x1052, text: "NaN")), "RescaleIntercept (0028,1052)"))
        for (name, v) in [("zero", "0\\0"), ("negative", "-0.5\\0.5"), ("nan", "NaN\\1"), ("one_value", "0.7")] {
            out.append(("spacing_\(name)", edit(b, set(0x0028, 0x0030, text: v)), "PixelSpacing (0028,0030)"))
        }
        for (name, v) in [("negative", "-2"), ("nan", "NaN"), ("inf", "Infinity")] {
            out.append(("thickness_\(name)", edit(b, set(0x0018, 0x0050, text: v)), "SliceThickness (0018,0050)"))
        }
        out.append(("frames_zero", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x0010 }!
            els.insert(Element(group: 0x0028, element: 0x0008, vr: "IS", value: Array("0".utf8)), at: i)
        }, "NumberOfFrames (0028,0008)"))
        // A LO element (PatientID) claiming 0xFFF0 bytes: its value runs past the end of the file.
        var pastEnd = b
        var offset = 132
        for el in parse(b) {
            if el.group == 0x0010 && el.element == 0x0020 { pastEnd[offset + 6] = 0xF0; pastEnd[offset + 7] = 0xFF; break }
            offset += (["OB", "OW", "SQ", "UN", "UT", "OF"].contains(el.vr) ? 12 : 8) + el.value.count
        }
        out.append(("length_past_end", pastEnd, "declares 65520 bytes"))
        // Found by FuzzDICOM: a damaged VR ('YK'), which GDCM reads with a 4-byte length and then
        // allocates and zeroes (seconds, gigabytes); and an element after the pixels whose length
        // runs past the end, which GDCM reads too.
        out.append(("unknown_vr", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0018 && $0.element == 0x0050 }!
            els[i].vr = "YK"
        }, "unknown VR 'YK'"))
        out.append(("trailing_element_past_end", b + [0xFC, 0xFF, 0xFC, 0xFF, 0x4F, 0x42, 0, 0, 0xF0, 0xFF, 0xFF, 0x7F, 1, 2],
                    "after PixelData (7FE0,0010) at byte \(b.count) declares 2147483632 bytes"))
        // Found by FuzzDICOM: nine bytes after the pixels that are no element; GDCM then re-read the
        // file as 16-bit-VR and implicit, allocating ~3.4 GB over 9 s.
        out.append(("trailing_garbage", b + [0x07, 0x61, 0x00, 0xDA, 0x02, 0xF9, 0x04, 0xD2, 0x00], "has no valid VR (bytes 2, 249)"))
        // Found by FuzzDICOM: RescaleSlope written as IS; GDCM's typed attribute asserts on it.
        out.append(("slope_vr_is", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x1053 }!
            els[i].vr = "IS"
        }, "(0028,1053) has VR IS, the standard's is DS"))
        out.append(("trailing_stray_bytes", b + [0x07, 0x61, 0x00], "3 stray byte(s) after PixelData"))
        // Found by FuzzDICOM (fourth): FrameIncrementPointer written as US, which GDCM's
        // GetSpacingValue reads through a typed AT attribute (assertion, abort). The whole spacing
        // class GDCM reads is checked: VR, VM, numbers, sequences in their place.
        out.append(("frame_increment_pointer_us", edit(b, insert(0x0028, 0x0009, "US", [1, 0])),
                    "(0028,0009) has VR US, the standard's is AT"))
        out.append(("frame_increment_pointer_short", edit(b, insert(0x0028, 0x0009, "AT", [0x18, 0x00])),
                    "FrameIncrementPointer (0028,0009) holds 2 bytes"))
        out.append(("frame_time_vr_is", edit(b, insert(0x0018, 0x1063, "IS", Array("40".utf8))),
                    "(0018,1063) has VR IS, the standard's is DS"))
        out.append(("frame_time_text", edit(b, insert(0x0018, 0x1063, "DS", Array("fast".utf8))), "FrameTime (0018,1063)"))
        out.append(("imager_spacing_three", edit(b, insert(0x0018, 0x1164, "DS", Array("0.5\\0.5\\0.5".utf8))),
                    "ImagerPixelSpacing (0018,1164) = '0.5\\0.5\\0.5' must be two positive finite numbers (it has 3 values)"))
        out.append(("imager_spacing_text", edit(b, insert(0x0018, 0x1164, "DS", Array("a\\b".utf8))), "ImagerPixelSpacing (0018,1164)"))
        out.append(("imager_spacing_vr_fd", edit(b, insert(0x0018, 0x1164, "FD", [UInt8](repeating: 0, count: 16))),
                    "(0018,1164) has VR FD, the standard's is DS"))
        out.append(("plane_spacing_one", edit(b, insert(0x3002, 0x0011, "DS", Array("0.5".utf8))), "ImagePlanePixelSpacing (3002,0011)"))
        out.append(("scanned_spacing_zero", edit(b, insert(0x0018, 0x2010, "DS", Array("0\\1".utf8))), "NominalScannedPixelSpacing (0018,2010)"))
        out.append(("aspect_ratio_one", edit(b, insert(0x0028, 0x0034, "IS", Array("1".utf8))), "PixelAspectRatio (0028,0034)"))
        out.append(("spacing_vr_sq", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x0030 }!
            els[i].vr = "SQ"; els[i].value = []
        }, "(0028,0030) has VR SQ, the standard's is DS"))
        out.append(("between_slices_two", edit(b, insert(0x0018, 0x0088, "DS", Array("1\\2".utf8))), "SpacingBetweenSlices (0018,0088)"))
        out.append(("grid_offsets_one", edit(b, insert(0x3004, 0x000C, "DS", Array("0".utf8))), "GridFrameOffsetVector (3004,000C)"))
        // Found by FuzzDICOM (fifth): SamplesPerPixel = 0; GDCM's PixelFormat::SetSamplesPerPixel
        // asserts (abort) on anything but 1, 3 or 4 — also in a file without pixels.
        out.append(("samples_per_pixel_0", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x0002 }!
            els[i].value = [0, 0]
        }, "SamplesPerPixel (0028,0002) = 0"))
        out.append(("samples_per_pixel_2", edit(b) { els in
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x0002 }!
            els[i].value = [2, 0]
        }, "SamplesPerPixel (0028,0002) = 2"))
        out.append(("samples_per_pixel_0_no_image", edit(b) { els in
            els.removeAll { ($0.group == 0x0028 && [0x0010, 0x0011].contains($0.element)) || $0.group == 0x7FE0 }
            let i = els.firstIndex { $0.group == 0x0028 && $0.element == 0x0002 }!
            els[i].value = [0, 0]
        }, "SamplesPerPixel (0028,0002) = 0"))
        out.append(("functional_groups", edit(b, insert(0x5200, 0x9229, "SQ", [])), "SharedFunctionalGroupsSequence (5200,9229)"))
        out.append(("per_frame_groups", edit(b, insert(0x5200, 0x9230, "SQ", [])), "PerFrameFunctionalGroupsSequence (5200,9230)"))
        out.append(("ultrasound_regions", edit(b, insert(0x0018, 0x6011, "SQ", [])), "SequenceOfUltrasoundRegions (0018,6011)"))
        return out
    }

    /// Inserts an element at its place in tag order.
    static func insert(_ g: UInt16, _ e: UInt16, _ vr: String, _ value: [UInt8]) -> (inout [Element]) -> Void {
        { els in
            let key = UInt32(g) << 16 | UInt32(e)
            let i = els.firstIndex { (UInt32($0.group) << 16 | UInt32($0.element)) > key } ?? els.count
            els.insert(Element(group: g, element: e, vr: vr, value: value), at: i)
        }
    }

    /// `expected` holds alternatives separated by "|" (a cut at an element boundary before
    /// PixelData is indistinguishable from a file without PixelData).
    static func matches(_ message: String?, _ expected: String) -> Bool {
        guard let message else { return false }
        return expected.split(separator: "|").contains { message.contains($0) }
    }

    /// Padding after the pixels (all zeros, or a well-formed trailing element) is still accepted.
    @Test func trailingPaddingPasses() throws {
        let b = try Self.validSlice()
        let zeros = b + [UInt8](repeating: 0, count: 10), element = b + [0xFC, 0xFF, 0xFC, 0xFF, 0x4F, 0x42, 0, 0, 2, 0, 0, 0, 0, 0]
        #expect(zeros.withUnsafeBytes { DICOMValidate.problem(bytes: $0) } == nil)
        #expect(element.withUnsafeBytes { DICOMValidate.problem(bytes: $0) } == nil)
    }

    /// The fuzzer's inputs that made GDCM assert (kept in Tools/fuzz/regressions/FuzzDICOM; each
    /// also aborts `gdcminfo`).
    @Test(arguments: [("frame-increment-pointer-us-gdcm-assert.dcm", "(0028,0009) has VR US, the standard's is AT"),
                      ("samples-per-pixel-0-gdcm-assert.dcm", "SamplesPerPixel (0028,0002) = 0")])
    func assertingFuzzFindsAreRefused(file: String, expected: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tools/fuzz/regressions/FuzzDICOM/\(file)")
        let why = DICOMValidate.problem(url.path)
        #expect(why?.contains(expected) == true, "\(file): \(why ?? "accepted")")
    }

    /// Well-formed spacing elements of the other SOP classes still pass.
    @Test func wellFormedSpacingPasses() throws {
        let b = try Self.validSlice()
        let ok = Self.edit(b) { els in
            Self.insert(0x0018, 0x1164, "DS", Array("0.5\\0.5".utf8))(&els)
            Self.insert(0x0028, 0x0009, "AT", [0x18, 0x00, 0x63, 0x10])(&els)
            Self.insert(0x0018, 0x1063, "DS", Array("40".utf8))(&els)
            Self.insert(0x0028, 0x0034, "IS", Array("1\\1".utf8))(&els)
            Self.insert(0x0018, 0x0088, "DS", Array("".utf8))(&els)
        }
        #expect(ok.withUnsafeBytes { DICOMValidate.problem(bytes: $0) } == nil)
    }

    @Test func validSlicePasses() throws {
        let b = try Self.validSlice()
        #expect(b.withUnsafeBytes { DICOMValidate.problem(bytes: $0) } == nil)
        #expect(Self.serialise(b, Self.parse(b)) == b)
    }

    @Test func eachHostileHeaderIsRefusedWithItsTag() throws {
        let all = try Self.cases()
        #expect(all.count >= 40)
        for (name, bytes, expected) in all {
            let why = bytes.withUnsafeBytes { DICOMValidate.problem(bytes: $0) }
            #expect(Self.matches(why, expected), "\(name): \(why ?? "accepted")")
        }
    }

    /// The same files through `DICOMReader.scan` and `DICOMFile` (the read path): problems, no
    /// series, no crash; the reader's error names the file.
    @Test func scanReportsEveryHostileFile() throws {
        let folder = temporaryFolder("dcmhostile")
        defer { try? FileManager.default.removeItem(at: folder) }
        let all = try Self.cases()
        for (name, bytes, _) in all { try Data(bytes).write(to: folder.appendingPathComponent(name + ".dcm")) }
        let found = try DICOMReader().scan(folder)
        #expect(found.series.isEmpty)
        let byName = Dictionary(uniqueKeysWithValues: found.problems.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        for (name, _, expected) in all {
            #expect(Self.matches(byName[name + ".dcm"], expected), "\(name): \(byName[name + ".dcm"] ?? "no problem reported")")
            let path = folder.appendingPathComponent(name + ".dcm").path
            do {
                _ = try DICOMFile(path: path, withPixels: true)
                Issue.record("\(name): DICOMFile opened a hostile file")
            } catch {
                #expect("\(error)".contains(path) && Self.matches("\(error)", expected), "\(name): \(error)")
            }
        }
    }
}
