import AxialImaging
import AxialModels
import AxialStore
import AxialTensor
import Foundation

// BMAD / MVFA data layout (REFERENCE.md §2):
//   <Obj>_AD/{train?, valid, test}/{good, Ungood}/img/*.png
//   <Obj>_AD/<split>/Ungood/anomaly_mask/<same file name>.png      (segmentation datasets only)
// Images are read as RGB (gray PNGs repeated), resized to the model's S×S (bicubic, as MVFA's
// transforms.Resize) and normalised with CLIP's mean/std (MVFA feeds [0, 1] images [Q]). Masks are
// read as gray, > 127 is anomalous; for training they are resized to S×S (nearest).

public enum AnomalyDataError: Error, CustomStringConvertible, Equatable {
    case missingSplit(root: String, split: String)
    case emptySplit(path: String)
    case missingMask(image: String, mask: String)
    case maskSize(mask: String, maskWH: (Int, Int), imageWH: (Int, Int))
    case badSeedFile(path: String, reason: String)
    case notEnough(what: String, have: Int, need: Int)

    public static func == (a: Self, b: Self) -> Bool { a.description == b.description }

    public var description: String {
        switch self {
        case let .missingSplit(root, split): return "\(root): no '\(split)/' split (BMAD layout <Obj>_AD/{train,valid,test}/{good,Ungood}/img/*.png)"
        case let .emptySplit(path): return "\(path): no PNG images under good/img or Ungood/img"
        case let .missingMask(image, mask): return "\(image): the split has Ungood/anomaly_mask/ but no mask \(mask)"
        case let .maskSize(mask, m, i): return "\(mask): mask is \(m.0)×\(m.1) but its image is \(i.0)×\(i.1) (width×height)"
        case let .badSeedFile(path, reason): return "\(path): \(reason)"
        case let .notEnough(what, have, need): return "\(what): \(have) available, \(need) needed"
        }
    }
}

/// One image of a split.
public struct AnomalyImage: Sendable, Equatable {
    /// `<split>/<good|Ungood>/<file>` (unique in a dataset; the scores.csv `image` column).
    public var id: String
    public var path: URL
    /// 0 good, 1 Ungood.
    public var label: Int
    public var maskPath: URL?
    /// A dataset name for HDF5 / overlay files: `<good|Ungood>-<file>` (no "/").
    public var storeName: String { id.split(separator: "/").dropFirst().joined(separator: "-") }
}

public enum AnomalyData {
    public static let classes = [("good", 0), ("Ungood", 1)]

    /// The images of `split` under `root`, sorted by file name per class (good first). Masks are
    /// attached when `<split>/Ungood/anomaly_mask/` exists (then every Ungood image needs one).
    public static func split(_ root: URL, _ split: String) throws -> [AnomalyImage] {
        let dir = root.appendingPathComponent(split)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw AnomalyDataError.missingSplit(root: root.path, split: split)
        }
        var out: [AnomalyImage] = []
        for (cls, label) in classes {
            let imgDir = dir.appendingPathComponent(cls).appendingPathComponent("img")
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: imgDir.path)) ?? [])
                .filter { $0.lowercased().hasSuffix(".png") }.sorted()
            let maskDir = dir.appendingPathComponent(cls).appendingPathComponent("anomaly_mask")
            let hasMasks = label == 1 && FileManager.default.fileExists(atPath: maskDir.path)
            for n in names {
                var mask: URL? = nil
                if hasMasks {
                    let m = maskDir.appendingPathComponent(n)
                    guard FileManager.default.fileExists(atPath: m.path) else {
                        throw AnomalyDataError.missingMask(image: imgDir.appendingPathComponent(n).path, mask: m.path)
                    }
                    mask = m
                }
                out.append(AnomalyImage(id: "\(split)/\(cls)/\(n)", path: imgDir.appendingPathComponent(n), label: label, maskPath: mask))
            }
        }
        if out.isEmpty { throw AnomalyDataError.emptySplit(path: dir.path) }
        return out
    }

    /// True when the split has masks (segmentation dataset): some Ungood image carries one.
    public static func hasMasks(_ images: [AnomalyImage]) -> Bool { images.contains { $0.maskPath != nil } }

    /// MVFA's seed files (`dataset/fewshot_seed/<Obj>/<k>-shot.txt`): line `a-<i>: f1 f2 …` (abnormal)
    /// and `n-<i>: …` (normal); returns the first `k` names of each for iteration `i`.
    public static func seedFile(_ url: URL, iterate: Int, shots k: Int) throws -> (normal: [String], abnormal: [String]) {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw AnomalyDataError.badSeedFile(path: url.path, reason: "cannot read")
        }
        var found: [String: [String]] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ").map(String.init)
            if let tag = parts.first, tag == "a-\(iterate):" || tag == "n-\(iterate):" { found[String(tag.prefix(1))] = Array(parts.dropFirst()) }
        }
        guard let a = found["a"], let n = found["n"] else {
            throw AnomalyDataError.badSeedFile(path: url.path, reason: "no 'a-\(iterate):' and 'n-\(iterate):' lines")
        }
        guard a.count >= k, n.count >= k else {
            throw AnomalyDataError.badSeedFile(path: url.path, reason: "iteration \(iterate) lists \(n.count) normal / \(a.count) abnormal names, \(k) needed")
        }
        return (Array(n.prefix(k)), Array(a.prefix(k)))
    }

    /// The RGB image [1, 3, S, S] (bicubic resize, CLIP mean/std) and its source (width, height).
    public static func loadImage(_ url: URL, size: Int, mean: [Float] = EncoderRegistry.clipMean,
                                 std: [Float] = EncoderRegistry.clipStd) throws -> (Tensor, width: Int, height: Int) {
        let img = try PNG.read(url, channels: 3)
        let W = img.width, H = img.height
        var planes = [Float](repeating: 0, count: 3 * H * W)
        for y in 0..<H { for x in 0..<W { for c in 0..<3 { planes[(c * H + y) * W + x] = Float(img.pixels[(y * W + x) * 3 + c]) / 255 } } }
        var t = Tensor(shape: [1, 3, H, W], scalars: planes)
        if H != size || W != size { t = interpolate(t, size: Size2D(size, size), mode: .bicubic).clamp(min: 0, max: 1) }
        let m = Tensor(shape: [1, 3, 1, 1], scalars: mean), s = Tensor(shape: [1, 3, 1, 1], scalars: std)
        return ((t - m) / s, W, H)
    }

    /// The binary mask (> 127) at its own resolution, [H·W] row-major, checked against the image size.
    public static func loadMask(_ url: URL, width: Int, height: Int) throws -> [Float] {
        let m = try PNG.read(url, channels: 1)
        guard m.width == width, m.height == height else {
            throw AnomalyDataError.maskSize(mask: url.path, maskWH: (m.width, m.height), imageWH: (width, height))
        }
        return m.pixels.map { $0 > 127 ? 1 : 0 }
    }

    /// A mask [H·W] resized to S×S (nearest) as [1, S, S].
    public static func resizeMask(_ mask: [Float], width: Int, height: Int, size: Int) -> Tensor {
        let t = Tensor(shape: [1, 1, height, width], scalars: mask)
        let r = (height == size && width == size) ? t : interpolate(t, size: Size2D(size, size), mode: .nearest)
        return r.reshaped([1, size, size])
    }
}
