import AxialModels
import AxialNN
import AxialTensor
import Foundation

/// PsPG training-step workload (peer: Tools/bench/peers_pspg.py, the committed torch reference of the
/// generator / fusion / losses in Tools/goldens/make_pspg_goldens.py at the same sizes).
extension Bench {
    /// `pspg-train-b64`: one PsPG training step on RN50 dense-token input — batch 64 × 50 tokens × 1024
    /// (random stand-ins for `CLIPModifiedResNet.encodeDense`; the frozen image tower is not part of the
    /// step), 4 classes, GRU decoders hidden 512 × 16 steps × 8 heads, dropout 0.2, token width 512; the
    /// frozen text tower width 512, 8 heads, 2 blocks (RN50 CLIP has 12: cut to fit 2 cores), vocab 64,
    /// prompts [SOS] + 16 + [EOS] (Axial trims after EOS: 18 positions); forward + LossRanking
    /// (0.1·ASL + 0.07·margin) + backward + SGD Nesterov (lr 0.002, momentum 0.9, wd 1e-4, reference groups).
    static let pspgTrainB64 = BenchWorkload(name: "pspg-train-b64",
                                            summary: "PsPG step (GRU 512, 16 steps) on 64 × 50 × 1024 dense tokens, 4 classes") { _ in
        let b = 64, n = 50, din = 1024, c = 4, w = 512
        var g = RandomGenerator(seed: 0)
        DefaultGenerator.seed(0)
        let text = CLIPTextTransformer(CLIPTextConfig(contextLength: 77, vocabSize: 64, width: w, heads: 8, layers: 2),
                                       outputDimensions: din, activation: .quickGelu, generator: &g)
        text.eval()
        text.freeze()
        let names: [[Int]] = [[11], [12, 13], [14], [15, 16]]
        let classes = PsPGClassSet.encode(names: names.indices.map { "class \($0)" }, ids: names.map { [62] + $0 + [63] }, text: text, periodToken: 5)
        var config = PsPGModelConfig(generator: PsPGGeneratorConfig(decoder: .gru, inputDimension: din, tokenWidth: w, hidden: 512,
                                                                    steps: 16, heads: 8, dropout: 0.2))
        config.sotToken = 62; config.eotToken = 63
        let model = try PsPGModel(config, text: text, classes: classes, generator: &g)
        model.train()
        let sgd = SGD(model.parameterGroups(lr: 0.002, weightDecay: 1e-4), momentum: 0.9, weightDecay: 1e-4, nesterov: true)
        let tokens = Tensor.normal([b, n, din], generator: &g)
        let targets = Tensor(shape: [b, c], scalars: (0..<(b * c)).map { _ in g.uniform() < 0.4 ? 1 : 0 })
        let box = PsPGBenchBox(model: model, sgd: sgd)
        return ({
            box.sgd.zeroGrad()
            let out = box.model.forward(tokens: tokens)
            let loss = box.model.loss(out, targets: targets)
            loss.backward()
            box.sgd.step()
            precondition(loss.item().isFinite, "pspg-train-b64: loss \(loss.item())")
        }, "batch \(b), \(n) tokens × \(din), \(c) classes, GRU 512 × 16 steps, text tower 2 × 512, \(model.parameterCount(trainableOnly: true)) trainable parameters")
    }
}

/// The workload's model and optimizer, used by one thread at a time.
final class PsPGBenchBox: @unchecked Sendable {
    let model: PsPGModel
    let sgd: SGD
    init(model: PsPGModel, sgd: SGD) { self.model = model; self.sgd = sgd }
}
