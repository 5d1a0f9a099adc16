import AxialNN
import AxialTensor
import Foundation

// PsPG's pseudo-prompt generator (`PsPG_LP`, REFERENCE.md §5) with the reference's module names, so
// a reference checkpoint's `prompt_learner.*` keys load unchanged:
//
//   pos_decoder.*, neg_decoder.*   one decoder per polarity, all of one kind:
//
//   GRU (default) / LSTM (`gru.*` / `lstm.*`):   x₀ = class feature e_c [Din], h₀ = 0 (c₀ = 0)
//     for t in 1…T (T = 16):
//       h   = GRUCell(x, h)                      (LSTMCell(x, (h, c)) → h, c)
//       h   = SelfAttentionBlock(h)              across the C classes of one sample (8 heads):
//                                                h₁ = LN(h + MHA(h, h, h)); h = LN(fc(h₁) + h)   (one LN, used twice)
//       ctx = MHA(h, M, M)                       cross-attention to THIS sample's image tokens,
//                                                M = encoder_proj(tokens) [N, H]          encoder_attention.*
//       x   = fc(h + ctx)  [Din]                 fed back as the next input; collected as output t
//     tokens = output_proj(Dropout(outputs))     [T, W] (W = the text tower's width)
//
//   Transformer (`input_proj encoder_proj resblocks.<i> fc`): x = input_proj(e_c) [H];
//     each step runs x through the blocks (pre-LN: x += self_attn(ln_1 x) across classes;
//     x += cross_attn(ln_2 x, M, M); x += mlp(ln_3 x), mlp = Linear(H, 4H) → ReLU → Linear(4H, H);
//     drop path linspace(0, p, layers)); output t = x after step t; tokens = fc(Dropout(outputs)).
//
//   MLP (`mlp.0 mlp.2`): tokens = reshape(Linear(H, T·W)(QuickGELU(Linear(Din, H)(e_c))), [T, W]);
//     no image input, so the prompts are the same for every sample (returned with batch 1).
//
// Differences from the reference code, on purpose ([Q]):
// - The reference's cross-attention treats the batch as the sequence: the query of class c attends
//   over the global features of all samples in the batch, so one sample's prompts depend on the
//   other samples it happens to be batched with (and at batch size 1 the attention is trivial).
//   Here each sample's (class) queries attend over that sample's own image tokens (the 50 dense
//   RN50 tokens, token 0 the raw global feature), so prompts are per sample: [B, C, T, W].
// - The reference's LSTM decoder runs its cross-attention the other way round (the repeated global
//   image feature as the query over the class hiddens, then a mean over the batch), which gives the
//   same context to every class; here the LSTM decoder has the GRU decoder's step, with an LSTMCell.
// Initialisation as the reference's `_init_weights`: every Linear (also the attention out_proj)
// trunc_normal(std 0.02) and bias 0, LayerNorm 1 / 0; attention in_proj and the recurrent cells
// keep torch's defaults (xavier / U(±1/√H)).

/// The decoder kind (`DECODER_TYPE`).
public enum PsPGDecoderKind: String, Codable, Sendable, CaseIterable {
    case gru, lstm, transformer, mlp
}

/// The generator's hyper-parameters (the reference's `PROMPT.DECODER_*`).
public struct PsPGGeneratorConfig: Codable, Sendable, Equatable {
    public var decoder: PsPGDecoderKind = .gru
    /// Input width Din: the class-name text feature and the image tokens (1024 for RN50).
    public var inputDimension: Int
    /// Token width W: the text tower's width (512 for RN50).
    public var tokenWidth: Int
    /// DECODER_HIDDEN (512).
    public var hidden: Int = 512
    /// DECODER_MAX_LENGTH: autoregressive steps = pseudo-tokens per prompt (16).
    public var steps: Int = 16
    /// DECODER_NUM_HEADS (8).
    public var heads: Int = 8
    /// DECODER_DROP_OUT (0.2), on the stacked outputs before the projection to W.
    public var dropout: Float = 0.2
    /// DECODER_LAYERS (Transformer decoder only, 2).
    public var layers: Int = 2
    /// DECODER_DROP_PATH (Transformer decoder only, 0.1).
    public var dropPath: Float = 0.1

    public init(decoder: PsPGDecoderKind = .gru, inputDimension: Int = 1024, tokenWidth: Int = 512, hidden: Int = 512,
                steps: Int = 16, heads: Int = 8, dropout: Float = 0.2, layers: Int = 2, dropPath: Float = 0.1) {
        self.decoder = decoder; self.inputDimension = inputDimension; self.tokenWidth = tokenWidth; self.hidden = hidden
        self.steps = steps; self.heads = heads; self.dropout = dropout; self.layers = layers; self.dropPath = dropPath
    }

    /// Checks that the sizes fit together; the message names the field.
    public func validate() throws {
        for (name, v) in [("input dimension", inputDimension), ("token width", tokenWidth), ("hidden", hidden),
                          ("steps", steps), ("heads", heads), ("layers", layers)] where v < 1 {
            throw HeadError.badConfig("PsPG \(name) must be ≥ 1 (got \(v))")
        }
        if decoder != .mlp && hidden % heads != 0 {
            throw HeadError.badConfig("PsPG decoder hidden \(hidden) is not divisible by its \(heads) heads")
        }
        for (name, p) in [("dropout", dropout), ("drop path", dropPath)] where !(p >= 0 && p < 1) {
            throw HeadError.badConfig("PsPG \(name) must be in [0, 1) (got \(p))")
        }
    }
}

/// A prompt decoder: class features [C, Din] and image tokens [B, N, Din] → pseudo-token
/// embeddings [B, C, T, W] (batch 1 for decoders that do not look at the image).
public protocol PsPGPromptDecoder: Module {
    func decode(classFeatures: Tensor, tokens: Tensor) -> Tensor
}

/// The reference's `_init_weights`: Linear weights trunc_normal(0.02), biases 0 (LayerNorms are 1 / 0 already).
func pspgInitLinears(_ m: Module, generator g: inout RandomGenerator) {
    for (_, sub) in m.namedModules() {
        guard let l = sub as? Linear else { continue }
        l.weight.assign(Initializer.truncatedNormal(l.weight.value.shape, std: 0.02, generator: &g))
        if let b = l.bias { b.assign(Tensor(zeros: b.value.shape)) }
    }
}

/// The reference's `MultiHeadSelfAttention` (keys `self_attention.* fc.* layer_norm.*`):
/// h₁ = LN(x + MHA(x, x, x)); out = LN(fc(h₁) + x) — the same LayerNorm twice. x [B, C, H].
public final class PsPGSelfAttentionBlock: Module {
    public let selfAttention: MultiheadAttention
    public let fc: Linear
    public let layerNorm: LayerNorm
    init(_ hidden: Int, heads: Int, generator g: inout RandomGenerator) {
        selfAttention = MultiheadAttention(embedDimensions: hidden, numHeads: heads, generator: &g)
        fc = Linear(hidden, hidden, generator: &g)
        layerNorm = LayerNorm(hidden)
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = layerNorm(x + selfAttention(x))
        return layerNorm(fc(h) + x)
    }
}

/// GRU or LSTM pseudo-prompt decoder (one polarity). Keys `gru.*` or `lstm.*`, `encoder_proj.*`,
/// `self_attention.*`, `encoder_attention.*`, `fc.*`, `output_proj.*`.
public final class PsPGRecurrentDecoder: Module, PsPGPromptDecoder {
    public let config: PsPGGeneratorConfig
    public let gru: GRUCell?
    public let lstm: LSTMCell?
    public let encoderProj: Linear
    public let selfAttention: PsPGSelfAttentionBlock
    public let encoderAttention: MultiheadAttention
    public let fc: Linear
    public let outputProj: Linear
    public let dropout: Dropout

    public init(_ config: PsPGGeneratorConfig, generator g: inout RandomGenerator) {
        precondition(config.decoder == .gru || config.decoder == .lstm, "PsPGRecurrentDecoder: decoder \(config.decoder)")
        self.config = config
        let din = config.inputDimension, h = config.hidden
        if config.decoder == .gru { gru = GRUCell(din, h, generator: &g); lstm = nil } else { lstm = LSTMCell(din, h, generator: &g); gru = nil }
        encoderProj = Linear(din, h, generator: &g)
        selfAttention = PsPGSelfAttentionBlock(h, heads: config.heads, generator: &g)
        encoderAttention = MultiheadAttention(embedDimensions: h, numHeads: config.heads, generator: &g)
        fc = Linear(h, din, generator: &g)
        outputProj = Linear(din, config.tokenWidth, generator: &g)
        dropout = Dropout(config.dropout)
        super.init()
        pspgInitLinears(self, generator: &g)
    }

    public func decode(classFeatures: Tensor, tokens: Tensor) -> Tensor {
        let c = classFeatures.shape[0], din = config.inputDimension, hd = config.hidden
        precondition(classFeatures.rank == 2 && classFeatures.shape[1] == din, "PsPG decoder: class features \(classFeatures.shape) must be [C, \(din)]")
        precondition(tokens.rank == 3 && tokens.shape[2] == din, "PsPG decoder: image tokens \(tokens.shape) must be [B, N, \(din)]")
        let b = tokens.shape[0]
        let memory = encoderProj(tokens)                                   // [B, N, H]
        var x = classFeatures.reshaped([1, c, din]).expand(to: [b, c, din]).reshaped([b * c, din])
        var h = Tensor(zeros: [b * c, hd]), cell = Tensor(zeros: [b * c, hd])
        var outputs: [Tensor] = []
        for _ in 0..<config.steps {
            if let gru { h = gru(x, hidden: h) } else { (h, cell) = lstm!(x, state: (h, cell)) }
            let hs = selfAttention(h.reshaped([b, c, hd]))                // across classes, per sample
            let ctx = encoderAttention(hs, memory, memory, needWeights: false).output
            let out = fc(hs + ctx)                                         // [B, C, Din]
            outputs.append(out)
            x = out.reshaped([b * c, din])
            h = hs.reshaped([b * c, hd])
        }
        return outputProj(dropout(stack(outputs, axis: 2)))               // [B, C, T, W]
    }
}

/// Stochastic depth per row (the reference's timm `drop_path` over its first axis; here each
/// (sample, class) row): identity unless training and p > 0.
func pspgDropPath(_ x: Tensor, _ p: Float, training: Bool) -> Tensor {
    guard training && p > 0 else { return x }
    let keep = 1 - p
    var shape = [Int](repeating: 1, count: x.rank)
    for i in 0..<(x.rank - 1) { shape[i] = x.shape[i] }
    let mask = DefaultGenerator.with { g in Tensor.bernoulli(shape, p: keep, generator: &g) } * (1 / keep)
    return x * mask
}

/// One block of the Transformer decoder (keys `self_attn cross_attn ln_1 ln_2 ln_3 mlp.0 mlp.2`).
public final class PsPGTransformerBlock: Module {
    public let selfAttn, crossAttn: MultiheadAttention
    public let ln1, ln2, ln3: LayerNorm
    public let mlp: Sequential
    public let dropPath: Float
    override public var propertyKeys: [String: String] { ["ln1": "ln_1", "ln2": "ln_2", "ln3": "ln_3"] }

    init(_ width: Int, heads: Int, dropPath: Float, generator g: inout RandomGenerator) {
        selfAttn = MultiheadAttention(embedDimensions: width, numHeads: heads, generator: &g)
        crossAttn = MultiheadAttention(embedDimensions: width, numHeads: heads, generator: &g)
        ln1 = LayerNorm(width); ln2 = LayerNorm(width); ln3 = LayerNorm(width)
        mlp = Sequential([Linear(width, 4 * width, generator: &g), ActivationLayer(.relu), Linear(4 * width, width, generator: &g)])
        self.dropPath = dropPath
        super.init()
    }

    /// x [B, C, H], memory [B, N, H].
    public func callAsFunction(_ x: Tensor, memory: Tensor) -> Tensor {
        var x = x
        x = x + pspgDropPath(selfAttn(ln1(x)), dropPath, training: isTraining)
        x = x + pspgDropPath(crossAttn(ln2(x), memory, memory, needWeights: false).output, dropPath, training: isTraining)
        return x + pspgDropPath(mlp(ln3(x)), dropPath, training: isTraining)
    }
}

/// Transformer pseudo-prompt decoder (keys `input_proj encoder_proj resblocks.<i>.* fc`).
public final class PsPGTransformerDecoder: Module, PsPGPromptDecoder {
    public let config: PsPGGeneratorConfig
    public let encoderProj, inputProj: Linear
    public let resblocks: [PsPGTransformerBlock]
    public let fc: Linear
    public let dropout: Dropout

    public init(_ config: PsPGGeneratorConfig, generator g: inout RandomGenerator) {
        self.config = config
        let din = config.inputDimension, w = config.hidden, n = config.layers
        encoderProj = Linear(din, w, generator: &g)
        inputProj = Linear(din, w, generator: &g)
        resblocks = (0..<n).map { i in
            PsPGTransformerBlock(w, heads: config.heads, dropPath: n > 1 ? config.dropPath * Float(i) / Float(n - 1) : 0, generator: &g)
        }
        fc = Linear(w, config.tokenWidth, generator: &g)
        dropout = Dropout(config.dropout)
        super.init()
        pspgInitLinears(self, generator: &g)
    }

    public func decode(classFeatures: Tensor, tokens: Tensor) -> Tensor {
        let c = classFeatures.shape[0], din = config.inputDimension, w = config.hidden
        precondition(classFeatures.rank == 2 && classFeatures.shape[1] == din, "PsPG decoder: class features \(classFeatures.shape) must be [C, \(din)]")
        precondition(tokens.rank == 3 && tokens.shape[2] == din, "PsPG decoder: image tokens \(tokens.shape) must be [B, N, \(din)]")
        let b = tokens.shape[0]
        let memory = encoderProj(tokens)
        var x = inputProj(classFeatures).reshaped([1, c, w]).expand(to: [b, c, w])
        var outputs: [Tensor] = []
        for _ in 0..<config.steps {
            for block in resblocks { x = block(x, memory: memory) }
            outputs.append(x)
        }
        return fc(dropout(stack(outputs, axis: 2)))                        // [B, C, T, W]
    }
}

/// MLP pseudo-prompt decoder (keys `mlp.0 mlp.2`): no image input, prompts shared by all samples.
public final class PsPGMLPDecoder: Module, PsPGPromptDecoder {
    public let config: PsPGGeneratorConfig
    public let mlp: Sequential

    public init(_ config: PsPGGeneratorConfig, generator g: inout RandomGenerator) {
        self.config = config
        mlp = Sequential([Linear(config.inputDimension, config.hidden, generator: &g), ActivationLayer(.quickGelu),
                          Linear(config.hidden, config.steps * config.tokenWidth, generator: &g)])
        super.init()
        pspgInitLinears(self, generator: &g)
    }

    public func decode(classFeatures: Tensor, tokens: Tensor) -> Tensor {
        let c = classFeatures.shape[0]
        precondition(classFeatures.rank == 2 && classFeatures.shape[1] == config.inputDimension,
                     "PsPG decoder: class features \(classFeatures.shape) must be [C, \(config.inputDimension)]")
        return mlp(classFeatures).reshaped([1, c, config.steps, config.tokenWidth])
    }
}

/// `PsPG_LP`: the positive and negative decoders (keys `pos_decoder.*`, `neg_decoder.*`).
public final class PsPGPromptGenerator: Module {
    public let config: PsPGGeneratorConfig
    public let posDecoder: any PsPGPromptDecoder
    public let negDecoder: any PsPGPromptDecoder

    public init(_ config: PsPGGeneratorConfig, generator g: inout RandomGenerator) {
        self.config = config
        func make(_ g: inout RandomGenerator) -> any PsPGPromptDecoder {
            switch config.decoder {
            case .gru, .lstm: return PsPGRecurrentDecoder(config, generator: &g)
            case .transformer: return PsPGTransformerDecoder(config, generator: &g)
            case .mlp: return PsPGMLPDecoder(config, generator: &g)
            }
        }
        posDecoder = make(&g)
        negDecoder = make(&g)
        super.init()
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("pos_decoder", .module(posDecoder)), ("neg_decoder", .module(negDecoder))]
    }

    /// Pseudo-token embeddings (positive, negative), each [B or 1, C, T, W].
    public func callAsFunction(classFeatures: Tensor, tokens: Tensor) -> (pos: Tensor, neg: Tensor) {
        (posDecoder.decode(classFeatures: classFeatures, tokens: tokens), negDecoder.decode(classFeatures: classFeatures, tokens: tokens))
    }
}
