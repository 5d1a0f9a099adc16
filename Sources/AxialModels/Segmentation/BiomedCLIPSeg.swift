import AxialNN
import AxialTensor
import Foundation

// BiomedCLIPSeg (medvlsm, naamiinepal/medvlsm@dc36a3a src/models/biomedclipseg.py): BiomedCLIP's
// towers (timm ViT-B/16-224 trunk + PubMedBERT with the 768→640→512 MLP projection, context 256)
// feeding transformers' CLIPSeg decoder (rd64: reduce 64, 4 heads, FFN 2048, refined upsampler).
//
//   image → trunk blocks (no final norm on the taps) → three block outputs → CLIPSegDecoder
//   text  → BERT (padding mask from id 0) → CLS → proj → the FiLM condition [B, 512]
//
// Taps: CLIPSeg's `extract_layers` [3, 6, 9] index transformers' hidden_states, whose entry 0 is the
// embedding, so they are the outputs of blocks 4, 7, 10 (1-based). medvlsm keeps only the block
// outputs in its list and still indexes it with i + 1, i.e. blocks 5, 8, 11 — off by one **[Q]**.
// Axial taps 4/7/10 by default; `.medvlsm` reproduces 5/8/11 for the published numbers.
// Keys: `biomedclip.*` (open_clip names) and `decoder.*` (transformers names), as medvlsm's module.

/// Which BiomedCLIP blocks feed the decoder.
public enum BiomedCLIPSegTaps: String, Codable, Sendable, CaseIterable {
    /// CLIPSeg's layers: outputs of blocks extract_layers[i] + 1 (4, 7, 10 for [3, 6, 9]).
    case clipseg
    /// medvlsm's: blocks extract_layers[i] + 2 (5, 8, 11).
    case medvlsm
}

public final class BiomedCLIPSeg: Module {
    public let biomedclip: BiomedCLIPModel
    public let decoder: CLIPSegDecoder
    public let decoderConfig: CLIPSegConfig
    public let taps: BiomedCLIPSegTaps

    /// `decoderConfig`: the CLIPSeg decoder's settings (reduce, heads, FFN, upsampler, extract
    /// layers); its vision width, projection and patch size are taken from `config`.
    public init(_ config: BiomedCLIPConfig, decoder decoderSettings: CLIPSegConfig = .rd64Refined, taps: BiomedCLIPSegTaps = .clipseg,
                generator: inout RandomGenerator) {
        var d = decoderSettings
        d.vision.hiddenSize = config.vision.width
        d.projectionDim = config.embedDimensions
        d.patchSize = config.vision.patchSize
        d.imageSize = config.vision.imageSize
        d.inputSize = config.vision.imageSize
        let shift = taps == .clipseg ? 1 : 2
        precondition(d.extractLayers.allSatisfy { $0 + shift >= 1 && $0 + shift <= config.vision.layers },
                     "BiomedCLIPSeg: taps \(d.extractLayers.map { $0 + shift }) outside blocks 1…\(config.vision.layers)")
        decoderConfig = d
        self.taps = taps
        biomedclip = BiomedCLIPModel(config, generator: &generator)
        decoder = CLIPSegDecoder(d, generator: &generator)
        super.init()
        biomedclip.freeze()   // medvlsm: freeze_encoder = True
    }

    public convenience init(_ config: BiomedCLIPConfig = .base, decoder: CLIPSegConfig = .rd64Refined, taps: BiomedCLIPSegTaps = .clipseg) {
        var g = DefaultGenerator.splitOff()
        self.init(config, decoder: decoder, taps: taps, generator: &g)
    }

    /// 1-based block numbers tapped, shallow first.
    public var tappedBlocks: [Int] { Self.blocks(extractLayers: decoderConfig.extractLayers, taps: taps) }

    /// The 1-based blocks tapped for CLIPSeg `extract_layers` (rd64 [3, 6, 9]: 4/7/10, medvlsm 5/8/11).
    public static func blocks(extractLayers: [Int], taps: BiomedCLIPSegTaps) -> [Int] {
        extractLayers.map { $0 + (taps == .clipseg ? 1 : 2) }
    }

    /// Logits [B, H, W] for pixels [B, 3, S, S] (BiomedCLIP-normalised) and BERT ids [B, L] (0 = padding).
    public func callAsFunction(_ pixels: Tensor, ids: Tensor) -> Tensor { forward(pixels, ids: ids).logits }

    public func forward(_ pixels: Tensor, ids: Tensor) -> (logits: Tensor, activations: [Tensor], condition: Tensor) {
        precondition(ids.shape[0] == pixels.shape[0], "BiomedCLIPSeg: \(ids.shape[0]) prompts for \(pixels.shape[0]) images")
        let train = biomedclip.parameters().contains { !$0.isFrozen }
        let encode = { [self] () -> ([Tensor], Tensor) in
            let blocks = tappedBlocks
            let out = biomedclip.visual.blockOutputs(pixels, blocks: blocks)
            return (blocks.map { out[$0]! }, biomedclip.encodeText(ids))
        }
        let (acts, cond) = train ? encode() : withNoGrad(encode)
        return (decoder.forward(acts, condition: cond).logits, acts, cond)
    }

    /// Loads medvlsm-style weights: `biomedclip.*` (open_clip names) and `decoder.*` (transformers).
    public func load(state: [String: Tensor], file: String = "<state dict>") throws {
        var s: [String: Tensor] = [:]
        for (k, v) in state {
            if k.hasPrefix("biomedclip.") {
                let rest = String(k.dropFirst("biomedclip.".count))
                for (rk, rv) in BiomedCLIPModel.remap([rest: v]) { s["biomedclip." + rk] = rv }
            } else { s[k] = v }
        }
        try EncoderWeights.load(self, s, file: file, model: "BiomedCLIPSeg")
        biomedclip.freeze()
    }
}
