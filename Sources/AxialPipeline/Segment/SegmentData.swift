import AxialImaging
import AxialModels
import AxialNN
import AxialTensor
import Foundation

// Text-prompted segmentation data: 2D folders of images and masks plus a medvlsm prompt file.
//
// Prompt file (medvlsm / VLSM-Adapter): a JSON array of
//   {"img_name": "a.png", "mask_name": "a.png", "bbox": [...], "cat": "polyp",
//    "prompts": {"p0": "", "p1": "polyp", "p2": "...", ..., "p9": ["...", "..."]}}
// (a prompt may be a string or a list of strings; `bbox` and extra keys are ignored).
// Training draws one prompt per sample and epoch among p1…p9 (not the empty p0, as the reference's
// "random" prompt type), then one string if it is a list; test / validation use one chosen key.
// Images: PNG (gray or RGB, replicated to 3 channels), resized bilinearly (area when shrinking) to
// the model's input size and normalised with ImageNet mean/std (CLIPSeg's processor; CRIS: CLIP's); masks: PNG,
// foreground = value > 0, resized nearest. Metrics are computed at the model's input size.

/// Errors of the segment stage; each names the file (or field) at fault.
public enum SegmentError: Error, CustomStringConvertible {
    case badPromptFile(path: String, reason: String)
    case missingFile(path: String, referencedBy: String)
    case sizeMismatch(image: String, mask: String, imageSize: (Int, Int), maskSize: (Int, Int))
    case noPrompt(file: String, image: String, key: String)
    case badOption(String)
    case badModelFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badPromptFile(p, r): return "prompt file \(p): \(r)"
        case let .missingFile(p, by): return "\(p): no such file (named in \(by))"
        case let .sizeMismatch(i, m, a, b):
            return "mask \(m) is \(b.0)×\(b.1) but its image \(i) is \(a.0)×\(a.1): they must be the same size"
        case let .noPrompt(f, i, k): return "prompt file \(f): entry \(i) has no prompt '\(k)'"
        case let .badOption(s): return s
        case let .badModelFile(p, r): return "model file \(p): \(r)"
        }
    }
}

/// One medvlsm prompt-file entry.
public struct PromptEntry: Sendable, Equatable {
    public var imageName: String
    public var maskName: String
    public var category: String
    /// Prompt key (p0…p9) → the strings it may take.
    public var prompts: [String: [String]]

    public init(imageName: String, maskName: String, category: String, prompts: [String: [String]]) {
        self.imageName = imageName; self.maskName = maskName; self.category = category; self.prompts = prompts
    }

    /// The keys p1… in order that hold a non-empty prompt (the random draw's choices).
    public var trainingKeys: [String] {
        prompts.keys.filter { $0 != "p0" && !(prompts[$0]?.allSatisfy(\.isEmpty) ?? true) }
            .sorted { (Int($0.dropFirst()) ?? 0, $0) < (Int($1.dropFirst()) ?? 0, $1) }
    }

    /// Reads a prompt file (errors name the file and the entry).
    public static func load(_ url: URL) throws -> [PromptEntry] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SegmentError.badPromptFile(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw SegmentError.badPromptFile(path: url.path, reason: "not JSON: \(error.localizedDescription)")
        }
        guard let array = json as? [[String: Any]] else {
            throw SegmentError.badPromptFile(path: url.path, reason: "expected a JSON array of objects")
        }
        return try array.enumerated().map { i, o in
            guard let img = o["img_name"] as? String, !img.isEmpty else {
                throw SegmentError.badPromptFile(path: url.path, reason: "entry \(i) has no string 'img_name'")
            }
            guard let mask = o["mask_name"] as? String, !mask.isEmpty else {
                throw SegmentError.badPromptFile(path: url.path, reason: "entry \(i) (\(img)) has no string 'mask_name'")
            }
            guard let p = o["prompts"] as? [String: Any] else {
                throw SegmentError.badPromptFile(path: url.path, reason: "entry \(i) (\(img)) has no object 'prompts'")
            }
            var prompts: [String: [String]] = [:]
            for (k, v) in p {
                if let s = v as? String { prompts[k] = [s] }
                else if let l = v as? [String] { prompts[k] = l }
                else { throw SegmentError.badPromptFile(path: url.path, reason: "entry \(i) (\(img)): prompt '\(k)' is neither a string nor a list of strings") }
            }
            return PromptEntry(imageName: img, maskName: mask, category: (o["cat"] as? String) ?? "", prompts: prompts)
        }
    }
}

/// A loaded 2D set: images normalised [3, S, S], masks {0, 1} [S, S].
public struct SegmentDataset: @unchecked Sendable {
    public var entries: [PromptEntry]
    public var images: [Tensor]
    public var masks: [Tensor]
    public let size: Int

    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]

    /// Per-channel pixel normalisation (x/255 − mean) / std.
    public struct Normalization: Sendable, Equatable {
        public var mean: [Float], std: [Float]
        public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }
        /// ImageNet's (CLIPSeg's processor).
        public static let imageNet = Normalization(mean: SegmentDataset.mean, std: SegmentDataset.std)
        /// CLIP's (medvlsm's CRIS / BiomedCLIP configs).
        public static let clip = Normalization(mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711])
    }

    public var count: Int { entries.count }

    /// Reads every entry's image and mask (errors name the file: missing, unreadable, size mismatch).
    public static func load(prompts promptFile: URL, images: URL, masks: URL, size: Int,
                            normalization: Normalization = .imageNet) throws -> SegmentDataset {
        let entries = try PromptEntry.load(promptFile)
        guard !entries.isEmpty else { throw SegmentError.badPromptFile(path: promptFile.path, reason: "no entries") }
        var imgs: [Tensor] = [], msks: [Tensor] = []
        let fm = FileManager.default
        for e in entries {
            let iu = images.appendingPathComponent(e.imageName), mu = masks.appendingPathComponent(e.maskName)
            guard fm.fileExists(atPath: iu.path) else { throw SegmentError.missingFile(path: iu.path, referencedBy: promptFile.path) }
            guard fm.fileExists(atPath: mu.path) else { throw SegmentError.missingFile(path: mu.path, referencedBy: promptFile.path) }
            let image = try PNG.read(iu, channels: 3)
            let mask = try PNG.read(mu, channels: 1)
            guard image.width == mask.width && image.height == mask.height else {
                throw SegmentError.sizeMismatch(image: iu.path, mask: mu.path, imageSize: (image.width, image.height),
                                                maskSize: (mask.width, mask.height))
            }
            imgs.append(Self.pixels(image, size: size, normalization: normalization))
            msks.append(Self.mask(mask, size: size))
        }
        return SegmentDataset(entries: entries, images: imgs, masks: msks, size: size)
    }

    /// An RGB (or gray) 8-bit image → normalised [3, S, S].
    public static func pixels(_ image: Image8, size: Int, normalization n: Normalization = .imageNet) -> Tensor {
        let w = image.width, h = image.height, c = image.channels
        let r = Resampler(inWidth: w, inHeight: h, outWidth: size, outHeight: size)
        var out = [Float](repeating: 0, count: 3 * size * size)
        for ch in 0..<3 {
            let src = (0..<(w * h)).map { Float(image.pixels[$0 * c + (c == 3 ? ch : 0)]) / 255 }
            let plane = (w == size && h == size) ? src : r(src)
            for i in 0..<(size * size) { out[ch * size * size + i] = (plane[i] - n.mean[ch]) / n.std[ch] }
        }
        return Tensor(shape: [3, size, size], scalars: out)
    }

    /// A gray 8-bit mask → {0, 1} [S, S] (nearest: source pixel ⌊(o + ½)·in/out⌋).
    public static func mask(_ mask: Image8, size: Int) -> Tensor {
        let w = mask.width, h = mask.height
        var out = [Float](repeating: 0, count: size * size)
        for y in 0..<size {
            let sy = min(Int((Double(y) + 0.5) * Double(h) / Double(size)), h - 1)
            for x in 0..<size {
                let sx = min(Int((Double(x) + 0.5) * Double(w) / Double(size)), w - 1)
                out[y * size + x] = mask.pixels[(sy * w + sx) * mask.channels] > 0 ? 1 : 0
            }
        }
        return Tensor(shape: [size, size], scalars: out)
    }

    /// The subset at `indices`.
    public func subset(_ indices: [Int]) -> SegmentDataset {
        SegmentDataset(entries: indices.map { entries[$0] }, images: indices.map { images[$0] }, masks: indices.map { masks[$0] }, size: size)
    }

    /// Training prompt for entry `i`: a key among p1…p9, then a string if it is a list.
    public func randomPrompt(_ i: Int, generator g: inout RandomGenerator) -> String {
        let e = entries[i]
        let keys = e.trainingKeys
        guard !keys.isEmpty else { return e.prompts["p0"]?.first ?? "" }
        let choices = e.prompts[keys[g.int(below: keys.count)]]!
        return choices.count == 1 ? choices[0] : choices[g.int(below: choices.count)]
    }

    /// The test prompt: key `key` (its first string when a list).
    public func prompt(_ i: Int, key: String, file: String) throws -> String {
        guard let p = entries[i].prompts[key], let s = p.first else {
            throw SegmentError.noPrompt(file: file, image: entries[i].imageName, key: key)
        }
        return s
    }
}
