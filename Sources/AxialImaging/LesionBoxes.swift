import AxialCore
import Foundation

/// A lesion bounding box in pixel coordinates of a slice: `x1 < x2` (left → right),
/// `y1 < y2` (top → bottom). `referenceWidth/Height`: the size of the image the box was drawn on
/// (nil: the slice as it is); a slice that ingest resized gets the box scaled by `scaled(...)`.
public struct LesionBox: Sendable, Equatable, CustomStringConvertible {
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public var referenceWidth: Int?, referenceHeight: Int?

    public init(x1: Double, y1: Double, x2: Double, y2: Double, referenceWidth: Int? = nil, referenceHeight: Int? = nil) {
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
        self.referenceWidth = referenceWidth; self.referenceHeight = referenceHeight
    }

    /// The box in the pixel grid of a `width × height` image (scaled by width/referenceWidth and
    /// height/referenceHeight when the reference size is known and differs).
    public func scaled(toWidth width: Int, height: Int) -> LesionBox {
        let sx = referenceWidth.map { Double(width) / Double($0) } ?? 1
        let sy = referenceHeight.map { Double(height) / Double($0) } ?? 1
        return LesionBox(x1: x1 * sx, y1: y1 * sy, x2: x2 * sx, y2: y2 * sy, referenceWidth: width, referenceHeight: height)
    }

    public var description: String { "(\(x1), \(y1), \(x2), \(y2))" }
}

/// A slice as ingest's `manifest.csv` names it: patient + slice index (+ series, when known).
public struct SliceKey: Hashable, Sendable, CustomStringConvertible {
    public var patientID: String
    public var sliceIndex: Int
    public var seriesUID: String?
    public init(patientID: String, sliceIndex: Int, seriesUID: String? = nil) {
        self.patientID = patientID; self.sliceIndex = sliceIndex; self.seriesUID = seriesUID
    }
    public var description: String { "\(patientID) slice \(sliceIndex)" + (seriesUID.map { " series \($0)" } ?? "") }
}

public enum LesionError: Error, CustomStringConvertible, Sendable {
    case unreadable(path: String, reason: String)
    case missingColumns(path: String, columns: [String], found: [String])
    case malformedRow(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read lesion table: \(r)"
        case .missingColumns(let p, let c, let f):
            return "\(p): not a lesion table: missing column(s) \(c.joined(separator: ", ")) (header: \(f.joined(separator: ", ")); expected DeepLesion DL_info.csv or Axial's patient_id,slice_index,x1,y1,x2,y2)"
        case .malformedRow(let p, let l, let r): return "\(p):\(l): \(r)"
        }
    }
}

/// Lesion boxes from either of two CSV formats, looked up by slice (manifest key) or image path.
///
/// **DeepLesion `DL_info.csv`** (NIH; one row per lesion), the columns used:
/// - `File_name` — `PPPPPP_SS_RR_KKK.png`: patient, study, series index and key-slice file number;
///   DeepLesion's PNG folders are `PPPPPP_SS_RR/KKK.png`, so an image path matches a row when
///   `<folder>_<file>` equals `File_name` (CLEAR's rule) or its file name does;
/// - `Key_slice_index` — the key slice's number (the `KKK` of the file name);
/// - `Bounding_boxes` — `"x1, y1, x2, y2"` in pixels of the original slice (floats);
/// - `Image_size` — `"width, height"` of the original slice (usually `512, 512`); boxes are scaled
///   from it when the slice at hand has another size. Other columns (`Patient_index`,
///   `Study_index`, `Series_ID`, `Measurement_coordinates`, `Spacing_mm_px_`, …) are ignored.
///   Each row also gets the manifest key (patient `PPPPPP`, slice `Key_slice_index`, series
///   `SS_RR`).
///
/// **Axial's lesion CSV** (one row per lesion): `patient_id, slice_index, x1, y1, x2, y2`
/// (required; `slice_index` as in ingest's `manifest.csv`, counting from 0; boxes in pixels of the
/// ingested PNG) and optional `series_uid` (without it the box applies to that slice index in every
/// series of the patient), `image_width, image_height` (the size the box was drawn on, for
/// scaling), `path` (an image path matched like DeepLesion's `File_name`). Other columns are ignored.
///
/// A malformed row (missing field, non-numeric coordinate, `x2 ≤ x1`, negative slice) is an error
/// naming the file and line. Slices or paths without a box simply get none: lookups never fail.
public struct LesionTable: Sendable {
    public private(set) var byKey: [SliceKey: [LesionBox]] = [:]
    public private(set) var byName: [String: [LesionBox]] = [:]
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func add(_ box: LesionBox, key: SliceKey?, name: String? = nil) {
        if let key { byKey[key, default: []].append(box) }
        if let name { byName[name, default: []].append(box) }
        count += 1
    }

    /// Boxes of a manifest slice (rows with this series, plus rows without a series).
    public func boxes(patientID: String, sliceIndex: Int, seriesUID: String? = nil) -> [LesionBox] {
        var out = byKey[SliceKey(patientID: patientID, sliceIndex: sliceIndex)] ?? []
        if let seriesUID { out += byKey[SliceKey(patientID: patientID, sliceIndex: sliceIndex, seriesUID: seriesUID)] ?? [] }
        return out
    }

    /// Boxes of an image path: `<parent folder>_<file name>` (DeepLesion layout), else the file name.
    public func boxes(forPath path: String) -> [LesionBox] {
        let url = URL(fileURLWithPath: path)
        let file = url.lastPathComponent, folder = url.deletingLastPathComponent().lastPathComponent
        if let b = byName["\(folder)_\(file)"] { return b }
        return byName[file] ?? []
    }

    /// Reads either format (chosen by the header).
    public static func read(_ url: URL) throws -> LesionTable {
        let rows = try LesionTable.readRows(url)
        guard let header = rows.first else { throw LesionError.unreadable(path: url.path, reason: "empty file") }
        if header.fields.contains("File_name") || header.fields.contains("Bounding_boxes") {
            return try deepLesion(rows, path: url.path)
        }
        return try axial(rows, path: url.path)
    }

    static func columns(_ header: [String], _ names: [String], path: String) throws -> [Int] {
        let missing = names.filter { !header.contains($0) }
        guard missing.isEmpty else { throw LesionError.missingColumns(path: path, columns: missing, found: header) }
        return names.map { header.firstIndex(of: $0)! }
    }

    static func numbers(_ text: String, count: Int, field: String, path: String, line: Int) throws -> [Double] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Double($0) }
        guard parts.count == count, values.count == count, values.allSatisfy(\.isFinite) else {
            throw LesionError.malformedRow(path: path, line: line, reason: "\(field) must be \(count) comma-separated numbers, got \"\(text)\"")
        }
        return values
    }

    static func makeBox(_ v: [Double], reference: (Int, Int)?, path: String, line: Int) throws -> LesionBox {
        guard v[2] > v[0], v[3] > v[1] else {
            throw LesionError.malformedRow(path: path, line: line, reason: "box (\(v[0]), \(v[1]), \(v[2]), \(v[3])) needs x1 < x2 and y1 < y2")
        }
        return LesionBox(x1: v[0], y1: v[1], x2: v[2], y2: v[3], referenceWidth: reference?.0, referenceHeight: reference?.1)
    }

    static func deepLesion(_ rows: [CSV.Record], path: String) throws -> LesionTable {
        let header = rows[0].fields
        let c = try columns(header, ["File_name", "Bounding_boxes"], path: path)
        let keyIndex = header.firstIndex(of: "Key_slice_index"), sizeIndex = header.firstIndex(of: "Image_size")
        var table = LesionTable()
        for row in rows.dropFirst() {
            let f = row.fields
            if f.count == 1 && f[0].isEmpty { continue }
            guard f.count == header.count else {
                throw LesionError.malformedRow(path: path, line: row.line, reason: "\(f.count) fields, header has \(header.count)")
            }
            let name = f[c[0]].trimmingCharacters(in: .whitespaces)
            guard name.hasSuffix(".png"), !name.isEmpty else {
                throw LesionError.malformedRow(path: path, line: row.line, reason: "File_name \"\(name)\" is not PPPPPP_SS_RR_KKK.png")
            }
            var reference: (Int, Int)? = nil
            if let s = sizeIndex, !f[s].trimmingCharacters(in: .whitespaces).isEmpty {
                let v = try numbers(f[s], count: 2, field: "Image_size", path: path, line: row.line)
                // Whole pixel counts of a real slice (DICOM Rows / Columns are 16-bit): a huge or fractional
                // value is refused here, before it is converted to Int (FuzzCSV's find: 5.4e80 trapped).
                guard v.allSatisfy({ $0 >= 1 && $0 <= 65_535 && $0 == $0.rounded() }) else {
                    throw LesionError.malformedRow(path: path, line: row.line, reason: "Image_size \"\(f[s])\" must be two whole numbers from 1 to 65535")
                }
                reference = (Int(v[0]), Int(v[1]))
            }
            let box = try makeBox(try numbers(f[c[1]], count: 4, field: "Bounding_boxes", path: path, line: row.line),
                                  reference: reference, path: path, line: row.line)
            // Manifest key from the file name (patient, study_series, slice number).
            let parts = name.dropLast(4).split(separator: "_").map(String.init)
            var key: SliceKey? = nil
            if parts.count == 4, let slice = Int(parts[3]) {
                let index = keyIndex.flatMap { Int(f[$0].trimmingCharacters(in: .whitespaces)) } ?? slice
                key = SliceKey(patientID: parts[0], sliceIndex: index, seriesUID: "\(parts[1])_\(parts[2])")
            }
            table.add(box, key: key, name: name)
        }
        return table
    }

    static func axial(_ rows: [CSV.Record], path: String) throws -> LesionTable {
        let header = rows[0].fields
        let c = try columns(header, ["patient_id", "slice_index", "x1", "y1", "x2", "y2"], path: path)
        let series = header.firstIndex(of: "series_uid"), pathIndex = header.firstIndex(of: "path")
        let widthIndex = header.firstIndex(of: "image_width"), heightIndex = header.firstIndex(of: "image_height")
        var table = LesionTable()
        for row in rows.dropFirst() {
            let f = row.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            if f.count == 1 && f[0].isEmpty { continue }
            guard f.count == header.count else {
                throw LesionError.malformedRow(path: path, line: row.line, reason: "\(f.count) fields, header has \(header.count)")
            }
            guard !f[c[0]].isEmpty else { throw LesionError.malformedRow(path: path, line: row.line, reason: "empty patient_id") }
            guard let slice = Int(f[c[1]]), slice >= 0 else {
                throw LesionError.malformedRow(path: path, line: row.line, reason: "slice_index \"\(f[c[1]])\" is not an integer ≥ 0")
            }
            var v = [Double]()
            for (k, name) in ["x1", "y1", "x2", "y2"].enumerated() {
                guard let x = Double(f[c[2 + k]]), x.isFinite else {
                    throw LesionError.malformedRow(path: path, line: row.line, reason: "\(name) \"\(f[c[2 + k]])\" is not a number")
                }
                v.append(x)
            }
            var reference: (Int, Int)? = nil
            if let w = widthIndex, let h = heightIndex, !f[w].isEmpty || !f[h].isEmpty {
                guard let width = Int(f[w]), let height = Int(f[h]), width > 0, height > 0 else {
                    throw LesionError.malformedRow(path: path, line: row.line, reason: "image_width/image_height \"\(f[w])\", \"\(f[h])\" must be positive integers")
                }
                reference = (width, height)
            }
            let box = try makeBox(v, reference: reference, path: path, line: row.line)
            let s = series.map { f[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            let name = pathIndex.map { f[$0] }.flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0).lastPathComponent }
            table.add(box, key: SliceKey(patientID: f[c[0]], sliceIndex: slice, seriesUID: s), name: name)
        }
        return table
    }
}

extension LesionTable {
    /// The records of a lesion CSV (RFC 4180, `AxialCore.CSV`) with their line numbers; read and
    /// parse failures become `LesionError`s naming the file.
    static func readRows(_ url: URL) throws -> [CSV.Record] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw LesionError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LesionError.unreadable(path: url.path, reason: "not UTF-8 text")
        }
        do { return try CSV.records(text, path: url.path) } catch FileError.csv(_, let line, let reason) {
            throw LesionError.malformedRow(path: url.path, line: line, reason: reason)
        }
    }
}
