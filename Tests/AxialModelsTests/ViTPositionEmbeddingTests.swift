import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// `ViTPositionEmbedding.resample` against timm 1.0.31's `resample_abs_pos_embed` and its ViT
/// `checkpoint_filter_fn` (Tools/goldens/make_vit_posembed_goldens.py).
@Suite struct ViTPositionEmbeddingTests {
    static let fixture = Result {
        try SafeTensors.read(Bundle.module.url(forResource: "vit_posembed", withExtension: "safetensors", subdirectory: "Fixtures/encoders")!).tensors
    }

    static func maxDiff(_ a: Tensor, _ b: Tensor) -> Float {
        a.shape == b.shape ? maxAbsDifference(a.scalars, b.scalars) : .infinity
    }

    @Test(arguments: [(16, 16), (10, 10), (12, 18), (14, 14), (7, 21)])
    func matchesTimm(_ grid: (Int, Int)) throws {
        let t = try Self.fixture.get()
        let pe = try #require(t["pe"])
        for aa in [0, 1] {
            let want = try #require(t["out/\(grid.0)x\(grid.1)/aa\(aa)"])
            let got = ViTPositionEmbedding.resample(pe, toGrid: grid, antialias: aa == 1)
            #expect(got.shape == want.shape)
            #expect(Self.maxDiff(got, want) < 2e-5, "grid \(grid) antialias \(aa): \(Self.maxDiff(got, want))")
        }
    }

    @Test func checkpointAtAnotherSizeLoadsLikeTimm() throws {
        let t = try Self.fixture.get()
        var g = RandomGenerator(seed: 1)
        let model = VisionTransformer(ViTConfig(imageSize: 32, patchSize: 8, embedDim: 16, depth: 1, numHeads: 2), generator: &g)
        let remapped = model.remapCheckpointKeys(["pos_embed": try #require(t["vit/pe6"])])
        let want = try #require(t["vit/pe4_filtered"])
        let got = try #require(remapped["pos_embed"])
        #expect(got.shape == [1, 17, 16] && Self.maxDiff(got, want) < 2e-5)

        // A whole checkpoint made at 48 px loads strictly into the model at 32 px.
        var g2 = RandomGenerator(seed: 2)
        let big = VisionTransformer(ViTConfig(imageSize: 48, patchSize: 8, embedDim: 16, depth: 1, numHeads: 2), generator: &g2)
        try model.loadCheckpoint(big.stateDict())
        #expect(Self.maxDiff(model.posEmbed.value, ViTPositionEmbedding.resample(big.posEmbed.value, toGrid: (4, 4))) == 0)

        // The registry at another input size.
        let spec = try EncoderRegistry.spec("vit_test", inputSize: 48)
        #expect(spec.preprocessing.inputSize == 48)
        if case .vit(let c) = spec.architecture { #expect(c.gridSize == 6) } else { Issue.record("not a ViT") }
        #expect(throws: EncoderError.self) { try EncoderRegistry.spec("vit_test", inputSize: 50) }
        #expect(throws: EncoderError.self) { try EncoderRegistry.spec("mambaout_test", inputSize: 64) }
    }
}
