import AxialNN
import AxialTensor
import Foundation

// PsPG as the paper builds it (REFERENCE.md §5; the reference's `pspg` class with `PsPG_LP`):
//
//   image tokens  T [B, N, Din]   the frozen CLIP RN50's dense tokens (`CLIPModifiedResNet.encodeDense`,
//                                 `.raw`: token 0 = the global feature, N = 50 at 224²)
//   class features e [C, Din]     the frozen text tower on each class name ([SOS] name [EOS], EOT pooled,
//                                 text projection; not normalised) — `PsPGClassSet`
//   prompts                        PsPGPromptGenerator → pos / neg pseudo-tokens [B, C, T, W]
//   prompt text features           per prompt: [SOS] + T tokens (+ the class name's tokens and "." with
//                                 `namePrefix`, the reference's ENABLE_PREFIX) + [EOS], + position
//                                 embeddings → the frozen text transformer (causal) → ln_final → the
//                                 row at EOS → text_projection → L2 normalise: f_pos, f_neg [B, C, Din]
//   spatial fusion (`ECA_combined`) t = T with token 0 replaced by l2norm(global);
//                                 a = σ(conv(mean_d t) + conv(max_d t)) over the N tokens,
//                                 conv = Conv1d(1, 1, 3, padding 1, no bias) shared (3 parameters);
//                                 `.weighted` (default): t = a ⊙ l2norm(t) per token;
//                                 `.reference`: t = l2norm(a ⊙ t), as the reference code — [Q] there
//                                 the per-token normalisation cancels the positive per-token weight,
//                                 so the fusion does nothing and its 3 parameters get a zero
//                                 gradient (checked by the goldens); Axial normalises first so the
//                                 weights act as the paper describes
//   logits [B, 2, C]               exp(logit_scale) · Σₙ ⟨tₙ, f_s,c⟩ (s = pos, neg)
//
// Loss (the reference's `LossRanking`): 0.1 · ASL(logits, y) (softmax over each class's (pos, neg)
// pair, γ⁻ 2, γ⁺ 1, clip 0.05, sum, y = −1 ignored) + 0.07 · MultiLabelMarginLoss over the
// flattened batch: p = softmax(logits)[:, 0] of every known (sample, class) entry as ONE vector,
// target = the positions of its positives. With the pair loss (`LossMixture`): 0.1 · ASL + 1 · BCE(
// max over the batch of the pair logits, co-occurrence of each class pair in the batch), where a
// pair prompt is [SOS] + tokens_j + tokens_k + [EOS] from the positive decoder (no name prefix).
//
// The text tower is not part of the state dict (`stateDict()` = `prompt_learner.*`,
// `channel_attention.conv.weight`, `logit_scale`: the reference checkpoint's trainable keys).

/// Where the spatial fusion's per-token weights act (see the file comment).
public enum PsPGFusion: String, Codable, Sendable, CaseIterable {
    /// t = a ⊙ l2norm(t): the weights change the logits (Axial's default).
    case weighted
    /// t = l2norm(a ⊙ t): the reference code's order, in which the weights cancel.
    case reference
}

/// PsPG hyper-parameters beyond the generator's.
public struct PsPGModelConfig: Codable, Sendable, Equatable {
    public var generator: PsPGGeneratorConfig
    public var fusion: PsPGFusion = .weighted
    /// ENABLE_PREFIX: the class name's tokens (and ".") follow the pseudo-tokens in each prompt.
    public var namePrefix: Bool = false
    /// ENABLE_PAIRLOSS: pair prompts and the pair co-occurrence loss instead of the margin term.
    public var pairLoss: Bool = false
    /// TEMPERATURE: logit_scale starts at log(1 / temperature).
    public var temperature: Double = 0.07
    public var aslWeight: Float = 0.1, marginWeight: Float = 0.07, pairWeight: Float = 1
    public var gammaNegative: Float = 2, gammaPositive: Float = 1, clip: Float = 0.05
    /// The text tower's start / end-of-text ids (CLIP BPE: 49406, 49407).
    public var sotToken: Int = 49406, eotToken: Int = 49407

    public init(generator: PsPGGeneratorConfig, namePrefix: Bool = false, pairLoss: Bool = false) {
        self.generator = generator; self.namePrefix = namePrefix; self.pairLoss = pairLoss
    }
}

/// The label set a model scores: class features [C, Din] from the text tower and, for the name
/// prefix, each class's name token ids (with the trailing "." id; no SOS / EOS).
public struct PsPGClassSet: @unchecked Sendable {
    public var names: [String]
    public var features: Tensor
    public var nameTokens: [[Int]]
    public var count: Int { features.shape[0] }

    public init(names: [String], features: Tensor, nameTokens: [[Int]]) {
        precondition(features.rank == 2 && features.shape[0] == names.count && nameTokens.count == names.count,
                     "PsPGClassSet: \(names.count) names, features \(features.shape), \(nameTokens.count) token lists")
        self.names = names; self.features = features.detached(); self.nameTokens = nameTokens
    }

    /// Encodes tokenized class names (each `[SOS] name [EOS]` without padding, as `CLIPTokenizer.encode`
    /// plus the markers) with the frozen text tower: features = the EOS row projected (not normalised).
    /// `nameTokens` = the ids between SOS and EOS followed by `periodToken` when given.
    public static func encode(names: [String], ids: [[Int]], text: CLIPTextTransformer, periodToken: Int?) -> PsPGClassSet {
        let L = ids.map(\.count).max() ?? 1
        var flat = [Float](repeating: 0, count: ids.count * L)
        for (i, row) in ids.enumerated() { for (j, t) in row.enumerated() { flat[i * L + j] = Float(t) } }
        let features = withNoGrad { text(Tensor(shape: [ids.count, L], scalars: flat)) }
        let tokens = ids.map { row -> [Int] in
            let inner = Array(row.dropFirst().dropLast())
            return periodToken.map { inner + [$0] } ?? inner
        }
        return PsPGClassSet(names: names, features: features, nameTokens: tokens)
    }
}

/// `ECA_combined(50)`: keys `conv.weight` [1, 1, 3].
public final class PsPGChannelAttention: Module {
    public let conv: Conv1d
    init(generator g: inout RandomGenerator) {
        conv = Conv1d(1, 1, kernelSize: 3, padding: 1, bias: false, generator: &g)
        super.init()
    }
    /// The per-token weights a = σ(conv(mean_d x) + conv(max_d x)) [B, N] of x [B, N, D].
    public func weights(_ x: Tensor) -> Tensor {
        let b = x.shape[0], n = x.shape[1]
        let pools = concat([x.mean(axis: 2), x.max(axis: 2)], axis: 0).reshaped([2 * b, 1, n])
        let c = conv(pools).reshaped([2, b, n])
        return sigmoid(c.select(axis: 0, index: 0) + c.select(axis: 0, index: 1))
    }
    /// x ⊙ a (the reference module's output).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x * weights(x).reshaped([x.shape[0], x.shape[1], 1])
    }
}

/// What a forward pass gives.
public struct PsPGOutput {
    /// [B, 2, C]: index 0 positive, 1 negative.
    public var logits: Tensor
    /// [B, P] (P = C(C−1)/2 class pairs in `torch.combinations` order) when pairs were asked for.
    public var pairLogits: Tensor?
    /// Pseudo-token embeddings [B or 1, C, T, W].
    public var posTokens: Tensor, negTokens: Tensor
    /// Normalised prompt text features [B or 1, C, Din].
    public var posFeatures: Tensor, negFeatures: Tensor
    /// Σₙ of the fused, normalised image tokens [B, Din].
    public var image: Tensor
    /// P(positive) = softmax over the (pos, neg) pair, [B, C] — the score used for AUROC.
    public var probabilities: Tensor { softmax(logits, axis: 1).select(axis: 1, index: 0) }
}

public final class PsPGModel: Module {
    public let config: PsPGModelConfig
    /// The frozen text tower (not in the state dict).
    public let text: CLIPTextTransformer
    public let promptLearner: PsPGPromptGenerator
    public let channelAttention: PsPGChannelAttention
    /// [] — log of the inverse temperature (trained, no weight decay).
    public let logitScale: Parameter
    public private(set) var classes: PsPGClassSet

    public init(_ config: PsPGModelConfig, text: CLIPTextTransformer, classes: PsPGClassSet, generator g: inout RandomGenerator) throws {
        try config.generator.validate()
        let din = config.generator.inputDimension
        guard text.config.width == config.generator.tokenWidth else {
            throw HeadError.badConfig("PsPG token width \(config.generator.tokenWidth) != the text tower's width \(text.config.width)")
        }
        guard text.textProjection.value.shape[1] == din else {
            throw HeadError.badConfig("PsPG input dimension \(din) != the text tower's output \(text.textProjection.value.shape[1])")
        }
        self.config = config
        self.text = text
        text.freeze(); text.eval()
        promptLearner = PsPGPromptGenerator(config.generator, generator: &g)
        channelAttention = PsPGChannelAttention(generator: &g)
        logitScale = Parameter(Tensor(Float(Foundation.log(1 / config.temperature))))
        self.classes = classes
        super.init()
        try setClasses(classes)
    }

    override public func namedChildren() -> [(String, ModuleChild)] {
        [("prompt_learner", .module(promptLearner)), ("channel_attention", .module(channelAttention)), ("logit_scale", .parameter(logitScale))]
    }

    /// Scores another label set from now on (zero-shot on names never seen in training).
    public func setClasses(_ set: PsPGClassSet) throws {
        let din = config.generator.inputDimension
        guard set.features.rank == 2 && set.features.shape[1] == din else {
            throw HeadError.badConfig("PsPG class features \(set.features.shape) must be [C, \(din)]")
        }
        guard set.count >= 1 else { throw HeadError.badConfig("PsPG needs at least one class") }
        let longest = 2 + config.generator.steps + (config.namePrefix ? (set.nameTokens.map(\.count).max() ?? 0) : 0)
        let pairs = config.pairLoss ? 2 + 2 * config.generator.steps : 0
        guard max(longest, pairs) <= text.config.contextLength else {
            throw HeadError.badConfig("PsPG prompts of \(max(longest, pairs)) tokens exceed the text tower's context \(text.config.contextLength)")
        }
        classes = set
    }

    /// SGD parameter groups as the reference's `get_params`: 1-d (and 0-d) tensors, biases and
    /// `logit_scale` get no weight decay.
    public func parameterGroups(lr: Double, weightDecay: Double) -> [ParameterGroup] {
        var decay: [Parameter] = [], none: [Parameter] = []
        for (name, p) in namedParameters() where !p.isFrozen {
            if p.value.rank <= 1 || name.hasSuffix(".bias") || name == "logit_scale" { none.append(p) } else { decay.append(p) }
        }
        return [ParameterGroup(decay, lr: lr, weightDecay: weightDecay, name: "decay"),
                ParameterGroup(none, lr: lr, weightDecay: 0, name: "no_decay")]
    }

    /// Rows [S, K, W] of pseudo-tokens → text features [S, Din] (normalised): [SOS] + rows + suffix,
    /// suffix = each row's name tokens (row r has class `suffixClass(r)`) + [EOS].
    func encodePrompts(_ rows: Tensor, suffixes: [[Int]]) -> Tensor {
        let s = rows.shape[0], k = rows.shape[1], w = rows.shape[2]
        let longest = suffixes.map(\.count).max() ?? 0
        // Suffix ids padded with EOS (positions after EOS cannot reach it under the causal mask).
        var ids = [Int](); ids.reserveCapacity(s * (longest + 1))
        for r in 0..<s { let t = suffixes[r] + [config.eotToken]; ids += t + [Int](repeating: config.eotToken, count: longest + 1 - t.count) }
        let emb = text.tokenEmbedding
        let sos = emb([config.sotToken], shape: [1, 1]).reshaped([1, 1, w]).expand(to: [s, 1, w])
        let suffix = emb(ids, shape: [s, longest + 1])
        let L = 1 + k + longest + 1
        let x = concat([sos, rows, suffix], axis: 1) + text.positionalEmbedding.value.narrow(axis: 0, start: 0, length: L)
        let eot = suffixes.map { 1 + k + $0.count }
        return l2Normalize(text.encode(embeddings: x, eotPositions: eot), axis: -1)
    }

    /// tokens [B, N, Din]: raw dense image tokens (token 0 = the global feature). `pairs` asks for
    /// the pair logits (needs `config.pairLoss`).
    public func forward(tokens: Tensor, pairs: Bool = false) -> PsPGOutput {
        let din = config.generator.inputDimension
        precondition(tokens.rank == 3 && tokens.shape[2] == din && tokens.shape[1] >= 1, "PsPG: image tokens \(tokens.shape) must be [B, N, \(din)]")
        let b = tokens.shape[0], n = tokens.shape[1], c = classes.count, steps = config.generator.steps, w = config.generator.tokenWidth
        let t = tokens.detached()
        let (pos, neg) = promptLearner(classFeatures: classes.features, tokens: t)     // [B', C, T, W]
        let bp = pos.shape[0]
        let suffixes = (0..<(bp * c)).map { r in config.namePrefix ? classes.nameTokens[r % c] : [] }
        let fp = encodePrompts(pos.reshaped([bp * c, steps, w]), suffixes: suffixes).reshaped([bp, c, din])
        let fn = encodePrompts(neg.reshaped([bp * c, steps, w]), suffixes: suffixes).reshaped([bp, c, din])

        // Spatial fusion over the tokens.
        let global = l2Normalize(t.narrow(axis: 1, start: 0, length: 1), axis: -1)
        var fused = n > 1 ? concat([global, t.narrow(axis: 1, start: 1, length: n - 1)], axis: 1) : global
        switch config.fusion {
        case .reference: fused = l2Normalize(channelAttention(fused), axis: -1)
        case .weighted: fused = l2Normalize(fused, axis: -1) * channelAttention.weights(fused).reshaped([b, n, 1])
        }
        let image = fused.sum(axis: 1)                                          // [B, Din]
        let scale = logitScale.value.exp()
        func score(_ f: Tensor) -> Tensor {                                     // f [B', K, Din] → [B, K]
            let k = f.shape[1]
            if f.shape[0] == 1 { return matmulTransposedB(image, f.reshaped([k, din])) * scale }
            return matmul(f, image.reshaped([b, din, 1])).reshaped([b, k]) * scale
        }
        let logits = stack([score(fp), score(fn)], axis: 1)                     // [B, 2, C]
        var pairLogits: Tensor? = nil
        if pairs {
            precondition(config.pairLoss, "PsPG: pair logits need config.pairLoss")
            let (j, k) = Self.pairIndices(c)
            let rows = concat([pos.indexSelect(axis: 1, indices: j), pos.indexSelect(axis: 1, indices: k)], axis: 2)   // [B', P, 2T, W]
            let p = j.count
            let f = encodePrompts(rows.reshaped([bp * p, 2 * steps, w]), suffixes: [[Int]](repeating: [], count: bp * p)).reshaped([bp, p, din])
            pairLogits = score(f)
        }
        return PsPGOutput(logits: logits, pairLogits: pairLogits, posTokens: pos, negTokens: neg,
                          posFeatures: fp, negFeatures: fn, image: image)
    }

    /// `torch.combinations(arange(C), r=2)`: (0,1), (0,2), …, (C−2, C−1).
    public static func pairIndices(_ c: Int) -> ([Int], [Int]) {
        var j: [Int] = [], k: [Int] = []
        for a in 0..<c { for bb in (a + 1)..<max(c, a + 1) { j.append(a); k.append(bb) } }
        return (j, k)
    }

    /// The training loss for targets [B, C] (1 / 0 / −1 = unknown).
    public func loss(_ out: PsPGOutput, targets: Tensor) -> Tensor {
        Self.loss(logits: out.logits, pairLogits: out.pairLogits, targets: targets, config: config)
    }

    public static func loss(logits: Tensor, pairLogits: Tensor?, targets: Tensor, config: PsPGModelConfig) -> Tensor {
        let b = logits.shape[0], c = logits.shape[2]
        precondition(targets.shape == [b, c], "PsPG loss: targets \(targets.shape) != [\(b), \(c)]")
        let y = targets.detached()
        var loss = asymmetricLoss(logits, y, gammaNegative: config.gammaNegative, gammaPositive: config.gammaPositive,
                                  clip: config.clip, reduction: .sum) * config.aslWeight
        let ys = y.scalars
        if let pairLogits, config.pairLoss {
            // Co-occurrence of each pair (j < k) in the batch (unknown counts as absent), clipped at 1.
            let (j, k) = pairIndices(c)
            let target = zip(j, k).map { (a, bb) -> Float in
                (0..<b).contains { ys[$0 * c + a] == 1 && ys[$0 * c + bb] == 1 } ? 1 : 0
            }
            let pooled = pairLogits.max(axis: 0)
            loss = loss + binaryCrossEntropyWithLogits(pooled, Tensor(shape: [j.count], scalars: target)) * config.pairWeight
        } else if config.marginWeight != 0 {
            let known = ys.indices.filter { ys[$0] != -1 }
            if !known.isEmpty {
                let p = softmax(logits, axis: 1).select(axis: 1, index: 0).reshaped([b * c]).indexSelect(axis: 0, indices: known)
                var target = [Float](repeating: -1, count: known.count)
                var m = 0
                for (i, idx) in known.enumerated() where ys[idx] == 1 { target[m] = Float(i); m += 1 }
                loss = loss + multilabelMarginLoss(p, Tensor(shape: [known.count], scalars: target)) * config.marginWeight
            }
        }
        return loss
    }
}
