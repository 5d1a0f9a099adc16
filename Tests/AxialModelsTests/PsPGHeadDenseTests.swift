import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// `PsPGHead` on dense tokens (`tokensPerInstance` K): bags [B, N, K·D].
@Suite struct PsPGHeadDenseTests {
    static func heads(k: Int) throws -> (pooled: PsPGHead, dense: PsPGHead) {
        var c = HeadConfig(kind: .pspg, inputDimension: 6, classes: 3)
        c.hidden = 8; c.embeddingDimension = 5; c.decoderHidden = 8; c.decoderHeads = 2; c.promptSteps = 3
        var g = RandomGenerator(seed: 4)
        let e = Tensor.normal([3, 5], generator: &g)
        let pooled = try Heads.make(c, seed: 9, classEmbeddings: e) as! PsPGHead
        var cd = c; cd.tokensPerInstance = k
        let dense = try Heads.make(cd, seed: 9, classEmbeddings: e) as! PsPGHead
        try dense.copyWeights(from: pooled)
        return (pooled, dense)
    }

    /// One slice of K tokens: the same fusion, memory and prompts as the pooled head on K instances;
    /// the image feature sums the slice's tokens (the paper) where the pooled head averages its
    /// instances — so the dense logits are exactly K × the pooled ones.
    @Test func oneSliceIsThePapersSumOverTokens() throws {
        let k = 5
        let (pooled, dense) = try Self.heads(k: k)
        var g = RandomGenerator(seed: 1)
        let tokens = Tensor.normal([2, k, 6], generator: &g)
        let a = pooled.forward(tokens, mask: Tensor(ones: [2, k]))
        let b = dense.forward(tokens.reshaped([2, 1, k * 6]), mask: Tensor(ones: [2, 1]))
        expectClose(b.logits, a.logits * Float(k), atol: 1e-5, rtol: 1e-5, "dense logits = K × pooled")
        expectClose(b.pairLogits!, a.pairLogits! * Float(k), atol: 1e-5, rtol: 1e-5, "pair logits")
        #expect(b.attention.shape == [2, 1] && b.attention.scalars.allSatisfy { abs($0 - 1) < 1e-6 })
    }

    /// Padded slices change nothing; attention is per slice (sums to 1); gradients reach every parameter.
    @Test func paddedSlicesAreIgnoredAndGradientsFlow() throws {
        let k = 4
        let (_, dense) = try Self.heads(k: k)
        var g = RandomGenerator(seed: 2)
        let two = Tensor.normal([1, 2, k * 6], generator: &g)
        let junk = Tensor.normal([1, 1, k * 6], generator: &g) * 50
        let a = dense.forward(two, mask: Tensor(ones: [1, 2]))
        let b = dense.forward(concat([two, junk], axis: 1), mask: Tensor([1, 1, 0]).reshaped([1, 3]))
        expectClose(b.logits, a.logits, atol: 1e-6, rtol: 1e-5, "padding ignored")
        #expect(b.attention.scalars[2] == 0 && abs(b.attention.scalars[0] + b.attention.scalars[1] - 1) < 1e-6)
        expectClose(b.attention.narrow(axis: 1, start: 0, length: 2), a.attention, atol: 1e-6, rtol: 1e-5, "attention")

        // A slice's fusion weights come from its own tokens only: the conv never crosses slices.
        let x = two.reshaped([1, 2 * k, 6])
        let f = l2Normalize(dense.encoder(x), axis: -1)
        let joint = dense.fusionWeights(f.reshaped([2, k, 8])).reshaped([2 * k])
        let first = dense.fusionWeights(f.narrow(axis: 1, start: 0, length: k)).reshaped([k])
        expectClose(joint.narrow(axis: 0, start: 0, length: k), first, atol: 0, rtol: 0, "slice 0 alone")

        var rng = RandomGenerator(seed: 3)
        let out = dense.forward(two, mask: Tensor(ones: [1, 2]), training: true, rng: &rng)
        (out.logits.square().sum()).backward()
        for (name, p) in dense.namedParameters() {
            let grad = p.grad?.scalars ?? []
            #expect(firstNonFinite(grad) == nil && grad.contains { $0 != 0 }, "\(name) gets a gradient")
        }
    }

    @Test func configChecksAndOldJSON() throws {
        var c = HeadConfig(kind: .abmil, inputDimension: 4, classes: 1)
        c.tokensPerInstance = 50
        #expect(throws: HeadError.self) { try c.validate() }
        // A model config written before the key existed decodes with nil (pooled).
        var p = HeadConfig(kind: .pspg, inputDimension: 4, classes: 2)
        #expect(!p.json.contains("tokens_per_instance") && !p.json.contains("tokensPerInstance"))
        #expect(try HeadConfig.fromJSON(p.json).tokensPerInstance == nil)
        p.tokensPerInstance = 50
        #expect(try HeadConfig.fromJSON(p.json).tokensPerInstance == 50)
    }
}
