import AxialEval
import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// `crossval --head pspg --tokens dense` on dense-token files, and `deploy --classes` (zero-shot names).
@Suite(.serialized) struct PsPGDenseZeroShotTests {
    static let binaryYAML = "name: synthetic_binary\nkind: binary\ncolumn: lesion\n"
    static let multiYAML = "name: syn_ml\nkind: multilabel\nclasses: [liver, lung, kidney]\n"

    /// Feature files whose rows carry K tokens of width d: `dense_tokens` = the synthetic row split
    /// into K tokens (the class signal spread over them), `feats` = token 0.
    static func writeDense(_ cohort: SyntheticCohort, k: Int, to folder: URL) throws -> URL {
        let features = folder.appendingPathComponent("features")
        let d = cohort.config.featureDimension / k
        for p in cohort.patients {
            var rec = cohort.storeRecord(p)
            rec.featDim = d
            rec.feats = (0..<p.rows).flatMap { r in p.features[(r * k * d)..<(r * k * d + d)] }
            rec.denseTokens = DenseTokens(tokensPerRow: k, dimension: d, values: p.features)
            try FeatureStore.write(rec, to: features.appendingPathComponent(FeatureStore.fileName(patientID: p.id)))
        }
        try cohort.clinicalTable.write(to: folder.appendingPathComponent("clinical.csv"))
        return features
    }

    static func scores(_ dir: URL) throws -> [String: [String: Double]] {
        let t = try CSVTable.read(dir.appendingPathComponent("patient_preds.csv"))
        var out: [String: [String: Double]] = [:]
        for row in t.rows {
            for (i, h) in t.header.enumerated() where h.hasPrefix("score_") { out[row[0], default: [:]][String(h.dropFirst(6))] = Double(row[i])! }
        }
        return out
    }

    @Test func crossvalAndDeployOnDenseTokens() throws {
        let dir = temporaryFolder("pspg-dense")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = SyntheticCohortConfig(task: try TaskSpec.parse(Self.binaryYAML))
        cfg.patients = 36; cfg.featureDimension = 32; cfg.slices = 6...8; cfg.windows = [StoredWindow(name: "abdomen", width: 400, level: 40)]
        cfg.informativeSlices = 2; cfg.signal = 5; cfg.prevalence = 0.5; cfg.seed = 21
        let cohort = SyntheticCohort(cfg)
        let features = try Self.writeDense(cohort, k: 4, to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try Self.binaryYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("cv")
        var o = CrossValOptions(features: features, table: dir.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .pspg, out: out)
        o.folds = 3; o.seed = 2; o.epochs = 25; o.learningRate = 3e-3; o.batchSize = 8; o.patience = 25; o.hidden = 16
        o.tokens = .dense; o.intervalResamples = 0
        o.log = { _ in }
        let r = try CrossVal.run(o)
        #expect(r.foldsTrained == [0, 1, 2])
        let model = try CrossVal.readModel(out.appendingPathComponent("fold-0/model.safetensors"))
        #expect(model.head.config.tokensPerInstance == 4 && model.head.config.inputDimension == 8)
        #expect(model.standardizer?.mean.count == 8)
        let preds = try Predictions.load(out)
        let auroc = Metrics.summarize(preds.pooled).auroc[0]!
        #expect(auroc > 0.8, "dense PsPG pooled out-of-fold AUROC \(auroc)")
        // Attention is per slice (not per token).
        let att = try CSVTable.read(out.appendingPathComponent("fold-0/slice_attention.csv"))
        let test0 = Set(try CSVTable.read(out.appendingPathComponent("fold-0/patient_preds.csv")).rows.map { $0[0] })
        #expect(att.rows.count == cohort.patients.filter { test0.contains($0.id) }.map { $0.rows }.reduce(0, +))

        // Deploy reads the dense tokens for a dense model: fold-0's model alone reproduces its test scores.
        var d = DeployOptions(models: [out.appendingPathComponent("fold-0/model.safetensors")], features: features, out: dir.appendingPathComponent("deploy"))
        d.intervalResamples = 0; d.log = { _ in }
        try Deploy.run(d)
        let deployed = try Self.scores(dir.appendingPathComponent("deploy")), fold0 = try Self.scores(out.appendingPathComponent("fold-0"))
        for (id, s) in fold0 { #expect(abs(deployed[id]!["lesion"]! - s["lesion"]!) < 1e-6, "\(id)") }

        // --tokens dense is for PsPG only; files without dense tokens are named.
        var bad = o; bad.head = .abmil; bad.out = dir.appendingPathComponent("cv-bad")
        #expect(throws: MILError.self) { try CrossVal.run(bad) }
        let plain = dir.appendingPathComponent("plain")
        let plainFeatures = try cohort.write(to: plain)
        var noTokens = o; noTokens.features = plainFeatures; noTokens.out = dir.appendingPathComponent("cv-plain")
        do { _ = try CrossVal.run(noTokens); Issue.record("files without dense_tokens were accepted") } catch {
            #expect("\(error)".contains("dense_tokens") && "\(error)".contains(".h5"), "\(error)")
        }
        // ... and deploy of the dense model on them.
        var d2 = d; d2.features = plainFeatures; d2.out = dir.appendingPathComponent("deploy-plain")
        #expect(throws: MILError.self) { try Deploy.run(d2) }
    }

    @Test func deployScoresNewClassNamesThroughTheTextTower() throws {
        let dir = temporaryFolder("pspg-zeroshot")
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = SyntheticCohortConfig(task: try TaskSpec.parse(Self.multiYAML))
        cfg.patients = 20; cfg.featureDimension = 12; cfg.slices = 5...6; cfg.windows = [StoredWindow(name: "abdomen", width: 400, level: 40)]
        cfg.informativeSlices = 2; cfg.seed = 3
        let cohort = SyntheticCohort(cfg)
        let features = try cohort.write(to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try Self.multiYAML.write(to: taskURL, atomically: true, encoding: .utf8)
        var g = RandomGenerator(seed: 8)
        let tower = dir.appendingPathComponent("clip_test.safetensors")
        try SafeTensors.write(CLIPModel(.test, generator: &g).stateDict(), metadata: [:], to: tower)

        let out = dir.appendingPathComponent("cv")
        var o = CrossValOptions(features: features, table: dir.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .pspg, out: out)
        o.folds = 2; o.seed = 1; o.epochs = 2; o.batchSize = 8; o.hidden = 16; o.intervalResamples = 0
        o.textEncoder = .clipTest; o.textWeights = tower
        o.log = { _ in }
        _ = try CrossVal.run(o)
        let model = try CrossVal.readModel(out.appendingPathComponent("fold-0/model.safetensors"))
        #expect(model.textTower?.encoder == "clip_test" && model.textTower?.template == ClassNameEncoder.defaultTemplate)

        func deploy(_ name: String, classes: String?, weights: URL? = nil, models: URL? = nil) throws -> [String: [String: Double]] {
            var d = DeployOptions(models: [models ?? out], features: features, out: dir.appendingPathComponent(name))
            d.intervalResamples = 0; d.log = { _ in }; d.textWeights = weights
            if let classes {
                let f = dir.appendingPathComponent(name + ".txt")
                try classes.write(to: f, atomically: true, encoding: .utf8)
                d.classes = f
            }
            try Deploy.run(d)
            return try Self.scores(dir.appendingPathComponent(name))
        }
        let trained = try deploy("trained", classes: nil)
        // The trained names (re-encoded by the tower) give exactly the trained scores, in any order.
        let same = try deploy("same", classes: "liver\nlung\n\nkidney\n")
        #expect(same == trained)
        let permuted = try deploy("permuted", classes: "kidney\nliver\nlung\n")
        for (id, s) in trained { for (c, v) in s { #expect(abs(permuted[id]![c]! - v) < 1e-6, "\(id) \(c)") } }
        // Unseen names: finite, valid probabilities that depend on the name.
        let unseen = try deploy("unseen", classes: "spleen\npancreas\nurinary bladder\nheart\n")
        #expect(unseen.count == cohort.patients.count)
        for (_, s) in unseen {
            #expect(Set(s.keys) == ["spleen", "pancreas", "urinary_bladder", "heart"])
            #expect(s.values.allSatisfy { $0.isFinite && $0 > 0 && $0 < 1 })
        }
        let spread = Set(unseen.values.map { String(format: "%.6f", $0["spleen"]!) }).count
        #expect(spread > 1, "spleen scores vary over patients")
        #expect(unseen.values.contains { abs($0["spleen"]! - $0["pancreas"]!) > 1e-6 }, "different names, different scores")
        let renamed = try deploy("renamed", classes: "stomach\npancreas\nurinary bladder\nheart\n")
        #expect(renamed.values.first!["stomach"] != nil && unseen.keys.contains { abs(renamed[$0]!["stomach"]! - unseen[$0]!["spleen"]!) > 1e-6 })

        // Clear errors: empty / repeated lists, another tower checkpoint, a model without a text tower.
        #expect(throws: ClassifyDataError.self) { try deploy("empty", classes: "\n  \n") }
        do { _ = try deploy("dup", classes: "liver\nlung\nliver\n"); Issue.record("duplicate accepted") } catch {
            #expect("\(error)".contains("liver") && "\(error)".contains("dup.txt"), "\(error)")
        }
        var g2 = RandomGenerator(seed: 9)
        let other = dir.appendingPathComponent("other.safetensors")
        try SafeTensors.write(CLIPModel(.test, generator: &g2).stateDict(), metadata: [:], to: other)
        do { _ = try deploy("other", classes: "liver\n", weights: other); Issue.record("other tower accepted") } catch {
            #expect("\(error)".contains("sha256"), "\(error)")
        }
        var plain = o
        plain.textEncoder = nil; plain.textWeights = nil; plain.out = dir.appendingPathComponent("cv-plain")
        _ = try CrossVal.run(plain)
        do { _ = try deploy("notower", classes: "liver\n", models: plain.out); Issue.record("model without a text tower accepted") } catch {
            #expect("\(error)".contains("no text tower"), "\(error)")
        }
        // ... which takes the names' embeddings from a file instead (--class-embeddings), of the head's width.
        let head = try CrossVal.readModel(plain.out.appendingPathComponent("fold-0/model.safetensors")).head as! PsPGHead
        let e = head.config.embeddingDimension
        var g3 = RandomGenerator(seed: 4)
        let embURL = dir.appendingPathComponent("emb.safetensors"), badURL = dir.appendingPathComponent("emb-bad.safetensors")
        try SafeTensors.write(["heart": Tensor.normal([e], generator: &g3), "spleen": Tensor.normal([e], generator: &g3)], metadata: [:], to: embURL)
        try SafeTensors.write(["heart": Tensor.normal([e + 1], generator: &g3), "spleen": Tensor.normal([e + 1], generator: &g3)], metadata: [:], to: badURL)
        let f = dir.appendingPathComponent("emb-names.txt")
        try "heart\nspleen\n".write(to: f, atomically: true, encoding: .utf8)
        var d = DeployOptions(models: [plain.out], features: features, out: dir.appendingPathComponent("emb"))
        d.intervalResamples = 0; d.log = { _ in }; d.classes = f; d.classEmbeddings = embURL
        try Deploy.run(d)
        let byFile = try Self.scores(dir.appendingPathComponent("emb"))
        #expect(byFile.count == cohort.patients.count && byFile.values.allSatisfy { $0.values.allSatisfy(\.isFinite) && Set($0.keys) == ["heart", "spleen"] })
        d.classEmbeddings = badURL; d.out = dir.appendingPathComponent("emb-bad")
        do { try Deploy.run(d); Issue.record("mis-sized embeddings accepted") } catch { #expect("\(error)".contains("emb-bad"), "\(error)") }
    }
}
