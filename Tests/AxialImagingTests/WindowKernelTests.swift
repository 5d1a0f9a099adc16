import AxialCore
import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// The vectorised windowing loop gives the scalar formula's bytes for every input: ordinary HU,
/// the clamp edges, values that round at .5, ±0, ±∞, NaN, and lengths with a scalar tail.
@Suite struct WindowKernelTests {
    @Test func vectorLoopEqualsScalarFormula() {
        var hu: [Float] = [-.infinity, .infinity, .nan, 0, -0, -1024, -1000, -160, -159.999, 240, 239.99, 3071,
                           Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, 1e-30]
        for w in [CTWindow.presets[0], CTWindow(name: "x", width: 1, level: 0.25), CTWindow(name: "y", width: 255, level: 127.5)] {
            // Every value that lands on a .5 boundary of the byte scale, and its neighbours.
            let lo = Float(w.lower), scale = Float(255 / w.width)
            for k in 0...256 {
                let v = lo + (Float(k) - 0.5) / scale
                hu += [v, v.nextUp, v.nextDown]
            }
        }
        var g = RandomGenerator(seed: 4)
        for _ in 0..<1001 { hu.append(g.uniform(-1200, 3000)) }
        for w in CTWindow.presets + [CTWindow(name: "x", width: 1, level: 0.25)] {
            var out = [UInt8](repeating: 7, count: hu.count)
            hu.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { w.apply(s, to: $0) } }
            let expected = hu.map { w.byte($0) }
            #expect(out == expected, "\(w.name): \(zip(out, expected).filter { $0 != $1 }.count) bytes differ")
        }
    }
}
