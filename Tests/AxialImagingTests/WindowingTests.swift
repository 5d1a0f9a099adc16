import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

@Suite struct WindowingTests {
    @Test func edgesAndCentre() {
        let w = CTWindow(name: "abdomen", width: 400, level: 40)   // [-160, 240]
        #expect(w.byte(-160) == 0)
        #expect(w.byte(-1000) == 0)
        #expect(w.byte(240) == 255)
        #expect(w.byte(3000) == 255)
        #expect(w.byte(40) == 128)           // 127.5 rounds half up
        #expect(w.byte(-160 + 400.0 / 255 * 0.49) == 0)
        #expect(w.byte(-160 + 400.0 / 255 * 0.51) == 1)
        #expect(w.byte(240 - 400.0 / 255 * 0.51) == 254)
        #expect(w.byte(.nan) == 0)
        #expect(w.byte(.infinity) == 255 && w.byte(-.infinity) == 0)
        // The documented formula on a sweep, against Double arithmetic.
        for hu in stride(from: -300.0, through: 300.0, by: 0.37) {
            let expected = UInt8((min(max((hu - (40 - 200)) / 400, 0), 1) * 255 + 0.5).rounded(.down))
            let got = w.byte(Float(hu))
            #expect(abs(Int(got) - Int(expected)) <= 1, "hu \(hu)")
        }
    }

    @Test func lungAndBrainPresets() throws {
        let lung = try CTWindow.parse("lung")
        #expect(lung.lower == -1350 && lung.upper == 150)
        #expect(lung.byte(-1350) == 0 && lung.byte(150) == 255 && lung.byte(-600) == 128)
        let brain = try CTWindow.parse("Brain")
        #expect(brain.byte(0) == 0 && brain.byte(80) == 255 && brain.byte(20) == 64)   // 63.75 → 64
    }

    @Test func presetsRequiredByTheIssue() throws {
        let want: [(String, Double, Double)] = [("abdomen", 400, 40), ("lung", 1500, -600), ("bone", 1800, 400),
                                                ("brain", 80, 40), ("mediastinum", 350, 50)]
        for (name, width, level) in want {
            let w = try CTWindow.parse(name)
            #expect(w.width == width && w.level == level, "\(name)")
        }
    }

    @Test func customSpecs() throws {
        #expect(try CTWindow.parse("W400/L40") == CTWindow(name: "W400_L40", width: 400, level: 40))
        #expect(try CTWindow.parse("w1500/l-600") == CTWindow(name: "W1500_L-600", width: 1500, level: -600))
        #expect(try CTWindow.parse("W1500L−600").level == -600)
        #expect(try CTWindow.parse("350/50") == CTWindow(name: "W350_L50", width: 350, level: 50))
        #expect(try CTWindow.parse("mine=W2.5/L0.5") == CTWindow(name: "mine", width: 2.5, level: 0.5))
        #expect(throws: WindowError.self) { try CTWindow.parse("W0/L40") }
        #expect(throws: WindowError.self) { try CTWindow.parse("W-5/L40") }
        #expect(throws: WindowError.self) { try CTWindow.parse("Wx/L40") }
        do {
            _ = try CTWindow.parse("kidney")
            Issue.record("expected an error")
        } catch let e as WindowError {
            #expect(e.description.contains("unknown window 'kidney'") && e.description.contains("abdomen"))
        }
        #expect(try CTWindow.parseList("abdomen, lung,W80/L40").map(\.name) == ["abdomen", "lung", "W80_L40"])
        #expect(throws: WindowError.self) { try CTWindow.parseList("lung,lung") }
        #expect(throws: WindowError.self) { try CTWindow.parseList(" , ") }
    }

    @Test func separateAndStacked() throws {
        let hu: [Float] = [-1000, -600, 40, 400, 2000, -160]
        let windows = try CTWindow.parseList("abdomen,lung,bone")
        let gray = windows[0].apply(hu, width: 3, height: 2)
        #expect(gray.channels == 1 && gray.pixels == hu.map { windows[0].byte($0) })
        let rgb = try CTWindow.stack(hu, width: 3, height: 2, windows: windows)
        #expect(rgb.channels == 3)
        for i in 0..<hu.count {
            #expect(Array(rgb.pixels[(3 * i)..<(3 * i + 3)]) == windows.map { $0.byte(hu[i]) })
        }
        // Two windows: the last is repeated into the blue channel.
        let two = try CTWindow.stack(hu, width: 3, height: 2, windows: Array(windows.prefix(2)))
        for i in 0..<hu.count { #expect(two.pixels[3 * i + 2] == windows[1].byte(hu[i])) }
        #expect(throws: WindowError.self) {
            try CTWindow.stack(hu, width: 3, height: 2, windows: windows + [CTWindow.presets[3]])
        }
    }
}

@Suite struct ResizeTests {
    @Test func bilinearUpsampleMatchesTorchAlignCornersFalse() {
        // torch.nn.functional.interpolate(x[None,None], size=(1,4), mode="bilinear", align_corners=False)
        // on [[0, 8]] gives [[0, 2, 6, 8]].
        let r = Resampler(inWidth: 2, inHeight: 1, outWidth: 4, outHeight: 1)
        #expect(r([0, 8]) == [0, 2, 6, 8])
        // 2×2 → 4×4: separable product of the 1-D weights.
        let r2 = Resampler(inWidth: 2, inHeight: 2, outWidth: 4, outHeight: 4)
        let out = r2([0, 8, 16, 24])
        let row: [Float] = [0, 2, 6, 8], col: [Float] = [0, 4, 12, 16]
        for y in 0..<4 { for x in 0..<4 { #expect(out[y * 4 + x] == row[x] + col[y]) } }
    }

    @Test func areaDownsample() {
        // Integer factor: block means.
        let r = Resampler(inWidth: 4, inHeight: 2, outWidth: 2, outHeight: 1)
        #expect(r([1, 3, 5, 7, 3, 5, 7, 9]) == [3, 7])
        // 3 → 2: out0 = (x0 + x1/2)/1.5, out1 = (x1/2 + x2)/1.5.
        let r3 = Resampler(inWidth: 3, inHeight: 1, outWidth: 2, outHeight: 1)
        let o = r3([3, 6, 9])
        #expect(abs(o[0] - 4) < 1e-5 && abs(o[1] - 8) < 1e-5)
    }

    @Test func constantsAndMeansArePreserved() {
        let w = 37, h = 23
        let img = (0..<(w * h)).map { Float(($0 * 7919) % 101) }
        let mean = img.reduce(0, +) / Float(img.count)
        for (ow, oh) in [(16, 8), (37, 23), (64, 50), (10, 23)] {
            let r = Resampler(inWidth: w, inHeight: h, outWidth: ow, outHeight: oh)
            #expect(r([Float](repeating: -600, count: w * h)).allSatisfy { abs($0 + 600) < 1e-3 })
            if ow <= w && oh <= h {   // area averaging keeps the image mean
                let out = r(img)
                #expect(abs(out.reduce(0, +) / Float(out.count) - mean) < 1e-3)
            }
        }
    }

    @Test func singleBrightPixelSurvivesDownsampling() {
        var img = [Float](repeating: 0, count: 8 * 8)
        img[3 * 8 + 5] = 64
        let out = Resampler(inWidth: 8, inHeight: 8, outWidth: 2, outHeight: 2)(img)
        #expect(out == [0, 4, 0, 0])
    }
}
