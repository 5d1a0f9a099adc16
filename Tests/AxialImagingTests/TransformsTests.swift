import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// Goldens from Tools/goldens/make_transform_goldens.py (torchvision + Pillow on PIL images).
/// uint8 results must be byte-identical; normalised tensors within 1e-6.
enum TransformGoldens {
    struct Case: Decodable, Sendable, CustomStringConvertible {
        var name: String, op: String, input: String
        var size: Int?, height: Int?, width: Int?, top: Int?, left: Int?, crop: Int?
        var interpolation: String?, factor: Double?, sigma: Double?
        var mean: [Double]?, std: [Double]?
        var order: [Int]?, brightness: Double?, contrast: Double?, saturation: Double?, hue: Double?
        var description: String { name }
    }

    static let loaded: (tensors: [String: Tensor], cases: [Case]) = {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("transforms.safetensors")
        let (t, meta) = try! SafeTensors.read(url)
        let cases = try! JSONDecoder().decode([Case].self, from: Data(meta["cases"]!.utf8))
        return (t, cases)
    }()

    static func cases(_ ops: Set<String>) -> [Case] { loaded.cases.filter { ops.contains($0.op) } }

    /// The input as a planar image (gray: one plane; RGB: three).
    static func input(_ name: String) -> PlanarImage8 {
        let t = loaded.tensors["input_\(name)"]!
        let h = t.shape[0], w = t.shape[1], c = t.rank == 3 ? t.shape[2] : 1
        let bytes = t.scalars.map { UInt8($0) }
        return PlanarImage8(Image8(width: w, height: h, channels: c, pixels: bytes), collapseGray: false)
    }

    /// An HWC uint8 golden as a planar image.
    static func expected(_ name: String) -> PlanarImage8 {
        let t = loaded.tensors[name]!
        let bytes = t.scalars.map { UInt8($0) }
        return PlanarImage8(Image8(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: bytes), collapseGray: false)
    }
}

func expectSameBytes(_ got: PlanarImage8, _ want: PlanarImage8, _ name: String, maxLevels: Int = 0) {
    // A gray result is the RGB image with equal channels: compare as RGB when shapes differ.
    let g = got.channels == want.channels ? got : got.rgb, w = got.channels == want.channels ? want : want.rgb
    #expect(g.width == w.width && g.height == w.height, "\(name): size \(g.width)×\(g.height) vs \(w.width)×\(w.height)")
    guard g.pixels.count == w.pixels.count else { return }
    var diffs = 0, worst = 0
    for i in 0..<g.pixels.count where g.pixels[i] != w.pixels[i] {
        diffs += 1; worst = max(worst, abs(Int(g.pixels[i]) - Int(w.pixels[i])))
    }
    if maxLevels == 0 {
        #expect(diffs == 0, "\(name): \(diffs) of \(g.pixels.count) bytes differ (max \(worst))")
    } else {
        #expect(worst <= maxLevels, "\(name): \(diffs) of \(g.pixels.count) bytes differ (max \(worst))")
    }
}

func expectClose(_ got: [Float], _ want: Tensor, tolerance: Float = 1e-6, _ name: String) {
    let w = want.scalars
    #expect(got.count == w.count, "\(name): \(got.count) vs \(w.count) values")
    guard got.count == w.count else { return }
    let worst = maxAbsDifference(got, w)
    #expect(worst <= tolerance, "\(name): max |Δ| \(worst)")
}

@Suite struct TransformsTests {
    static func interpolation(_ c: TransformGoldens.Case) -> Interpolation { Interpolation(rawValue: c.interpolation!)! }

    @Test(arguments: TransformGoldens.cases(["resize_short", "resize_exact", "resized_crop"]))
    func resizeMatchesPIL(_ c: TransformGoldens.Case) {
        let image = TransformGoldens.input(c.input)
        let got: PlanarImage8
        switch c.op {
        case "resize_short": got = Transforms.resize(image, .shorterSide(c.size!), interpolation: Self.interpolation(c))
        case "resize_exact": got = Transforms.resize(image, .exact(height: c.height!, width: c.width!), interpolation: Self.interpolation(c))
        default:
            got = PILResample.resize(image, box: CropBox(x: c.left!, y: c.top!, width: c.width!, height: c.height!),
                                     width: c.size!, height: c.size!, filter: Self.interpolation(c))
        }
        expectSameBytes(got, TransformGoldens.expected(c.name), c.name)
    }

    @Test(arguments: TransformGoldens.cases(["resize_short", "resize_exact", "resized_crop"]).filter { $0.input == "rgb" })
    func grayPlaneEqualsRGBPath(_ c: TransformGoldens.Case) {
        // Processing a gray plane once equals processing its RGB expansion.
        let gray = TransformGoldens.input("gray")
        let a = Transforms.resize(gray, .exact(height: 19, width: 61), interpolation: Self.interpolation(c))
        let b = Transforms.resize(gray.rgb, .exact(height: 19, width: 61), interpolation: Self.interpolation(c))
        #expect(a.rgb == b)
    }

    @Test(arguments: TransformGoldens.cases(["center_crop"]))
    func centerCropMatchesTorchvision(_ c: TransformGoldens.Case) {
        let got = Transforms.centerCrop(TransformGoldens.input(c.input), height: c.height!, width: c.width!)
        expectSameBytes(got, TransformGoldens.expected(c.name), c.name)
    }

    @Test(arguments: TransformGoldens.cases(["preprocess", "normalize"]))
    func preprocessMatchesTorchvision(_ c: TransformGoldens.Case) {
        let image = TransformGoldens.input(c.input)
        let want = TransformGoldens.loaded.tensors[c.name]!
        if c.op == "normalize" {
            expectClose(Transforms.normalized(image, mean: c.mean!, std: c.std!), want, c.name)
        } else {
            let p = Preprocess(resize: .shorterSide(c.size!), crop: c.crop!, interpolation: Self.interpolation(c), mean: c.mean!, std: c.std!)
            expectClose(p(image), want, c.name)
            let batch = p.batch([image, image])
            #expect(batch.shape == [2, 3, c.crop!, c.crop!])
            expectClose(Array(batch.scalars[(3 * c.crop! * c.crop!)...]), want, c.name + " (batch)")
        }
    }

    @Test(arguments: TransformGoldens.cases(["brightness", "contrast", "saturation", "hue", "grayscale", "blur", "solarize", "hflip", "zero_crop_resize"]))
    func augmentOpMatchesPIL(_ c: TransformGoldens.Case) {
        let image = TransformGoldens.input(c.input)
        let got: PlanarImage8
        switch c.op {
        case "brightness": got = Augment.brightness(image, factor: c.factor!)
        case "contrast": got = Augment.contrast(image, factor: c.factor!)
        case "saturation": got = Augment.saturation(image, factor: c.factor!)
        case "hue": got = Augment.hue(image, factor: c.factor!)
        case "grayscale": got = Augment.grayscale(image)
        case "blur": got = Augment.gaussianBlur(image, sigma: c.sigma!)
        case "solarize": got = Augment.solarize(image)
        case "hflip": got = Augment.horizontalFlip(image)
        default:
            let cropped = Transforms.crop(image, CropBox(x: c.left!, y: c.top!, width: c.width!, height: c.height!))
            got = Transforms.resize(cropped, .exact(height: c.size!, width: c.size!), interpolation: .bilinear)
        }
        expectSameBytes(got, TransformGoldens.expected(c.name), c.name)
        // The one-plane path for a gray source equals the three-plane path.
        if c.input == "gray" && c.op != "zero_crop_resize" {
            let viaRGB: PlanarImage8
            switch c.op {
            case "brightness": viaRGB = Augment.brightness(image.rgb, factor: c.factor!)
            case "contrast": viaRGB = Augment.contrast(image.rgb, factor: c.factor!)
            case "saturation": viaRGB = Augment.saturation(image.rgb, factor: c.factor!)
            case "hue": viaRGB = Augment.hue(image.rgb, factor: c.factor!)
            case "grayscale": viaRGB = Augment.grayscale(image.rgb)
            case "blur": viaRGB = Augment.gaussianBlur(image.rgb, sigma: c.sigma!)
            case "solarize": viaRGB = Augment.solarize(image.rgb)
            default: viaRGB = Augment.horizontalFlip(image.rgb)
            }
            #expect(got.rgb == viaRGB.rgb, "\(c.name): gray plane vs RGB path")
        }
    }

    @Test func fixedParameterChainMatchesTorchvision() throws {
        let c = try #require(TransformGoldens.cases(["chain"]).first)
        var v = PILResample.resize(TransformGoldens.input("rgb"), box: CropBox(x: c.left!, y: c.top!, width: c.width!, height: c.height!),
                                   width: c.size!, height: c.size!, filter: .bilinear)
        v = Augment.colorJitter(v, .init(order: c.order!, brightness: c.brightness!, contrast: c.contrast!, saturation: c.saturation!, hue: c.hue!))
        v = Augment.gaussianBlur(v, sigma: c.sigma!)
        v = Augment.solarize(v)
        v = Augment.horizontalFlip(v)
        expectClose(Transforms.normalized(v, mean: NormalizationPreset.imagenetMean, std: NormalizationPreset.imagenetStd),
                    TransformGoldens.loaded.tensors[c.name]!, c.name)
    }

    @Test func hsvRoundTripMatchesColorsysOnAllGrays() {
        for v in 0...255 {
            let u = UInt8(v)
            #expect(Augment.rgbToHSV(u, u, u) == (0, 0, u))
            #expect(Augment.hsvToRGB(0, 0, u) == (u, u, u))
        }
    }

    @Test func centerCropBoxRoundsHalfToEven() {
        // (37 − 24)/2 = 6.5 → 6 (Python round), (53 − 24)/2 = 14.5 → 14; padding crops start negative.
        #expect(Transforms.centerCropBox(width: 53, height: 37, cropWidth: 24, cropHeight: 24) == CropBox(x: 14, y: 6, width: 24, height: 24))
        #expect(Transforms.centerCropBox(width: 53, height: 37, cropWidth: 60, cropHeight: 40) == CropBox(x: -3, y: -1, width: 60, height: 40))
        #expect(ResizeSize.shorterSide(224).outputSize(width: 512, height: 384) == (224, 298))
    }
}
