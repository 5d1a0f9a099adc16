import AxialNN
import AxialTensor
import Foundation

// VLSM-Adapter (Dhakal et al., MICCAI 2024; naamiinepal/vlsm-adapter@d5b5a5e src/models/clipseg_adapter.py)
// on Axial's transformers-exact CLIPSeg. Parameter names are the reference module's
// (`clipseg.*`, `vision_extract_adapters.N.fc1.*`, `v_attn_adapters.N.*`, `cond_adapter.*`, …).
//
// Adapter: x + ReLU(fc2(ReLU(fc1 x))).
// Shallow (dim 512): an adapter on each tapped vision state hidden_states[i + 1]; the condition is
//   text_projection(pooled text) → cond adapter (512→256→512), then += text_adapterₖ(hidden_states[i + 1]
//   of the text tower at the argmax-id (EOT) row) for each tap i.
// Dense (dim 64): in each of the first max(extract_layers) vision and text layers (9 for CLIPSeg), one
//   adapter on the attention output and one on the MLP output, each before its residual add; the
//   text is pooled at the argmax id; then the cond adapter.
// V / VL / VLC: `vision`, `language`, `conditional` switch the three groups. As the reference
// (`freeze_clipseg: true`), CLIPSeg itself is frozen and only the adapters train, unless asked
// otherwise (`setTrainable`); the reference's no_grad does not exist here, so unfreezing the encoders
// really trains them.

/// Houlsby-style adapter without layer norm: x + ReLU(fc2(ReLU(fc1 x))) (keys `fc1.* fc2.*`).
public final class VLSMAdapter: Module, UnaryLayer {
    public let fc1: Linear, fc2: Linear
    public init(_ dim: Int, hidden: Int, generator: inout RandomGenerator) {
        fc1 = Linear(dim, hidden, generator: &generator)
        fc2 = Linear(hidden, dim, generator: &generator)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { x + relu(fc2(relu(fc1(x)))) }
}

/// Which VLSM adapters a model carries.
public struct VLSMAdapterOptions: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case shallow, dense }
    public var kind: Kind
    public var vision: Bool
    public var language: Bool
    public var conditional: Bool
    /// Bottleneck width (shallow 512, dense 64 in the paper).
    public var dim: Int
    /// The conditional adapter's bottleneck (256 in the reference).
    public var conditionalDim: Int = 256

    public init(kind: Kind, vision: Bool = true, language: Bool = true, conditional: Bool = true, dim: Int? = nil,
                conditionalDim: Int = 256) {
        self.kind = kind; self.vision = vision; self.language = language; self.conditional = conditional
        self.dim = dim ?? (kind == .shallow ? 512 : 64); self.conditionalDim = conditionalDim
    }

    /// "v", "vl" or "vlc" (the paper's variants) for the given kind.
    public static func variant(_ kind: Kind, _ name: String, dim: Int? = nil) throws -> VLSMAdapterOptions {
        switch name.lowercased() {
        case "v": return .init(kind: kind, vision: true, language: false, conditional: false, dim: dim)
        case "vl": return .init(kind: kind, vision: true, language: true, conditional: false, dim: dim)
        case "vlc": return .init(kind: kind, vision: true, language: true, conditional: true, dim: dim)
        default: throw EncoderError.badInput(model: "VLSM adapters", reason: "variant '\(name)' is not one of v, vl, vlc")
        }
    }
}

/// CLIPSeg with VLSM adapters (`CLIPSegShallowAdapter` / `CLIPSegDenseAdapter`).
public final class VLSMCLIPSeg: Module {
    public let options: VLSMAdapterOptions
    public let clipseg: CLIPSeg
    public let visionExtractAdapters: [VLSMAdapter]
    public let textExtractAdapters: [VLSMAdapter]
    public let vAttnAdapters: [VLSMAdapter], vOutAdapters: [VLSMAdapter]
    public let lAttnAdapters: [VLSMAdapter], lOutAdapters: [VLSMAdapter]
    public let condAdapter: VLSMAdapter?

    public init(_ clipseg: CLIPSeg, options: VLSMAdapterOptions, generator: inout RandomGenerator) {
        let c = clipseg.config
        self.options = options
        self.clipseg = clipseg
        let shallow = options.kind == .shallow, dense = options.kind == .dense
        let n = dense ? (c.extractLayers.max() ?? 0) : 0
        func make(_ count: Int, _ width: Int, _ hidden: Int, _ g: inout RandomGenerator) -> [VLSMAdapter] {
            (0..<count).map { _ in VLSMAdapter(width, hidden: hidden, generator: &g) }
        }
        visionExtractAdapters = shallow && options.vision ? make(c.extractLayers.count, c.vision.hiddenSize, options.dim, &generator) : []
        if shallow && options.language {
            precondition(c.text.hiddenSize == c.projectionDim,
                         "VLSM shallow text adapters add text states (width \(c.text.hiddenSize)) into the condition (width \(c.projectionDim)): they must match")
        }
        textExtractAdapters = shallow && options.language ? make(c.extractLayers.count, c.text.hiddenSize, options.dim, &generator) : []
        vAttnAdapters = dense && options.vision ? make(n, c.vision.hiddenSize, options.dim, &generator) : []
        vOutAdapters = dense && options.vision ? make(n, c.vision.hiddenSize, options.dim, &generator) : []
        lAttnAdapters = dense && options.language ? make(n, c.text.hiddenSize, options.dim, &generator) : []
        lOutAdapters = dense && options.language ? make(n, c.text.hiddenSize, options.dim, &generator) : []
        condAdapter = options.conditional ? VLSMAdapter(c.projectionDim, hidden: options.conditionalDim, generator: &generator) : nil
        super.init()
        clipseg.freeze()
    }

    public convenience init(_ clipseg: CLIPSeg, options: VLSMAdapterOptions) {
        var g = DefaultGenerator.splitOff()
        self.init(clipseg, options: options, generator: &g)
    }

    override public var propertyKeys: [String: String] {
        ["vAttnAdapters": "v_attn_adapters", "vOutAdapters": "v_out_adapters",
         "lAttnAdapters": "l_attn_adapters", "lOutAdapters": "l_out_adapters"]
    }

    /// All adapter parameters (trainable by default).
    public var adapterParameters: [Parameter] {
        namedParameters().filter { !$0.0.hasPrefix("clipseg.") }.map(\.1)
    }

    /// The adapters' parameter count for a configuration, without building the model
    /// (rd64-refined VLC: dense 3,237,376, shallow 4,201,984).
    public static func adapterParameterCount(_ c: CLIPSegConfig, _ o: VLSMAdapterOptions) -> Int {
        func a(_ d: Int, _ h: Int) -> Int { 2 * d * h + d + h }
        var n = 0
        switch o.kind {
        case .shallow:
            if o.vision { n += c.extractLayers.count * a(c.vision.hiddenSize, o.dim) }
            if o.language { n += c.extractLayers.count * a(c.text.hiddenSize, o.dim) }
        case .dense:
            let k = c.extractLayers.max() ?? 0
            if o.vision { n += 2 * k * a(c.vision.hiddenSize, o.dim) }
            if o.language { n += 2 * k * a(c.text.hiddenSize, o.dim) }
        }
        if o.conditional { n += a(c.projectionDim, o.conditionalDim) }
        return n
    }

    /// Freezes / unfreezes CLIPSeg's parts (the adapters stay trainable).
    public func setTrainable(encoders: Bool, decoder: Bool) { clipseg.setTrainable(encoders: encoders, decoder: decoder) }

    private func layerAdapters(_ attn: [VLSMAdapter], _ out: [VLSMAdapter]) -> [CLIPSegLayerAdapters] {
        zip(attn, out).map { CLIPSegLayerAdapters(attention: $0, mlp: $1) }
    }

    /// Logits [B, S, S] for pixels [B, 3, S, S] and text ids [B, L] (+ transformers attention mask).
    public func callAsFunction(_ pixels: Tensor, ids: Tensor, attentionMask: Tensor? = nil) -> Tensor {
        forward(pixels, ids: ids, attentionMask: attentionMask).logits
    }

    /// Logits, the (adapted) decoder inputs and the final condition.
    public func forward(_ pixels: Tensor, ids: Tensor, attentionMask: Tensor? = nil)
        -> (logits: Tensor, activations: [Tensor], condition: Tensor) {
        let m = clipseg, c = m.config
        precondition(ids.shape[0] == pixels.shape[0], "VLSM CLIPSeg: \(ids.shape[0]) prompts for \(pixels.shape[0]) images")
        let encTrain = m.encodersTrain
        func tape<R>(_ needed: Bool, _ body: () -> R) -> R { needed || encTrain ? body() : withNoGrad(body) }

        // Vision: dense adapters live inside the layers; shallow ones act on the taps.
        let vAdapters = layerAdapters(vAttnAdapters, vOutAdapters)
        var acts = tape(!vAdapters.isEmpty) { m.visionActivations(pixels, adapters: vAdapters) }
        if !visionExtractAdapters.isEmpty { acts = zip(visionExtractAdapters, acts).map { $0($1) } }

        // Text.
        let lAdapters = layerAdapters(lAttnAdapters, lOutAdapters)
        // Only rows at the pool / argmax positions are read: cut the padding after them (exact, causal mask).
        let (ids, attentionMask) = m.clip.textModel.trimmedForPooling(ids, attentionMask: attentionMask)
        let argmax = CLIPTextTransformer.eotPositions(ids)
        let text = tape(!lAdapters.isEmpty) { m.clip.textModel.forward(ids, attentionMask: attentionMask, adapters: lAdapters) }
        let pooled = gatherRows(text.lastHiddenState, options.kind == .dense ? argmax : text.poolPositions)
        var cond = tape(!lAdapters.isEmpty) { m.clip.textProjection(pooled) }
        if let condAdapter { cond = condAdapter(cond) }
        for (i, adapter) in zip(c.extractLayers, textExtractAdapters) {
            cond = cond + adapter(gatherRows(text.hiddenStates[i + 1], argmax))
        }
        let d = m.decoder.forward(acts, condition: cond)
        return (d.logits, acts, cond)
    }

    // MARK: Weights

    /// Loads a state dict under the reference module's names. The shallow reference also registers
    /// CLIPSeg's `clip` at the top level (`clip.*` duplicates of `clipseg.clip.*`): those are dropped.
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        var s: [String: Tensor] = [:]
        for (k, v) in state where !k.hasPrefix("clip.") && !k.hasSuffix("position_ids") { s[k] = v }
        try EncoderWeights.load(self, s, file: file, model: "VLSM CLIPSeg (\(options.kind.rawValue))")
    }

    /// Loads CLIPSeg's own weights (transformers names) under the adapters.
    public func loadCLIPSeg(state: [String: Tensor], file: String = "<state dict>") throws {
        try clipseg.load(state: state, file: file)
        clipseg.freeze()
    }
}
