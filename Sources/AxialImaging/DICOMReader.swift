import Foundation

/// Reads CT series from DICOM files through GDCM (any file names, no extension needed).
///
/// `scan` parses the headers of every file under a folder tree in parallel, skips files that are
/// not DICOM, reports unusable DICOM files (truncated, corrupt, colour, multi-frame, missing
/// geometry) as problems, groups images by StudyInstanceUID / SeriesInstanceUID, drops
/// localizers, odd-orientation and odd-size images and duplicate positions (with warnings), and
/// lists each series' files sorted by position along the slice normal. `read` decodes the pixels
/// of a series in parallel (one GDCM reader per file), converts stored values to HU with
/// RescaleSlope/Intercept in one pass, checks the geometry (spacing, gaps, tilt) and returns the
/// volume in canonical order (see `Volume`).
public struct DICOMReader: VolumeReader {
    public init() {}

    // MARK: scan

    public func scan(_ root: URL) throws -> (series: [SeriesInfo], problems: [InputProblem]) {
        let paths = try listInputFiles(root).filter { !NIfTIReader.isNIfTIPath($0) }
        let results = parallelMap(paths) { DICOMReader.scanFile($0) }
        var headers: [DICOMSliceHeader] = []
        var problems: [InputProblem] = []
        for r in results {
            switch r {
            case .ignored: continue
            case .slice(let h): headers.append(h)
            case .problem(let p): problems.append(p)
            }
        }
        // Group by study / series, keeping first-seen order stable (paths are sorted).
        var order: [String] = []
        var groups: [String: [DICOMSliceHeader]] = [:]
        for h in headers {
            let key = h.studyUID + "|" + h.seriesUID
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(h)
        }
        var series: [SeriesInfo] = []
        for key in order {
            let members = groups[key]!
            let assembled = DICOMReader.assemble(members)
            problems += assembled.problems
            guard let first = assembled.slices.first else { continue }
            series.append(SeriesInfo(
                patientID: first.patientID, studyUID: first.studyUID, seriesUID: first.seriesUID,
                modality: first.modality, files: assembled.slices.map(\.path), warnings: assembled.warnings))
        }
        return (series, problems)
    }

    enum ScanOutcome: Sendable {
        case ignored
        case slice(DICOMSliceHeader)
        case problem(InputProblem)
    }

    /// Header checks for one file: ignored = not DICOM, problem = unusable DICOM.
    static func scanFile(_ path: String) -> ScanOutcome {
        guard DICOMFile.looksLikeDICOM(path) else {
            // Other files in a study folder (notes, CSVs) are ignored quietly; one named like DICOM is not.
            let lower = path.lowercased()
            let gz = lower.hasSuffix(".gz")
            let stem = gz ? String(lower.dropLast(3)) : lower
            guard [".dcm", ".dicom", ".ima"].contains(where: { stem.hasSuffix($0) }) else { return .ignored }
            return .problem(InputProblem(path: path, reason: DICOMFile.isGzip(path)
                ? "gzip-compressed file: decompress it first (gunzip), DICOM is read uncompressed"
                : "named like DICOM but not DICOM: no 'DICM' preamble and no little-endian group 0002/0008 element at the start"))
        }
        if DICOMFile.metaSOPClassUID(path) == "1.2.840.10008.1.3.10" { return .ignored }   // DICOMDIR, before GDCM sees it
        if let why = DICOMValidate.problem(path) {     // Swift header walk before GDCM sees the file
            return .problem(InputProblem(path: path, reason: why.hasPrefix("truncated") ? why : "refused DICOM: \(why)"))
        }
        let file: DICOMFile
        do { file = try DICOMFile(path: path, withPixels: false, validated: true) } catch {
            return .problem(InputProblem(path: path, reason: "corrupt DICOM: \(reason(error))"))
        }
        let h = DICOMSliceHeader(file)
        if h.sopClassUID == "1.2.840.10008.1.3.10" { return .ignored }            // DICOMDIR
        if h.sopClassUID == "1.2.840.10008.5.1.4.1.1.481.2" || h.modality == "RTDOSE" {
            // Also keeps GDCM's image reader away from RT Dose files without NumberOfFrames (it asserts).
            return .problem(InputProblem(path: path, reason: "RT Dose (modality \(h.modality), SOP class \(h.sopClassUID)): a dose grid, not a CT image, refused"))
        }
        if h.rows == 0 || h.columns == 0 {
            return .problem(InputProblem(path: path, reason: "DICOM file without an image (no Rows/Columns; SOP class \(h.sopClassUID))"))
        }
        if h.isColour {
            return .problem(InputProblem(path: path, reason: "colour image (PhotometricInterpretation \(h.photometric), \(h.samplesPerPixel) samples per pixel): CT must be greyscale, refused"))
        }
        if h.frames > 1 {
            return .problem(InputProblem(path: path, reason: "multi-frame image (\(h.frames) frames, e.g. enhanced CT) is not supported; convert it to single-frame files first"))
        }
        if h.position == nil || h.orientation == nil || h.normal == nil {
            return .problem(InputProblem(path: path, reason: "missing or invalid ImagePositionPatient / ImageOrientationPatient: no patient geometry"))
        }
        if h.studyUID.isEmpty || h.seriesUID.isEmpty {
            return .problem(InputProblem(path: path, reason: "missing StudyInstanceUID or SeriesInstanceUID"))
        }
        // Truncation: compare the file's length with what its pixel data needs.
        let size = fileSize(path)
        if file.isEncapsulated {
            if let why = encapsulatedPixelDataProblem(path, offset: file.headerEnd, size: size) {
                return .problem(InputProblem(path: path, reason: "truncated DICOM: \(why)"))
            }
        } else {
            let needed = Int64(h.rows) * Int64(h.columns) * Int64(h.frames) * Int64(h.samplesPerPixel) * Int64(max(1, h.bitsAllocated / 8))
            let available = size - file.headerEnd
            if available < needed {
                return .problem(InputProblem(path: path, reason: "truncated DICOM: pixel data needs \(needed) bytes, file has \(max(0, available)) after the header"))
            }
        }
        return .slice(h)
    }

    // MARK: assembling a series

    struct Assembled {
        var slices: [DICOMSliceHeader]
        var warnings: [String]
        var problems: [InputProblem]
    }

    /// Drops localizers and images whose orientation or size differs from the majority, sorts by
    /// position along the slice normal and removes duplicate positions. Shared by scan and read.
    static func assemble(_ input: [DICOMSliceHeader]) -> Assembled {
        var warnings: [String] = []
        var slices = input.sorted { $0.path < $1.path }
        let localizers = slices.filter(\.isLocalizer)
        if !localizers.isEmpty {
            warnings.append("skipped \(localizers.count) localizer/scout image(s) (ImageType LOCALIZER): \(names(localizers))")
            slices.removeAll(where: \.isLocalizer)
        }
        // Majority orientation.
        func sameOrientation(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-3 } }
        var clusters: [(orientation: [Double], members: [DICOMSliceHeader])] = []
        for s in slices {
            if let i = clusters.firstIndex(where: { sameOrientation($0.orientation, s.orientation!) }) {
                clusters[i].members.append(s)
            } else {
                clusters.append((s.orientation!, [s]))
            }
        }
        if clusters.count > 1 {
            let best = clusters.indices.max { clusters[$0].members.count < clusters[$1].members.count }!
            let dropped = clusters.indices.filter { $0 != best }.flatMap { clusters[$0].members }
            let kind = dropped.count == 1 ? "a single image (likely a localizer)" : "\(dropped.count) images"
            warnings.append("mixed orientations in the series: skipped \(kind) whose ImageOrientationPatient differs from the \(clusters[best].members.count) majority slices (\(fmt(clusters[best].orientation))): \(names(dropped))")
            slices = clusters[best].members
        }
        // Majority size.
        var sizeCount: [String: Int] = [:]
        for s in slices { sizeCount["\(s.rows)x\(s.columns)", default: 0] += 1 }
        if sizeCount.count > 1 {
            let major = sizeCount.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key
            let dropped = slices.filter { "\($0.rows)x\($0.columns)" != major }
            warnings.append("mixed image sizes in the series: kept \(major) (rows x columns), skipped \(dropped.count) image(s): \(names(dropped))")
            slices.removeAll { "\($0.rows)x\($0.columns)" != major }
        }
        guard let normal = slices.first?.normal else { return Assembled(slices: [], warnings: warnings, problems: []) }
        var keyed: [(Double, DICOMSliceHeader)] = slices.map { s in ((s.position! * normal).sum(), s) }
        keyed.sort { a, b in a.0 != b.0 ? a.0 < b.0 : a.1.path < b.1.path }
        var kept: [DICOMSliceHeader] = []
        var duplicates: [DICOMSliceHeader] = []
        var lastD = -Double.infinity
        for (d, s) in keyed {
            if !kept.isEmpty && abs(d - lastD) < 0.01 { duplicates.append(s); continue }
            kept.append(s); lastD = d
        }
        if !duplicates.isEmpty {
            warnings.append("duplicate slices: \(duplicates.count) image(s) at the same position as another were skipped (kept one per position): \(names(duplicates))")
        }
        return Assembled(slices: kept, warnings: warnings, problems: [])
    }

    static func names(_ h: [DICOMSliceHeader], limit: Int = 5) -> String {
        let n = h.map { ($0.path as NSString).lastPathComponent }
        return n.prefix(limit).joined(separator: ", ") + (n.count > limit ? ", … (\(n.count) in all)" : "")
    }

    // MARK: read

    public func read(_ series: SeriesInfo) throws -> Volume {
        let files = series.files
        guard !files.isEmpty else { throw ImagingError.inconsistentSeries(seriesUID: series.seriesUID, reason: "no files") }
        // Slot sizes from the first file's header; scan put files in slice order.
        let firstHeader = DICOMSliceHeader(try DICOMFile(path: files[0], withPixels: false))
        let (rows, columns) = (firstHeader.rows, firstHeader.columns)
        let plane = rows * columns
        // Uninitialised: every slot is written by its worker (in parallel, so pages fault in on
        // all cores) or the read fails.
        var voxels = [Float](unsafeUninitializedCapacity: plane * files.count) { _, n in n = plane * files.count }
        var headers = [DICOMSliceHeader?](repeating: nil, count: files.count)
        var failures = [String?](repeating: nil, count: files.count)
        voxels.withUnsafeMutableBufferPointer { out in
            headers.withUnsafeMutableBufferPointer { hs in
                failures.withUnsafeMutableBufferPointer { fs in
                    nonisolated(unsafe) let out = out, hs = hs, fs = fs
                    imagingParallelFor(files.count) { i in
                        do {
                            let (h, decoded) = try DICOMReader.decodeSlice(files[i], rows: rows, columns: columns,
                                                                          into: UnsafeMutableBufferPointer(rebasing: out[(i * plane)..<((i + 1) * plane)]))
                            hs[i] = h
                            if !decoded { fs[i] = "image size \(h.rows)x\(h.columns) differs from the series' \(rows)x\(columns)" }
                        } catch {
                            fs[i] = reason(error)
                        }
                    }
                }
            }
        }
        for (i, f) in failures.enumerated() where f != nil && headers[i] == nil {
            throw ImagingError.unreadable(path: files[i], reason: f!)
        }
        let all = headers.map { $0! }
        let assembled = DICOMReader.assemble(all)
        var warnings = series.warnings
        for w in assembled.warnings where !warnings.contains(w) { warnings.append(w) }
        let slices = assembled.slices
        guard let first = slices.first else {
            throw ImagingError.inconsistentSeries(seriesUID: series.seriesUID, reason: "no usable slices")
        }
        for s in slices {
            if let i = files.firstIndex(of: s.path), let f = failures[i] { throw ImagingError.unreadable(path: s.path, reason: f) }
        }
        // Put slices in order (already so when the files came from scan).
        let order = slices.map { s in files.firstIndex(of: s.path)! }
        if order != Array(0..<files.count) {
            var sorted = [Float](repeating: 0, count: plane * slices.count)
            for (k, i) in order.enumerated() {
                sorted.replaceSubrange((k * plane)..<((k + 1) * plane), with: voxels[(i * plane)..<((i + 1) * plane)])
            }
            voxels = sorted
        }
        // Geometry.
        let o = first.orientation!
        let rowDir = SIMD3(o[0], o[1], o[2]), colDir = SIMD3(o[3], o[4], o[5])
        let normal = first.normal!
        let spacingXY = first.pixelSpacing ?? {
            warnings.append("no PixelSpacing: assuming 1 mm")
            return SIMD2(1, 1)
        }()
        let (spacingZ, geometryWarnings) = DICOMReader.sliceSpacing(slices, normal: normal)
        warnings += geometryWarnings
        let direction = [rowDir.x, colDir.x, normal.x, rowDir.y, colDir.y, normal.y, rowDir.z, colDir.z, normal.z]
        let provenance = Provenance(patientID: first.patientID, studyUID: first.studyUID, seriesUID: first.seriesUID,
                                    modality: first.modality, seriesDescription: first.seriesDescription,
                                    sourceFiles: slices.map(\.path))
        let volume = Volume(voxels: voxels, width: columns, height: rows, depth: slices.count,
                            spacing: SIMD3(spacingXY.x, spacingXY.y, spacingZ), origin: first.position!,
                            direction: direction, provenance: provenance, warnings: warnings)
        return volume.canonicalized()
    }

    /// z spacing from positions along the normal ((last − first) / (n − 1)), with warnings for
    /// non-uniform spacing, gaps (missing slices) and gantry tilt.
    static func sliceSpacing(_ slices: [DICOMSliceHeader], normal: SIMD3<Double>) -> (Double, [String]) {
        // One slice: SpacingBetweenSlices, else 1 mm (as GDCM / SimpleITK; SliceThickness is the
        // slab's thickness, not a sampling distance).
        guard slices.count > 1 else { return ((slices.first?.spacingBetweenSlices).flatMap { $0 > 0 ? $0 : nil } ?? 1.0, []) }
        var warnings: [String] = []
        let d = slices.map { ($0.position! * normal).sum() }
        let gaps = zip(d.dropFirst(), d).map { $0 - $1 }
        let spacing = (d.last! - d.first!) / Double(slices.count - 1)
        let median = gaps.sorted()[gaps.count / 2]
        let tolerance = max(0.01, 1e-3 * median)
        var missing: [String] = []
        var irregular = false
        for (k, g) in gaps.enumerated() where abs(g - median) > tolerance {
            if g > 1.5 * median {
                let n = Int((g / median).rounded()) - 1
                missing.append(String(format: "%.3g mm between slices %d and %d (~%d missing)", g, k, k + 1, n))
            } else {
                irregular = true
            }
        }
        if !missing.isEmpty { warnings.append("missing slices: gap of " + missing.joined(separator: "; ")) }
        if irregular || !missing.isEmpty {
            warnings.append(String(format: "non-uniform slice spacing: %.4g to %.4g mm (median %.4g); volume uses the mean %.4g mm",
                                   gaps.min()!, gaps.max()!, median, spacing))
        }
        let span = slices.last!.position! - slices.first!.position!
        let along = (span * normal).sum()
        let across = span - along * normal
        let shift = (across * across).sum().squareRoot()
        if shift > 0.01 {
            let angle = atan2(shift, abs(along)) * 180 / .pi
            warnings.append(String(format: "gantry tilt: slice positions drift %.3g mm in-plane over the series (%.3g° from the slice normal); the volume is not resampled", shift, angle))
        }
        return (spacing, warnings)
    }

    /// Decodes one file into `out` (rows*columns floats, HU). Returns false (without writing) when
    /// the file's size differs from rows x columns.
    static func decodeSlice(_ path: String, rows: Int, columns: Int,
                            into out: UnsafeMutableBufferPointer<Float>) throws -> (DICOMSliceHeader, Bool) {
        let file = try DICOMFile(path: path, withPixels: true)
        let h = DICOMSliceHeader(file)
        let info = try file.pixelInfo()
        let photometric = DICOMFile.text(withUnsafeBytes(of: info.photometric) { Array($0.bindMemory(to: CChar.self)) })
        if info.samples_per_pixel != 1 || !(photometric.hasPrefix("MONOCHROME")) {
            throw ImagingError.unsupported(path: path, reason: "colour image (\(photometric), \(info.samples_per_pixel) samples per pixel): CT must be greyscale")
        }
        if info.frames != 1 {
            throw ImagingError.unsupported(path: path, reason: "multi-frame image (\(info.frames) frames) is not supported")
        }
        guard Int(info.rows) == rows && Int(info.columns) == columns else { return (h, false) }
        let count = rows * columns
        let bytes = Int(info.buffer_length)
        let bytesPerPixel = Int(info.bits_allocated) / 8
        guard bytes >= count * bytesPerPixel, [1, 2, 4].contains(bytesPerPixel) else {
            throw ImagingError.unsupported(path: path, reason: "pixel layout \(info.bits_allocated) bits allocated, \(bytes) bytes for \(count) pixels")
        }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 16)
        defer { raw.deallocate() }
        try file.decode(into: raw)
        let signed = info.pixel_representation == 1
        let bitsStored = Int(info.bits_stored)
        var slope = h.slope, intercept = h.intercept
        if photometric == "MONOCHROME1" {
            // v' = (min + max) − v over the stored range, folded into the rescale.
            let k: Double = signed ? -1 : Double((1 << bitsStored) - 1)
            intercept += k * slope
            slope = -slope
        }
        convertToHU(raw, count: count, bytesPerPixel: bytesPerPixel, signed: signed, bitsStored: bitsStored,
                    slope: Float(slope), intercept: Float(intercept), out: out.baseAddress!)
        return (h, true)
    }

    /// Stored values → HU in one pass (masking / sign-extending bits above BitsStored).
    static func convertToHU(_ raw: UnsafeMutableRawBufferPointer, count: Int, bytesPerPixel: Int, signed: Bool,
                            bitsStored: Int, slope: Float, intercept: Float, out: UnsafeMutablePointer<Float>) {
        let shift = bytesPerPixel * 8 - min(max(bitsStored, 1), bytesPerPixel * 8)
        switch (bytesPerPixel, signed) {
        case (2, true):
            let p = raw.baseAddress!.assumingMemoryBound(to: Int16.self)
            if shift == 0 {
                for i in 0..<count { out[i] = Float(p[i]) * slope + intercept }
            } else {
                let s = Int16(shift)
                for i in 0..<count { out[i] = Float((p[i] << s) >> s) * slope + intercept }
            }
        case (2, false):
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
            let mask = UInt16(truncatingIfNeeded: (1 << (16 - shift)) - 1)
            for i in 0..<count { out[i] = Float(p[i] & mask) * slope + intercept }
        case (1, true):
            let p = raw.baseAddress!.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { out[i] = Float(p[i]) * slope + intercept }
        case (1, false):
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { out[i] = Float(p[i]) * slope + intercept }
        case (4, true):
            let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            for i in 0..<count { out[i] = Float(Double(p[i]) * Double(slope) + Double(intercept)) }
        default:
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { out[i] = Float(Double(p[i]) * Double(slope) + Double(intercept)) }
        }
    }
}

// MARK: helpers shared by the readers

/// Every regular, non-hidden file under `root` (or `root` itself), sorted by path.
func listInputFiles(_ root: URL) throws -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir) else {
        throw ImagingError.unreadable(path: root.path, reason: "no such file or folder")
    }
    if !isDir.boolValue { return [root.path] }
    guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                 options: [.skipsHiddenFiles]) else {
        throw ImagingError.unreadable(path: root.path, reason: "cannot list the folder")
    }
    var out: [String] = []
    for case let url as URL in e {
        if (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true { out.append(url.path) }
    }
    return out.sorted()
}

func parallelMap<T: Sendable>(_ items: [String], _ f: @Sendable (String) -> T) -> [T] {
    var results = [T?](repeating: nil, count: items.count)
    results.withUnsafeMutableBufferPointer { r in
        nonisolated(unsafe) let r = r
        imagingParallelFor(items.count) { i in r[i] = f(items[i]) }
    }
    return results.map { $0! }
}

func reason(_ error: Error) -> String {
    switch error {
    case ImagingError.unreadable(_, let r), ImagingError.unsupported(_, let r): return r
    default: return "\(error)"
    }
}

func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

/// Walks the items of encapsulated (compressed) Pixel Data starting at `offset` (just after its
/// element header) and says what is wrong when an item runs past the end of the file; nil when complete.
func encapsulatedPixelDataProblem(_ path: String, offset: Int64, size: Int64) -> String? {
    guard let f = fopen(path, "rb") else { return "cannot open" }
    defer { fclose(f) }
    var pos = offset                                        // first item, after (7FE0,0010) OB 0000 FFFFFFFF
    var items = 0
    var b = [UInt8](repeating: 0, count: 8)
    while pos + 8 <= size {
        fseeko(f, off_t(pos), SEEK_SET)
        guard fread(&b, 1, 8, f) == 8 else { return "read error in pixel data" }
        let group = UInt16(b[0]) | UInt16(b[1]) << 8, element = UInt16(b[2]) | UInt16(b[3]) << 8
        let length = Int64(UInt32(b[4]) | UInt32(b[5]) << 8 | UInt32(b[6]) << 16 | UInt32(b[7]) << 24)
        guard group == 0xFFFE else { return items > 1 ? nil : "pixel data holds no fragment items" }
        if element == 0xE0DD { return items > 1 ? nil : "compressed pixel data has no image fragment" }
        guard element == 0xE000 else { return "unexpected item (FFFE,\(String(element, radix: 16))) in pixel data" }
        pos += 8 + length
        items += 1
        if pos > size { return "compressed pixel data fragment \(items) needs \(pos - size) more bytes than the file has" }
    }
    return items > 1 ? nil : "compressed pixel data has no image fragment"
}

func fmt(_ v: [Double]) -> String { "[" + v.map { String(format: "%.4g", $0) }.joined(separator: ", ") + "]" }
