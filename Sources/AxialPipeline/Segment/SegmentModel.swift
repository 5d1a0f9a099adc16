import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// The model of `axial segment`: CLIPSeg (transformers-exact) with or without VLSM adapters, or CRIS
/// (medvlsm's), the prompt tokenizer, and its saved form (`model.safetensors`: the module's state dict
/// under the reference names — transformers' for plain CLIPSeg, vlsm-adapter's with adapters, CRIS's for
/// CRIS — plus metadata `segment.model`, `segment.adapters`, `segment.variant`, `segment.adapter_dim`).
public final class PromptSegmenter: @unchecked Sendable {
    public enum Adapters: String, Sendable, CaseIterable { case none, shallow, dense }
    /// The model family behind a `--model` name.
    public enum Family: String, Sendable { case clipseg, cris, biomedclipseg }

    public let modelName: String
    public let family: Family
    public let adapters: Adapters
    public let variant: String
    /// CLIPSeg (family `.clipseg`).
    public let clipseg: CLIPSeg?
    public let adapted: VLSMCLIPSeg?
    /// CRIS (family `.cris`).
    public let cris: CRIS?
    /// BiomedCLIPSeg (family `.biomedclipseg`) and its PubMedBERT WordPiece tokenizer.
    public let biomed: BiomedCLIPSeg?
    let wordPiece: WordPieceTokenizer?
    let tokenizer: CLIPTokenizer

    /// The module whose state is saved / checkpointed.
    public var module: Module { adapted ?? clipseg ?? cris ?? biomed! }

    public static let modelNames = ["clipseg", "clipseg_test", "cris", "cris_test", "biomedclipseg", "biomedclipseg_test"]

    public static func family(named name: String) throws -> Family {
        switch name {
        case "clipseg", "clipseg_test": return .clipseg
        case "cris", "cris_test": return .cris
        case "biomedclipseg", "biomedclipseg_test": return .biomedclipseg
        default: throw SegmentError.badOption("unknown --model '\(name)' (known: \(modelNames.joined(separator: ", ")))")
        }
    }

    public static func config(named name: String) throws -> CLIPSegConfig {
        switch name {
        case "clipseg": return .rd64Refined
        case "clipseg_test": return .clipsegTest
        default: throw SegmentError.badOption("unknown CLIPSeg --model '\(name)' (known: clipseg, clipseg_test)")
        }
    }

    public static func crisConfig(named name: String) throws -> CRISConfig {
        switch name {
        case "cris": return .cris
        case "cris_test": return .crisTest
        default: throw SegmentError.badOption("unknown CRIS --model '\(name)' (known: cris, cris_test)")
        }
    }

    /// BiomedCLIPSeg's towers and decoder settings: `biomedclipseg` = BiomedCLIP-PubMedBERT_256-vit_base_patch16_224
    /// + the rd64-refined decoder (224²); `biomedclipseg_test` = tiny towers (ViT 64², patch 16, width 32,
    /// 3 blocks; BERT width 32, 1 layer, vocab 64, context 32) + a tiny decoder on extract layers [0, 1].
    public static func biomedConfig(named name: String) throws -> (towers: BiomedCLIPConfig, decoder: CLIPSegConfig) {
        switch name {
        case "biomedclipseg": return (.base, .rd64Refined)
        case "biomedclipseg_test":
            var d = CLIPSegConfig.clipsegTest
            d.extractLayers = [0, 1]; d.reduceDim = 16; d.decoderHeads = 2; d.decoderIntermediateSize = 20
            let towers = BiomedCLIPConfig(embedDimensions: 24, vision: .init(imageSize: 64, patchSize: 16, width: 32, layers: 3, heads: 2),
                                          text: .init(vocabSize: 64, width: 32, layers: 1, heads: 2, intermediate: 48, maxPositions: 32,
                                                      contextLength: 32))
            return (towers, d)
        default: throw SegmentError.badOption("unknown BiomedCLIPSeg --model '\(name)' (known: biomedclipseg, biomedclipseg_test)")
        }
    }

    /// The input size of a model name (352 CLIPSeg, 416 CRIS, 224 BiomedCLIPSeg; tiny models 96 / 64).
    public static func inputSize(named name: String) throws -> Int {
        switch try family(named: name) {
        case .cris: return try crisConfig(named: name).inputSize
        case .biomedclipseg: return try biomedConfig(named: name).towers.vision.imageSize
        case .clipseg: return try config(named: name).inputSize
        }
    }

    /// Builds the model (random init from `seed`), then loads `weights` if given: a transformers
    /// CLIPSeg file (`clip.*` + `decoder.*`), a CRIS checkpoint (`backbone.*`, `neck.*`, …), an OpenAI /
    /// open_clip RN CLIP for CRIS's backbone (`visual.*`, CRIS's own initialisation), or a
    /// `model.safetensors` written by `axial segment train`.
    /// BiomedCLIPSeg needs `vocabulary` (PubMedBERT's vocab.txt; kept in the saved model) and takes
    /// `taps` (CLIPSeg's blocks 4/7/10 by default, medvlsm's 5/8/11 for its published numbers).
    public init(model name: String, adapters: Adapters, variant: String = "vlc", adapterDim: Int? = nil,
                weights: URL?, seed: UInt64, vocabulary: [String]? = nil, vocabularyFile: String = "<vocabulary>",
                taps: BiomedCLIPSegTaps = .clipseg) throws {
        modelName = name
        family = try Self.family(named: name)
        self.adapters = adapters
        self.variant = variant
        var g = RandomGenerator(seed: seed)
        switch family {
        case .clipseg:
            let c = CLIPSeg(try Self.config(named: name), generator: &g)
            clipseg = c
            cris = nil
            biomed = nil
            wordPiece = nil
            switch adapters {
            case .none: adapted = nil
            case .shallow, .dense:
                let kind: VLSMAdapterOptions.Kind = adapters == .shallow ? .shallow : .dense
                do {
                    adapted = VLSMCLIPSeg(c, options: try VLSMAdapterOptions.variant(kind, variant, dim: adapterDim), generator: &g)
                } catch { throw SegmentError.badOption("--variant: \(error)") }
            }
        case .cris:
            guard adapters == .none else { throw SegmentError.badOption("--adapters \(adapters.rawValue): VLSM adapters exist for CLIPSeg only, not \(name)") }
            clipseg = nil
            adapted = nil
            biomed = nil
            wordPiece = nil
            cris = CRIS(try Self.crisConfig(named: name), generator: &g)
        case .biomedclipseg:
            guard adapters == .none else { throw SegmentError.badOption("--adapters \(adapters.rawValue): VLSM adapters exist for CLIPSeg only, not \(name)") }
            guard let vocabulary else {
                throw SegmentError.badOption("\(name) needs BiomedCLIP's WordPiece vocabulary (--vocab vocab.txt of microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224)")
            }
            let (towers, decoder) = try Self.biomedConfig(named: name)
            guard vocabulary.count <= towers.text.vocabSize else {
                throw SegmentError.badOption("vocabulary \(vocabularyFile) has \(vocabulary.count) tokens, more than \(name)'s \(towers.text.vocabSize)")
            }
            let tok: WordPieceTokenizer
            do { tok = try WordPieceTokenizer(tokens: vocabulary, path: vocabularyFile, contextLength: towers.text.contextLength) }
            catch { throw SegmentError.badOption("--vocab: \(error)") }
            wordPiece = tok
            clipseg = nil
            adapted = nil
            cris = nil
            biomed = BiomedCLIPSeg(towers, decoder: decoder, taps: taps, generator: &g)
        }
        tokenizer = try CLIPTokenizer.shared()
        if let weights { try load(weights) }
    }

    /// The square input size.
    public var inputSize: Int { cris?.config.inputSize ?? biomed?.decoderConfig.inputSize ?? clipseg!.config.inputSize }
    /// Foreground where logit > this (CLIPSeg, BiomedCLIPSeg: sigmoid > 0.5; CRIS: sigmoid > 0.35).
    public var logitThreshold: Float { cris?.config.logitThreshold ?? 0 }
    /// Pixel normalisation: ImageNet's for CLIPSeg (its processor), CLIP's for CRIS (medvlsm's cris.yaml).
    public var normalization: SegmentDataset.Normalization { Self.normalization(family) }
    /// ImageNet's for CLIPSeg (its processor), CLIP's for CRIS and BiomedCLIPSeg (medvlsm's configs).
    public static func normalization(_ family: Family) -> SegmentDataset.Normalization { family == .clipseg ? .imageNet : .clip }
    /// Training batches must hold ≥ 2 samples (BatchNorm batch statistics; torch refuses one).
    public var needsBatchOfTwo: Bool { family == .cris }
    var contextLength: Int { min(cris?.config.text.contextLength ?? clipseg?.config.maxPositions ?? 0, CLIPTokenizer.defaultContextLength) }
    var vocabSize: Int { cris?.config.text.vocabSize ?? clipseg?.config.vocabSize ?? 0 }

    /// Loads weights: transformers CLIPSeg keys (`clip.`, `decoder.`) go into CLIPSeg; a saved
    /// adapted model (`clipseg.` keys) into the whole module; CRIS keys (`backbone.` …) into CRIS, an RN
    /// CLIP (`visual.` keys) into CRIS's backbone.
    public func load(_ url: URL) throws {
        let state = try EncoderWeights.read(url)
        if let biomed {
            if state.keys.contains(where: { $0.hasPrefix("biomedclip.") }) {
                try biomed.load(state: state, file: url.path)
            } else if state.keys.contains(where: { $0.hasPrefix("visual.trunk.") }) {
                // An open_clip BiomedCLIP file: the towers; the decoder keeps its random init (medvlsm's rand_init_decoder).
                var s = biomed.decoder.stateDict().reduce(into: [String: Tensor]()) { $0["decoder." + $1.key] = $1.value }
                for (k, v) in state { s["biomedclip." + k] = v }
                try biomed.load(state: s, file: url.path)
            } else {
                throw SegmentError.badModelFile(path: url.path, reason: "neither a BiomedCLIPSeg state (biomedclip.* + decoder.*) nor an open_clip BiomedCLIP (visual.trunk.* keys)")
            }
            return
        }
        if let cris {
            if state.keys.contains(where: { $0.hasPrefix("backbone.") || $0.hasPrefix("module.backbone.") }) {
                try cris.load(state: state, file: url.path)
            } else if state.keys.contains(where: { $0.hasPrefix("visual.attnpool.") }) {
                try cris.loadCLIPBackbone(state: state, file: url.path)
            } else {
                throw SegmentError.badModelFile(path: url.path, reason: "neither a CRIS checkpoint (backbone.* / neck.* keys) nor an RN CLIP (visual.attnpool.* keys)")
            }
            return
        }
        let clipseg = clipseg!
        if state.keys.contains(where: { $0.hasPrefix("clipseg.") }) {
            guard let adapted else {
                throw SegmentError.badModelFile(path: url.path, reason: "holds VLSM adapters (clipseg.* keys) but --adapters is none")
            }
            try adapted.load(state: state, file: url.path)
        } else {
            try clipseg.load(state: state, file: url.path)
            if adapted != nil { clipseg.freeze() }
        }
    }

    /// Metadata for a saved model (BiomedCLIPSeg: also its taps and vocabulary).
    public var metadata: [String: String] {
        var m = ["segment.model": modelName, "segment.adapters": adapters.rawValue, "segment.variant": variant,
                 "segment.adapter_dim": adapted.map { String($0.options.dim) } ?? ""]
        if let biomed, let wordPiece {
            m["segment.taps"] = biomed.taps.rawValue
            m["segment.vocab"] = wordPiece.tokens.joined(separator: "\n")
        }
        return m
    }

    /// A WordPiece vocab.txt (one token per line, id = line number); errors name the file.
    public static func readVocabulary(_ url: URL) throws -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw SegmentError.badOption("--vocab \(url.path): cannot read it as UTF-8 text")
        }
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw SegmentError.badOption("--vocab \(url.path): empty") }
        return lines
    }

    /// `--taps`: "clipseg" / "3,6,9" (CLIPSeg's hidden_states 3/6/9 = blocks 4/7/10) or "medvlsm" / "4,7,10"
    /// (medvlsm's indices into its block list: blocks 5/8/11).
    public static func taps(_ s: String) throws -> BiomedCLIPSegTaps {
        switch s.replacingOccurrences(of: " ", with: "").lowercased() {
        case "clipseg", "3,6,9", "3/6/9": return .clipseg
        case "medvlsm", "4,7,10", "4/7/10": return .medvlsm
        default: throw SegmentError.badOption("--taps must be clipseg (3,6,9) or medvlsm (4,7,10), got '\(s)'")
        }
    }

    /// Whether `url` is a model written by `save` (has the segment metadata).
    public static func isSavedModel(_ url: URL) -> Bool {
        (try? SafeTensors.read(url).metadata["segment.model"]) != nil
    }

    /// Rebuilds a model saved by `save` (reads its metadata).
    public static func open(_ url: URL) throws -> PromptSegmenter {
        let meta: [String: String]
        do { meta = try SafeTensors.read(url).metadata } catch {
            throw SegmentError.badModelFile(path: url.path, reason: "\(error)")
        }
        guard let name = meta["segment.model"], let a = meta["segment.adapters"].flatMap(Adapters.init(rawValue:)) else {
            throw SegmentError.badModelFile(path: url.path, reason: "no segment.model / segment.adapters metadata (not written by axial segment train; pass --model and --weights)")
        }
        let vocab = meta["segment.vocab"].map { $0.components(separatedBy: "\n") }
        let taps = meta["segment.taps"].flatMap(BiomedCLIPSegTaps.init(rawValue:)) ?? .clipseg
        return try PromptSegmenter(model: name, adapters: a, variant: meta["segment.variant"] ?? "vlc",
                                   adapterDim: meta["segment.adapter_dim"].flatMap { Int($0) }, weights: url, seed: 0,
                                   vocabulary: vocab, vocabularyFile: url.path, taps: taps)
    }

    public func save(to url: URL) throws {
        try SafeTensors.write(module.stateDict(), metadata: metadata, to: url)
    }

    /// Prompt ids [B, L]: CLIP BPE (open_clip's tokenizer, 77 tokens, EOT 49407, zero padding; CRIS
    /// masks the id-0 words out of its cross-attention). A test model's
    /// 99-token vocabulary takes id % 95 + 2 for ordinary tokens, 97 for the start and 98 for the end
    /// token (so its EOT pooling works as the real one).
    public func tokenize(_ prompts: [String]) -> Tensor {
        if let wordPiece {
            // [CLS] … [SEP] [PAD]…: BERT's attention mask drops the padding, so trimming it is exact.
            let rows = prompts.map { wordPiece.tokenize($0) }
            let len = rows.map { r in (r.lastIndex { $0 != wordPiece.padID } ?? 0) + 1 }.max() ?? 1
            return Tensor(shape: [prompts.count, len], scalars: rows.flatMap { $0.prefix(len).map(Float.init) })
        }
        let L = contextLength, V = vocabSize
        var rows: [[Int]] = prompts.map { tokenizer.tokenize($0, contextLength: L) }
        if V < tokenizer.vocabularySize {
            rows = rows.map { r in
                r.map { id in
                    id == 0 ? 0 : id == tokenizer.startOfTextID ? V - 2 : id == tokenizer.endOfTextID ? V - 1 : id % (V - 4) + 2
                }
            }
        }
        // Trim the padding after the batch's last EOT (causal mask: the pooled rows do not change;
        // CRIS masks padded words out of its cross-attention).
        let eot = V < tokenizer.vocabularySize ? V - 1 : tokenizer.endOfTextID
        let last = rows.map { $0.lastIndex(of: eot) ?? ($0.count - 1) }.max() ?? 0
        let trimmed = rows.map { Array($0.prefix(last + 1)) }
        return Tensor(shape: [prompts.count, last + 1], scalars: trimmed.flatMap { $0.map(Float.init) })
    }

    /// Logits [B, S, S].
    public func logits(_ pixels: Tensor, prompts: [String]) -> Tensor {
        let ids = tokenize(prompts)
        if let cris { return cris(pixels, ids: ids) }
        if let biomed { return biomed(pixels, ids: ids) }
        if let adapted { return adapted(pixels, ids: ids) }
        return clipseg!(pixels, condition: .text(ids: ids, attentionMask: nil))
    }

    /// Which parts train: adapters (always, when present), the decoder (CRIS: neck, decoder and
    /// projector), the encoders (CRIS: the backbone).
    public func setTrainable(decoder: Bool, encoders: Bool) {
        if let cris { cris.setTrainable(backbone: encoders, head: decoder) }
        else if let biomed {
            if encoders { biomed.biomedclip.unfreeze() } else { biomed.biomedclip.freeze() }
            if decoder { biomed.decoder.unfreeze() } else { biomed.decoder.freeze() }
        } else { clipseg!.setTrainable(encoders: encoders, decoder: decoder) }
    }

    public var trainableParameters: [Parameter] { module.trainableParameters() }
}
