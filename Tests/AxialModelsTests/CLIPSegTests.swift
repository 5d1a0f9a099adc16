import AxialNN
import AxialTensor
import Foundation
import Testing
import AxialTestSupport
@testable import AxialModels

/// Fixtures/clipseg.safetensors from Tools/goldens/make_clipseg_goldens.py (transformers 5.25
/// `CLIPSegForImageSegmentation`, tiny random config = `CLIPSegConfig.clipsegTest`; VLSM adapter
/// reference modules; one AdamW step).
struct CLIPSegFixture: @unchecked Sendable {
    let tensors: [String: Tensor]
    init() throws {
        let url = try #require(Bundle.module.url(forResource: "clipseg", withExtension: "safetensors", subdirectory: "Fixtures"))
        tensors = try SafeTensors.read(url).tensors
    }
    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("clipseg fixture has no tensor \(key)") }
        return t
    }
    func sub(_ prefix: String) -> [String: Tensor] { EncoderWeights.subtree(tensors, prefix: prefix) }
}

/// AxialTestSupport's NaN-aware max |a − b| / max |b| (scale floor 1e-6; +∞ on NaN / Inf / shape mismatch).
func segRelativeError(_ a: Tensor, _ b: Tensor) -> Float { encoderError(a, b) }

func expectSegClose(_ a: Tensor, _ b: Tensor, _ tol: Float = 1e-4, _ what: String) {
    let e = segRelativeError(a, b)
    #expect(e <= tol, "\(what): relative error \(e) (shapes \(a.shape) vs \(b.shape))")
}

@Suite struct CLIPSegTests {
    static let fixture = Result { try CLIPSegFixture() }

    func reference() throws -> (CLIPSeg, CLIPSegFixture) {
        let f = try Self.fixture.get()
        let m = CLIPSeg(.clipsegTest)
        try m.load(state: f.sub("ref."), file: "clipseg.safetensors")
        m.eval()
        return (m, f)
    }

    @Test func comparisonFailsOnNaNAndInf() {
        let b = Tensor([1, 2, 3])
        #expect(segRelativeError(Tensor([1, .nan, 3]), b) == .infinity)
        #expect(segRelativeError(Tensor([1, 2, .infinity]), b) == .infinity)
        #expect(segRelativeError(b, Tensor([1, 2, .nan])) == .infinity)
        #expect(segRelativeError(b, b) == 0)
    }

    @Test func keysAreTransformersNames() throws {
        let (m, f) = try reference()
        #expect(Set(m.stateDict().keys) == Set(f.sub("ref.").keys))
        #expect(m.stateDict()["clip.vision_model.pre_layrnorm.weight"] != nil)
        #expect(m.stateDict()["decoder.transposed_convolution.4.weight"] != nil)
    }

    @Test func textConditionedLogitsMatchTransformers() throws {
        let (m, f) = try reference()
        let out = withNoGrad { m.forward(f["pixels"], condition: .text(ids: f["ids"], attentionMask: f["attention_mask"])) }
        for i in 0..<3 {
            expectSegClose(out.activations[i], f["text.act\(i)"], 1e-4, "tapped vision state \(i)")
            expectSegClose(out.decoderStates[i], f["text.dec\(i)"], 1e-4, "decoder layer \(i)")
        }
        let cond = withNoGrad { m.conditionalEmbedding(.text(ids: f["ids"], attentionMask: f["attention_mask"]), batch: 2) }
        expectSegClose(cond, f["text.cond"], 1e-4, "conditional embedding")
        expectSegClose(out.logits, f["text.logits"], 1e-4, "logits")
        #expect(out.logits.shape == [2, 96, 96])
        // Without the attention mask the pooled EOT rows are the same (causal mask, right padding).
        let noMask = withNoGrad { m(f["pixels"], condition: .text(ids: f["ids"], attentionMask: nil)) }
        expectSegClose(noMask, f["text.logits"], 1e-4, "logits without attention mask")
    }

    /// Prompts padded past the last EOT (transformers pads to 77) are cut before the text tower
    /// (`trimmedForPooling`): the logits stay transformers' (the fixture's 7-token run), with and without adapters.
    @Test func paddingAfterTheLastEOTIsCut() throws {
        let (m, f) = try reference()
        let ids = f["ids"], mask = f["attention_mask"], B = ids.shape[0], L = ids.shape[1], P = 12
        var pid = [Float](repeating: 1, count: B * P), pmask = [Float](repeating: 0, count: B * P)
        for b in 0..<B { for j in 0..<L { pid[b * P + j] = ids.scalars[b * L + j]; pmask[b * P + j] = mask.scalars[b * L + j] } }
        let padded = Tensor(shape: [B, P], scalars: pid), paddedMask = Tensor(shape: [B, P], scalars: pmask)
        let cut = m.clip.textModel.trimmedForPooling(padded, attentionMask: paddedMask)
        #expect(cut.ids.shape == [B, L] && cut.ids.scalars == ids.scalars && cut.attentionMask?.scalars == mask.scalars)
        let logits = withNoGrad { m(f["pixels"], condition: .text(ids: padded, attentionMask: paddedMask)) }
        expectSegClose(logits, f["text.logits"], 1e-4, "logits of the padded prompts")
        var g = RandomGenerator(seed: 5)
        let dense = VLSMCLIPSeg(m, options: .init(kind: .dense, dim: 8), generator: &g)
        let a = withNoGrad { dense(f["pixels"], ids: ids, attentionMask: mask) }
        let b = withNoGrad { dense(f["pixels"], ids: padded, attentionMask: paddedMask) }
        expectSegClose(b, a, 1e-5, "dense-adapter logits, padded vs unpadded prompts")
    }

    @Test func imagePromptAndGivenEmbedding() throws {
        let (m, f) = try reference()
        let logits = withNoGrad { m(f["pixels"], condition: .image(f["cond_pixels"])) }
        expectSegClose(logits, f["image.logits"], 1e-4, "image-prompted logits")
        let cond = withNoGrad { m.conditionalEmbedding(.image(f["cond_pixels"]), batch: 2) }
        expectSegClose(cond, f["image.cond"], 1e-4, "image conditional embedding")
        let given = withNoGrad { m(f["pixels"], condition: .embedding(f["text.cond"])) }
        expectSegClose(given, f["text.logits"], 1e-4, "logits from a given embedding")
    }

    @Test func plainUpsampler() throws {
        let f = try Self.fixture.get()
        var c = CLIPSegConfig.clipsegTest
        c.complexTransposedConvolution = false
        let m = CLIPSeg(c)
        var state = f.sub("ref.").filter { !$0.key.contains("transposed_convolution") }
        for (k, v) in f.sub("plain.") where k != "logits" { state[k] = v }
        try m.load(state: state)
        let logits = withNoGrad { m(f["pixels"], condition: .text(ids: f["ids"], attentionMask: f["attention_mask"])) }
        expectSegClose(logits, f["plain.logits"], 1e-4, "single-ConvTranspose logits")
    }

    @Test func loadErrorsNameTheKey() throws {
        let f = try Self.fixture.get()
        var state = f.sub("ref.")
        state["decoder.film_mul.weight"] = nil
        #expect { try CLIPSeg(.clipsegTest).load(state: state, file: "x.safetensors") } throws: { e in
            "\(e)".contains("decoder.film_mul.weight") && "\(e)".contains("x.safetensors")
        }
        state = f.sub("ref.")
        state["clip.text_projection.weight"] = Tensor(zeros: [3, 3])
        #expect { try CLIPSeg(.clipsegTest).load(state: state) } throws: { e in "\(e)".contains("clip.text_projection.weight") }
        #expect(throws: EncoderError.self) { try CLIPSeg(.clipsegTest).checkPixels(Tensor(zeros: [1, 3, 96, 80])) }
    }

    /// Fine-tuning with the encoders unfrozen really trains them (transformers' forward would not):
    /// gradients of DiceCE equal torch's computed without no_grad.
    @Test func endToEndGradientsReachTheEncoders() throws {
        let (m, f) = try reference()
        m.setTrainable(encoders: true, decoder: true)
        #expect(m.encodersTrain)
        let logits = m(f["pixels"], condition: .text(ids: f["ids"], attentionMask: f["attention_mask"]))
        let loss = diceCELoss(logits, f["target"])
        expectSegClose(loss.reshaped([1]), f["e2e.loss"], 1e-4, "DiceCE loss")
        loss.backward()
        let params = Dictionary(uniqueKeysWithValues: m.namedParameters())
        for (key, expected) in f.sub("e2e.grad.") {
            let g = try #require(params[key]?.grad, "no gradient for \(key)")
            expectSegClose(g, expected, 1e-3, "gradient of \(key)")
        }
        // Frozen encoders (the default for adapters): no encoder gradient, decoder gradient unchanged.
        let (m2, _) = try reference()
        m2.setTrainable(encoders: false, decoder: true)
        diceCELoss(m2(f["pixels"], condition: .text(ids: f["ids"], attentionMask: f["attention_mask"])), f["target"]).backward()
        let p2 = Dictionary(uniqueKeysWithValues: m2.namedParameters())
        #expect(p2["clip.vision_model.encoder.layers.0.mlp.fc1.weight"]!.grad == nil)
        expectSegClose(p2["decoder.film_mul.weight"]!.grad!, f["e2e.grad.decoder.film_mul.weight"], 1e-3, "decoder gradient, encoders frozen")
    }

    // MARK: VLSM adapters

    func adapted(_ kind: VLSMAdapterOptions.Kind) throws -> (VLSMCLIPSeg, CLIPSegFixture) {
        let (m, f) = try reference()
        let model = VLSMCLIPSeg(m, options: .init(kind: kind, dim: kind == .shallow ? 16 : 8))
        var state = f.sub("\(kind.rawValue).").filter {
            !$0.key.hasPrefix("step.") && !$0.key.hasPrefix("grad.") && !$0.key.hasPrefix("f32err.") && $0.key != "logits" && $0.key != "loss"
        }
        for (k, v) in f.sub("ref.") { state["clipseg." + k] = v }
        try model.load(state: state, file: "clipseg.safetensors")
        return (model, f)
    }

    /// The reference is float64; its fixture also holds torch float32's own relative error against
    /// it. Axial (float32) must be within max(1e-4, 2 × that): Adam's first step, lr·g/(|g| + ε),
    /// turns the float32 rounding of near-zero gradients into steps of up to lr, for torch as for us.
    func tolerance(_ f: CLIPSegFixture, _ key: String) -> Float { max(1e-4, 2 * f[key].scalars[0]) }

    @Test(arguments: [VLSMAdapterOptions.Kind.shallow, .dense])
    func adaptersMatchReferenceAndOneAdamWStep(_ kind: VLSMAdapterOptions.Kind) throws {
        let (model, f) = try adapted(kind)
        let k = kind.rawValue
        let trainable = model.trainableParameters()
        #expect(trainable.count == model.adapterParameters.count)
        #expect(model.parameterCount(trainableOnly: true) == VLSMCLIPSeg.adapterParameterCount(.clipsegTest, model.options))
        let logits = model(f["pixels"], ids: f["ids"], attentionMask: f["attention_mask"])
        expectSegClose(logits, f["\(k).logits"], 1e-4, "\(k) adapter logits")
        let loss = diceCELoss(logits, f["target"])
        expectSegClose(loss.reshaped([1]), f["\(k).loss"], 1e-4, "\(k) loss")
        let opt = AdamW(trainable, lr: 1e-3, weightDecay: 1e-3)
        loss.backward()
        for (name, p) in model.namedParameters() where !name.hasPrefix("clipseg.") {
            let g = try #require(p.grad, "\(k) \(name) has no gradient")
            expectSegClose(g, f["\(k).grad.\(name)"], tolerance(f, "\(k).f32err.grad.\(name)"), "\(k) gradient of \(name)")
        }
        opt.step()
        for (name, p) in model.namedParameters() where !name.hasPrefix("clipseg.") {
            expectSegClose(p.value, f["\(k).step.\(name)"], tolerance(f, "\(k).f32err.step.\(name)"), "\(k) \(name) after one AdamW step")
        }
        let after = withNoGrad { model(f["pixels"], ids: f["ids"], attentionMask: f["attention_mask"]) }
        expectSegClose(after, f["\(k).step.logits"], 1e-4, "\(k) logits after one step")
        // CLIPSeg stayed frozen.
        #expect(model.clipseg.trainableParameters().isEmpty)
    }

    @Test func adapterVariantsAndCounts() throws {
        let v = try VLSMAdapterOptions.variant(.dense, "v")
        #expect(v.vision && !v.language && !v.conditional && v.dim == 64)
        #expect(try VLSMAdapterOptions.variant(.shallow, "VLC").dim == 512)
        #expect(throws: EncoderError.self) { try VLSMAdapterOptions.variant(.dense, "x") }
        // The paper's ≈3M trainable parameters for dense VLC on rd64-refined.
        #expect(VLSMCLIPSeg.adapterParameterCount(.rd64Refined, .init(kind: .dense)) == 3_237_376)
        #expect(VLSMCLIPSeg.adapterParameterCount(.rd64Refined, .init(kind: .shallow)) == 4_201_984)
        for name in ["v", "vl", "vlc"] {
            for kind in VLSMAdapterOptions.Kind.allCases {
                let o = try VLSMAdapterOptions.variant(kind, name, dim: 8)
                let m = VLSMCLIPSeg(CLIPSeg(.clipsegTest), options: o)
                #expect(m.parameterCount(trainableOnly: true) == VLSMCLIPSeg.adapterParameterCount(.clipsegTest, o))
            }
        }
    }

    /// With the encoders unfrozen under adapters, an encoder weight gets a gradient too.
    @Test func adaptersWithUnfrozenEncoders() throws {
        let (model, f) = try adapted(.shallow)
        model.setTrainable(encoders: true, decoder: true)
        diceCELoss(model(f["pixels"], ids: f["ids"], attentionMask: f["attention_mask"]), f["target"]).backward()
        let p = Dictionary(uniqueKeysWithValues: model.namedParameters())
        let g = try #require(p["clipseg.clip.vision_model.encoder.layers.0.mlp.fc1.weight"]?.grad)
        #expect(g.scalars.contains { $0 != 0 })
        #expect(p["clipseg.clip.text_model.encoder.layers.0.self_attn.q_proj.weight"]?.grad != nil)
    }

    // MARK: BiomedCLIPSeg

    /// BiomedCLIP towers (verified against open_clip in BiomedCLIPTests) + transformers' CLIPSeg
    /// decoder: logits equal transformers' decoder run on open_clip's block outputs and text features.
    @Test(arguments: BiomedCLIPSegTaps.allCases)
    func biomedCLIPSegMatchesOpenCLIPTowersPlusTransformersDecoder(_ taps: BiomedCLIPSegTaps) throws {
        let f = try Self.fixture.get()
        let bio = try EncoderFixture("biomedclip")
        var d = CLIPSegConfig.clipsegTest
        d.extractLayers = [0, 1]; d.reduceDim = 16; d.decoderHeads = 2; d.decoderIntermediateSize = 20
        let m = BiomedCLIPSeg(BiomedCLIPTests.config(bio.config("config")), decoder: d, taps: taps)
        #expect(m.tappedBlocks == (taps == .clipseg ? [1, 2] : [2, 3]))
        var state: [String: Tensor] = [:]
        for (k, v) in bio.stateDict("sd.") { state["biomedclip." + k] = v }
        for (k, v) in f.sub("biomed.decoder.") { state["decoder." + k] = v }
        try m.load(state: state, file: "biomedclip + clipseg fixtures")
        let logits = withNoGrad { m(bio["image"], ids: bio["text"].narrow(axis: 0, start: 0, length: 2)) }
        expectSegClose(logits, f["biomed.logits.\(taps.rawValue)"], 1e-4, "BiomedCLIPSeg logits (\(taps.rawValue) taps)")
        #expect(m.biomedclip.trainableParameters().isEmpty && !m.decoder.trainableParameters().isEmpty)
        // Full size: CLIPSeg's blocks 4/7/10, medvlsm's 5/8/11.
        #expect(BiomedCLIPSeg.blocks(extractLayers: CLIPSegConfig.rd64Refined.extractLayers, taps: .clipseg) == [4, 7, 10])
        #expect(BiomedCLIPSeg.blocks(extractLayers: CLIPSegConfig.rd64Refined.extractLayers, taps: .medvlsm) == [5, 8, 11])
    }
}
