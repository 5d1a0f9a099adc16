import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// PyTorch goldens from Tools/goldens/make_heads_goldens.py.
struct HeadGoldens {
    let tensors: [String: Tensor]
    let metadata: [String: String]
    static let shared: HeadGoldens = {
        let url = Bundle.module.url(forResource: "heads", withExtension: "safetensors", subdirectory: "Fixtures")!
        let (t, m) = try! SafeTensors.read(url)
        return HeadGoldens(tensors: t, metadata: m)
    }()

    func head(_ name: String) throws -> MILHead {
        let config = try HeadConfig.fromJSON(metadata["\(name)/config"]!)
        let head = try Heads.make(config, seed: 99, classEmbeddings: tensors["class_embeddings"])
        var dict: [String: Tensor] = [:]
        let prefix = "\(name)/param/"
        for (k, v) in tensors where k.hasPrefix(prefix) { dict[String(k.dropFirst(prefix.count))] = v }
        try head.loadStateDict(dict, source: "heads.safetensors:\(name)")
        return head
    }
}


func goldenLoss(_ name: String, _ head: MILHead, _ out: HeadOutput, _ g: HeadGoldens) -> Tensor {
    let y = g.tensors["targets_multilabel"]!
    switch name {
    case "abmil", "pma": return HeadLosses.bceWithLogits(out.logits, targets: y, posWeight: g.tensors["pos_weight"]!.scalars)
    case "abmil-gated":
        return HeadLosses.crossEntropy(out.logits, classIndex: g.tensors["targets_multiclass"]!.scalars.map { Int($0) },
                                       weight: g.tensors["class_weight"]!.scalars)
    default: return HeadLosses.pspg(out, targets: y, pairWeight: 0.5)
    }
}

@Suite struct HeadsTests {
    static let names = ["abmil", "abmil-gated", "pma", "pspg"]

    @Test(arguments: names) func forwardMatchesPyTorch(name: String) throws {
        let g = HeadGoldens.shared
        let head = try g.head(name)
        let out = head.forward(g.tensors["bags"]!, mask: g.tensors["mask"]!)
        #expect(relativeError(out.logits, g.tensors["\(name)/logits"]!) < 1e-4, "\(name) logits")
        #expect(relativeError(out.attention, g.tensors["\(name)/attention"]!) < 1e-4, "\(name) attention")
        if let pair = out.pairLogits { #expect(relativeError(pair, g.tensors["\(name)/pair_logits"]!) < 1e-4) }
    }

    @Test(arguments: names) func gradientsMatchPyTorch(name: String) throws {
        let g = HeadGoldens.shared
        let head = try g.head(name)
        let out = head.forward(g.tensors["bags"]!, mask: g.tensors["mask"]!)
        let loss = goldenLoss(name, head, out, g)
        #expect(abs(loss.item() - g.tensors["\(name)/loss"]!.item()) <= 1e-4 * max(1, abs(loss.item())), "\(name) loss")
        loss.backward()
        for (p, parameter) in head.namedParameters() {
            let expected = g.tensors["\(name)/grad/\(p)"]!
            let got = parameter.grad ?? Tensor(zeros: expected.shape)
            #expect(relativeError(got, expected) < 1e-4, "\(name) grad \(p)")
        }
    }

    @Test(arguments: names) func optimizerStepsMatchPyTorch(name: String) throws {
        let g = HeadGoldens.shared
        let head = try g.head(name)
        let opt = try JSONSerialization.jsonObject(with: Data(g.metadata["\(name)/optimizer"]!.utf8)) as! [String: Any]
        let (lr, wd) = (opt["lr"] as! Double, opt["wd"] as! Double)
        let adam = (opt["opt"] as! String) == "adamw" ? AdamW(head.parameters(), lr: lr, weightDecay: wd)
                                                      : Adam(head.parameters(), lr: lr, weightDecay: wd)
        let expected = g.tensors["\(name)/step_losses"]!.scalars
        for k in 0..<expected.count {
            adam.zeroGrad()
            let loss = goldenLoss(name, head, head.forward(g.tensors["bags"]!, mask: g.tensors["mask"]!), g)
            #expect(abs(loss.item() - expected[k]) <= 2e-4 * max(1, abs(expected[k])), "\(name) step \(k): \(loss.item()) vs \(expected[k])")
            loss.backward()
            adam.step()
        }
    }

    /// Padded rows get exactly zero attention, and neither their presence nor their values change
    /// the output: each bag alone (unpadded) gives the same logits as inside the padded batch.
    @Test(arguments: names) func paddingIsMasked(name: String) throws {
        let g = HeadGoldens.shared
        let head = try g.head(name)
        let mask = g.tensors["mask"]!
        var bags = g.tensors["bags"]!.copy()
        let (b, n, d) = (bags.shape[0], bags.shape[1], bags.shape[2])
        let m = mask.scalars
        bags.withUnsafeMutableBufferPointer { p in for i in 0..<(b * n) where m[i] == 0 { for j in 0..<d { p[i * d + j] = 100 + Float(j) } } }
        let out = head.forward(bags, mask: mask)
        let att = out.attention.scalars
        for i in 0..<(b * n) where m[i] == 0 { #expect(att[i] == 0) }
        #expect(relativeError(out.logits, g.tensors["\(name)/logits"]!) < 1e-4)
        for s in 0..<b {
            let len = Int(m[(s * n)..<((s + 1) * n)].reduce(0, +))
            let single = bags.select(axis: 0, index: s).narrow(axis: 0, start: 0, length: len).reshaped([1, len, d])
            let alone = head.forward(single, mask: Tensor(ones: [1, len]))
            #expect(relativeError(alone.logits.reshaped([out.logits.shape[1]]), out.logits.select(axis: 0, index: s)) < 1e-5, "\(name) bag \(s)")
            let rowAtt = out.attention.select(axis: 0, index: s).narrow(axis: 0, start: 0, length: len)
            #expect(relativeError(alone.attention.reshaped([len]), rowAtt) < 1e-5)
        }
    }

    @Test func multilabelMarginMatchesTorch() {
        let g = HeadGoldens.shared
        let l = HeadLosses.multilabelMargin(g.tensors["margin_scores"]!, targets: g.tensors["margin_targets"]!)
        #expect(abs(l.item() - g.tensors["margin_loss"]!.item()) < 1e-6)
    }

    @Test func stateDictRoundTripAndErrors() throws {
        let g = HeadGoldens.shared
        let head = try g.head("pma")
        let sd = head.stateDict()
        let other = try Heads.make(head.config, seed: 5)
        try other.loadStateDict(sd)
        let a = head.forward(g.tensors["bags"]!, mask: g.tensors["mask"]!).logits
        let b = other.forward(g.tensors["bags"]!, mask: g.tensors["mask"]!).logits
        #expect(a.scalars == b.scalars)
        var missing = sd; missing["seeds"] = nil
        #expect(throws: HeadError.missingParameter(name: "seeds", source: "x")) { try other.loadStateDict(missing, source: "x") }
        var extra = sd; extra["bogus"] = Tensor([1])
        #expect(throws: HeadError.unexpectedParameter(name: "bogus", source: "x")) { try other.loadStateDict(extra, source: "x") }
        #expect(throws: HeadError.self) { try Heads.make({ var c = head.config; c.seeds = 0; return c }(), seed: 0) }
    }
}
