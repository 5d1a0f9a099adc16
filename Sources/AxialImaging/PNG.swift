import CPNG
import Foundation

/// An 8-bit image, rows top to bottom, x fastest, channels interleaved (1 = gray, 3 = RGB).
public struct Image8: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "Image8: channels must be 1 or 3, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image8: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// PNG reading and writing through libpng's simplified API (8-bit gray and RGB).
public enum PNG {
    /// Writes `image` to `url` atomically: a temporary `.name.tmp-…` in the same folder, then
    /// `rename(2)`. `fast` asks libpng for speed over size (`PNG_IMAGE_FLAG_FAST`: zlib level 1-ish
    /// and cheap filters); the pixels are identical either way.
    public static func write(_ image: Image8, to url: URL, fast: Bool = true) throws {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(tag)")
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        png.flags = fast ? UInt32(PNG_IMAGE_FLAG_FAST) : 0
        let ok = image.pixels.withUnsafeBytes { bytes in
            png_image_write_to_file(&png, temporary.path, 0, bytes.baseAddress, Int32(image.width * image.channels), nil)
        }
        if ok == 0 {
            let message = messageText(&png)
            png_image_free(&png)
            unlink(temporary.path)
            throw ImagingError.unreadable(path: url.path, reason: "cannot write PNG: \(message)")
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw ImagingError.unreadable(path: url.path, reason: "cannot rename PNG into place: \(reason)")
        }
    }

    /// Reads a PNG as 8-bit gray (`channels: 1`) or RGB (`channels: 3`); libpng converts other
    /// colour types (palette, 16-bit, alpha: composited on black) to the requested format. With
    /// `channels: nil` the file's own colour (gray or RGB) is kept.
    public static func read(_ url: URL, channels: Int? = nil) throws -> Image8 {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&png, url.path) != 0 else {
            let message = messageText(&png)
            png_image_free(&png)
            throw ImagingError.unreadable(path: url.path, reason: "not a readable PNG: \(message)")
        }
        let isColor = (png.format & UInt32(PNG_FORMAT_FLAG_COLOR)) != 0
        let c = channels ?? (isColor ? 3 : 1)
        guard c == 1 || c == 3 else {
            png_image_free(&png)
            throw ImagingError.unsupported(path: url.path, reason: "PNG channels must be 1 or 3, asked \(c)")
        }
        png.format = c == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let width = Int(png.width), height = Int(png.height)
        var pixels = [UInt8](repeating: 0, count: width * height * c)
        let ok = pixels.withUnsafeMutableBytes { bytes in
            png_image_finish_read(&png, nil, bytes.baseAddress, Int32(width * c), nil)
        }
        guard ok != 0 else {
            let message = messageText(&png)
            png_image_free(&png)
            throw ImagingError.unreadable(path: url.path, reason: "cannot decode PNG: \(message)")
        }
        return Image8(width: width, height: height, channels: c, pixels: pixels)
    }

    private static func messageText(_ png: inout png_image) -> String {
        withUnsafeBytes(of: &png.message) { raw in
            let bytes = raw.bindMemory(to: CChar.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: raw.prefix(end), as: UTF8.self)
        }
    }
}
