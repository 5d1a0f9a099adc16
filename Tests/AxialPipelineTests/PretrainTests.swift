import AxialModels
import AxialNN
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

private func tempFolder(_ name: String) -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("axial-pretrain-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

/// Tiny settings: vit_test (32 px, patch 8, dim 32), small projector, batch 4.
private func options(_ cohort: URL, out: URL, steps: Int, lesions: Bool = true) -> Pretrain.Options {
    var o = Pretrain.Options(input: cohort.path, lesions: lesions ? cohort.appendingPathComponent("lesions.csv").path : nil,
                             arch: "vit_test", steps: steps, batch: 4, out: out.path)
    o.size = 32; o.dim = 16; o.mlpDim = 32; o.checkpointEvery = 2; o.lr = 0.05; o.warmupSteps = 1
    o.temperature = 0.2; o.lesionWeight = 1.0; o.seed = 3; o.workers = 2
    return o
}

private func lossColumn(_ out: URL) throws -> [String] {
    try CSVTable.read(out.appendingPathComponent("loss.csv")).column("loss")
}

@Suite(.serialized) struct PretrainTests {
    static let cohort: URL = {
        let dir = tempFolder("cohort")
        _ = try! PretrainCohort.write(to: dir, patients: 3, slicesPerPatient: 4, size: 48, seed: 5)
        return dir
    }()

    @Test func interruptedAndResumedRunMatchesUninterrupted() throws {
        let a = tempFolder("a"), b = tempFolder("b")
        let full = try Pretrain.run(options(Self.cohort, out: a, steps: 5), progressStyle: .quiet)
        #expect(full.steps == 5 && full.lesionSlices > 0)
        var first = options(Self.cohort, out: b, steps: 5)
        first.stopAfter = 3               // checkpoint at step 2; step 3's record is redone on resume
        let partial = try Pretrain.run(first, progressStyle: .quiet)
        #expect(partial.steps == 3)
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent("encoder.safetensors").path))
        var second = options(Self.cohort, out: b, steps: 5)
        second.resume = true
        let resumed = try Pretrain.run(second, progressStyle: .quiet)
        #expect(resumed.resumedFrom == 2)
        let la = try lossColumn(a), lb = try lossColumn(b)
        #expect(la.count == 5)
        #expect(la == lb, "uninterrupted \(la) vs resumed \(lb)")
        let table = try CSVTable.read(a.appendingPathComponent("loss.csv"))
        #expect(table.header == ["step", "loss", "lr", "momentum", "images_per_s"])
        #expect(try table.column("step") == ["0", "1", "2", "3", "4"])
        let m = try table.column("momentum").map { Float($0)! }
        #expect(m[0] == 0.99 && m[4] > m[1], "cosine momentum ramp \(m)")
        let svg = try String(contentsOf: a.appendingPathComponent("loss.svg"), encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("polyline"))
        // Same final weights bit for bit.
        let ea = try SafeTensors.read(a.appendingPathComponent("encoder.safetensors")).tensors
        let eb = try SafeTensors.read(b.appendingPathComponent("encoder.safetensors")).tensors
        #expect(ea.keys.sorted() == eb.keys.sorted())
        for (k, v) in ea { #expect(v.scalars == eb[k]!.scalars, "\(k) differs after resume") }
    }

    @Test func exportedEncoderLoadsInRegistryAndLearns() throws {
        let out = tempFolder("export")
        _ = try Pretrain.run(options(Self.cohort, out: out, steps: 3), progressStyle: .quiet)
        let url = out.appendingPathComponent("encoder.safetensors")
        let encoder = try EncoderRegistry.load("vit_test", weights: url)
        let fresh = try EncoderRegistry.load("vit_test", weights: nil, seed: 3)
        // The checkpoint's base encoder equals the exported one, and differs from its initialisation.
        let moco = try Pretrain.makeModel(options(Self.cohort, out: out, steps: 3))
        try Checkpoint.load(from: out.appendingPathComponent("checkpoint.safetensors"), model: moco)
        let exported = try SafeTensors.read(url).tensors
        for (k, v) in moco.encoderStateDict() { #expect(exported[k]?.scalars == v.scalars, "\(k)") }
        var g = RandomGenerator(seed: 1)
        let x = Tensor.normal([2, 3, 32, 32], generator: &g)
        let f1 = withNoGrad { encoder.encode(x) }, f0 = withNoGrad { fresh.encode(x) }
        let f2 = withNoGrad { moco.baseEncoder.encoder.encode(x) }
        #expect(f1.scalars == f2.scalars)
        #expect(f1.scalars != f0.scalars, "pretraining changed nothing")
    }

    @Test func plainMoCoWithoutLesions() throws {
        let out = tempFolder("plain")
        var o = options(Self.cohort, out: out, steps: 2, lesions: false)
        o.lesionWeight = 0
        let r = try Pretrain.run(o, progressStyle: .quiet)
        #expect(r.lesionSlices == 0 && r.finalLoss!.isFinite)
    }

    @Test func clearErrors() throws {
        // Empty manifest.
        let empty = tempFolder("empty")
        try "patient_id,study_uid,series_uid,slice_index,z_mm,window,path\n".write(to: empty.appendingPathComponent("manifest.csv"), atomically: true, encoding: .utf8)
        #expect { try Pretrain.run(options(empty, out: tempFolder("o1"), steps: 1, lesions: false), progressStyle: .quiet) }
            throws: { "\($0)".contains("lists no images") }
        // No manifest.
        #expect { try Pretrain.run(options(tempFolder("none"), out: tempFolder("o2"), steps: 1, lesions: false), progressStyle: .quiet) }
            throws: { "\($0)".contains("manifest.csv") && "\($0)".contains("axial ingest") }
        // Missing PNG.
        let missing = tempFolder("missing")
        try "patient_id,study_uid,series_uid,slice_index,z_mm,window,path\nP1,S,S1,0,0,abdomen,P1/S1/0000_abdomen.png\n"
            .write(to: missing.appendingPathComponent("manifest.csv"), atomically: true, encoding: .utf8)
        #expect { try Pretrain.run(options(missing, out: tempFolder("o3"), steps: 1, lesions: false), progressStyle: .quiet) }
            throws: { "\($0)".contains("0000_abdomen.png") && "\($0)".contains("missing") }
        // Bad lesion CSVs: wrong columns, a malformed box, a format mismatch.
        let bad = tempFolder("bad")
        let badColumns = bad.appendingPathComponent("bad_columns.csv"), badBox = bad.appendingPathComponent("bad_box.csv")
        try "patient,slice\nP001,0\n".write(to: badColumns, atomically: true, encoding: .utf8)
        try "patient_id,slice_index,x1,y1,x2,y2\nP001,0,10,10,5,20\n".write(to: badBox, atomically: true, encoding: .utf8)
        for (file, format, needle) in [(badColumns, nil, "slice_index"), (badBox, nil, "x1 < x2"),
                                       (Self.cohort.appendingPathComponent("lesions.csv"), "deeplesion", "File_name")] {
            var o = options(Self.cohort, out: tempFolder("o4"), steps: 1)
            o.lesions = file.path; o.lesionFormat = format
            #expect { try Pretrain.run(o, progressStyle: .quiet) } throws: { "\($0)".contains(needle) && "\($0)".contains(file.lastPathComponent) }
        }
        // Unknown encoder; batch too small.
        var o = options(Self.cohort, out: tempFolder("o5"), steps: 1)
        o.arch = "nope"
        #expect { try Pretrain.run(o, progressStyle: .quiet) } throws: { "\($0)".contains("nope") }
        o.arch = "vit_test"; o.batch = 1
        #expect { try Pretrain.run(o, progressStyle: .quiet) } throws: { "\($0)".contains("--batch") }
    }
}
