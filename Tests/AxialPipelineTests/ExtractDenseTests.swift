import AxialImaging
import AxialModels
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// `axial extract --tokens dense`: RN50's 50 dense tokens per slice in `dense_tokens`.
@Suite struct ExtractDenseTests {
    @Test func storesEncodeDenseTokensFloat32AndFloat16() throws {
        let root = scratch("dense-in"), out32 = scratch("dense-out32"), out16 = scratch("dense-out16")
        try syntheticIngest(root, patients: ["P1"], slices: 2, windows: ["abdomen"])
        var o = ExtractOptions(input: root, output: out32, encoder: "clip_rn50", seed: 3, batchSize: 2, progress: .quiet)
        o.tokens = .dense
        let s = try Extract.run(o)
        #expect(s.written == 1 && s.slices == 2)
        let url = out32.appendingPathComponent("P1.h5")
        #expect(FeatureStore.isComplete(url) && FeatureStore.hasDenseTokens(url))
        let (f, _) = try FeatureStore.read(url)
        guard let (t, precision) = try FeatureStore.readDenseTokens(url) else { Issue.record("no dense_tokens"); return }
        #expect(precision == .float32 && t.tokensPerRow == 50 && t.dimension == 1024 && t.rows == 2 && f.featDim == 1024)
        #expect(t.layout == DenseTokens.clipResNetLayout)
        let pre = try FeatureStore.readProvenance(url)
        #expect(pre?.preprocessing.contains("\"tokens\"") == true)

        // Each slice's tokens = encodeDense on that preprocessed slice alone; token 0 = the feats row.
        let spec = try EncoderRegistry.spec("clip_rn50")
        let model = spec.makeModel(seed: 3) as! CLIPModifiedResNet
        let prep = Extract.preprocess(for: spec)
        for i in 0..<f.count {
            let path = root.appendingPathComponent("P1/1.2.3/\(String(format: "%04d", f.sliceIndex[i]))_abdomen.png")
            let x = prep.batch([PlanarImage8(try PNG.read(path))])
            let ref = withNoGrad { model.encodeDense(x, globalToken: .raw).tokens }.reshaped([50, 1024])
            let stored = Tensor(shape: [50, 1024], scalars: Array(t.values[(i * 50 * 1024)..<((i + 1) * 50 * 1024)]))
            let err = encoderError(stored, ref)
            #expect(err < 1e-5, "slice \(i): relative error \(err)")
            #expect(Array(stored.scalars.prefix(1024)) == Array(f.row(i)), "token 0 is the feats row")
        }

        // float16: the same tokens rounded to binary16 (relative 2⁻¹¹, subnormals 2⁻²⁴ absolute).
        var o16 = o
        o16.output = out16; o16.precision = .float16
        _ = try Extract.run(o16)
        guard let (t16, p16) = try FeatureStore.readDenseTokens(out16.appendingPathComponent("P1.h5")) else { Issue.record("no fp16 tokens"); return }
        #expect(p16 == .float16 && t16.rows == 2 && t16.tokensPerRow == 50)
        var worst: Float = 0
        for (a, b) in zip(t16.values, t.values) {
            guard a.isFinite, b.isFinite else { Issue.record("non-finite token \(a) / \(b)"); break }
            worst = max(worst, abs(a - b) / (abs(b) * 0x1p-11 + 0x1p-24))
        }
        #expect(worst <= 1, "fp16 round trip: \(worst) × the binary16 half-ulp bound")

        // A rerun skips the complete file; a pooled run into the dense folder is refused (never mixed).
        #expect(try Extract.run(o).skipped == 1)
        var pooled = o
        pooled.tokens = .pooled
        #expect(throws: PipelineError.self) { try Extract.run(pooled) }

        // h5py reads the dataset: shape, dtype, token 0 = feats.
        let check = """
        import sys, h5py, numpy as np
        for path, dt in ((sys.argv[1], "<f4"), (sys.argv[2], "<f2")):
            with h5py.File(path, "r") as f:
                t = f["dense_tokens"]
                assert t.shape == (2, 50, 1024) and t.dtype == np.dtype(dt), (t.shape, t.dtype)
                assert np.array_equal(t[:, 0, :], f["feats"][()])
                assert "global" in t.attrs["token_layout"]
        print("ok")
        """
        if let r = try runPython(check, [url.path, out16.appendingPathComponent("P1.h5").path]) { #expect(r.contains("ok")) }
    }

    @Test func denseTokensOnlyForEncodersThatHaveThem() throws {
        let root = scratch("dense-bad-in"), out = scratch("dense-bad-out")
        try syntheticIngest(root, patients: ["P1"], slices: 1, windows: ["abdomen"])
        var o = ExtractOptions(input: root, output: out, encoder: "vit_test", seed: 1, batchSize: 2, progress: .quiet)
        o.tokens = .dense
        do { _ = try Extract.run(o); Issue.record("vit_test with --tokens dense was accepted") } catch {
            let m = "\(error)"
            #expect(m.contains("--tokens") && m.contains("clip_rn50") && m.contains("vit_test"), "\(m)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("P1.h5").path))
    }

    @Test func storeRefusesMisShapedDenseTokens() throws {
        let dir = scratch("dense-store")
        let meta = FeatureStoreMetadata(encoder: "x", encoderSHA256: "y", windows: [StoredWindow(name: "w", width: 1, level: 0)],
                                        patientID: "p", studyUID: "s", seriesUID: "r", spacingMM: [1, 1, 1])
        var f = PatientFeatures(metadata: meta, featDim: 2, feats: [1, 2, 3, 4], sliceIndex: [0, 1], zMM: [0, 1], window: [0, 0])
        f.denseTokens = DenseTokens(tokensPerRow: 3, dimension: 2, values: [Float](repeating: 1, count: 11))
        #expect(throws: StoreError.self) { try FeatureStore.write(f, to: dir.appendingPathComponent("bad.h5")) }
        f.denseTokens = DenseTokens(tokensPerRow: 3, dimension: 2, values: (0..<12).map(Float.init))
        let url = dir.appendingPathComponent("good.h5")
        try FeatureStore.write(f, to: url)
        let back = try FeatureStore.readDenseTokens(url)
        #expect(back?.tokens.values == (0..<12).map(Float.init) && back?.tokens.tokensPerRow == 3)
        // A file without dense tokens reads nil.
        f.denseTokens = nil
        let plain = dir.appendingPathComponent("plain.h5")
        try FeatureStore.write(f, to: plain)
        #expect(try FeatureStore.readDenseTokens(plain) == nil && !FeatureStore.hasDenseTokens(plain))
    }
}
