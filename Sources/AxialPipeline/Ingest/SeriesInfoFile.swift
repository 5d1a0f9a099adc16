import AxialCore
import AxialImaging
import AxialStore
import Foundation

/// `series.json` beside each ingested series' `slices.csv`: what the PNGs do not carry.
///
///     {"format": "axial-series v1",
///      "spacing_mm": [x, y, z],          voxel spacing of the source volume (mm)
///      "shape": [depth, height, width],  of the source volume
///      "image_size": [height, width],    of the PNGs (differs from the volume's with --size)
///      "pixel_spacing_mm": [x, y],       in-plane spacing of the PNGs' pixels (mm)
///      "channels": "separate" | "stacked",
///      "windows": [{"name", "width", "level"}, …]}   in the order ingest applied them
///
/// Older ingest folders have no `series.json`; readers treat it as optional.
public struct SeriesInfoFile: Codable, Sendable, Equatable {
    public static let name = "series.json"
    public static let formatTag = "axial-series v1"

    public var format: String
    public var spacingMM: [Double]
    public var shape: [Int]
    public var imageSize: [Int]
    public var pixelSpacingMM: [Double]
    public var channels: ChannelMode
    public var windows: [CTWindow]

    enum CodingKeys: String, CodingKey {
        case format, shape, channels, windows
        case spacingMM = "spacing_mm", imageSize = "image_size", pixelSpacingMM = "pixel_spacing_mm"
    }

    public init(_ volume: Volume, windows: [CTWindow], channels: ChannelMode, size: Int?) {
        format = SeriesInfoFile.formatTag
        spacingMM = [volume.spacing.x, volume.spacing.y, volume.spacing.z]
        shape = [volume.depth, volume.height, volume.width]
        let (h, w) = size.map { ($0, $0) } ?? (volume.height, volume.width)
        imageSize = [h, w]
        pixelSpacingMM = [volume.spacing.x * Double(volume.width) / Double(w), volume.spacing.y * Double(volume.height) / Double(h)]
        self.channels = channels
        self.windows = windows
    }

    public func write(to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try e.encode(self), to: url)
    }

    /// Reads `url`; nil when the file does not exist (ingest folders from before `series.json`).
    public static func readIfPresent(_ url: URL) throws -> SeriesInfoFile? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let s = try JSONDecoder().decode(SeriesInfoFile.self, from: Data(contentsOf: url))
            guard s.spacingMM.count == 3 else { throw PipelineError.io(path: url.path, reason: "spacing_mm needs 3 numbers") }
            return s
        } catch let e as PipelineError {
            throw e
        } catch {
            throw PipelineError.io(path: url.path, reason: "not a valid \(name): \(error)")
        }
    }
}
