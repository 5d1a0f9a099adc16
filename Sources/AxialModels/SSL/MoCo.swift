import AxialNN
import AxialTensor
import Foundation

// MoCo v3 contrastive loss and its LeCL variant (lesion slices as extra, weighted negatives).
//
// MoCo v3 (facebookresearch/moco-v3 `builder.py`): q, k l2-normalised, logits s = q·kᵀ/T, the
// positive of query i is key i, loss = CE(s, arange(N))·2T. LeCL (CLEAR `contrastive_loss_lesion`):
// for query i,
//     ℓᵢ = −[sᵢᵢ − logsumexp({sᵢⱼ}ⱼ ∪ {w·sᵢⱼ : j lesion, j ≠ i})],   loss = 2T·meanᵢ ℓᵢ.
// Lesion slices enter the denominator a second time with their logits scaled by w. With w ≤ 0 or no
// lesion in the batch the loss is exactly plain MoCo v3 (CLEAR falls back to `contrastive_loss`).

/// Fused LeCL / cross-entropy-with-arange loss from a logits matrix, with a hand-written backward.
///
/// logits: [N, M] (M ≥ N; the positive of row i is column i + `positiveOffset` — on rank r of a
/// data-parallel job the local queries meet the gathered global keys, offset r·N), lesion: N·M-independent column mask
/// of length M (`true` = lesion slice), weight w, scale (2T). Returns a scalar.
/// Forward in Double (as CLEAR's `.double().logsumexp`). Backward, with lseᵢ the row's
/// log-sum-exp, pᵢⱼ = exp(sᵢⱼ − lseᵢ), p′ᵢⱼ = exp(w·sᵢⱼ − lseᵢ):
///     ∂loss/∂sᵢⱼ = scale/N · (pᵢⱼ + [j lesion, j ≠ i]·w·p′ᵢⱼ − δᵢⱼ).
public func lesionContrastiveLoss(logits: Tensor, lesion: [Bool], weight w: Float, scale: Float,
                                  positiveOffset off: Int = 0) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[1] >= logits.shape[0] + off && off >= 0,
                 "lesionContrastiveLoss: logits must be [N, M] with M ≥ N + positive offset \(off), got \(logits.shape)")
    let n = logits.shape[0], m = logits.shape[1]
    precondition(lesion.isEmpty || lesion.count == m,
                 "lesionContrastiveLoss: lesion mask has \(lesion.count) entries for \(m) keys (logits \(logits.shape))")
    let useLesion = w > 0 && lesion.contains(true)
    let mask = useLesion ? lesion : [Bool](repeating: false, count: m)
    let wd = Double(w)
    var lse = [Double](repeating: 0, count: n)
    var total = 0.0
    logits.withUnsafeBufferPointer { s in
        for i in 0..<n {
            let row = i * m
            var mx = -Double.infinity
            for j in 0..<m {
                mx = Swift.max(mx, Double(s[row + j]))
                if mask[j] && j != i + off { mx = Swift.max(mx, wd * Double(s[row + j])) }
            }
            var sum = 0.0
            for j in 0..<m {
                sum += Foundation.exp(Double(s[row + j]) - mx)
                if mask[j] && j != i + off { sum += Foundation.exp(wd * Double(s[row + j]) - mx) }
            }
            lse[i] = mx + Foundation.log(sum)
            total += lse[i] - Double(s[row + i + off])
        }
    }
    let value = Float(total / Double(n) * Double(scale))
    let y = Tensor(value)
    let x = logits.detached()
    return Tensor.record(y, inputs: [logits], name: "lesionContrastiveLoss") { g in
        let c = Double(g.item()) * Double(scale) / Double(n)
        var gx = [Float](repeating: 0, count: n * m)
        x.withUnsafeBufferPointer { s in
            for i in 0..<n {
                let row = i * m
                for j in 0..<m {
                    let sij = Double(s[row + j])
                    var d = Foundation.exp(sij - lse[i])
                    if mask[j] && j != i + off { d += wd * Foundation.exp(wd * sij - lse[i]) }
                    if j == i + off { d -= 1 }
                    gx[row + j] = Float(c * d)
                }
            }
        }
        return [Tensor(shape: [n, m], scalars: gx)]
    }
}

/// MoCo v3 `ctr(q, k)` with LeCL's weighted lesion negatives: q, k [N, D] are l2-normalised,
/// logits = q·kᵀ/T, loss = lesionContrastiveLoss(logits, lesion, w, 2T). `weight ≤ 0` (or an
/// empty / all-false mask) gives CE(logits, arange)·2T exactly.
public func mocoContrastiveLoss(query q: Tensor, key k: Tensor, temperature T: Float,
                                lesion: [Bool] = [], weight: Float = 0, positiveOffset: Int = 0) -> Tensor {
    precondition(q.rank == 2 && k.rank == 2 && q.shape[1] == k.shape[1],
                 "mocoContrastiveLoss: query \(q.shape) and key \(k.shape) must be [N, D] and [M, D]")
    let logits = matmulTransposedB(l2Normalize(q, axis: 1), l2Normalize(k, axis: 1)) / T
    return lesionContrastiveLoss(logits: logits, lesion: lesion, weight: weight, scale: 2 * T, positiveOffset: positiveOffset)
}

// MARK: - MoCo v3 model

/// MoCo v3 / LeCL hyper-parameters (defaults: CLEAR `main_moco.py` / MoCo v3 ViT).
public struct MoCoConfig: Codable, Sendable, Equatable {
    /// Output dimension of projector and predictor.
    public var dim = 256
    /// Hidden dimension of projector and predictor MLPs.
    public var mlpDim = 4096
    /// Softmax temperature T (CLEAR default 1.0; MoCo v3 ViT recipes use 0.2).
    public var temperature: Float = 1.0
    /// Base momentum m₀ of the momentum encoder.
    public var momentum: Float = 0.99
    /// Ramp m from m₀ to 1 with a half cosine over the run (`--moco-m-cos`).
    public var cosineMomentum = true
    /// LeCL weight w of the extra lesion negatives; ≤ 0 gives plain MoCo v3.
    public var lesionWeight: Float = 1.0
    /// Predictor ends with BatchNorm(affine = False), as MoCo_ViT (MoCo_ResNet: false).
    public var predictorLastBatchNorm = true
    public init() {}
    public init(dim: Int = 256, mlpDim: Int = 4096, temperature: Float = 1.0, momentum: Float = 0.99,
                cosineMomentum: Bool = true, lesionWeight: Float = 1.0, predictorLastBatchNorm: Bool = true) {
        self.dim = dim; self.mlpDim = mlpDim; self.temperature = temperature; self.momentum = momentum
        self.cosineMomentum = cosineMomentum; self.lesionWeight = lesionWeight; self.predictorLastBatchNorm = predictorLastBatchNorm
    }

    /// m(step) = 1 − (1 − m₀)·(cos(π·step/total) + 1)/2 (MoCo v3 `adjust_moco_momentum`, per step);
    /// m₀ when `cosineMomentum` is off.
    public func momentum(step: Int, totalSteps: Int) -> Float {
        guard cosineMomentum else { return momentum }
        let c = (Foundation.cos(Double.pi * Double(step) / Double(Swift.max(1, totalSteps))) + 1) / 2
        return Float(1 - (1 - Double(momentum)) * c)
    }
}

/// MoCo v3 `_build_mlp(numLayers, in, hidden, out, lastBN)`: Linear(no bias) → BN → ReLU for each
/// hidden layer, then Linear(no bias) → BN(affine = False) when `lastBatchNorm` (AxialNN's
/// `BatchNorm1d`, torch defaults: momentum 0.1, eps 1e-5). Keys as the torch nn.Sequential
/// (`0.weight`, `1.weight`, `1.running_mean`, `1.num_batches_tracked`, …, `6.weight`, `7.running_var`).
public func mocoMLP(layers: Int, input: Int, hidden: Int, output: Int, lastBatchNorm: Bool,
                    generator g: inout RandomGenerator) -> Sequential {
    var mods: [any UnaryLayer] = []
    for l in 0..<layers {
        let d1 = l == 0 ? input : hidden, d2 = l == layers - 1 ? output : hidden
        mods.append(Linear(d1, d2, bias: false, generator: &g))
        if l < layers - 1 { mods.append(BatchNorm1d(d2)); mods.append(ActivationLayer(.relu)) }
        else if lastBatchNorm { mods.append(BatchNorm1d(d2, affine: false)) }
    }
    return Sequential(mods)
}

/// An encoder (registry `ImageEncoder`, built without classifier) with MoCo's projector as its head: keys `<encoder keys>`, `head.<i>.*` (the torch
/// `base_encoder` / `momentum_encoder` after `encoder.head = _build_mlp(3, …)`).
public final class MoCoBranch: Module {
    public let encoder: any ImageEncoder
    public let head: Sequential
    init(encoder: any ImageEncoder, head: Sequential) { self.encoder = encoder; self.head = head; super.init() }
    override public var propertyKeys: [String: String] { ["encoder": ""] }
    public func callAsFunction(_ x: Tensor) -> Tensor { head(encoder.encode(x)) }
}

/// MoCo v3 (Chen, Xie, He 2021) with CLEAR's LeCL loss.
///
///     q₁ = predictor(projector(f(x₁))), q₂ likewise           (base encoder f, trainable)
///     momentum ← m·momentum + (1 − m)·base   (parameters of encoder + projector; not buffers)
///     k₁ = projector′(f′(x₁)), k₂ likewise                     (momentum copy, no grad)
///     loss = ctr(q₁, k₂) + ctr(q₂, k₁),  ctr = LeCL(q·kᵀ/T, lesion, w)·2T
/// in the order of `builder.py` (the momentum update happens inside the forward, before the keys
/// and before the optimizer step). BatchNorm layers use each view's own batch statistics.
/// Keys: `base_encoder.*` (encoder + `head.*` projector), `momentum_encoder.*`, `predictor.*`.
public final class MoCo: Module {
    public let baseEncoder: MoCoBranch
    public let momentumEncoder: MoCoBranch
    public let predictor: Sequential
    public let config: MoCoConfig

    /// `makeEncoder` is called twice (base and momentum copy); the momentum copy receives the base
    /// weights and is frozen. Projector/predictor Linear layers use torch's default init from `generator`.
    public init(config: MoCoConfig = MoCoConfig(), generator g: inout RandomGenerator,
                makeEncoder: () -> any ImageEncoder) {
        self.config = config
        let base = makeEncoder(), mom = makeEncoder()
        let fd = base.featureDimension
        baseEncoder = MoCoBranch(encoder: base, head: mocoMLP(layers: 3, input: fd, hidden: config.mlpDim, output: config.dim,
                                                             lastBatchNorm: true, generator: &g))
        momentumEncoder = MoCoBranch(encoder: mom, head: mocoMLP(layers: 3, input: fd, hidden: config.mlpDim, output: config.dim,
                                                                 lastBatchNorm: true, generator: &g))
        predictor = mocoMLP(layers: 2, input: config.dim, hidden: config.mlpDim, output: config.dim,
                            lastBatchNorm: config.predictorLastBatchNorm, generator: &g)
        super.init()
        syncMomentumEncoder()
        momentumEncoder.freeze()
    }

    /// The momentum branch ← the base branch (parameters and buffers), as at MoCo's construction.
    public func syncMomentumEncoder() {
        let src = Dictionary(uniqueKeysWithValues: baseEncoder.stateDict().map { ($0.key, $0.value) })
        for (k, p) in momentumEncoder.namedParameters() { p.assign(src[k]!) }
        for (k, b) in momentumEncoder.namedBuffers() { b.value = src[k]!.copy() }
    }

    /// The parameters the optimizer trains: base encoder + projector + predictor.
    public var optimizedParameters: [Parameter] { baseEncoder.trainableParameters() + predictor.trainableParameters() }

    /// momentum ← m·momentum + (1 − m)·base over the parameters of encoder + projector.
    public func updateMomentumEncoder(momentum m: Float) {
        momentumUpdate(target: momentumEncoder, source: baseEncoder, momentum: m)
    }

    /// The MoCo v3 forward: queries of both views, momentum update with `m`, keys, symmetric
    /// LeCL loss (lesion mask over the batch; `config.lesionWeight ≤ 0` = plain MoCo v3).
    ///
    /// Data-parallel (`collective` with more than one rank; x1, x2 = this rank's rows of the global
    /// batch, `lesion` = this rank's flags): BatchNorm statistics are synchronised over the global
    /// batch, the keys (and lesion flags) are all-gathered so negatives span the global batch, and
    /// each rank's loss is over its own queries against all keys with positives at column
    /// rank·n + i (MoCo v3 `concat_all_gather`, labels offset by rank·batch). The mean of the ranks'
    /// losses — and, after averaging the gradients, its gradient — equals the one-process loss of
    /// the global batch. Gradient flows only through the local queries (the keys have none).
    public func loss(_ x1: Tensor, _ x2: Tensor, lesion: [Bool] = [], momentum m: Float,
                     collective: (any Collective)? = nil) -> Tensor {
        precondition(x1.shape == x2.shape, "MoCo.loss: views \(x1.shape) and \(x2.shape) differ")
        let comm = collective.flatMap { $0.worldSize > 1 ? $0 : nil }
        return withSynchronizedBatchNorm(comm) {
            let q1 = predictor(baseEncoder(x1))
            let q2 = predictor(baseEncoder(x2))
            var (k1, k2) = withNoGrad { () -> (Tensor, Tensor) in
                updateMomentumEncoder(momentum: m)
                return (momentumEncoder(x1), momentumEncoder(x2))
            }
            var mask = lesion, offset = 0
            if let comm {
                k1 = comm.allGatherRows(k1); k2 = comm.allGatherRows(k2)
                if !lesion.isEmpty {
                    precondition(lesion.count == x1.shape[0], "MoCo.loss: \(lesion.count) lesion flags for \(x1.shape[0]) rows")
                    mask = comm.allGather(lesion.map { $0 ? 1 : 0 }).map { $0 > 0.5 }
                }
                offset = comm.rank * x1.shape[0]
            }
            let T = config.temperature, w = config.lesionWeight
            return mocoContrastiveLoss(query: q1, key: k2, temperature: T, lesion: mask, weight: w, positiveOffset: offset)
                 + mocoContrastiveLoss(query: q2, key: k1, temperature: T, lesion: mask, weight: w, positiveOffset: offset)
        }
    }

    /// One training step: `loss`, zero grads, backward, optional global-norm clipping of the
    /// optimized parameters, optimizer step (the caller sets the step's lr). Returns the loss.
    ///
    /// With `dataParallel` (more than one rank): the data-parallel loss above, the backward with
    /// bucketed gradient all-reduce (average) overlapped with it, clipping on the averaged
    /// gradients; the returned loss is the mean over ranks (= the global batch's loss).
    @discardableResult
    public func trainStep(_ x1: Tensor, _ x2: Tensor, lesion: [Bool] = [], momentum m: Float,
                          optimizer: any Optimizer, clipGradientNorm: Float? = nil,
                          dataParallel: DataParallel? = nil) -> Float {
        let l = loss(x1, x2, lesion: lesion, momentum: m, collective: dataParallel?.collective)
        optimizer.zeroGrad()
        var value = l.item()
        if let dp = dataParallel, dp.collective.worldSize > 1 {
            dp.backward(l, parameters: optimizedParameters)
            value = Float(dp.collective.sum(Double(value)) / Double(dp.collective.worldSize))
        } else {
            l.backward()
        }
        if let c = clipGradientNorm, c > 0 { clipGradNorm(optimizedParameters.map(\.value), maxNorm: c) }
        optimizer.step()
        return value
    }

    /// The trained base encoder's own state (no projector), under the encoder's keys.
    public func encoderStateDict() -> [String: Tensor] { baseEncoder.encoder.stateDict() }
}
