import AxialTensor
import Foundation

// PsPG's training augmentation (REFERENCE.md §5, dataloader/data_aug.py `RandomAugmentation`):
// two transforms drawn without replacement from {resize_crop, rotate, color_jitter, affine},
// applied in the drawn order, then a horizontal flip with probability 0.5. Parameters are the
// reference's defaults (utils/cfg_builder.py): RandomResizedCrop(size, scale (0.8, 1)),
// RandomRotation(±10°), ColorJitter(brightness 0.8–1.2, contrast 0.8–1.2), RandomAffine(±10°,
// translate 0.0625, scale 0.9–1.1). Rotation and affine resample with nearest neighbour and fill
// 0 (torchvision's defaults for both); the crop is resized with `interpolation`.

public struct PsPGAugmentConfig: Sendable, Equatable, Codable {
    public var size: Int = 224
    public var cropScale: [Double] = [0.8, 1.0]
    public var rotateDegrees: Double = 10
    public var brightness: [Double] = [0.8, 1.2]
    public var contrast: [Double] = [0.8, 1.2]
    public var affineDegrees: Double = 10
    public var affineTranslate: Double = 0.0625
    public var affineScale: [Double] = [0.9, 1.1]
    public var flipProbability: Double = 0.5
    public var interpolation: Interpolation = .bicubic
    public init(size: Int = 224) { self.size = size }
}

public enum PsPGAugment {
    public enum Op: String, CaseIterable, Sendable { case resizeCrop = "resize_crop", rotate, colorJitter = "color_jitter", affine }

    /// Inverse-mapped affine warp about the image centre (nearest neighbour, fill 0): output pixel
    /// p ← input c + (1/s)·R(−θ)·(p − c − t), θ in degrees (counter-clockwise on screen, as
    /// torchvision), t in pixels.
    public static func affine(_ image: PlanarImage8, degrees: Double, translate: (Double, Double) = (0, 0), scale: Double = 1) -> PlanarImage8 {
        precondition(scale > 0, "PsPGAugment.affine: scale \(scale) must be positive")
        let w = image.width, h = image.height
        var out = PlanarImage8(zerosWidth: w, height: h, channels: image.channels)
        let th = degrees * Double.pi / 180
        let cosT = Foundation.cos(th), sinT = Foundation.sin(th)
        let cx = Double(w) * 0.5, cy = Double(h) * 0.5
        let plane = w * h
        for y in 0..<h {
            for x in 0..<w {
                let dx = Double(x) + 0.5 - cx - translate.0, dy = Double(y) + 0.5 - cy - translate.1
                // Screen counter-clockwise by θ (y down): the inverse rotates by −θ.
                let sx = (cosT * dx - sinT * dy) / scale + cx, sy = (sinT * dx + cosT * dy) / scale + cy
                let ix = Int((sx - 0.5).rounded(.toNearestOrEven)), iy = Int((sy - 0.5).rounded(.toNearestOrEven))
                guard ix >= 0 && ix < w && iy >= 0 && iy < h else { continue }
                for c in 0..<image.channels { out.pixels[c * plane + y * w + x] = image.pixels[c * plane + iy * w + ix] }
            }
        }
        return out
    }

    static func uniform(_ r: [Double], _ g: inout RandomGenerator) -> Double { Augment.uniform(r[0], r[1], &g) }

    /// One transform with its random parameters (torchvision's ranges).
    public static func apply(_ op: Op, _ image: PlanarImage8, config: PsPGAugmentConfig, generator g: inout RandomGenerator) -> PlanarImage8 {
        switch op {
        case .resizeCrop:
            let box = Augment.randomResizedCropBox(width: image.width, height: image.height,
                                                   scale: (config.cropScale[0], config.cropScale[1]), generator: &g)
            return PILResample.resize(image, box: box, width: config.size, height: config.size, filter: config.interpolation)
        case .rotate:
            return affine(image, degrees: Augment.uniform(-config.rotateDegrees, config.rotateDegrees, &g))
        case .colorJitter:
            let order = g.permutation(2)
            let b = uniform(config.brightness, &g), c = uniform(config.contrast, &g)
            var out = image
            for o in order { out = o == 0 ? Augment.brightness(out, factor: b) : Augment.contrast(out, factor: c) }
            return out
        case .affine:
            let angle = Augment.uniform(-config.affineDegrees, config.affineDegrees, &g)
            let mx = config.affineTranslate * Double(image.width), my = config.affineTranslate * Double(image.height)
            let tx = Augment.uniform(-mx, mx, &g).rounded(), ty = Augment.uniform(-my, my, &g).rounded()
            return affine(image, degrees: angle, translate: (tx, ty), scale: uniform(config.affineScale, &g))
        }
    }

    /// The training view: resize to size × size (if needed), two random transforms, h-flip.
    /// Returns the view and the ops drawn (for logs and tests).
    public static func view(_ image: PlanarImage8, config: PsPGAugmentConfig, generator g: inout RandomGenerator) -> (PlanarImage8, [Op]) {
        var out = image.width == config.size && image.height == config.size
            ? image : PILResample.resize(image, width: config.size, height: config.size, filter: config.interpolation)
        let perm = g.permutation(Op.allCases.count)
        let ops = perm.prefix(2).map { Op.allCases[$0] }
        for op in ops { out = apply(op, out, config: config, generator: &g) }
        if Augment.uniform(0, 1, &g) < config.flipProbability { out = Augment.horizontalFlip(out) }
        return (out, ops)
    }
}
