import AxialNN
import AxialTensor
import AxialTestSupport
import Foundation
import Testing
@testable import AxialModels

/// max |a − b| / max(max |b|, 1e-6); +∞ on a shape mismatch or any NaN / Inf (AxialTestSupport).
func pspgError(_ a: Tensor, _ b: Tensor) -> Float { relativeError(a, b, floor: 1e-6) }

/// Tests/AxialModelsTests/Fixtures/pspg_model.safetensors from Tools/goldens/make_pspg_goldens.py.
struct PsPGFixture: @unchecked Sendable {
    let tensors: [String: Tensor]
    let config: [String: Any]

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "pspg_model", withExtension: "safetensors", subdirectory: "Fixtures"))
        let (t, meta) = try SafeTensors.read(url)
        tensors = t
        config = try JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Any]
    }

    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("pspg fixture has no tensor \(key)") }
        return t
    }
    func int(_ k: String) -> Int { config[k] as! Int }
    var names: [[Int]] { config["names"] as! [[Int]] }

    /// The tiny CLIP text tower with the fixture's weights (open_clip's top-level keys).
    func textTower() throws -> CLIPTextTransformer {
        let tc = CLIPTextConfig(contextLength: int("ctx"), vocabSize: int("vocab"), width: int("text_width"),
                                heads: int("text_heads"), layers: int("text_layers"))
        var g = RandomGenerator(seed: 0)
        let text = CLIPTextTransformer(tc, outputDimensions: int("embed"), activation: .quickGelu, generator: &g)
        var state: [String: Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix("clip.") && !k.hasPrefix("clip.visual.") && k != "clip.logit_scale" {
            state[String(k.dropFirst(5))] = v
        }
        try text.loadStateDict(state, strict: true)
        text.eval()
        return text
    }

    func classSet(_ text: CLIPTextTransformer) -> PsPGClassSet {
        PsPGClassSet.encode(names: names.indices.map { "class \($0)" }, ids: names.map { [int("sot")] + $0 + [int("eot")] },
                            text: text, periodToken: int("period"))
    }

    func modelConfig(decoder: PsPGDecoderKind, prefix: Bool, pairs: Bool, dropout: Float = 0) -> PsPGModelConfig {
        let g = PsPGGeneratorConfig(decoder: decoder, inputDimension: int("embed"), tokenWidth: int("text_width"), hidden: int("hidden"),
                                    steps: int("steps"), heads: int("heads"), dropout: dropout, layers: int("layers"), dropPath: 0)
        var c = PsPGModelConfig(generator: g, namePrefix: prefix, pairLoss: pairs)
        c.sotToken = int("sot"); c.eotToken = int("eot")
        return c
    }
}

@Suite struct PsPGModelTests {
    static let fixture = Result { try PsPGFixture() }
    static let variants: [(String, PsPGDecoderKind, Bool, Bool, PsPGFusion)] = [
        ("gru", .gru, false, false, .weighted), ("lstm", .lstm, false, false, .weighted), ("transformer", .transformer, false, false, .weighted),
        ("mlp", .mlp, false, false, .weighted), ("gru_prefix", .gru, true, false, .weighted), ("gru_pair", .gru, false, true, .weighted),
        ("gru_reference_fusion", .gru, false, false, .reference),
    ]

    /// The class features: [SOS] name [EOS] through the frozen tower, EOS row, projection.
    @Test func classFeaturesMatchTorch() throws {
        let f = try Self.fixture.get()
        let text = try f.textTower()
        #expect(pspgError(f.classSet(text).features, f["class_features"]) < 1e-4)
    }

    /// Prompts, text features, logits, loss, every gradient and two SGD-Nesterov steps vs the torch
    /// reference (which runs the prompts at the text tower's full context; Axial trims after EOS).
    @Test(arguments: 0..<7) func variantMatchesTorch(index: Int) throws {
        let (name, kind, prefix, pairs, fusion) = Self.variants[index]
        let f = try Self.fixture.get()
        let text = try f.textTower()
        var g = RandomGenerator(seed: 3)
        var config = f.modelConfig(decoder: kind, prefix: prefix, pairs: pairs)
        config.fusion = fusion
        let model = try PsPGModel(config, text: text, classes: f.classSet(text), generator: &g)
        try model.loadStateDict(EncoderWeights.subtree(f.tensors, prefix: "\(name).sd."), strict: true)
        model.train()
        let tokens = f["tokens"], targets = f["targets"]
        let out = model.forward(tokens: tokens, pairs: pairs)
        for (key, t) in [("pos_tokens", out.posTokens), ("neg_tokens", out.negTokens), ("pos_features", out.posFeatures),
                         ("neg_features", out.negFeatures), ("logits", out.logits)] {
            let e = pspgError(t, f["\(name).\(key)"])
            #expect(e < 1e-4, "\(name) \(key): relative error \(e), shapes \(t.shape) vs \(f["\(name).\(key)"].shape)")
        }
        if pairs {
            let pl = try #require(out.pairLogits)
            #expect(pspgError(pl, f["\(name).pair_logits"]) < 1e-4, "\(name) pair logits")
        }
        let loss = model.loss(out, targets: targets)
        #expect(pspgError(loss.reshaped([1]), f["\(name).loss0"]) < 1e-4, "\(name) loss \(loss.item()) vs \(f["\(name).loss0"].item())")
        loss.backward()
        let params = model.namedParameters()
        #expect(Set(params.map(\.0)) == Set(f.tensors.keys.filter { $0.hasPrefix("\(name).grad.") }.map { String($0.dropFirst(name.count + 6)) }))
        for (key, p) in params {
            let grad = try #require(p.grad, "\(name): no gradient for \(key)")
            let expected = f["\(name).grad.\(key)"]
            if expected.scalars.allSatisfy({ abs($0) < 1e-12 }) {
                // Exactly zero in the reference (the cancelled fusion weights): float32 rounding only.
                #expect(grad.scalars.allSatisfy { $0.isFinite && abs($0) < 1e-6 }, "\(name) grad \(key) should be 0")
                continue
            }
            let e = pspgError(grad, expected)
            #expect(e < 1e-4, "\(name) grad \(key): relative error \(e)")
        }
        // The fusion weights act (non-zero gradient) only in Axial's order; the reference's cancels them.
        let convGrad = model.channelAttention.conv.weight.grad!.scalars.map { abs($0) }.max()!
        #expect(fusion == .weighted ? convGrad > 1e-3 : convGrad < 1e-6, "\(name): conv gradient \(convGrad)")
        let sgd = SGD(model.parameterGroups(lr: 0.05, weightDecay: 0.05), momentum: 0.9, weightDecay: 0.05, nesterov: true)
        sgd.step()
        sgd.zeroGrad()
        let loss1 = model.loss(model.forward(tokens: tokens, pairs: pairs), targets: targets)
        #expect(pspgError(loss1.reshaped([1]), f["\(name).loss1"]) < 1e-4, "\(name) loss after one step")
        loss1.backward()
        sgd.step()
        for (key, p) in params {
            let e = pspgError(p.value, f["\(name).after.\(key)"])
            #expect(e < 1e-4, "\(name) \(key) after 2 SGD steps: relative error \(e)")
        }
    }

    @Test func stateDictHasTheReferenceKeysAndNoTextTower() throws {
        let f = try Self.fixture.get()
        let text = try f.textTower()
        var g = RandomGenerator(seed: 1)
        let m = try PsPGModel(f.modelConfig(decoder: .gru, prefix: false, pairs: false), text: text, classes: f.classSet(text), generator: &g)
        let keys = Set(m.stateDict().keys)
        #expect(keys.contains("prompt_learner.pos_decoder.gru.weight_ih"))
        #expect(keys.contains("prompt_learner.neg_decoder.self_attention.self_attention.in_proj_weight"))
        #expect(keys.contains("prompt_learner.pos_decoder.self_attention.layer_norm.weight"))
        #expect(keys.contains("channel_attention.conv.weight") && keys.contains("logit_scale"))
        #expect(!keys.contains { $0.hasPrefix("text") || $0.contains("token_embedding") })
        #expect(m.channelAttention.conv.weight.value.shape == [1, 1, 3])
        // The frozen text tower takes no gradient; the prompts still get one through it.
        #expect(text.parameters().allSatisfy { $0.isFrozen })
    }

    /// Dropout 0.2 acts in training only; eval is deterministic; the scores are P(pos) in (0, 1).
    @Test func dropoutOnlyInTraining() throws {
        let f = try Self.fixture.get()
        let text = try f.textTower()
        var g = RandomGenerator(seed: 2)
        let m = try PsPGModel(f.modelConfig(decoder: .gru, prefix: false, pairs: false, dropout: 0.2), text: text, classes: f.classSet(text), generator: &g)
        let tokens = f["tokens"]
        m.eval()
        let a = withNoGrad { m.forward(tokens: tokens).logits }, b = withNoGrad { m.forward(tokens: tokens).logits }
        #expect(pspgError(a, b) == 0)
        m.train()
        let c = withNoGrad { m.forward(tokens: tokens).logits }
        #expect(pspgError(c, a) > 1e-4)
        let p = withNoGrad { m.forward(tokens: tokens).probabilities }.scalars
        #expect(p.allSatisfy { $0 > 0 && $0 < 1 })
    }

    /// Another label set (names never trained on): new class features, same parameters, [B, 2, C′].
    @Test func scoresAnotherLabelSet() throws {
        let f = try Self.fixture.get()
        let text = try f.textTower()
        var g = RandomGenerator(seed: 4)
        let m = try PsPGModel(f.modelConfig(decoder: .gru, prefix: true, pairs: false), text: text, classes: f.classSet(text), generator: &g)
        m.eval()
        let unseen = PsPGClassSet.encode(names: ["a", "b"], ids: [[f.int("sot"), 20, 21, f.int("eot")], [f.int("sot"), 22, f.int("eot")]],
                                         text: text, periodToken: f.int("period"))
        try m.setClasses(unseen)
        let out = withNoGrad { m.forward(tokens: f["tokens"]) }
        #expect(out.logits.shape == [3, 2, 2])
        #expect(out.logits.scalars.allSatisfy { $0.isFinite })
    }

    @Test func badConfigsAreNamed() throws {
        let f = try Self.fixture.get()
        let text = try f.textTower()
        var g = RandomGenerator(seed: 5)
        var c = f.modelConfig(decoder: .gru, prefix: false, pairs: false)
        c.generator.heads = 5
        #expect(throws: HeadError.self) { _ = try PsPGModel(c, text: text, classes: f.classSet(text), generator: &g) }
        c = f.modelConfig(decoder: .gru, prefix: false, pairs: false)
        c.generator.tokenWidth = 7
        #expect(throws: HeadError.badConfig("PsPG token width 7 != the text tower's width 16")) {
            _ = try PsPGModel(c, text: text, classes: f.classSet(text), generator: &g)
        }
        c = f.modelConfig(decoder: .gru, prefix: false, pairs: false)
        c.generator.steps = 30                          // 32 tokens > context 24
        #expect(throws: HeadError.self) { _ = try PsPGModel(c, text: text, classes: f.classSet(text), generator: &g) }
    }
}
