import Foundation

/// A Swift walk of a DICOM file's meta group and top-level dataset, run before GDCM sees the file
/// so that no input reaches a GDCM assertion (GDCM aborts the process on, e.g., a header cut at
/// 132–930 bytes or BitsAllocated = 12).
///
/// Walks every element of the file, the PixelData (7FE0,0010) value stepped over (sequences of defined
/// or undefined length are stepped through, items included), checking that each element's header
/// and value lie inside the file, and then checks the pixel module: BitsAllocated ∈ {8, 16, 32}
/// and consistent with BitsStored / HighBit / PixelRepresentation, native PixelData long enough for
/// Rows × Columns × Frames × SamplesPerPixel × BitsAllocated/8 and not twice that (BitsAllocated = 8
/// over 16-bit data), RescaleSlope finite, non-zero and plausible, PixelSpacing two positive finite
/// numbers, SliceThickness (when given) positive and finite. Files without Rows / Columns and
/// without PixelData (DICOMDIR, SR, …) pass: the scan reports those itself.
///
/// `problem(path)` returns nil for a file that passes, else a reason naming the tag, beginning with
/// "truncated DICOM" for a file cut inside its header.
public enum DICOMValidate {
    /// Reasons are plain strings; `ImagingError.unreadable(path:reason:)` names the file.
    public static func problem(_ path: String) -> String? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            return "cannot open the file"
        }
        return data.withUnsafeBytes { problem(bytes: $0) }
    }

    static func tagName(_ g: UInt16, _ e: UInt16) -> String {
        String(format: "(%04X,%04X)", g, e)
    }

    private static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
    /// Every VR of PS3.5 §6.2. GDCM reads an unknown VR with a 4-byte length, so a file whose VR
    /// bytes are damaged would have it allocate (and zero) whatever the next four bytes say.
    /// The dictionary VR of the image-module elements GDCM reads through its typed `Attribute<>`,
    /// which asserts (aborts the process) when an explicit-VR file gives one another VR (e.g.
    /// RescaleSlope as IS). UN is left to GDCM, which reads it through the dictionary.
    static let typedVRs: [UInt32: String] = [
        0x0028_0002: "US", 0x0028_0004: "CS", 0x0028_0008: "IS", 0x0028_0010: "US", 0x0028_0011: "US",
        0x0028_0030: "DS", 0x0028_0100: "US", 0x0028_0101: "US", 0x0028_0102: "US", 0x0028_0103: "US",
        0x0028_1050: "DS", 0x0028_1051: "DS", 0x0028_1052: "DS", 0x0028_1053: "DS", 0x0028_1054: "LO",
        0x0018_0050: "DS", 0x0018_0088: "DS", 0x0020_0013: "IS", 0x0020_0032: "DS", 0x0020_0037: "DS",
        // The spacing elements GDCM's `ImageHelper::GetSpacingValue` reads (which one depends on
        // the SOP class GDCM infers, so all are checked): ImagerPixelSpacing, ImagePlanePixelSpacing,
        // NominalScannedPixelSpacing, PixelAspectRatio, GridFrameOffsetVector, FrameIncrementPointer
        // (read as a typed AT — FuzzDICOM's fourth find was one written as US), FrameTime, Planes.
        0x0018_1164: "DS", 0x3002_0011: "DS", 0x0018_2010: "DS", 0x0028_0034: "IS", 0x3004_000C: "DS",
        0x0028_0009: "AT", 0x0018_1063: "DS", 0x0028_0012: "US",
    ]
    /// Spacing values GDCM parses as numbers (tag, name, values required, must be > 0); checked
    /// when present and non-empty: exactly that many values (nil = at least 2), each a finite
    /// number. GDCM asserts on a spacing read as a sequence, with a VR other than the dictionary's,
    /// or (DS with a backslash) with fewer than two values; an unparsable value becomes garbage.
    static let spacingValues: [(key: UInt32, name: String, count: Int?, positive: Bool)] = [
        (0x0028_0030, "PixelSpacing", 2, true), (0x0018_1164, "ImagerPixelSpacing", 2, true),
        (0x3002_0011, "ImagePlanePixelSpacing", 2, true), (0x0018_2010, "NominalScannedPixelSpacing", 2, true),
        (0x0028_0034, "PixelAspectRatio", 2, true), (0x0018_0088, "SpacingBetweenSlices", 1, true),
        (0x0018_0050, "SliceThickness", 1, false), (0x0018_1063, "FrameTime", 1, false),
        (0x3004_000C, "GridFrameOffsetVector", nil, false),
    ]
    /// Top-level sequences whose content GDCM's spacing / origin / rescale code reads with
    /// assertions on its shape (first item present, nested sequences, typed values):
    /// the functional groups of enhanced multi-frame images and ultrasound regions. Axial reads
    /// single-frame CT with top-level geometry only, so these files are refused whole.
    static let refusedSequences: [UInt32: String] = [
        0x5200_9229: "SharedFunctionalGroupsSequence (5200,9229): an enhanced multi-frame image",
        0x5200_9230: "PerFrameFunctionalGroupsSequence (5200,9230): an enhanced multi-frame image",
        0x0018_6011: "SequenceOfUltrasoundRegions (0018,6011): an ultrasound image",
    ]
    private static let knownVRs: Set<String> = longVRs.union(["AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT",
                                                             "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"])

    struct Walker {
        let b: UnsafeRawBufferPointer
        var explicit = true
        var bigEndian = false
        var values: [UInt32: (offset: Int, length: Int)] = [:]
        var pixelData: (offset: Int, length: Int?)?
        var lastTag = "(start)"
        var sopClass = ""

        init(_ b: UnsafeRawBufferPointer) { self.b = b }

        func u16(_ i: Int, big: Bool) -> UInt16 {
            let v = UInt16(b[i]) | UInt16(b[i + 1]) << 8
            return big ? v.byteSwapped : v
        }
        func u32(_ i: Int, big: Bool) -> UInt32 {
            let v = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
            return big ? v.byteSwapped : v
        }

        struct Header { var group: UInt16; var element: UInt16; var vr: String?; var length: UInt32; var valueStart: Int }

        /// The element header at `i`; throws a reason when it is cut by the end of the file.
        func header(at i: Int, explicit: Bool, big: Bool) throws(Refusal) -> Header {
            guard i + 8 <= b.count else {
                throw Refusal("truncated DICOM header: the file ends at byte \(b.count) inside the element after \(lastTag)")
            }
            let g = u16(i, big: big), e = u16(i + 2, big: big)
            if g == 0xFFFE {       // item / delimiters: never VR-encoded
                return Header(group: g, element: e, vr: nil, length: u32(i + 4, big: big), valueStart: i + 8)
            }
            if !explicit { return Header(group: g, element: e, vr: nil, length: u32(i + 4, big: big), valueStart: i + 8) }
            let vr = String(decoding: [b[i + 4], b[i + 5]], as: UTF8.self)
            guard vr.utf8.allSatisfy({ (65...90).contains($0) }) else {
                throw Refusal("corrupt DICOM header: element \(tagName(g, e)) at byte \(i) has no valid VR (bytes \(b[i + 4]), \(b[i + 5]))")
            }
            guard knownVRs.contains(vr) else {
                throw Refusal("corrupt DICOM header: element \(tagName(g, e)) at byte \(i) has the unknown VR '\(vr)'")
            }
            if longVRs.contains(vr) {
                guard i + 12 <= b.count else {
                    throw Refusal("truncated DICOM header: the file ends at byte \(b.count) inside the header of \(tagName(g, e))")
                }
                return Header(group: g, element: e, vr: vr, length: u32(i + 8, big: big), valueStart: i + 12)
            }
            return Header(group: g, element: e, vr: vr, length: UInt32(u16(i + 6, big: big)), valueStart: i + 8)
        }

        func checkValue(_ h: Header) throws(Refusal) {
            if Int(h.length) > b.count - h.valueStart {
                throw Refusal("truncated DICOM header: element \(tagName(h.group, h.element)) declares \(h.length) bytes at byte \(h.valueStart), the file ends at byte \(b.count)")
            }
        }

        /// Steps over a sequence's content from `i` (after an undefined-length SQ header) to just after
        /// its delimiter; `depth` bounds recursion.
        func skipUndefinedSequence(from start: Int, depth: Int, explicit: Bool) throws(Refusal) -> Int {
            guard depth < 32 else { throw Refusal("corrupt DICOM header: sequences nested deeper than 32 levels near \(lastTag)") }
            var i = start
            while true {
                let h = try header(at: i, explicit: false, big: bigEndian)
                guard h.group == 0xFFFE else {
                    throw Refusal("corrupt DICOM header: expected an item in the sequence \(lastTag) at byte \(i), found \(tagName(h.group, h.element))")
                }
                if h.element == 0xE0DD { return h.valueStart }                  // sequence delimiter
                guard h.element == 0xE000 else {
                    throw Refusal("corrupt DICOM header: unexpected \(tagName(h.group, h.element)) in the sequence \(lastTag) at byte \(i)")
                }
                if h.length == 0xFFFF_FFFF {
                    i = try walkItem(from: h.valueStart, depth: depth + 1, explicit: explicit)
                } else {
                    try checkValue(h)
                    i = h.valueStart + Int(h.length)
                }
            }
        }

        /// Walks an undefined-length item's elements to just after its item delimiter.
        func walkItem(from start: Int, depth: Int, explicit: Bool) throws(Refusal) -> Int {
            var i = start
            while true {
                let h = try header(at: i, explicit: explicit, big: bigEndian)
                if h.group == 0xFFFE && h.element == 0xE00D { return h.valueStart }
                if h.length == 0xFFFF_FFFF {
                    guard h.vr == nil || h.vr == "SQ" || h.vr == "UN" else {
                        throw Refusal("corrupt DICOM header: \(tagName(h.group, h.element)) (VR \(h.vr!)) has undefined length")
                    }
                    // An undefined-length UN holds implicit VR little endian content (PS3.5 6.2.2).
                    i = try skipUndefinedSequence(from: h.valueStart, depth: depth + 1, explicit: explicit && h.vr != "UN")
                } else {
                    try checkValue(h)
                    i = h.valueStart + Int(h.length)
                }
            }
        }

        /// The whole walk: meta group, then top-level elements up to PixelData.
        mutating func run() throws(Refusal) {
            var i = 0
            var transferSyntax = ""
            if b.count >= 132 && b[128] == 0x44 && b[129] == 0x49 && b[130] == 0x43 && b[131] == 0x4D {
                i = 132
            } else if b.count < 132 && b.count >= 8 && !(b[0] == 0x02 || b[0] == 0x08) {
                throw Refusal("truncated DICOM header: the file has only \(b.count) bytes, it ends inside the 128-byte preamble or before 'DICM'")
            }
            // File meta (0002,xxxx): always explicit VR little endian.
            while i + 2 <= b.count, u16(i, big: false) == 0x0002 {
                let h = try header(at: i, explicit: true, big: false)
                try checkValue(h)
                if h.element == 0x0002 {
                    sopClass = String(decoding: UnsafeRawBufferPointer(rebasing: b[h.valueStart..<(h.valueStart + Int(h.length))]), as: UTF8.self)
                        .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
                }
                if h.element == 0x0010 {
                    transferSyntax = String(decoding: UnsafeRawBufferPointer(rebasing: b[h.valueStart..<(h.valueStart + Int(h.length))]), as: UTF8.self)
                        .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
                }
                lastTag = tagName(h.group, h.element)
                i = h.valueStart + Int(h.length)
            }
            if transferSyntax == "1.2.840.10008.1.2.1.99" { return }   // deflated: the dataset is zlib data
            if transferSyntax.isEmpty {
                // No meta group: guess from the first element (VR letters → explicit).
                if i + 6 <= b.count {
                    explicit = (65...90).contains(b[i + 4]) && (65...90).contains(b[i + 5])
                }
            } else {
                explicit = transferSyntax != "1.2.840.10008.1.2"
                bigEndian = transferSyntax == "1.2.840.10008.1.2.2"
            }
            if i == b.count && i <= 132 + 256 {
                throw Refusal("truncated DICOM header: the file ends at byte \(b.count), after the file meta group and before any dataset element")
            }
            while i < b.count {
                let h = try header(at: i, explicit: explicit, big: bigEndian)
                let key = UInt32(h.group) << 16 | UInt32(h.element)
                if h.group == 0x7FE0 && h.element == 0x0010 {
                    if h.length == 0xFFFF_FFFF {
                        pixelData = (h.valueStart, nil)
                    } else {
                        pixelData = (h.valueStart, Int(h.length))
                        if Int(h.length) > b.count - h.valueStart {
                            throw Refusal("truncated DICOM: PixelData (7FE0,0010) declares \(h.length) bytes, the file has \(b.count - h.valueStart) after its header")
                        }
                    }
                    // GDCM reads what follows the pixels too (padding, private tags): walk it, so a
                    // damaged trailing element cannot have GDCM allocate its declared length.
                    guard h.length != 0xFFFF_FFFF else { return }
                    try walkTrailing(from: h.valueStart + Int(h.length))
                    return
                }
                if h.group == 0xFFFE {
                    throw Refusal("corrupt DICOM header: item tag \(tagName(h.group, h.element)) at byte \(i) outside a sequence")
                }
                lastTag = tagName(h.group, h.element)
                if let what = DICOMValidate.refusedSequences[key] {
                    throw Refusal("unsupported DICOM: \(what) (Axial reads single-frame CT; convert it to single-frame CT files first)")
                }
                if h.length == 0xFFFF_FFFF {
                    guard h.vr == nil || h.vr == "SQ" || h.vr == "UN" else {
                        throw Refusal("corrupt DICOM header: \(lastTag) (VR \(h.vr!)) has undefined length")
                    }
                    // An image-module / spacing value read as a sequence: GDCM asserts on its missing bytes.
                    if let expected = DICOMValidate.typedVRs[key] {
                        throw Refusal("corrupt DICOM header: \(lastTag) (VR \(expected)) has undefined length (read as a sequence)")
                    }
                    i = try skipUndefinedSequence(from: h.valueStart, depth: 0, explicit: explicit && h.vr != "UN")
                } else {
                    try checkValue(h)
                    if let vr = h.vr, vr != "UN", let expected = DICOMValidate.typedVRs[key], vr != expected {
                        throw Refusal("corrupt DICOM header: \(tagName(h.group, h.element)) has VR \(vr), the standard's is \(expected)")
                    }
                    if [0x0028, 0x0018, 0x3002, 0x3004].contains(h.group) { values[key] = (h.valueStart, Int(h.length)) }
                    i = h.valueStart + Int(h.length)
                }
            }
        }

        /// After native PixelData: GDCM reads what follows too, and on anything it cannot parse it
        /// retries the whole file in other encodings (16-bit VR lengths, implicit VR), allocating
        /// gigabytes on the way, or allocates whatever length a damaged element declares. So what
        /// follows the pixels must be all-zero padding or well-formed elements (a known VR, the value
        /// inside the file); anything else is refused.
        func walkTrailing(from start: Int) throws(Refusal) {
            var i = start
            while i < b.count {
                if (i..<b.count).allSatisfy({ b[$0] == 0 }) { return }   // zero padding
                let at = "after PixelData (7FE0,0010) at byte \(i)"
                guard i + 8 <= b.count else {
                    throw Refusal("corrupt DICOM: \(b.count - i) stray byte(s) \(at), not a DICOM element")
                }
                // The same element header the dataset walk reads (refuses invalid or unknown VRs and
                // headers cut by the end of the file).
                let h = try header(at: i, explicit: explicit, big: bigEndian)
                let g = h.group, e = h.element, length = h.length, valueStart = h.valueStart
                if length == 0xFFFF_FFFF { return }   // a sequence after the pixels: GDCM parses it item by item
                guard Int(length) <= b.count - valueStart else {
                    throw Refusal("corrupt DICOM: element \(tagName(g, e)) \(at) declares \(length) bytes, the file ends at byte \(b.count)")
                }
                i = valueStart + Int(length)
            }
        }

        func text(_ g: UInt16, _ e: UInt16) -> String? {
            guard let v = values[UInt32(g) << 16 | UInt32(e)] else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: b[v.offset..<(v.offset + v.length)]), as: UTF8.self)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
        }
        /// A US value (binary, 2 bytes) in explicit VR; implicit VR also stores US binary.
        func us(_ g: UInt16, _ e: UInt16) -> Int? {
            guard let v = values[UInt32(g) << 16 | UInt32(e)], v.length >= 2 else { return nil }
            return Int(u16(v.offset, big: bigEndian))
        }
        func numbers(_ g: UInt16, _ e: UInt16) -> [Double?]? {
            guard let s = text(g, e), !s.isEmpty else { return nil }
            return s.split(separator: "\\", omittingEmptySubsequences: false).map {
                Double($0.trimmingCharacters(in: .whitespaces))
            }
        }
    }

    struct Refusal: Error { let reason: String; init(_ r: String) { reason = r } }

    /// The fuzz entry point: a whole file in memory.
    public static func problem(data: Data) -> String? { data.withUnsafeBytes { problem(bytes: $0) } }

    static func problem(bytes: UnsafeRawBufferPointer) -> String? {
        var w = Walker(bytes)
        do { try w.run() } catch { return error.reason }
        // GDCM's PixelFormat::SetSamplesPerPixel asserts (aborts) on a value other than 1, 3 or 4,
        // also in a file without PixelData that it reads through its "desperate attempt" path
        // (FuzzDICOM's fifth find: SamplesPerPixel = 0), so this is checked before the image guard.
        if let spp = w.values[0x0028_0002], spp.length > 0 {
            guard let samples = w.us(0x0028, 0x0002) else {
                return "SamplesPerPixel (0028,0002) holds \(spp.length) bytes, not one US value"
            }
            guard [1, 3, 4].contains(samples) else {
                return "SamplesPerPixel (0028,0002) = \(samples) (DICOM allows 1, 3 or 4; CT has 1)"
            }
        }
        let rows = w.us(0x0028, 0x0010), columns = w.us(0x0028, 0x0011)
        // CT / enhanced CT / secondary capture image storage must carry pixels (a file cut at an
        // element boundary before Rows would otherwise pass as "not an image").
        let imageClasses: Set<String> = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.7"]
        if w.pixelData == nil && rows == nil && columns == nil && imageClasses.contains(w.sopClass) {
            return "no PixelData (7FE0,0010) and no Rows/Columns in an image-storage file (SOP class \(w.sopClass)): the dataset ends at byte \(bytes.count), the file is probably cut short"
        }
        guard rows != nil || columns != nil || w.pixelData != nil else { return nil }   // not an image
        guard let pixel = w.pixelData else {
            return "no PixelData (7FE0,0010): the dataset ends at byte \(bytes.count) without pixel data (Rows \(rows ?? 0), Columns \(columns ?? 0))"
        }
        guard let rows, let columns, rows > 0, columns > 0 else {
            return "PixelData without a size: Rows (0028,0010) = \(rows.map(String.init) ?? "absent"), Columns (0028,0011) = \(columns.map(String.init) ?? "absent")"
        }
        let allocated = w.us(0x0028, 0x0100)
        guard let allocated else { return "missing BitsAllocated (0028,0100)" }
        guard [8, 16, 32].contains(allocated) else {
            return "BitsAllocated (0028,0100) = \(allocated) is not supported (8, 16 or 32)"
        }
        if let stored = w.us(0x0028, 0x0101) {
            guard stored >= 1 && stored <= allocated else {
                return "BitsStored (0028,0101) = \(stored) is inconsistent with BitsAllocated (0028,0100) = \(allocated)"
            }
            if let high = w.us(0x0028, 0x0102), high != stored - 1 {
                return "HighBit (0028,0102) = \(high) is inconsistent with BitsStored (0028,0101) = \(stored) (must be BitsStored − 1)"
            }
        }
        if let rep = w.us(0x0028, 0x0103), rep > 1 {
            return "PixelRepresentation (0028,0103) = \(rep) (must be 0 or 1)"
        }
        let samples = w.us(0x0028, 0x0002) ?? 1
        let framesText = w.text(0x0028, 0x0008)
        var frames = 1
        if let framesText, !framesText.isEmpty {
            guard let f = Int(framesText), f >= 1 else { return "NumberOfFrames (0028,0008) = '\(framesText)' is not a positive integer" }
            frames = f
        }
        if let length = pixel.length {
            let (needed, o) = (rows * columns).multipliedReportingOverflow(by: frames * max(1, samples) * (allocated / 8))
            if o { return "PixelData size Rows × Columns × Frames overflows" }
            if length < needed {
                return "PixelData (7FE0,0010) holds \(length) bytes, Rows \(rows) × Columns \(columns) × Frames \(frames) × SamplesPerPixel \(samples) × BitsAllocated (0028,0100) \(allocated)/8 needs \(needed)"
            }
            if needed > 0 && length >= 2 * needed {
                return "PixelData (7FE0,0010) holds \(length) bytes, \(length / needed)× what Rows × Columns × Frames × BitsAllocated (0028,0100) = \(allocated) gives (\(needed)): BitsAllocated disagrees with the data"
            }
        }
        if let slope = w.numbers(0x0028, 0x1053), let first = slope.first {
            guard let s = first, s.isFinite else { return "RescaleSlope (0028,1053) = '\(w.text(0x0028, 0x1053)!)' is not a finite number" }
            guard s != 0 else { return "RescaleSlope (0028,1053) = 0: every voxel would have the same value" }
            guard abs(s) <= 1e3 else { return "RescaleSlope (0028,1053) = \(s) is implausible for CT (|slope| > 1000)" }
        }
        if let intercept = w.numbers(0x0028, 0x1052), let first = intercept.first {
            guard let v = first, v.isFinite, abs(v) <= 1e6 else { return "RescaleIntercept (0028,1052) = '\(w.text(0x0028, 0x1052)!)' is not a finite, plausible number" }
        }
        if let why = spacingProblem(w) { return why }
        return nil
    }

    /// The spacing class (`spacingValues`, FrameIncrementPointer): VM, numbers, signs.
    static func spacingProblem(_ w: Walker) -> String? {
        let words = ["", "one", "two"]
        for s in spacingValues {
            let g = UInt16(s.key >> 16), e = UInt16(s.key & 0xFFFF)
            guard let values = w.numbers(g, e) else { continue }
            let tag = "\(s.name) \(tagName(g, e)) = '\(w.text(g, e)!)'"
            let sign = s.positive ? "positive" : (s.key == 0x0018_0050 ? "non-negative" : "")
            let what = s.count.map { "\($0 < words.count ? words[$0] : String($0)) \(sign.isEmpty ? "" : sign + " ")finite number\($0 == 1 ? "" : "s")" }
                ?? "at least two finite numbers"
            if let n = s.count { guard values.count == n else { return "\(tag) must be \(what) (it has \(values.count) values)" } }
            else { guard values.count >= 2 else { return "\(tag) must be \(what)" } }
            for v in values {
                guard let v, v.isFinite else { return "\(tag) must be \(what)" }
                if s.positive && !(v > 0) { return "\(tag) must be \(what)" }
                if s.key == 0x0018_0050 && v < 0 { return "\(tag) must be \(what)" }
            }
        }
        // FrameIncrementPointer: GDCM reads it as AT (4-byte tags) and follows the first.
        if let v = w.values[0x0028_0009], v.length > 0, v.length % 4 != 0 {
            return "FrameIncrementPointer (0028,0009) holds \(v.length) bytes, not a whole number of 4-byte tags (VR AT)"
        }
        return nil
    }
}
