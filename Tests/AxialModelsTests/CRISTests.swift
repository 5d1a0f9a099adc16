import AxialNN
import AxialTensor
import Foundation
import Testing
import AxialTestSupport
@testable import AxialModels

/// Fixtures/cris.safetensors from Tools/goldens/make_cris_goldens.py (a torch re-statement of CRIS as
/// medvlsm runs it, tiny random config = `CRISConfig.crisTest` with dropout 0, computed in float64).
struct CRISFixture: @unchecked Sendable {
    let tensors: [String: Tensor]
    let metadata: [String: String]
    init() throws {
        let url = try #require(Bundle.module.url(forResource: "cris", withExtension: "safetensors", subdirectory: "Fixtures"))
        (tensors, metadata) = try SafeTensors.read(url)
    }
    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("cris fixture has no tensor \(key)") }
        return t
    }
    func sub(_ prefix: String) -> [String: Tensor] { EncoderWeights.subtree(tensors, prefix: prefix) }
}

@Suite struct CRISTests {
    static let fixture = Result { try CRISFixture() }

    static var testConfig: CRISConfig {
        var c = CRISConfig.crisTest
        c.dropout = 0   // the fixture's train-mode pass is deterministic
        return c
    }

    func reference() throws -> (CRIS, CRISFixture) {
        let f = try Self.fixture.get()
        let m = CRIS(Self.testConfig)
        try m.load(state: f.sub("ref."), file: "cris.safetensors")
        return (m, f)
    }

    @Test func keysAreCRISNames() throws {
        let (m, f) = try reference()
        #expect(Set(m.stateDict().keys) == Set(f.sub("ref.").keys))
        for k in ["backbone.visual.attnpool.connect.0.weight", "backbone.visual.attnpool.connect.1.running_var", "backbone.ln_final.weight",
                  "backbone.text_projection", "backbone.logit_scale", "neck.coordconv.0.conv1.0.weight", "neck.norm_layer.0.weight",
                  "decoder.layers.1.ffn.3.weight", "decoder.norm.bias", "proj.vis.4.bias", "proj.txt.weight"] {
            #expect(m.stateDict()[k] != nil, "missing \(k)")
        }
    }

    /// The real-size model (RN50, medvlsm's word_len 77) has CRIS's 662 keys with their shapes.
    @Test func fullSizeKeysAndShapes() throws {
        let f = try Self.fixture.get()
        let json = try #require(f.metadata["full_keys"]?.data(using: .utf8))
        let expected = try #require(try JSONSerialization.jsonObject(with: json) as? [String: [Int]])
        var g = RandomGenerator(seed: 1)
        let m = CRIS(.cris, generator: &g)
        let shapes = Dictionary(uniqueKeysWithValues: m.stateDict().map { ($0.key, $0.value.shape) })
        #expect(shapes.count == expected.count)
        #expect(Set(shapes.keys) == Set(expected.keys))
        for (k, s) in expected where shapes[k] != s { Issue.record("\(k): \(shapes[k] ?? []) vs CRIS \(s)") }
        #expect(CRISConfig.cris.fpnIn == [512, 1024, 1024])
        #expect(abs(CRISConfig.cris.logitThreshold - Foundation.log(Float(0.35) / 0.65)) < 1e-6)
    }

    @Test(arguments: [false, true])
    func evalModeMatchesReference(trimPadding: Bool) throws {
        let (m, f) = try reference()
        m.eval()
        let out = withNoGrad { m.forward(f["pixels"], ids: f["ids"], trimPadding: trimPadding) }
        expectSegClose(out.c3, f["eval.c3"], 1e-4, "C3")
        expectSegClose(out.c4, f["eval.c4"], 1e-4, "C4")
        expectSegClose(out.c5, f["eval.c5"], 1e-4, "C5 (spatial pool, resized positions, connect)")
        expectSegClose(out.state, f["eval.state"], 1e-4, "text state")
        if trimPadding {
            #expect(out.words.shape == [3, 15, 24])
            expectSegClose(out.words, f["eval.words"].narrow(axis: 1, start: 0, length: 15), 1e-4, "words (trimmed)")
        } else {
            expectSegClose(out.words, f["eval.words"], 1e-4, "words")
        }
        expectSegClose(out.fq, f["eval.fq"], 1e-4, "FPN output")
        expectSegClose(out.decoded, f["eval.dec"], 1e-4, "decoder output")
        expectSegClose(out.pred, f["eval.pred"], 1e-4, "projector output")
        expectSegClose(out.logits, f["eval.logits"], 1e-4, "logits")
        #expect(out.logits.shape == [3, 96, 96] && out.pred.shape == [3, 24, 24])
    }

    /// Train mode (BN batch statistics, everything trainable as medvlsm's CRIS runs): logits, DiceCE
    /// (λ 1.0 / 0.2), every parameter's gradient, and the BN running statistics after the step.
    @Test func trainModeLossGradientsAndBatchNorm() throws {
        let (m, f) = try reference()
        m.train()
        m.setTrainable(backbone: true)
        let logits = m(f["pixels"], ids: f["ids"])
        expectSegClose(logits, f["train.logits"], 1e-4, "train-mode logits")
        let loss = diceCELoss(logits, f["target"], lambdaDice: 1.0, lambdaCE: 0.2)
        expectSegClose(loss.reshaped([1]), f["train.loss"], 1e-4, "DiceCE loss")
        loss.backward()
        let params = Dictionary(uniqueKeysWithValues: m.namedParameters())
        let grads = f.sub("train.grad.")
        #expect(grads.count == params.count - 1)   // all but logit_scale
        let strict: Set<String> = ["proj.txt.weight", "proj.vis.4.weight", "decoder.layers.0.multihead_attn.in_proj_weight",
                                   "decoder.layers.1.self_attn.out_proj.weight", "neck.f1_v_proj.0.weight", "neck.txt_proj.0.weight",
                                   "neck.coordconv.0.conv1.0.weight", "backbone.visual.attnpool.connect.0.weight",
                                   "backbone.visual.attnpool.positional_embedding", "backbone.visual.layer1.0.conv1.weight",
                                   "backbone.transformer.resblocks.0.attn.in_proj_weight", "backbone.token_embedding.weight"]
        let cancelling: Set<String> = ["backbone.visual.bn1.weight", "backbone.visual.layer1.0.bn2.weight"]
        var worst: (Float, String) = (0, "")
        for (key, expected) in grads {
            let g = try #require(params[key]?.grad, "no gradient for \(key)")
            // Elsewhere max(1e-4, 2 × torch float32's own error on this gradient) (≤ 4e-4: the k_proj bias, whose
            // exact gradient is 0), and 1e-3 for the two stem BN scales whose gradients are sums over every
            // position of a 48² / 24² map with heavy cancellation (torch float32 itself: 5e-5 / 2.7e-4).
            let f32 = f["train.f32err.\(key)"].scalars[0]
            let tol: Float = strict.contains(key) ? 1e-4 : cancelling.contains(key) ? 1e-3 : max(1e-4, 2 * f32)
            expectSegClose(g, expected, tol, "gradient of \(key)")
            if segRelativeError(g, expected) > worst.0 { worst = (segRelativeError(g, expected), key) }
        }
        print("CRIS train-mode gradients: worst relative error \(worst.0) (\(worst.1))")
        #expect(params["backbone.logit_scale"]?.grad == nil)
        let buffers = Dictionary(uniqueKeysWithValues: m.namedBuffers())
        for (key, expected) in f.sub("train.running.") {
            let b = try #require(buffers[key], "no buffer \(key)")
            expectSegClose(b.value, expected, 1e-4, "BN buffer \(key) after a train-mode forward")
        }
    }

    /// One AdamW step (lr 1e-3, wd 1e-3) after that backward. Adam's first step is lr·g/(|g| + ε) ≈ lr·sign(g),
    /// so where the reference gradient is tiny (|g| < 1e-4·max|g|: inside the gradients' own 1e-4 tolerance, the
    /// sign is noise) only |Δ| ≤ 2·lr is asked (as AnomalyTests); everywhere else each of ten parameters must be
    /// within 1e-4 of max|p| of torch's. The train-mode logits of a second forward carry those sign-noise steps:
    /// they are asked within 5e-3.
    @Test func oneAdamWStep() throws {
        let (m, f) = try reference()
        m.train()
        m.setTrainable(backbone: true)
        let lr: Float = 1e-3
        let opt = AdamW(m.trainableParameters(), lr: Double(lr), weightDecay: 1e-3)
        diceCELoss(m(f["pixels"], ids: f["ids"]), f["target"], lambdaDice: 1.0, lambdaCE: 0.2).backward()
        opt.step()
        let params = Dictionary(uniqueKeysWithValues: m.namedParameters())
        let stepped = f.sub("train.step.").filter { !$0.key.hasPrefix("f32err.") && $0.key != "logits" }
        #expect(stepped.count == 10)
        var noisy = 0, total = 0
        for (key, expected) in stepped {
            let p = try #require(params[key], "no parameter \(key)").value.scalars
            let e = expected.scalars, g = f["train.grad.\(key)"].scalars
            #expect(p.allSatisfy { $0.isFinite }, "\(key) not finite after the step")
            let gmax = g.map(abs).max()!, pmax = e.map(abs).max()!
            var worst: Float = 0
            for i in e.indices {
                total += 1
                if abs(g[i]) < 1e-4 * gmax { noisy += 1; #expect(abs(p[i] - e[i]) <= 2.01 * lr, "\(key)[\(i)]"); continue }
                worst = max(worst, abs(p[i] - e[i]) / pmax)
            }
            #expect(worst <= 1e-4, "\(key) after one AdamW step: relative error \(worst) where |g| ≥ 1e-4·max|g|")
        }
        print("CRIS AdamW step: \(noisy) of \(total) entries with |g| < 1e-4·max|g|")
        let after = withNoGrad { m(f["pixels"], ids: f["ids"]) }
        expectSegClose(after, f["train.step.logits"], 5e-3, "logits after one AdamW step")
        print("CRIS logits after one AdamW step: relative error \(segRelativeError(after, f["train.step.logits"]))")
    }

    /// A frozen backbone: no tape through it, running statistics untouched, the head still learns.
    @Test func frozenBackbone() throws {
        let (m, f) = try reference()
        m.train()
        m.setTrainable(backbone: false)
        #expect(!m.backboneTrains)
        let before = m.backbone.stateDict()
        diceCELoss(m(f["pixels"], ids: f["ids"]), f["target"], lambdaDice: 1.0, lambdaCE: 0.2).backward()
        #expect(m.backbone.parameters().allSatisfy { $0.grad == nil })
        #expect(m.proj.txt.weight.grad != nil && m.neck.f1VProj.conv.weight.grad != nil)
        for (k, v) in m.backbone.stateDict() { #expect(v.scalars == before[k]!.scalars, "\(k) changed") }
        // The head's BN still trains: its statistics moved.
        #expect(m.neck.aggr.bn.runningMean!.value.scalars != f["ref.neck.aggr.1.running_mean"].scalars)
    }

    /// eval() reaches every dropout: two eval passes of the dropout-0.1 model agree, and differ from train mode.
    @Test func evalDisablesDropout() throws {
        let f = try Self.fixture.get()
        let m = CRIS(.crisTest)
        try m.load(state: f.sub("ref."))
        m.eval()
        let a = withNoGrad { m(f["pixels"], ids: f["ids"]) }, b = withNoGrad { m(f["pixels"], ids: f["ids"]) }
        #expect(a.scalars == b.scalars)
        expectSegClose(a, f["eval.logits"], 1e-4, "eval logits with dropout 0.1 configured")
        #expect(m.namedModules().allSatisfy { !$0.1.isTraining })
    }

    @Test func positionEncodingsAndCoordinates() {
        // pos1d: position 0 → sin 0 = 0, cos 0 = 1; pos2d at (y, x) = (1, 2), channel 0 = sin(2), d/2 = sin(1).
        let p1 = CRISDecoder.positions1D(width: 8, length: 3).scalars
        #expect(p1[0] == 0 && p1[1] == 1 && abs(p1[8] - Foundation.sin(1)) < 1e-6)
        let p2 = CRISDecoder.positions2D(width: 8, height: 2, width: 3)
        let row = p2.scalars[(1 * 3 + 2) * 8..<(1 * 3 + 2) * 8 + 8].map { $0 }
        #expect(abs(row[0] - Foundation.sin(2)) < 1e-6 && abs(row[1] - Foundation.cos(2)) < 1e-6)
        #expect(abs(row[4] - Foundation.sin(1)) < 1e-6 && abs(row[5] - Foundation.cos(1)) < 1e-6)
        let c = CRISCoordConv.coordinates(height: 3, width: 5).scalars
        #expect(c[0..<5].map { $0 } == [-1, -0.5, 0, 0.5, 1])
        #expect(c[15] == -1 && c[15 + 5] == 0 && c[15 + 10] == 1)
    }

    @Test func badInputAndWeightsAreNamed() throws {
        let (m, f) = try reference()
        #expect(throws: EncoderError.self) { try m.check(Tensor(zeros: [1, 3, 96, 80]), ids: Tensor(zeros: [1, 4])) }
        #expect(throws: EncoderError.self) { try m.check(Tensor(zeros: [1, 3, 96, 96]), ids: Tensor(zeros: [1, 17])) }
        #expect(throws: EncoderError.self) { try m.check(Tensor(zeros: [1, 3, 96, 96]), ids: Tensor(repeating: 99, shape: [1, 4])) }
        var state = f.sub("ref.")
        state["neck.aggr.0.weight"] = nil
        #expect { try CRIS(Self.testConfig).load(state: state, file: "x.safetensors") } throws: { e in
            "\(e)".contains("neck.aggr.0.weight") && "\(e)".contains("x.safetensors")
        }
        // DDP prefixes and dropped num_batches_tracked counters load.
        var ddp: [String: Tensor] = [:]
        for (k, v) in f.sub("ref.") where !k.hasSuffix("num_batches_tracked") { ddp["module." + k] = v }
        try CRIS(Self.testConfig).load(state: ddp)
        #expect(CRISConfig.crisTest.problem == nil && CRISConfig.cris.problem == nil)
        var bad = CRISConfig.crisTest
        bad.visDim = 20
        #expect(bad.problem != nil)
    }

    /// CRIS's own start: an RN CLIP's weights into the backbone, `connect` and the head left as drawn.
    @Test func clipBackboneInitialisation() throws {
        let (ref, f) = try reference()
        var clip: [String: Tensor] = [:]
        for (k, v) in ref.backbone.stateDict() where !k.hasPrefix("visual.attnpool.connect.") { clip[k] = v }
        clip["context_length"] = Tensor(77)
        let m = CRIS(Self.testConfig)
        let connect = m.backbone.visual.attnpool.connect!.conv.weight.value.scalars
        try m.loadCLIPBackbone(state: clip, file: "rn.safetensors")
        #expect(m.backbone.text.textProjection.value.scalars == f["ref.backbone.text_projection"].scalars)
        #expect(m.backbone.visual.attnpool.connect!.conv.weight.value.scalars == connect)
        clip["visual.extra"] = Tensor(1)
        #expect { try m.loadCLIPBackbone(state: clip, file: "rn.safetensors") } throws: { e in "\(e)".contains("visual.extra") }
    }
}
