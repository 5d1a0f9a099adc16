import AxialCore
import AxialImaging
import AxialPipeline
import AxialTensor
import AxialStore
import Foundation

/// A synthetic slice cohort for pretraining tests and the LeCL probe experiment, written in
/// `axial ingest`'s layout: `<folder>/manifest.csv` + `<folder>/<patient>/S1/<slice>_abdomen.png`
/// (8-bit gray), `<folder>/lesions.csv` in Axial's lesion format (patient_id, slice_index, x1, y1,
/// x2, y2) and `<folder>/slice_labels.csv` (path, lesion 0/1).
///
/// Each slice: a soft-tissue ellipse body (random size, position and brightness 70–160) with a
/// darker "lung" pair and noise; a lesion slice also has one or two round blobs 55–80 grey levels
/// brighter than its body (radius 5–10% of the side), so global brightness alone does not tell
/// lesion slices apart. Deterministic for a seed.
public enum PretrainCohort {
    public struct Summary: Sendable {
        public var manifest: URL
        public var lesions: URL
        public var labels: URL
        public var slices: Int
        public var lesionSlices: Int
    }

    public static func write(to folder: URL, patients: Int, slicesPerPatient: Int, size: Int = 64,
                             lesionFraction: Double = 0.4, seed: UInt64 = 1) throws -> Summary {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        var g = SplitMix64(seed: seed)
        var manifest: [[String]] = [], lesionRows: [[String]] = [], labels: [[String]] = []
        var lesionSlices = 0
        for p in 0..<patients {
            let pid = String(format: "P%03d", p + 1)
            let dir = folder.appendingPathComponent(pid).appendingPathComponent("S1")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            for s in 0..<slicesPerPatient {
                let n = Double(size)
                let cx = n * (0.45 + 0.1 * g.nextUniform()), cy = n * (0.45 + 0.1 * g.nextUniform())
                let rx = n * (0.32 + 0.1 * g.nextUniform()), ry = n * (0.26 + 0.08 * g.nextUniform())
                let body = 70 + 90 * g.nextUniform()
                var pixels = [Float](repeating: 8, count: size * size)
                for y in 0..<size {
                    for x in 0..<size {
                        let dx = (Double(x) - cx) / rx, dy = (Double(y) - cy) / ry
                        if dx * dx + dy * dy <= 1 {
                            var v = body
                            for side in [-1.0, 1.0] {   // lungs
                                let lx = (Double(x) - (cx + side * 0.45 * rx)) / (0.3 * rx), ly = (Double(y) - cy) / (0.55 * ry)
                                if lx * lx + ly * ly <= 1 { v = 30 }
                            }
                            pixels[y * size + x] = Float(v)
                        }
                    }
                }
                let isLesion = g.nextUniform() < lesionFraction
                var boxes: [(Double, Double, Double, Double)] = []
                if isLesion {
                    for _ in 0..<(1 + Int(g.nextUniform() * 2)) {
                        let r = n * (0.05 + 0.05 * g.nextUniform())
                        let lx = cx + (g.nextUniform() - 0.5) * 0.5 * rx, ly = cy + (g.nextUniform() - 0.5) * 0.9 * ry
                        for y in 0..<size {
                            for x in 0..<size {
                                let d = ((Double(x) - lx) * (Double(x) - lx) + (Double(y) - ly) * (Double(y) - ly)).squareRoot()
                                if d <= r { pixels[y * size + x] = Float(body + 55 + 25 * (1 - d / r)) }
                            }
                        }
                        boxes.append((max(0, lx - r), max(0, ly - r), min(n - 1, lx + r), min(n - 1, ly + r)))
                    }
                    lesionSlices += 1
                }
                let bytes = pixels.map { v -> UInt8 in UInt8(max(0, min(255, v + Float((g.nextUniform() - 0.5) * 16)))) }
                let name = String(format: "%04d_abdomen.png", s)
                try PNG.write(Image8(width: size, height: size, channels: 1, pixels: bytes), to: dir.appendingPathComponent(name))
                let rel = "\(pid)/S1/\(name)"
                manifest.append([pid, "ST1", "S1", String(s), String(s * 5), "abdomen", rel])
                labels.append([rel, isLesion ? "1" : "0"])
                for b in boxes {
                    lesionRows.append([pid, String(s), String(format: "%.1f", b.0), String(format: "%.1f", b.1),
                                       String(format: "%.1f", b.2), String(format: "%.1f", b.3)])
                }
            }
        }
        let manifestURL = folder.appendingPathComponent("manifest.csv")
        try CSVTable(header: Ingest.manifestHeader, rows: manifest).write(to: manifestURL)
        let lesionURL = folder.appendingPathComponent("lesions.csv")
        try CSVTable(header: ["patient_id", "slice_index", "x1", "y1", "x2", "y2"], rows: lesionRows).write(to: lesionURL)
        let labelURL = folder.appendingPathComponent("slice_labels.csv")
        try CSVTable(header: ["path", "lesion"], rows: labels).write(to: labelURL)
        return Summary(manifest: manifestURL, lesions: lesionURL, labels: labelURL, slices: manifest.count, lesionSlices: lesionSlices)
    }
}
