import AxialCore
import Foundation

/// A dependency-free SVG line plot: axes with "nice" ticks, axis labels, a title, a legend, optional
/// diagonal reference line and vertical markers. Used for ROC / PR curves, attention over slices and
/// (later) loss curves.
///
/// ```swift
/// var plot = SVGPlot(title: "ROC — liver", xLabel: "False positive rate", yLabel: "True positive rate")
/// plot.xRange = 0...1; plot.yRange = 0...1; plot.diagonal = true
/// plot.add(x: roc.fpr, y: roc.tpr, label: "AUROC 0.91")
/// try plot.write(to: url)      // AtomicFile: never a partial SVG under its final name
/// ```
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var x: [Double]
        public var y: [Double]
        public var label: String
        public var color: String?
        public var dashed: Bool
        /// Draw as a right-continuous step (PR curves); otherwise straight segments.
        public var step: Bool
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var width = 480.0
    public var height = 400.0
    /// Axis ranges; nil = the data's range (padded to nice ticks).
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    /// Dashed y = x line (ROC chance level).
    public var diagonal = false
    /// Vertical dotted markers (e.g. informative slices), with an optional label each.
    public var markers: [(x: Double, label: String)] = []
    public private(set) var series: [Series] = []

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
    }

    public mutating func add(x: [Double], y: [Double], label: String, color: String? = nil, dashed: Bool = false, step: Bool = false) {
        precondition(x.count == y.count, "series '\(label)': x has \(x.count) values, y has \(y.count)")
        series.append(Series(x: x, y: y, label: label, color: color, dashed: dashed, step: step))
    }

    /// Tick values: 1, 2 or 5 × 10ᵏ spacing, about `target` ticks across the range.
    public static func niceTicks(_ range: ClosedRange<Double>, target: Int = 5) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / Double(max(target, 1))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var ticks: [Double] = []
        var t = ceil(range.lowerBound / step - 1e-9) * step
        while t <= range.upperBound + step * 1e-9 { ticks.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return ticks
    }

    static func format(_ v: Double, step: Double) -> String {
        let decimals = max(0, min(6, Int(-floor(log10(step)))))
        return String(format: "%.\(decimals)f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func dataRange(_ values: [Double]) -> ClosedRange<Double> {
        let v = values.filter(\.isFinite)
        guard let lo = v.min(), let hi = v.max() else { return 0...1 }
        if lo == hi { return (lo - 0.5)...(hi + 0.5) }
        let ticks = Self.niceTicks(lo...hi)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : (hi - lo)
        return min(lo, floor(lo / step) * step)...max(hi, ceil(hi / step) * step)
    }

    /// The SVG document.
    /// Writes `svg` to `url` through `AtomicFile` (temporary name + rename).
    public func write(to url: URL) throws { try AtomicFile.write(Data(svg.utf8), to: url) }

    public var svg: String {
        let left = 64.0, right = 16.0, top = 34.0, bottom = 50.0
        let pw = width - left - right, ph = height - top - bottom
        let xr = xRange ?? dataRange(series.flatMap(\.x) + markers.map(\.x))
        let yr = yRange ?? dataRange(series.flatMap(\.y))
        func px(_ x: Double) -> Double { left + (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * ph }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(left + pw / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        // Grid and ticks.
        let xt = Self.niceTicks(xr), yt = Self.niceTicks(yr)
        let xs = xt.count > 1 ? xt[1] - xt[0] : 1, ys = yt.count > 1 ? yt[1] - yt[0] : 1
        for t in xt where xr.contains(t) {
            out += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 15))\" text-anchor=\"middle\">\(Self.format(t, step: xs))</text>\n"
        }
        for t in yt where yr.contains(t) {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(t)))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.format(t, step: ys))</text>\n"
        }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"black\"/>\n"
        out += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        out += "<clipPath id=\"plot\"><rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\"/></clipPath>\n"
        if diagonal {
            let lo = max(xr.lowerBound, yr.lowerBound), hi = min(xr.upperBound, yr.upperBound)
            out += "<line x1=\"\(f(px(lo)))\" y1=\"\(f(py(lo)))\" x2=\"\(f(px(hi)))\" y2=\"\(f(py(hi)))\" stroke=\"#999\" stroke-dasharray=\"4 4\" clip-path=\"url(#plot)\"/>\n"
        }
        for m in markers {
            out += "<line x1=\"\(f(px(m.x)))\" y1=\"\(f(top))\" x2=\"\(f(px(m.x)))\" y2=\"\(f(top + ph))\" stroke=\"#d62728\" stroke-dasharray=\"2 3\" clip-path=\"url(#plot)\"><title>\(Self.escape(m.label))</title></line>\n"
        }
        for (k, s) in series.enumerated() {
            let color = s.color ?? Self.palette[k % Self.palette.count]
            var pts: [String] = []
            for i in s.x.indices where s.x[i].isFinite && s.y[i].isFinite {
                if s.step, let prevY = pts.isEmpty ? nil : s.y[i - 1] as Double?, prevY.isFinite {
                    pts.append("\(f(px(s.x[i]))),\(f(py(prevY)))")
                }
                pts.append("\(f(px(s.x[i]))),\(f(py(s.y[i])))")
            }
            let dash = s.dashed ? " stroke-dasharray=\"6 3\"" : ""
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"\(dash) clip-path=\"url(#plot)\" points=\"\(pts.joined(separator: " "))\"/>\n"
        }
        // Legend (top-right inside the plot, or bottom-right for ROC-like plots with a diagonal).
        let labeled = series.enumerated().filter { !$0.element.label.isEmpty }
        if !labeled.isEmpty {
            let lh = 15.0
            let lw = min(pw - 8, 24 + 6.2 * Double(labeled.map(\.element.label.count).max()!))
            let lx = left + pw - lw - 6
            let ly = diagonal ? top + ph - lh * Double(labeled.count) - 10 : top + 6
            out += "<rect x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"\(f(lw))\" height=\"\(f(lh * Double(labeled.count) + 4))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
            for (row, (k, s)) in labeled.enumerated() {
                let y = ly + 11 + lh * Double(row)
                let color = s.color ?? Self.palette[k % Self.palette.count]
                let dash = s.dashed ? " stroke-dasharray=\"6 3\"" : ""
                out += "<line x1=\"\(f(lx + 4))\" y1=\"\(f(y - 4))\" x2=\"\(f(lx + 20))\" y2=\"\(f(y - 4))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>"
                out += "<text x=\"\(f(lx + 24))\" y=\"\(f(y))\">\(Self.escape(s.label))</text>\n"
            }
        }
        out += "</svg>\n"
        return out
    }
}
