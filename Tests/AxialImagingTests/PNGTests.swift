import Foundation
import AxialTestSupport
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

    /// A CT-like slice (flat background, smooth ramp, noise) in both modes: libpng reads back the
    /// exact pixels, and so does Python's PIL when it is installed.
    @Test(arguments: [1, 3], [true, false])
    func largeImageReadByLibpngAndPIL(channels: Int, fast: Bool) throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (w, h) = (128, 96)
        var g = UInt32(7)
        let pixels = (0..<(w * h * channels)).map { i -> UInt8 in
            g = g &* 1664525 &+ 1013904223
            let x = (i / channels) % w, y = (i / channels) / w
            if x < 20 { return 0 }
            if y > 80 { return 255 }
            return UInt8(truncatingIfNeeded: x + 2 * y + Int(g >> 29))
        }
        let image = Image8(width: w, height: h, channels: channels, pixels: pixels)
        let url = dir.appendingPathComponent("ct.png")
        try PNG.write(image, to: url, fast: fast)
        #expect(try PNG.read(url) == image)
        let inPlace = dir.appendingPathComponent("in-place.png")
        try PNG.writeInPlace(image, to: inPlace, fast: fast)
        #expect(try Data(contentsOf: inPlace) == Data(contentsOf: url))

        let candidates = ["/tmp/venv/bin/python", "/usr/bin/python3"].filter { FileManager.default.isExecutableFile(atPath: $0) }
        for python in candidates {
            let raw = dir.appendingPathComponent("pil.raw")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = ["-c", "import sys\ntry:\n from PIL import Image\nexcept ImportError:\n sys.exit(3)\n"
                + "im = Image.open(sys.argv[1]); im.load(); open(sys.argv[2], 'wb').write(im.tobytes()); print(im.mode)",
                           url.path, raw.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            if p.terminationStatus == 3 { continue }   // no PIL for this interpreter
            #expect(p.terminationStatus == 0)
            let mode = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(mode.hasPrefix(channels == 3 ? "RGB" : "L"))
            #expect([UInt8](try Data(contentsOf: raw)) == pixels)
            break
        }
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
