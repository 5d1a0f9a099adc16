import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// Tools/goldens/make_anomaly_goldens.py: a tiny open_clip CLIP (clip_test shapes, compact vocabulary)
/// with MVFA / MLA-LP adapters, prompt learner, maps, few-shot bank, loss and one Adam step.
struct AnomalyFixture: @unchecked Sendable {
    let tensors: [String: Tensor]
    let config: [String: Any]

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "anomaly", withExtension: "safetensors", subdirectory: "Fixtures"))
        let (t, meta) = try SafeTensors.read(url)
        tensors = t
        config = try JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Any]
    }

    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("anomaly fixture has no tensor \(key)") }
        return t
    }

    func group(_ prefix: String) -> [String: Tensor] { EncoderWeights.subtree(tensors, prefix: prefix) }

    /// CLIP BPE ids → the fixture's compact vocabulary (sorted BPE ids, so EOT stays the largest).
    var tokenizer: PromptTokenizer {
        let vocab = self["vocab_ids"].scalars.map { Int($0) }
        let compact = Dictionary(uniqueKeysWithValues: vocab.enumerated().map { ($0.element, $0.offset) })
        return { texts in
            try CLIPTokenizer.shared()(texts, contextLength: 77).map { row in
                try row.map { id in
                    guard let c = compact[id] else { throw AnomalyModelError.badPrompt("token \(id) not in the fixture vocabulary") }
                    return c
                }
            }
        }
    }

    func detector(_ mode: AnomalyTextMode) throws -> CLIPAnomalyDetector {
        let clip = CLIPModel(clipConfig(config))
        try clip.load(state: group("clip."), file: "anomaly fixture")
        let levels = config["levels"] as! [Int], bottleneck = config["bottleneck"] as! Int
        let c = CLIPAnomalyConfig(clip: clip.config, adapters: CLIPAdapterConfig(levels: levels, bottleneck: bottleneck),
                                  text: mode, object: config["object"] as! String)
        let d = try CLIPAnomalyDetector(c, clip: clip, seed: 1, tokenizer: tokenizer)
        var state = group("seg_adapters.").reduce(into: [String: Tensor]()) { $0["seg_adapters." + $1.key] = $1.value }
        for (k, v) in group("det_adapters.") { state["det_adapters." + k] = v }
        if mode == .learned { for (k, v) in group("prompt_learner.") { state["prompt_learner." + k] = v } }
        try d.load(state: state, file: "anomaly fixture")
        return d
    }
}

/// AxialTestSupport's NaN/Inf-aware relative error: max |a − b| ≤ rtol · max |b| (the tensor's scale).
func anomalyMismatch(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4) -> String? {
    let e = relativeError(a, b, floor: 1e-6)
    return e <= rtol ? nil : "relative error \(e) (shapes \(a.shape) / \(b.shape))"
}

func expectAnomalyClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    if let m = anomalyMismatch(a, b, rtol: rtol) { Issue.record("\(what): \(m)", sourceLocation: sourceLocation) }
}

@Suite struct AnomalyTests {
    static let fixture = Result { try AnomalyFixture() }

    @Test func comparisonFailsOnNaNAndInf() {
        let b = Tensor([1, 2, 3])
        #expect(anomalyMismatch(Tensor([1, .nan, 3]), b) != nil)
        #expect(anomalyMismatch(Tensor([1, 2, .infinity]), b) != nil)
        #expect(anomalyMismatch(Tensor([1, 2, 3.01]), b) != nil)
        #expect(anomalyMismatch(Tensor([1, 2, 3.0001]), b) == nil)
    }

    /// The exact prompt lists of MVFA-AD utils.py and mla-pl learnable_prompt.py, tokenised as open_clip does.
    @Test func promptListsAndTokenisation() throws {
        let f = try Self.fixture.get()
        #expect(AnomalyPrompts.templates.count == 35 && AnomalyPrompts.normalStates.count == 7 && AnomalyPrompts.abnormalStates.count == 5)
        #expect(AnomalyPrompts.normalDescriptors.count == 10 && AnomalyPrompts.abnormalDescriptors.count == 11)
        let s = AnomalyPrompts.templateSentences(object: "Brain")
        #expect(s.normal.count == 245 && s.abnormal.count == 175)
        #expect(s.normal[36] == "a low resolution photo of the flawless Brain." && s.abnormal.last == "this is one Brain with damage in the scene.")
        let tok = try CLIPTokenizer.shared()
        let prefix = "X X X X X X X X "
        let cases: [(String, [String])] = [("template_ids.normal", s.normal), ("template_ids.abnormal", s.abnormal),
                                           ("prompt_ids.normal", AnomalyPrompts.normalDescriptors.map { prefix + $0 + "." }),
                                           ("prompt_ids.abnormal", AnomalyPrompts.abnormalDescriptors.map { prefix + $0 + "." })]
        for (key, sentences) in cases {
            let expected = f[key], L = expected.shape[1]
            let ids = tok(sentences, contextLength: 77).flatMap { $0.prefix(L).map(Float.init) }
            #expect(ids == expected.scalars, "\(key)")
        }
    }

    @Test func textFeaturesMatchOpenCLIP() throws {
        let f = try Self.fixture.get()
        expectAnomalyClose(try f.detector(.learned).textFeatures(), f["text.learned"], "learned prompts T")
        expectAnomalyClose(try f.detector(.templates).textFeatures(), f["text.templates"], "template ensemble T")
    }

    @Test func adaptersMapsAndScores() throws {
        let f = try Self.fixture.get()
        let d = try f.detector(.learned)
        let t = try withNoGrad { try d.tokens(f["images"]) }
        for k in 0..<4 {
            expectAnomalyClose(t.seg[k], f["seg_tokens.\(k)"], "seg tokens level \(k)")
            expectAnomalyClose(t.det[k], f["det_tokens.\(k)"], "det tokens level \(k)")
        }
        let aug = FewShotAugment.augment(f["shots"])
        expectAnomalyClose(aug, f["shots_augmented"], "×11 augmentation")
        let bank = try d.memoryBank(shots: f["shots"])
        #expect(bank.count == 11 * 16)
        let p = try d.predict(f["images"], bank: bank)
        expectAnomalyClose(p.map, f["map.learned"], "zero-shot map (learned)")
        expectAnomalyClose(p.score, f["det_score.learned"], "det score (learned)")
        expectAnomalyClose(try #require(p.fewShotMap), f["few_map.seg"], "few-shot map")
        expectAnomalyClose(try #require(p.fewShotScore), f["few_score.det"], "few-shot det score")
        let fused = AnomalyMaps.fuse(zeroShot: p.score.scalars, fewShot: p.fewShotScore!.scalars)
        expectAnomalyClose(Tensor(fused), f["fused_score"], "fused image score")
        let fusedMap = AnomalyMaps.fuse(zeroShot: p.map.scalars, fewShot: p.fewShotMap!.scalars)
        expectAnomalyClose(Tensor(shape: p.map.shape, scalars: fusedMap), f["fused_map"], "fused map")
        let pt = try f.detector(.templates).predict(f["images"])
        expectAnomalyClose(pt.map, f["map.templates"], "zero-shot map (templates)")
        expectAnomalyClose(pt.score, f["det_score.templates"], "det score (templates)")
    }

    @Test func lossGradientsAndOneAdamStep() throws {
        let f = try Self.fixture.get()
        let dt = try f.detector(.templates)
        let lt = try dt.loss(images: f["images"], masks: f["masks"], labels: f["labels"])
        expectAnomalyClose(lt.total.reshaped([1]), f["loss.templates"], "loss (templates)")

        let d = try f.detector(.learned)
        let opt = d.makeOptimizer()
        #expect(opt.groups.map(\.lr) == [1e-4, 1e-3] && opt.beta1 == 0.5 && opt.beta2 == 0.999)
        let l = try d.loss(images: f["images"], masks: f["masks"], labels: f["labels"])
        expectAnomalyClose(l.total.reshaped([1]), f["loss.learned"], "loss (learned)")
        expectAnomalyClose(try #require(l.seg).reshaped([1]), f["loss.learned_seg"], "seg loss")
        expectAnomalyClose(l.det.reshaped([1]), f["loss.learned_det"], "det loss")
        opt.zeroGrad()
        l.total.backward()
        #expect(d.clip.parameters().allSatisfy { $0.grad == nil }, "frozen CLIP accumulates no gradient")
        for (k, p) in d.trainable.namedParameters() {
            expectAnomalyClose(p.grad ?? Tensor(zeros: p.value.shape), f["grad." + k], "grad \(k)")
        }
        let before = d.stateDict().mapValues { $0.copy() }
        opt.step()
        // End to end: Adam's first step is lr·g/(|g| + eps) ≈ lr·sign(g), so where |g| is at float32 noise
        // (below 1e-4 of the tensor's largest gradient) the sign is noise; there only |Δ| ≤ lr is required.
        for (k, v) in d.stateDict() {
            let g = f["grad." + k].scalars, gmax = g.map(abs).max() ?? 0
            let lr: Float = k.hasPrefix("prompt_learner") ? 1e-3 : 1e-4
            let a = v.scalars, b = f["step1." + k].scalars, p0 = before[k]!.scalars
            let scale = b.map(abs).max() ?? 0
            var bad = 0
            for i in a.indices {
                let ok = abs(g[i]) > 1e-4 * gmax ? abs(a[i] - b[i]) <= 1e-4 * scale : abs(a[i] - p0[i]) <= lr * 1.0001
                if !ok || !a[i].isFinite { bad += 1 }
            }
            #expect(bad == 0, "after one Adam step: \(k): \(bad) elements off")
        }
        // The update itself on PyTorch's gradients: every element within 1e-4.
        let d2 = try f.detector(.learned)
        let opt2 = d2.makeOptimizer()
        for (k, p) in d2.trainable.namedParameters() { p.grad = f["grad." + k] }
        opt2.step()
        for (k, v) in d2.stateDict() { expectAnomalyClose(v, f["step1." + k], "Adam step on torch's gradients: \(k)") }
    }

    @Test func referenceKeyNames() throws {
        let f = try Self.fixture.get()
        let keys = Set(try f.detector(.learned).stateDict().keys)
        #expect(keys.contains("seg_adapters.0.fc1.0.weight") && keys.contains("det_adapters.3.fc2.0.weight"))
        #expect(keys.contains("prompt_learner.ctx.normal_end") && keys.contains("prompt_learner.ctx.abnormal_end"))
        #expect(keys.count == 4 * 2 * 2 + 2)
        #expect(Set(try f.detector(.templates).stateDict().keys).allSatisfy { !$0.hasPrefix("prompt_learner") })
    }

    /// clip_test and clip_vit_l14_336_at240 state their adapter levels in their manifests.
    @Test(arguments: ["clip_test", "clip_vit_l14_336_at240"]) func manifestAdapterLevels(name: String) throws {
        let c = try CLIPAnomalyConfig.forEncoder(name)
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Manifests/encoders/\(name).yaml").standardizedFileURL
        let lines = Set(try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(lines.contains("adapter_levels: [\(c.adapters.levels.map(String.init).joined(separator: ", "))]"))
        #expect(lines.contains("adapter_bottleneck: \(c.adapters.bottleneck)"))
        try c.validate()
        #expect(throws: AnomalyModelError.self) { _ = try CLIPAnomalyConfig.forEncoder("vit_test") }
    }

    /// clip_test builds with the real tokenizer and runs a training step end to end in seconds.
    @Test func clipTestRandomInit() throws {
        let c = try CLIPAnomalyConfig.forEncoder("clip_test")
        #expect(c.clip == .test && c.adapters.levels == [1, 2, 3, 4] && c.adapters.bottleneck == 48)
        var g = RandomGenerator(seed: 3)
        let d = try CLIPAnomalyDetector(c, clip: CLIPModel(c.clip, generator: &g), seed: 4)
        let x = Tensor.normal([2, 3, 32, 32], generator: &g)
        let masks = Tensor(zeros: [2, 32, 32]), labels = Tensor([0, 0])
        let opt = d.makeOptimizer()
        let before = d.stateDict()["seg_adapters.0.fc1.0.weight"]!.copy()
        let l = try d.loss(images: x, masks: masks, labels: labels)
        #expect(l.total.item().isFinite)
        l.total.backward(); opt.step()
        #expect(relativeError(d.stateDict()["seg_adapters.0.fc1.0.weight"]!, before, floor: 1e-6) > 0)
        let p = try d.predict(x)
        #expect(p.map.shape == [2, 32, 32] && p.score.shape == [2])
    }

    @Test func badConfigurationsAreRefused() throws {
        let f = try Self.fixture.get()
        let clip = clipConfig(f.config)
        for (levels, bottleneck) in [([0, 2], 48), ([2, 1], 48), ([1, 5], 48), ([1, 2], 32), ([Int](), 48)] {
            let c = CLIPAnomalyConfig(clip: clip, adapters: CLIPAdapterConfig(levels: levels, bottleneck: bottleneck))
            #expect(throws: AnomalyModelError.self) { try c.validate() }
        }
        #expect(CLIPAdapterConfig.standard(for: .vitL14_336).levels == [6, 12, 18, 24])
        #expect(CLIPAdapterConfig.standard(for: clip).levels == [1, 2, 3, 4])
        let d = try f.detector(.learned)
        #expect(throws: AnomalyModelError.self) { _ = try d.tokens(Tensor(zeros: [1, 3, 16, 16])) }
        var bad = d.stateDict(); bad["seg_adapters.0.fc1.0.weight"] = Tensor(zeros: [3, 3])
        #expect(throws: AnomalyModelError.self) { try d.load(state: bad, file: "x") }
    }
}
