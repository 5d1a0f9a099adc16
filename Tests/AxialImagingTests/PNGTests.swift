import Foundation
import Testing
@testable import AxialImaging

@Suite struct PNGTests {
    func folder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-png-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [1, 3], [true, false])
    func roundTrip(channels: Int, fast: Bool) throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (w, h) = (17, 9)
        let pixels = (0..<(w * h * channels)).map { UInt8(($0 * 37 + 11) % 256) }
        let image = Image8(width: w, height: h, channels: channels, pixels: pixels)
        let url = dir.appendingPathComponent("x.png")
        try PNG.write(image, to: url, fast: fast)
        #expect(try PNG.read(url) == image)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["x.png"])
        // The PNG signature and IHDR colour type (0 gray, 2 RGB), bit depth 8.
        let bytes = [UInt8](try Data(contentsOf: url))
        #expect(Array(bytes[0..<8]) == [137, 80, 78, 71, 13, 10, 26, 10])
        #expect(bytes[24] == 8 && bytes[25] == (channels == 3 ? 2 : 0))
    }

    @Test func grayReadAsRGBAndBack() throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("g.png")
        try PNG.write(Image8(width: 2, height: 1, channels: 1, pixels: [0, 255]), to: url)
        #expect(try PNG.read(url, channels: 3).pixels == [0, 0, 0, 255, 255, 255])
    }

    @Test func errorsNameTheFile() throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.png")
        try Data("not a png".utf8).write(to: bad)
        do {
            _ = try PNG.read(bad)
            Issue.record("expected an error")
        } catch let e as ImagingError {
            #expect(e.description.hasPrefix(bad.path))
        }
        let nowhere = dir.appendingPathComponent("missing/x.png")
        #expect(throws: ImagingError.self) {
            try PNG.write(Image8(width: 1, height: 1, channels: 1, pixels: [1]), to: nowhere)
        }
    }
}
