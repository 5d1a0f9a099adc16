import Foundation

/// A CT display window: `width` W and `level` (centre) L in HU.
///
/// HU → 8-bit uses the plain linear clamp (not DICOM's VOI LUT with its ½-unit offsets):
///
///     v = clamp((hu − (L − W/2)) / W, 0, 1) · 255,   byte = ⌊v + 0.5⌋
///
/// so `L − W/2` and below map to 0, `L + W/2` and above to 255, `L` to 128 (127.5 rounded half up),
/// and NaN to 0. This is what most CT deep-learning pipelines (and `np.clip((hu-lo)/W,0,1)*255`) do.
public struct CTWindow: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    public var width: Double
    public var level: Double

    public init(name: String, width: Double, level: Double) {
        precondition(width > 0, "CTWindow \(name): width must be > 0, got \(width)")
        self.name = name; self.width = width; self.level = level
    }

    /// Lowest HU of the window (maps to 0).
    public var lower: Double { level - width / 2 }
    /// Highest HU of the window (maps to 255).
    public var upper: Double { level + width / 2 }

    public var description: String { "\(name) (W\(CTWindow.format(width))/L\(CTWindow.format(level)))" }

    /// Built-in presets; `Manifests/windows.yaml` lists the same ones (a test keeps them equal).
    public static let presets: [CTWindow] = [
        CTWindow(name: "abdomen", width: 400, level: 40),
        CTWindow(name: "lung", width: 1500, level: -600),
        CTWindow(name: "bone", width: 1800, level: 400),
        CTWindow(name: "brain", width: 80, level: 40),
        CTWindow(name: "mediastinum", width: 350, level: 50),
        CTWindow(name: "liver", width: 150, level: 30),
        CTWindow(name: "soft_tissue", width: 400, level: 50),
        CTWindow(name: "subdural", width: 200, level: 75),
        CTWindow(name: "stroke", width: 40, level: 40),
    ]

    /// Parses a preset name (case-insensitive, from `presets`) or a custom window written
    /// `W400/L40`, `W400L40`, `400/40` (width/level) or `name=W400/L40`.
    public static func parse(_ spec: String, presets: [CTWindow] = CTWindow.presets) throws -> CTWindow {
        let s = spec.trimmingCharacters(in: .whitespaces)
        if let p = presets.first(where: { $0.name.lowercased() == s.lowercased() }) { return p }
        var name: String? = nil
        var body = Substring(s)
        if let eq = s.firstIndex(of: "=") {
            name = String(s[..<eq]).trimmingCharacters(in: .whitespaces)
            body = s[s.index(after: eq)...]
        }
        var t = body.uppercased().replacingOccurrences(of: " ", with: "")
        if t.hasPrefix("W") { t.removeFirst() }
        let parts: [String]
        if let slash = t.firstIndex(of: "/") {
            var level = String(t[t.index(after: slash)...])
            if level.hasPrefix("L") { level.removeFirst() }
            parts = [String(t[..<slash]), level]
        } else if let l = t.firstIndex(of: "L") {
            parts = [String(t[..<l]), String(t[t.index(after: l)...])]
        } else {
            throw WindowError.unknown(spec: spec, known: presets.map(\.name))
        }
        guard let w = Double(parts[0].replacingOccurrences(of: "−", with: "-")),
              let l = Double(parts[1].replacingOccurrences(of: "−", with: "-")) else {
            throw WindowError.invalid(spec: spec, reason: "expected W<width>/L<level>, e.g. W400/L40")
        }
        guard w > 0, w.isFinite, l.isFinite else { throw WindowError.invalid(spec: spec, reason: "width must be a positive number") }
        if let n = name, n.isEmpty { throw WindowError.invalid(spec: spec, reason: "empty name before '='") }
        return CTWindow(name: name ?? "W\(format(w))_L\(format(l))", width: w, level: l)
    }

    /// Parses a comma-separated list (`abdomen,lung,W80/L40`); names must be distinct.
    public static func parseList(_ list: String, presets: [CTWindow] = CTWindow.presets) throws -> [CTWindow] {
        let items = list.split(separator: ",").map { String($0) }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !items.isEmpty else { throw WindowError.invalid(spec: list, reason: "no windows given") }
        let windows = try items.map { try parse($0, presets: presets) }
        var seen = Set<String>()
        for w in windows where !seen.insert(w.name).inserted {
            throw WindowError.invalid(spec: list, reason: "window '\(w.name)' given twice")
        }
        return windows
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(x)
    }

    /// One HU value → byte, by the formula above.
    @inlinable
    public func byte(_ hu: Float) -> UInt8 {
        let scale = Float(255 / width), lo = Float(lower)
        return CTWindow.byte((hu - lo) * scale)
    }

    @inlinable @inline(__always)
    static func byte(_ t: Float) -> UInt8 {
        let a = t > 0 ? t : 0          // NaN → 0
        let b = a < 255 ? a : 255
        return UInt8(b + 0.5)
    }

    /// Windows `count` HU values from `source` into `destination[i * stride + offset]`.
    @inlinable
    public func apply(_ source: UnsafeBufferPointer<Float>, to destination: UnsafeMutableBufferPointer<UInt8>,
                      stride: Int = 1, offset: Int = 0) {
        precondition(destination.count >= (source.count - 1) * stride + offset + 1 || source.isEmpty,
                     "CTWindow.apply: destination \(destination.count) too small for \(source.count)×\(stride)")
        let scale = Float(255 / width), lo = Float(lower)
        if stride == 1 && offset == 0 {
            if let s = source.baseAddress, let d = destination.baseAddress {
                WindowKernels.apply(s, d, source.count, lo: lo, scale: scale)
            }
        } else {
            for i in 0..<source.count { destination[i * stride + offset] = CTWindow.byte((source[i] - lo) * scale) }
        }
    }

    /// A windowed 8-bit gray image of an HU image.
    public func apply(_ hu: [Float], width: Int, height: Int) -> Image8 {
        precondition(hu.count == width * height, "CTWindow.apply: \(hu.count) values for \(width)×\(height)")
        var pixels = [UInt8](repeating: 0, count: hu.count)
        hu.withUnsafeBufferPointer { s in pixels.withUnsafeMutableBufferPointer { apply(s, to: $0) } }
        return Image8(width: width, height: height, channels: 1, pixels: pixels)
    }

    /// An RGB image whose channels are `windows` applied to the same HU image (R = windows[0], …).
    /// With fewer than three windows the last one is repeated; more than three is an error.
    public static func stack(_ hu: [Float], width: Int, height: Int, windows: [CTWindow]) throws -> Image8 {
        precondition(hu.count == width * height, "CTWindow.stack: \(hu.count) values for \(width)×\(height)")
        guard (1...3).contains(windows.count) else {
            throw WindowError.invalid(spec: windows.map(\.name).joined(separator: ","),
                                      reason: "stacked channels need 1 to 3 windows, got \(windows.count)")
        }
        var pixels = [UInt8](repeating: 0, count: hu.count * 3)
        hu.withUnsafeBufferPointer { s in
            pixels.withUnsafeMutableBufferPointer { d in
                for c in 0..<3 { windows[min(c, windows.count - 1)].apply(s, to: d, stride: 3, offset: c) }
            }
        }
        return Image8(width: width, height: height, channels: 3, pixels: pixels)
    }
}

/// How several windows of one slice are written.
public enum ChannelMode: String, Sendable, CaseIterable, Codable {
    /// One gray image per window.
    case separate
    /// One RGB image per slice, the windows as its channels.
    case stacked
}

public enum WindowError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknown(spec: String, known: [String])
    case invalid(spec: String, reason: String)

    public var description: String {
        switch self {
        case .unknown(let s, let k):
            return "unknown window '\(s)': use a preset (\(k.joined(separator: ", "))) or W<width>/L<level>, e.g. W400/L40"
        case .invalid(let s, let r): return "window '\(s)': \(r)"
        }
    }
}
