import AxialTensor
import Foundation

// Deterministic image transforms that reproduce torchvision on PIL images bit for bit:
// Resize (PIL's antialiased bilinear / bicubic on uint8), CenterCrop, crop with zero fill,
// ToTensor and Normalize. The encoders' preprocessing (timm / open_clip run these on PIL images)
// and MoCo v3's augmentations (also PIL) are built from them.
//
// Images are `PlanarImage8`: 8-bit planes, channel-major. A gray image is one plane and stands
// for the RGB image with R = G = B (torchvision's `convert("RGB")`): every op below maps such an
// image to one with R = G = B again (resampling, blends, hue, grayscale, blur, solarize, flip all
// act per channel or leave equal channels equal), so a gray slice is processed once instead of
// three times and expanded to three channels only when it becomes a tensor. The results are the
// same bytes PIL gives on the RGB image (tested against PIL in TransformsTests).

/// An 8-bit image as channel planes: `pixels[c·height·width + y·width + x]`.
/// `channels` is 1 (gray, meaning RGB with R = G = B) or 3 (RGB).
public struct PlanarImage8: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "PlanarImage8: channels must be 1 or 3, got \(channels)")
        precondition(width > 0 && height > 0, "PlanarImage8: empty image \(width)×\(height)")
        precondition(pixels.count == width * height * channels,
                     "PlanarImage8: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// An all-zero image.
    public init(zerosWidth width: Int, height: Int, channels: Int) {
        self.init(width: width, height: height, channels: channels, pixels: [UInt8](repeating: 0, count: width * height * channels))
    }

    /// From an interleaved `Image8`. An RGB image whose three channels are equal everywhere
    /// becomes one plane when `collapseGray` (identical results, a third of the work).
    public init(_ image: Image8, collapseGray: Bool = true) {
        let n = image.width * image.height
        if image.channels == 1 {
            self.init(width: image.width, height: image.height, channels: 1, pixels: image.pixels)
            return
        }
        var gray = collapseGray
        var planes = [UInt8](repeating: 0, count: 3 * n)
        image.pixels.withUnsafeBufferPointer { src in
            planes.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let r = src[3 * i], g = src[3 * i + 1], b = src[3 * i + 2]
                    dst[i] = r; dst[n + i] = g; dst[2 * n + i] = b
                    if r != g || r != b { gray = false }
                }
            }
        }
        if gray { planes.removeLast(2 * n) }
        self.init(width: image.width, height: image.height, channels: gray ? 1 : 3, pixels: planes)
    }

    var planeSize: Int { width * height }

    /// The interleaved image (1 channel for gray, 3 for RGB).
    public var image8: Image8 {
        if channels == 1 { return Image8(width: width, height: height, channels: 1, pixels: pixels) }
        let n = planeSize
        var out = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n { out[3 * i] = pixels[i]; out[3 * i + 1] = pixels[n + i]; out[3 * i + 2] = pixels[2 * n + i] }
        return Image8(width: width, height: height, channels: 3, pixels: out)
    }

    /// The same image with three planes (a gray plane copied three times).
    public var rgb: PlanarImage8 {
        if channels == 3 { return self }
        return PlanarImage8(width: width, height: height, channels: 3, pixels: pixels + pixels + pixels)
    }

    /// Channel `c` of the RGB image this stands for.
    public func plane(_ c: Int) -> ArraySlice<UInt8> {
        let k = channels == 1 ? 0 : c
        return pixels[(k * planeSize)..<((k + 1) * planeSize)]
    }
}

/// A pixel rectangle: `x, y` = left, top (may be negative for zero-filled crops), `width × height`.
public struct CropBox: Sendable, Equatable, CustomStringConvertible {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
    public var description: String { "(\(x), \(y), \(width)×\(height))" }
    /// Whether the box lies inside a `width × height` image.
    public func isInside(width w: Int, height h: Int) -> Bool { x >= 0 && y >= 0 && x + width <= w && y + height <= h && width > 0 && height > 0 }
    /// The part of the box inside a `w × h` image (nil if none).
    public func clipped(width w: Int, height h: Int) -> CropBox? {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + width, w), y1 = min(y + height, h)
        return x1 > x0 && y1 > y0 ? CropBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0) : nil
    }
}

/// Resampling filter, as PIL's `Image.BILINEAR` / `Image.BICUBIC` (torchvision's
/// `InterpolationMode.BILINEAR` / `.BICUBIC` on PIL images).
public enum Interpolation: String, Sendable, Codable, CaseIterable {
    case bilinear, bicubic
}

/// PIL's `Image.resize` on 8-bit images (libImaging/Resample.c), reproduced exactly.
///
/// Separable: a horizontal pass into an 8-bit intermediate (only the rows the vertical pass
/// reads), then a vertical pass; a pass is skipped when that axis keeps its size. Per axis with
/// `scale = in/out` and `filterScale = max(scale, 1)` (antialiasing when downsampling):
/// - support `= s·filterScale` with `s = 1` (bilinear, tent `1−|x|`) or `s = 2` (bicubic,
///   Keys kernel with `a = −0.5`);
/// - output `o` has centre `c = (o + ½)·scale`, taps `i ∈ [⌊c − support + ½⌋, ⌊c + support + ½⌋)`
///   clipped to the image, weights `f((i − c + ½)/filterScale)` normalised to sum 1 (in Double);
/// - weights become fixed point with p = 22 fractional bits (rounded half away from zero), each
///   pixel is `Σ wᵢ·pᵢ + 2^(p−1)`, shifted right by p and clamped to [0, 255].
///
/// Pass order: Pillow ≤ 12 sources run the horizontal pass first; Pillow 13 (the goldens' version)
/// runs the vertical pass first for some size pairs, which changes the 8-bit intermediate's
/// rounding (up to several levels with bicubic overshoot). `verticalPassFirst` reproduces the
/// order we measured; a size pair it gets wrong differs from Pillow 13 by rounding only.
public enum PILResample {

    struct Coefficients {
        var first: [Int]     // first source index per output (relative to the input window)
        var count: [Int]     // taps per output
        var ksize: Int
        var weights: [Int32] // [outSize, ksize], fixed point with `precision` fractional bits
        var precision: Int32 = 22

        init(inSize: Int, outSize: Int, filter: Interpolation) {
            let filterSupport: Double = filter == .bilinear ? 1 : 2
            let scale = Double(Float(inSize)) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = filterSupport * filterScale
            ksize = Int(support.rounded(.up)) * 2 + 1
            first = [Int](repeating: 0, count: outSize)
            count = [Int](repeating: 0, count: outSize)
            weights = [Int32](repeating: 0, count: outSize * ksize)
            var k = [Double](repeating: 0, count: outSize * ksize)
            let ss = 1.0 / filterScale
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                var xmin = Int(center - support + 0.5)       // C (int): toward zero
                if xmin < 0 { xmin = 0 }
                var xmax = Int(center + support + 0.5)
                if xmax > inSize { xmax = inSize }
                xmax -= xmin
                var ww = 0.0
                for x in 0..<xmax {
                    let w = PILResample.filter(filter, (Double(x + xmin) - center + 0.5) * ss)
                    k[xx * ksize + x] = w
                    ww += w
                }
                if ww != 0 { for x in 0..<xmax { k[xx * ksize + x] /= ww } }
                first[xx] = xmin
                count[xx] = xmax
            }
            // Fixed point with 22 fractional bits (PRECISION_BITS = 32 − 8 − 2).
            let bits = 22
            precision = Int32(bits)
            for i in 0..<k.count {
                let scaled = k[i] * Double(1 << bits)
                weights[i] = Int32(k[i] < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
        }
    }

    @inline(__always)
    static func filter(_ f: Interpolation, _ x0: Double) -> Double {
        let x = x0 < 0 ? -x0 : x0
        switch f {
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }

    @inline(__always)
    static func clip8(_ v: Int32, _ precision: Int32) -> UInt8 {
        let s = v >> precision
        return s < 0 ? 0 : (s > 255 ? 255 : UInt8(truncatingIfNeeded: s))
    }

    /// Resizes the region `box` of `image` (inside the image) to `width × height`, as PIL's
    /// `image.crop(box).resize((width, height), filter)`.
    public static func resize(_ image: PlanarImage8, box: CropBox? = nil, width outW: Int, height outH: Int,
                              filter: Interpolation) -> PlanarImage8 {
        let box = box ?? CropBox(x: 0, y: 0, width: image.width, height: image.height)
        precondition(box.isInside(width: image.width, height: image.height),
                     "PILResample.resize: box \(box) outside the \(image.width)×\(image.height) image")
        precondition(outW > 0 && outH > 0, "PILResample.resize: output size \(outW)×\(outH) must be positive")
        let needH = outW != box.width, needV = outH != box.height
        var out = PlanarImage8(zerosWidth: outW, height: outH, channels: image.channels)
        let srcPlane = image.planeSize, dstPlane = outW * outH
        if !needH && !needV {
            for c in 0..<image.channels {
                for y in 0..<outH {
                    let s = c * srcPlane + (box.y + y) * image.width + box.x
                    out.pixels.replaceSubrange((c * dstPlane + y * outW)..<(c * dstPlane + (y + 1) * outW), with: image.pixels[s..<(s + outW)])
                }
            }
            return out
        }
        let vc = Coefficients(inSize: box.height, outSize: outH, filter: filter)
        let hc = Coefficients(inSize: box.width, outSize: outW, filter: filter)
        let verticalFirst = needH && needV && verticalPassFirst(inWidth: box.width, inHeight: box.height, outWidth: outW, outHeight: outH)
        // First pass into an 8-bit intermediate, second pass into `out`.
        var temp = [UInt8](repeating: 0, count: needH && needV ? (verticalFirst ? outH * box.width : box.height * outW) : 0)
        image.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                temp.withUnsafeMutableBufferPointer { tmp in
                    for c in 0..<image.channels {
                        let plane = src.baseAddress! + c * srcPlane + box.y * image.width + box.x
                        let o = dst.baseAddress! + c * dstPlane
                        if !needV {
                            horizontal(plane, stride: image.width, rows: outH, hc, into: o)
                        } else if !needH {
                            vertical(plane, stride: image.width, width: outW, vc, into: o)
                        } else if verticalFirst {
                            vertical(plane, stride: image.width, width: box.width, vc, into: tmp.baseAddress!)
                            horizontal(UnsafePointer(tmp.baseAddress!), stride: box.width, rows: outH, hc, into: o)
                        } else {
                            horizontal(plane, stride: image.width, rows: box.height, hc, into: tmp.baseAddress!)
                            vertical(UnsafePointer(tmp.baseAddress!), stride: outW, width: outW, vc, into: o)
                        }
                    }
                }
            }
        }
        return out
    }
}

extension PILResample {
    /// Pillow 13's pass order, measured against it (not found in the Pillow sources we read):
    /// vertical first when the height shrinks and the width ratio exceeds (1 + height ratio)/2.
    /// Matches every size pair we probed on 200×200 and 53×37 inputs but one (53×37 → 35×3).
    static func verticalPassFirst(inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int) -> Bool {
        guard outHeight < inHeight else { return false }
        let wr = Double(outWidth) / Double(inWidth), hr = Double(outHeight) / Double(inHeight)
        return wr > (1 + hr) / 2
    }

    /// Horizontal pass: `rows` rows of `src` (row stride `stride`) → `rows × hc.outSize`.
    static func horizontal(_ src: UnsafePointer<UInt8>, stride: Int, rows: Int, _ hc: Coefficients, into dst: UnsafeMutablePointer<UInt8>) {
        let outW = hc.first.count
        hc.weights.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                let row = src + r * stride, o = dst + r * outW
                for xx in 0..<outW {
                    let s = row + hc.first[xx], k = w.baseAddress! + xx * hc.ksize
                    var sum: Int32 = 1 << (hc.precision - 1)
                    for t in 0..<hc.count[xx] { sum &+= Int32(s[t]) &* k[t] }
                    o[xx] = clip8(sum, hc.precision)
                }
            }
        }
    }

    /// Vertical pass: columns 0..<width of `src` (row stride `stride`) → `vc.outSize × width`,
    /// row by row (vectorises over x).
    static func vertical(_ src: UnsafePointer<UInt8>, stride: Int, width: Int, _ vc: Coefficients, into dst: UnsafeMutablePointer<UInt8>) {
        let outH = vc.first.count
        var acc = [Int32](repeating: 0, count: width)
        acc.withUnsafeMutableBufferPointer { acc in
            vc.weights.withUnsafeBufferPointer { w in
                for yy in 0..<outH {
                    for x in 0..<width { acc[x] = 1 << (vc.precision - 1) }
                    for t in 0..<vc.count[yy] {
                        let wt = w[yy * vc.ksize + t]
                        let row = src + (vc.first[yy] + t) * stride
                        for x in 0..<width { acc[x] &+= Int32(row[x]) &* wt }
                    }
                    let o = dst + yy * width
                    for x in 0..<width { o[x] = clip8(acc[x], vc.precision) }
                }
            }
        }
    }
}

/// torchvision's `Resize` output size: `.shorterSide(s)` keeps the aspect ratio with the shorter
/// side `s` and the longer `⌊s·long/short⌋` (torchvision `_compute_resized_output_size`);
/// `.exact(height, width)`.
public enum ResizeSize: Sendable, Equatable {
    case shorterSide(Int)
    case exact(height: Int, width: Int)

    /// (height, width) for an input of `width × height`.
    public func outputSize(width: Int, height: Int) -> (height: Int, width: Int) {
        switch self {
        case .exact(let h, let w): return (h, w)
        case .shorterSide(let s):
            let short = min(width, height), long = max(width, height)
            let newLong = Int(Double(s * long) / Double(short))
            return width <= height ? (newLong, s) : (s, newLong)
        }
    }
}

public enum Transforms {
    /// torchvision `Resize(size, interpolation)` on a PIL image (an unchanged size returns the
    /// image itself, as torchvision does).
    public static func resize(_ image: PlanarImage8, _ size: ResizeSize, interpolation: Interpolation) -> PlanarImage8 {
        let (h, w) = size.outputSize(width: image.width, height: image.height)
        if h == image.height && w == image.width { return image }
        return PILResample.resize(image, width: w, height: h, filter: interpolation)
    }

    /// PIL `image.crop((x, y, x + width, y + height))`: pixels outside the image are 0.
    public static func crop(_ image: PlanarImage8, _ box: CropBox) -> PlanarImage8 {
        precondition(box.width > 0 && box.height > 0, "Transforms.crop: empty box \(box)")
        var out = PlanarImage8(zerosWidth: box.width, height: box.height, channels: image.channels)
        guard let inside = box.clipped(width: image.width, height: image.height) else { return out }
        let n = image.planeSize, m = box.width * box.height
        for c in 0..<image.channels {
            for y in inside.y..<(inside.y + inside.height) {
                let s = c * n + y * image.width + inside.x
                let d = c * m + (y - box.y) * box.width + (inside.x - box.x)
                out.pixels.replaceSubrange(d..<(d + inside.width), with: image.pixels[s..<(s + inside.width)])
            }
        }
        return out
    }

    /// torchvision `CenterCrop` box: offset `round((in − crop)/2)` (Python's round, half to even);
    /// a crop larger than the image is zero-padded by `⌊(crop − in)/2⌋` before (torchvision pads
    /// then crops).
    public static func centerCropBox(width: Int, height: Int, cropWidth: Int, cropHeight: Int) -> CropBox {
        func offset(_ size: Int, _ crop: Int) -> Int {
            if crop > size { return -((crop - size) / 2) }
            return Int((Double(size - crop) / 2).rounded(.toNearestOrEven))
        }
        return CropBox(x: offset(width, cropWidth), y: offset(height, cropHeight), width: cropWidth, height: cropHeight)
    }

    /// torchvision `CenterCrop([height, width])`.
    public static func centerCrop(_ image: PlanarImage8, height: Int, width: Int) -> PlanarImage8 {
        let box = centerCropBox(width: image.width, height: image.height, cropWidth: width, cropHeight: height)
        if box.x == 0 && box.y == 0 && width == image.width && height == image.height { return image }
        return crop(image, box)
    }

    /// `ToTensor` then `Normalize(mean, std)` into `out` (3·height·width floats, CHW):
    /// `(Float(v)/255 − Float(mean[c])) / Float(std[c])` in Float32, exactly torchvision's
    /// `div(255)`, `sub_(mean)`, `div_(std)`. A gray image fills all three channels.
    public static func normalize(_ image: PlanarImage8, mean: [Double], std: [Double], into out: UnsafeMutablePointer<Float>) {
        precondition(mean.count == 3 && std.count == 3, "Transforms.normalize: mean and std need 3 values, got \(mean.count), \(std.count)")
        let n = image.planeSize
        var lut = [Float](repeating: 0, count: 256)
        image.pixels.withUnsafeBufferPointer { src in
            for c in 0..<3 {
                let m = Float(mean[c]), s = Float(std[c])
                for v in 0..<256 { lut[v] = (Float(v) / 255 - m) / s }
                let plane = src.baseAddress! + (image.channels == 1 ? 0 : c * n)
                let o = out + c * n
                lut.withUnsafeBufferPointer { l in
                    for i in 0..<n { o[i] = l[Int(plane[i])] }
                }
            }
        }
    }

    /// `ToTensor` + `Normalize` as a [3, height, width] array.
    public static func normalized(_ image: PlanarImage8, mean: [Double], std: [Double]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * image.planeSize)
        out.withUnsafeMutableBufferPointer { normalize(image, mean: mean, std: std, into: $0.baseAddress!) }
        return out
    }
}

/// Mean / std presets (as the libraries define them).
public enum NormalizationPreset {
    /// torchvision / timm ImageNet: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    public static let imagenetMean = [0.485, 0.456, 0.406], imagenetStd = [0.229, 0.224, 0.225]
    /// OpenAI CLIP (open_clip `OPENAI_DATASET_MEAN/STD`).
    public static let clipMean = [0.48145466, 0.4578275, 0.40821073], clipStd = [0.26862954, 0.26130258, 0.27577711]
}

/// An encoder's deterministic preprocessing, as timm / open_clip build it for PIL images:
/// `Resize(resize, interpolation)` → `CenterCrop(crop)` → (convert RGB) → `ToTensor` →
/// `Normalize(mean, std)`. E.g. open_clip ViT-B/16: resize `.shorterSide(224)`, bicubic, crop
/// 224, CLIP mean/std; timm ViT (crop_pct 0.9): `.shorterSide(248)`, bicubic, crop 224.
public struct Preprocess: Sendable, Equatable {
    public var resize: ResizeSize
    public var cropHeight: Int, cropWidth: Int
    public var interpolation: Interpolation
    public var mean: [Double], std: [Double]

    public init(resize: ResizeSize, crop: Int, interpolation: Interpolation = .bicubic,
                mean: [Double] = NormalizationPreset.imagenetMean, std: [Double] = NormalizationPreset.imagenetStd) {
        self.resize = resize; self.cropHeight = crop; self.cropWidth = crop
        self.interpolation = interpolation; self.mean = mean; self.std = std
    }

    /// CLEAR's extraction transform: Resize 224 (bilinear, torchvision's default), CenterCrop 224, ImageNet.
    public static let clear = Preprocess(resize: .shorterSide(224), crop: 224, interpolation: .bilinear)

    /// The 8-bit image after resize and crop.
    public func cropped(_ image: PlanarImage8) -> PlanarImage8 {
        Transforms.centerCrop(Transforms.resize(image, resize, interpolation: interpolation), height: cropHeight, width: cropWidth)
    }

    /// [3, crop, crop] floats (CHW).
    public func callAsFunction(_ image: PlanarImage8) -> [Float] {
        Transforms.normalized(cropped(image), mean: mean, std: std)
    }

    /// A batch [B, 3, crop, crop].
    public func batch(_ images: [PlanarImage8]) -> Tensor {
        let per = 3 * cropHeight * cropWidth
        return Tensor(shape: [images.count, 3, cropHeight, cropWidth]) { p in
            for (i, image) in images.enumerated() {
                let c = cropped(image)
                Transforms.normalize(c, mean: mean, std: std, into: p.baseAddress! + i * per)
            }
        }
    }
}
