import Foundation
import AxialTestSupport
import Testing
@testable import AxialTensor

@Suite("safetensors")
struct SafeTensorsTests {
    func fixture(_ name: String) -> URL { Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "safetensors")! }

    @Test func readsFileWrittenByPythonSafetensors() throws {
        let (t, meta) = try SafeTensors.read(fixture("dtypes"))
        let (expected, _) = try SafeTensors.read(fixture("dtypes_expected"))
        #expect(meta == ["format": "pt", "note": "dtypes"])
        #expect(t["f32"]!.shape == [2, 4])
        #expect(t["f32"]!.scalars == [0.0, -1.5, 3.140625, 65504.0, 1e-3, -2.0e-5, 0.333, 7.0])
        #expect(t["f64"]!.scalars == t["f32"]!.scalars)
        #expect(t["f16"]!.scalars == expected["f16"]!.scalars)   // F16 incl. subnormal -2e-5 and 65504
        #expect(t["bf16"]!.scalars == expected["bf16"]!.scalars)
        #expect(t["i64"]!.scalars == [1, -2, 3])
        #expect(t["i32"]!.shape == [2, 1] && t["i32"]!.scalars == [7, -8])
    }

    @Test func roundTripF32AndF16() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = RandomGenerator(seed: 3)
        let a = Tensor.normal([3, 5], generator: &g), b = Tensor(2.5), c = Tensor(zeros: [0, 4])
        let url = dir.appendingPathComponent("w.safetensors")
        try SafeTensors.write(["a": a, "b": b, "c": c], metadata: ["epoch": "3"], to: url)
        let (r, meta) = try SafeTensors.read(url)
        #expect(meta == ["epoch": "3"])
        #expect(r["a"]!.shape == [3, 5] && r["a"]!.scalars == a.scalars)
        #expect(r["b"]!.shape == [] && r["b"]!.item() == 2.5)
        #expect(r["c"]!.shape == [0, 4])
        try SafeTensors.write(["a": a], to: url, dtype: .F16)          // overwrite atomically
        let (h, _) = try SafeTensors.read(url)
        let expected = a.scalars.map { SafeTensors.halfToFloat(SafeTensors.floatToHalf($0)) }
        #expect(h["a"]!.scalars == expected)
        #expect(zip(expected, a.scalars).allSatisfy { Swift.abs($0 - $1) <= Swift.abs($1) * 1e-3 })
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["w.safetensors"])
    }

    @Test func halfConversionEdgeCases() {
        for (f, h): (Float, UInt16) in [(0, 0), (1, 0x3C00), (-2, 0xC000), (65504, 0x7BFF), (1e6, 0x7C00), (0x1p-24, 0x0001), (0.1, 0x2E66)] {
            #expect(SafeTensors.floatToHalf(f) == h, "\(f)")
        }
        #expect(SafeTensors.halfToFloat(0x7C00) == .infinity)
        #expect(SafeTensors.halfToFloat(0x0001) == 0x1p-24)
    }

    @Test func errorsNameFileAndKey() throws {
        let dir = FileManager.default.temporaryDirectory
        let url = dir.appendingPathComponent("axial-bad-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let header = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#
        var d = Data(); withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(header.data(using: .utf8)!); d.append(Data(count: 12))
        try d.write(to: url)
        do { _ = try SafeTensors.read(url); Issue.record("expected an error") } catch let e as SafeTensorsError {
            #expect("\(e)".contains(url.path) && "\(e)".contains("'w'"))
        }
        do { _ = try SafeTensors.read(dir.appendingPathComponent("missing-\(UUID().uuidString).safetensors")); Issue.record("expected an error") }
        catch let e as SafeTensorsError { #expect("\(e)".contains("missing-")) }
    }
}

@Suite("Random numbers")
struct RandomTests {
    @Test func reproducibleAndRestorable() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        #expect((0..<10).map { _ in a.next() } == (0..<10).map { _ in b.next() })
        let saved = a.state
        let x = Tensor.normal([100], generator: &a)
        var c = RandomGenerator(state: saved)
        #expect(Tensor.normal([100], generator: &c).scalars == x.scalars)
        var d = RandomGenerator(seed: 43)
        #expect(d.next() != RandomGenerator(seed: 42).state[0])
    }

    @Test func xoshiroReferenceValues() {
        // Reference xoshiro256** output for state {1, 2, 3, 4} (from the authors' C code): 11520, 0, 1509978240, 1215971899390074240.
        var g = RandomGenerator(state: [1, 2, 3, 4])
        #expect([g.next(), g.next(), g.next(), g.next()] == [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
    }

    @Test func distributions() {
        var g = RandomGenerator(seed: 1)
        let n = 20000
        let u = Tensor.uniform([n], low: -1, high: 3, generator: &g)
        #expect(u.scalars.allSatisfy { $0 >= -1 && $0 < 3 })
        #expect(Swift.abs(u.mean().item() - 1) < 0.05)
        let z = Tensor.normal([n], mean: 2, std: 0.5, generator: &g)
        #expect(Swift.abs(z.mean().item() - 2) < 0.02 && Swift.abs(z.std().item() - 0.5) < 0.02)
        // timm trunc_normal_(std=.02, a=-2, b=2) on a small std: effectively N(0, 0.02²), bounds absolute.
        let t = Tensor.truncatedNormal([n], mean: 0, std: 1, a: -0.5, b: 1.5, generator: &g)
        #expect(t.scalars.allSatisfy { $0 >= -0.5 && $0 <= 1.5 })
        // Mean of N(0,1) truncated to [-0.5, 1.5]: (φ(-0.5) − φ(1.5)) / (Φ(1.5) − Φ(-0.5)) ≈ 0.22255 / 0.62465 = 0.3563
        #expect(Swift.abs(t.mean().item() - 0.3563) < 0.02)
        let bern = Tensor.bernoulli([n], p: 0.3, generator: &g)
        #expect(Swift.abs(bern.mean().item() - 0.3) < 0.02)
        let p = g.permutation(50)
        #expect(p.sorted() == Array(0..<50) && p != Array(0..<50))
        let ints = (0..<1000).map { _ in g.int(below: 7) }
        #expect(Set(ints) == Set(0..<7))
    }

    @Test func dropoutScalesAndIsSeeded() {
        var g1 = RandomGenerator(seed: 5), g2 = RandomGenerator(seed: 5)
        let x = Tensor(ones: [1000])
        let y1 = dropout(x, p: 0.25, generator: &g1), y2 = dropout(x, p: 0.25, generator: &g2)
        #expect(y1.scalars == y2.scalars)
        #expect(y1.scalars.allSatisfy { $0 == 0 || Swift.abs($0 - 4.0 / 3.0) < 1e-6 })
        #expect(Swift.abs(y1.mean().item() - 1) < 0.1)
        #expect(dropout(x, p: 0.5, training: false, generator: &g1).scalars == x.scalars)
        // Gradient flows through the mask.
        let xg = x.requiringGrad()
        var g3 = RandomGenerator(seed: 5)
        dropout(xg, p: 0.25, generator: &g3).sum().backward()
        #expect(xg.grad!.scalars == y1.scalars)
    }
}
