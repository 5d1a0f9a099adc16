import AxialCore
import AxialTensor
import Foundation

/// MoCo v3 / LeCL augmentations on 8-bit images, each reproducing the PIL operation that
/// torchvision applies to PIL images (MoCo v3's `main_moco.py` pipeline runs on PIL images
/// until `ToTensor`). Every op with fixed parameters is tested byte for byte against PIL
/// (`Tools/goldens/make_transform_goldens.py`). Parameter *sampling* follows torchvision's
/// algorithms but draws from Axial's `RandomGenerator` (its stream is not torch's).
public enum Augment {
    // MARK: Blends (PIL ImageEnhance → Image.blend)

    /// PIL `Image.blend(degenerate, image, alpha)` on one byte: `d + α·(v − d)` in Float32;
    /// for 0 ≤ α ≤ 1 truncated toward zero, otherwise clamped to [0, 255] then truncated.
    @inline(__always)
    static func blend(_ degenerate: UInt8, _ value: UInt8, _ alpha: Float, interpolate: Bool) -> UInt8 {
        let t = Float(Int32(degenerate)) + alpha * Float(Int32(value) - Int32(degenerate))
        if interpolate { return UInt8(t) }
        if t <= 0 { return 0 }
        if t >= 255 { return 255 }
        return UInt8(t)
    }

    static func blendTable(_ degenerate: UInt8, factor: Double) -> [UInt8] {
        let a = Float(factor), interpolate = a >= 0 && a <= 1
        return (0..<256).map { blend(degenerate, UInt8($0), a, interpolate: interpolate) }
    }

    static func applyTable(_ image: inout PlanarImage8, _ table: [UInt8]) {
        table.withUnsafeBufferPointer { t in
            image.pixels.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = t[Int(p[i])] }
            }
        }
    }

    /// ITU-R 601-2 luma as PIL's `convert("L")`: `(19595·R + 38470·G + 7471·B + 0x8000) >> 16`.
    static func luma(_ image: PlanarImage8) -> [UInt8] {
        if image.channels == 1 { return image.pixels }
        let n = image.planeSize
        var out = [UInt8](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let v = UInt32(p[i]) * 19595 + UInt32(p[n + i]) * 38470 + UInt32(p[2 * n + i]) * 7471 + 0x8000
                out[i] = UInt8(truncatingIfNeeded: v >> 16)
            }
        }
        return out
    }

    /// torchvision `adjust_brightness` (PIL `ImageEnhance.Brightness`): blend with black.
    public static func brightness(_ image: PlanarImage8, factor: Double) -> PlanarImage8 {
        var out = image
        applyTable(&out, blendTable(0, factor: factor))
        return out
    }

    /// torchvision `adjust_contrast` (PIL `ImageEnhance.Contrast`): blend with the constant
    /// gray `int(mean(L) + 0.5)`, L the 601-2 luma.
    public static func contrast(_ image: PlanarImage8, factor: Double) -> PlanarImage8 {
        let l = luma(image)
        var histogram = [Int](repeating: 0, count: 256)
        for v in l { histogram[Int(v)] += 1 }
        var sum = 0.0
        for (v, count) in histogram.enumerated() { sum += Double(v * count) }
        let mean = UInt8(min(255, Int(sum / Double(l.count) + 0.5)))
        var out = image
        applyTable(&out, blendTable(mean, factor: factor))
        return out
    }

    /// torchvision `adjust_saturation` (PIL `ImageEnhance.Color`): blend with the luma image.
    /// A gray image is unchanged.
    public static func saturation(_ image: PlanarImage8, factor: Double) -> PlanarImage8 {
        if image.channels == 1 { return image }
        let l = luma(image), n = image.planeSize
        let a = Float(factor), interpolate = a >= 0 && a <= 1
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { p in
            for c in 0..<3 { for i in 0..<n { p[c * n + i] = blend(l[i], p[c * n + i], a, interpolate: interpolate) } }
        }
        return out
    }

    /// torchvision `adjust_hue` on PIL: RGB → HSV (PIL, 8-bit), `h += uint8(int32(factor·255))`
    /// wrapping, HSV → RGB. A gray image (saturation 0) is unchanged.
    public static func hue(_ image: PlanarImage8, factor: Double) -> PlanarImage8 {
        precondition(factor >= -0.5 && factor <= 0.5, "Augment.hue: factor \(factor) not in [-0.5, 0.5]")
        if image.channels == 1 { return image }
        let shift = UInt8(truncatingIfNeeded: Int32(factor * 255))
        let n = image.planeSize
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                var (h, s, v) = rgbToHSV(p[i], p[n + i], p[2 * n + i])
                h = h &+ shift
                let (r, g, b) = hsvToRGB(h, s, v)
                p[i] = r; p[n + i] = g; p[2 * n + i] = b
            }
        }
        return out
    }

    /// PIL `rgb2hsv_row` (Convert.c), with its float / double mix reproduced.
    static func rgbToHSV(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        if maxc == minc { return (0, 0, maxc) }
        let cr = Float(Int(maxc) - Int(minc))
        let s = cr / Float(maxc)
        let rc = Float(Int(maxc) - Int(r)) / cr
        let gc = Float(Int(maxc) - Int(g)) / cr
        let bc = Float(Int(maxc) - Int(b)) / cr
        var h: Float
        if r == maxc { h = bc - gc }
        else if g == maxc { h = Float(2.0 + Double(rc) - Double(bc)) }
        else { h = Float(4.0 + Double(gc) - Double(rc)) }
        h = Float(fmod(Double(h) / 6.0 + 1.0, 1.0))
        return (clip8(Int(Double(h) * 255.0)), clip8(Int(Double(s) * 255.0)), maxc)
    }

    /// PIL `hsv2rgb` (Convert.c).
    static func hsvToRGB(_ h: UInt8, _ s: UInt8, _ v: UInt8) -> (UInt8, UInt8, UInt8) {
        if s == 0 { return (v, v, v) }
        let h6 = Double(Float(h)) * 6.0 / 255.0
        let i = Int(h6.rounded(.down))
        let f = Float(h6 - Double(Float(i)))
        let fs = Float(Double(Float(s)) / 255.0)
        let vd = Double(Float(v))
        let p = clip8(Int((vd * (1.0 - Double(fs))).rounded()))
        let q = clip8(Int((vd * (1.0 - Double(fs * f))).rounded()))
        let t = clip8(Int((vd * (1.0 - Double(fs) * (1.0 - Double(f)))).rounded()))
        switch i % 6 {
        case 0: return (v, t, p)
        case 1: return (q, v, p)
        case 2: return (p, v, t)
        case 3: return (p, q, v)
        case 4: return (t, p, v)
        default: return (v, p, q)
        }
    }

    @inline(__always) static func clip8(_ v: Int) -> UInt8 { v <= 0 ? 0 : (v >= 255 ? 255 : UInt8(v)) }

    /// torchvision `rgb_to_grayscale(num_output_channels=3)` on PIL: the 601-2 luma in all three
    /// channels (returned as one gray plane).
    public static func grayscale(_ image: PlanarImage8) -> PlanarImage8 {
        PlanarImage8(width: image.width, height: image.height, channels: 1, pixels: luma(image))
    }

    /// PIL `ImageOps.solarize(image, threshold)`: values ≥ threshold become 255 − v.
    public static func solarize(_ image: PlanarImage8, threshold: Int = 128) -> PlanarImage8 {
        var out = image
        applyTable(&out, (0..<256).map { $0 < threshold ? UInt8($0) : UInt8(255 - $0) })
        return out
    }

    /// Horizontal flip (torchvision `hflip`).
    public static func horizontalFlip(_ image: PlanarImage8) -> PlanarImage8 {
        var out = image
        let w = image.width
        out.pixels.withUnsafeMutableBufferPointer { p in
            for row in 0..<(image.channels * image.height) {
                var a = row * w, b = a + w - 1
                while a < b { p.swapAt(a, b); a += 1; b -= 1 }
            }
        }
        return out
    }

    // MARK: Gaussian blur (PIL ImageFilter.GaussianBlur)

    /// PIL's box radius for a Gaussian of standard deviation `sigma` approximated by `passes`
    /// box blurs (`_gaussian_blur_radius`, Gwosdek et al. 2011 extended box): σ² split over the
    /// passes, box length `L = √(12σ²/n + 1)`, integer radius `l = ⌊(L − 1)/2⌋` plus a fractional
    /// part `a` so that the extended box has exactly variance σ²/n.
    public static func boxRadius(sigma: Float, passes: Int = 3) -> Float {
        let sigma2 = sigma * sigma / Float(passes)
        let L = Float((12.0 * Double(sigma2) + 1.0).squareRoot())
        let l = Float(((Double(L) - 1.0) / 2.0).rounded(.down))
        var a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2)
        a /= 6 * (sigma2 - (l + 1) * (l + 1))
        return l + a
    }

    /// PIL `ImageFilter.GaussianBlur(radius: sigma)` — what MoCo v3's `GaussianBlur` applies with
    /// σ ~ U(0.1, 2). Not a sampled Gaussian kernel: PIL runs 3 passes of an *extended box blur*
    /// (`BoxBlur.c`) along x, then 3 along y, each rounding to 8 bits. One pass with radius
    /// `r = boxRadius(σ)` (integer part `k = ⌊r⌋`) is, in 24-bit fixed point,
    /// `out[x] = (ww·Σ_{|j|≤k} in[x+j] + fw·(in[x−k−1] + in[x+k+1]) + 2²³) >> 24`,
    /// `ww = ⌊2²⁴/(2r+1)⌋`, `fw = (2²⁴ − (2k+1)·ww)/2`, indices clamped to the edge (edge pixels
    /// repeat). The three passes together approximate a Gaussian of standard deviation σ.
    public static func gaussianBlur(_ image: PlanarImage8, sigma: Double, passes: Int = 3) -> PlanarImage8 {
        precondition(sigma >= 0, "Augment.gaussianBlur: sigma \(sigma) must be ≥ 0")
        if sigma == 0 { return image }
        let radius = boxRadius(sigma: Float(sigma), passes: passes)
        if radius == 0 { return image }
        var out = image
        let w = image.width, h = image.height, n = image.planeSize
        var line = [UInt8](repeating: 0, count: max(w, h))
        var transposed = [UInt8](repeating: 0, count: n)
        out.pixels.withUnsafeMutableBufferPointer { p in
            line.withUnsafeMutableBufferPointer { line in
                transposed.withUnsafeMutableBufferPointer { tr in
                    for c in 0..<image.channels {
                        let plane = p.baseAddress! + c * n
                        for _ in 0..<passes { for y in 0..<h { boxBlurLine(plane + y * w, count: w, radius: radius, scratch: line.baseAddress!) } }
                        for y in 0..<h { for x in 0..<w { tr[x * h + y] = plane[y * w + x] } }
                        for _ in 0..<passes { for x in 0..<w { boxBlurLine(tr.baseAddress! + x * h, count: h, radius: radius, scratch: line.baseAddress!) } }
                        for y in 0..<h { for x in 0..<w { plane[y * w + x] = tr[x * h + y] } }
                    }
                }
            }
        }
        return out
    }

    /// One extended-box pass over `count` bytes at `data`, in place (PIL `ImagingLineBoxBlur8`).
    static func boxBlurLine(_ data: UnsafeMutablePointer<UInt8>, count n: Int, radius floatRadius: Float,
                            scratch: UnsafeMutablePointer<UInt8>) {
        let r = Int(floatRadius)
        let ww = UInt32(Float(UInt32(1 << 24)) / (floatRadius * 2 + 1))
        let fw = (UInt32(1 << 24) &- UInt32(r * 2 + 1) &* ww) / 2
        let last = n - 1
        @inline(__always) func at(_ i: Int) -> UInt32 { UInt32(data[i < 0 ? 0 : (i > last ? last : i)]) }
        // Window sum centred at −1: indices −r−1 … r−1, clamped.
        var acc: UInt32 = 0
        for j in (-r - 1)..<r { acc &+= at(j) }
        for x in 0..<n {
            let left = at(x - r - 1)
            acc = acc &+ at(x + r) &- left
            let bulk = acc &* ww &+ (left &+ at(x + r + 1)) &* fw
            scratch[x] = UInt8(truncatingIfNeeded: (bulk &+ (1 << 23)) >> 24)
        }
        data.update(from: scratch, count: n)
    }

    // MARK: Random parameters (torchvision's algorithms, Axial's RNG)

    /// torchvision `RandomResizedCrop.get_params`: 10 attempts of area ~ U(scale)·area and
    /// log-aspect ~ U(log ratio), `w = round(√(area·ratio))`, `h = round(√(area/ratio))`
    /// (Python rounding), position uniform; else the central crop clamped to the ratio range.
    public static func randomResizedCropBox(width: Int, height: Int, scale: (Double, Double) = (0.08, 1),
                                            ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0),
                                            generator g: inout RandomGenerator) -> CropBox {
        let area = Double(width * height)
        let logRatio = (Foundation.log(ratio.0), Foundation.log(ratio.1))
        for _ in 0..<10 {
            let targetArea = area * uniform(scale.0, scale.1, &g)
            let aspect = Foundation.exp(uniform(logRatio.0, logRatio.1, &g))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = g.int(below: height - h + 1)
                let left = g.int(below: width - w + 1)
                return CropBox(x: left, y: top, width: w, height: h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < min(ratio.0, ratio.1) {
            h = Int((Double(w) / min(ratio.0, ratio.1)).rounded(.toNearestOrEven))
        } else if inRatio > max(ratio.0, ratio.1) {
            w = Int((Double(h) * max(ratio.0, ratio.1)).rounded(.toNearestOrEven))
        }
        return CropBox(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// Uniform Double in [low, high) from 53 random bits.
    static func uniform(_ low: Double, _ high: Double, _ g: inout RandomGenerator) -> Double {
        low + (high - low) * (Double(g.next() >> 11) * 0x1p-53)
    }

    /// Parameters of one `ColorJitter` application: the order of the four ops (0 brightness,
    /// 1 contrast, 2 saturation, 3 hue — torchvision's `randperm(4)`) and their factors.
    public struct JitterParameters: Sendable, Equatable {
        public var order: [Int]
        public var brightness: Double, contrast: Double, saturation: Double, hue: Double
        public init(order: [Int], brightness: Double, contrast: Double, saturation: Double, hue: Double) {
            self.order = order; self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
        }
    }

    /// torchvision `ColorJitter.get_params` for `ColorJitter(b, c, s, h)`: factors uniform in
    /// [max(0, 1−b), 1+b], [max(0, 1−c), 1+c], [max(0, 1−s), 1+s], [−h, h].
    public static func sampleJitter(brightness b: Double, contrast c: Double, saturation s: Double, hue h: Double,
                                    generator g: inout RandomGenerator) -> JitterParameters {
        let order = g.permutation(4)
        return JitterParameters(order: order,
                                brightness: uniform(max(0, 1 - b), 1 + b, &g),
                                contrast: uniform(max(0, 1 - c), 1 + c, &g),
                                saturation: uniform(max(0, 1 - s), 1 + s, &g),
                                hue: uniform(-h, h, &g))
    }

    /// Applies `ColorJitter` with the given parameters (ops in `order`).
    public static func colorJitter(_ image: PlanarImage8, _ p: JitterParameters) -> PlanarImage8 {
        var out = image
        for op in p.order {
            switch op {
            case 0: out = brightness(out, factor: p.brightness)
            case 1: out = contrast(out, factor: p.contrast)
            case 2: out = saturation(out, factor: p.saturation)
            default: out = hue(out, factor: p.hue)
            }
        }
        return out
    }
}

/// The MoCo v3 / LeCL augmentation settings (REFERENCE.md §1; MoCo v3 `main_moco.py`).
public struct AugmentConfig: Sendable, Equatable {
    public var size: Int = 224
    public var scale: (Double, Double) = (0.08, 1)
    public var ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0)
    /// ColorJitter(brightness, contrast, saturation, hue), applied with `jitterProbability`.
    public var jitter: (Double, Double, Double, Double) = (0.4, 0.4, 0.2, 0.1)
    public var jitterProbability = 0.8
    public var grayscaleProbability = 0.2
    public var blurSigma: (Double, Double) = (0.1, 2.0)
    /// Blur probability per view: 1.0 for view 1, 0.1 for view 2.
    public var blurProbability: (Double, Double) = (1.0, 0.1)
    /// Solarize probability per view: 0 for view 1, 0.2 for view 2.
    public var solarizeProbability: (Double, Double) = (0, 0.2)
    public var flipProbability = 0.5
    public var mean = NormalizationPreset.imagenetMean, std = NormalizationPreset.imagenetStd
    /// LeCL lesion crop: each side uniform in [⌊√cropMin·S⌋, S), S the image side.
    public var lesionCropMin = 0.08
    /// What the lesion crop does with the part of the crop outside the image.
    public var lesionBorder: LesionBorder = .clip

    public init() {}

    public static func == (a: AugmentConfig, b: AugmentConfig) -> Bool {
        a.size == b.size && a.scale == b.scale && a.ratio == b.ratio && a.jitter == b.jitter
            && a.jitterProbability == b.jitterProbability && a.grayscaleProbability == b.grayscaleProbability
            && a.blurSigma == b.blurSigma && a.blurProbability == b.blurProbability
            && a.solarizeProbability == b.solarizeProbability && a.flipProbability == b.flipProbability
            && a.mean == b.mean && a.std == b.std && a.lesionCropMin == b.lesionCropMin && a.lesionBorder == b.lesionBorder
    }
}

/// Handling of a lesion crop that reaches outside the slice.
public enum LesionBorder: String, Sendable, Codable {
    /// Crop only the part inside the slice (the box is intersected with the image; the crop
    /// becomes smaller and off-centre) — Axial's default: no black borders enter the views.
    case clip
    /// Keep the full crop and fill outside pixels with 0 (black), as CLEAR's PIL `crop` does.
    case zeroFill
}

/// The two view pipelines and the LeCL views.
public enum MoCoViews {
    /// One augmented view after its crop: [jitter p] → [grayscale p] → [blur p] → [solarize p]
    /// → [hflip p], in MoCo v3's order; `view` 0 or 1 picks the blur / solarize probabilities.
    public static func augment(_ cropped: PlanarImage8, view: Int, config: AugmentConfig, generator g: inout RandomGenerator) -> PlanarImage8 {
        var image = cropped
        if Double(g.uniform()) < config.jitterProbability {
            let j = config.jitter
            image = Augment.colorJitter(image, Augment.sampleJitter(brightness: j.0, contrast: j.1, saturation: j.2, hue: j.3, generator: &g))
        }
        if Double(g.uniform()) < config.grayscaleProbability { image = Augment.grayscale(image) }
        let blurP = view == 0 ? config.blurProbability.0 : config.blurProbability.1
        if Double(g.uniform()) < blurP {
            image = Augment.gaussianBlur(image, sigma: Augment.uniform(config.blurSigma.0, config.blurSigma.1, &g))
        }
        let solarizeP = view == 0 ? config.solarizeProbability.0 : config.solarizeProbability.1
        if Double(g.uniform()) < solarizeP { image = Augment.solarize(image) }
        if Double(g.uniform()) < config.flipProbability { image = Augment.horizontalFlip(image) }
        return image
    }

    /// A RandomResizedCrop view (PIL bilinear, as torchvision's default), augmented.
    public static func randomResizedView(_ image: PlanarImage8, view: Int, config: AugmentConfig, generator g: inout RandomGenerator) -> PlanarImage8 {
        let box = Augment.randomResizedCropBox(width: image.width, height: image.height, scale: config.scale, ratio: config.ratio, generator: &g)
        let cropped = PILResample.resize(image, box: box, width: config.size, height: config.size, filter: .bilinear)
        return augment(cropped, view: view, config: config, generator: &g)
    }

    /// LeCL's lesion crop box (CLEAR `LesionDataset`): sides `w, h` uniform integers in
    /// [⌊√cropMin·W⌋, W) and [⌊√cropMin·H⌋, H), centred at the box corner (x1, y2):
    /// left = x1 − ⌊w/2⌋, top = y2 − ⌊h/2⌋. May reach outside the image.
    public static func lesionCropBox(width: Int, height: Int, box: LesionBox, cropMin: Double, generator g: inout RandomGenerator) -> CropBox {
        func side(_ s: Int) -> Int {
            let low = min(Int(cropMin.squareRoot() * Double(s)), s - 1)
            return low + g.int(below: max(s - low, 1))
        }
        let w = side(width), h = side(height)
        let cx = Int(box.x1.rounded(.towardZero)), cy = Int(box.y2.rounded(.towardZero))
        return CropBox(x: cx - w / 2, y: cy - h / 2, width: w, height: h)
    }

    /// The two 8-bit views of one slice. With lesion boxes (LeCL): one box at random; view 1 =
    /// the whole slice resized to `size × size` (CLEAR's key, `transform1`), view 2 = the lesion
    /// crop resized (CLEAR's query, `transform2`); both bilinear. Without: two RandomResizedCrop
    /// views. Then each view's augmentation pipeline.
    public static func views(_ image: PlanarImage8, boxes: [LesionBox], config: AugmentConfig,
                             generator g: inout RandomGenerator) -> (PlanarImage8, PlanarImage8, isLesion: Bool) {
        if !boxes.isEmpty {
            let box = boxes.count == 1 ? boxes[0] : boxes[g.int(below: boxes.count)]
            let crop = lesionCropBox(width: image.width, height: image.height, box: box, cropMin: config.lesionCropMin, generator: &g)
            let whole = PILResample.resize(image, width: config.size, height: config.size, filter: .bilinear)
            let query: PlanarImage8
            switch config.lesionBorder {
            case .clip:
                let inside = crop.clipped(width: image.width, height: image.height)
                    ?? CropBox(x: 0, y: 0, width: image.width, height: image.height)
                query = PILResample.resize(image, box: inside, width: config.size, height: config.size, filter: .bilinear)
            case .zeroFill:
                query = PILResample.resize(Transforms.crop(image, crop), width: config.size, height: config.size, filter: .bilinear)
            }
            let v1 = augment(whole, view: 0, config: config, generator: &g)
            let v2 = augment(query, view: 1, config: config, generator: &g)
            return (v1, v2, true)
        }
        let v1 = randomResizedView(image, view: 0, config: config, generator: &g)
        let v2 = randomResizedView(image, view: 1, config: config, generator: &g)
        return (v1, v2, false)
    }
}

/// Per-sample generators: a pure function of (seed, step, index), so a batch's views do not
/// depend on which thread makes them or in which order (`SplitMix64.mix` over the words).
public enum AugmentSeed {
    /// The generator for sample `index` of training step `step` (`stream` separates uses).
    public static func generator(seed: UInt64, step: Int, index: Int, stream: UInt64 = 0) -> RandomGenerator {
        var h = SplitMix64.mix(seed ^ 0x4158_4941_4C41_5547)   // "AXIALAUG"
        h = SplitMix64.mix(h ^ stream)
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(step)))
        h = SplitMix64.mix(h ^ UInt64(bitPattern: Int64(index)))
        return RandomGenerator(seed: h)
    }
}
