import Foundation

/// Overlap and boundary metrics of binary masks (row-major, `width`×`height`, nonzero = foreground).
///
/// - Dice = 2|P∩G| / (|P| + |G|), IoU = |P∩G| / |P∪G|; both 1 when P and G are both empty.
/// - HD95 as MONAI `compute_hausdorff_distance(percentile=95)`: the edges of a mask are its pixels
///   removed by a binary erosion (4-connected cross, pixels outside the image count as background);
///   for each edge pixel of P the Euclidean distance (pixels) to the nearest edge pixel of G and vice
///   versa; the 95th percentile (numpy's linear interpolation) of each direction; the larger one.
///   Undefined (nil) when either mask is empty — reported as empty and left out of means.
public enum SegmentMetrics {
    public struct Scores: Sendable, Equatable {
        public var dice: Double
        public var iou: Double
        public var hd95: Double?
    }

    public static func scores(prediction p: [Bool], target g: [Bool], width: Int, height: Int) -> Scores {
        precondition(p.count == width * height && g.count == p.count, "SegmentMetrics: mask sizes differ")
        var inter = 0, np = 0, ng = 0
        for i in p.indices {
            if p[i] { np += 1 }
            if g[i] { ng += 1 }
            if p[i] && g[i] { inter += 1 }
        }
        let union = np + ng - inter
        let dice = np + ng == 0 ? 1 : 2 * Double(inter) / Double(np + ng)
        let iou = union == 0 ? 1 : Double(inter) / Double(union)
        return Scores(dice: dice, iou: iou, hd95: hd95(p, g, width: width, height: height))
    }

    /// Edge pixels (x, y) of a mask.
    static func edges(_ m: [Bool], width w: Int, height h: Int) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for y in 0..<h {
            for x in 0..<w where m[y * w + x] {
                let interior = x > 0 && x < w - 1 && y > 0 && y < h - 1
                    && m[y * w + x - 1] && m[y * w + x + 1] && m[(y - 1) * w + x] && m[(y + 1) * w + x]
                if !interior { out.append((x, y)) }
            }
        }
        return out
    }

    /// numpy.percentile(values, q) with linear interpolation.
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        guard s.count > 1 else { return s.first ?? .nan }
        let pos = q / 100 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    public static func hd95(_ p: [Bool], _ g: [Bool], width: Int, height: Int) -> Double? {
        let ep = edges(p, width: width, height: height), eg = edges(g, width: width, height: height)
        guard !ep.isEmpty, !eg.isEmpty else { return nil }
        func directed(_ a: [(Int, Int)], _ b: [(Int, Int)]) -> Double {
            var d: [Double] = []
            d.reserveCapacity(a.count)
            for (ax, ay) in a {
                var best = Int.max
                for (bx, by) in b {
                    let dx = ax - bx, dy = ay - by
                    best = min(best, dx * dx + dy * dy)
                    if best == 0 { break }
                }
                d.append(Double(best).squareRoot())
            }
            return percentile(d, 95)
        }
        return max(directed(ep, eg), directed(eg, ep))
    }

    /// Mean and 95% normal-approximation interval (mean ± 1.96·sd/√n, sample sd) of the defined values.
    public static func summary(_ values: [Double?]) -> (mean: Double, lo: Double, hi: Double, n: Int) {
        let v = values.compactMap { $0 }.filter(\.isFinite)
        guard !v.isEmpty else { return (.nan, .nan, .nan, 0) }
        let m = v.reduce(0, +) / Double(v.count)
        guard v.count > 1 else { return (m, m, m, 1) }
        let sd = (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
        let half = 1.96 * sd / Double(v.count).squareRoot()
        return (m, m - half, m + half, v.count)
    }
}
