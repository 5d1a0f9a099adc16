import AxialImaging
import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// `mpirun -np N axial pretrain` on loopback (root-safe flags), tiny config: vit_test at 32 px,
/// projector 32 → 16, global batch 8, base lr 0.005, 10 steps. (With a larger lr, AdamW's early
/// ≈ lr·sign(g) steps and BatchNorm over few samples amplify float rounding between the two runs
/// past 1e-4 within 10 steps — the maths is checked step by step in DataParallelTests.)
enum MPIRun {
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
    static let mpirun: String? = which("mpirun")

    /// The `axial` executable built next to this test binary (or in the package's .build).
    static let axial: String? = {
        var candidates: [String] = []
        if let exe = ProcessInfo.processInfo.arguments.first {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            if dir.lastPathComponent == "MacOS" || dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
            candidates.append(dir.appendingPathComponent("axial").path)
            candidates.append(dir.deletingLastPathComponent().appendingPathComponent("axial").path)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates += ["release", "debug"].map { root.appendingPathComponent(".build/\($0)/axial").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var available: Bool { mpirun != nil && axial != nil }

    struct Outcome { var status: Int32; var stdout: String; var stderr: String }

    /// mpirun -np n axial pretrain <args> with `env` added; loopback TCP, root allowed, oversubscribed.
    static func pretrain(ranks n: Int, _ args: [String], env: [String: String] = [:]) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun!)
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", String(n),
                       "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo",
                       axial!, "pretrain"] + args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        // Read both pipes concurrently so neither fills up.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while reader.isExecuting || !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return Outcome(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    static func args(cohort: URL, out: URL, extra: [String] = []) -> [String] {
        ["--input", cohort.path, "--lesions", cohort.appendingPathComponent("lesions.csv").path, "--arch", "vit_test",
         "--steps", "10", "--batch", "8", "--out", out.path, "--size", "32", "--dim", "16", "--mlp-dim", "32",
         "--checkpoint-every", "5", "--lr", "0.005", "--warmup", "1", "--temperature", "0.2", "--seed", "3",
         "--workers", "1", "--threads", "1", "--quiet"] + extra
    }

    static func losses(_ out: URL) throws -> [Double] {
        try CSVTable.read(out.appendingPathComponent("loss.csv")).column("loss").map { Double($0)! }
    }
}

@Suite(.serialized) struct DistributedPretrainTests {
    static let cohort: URL = {
        let dir = temporaryFolder("mpi-cohort")
        _ = try! PretrainCohort.write(to: dir, patients: 3, slicesPerPatient: 4, size: 48, seed: 5)
        return dir
    }()

    /// 10 steps on 2 ranks at global batch 8 = 10 steps on 1 rank at batch 8 (losses within 1e-4);
    /// rank 0 alone writes, run.json has the world; a rank that dies at step 7 stops the job with
    /// a message, the step-5 checkpoint is intact, and `--resume` on 2 ranks repeats the
    /// uninterrupted losses exactly (and on 1 rank within 1e-4: the checkpoint does not depend on N).
    @Test(.enabled(if: MPIRun.available, "needs mpirun (apt-get install openmpi-bin libopenmpi-dev) and the built axial executable"))
    func twoRanksMatchOneRankAndSurviveARankFailure() throws {
        let root = temporaryFolder("mpi")
        defer { try? FileManager.default.removeItem(at: root) }
        let one = root.appendingPathComponent("np1"), two = root.appendingPathComponent("np2")
        let a = try MPIRun.pretrain(ranks: 1, MPIRun.args(cohort: Self.cohort, out: one))
        #expect(a.status == 0, "np 1: \(a.stderr)")
        let b = try MPIRun.pretrain(ranks: 2, MPIRun.args(cohort: Self.cohort, out: two))
        #expect(b.status == 0, "np 2: \(b.stderr)")
        let la = try MPIRun.losses(one), lb = try MPIRun.losses(two)
        #expect(la.count == 10 && lb.count == 10)
        for (i, (x, y)) in zip(la, lb).enumerated() {
            #expect(x.isFinite && y.isFinite && abs(x - y) <= 1e-4, "step \(i): 1 rank \(x), 2 ranks \(y)")
        }
        // Only rank 0 printed and wrote; the run's metadata records the world.
        #expect(b.stdout.components(separatedBy: "final loss").count - 1 == 1, "one summary: \(b.stdout)")
        let files = try FileManager.default.contentsOfDirectory(atPath: two.path).sorted()
        #expect(files == ["checkpoint.safetensors", "config.json", "encoder.safetensors", "loss.csv", "loss.svg", "run.json"], "\(files)")
        let info = try JSONDecoder().decode(Pretrain.RunInfo.self, from: Data(contentsOf: two.appendingPathComponent("run.json")))
        #expect(info.worldSize == 2 && info.globalBatch == 8 && info.perRankBatch == 4 && info.hosts.count == 2)
        let info1 = try JSONDecoder().decode(Pretrain.RunInfo.self, from: Data(contentsOf: one.appendingPathComponent("run.json")))
        #expect(info1.worldSize == 1 && info1.perRankBatch == 8)

        // Rank 1 dies at step 7.
        let failed = root.appendingPathComponent("failed")
        let c = try MPIRun.pretrain(ranks: 2, MPIRun.args(cohort: Self.cohort, out: failed),
                                    env: ["AXIAL_TEST_FAIL_RANK": "1", "AXIAL_TEST_FAIL_STEP": "7"])
        #expect(c.status != 0)
        #expect(c.stderr.contains("rank 1/2: simulated failure at step 7"), "\(c.stderr)")
        // Rank 0 says why it stops: stopped by the launcher, or the MPI error of its collective.
        #expect(c.stderr.contains("error: rank 0/2: "), "\(c.stderr)")
        let checkpoint = failed.appendingPathComponent("checkpoint.safetensors")
        let saved = try SafeTensors.read(checkpoint)
        #expect(saved.metadata["step"] == "5", "checkpoint metadata \(saved.metadata)")
        #expect(!FileManager.default.fileExists(atPath: failed.appendingPathComponent("encoder.safetensors").path))
        // A copy of the interrupted run, resumed on 1 rank below.
        let copy = root.appendingPathComponent("failed-np1")
        try FileManager.default.copyItem(at: failed, to: copy)

        let resumed = try MPIRun.pretrain(ranks: 2, MPIRun.args(cohort: Self.cohort, out: failed, extra: ["--resume"]))
        #expect(resumed.status == 0, "resume: \(resumed.stderr)")
        #expect(try MPIRun.losses(failed) == lb, "resumed on 2 ranks vs uninterrupted 2-rank run")
        let eb = try SafeTensors.read(two.appendingPathComponent("encoder.safetensors")).tensors
        let ec = try SafeTensors.read(failed.appendingPathComponent("encoder.safetensors")).tensors
        for (k, v) in eb { #expect(ec[k]?.scalars == v.scalars, "\(k) differs after resume") }

        let resumed1 = try MPIRun.pretrain(ranks: 1, MPIRun.args(cohort: Self.cohort, out: copy, extra: ["--resume"]))
        #expect(resumed1.status == 0, "resume on 1 rank: \(resumed1.stderr)")
        let l1 = try MPIRun.losses(copy)
        #expect(l1.count == 10 && Array(l1.prefix(5)) == Array(lb.prefix(5)))
        for (i, (x, y)) in zip(l1, la).enumerated() { #expect(abs(x - y) <= 1e-4, "step \(i): resumed on 1 rank \(x), 1-rank run \(y)") }
    }

    /// The batch split: rank r's rows of a global batch are the one-process batch's rows r·b ..< (r+1)·b.
    @Test func loaderRowsAreSlicesOfTheGlobalBatch() throws {
        let samples = try ViewSample.fromManifest(Self.cohort.appendingPathComponent("manifest.csv"),
                                                  lesions: try LesionTable.read(Self.cohort.appendingPathComponent("lesions.csv")))
        var c = AugmentConfig(); c.size = 32
        for step in [0, 3] {
            let all = ViewLoader.makeBatch(samples: samples, batchSize: 6, seed: 9, step: step, config: c)
            var parts: [ViewBatch] = []
            for r in 0..<3 { parts.append(ViewLoader.makeBatch(samples: samples, batchSize: 6, seed: 9, step: step, config: c, rows: (2 * r)..<(2 * r + 2))) }
            #expect(concat(parts.map(\.view1), axis: 0).scalars == all.view1.scalars)
            #expect(concat(parts.map(\.view2), axis: 0).scalars == all.view2.scalars)
            #expect(parts.flatMap(\.isLesion.scalars) == all.isLesion.scalars)
        }
    }
}
