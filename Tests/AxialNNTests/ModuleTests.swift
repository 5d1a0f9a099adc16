import Foundation
import AxialTestSupport
import Testing
@testable import AxialNN
import AxialTensor

final class Block: Module {
    let norm1 = LayerNorm(4)
    let fc1: Linear
    let headList: [Linear]
    let scaleParam = Parameter(Tensor(ones: [2]))
    let optional: Linear? = nil
    init(generator g: inout RandomGenerator) {
        fc1 = Linear(4, 3, generator: &g)
        headList = [Linear(3, 2, generator: &g), Linear(3, 1, bias: false, generator: &g)]
        super.init()
    }
}

final class Net: Module {
    let blocks: [Block]
    let seq: Sequential
    override init() {
        var g = RandomGenerator(seed: 1)
        blocks = [Block(generator: &g), Block(generator: &g)]
        seq = Sequential(Linear(2, 2, generator: &g), ActivationLayer(.relu), Linear(2, 1, generator: &g))
        super.init()
    }
}

@Suite struct ModuleTests {
    @Test func parameterNamesMatchTorchStyle() {
        let net = Net()
        let names = net.namedParameters().map(\.0)
        #expect(names.prefix(8) == ["blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.fc1.weight", "blocks.0.fc1.bias",
                                    "blocks.0.head_list.0.weight", "blocks.0.head_list.0.bias", "blocks.0.head_list.1.weight",
                                    "blocks.0.scale_param"])
        #expect(names.suffix(4) == ["seq.0.weight", "seq.0.bias", "seq.2.weight", "seq.2.bias"])
        #expect(net.parameterCount() == 2 * (8 + 15 + 8 + 3 + 2) + 6 + 3)
        #expect(Module.snakeCase("inProjWeight") == "in_proj_weight")
        #expect(Module.snakeCase("fc1") == "fc1")
    }

    @Test func stateDictRoundTripAndErrors() throws {
        let a = Net(), b = Net()
        DefaultGenerator.seed(5)
        for p in b.parameters() { p.assign(Tensor.normal(p.shape, generator: &DefaultGeneratorBox.g)) }
        try a.loadStateDict(b.stateDict())
        for ((ka, pa), (kb, pb)) in zip(a.namedParameters(), b.namedParameters()) {
            #expect(ka == kb); #expect(pa.value.scalars == pb.value.scalars)
        }
        var bad = b.stateDict()
        bad["blocks.0.fc1.weight"] = Tensor(zeros: [3, 5])
        bad.removeValue(forKey: "seq.0.bias")
        bad["extra.key"] = Tensor(zeros: [1])
        let before = a.stateDict()["blocks.1.fc1.weight"]!.scalars
        do {
            try a.loadStateDict(bad)
            Issue.record("expected an error")
        } catch let e as ModuleError {
            let s = e.description
            #expect(s.contains("missing keys (1): seq.0.bias"))
            #expect(s.contains("unexpected keys (1): extra.key"))
            #expect(s.contains("blocks.0.fc1.weight expected [3, 4] got [3, 5]"))
        }
        #expect(a.stateDict()["blocks.1.fc1.weight"]!.scalars == before)   // nothing modified
        // Non-strict: missing/unexpected ignored, shapes still checked.
        bad["blocks.0.fc1.weight"] = Tensor(zeros: [3, 4])
        let loaded = try a.loadStateDict(bad, strict: false)
        #expect(!loaded.contains("seq.0.bias"))
        #expect(a.stateDict()["blocks.0.fc1.weight"]!.scalars == [Float](repeating: 0, count: 12))
    }

    @Test func trainEvalAndFreeze() {
        let net = Net()
        net.eval()
        #expect(net.namedModules().allSatisfy { !$0.1.isTraining })
        net.train()
        #expect(net.blocks[1].fc1.isTraining)
        // Freezing the first Linear still passes gradients through to the input and to the next layer.
        var g = RandomGenerator(seed: 3)
        let l1 = Linear(3, 3, generator: &g), l2 = Linear(3, 2, generator: &g)
        l1.freeze()
        let x = Tensor.normal([4, 3], generator: &g).requiringGrad()
        l2(l1(x)).sum().backward()
        #expect(l1.weight.grad == nil)
        #expect(l2.weight.grad != nil)
        #expect(x.grad != nil)
        #expect(l1.parameterCount(trainableOnly: true) == 0)
        l1.unfreeze()
        #expect(l1.trainableParameters().count == 2)
    }

    @Test func sgdAndAdamHandComputed() {
        let p = Parameter(Tensor([1, -2]))
        let opt = SGD([p], lr: 0.1, momentum: 0.9, weightDecay: 0.5, nesterov: true)
        p.grad = Tensor([0.5, 1])
        opt.step()
        // d = g + wd·p = [1, 0]; b = d; d = d + 0.9·b = [1.9, 0]; p = p − 0.1·d
        #expect(Swift.abs(p.value.scalars[0] - 0.81) < 1e-6 && p.value.scalars[1] == -2)
        let q = Parameter(Tensor([1]))
        let adam = Adam([q], lr: 0.1)
        q.grad = Tensor([3])
        adam.step()
        #expect(Swift.abs(q.value.item() - 0.9) < 1e-6)   // first Adam step moves by lr·sign(g)
    }
}

enum DefaultGeneratorBox { nonisolated(unsafe) static var g = RandomGenerator(seed: 11) }
