import AxialEval
import AxialImaging
import AxialModels
import AxialStore
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialPipeline

/// Issue 17: the crashes (pretrain --size, absurd flags, huge allocations), the silent results
/// (colliding patient IDs, stale error lists, NaN voxels) and the unclear messages, each fixed and
/// checked here.
@Suite(.serialized) struct RobustnessTests {
    static func pretrainOptions(_ cohort: URL, out: URL, size: Int) -> Pretrain.Options {
        var o = Pretrain.Options(input: cohort.path, lesions: nil, arch: "vit_test", steps: 2, batch: 4, out: out.path)
        o.size = size; o.dim = 16; o.mlpDim = 32; o.checkpointEvery = 2; o.lr = 0.05; o.warmupSteps = 1
        o.temperature = 0.2; o.seed = 3; o.workers = 1
        return o
    }

    /// `pretrain --size 48` on vit_test (built for 32): the encoder is built at 48 (grid 6×6, 37
    /// tokens), trains, and its encoder.safetensors loads into extract's 32-pixel model with the
    /// position embedding resampled (timm bicubic) — the heap corruption of the issue is gone.
    @Test func pretrainAtAnotherViewSize() throws {
        let cohort = scratch("rb-cohort"), out = scratch("rb-pre")
        _ = try PretrainCohort.write(to: cohort, patients: 2, slicesPerPatient: 4, size: 48, seed: 5)
        let r = try Pretrain.run(Self.pretrainOptions(cohort, out: out, size: 48), progressStyle: .quiet)
        #expect(r.steps == 2 && (r.finalLoss ?? .nan).isFinite)
        let state = try SafeTensors.read(out.appendingPathComponent("encoder.safetensors")).tensors
        #expect(state["pos_embed"]?.shape == [1, 37, 32])
        let model = try EncoderRegistry.load("vit_test", weights: out.appendingPathComponent("encoder.safetensors")) as! VisionTransformer
        expectClose(model.posEmbed.value, ViTPositionEmbedding.resample(state["pos_embed"]!, toGrid: (4, 4)), atol: 0, rtol: 0, "resampled pos_embed")
        // The 48-pixel model: tape-free path = differentiable path.
        let big = try EncoderRegistry.load("vit_test", weights: out.appendingPathComponent("encoder.safetensors"), inputSize: 48)
        var g = RandomGenerator(seed: 9)
        let x = Tensor.normal([2, 3, 48, 48], generator: &g)
        let fused = withNoGrad { big.encode(x) }
        let composed = big.encode(x.requiringGrad())
        expectClose(fused, composed.detached(), atol: 1e-4, rtol: 1e-4, "fused vs composed at 48 px")
        // Sizes the architecture cannot take are refused naming the flag, before any kernel runs.
        for bad in [36, 8, 100000] {
            #expect { try Pretrain.validate(Self.pretrainOptions(cohort, out: out, size: bad)) } throws: { "\($0)".contains("--size") }
        }
    }

    @Test func numericFlagsAreRangeChecked() throws {
        let base = Self.pretrainOptions(URL(fileURLWithPath: "/nonexistent"), out: URL(fileURLWithPath: "/tmp/x"), size: 32)
        let cases: [(String, (inout Pretrain.Options) -> Void)] = [
            ("--lr", { $0.lr = .nan }), ("--lr", { $0.lr = -1 }), ("--lr", { $0.lr = .infinity }),
            ("--temperature", { $0.temperature = .nan }), ("--momentum", { $0.momentum = 1.5 }),
            ("--weight-decay", { $0.weightDecay = .nan }), ("--clip-grad", { $0.clipGradient = 0 }),
            ("--workers", { $0.workers = 0 }), ("--weight-w", { $0.lesionWeight = .infinity }),
            ("--batch", { $0.batch = 1 }), ("--steps", { $0.steps = 0 }),
            ("--batch", { $0.batch = 1 << 20; $0.size = 1024 }),          // ≈ 200 TB of views: the memory bound
        ]
        for (flag, change) in cases {
            var o = base
            change(&o)
            #expect { try Pretrain.validate(o) } throws: { "\($0)".contains(flag) }
        }
        try Pretrain.validate(base)

        let cv = CrossValOptions(features: URL(fileURLWithPath: "/f"), table: URL(fileURLWithPath: "/t"), task: "t", head: .abmil, out: URL(fileURLWithPath: "/o"))
        let cvCases: [(String, (inout CrossValOptions) -> Void)] = [
            ("--folds", { $0.folds = 1 }), ("--folds", { $0.folds = 100000 }), ("--validation-fraction", { $0.validationFraction = 1.5 }),
            ("--validation-fraction", { $0.validationFraction = .nan }), ("--lr", { $0.learningRate = .nan }),
            ("--weight-decay", { $0.weightDecay = -1 }), ("--epochs", { $0.epochs = 0 }), ("--batch", { $0.batchSize = 0 }),
            ("--patience", { $0.patience = 0 }), ("--max-bag", { $0.maxBag = 0 }), ("--pair-loss", { $0.pairLossWeight = .nan }),
        ]
        for (flag, change) in cvCases {
            var o = cv
            change(&o)
            #expect { try o.validate() } throws: { "\($0)".contains(flag) }
        }
        try cv.validate()

        // --folds 100 on 12 patients: refused by the splitter naming the flag and the count (was a precondition).
        let task = try TaskSpec.parse("name: t\nkind: binary\ncolumn: y\nclass: y\npositive_values: ['1']\nnegative_values: ['0']\n")
        let cohort = CohortLabels(task: task, patientIDs: (0..<12).map { "p\($0)" }, labels: (0..<12).map { [$0 % 2] })
        let splits = scratch("rb-splits").appendingPathComponent("splits.json")
        #expect { _ = try Splitter.loadOrCreate(at: splits, cohort: cohort, folds: 100, seed: 0) } throws: { "\($0)".contains("--folds 100 must be in 2…12") }
        #expect { _ = try Splitter.loadOrCreate(at: splits, cohort: cohort, folds: 3, seed: 0, validationFraction: 1.5) } throws: { "\($0)".contains("--validation-fraction") }
    }

    /// `extract --input-size 4096` (2048 with vit_base needs ≈ 30 GiB, which fits large machines): the ViT's buffers (tokens² scores per worker, activations) are
    /// bounded by MemAvailable before anything is allocated; the error names the flag and the bytes.
    @Test func allocationsAreBoundedByAvailableMemory() throws {
        let o = ExtractOptions(input: URL(fileURLWithPath: "/in"), output: URL(fileURLWithPath: "/out"), encoder: "vit_base", batchSize: 32, inputSize: 4096)
        let spec = try EncoderRegistry.spec("vit_base", inputSize: 4096)
        #expect { try Extract.checkMemory(spec, o, available: 16 << 30) } throws: { e in
            let m = "\(e)"
            return m.hasPrefix("--input-size: ") && m.contains("needs about") && m.contains("GiB") && m.contains("available")
        }
        try Extract.checkMemory(try EncoderRegistry.spec("vit_test"), ExtractOptions(input: o.input, output: o.output, encoder: "vit_test"))
        // The estimate itself for vit_base at 2048, batch 32 (tokens 16385): batches 8·32·3·2048²·4,
        // activations 32·16385·(6·768 + 3072)·4, patches 32·16384·768·4, scores workers·16385²·4.
        let at2048 = ExtractOptions(input: o.input, output: o.output, encoder: "vit_base", batchSize: 32, inputSize: 2048)
        let expected = 8 * 32 * 3 * 2048 * 2048 * 4 + 32 * 16385 * 7680 * 4 + 32 * 16384 * 768 * 4 + Parallel.workerCount * 16385 * 16385 * 4
        #expect { try Extract.checkMemory(try EncoderRegistry.spec("vit_base", inputSize: 2048), at2048, available: 1 << 30) } throws: { e in
            (e as? MemoryBudget.TooLarge)?.bytes == expected
        }
        #expect(MemoryBudget.memAvailable(meminfo: "MemTotal: 100 kB\nMemAvailable:    2048 kB\n") == 2048 * 1024)
        #expect(MemoryBudget.memAvailable(meminfo: "MemTotal: 100 kB\n") == nil)
        #expect(MemoryBudget.product(1 << 40, 1 << 40) == Int.max)
        #expect { try MemoryBudget.check(bytes: 10, what: "x", option: "--flag", available: 9) } throws: { "\($0)".hasPrefix("--flag: x needs about") }
        #expect(MemoryBudget.available() > 0)
    }

    /// Unwritable outputs: "cannot write <path>: <reason>" with errno's words, never a raw
    /// NSCocoaErrorDomain dump (the tests run as root, so a path under a regular file stands in).
    @Test func unwritableOutputsSayWhy() throws {
        let dir = scratch("rb-unwritable")
        let file = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let target = file.appendingPathComponent("sub/out.csv")
        do { try AtomicFile.write(Data("a".utf8), to: target); Issue.record("wrote under a file") } catch {
            let m = "\(error)"
            #expect(m.hasPrefix("cannot write \(file.path)") && !m.contains("NSCocoaErrorDomain"), "\(m)")
        }
        do { try SafeTensors.write(["w": Tensor([1, 2])], to: file.appendingPathComponent("m.safetensors")); Issue.record("wrote") } catch {
            let m = "\(error)"
            #expect(m.hasPrefix("cannot write ") && !m.contains("NSCocoaErrorDomain"), "\(m)")
        }
        // A stage: deploy / crossval / extract create their --out through the same path.
        let ex = ExtractOptions(input: dir, output: file.appendingPathComponent("out"), encoder: "vit_test", progress: .quiet)
        do { _ = try Extract.run(ex); Issue.record("extract wrote under a file") } catch {
            let m = "\(error)"
            #expect(m.contains("cannot write \(file.path)") && !m.contains("NSCocoaErrorDomain"), "\(m)")
        }
        let e = NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteOutOfSpace.rawValue)
        #expect(FileError.reason(e) == "no space left on device")
        #expect(FileError.reason(NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES))) == String(cString: strerror(EACCES)))
    }

    /// Patient IDs that sanitise alike (`a/b`, `a_b`, `a?b`) are refused by ingest and extract,
    /// naming the other IDs; the rest is done and the exit code says "some failed" (3); a rerun
    /// after the fix rewrites the error lists, so fixed failures disappear.
    @Test func collidingPatientIDsAreRefusedAndErrorListsAreRewritten() throws {
        let dicom = scratch("rb-dicom"), ingest = scratch("rb-ingest"), feats = scratch("rb-feats")
        for (i, id) in ["a/b", "a_b", "a?b", "ok"].enumerated() {
            _ = try SyntheticCT(patientID: id, rows: 16, columns: 16, slices: 2, seed: UInt64(i + 1))
                .write(to: dicom.appendingPathComponent("p\(i)"))
        }
        let s = try Ingest.run(IngestOptions(input: dicom, output: ingest, progress: .quiet))
        #expect(s.seriesFound == 4 && s.seriesIngested == 1 && s.seriesFailed == 3 && s.exitCode == 3)
        let errors = try String(contentsOf: s.errors, encoding: .utf8)
        #expect(errors.contains("patient ID 'a/b' and 'a?b', 'a_b' all become the file name 'a_b'"), "\(errors)")
        let x = try Extract.run(ExtractOptions(input: dicom, output: feats, encoder: "vit_test", progress: .quiet))
        #expect(x.written == 1 && x.failed == 3)
        let xerr = try CSVTable.read(feats.appendingPathComponent("extract_errors.csv"))
        #expect(xerr.rows.count == 3 && xerr.rows.allSatisfy { $0[1].contains("all become the file name 'a_b'") }, "\(xerr.rows)")
        // Fix the data (drop two of the three), rerun: the old failures are gone from both lists.
        try FileManager.default.removeItem(at: dicom.appendingPathComponent("p1"))
        try FileManager.default.removeItem(at: dicom.appendingPathComponent("p2"))
        let s2 = try Ingest.run(IngestOptions(input: dicom, output: ingest, progress: .quiet))
        #expect(s2.seriesFailed == 0 && s2.exitCode == nil && s2.seriesIngested + s2.seriesSkipped == 2)
        #expect(try CSVTable.read(s2.errors).rows.isEmpty)
        let x2 = try Extract.run(ExtractOptions(input: dicom, output: feats, encoder: "vit_test", progress: .quiet))
        #expect(x2.failed == 0 && x2.written == 1 && x2.skipped == 1)
        #expect(try CSVTable.read(feats.appendingPathComponent("extract_errors.csv")).rows.isEmpty)
        // Empty PatientID: one name for the ingest folder and the .h5.
        #expect(Ingest.seriesFolder(ingest, "", "1.2").deletingLastPathComponent().lastPathComponent == "unknown")
        #expect(FeatureStore.fileName(patientID: "") == "unknown.h5")
    }

    /// An empty PatientID and a real patient 'unknown' both become unknown.h5 / unknown/: ingest and
    /// extract's DICOM input path alike refuse both as a collision (extract used to merge them).
    @Test func emptyPatientIDCollidesWithUnknown() throws {
        let dicom = scratch("rb-empty-id"), ingest = scratch("rb-empty-ingest"), feats = scratch("rb-empty-feats")
        for (i, id) in ["", "unknown", "ok"].enumerated() {
            _ = try SyntheticCT(patientID: id, rows: 16, columns: 16, slices: 2, seed: UInt64(i + 1))
                .write(to: dicom.appendingPathComponent("p\(i)"))
        }
        let s = try Ingest.run(IngestOptions(input: dicom, output: ingest, progress: .quiet))
        #expect(s.seriesIngested == 1 && s.seriesFailed == 2 && s.exitCode == 3)
        let x = try Extract.run(ExtractOptions(input: dicom, output: feats, encoder: "vit_test", progress: .quiet))
        #expect(x.written == 1 && x.failed == 2, "written \(x.written), failed \(x.failed)")
        let xerr = try CSVTable.read(feats.appendingPathComponent("extract_errors.csv"))
        #expect(xerr.rows.count == 2 && xerr.rows.allSatisfy { $0[1].contains("all become the file name 'unknown'") }, "\(xerr.rows)")
        #expect(!FileManager.default.fileExists(atPath: feats.appendingPathComponent("unknown.h5").path))
    }

    @Test func ingestExitCodes() {
        var s = Ingest.Summary(manifest: URL(fileURLWithPath: "/m"), errors: URL(fileURLWithPath: "/e"))
        s.seriesFound = 3
        #expect(s.exitCode == nil)
        s.seriesFailed = 3
        s.problems = [InputProblem(path: "/x", reason: "no space left on device")]
        #expect(s.exitCode == 1)                  // nothing usable done (full disk, every series failed)
        s.seriesIngested = 1; s.seriesFailed = 2
        #expect(s.exitCode == 3)                  // some failed, rest done
        s.seriesFailed = 0
        #expect(s.exitCode == 3)                  // an unreadable input file
        s.problems = []
        #expect(s.exitCode == nil)
    }

    /// NaN voxels: refused by default naming the count; `.warn` reads them as −1024 HU with a warning.
    @Test func nonFiniteVoxelsRefusedOrWarned() throws {
        let url = MalformedCorpus.root.appendingPathComponent("nifti_nan_voxels.nii")
        #expect { _ = try NIfTIReader.readFile(url.path) } throws: { "\($0)".contains("1 of 32 voxels are NaN or Inf") }
        let v = try NIfTIReader.readFile(url.path, nonFiniteVoxels: .warn)
        #expect(v.voxels.allSatisfy(\.isFinite) && v.voxels.filter { $0 == -1024 }.count == 1)
        #expect(v.warnings.contains { $0.contains("set to −1024 HU") })
    }

    /// `--task NAME`: the current folder's Manifests/tasks, then next to the config file, then
    /// the bundled tasks; the error lists every folder looked in.
    @Test func taskLookupOrderAndMessage() throws {
        let cwd = scratch("rb-cwd"), conf = scratch("rb-conf")
        let cfg = conf.appendingPathComponent("axial.yaml")
        let dirs = TaskSpec.searchDirectories(configFile: cfg, currentDirectory: cwd)
        #expect(dirs[0].path == cwd.appendingPathComponent("Manifests/tasks").path)
        #expect(dirs[1].path == conf.appendingPathComponent("Manifests/tasks").path && dirs[2].path == conf.standardizedFileURL.path)
        // The package's own tasks are found from anywhere.
        #expect(try TaskSpec.load("binary_example", directories: dirs).name == "binary_example")
        try Data("name: mine\nkind: binary\ncolumn: y\nclass: y\npositive_values: ['1']\nnegative_values: ['0']\n".utf8).write(to: conf.appendingPathComponent("mine.yaml"))
        #expect(try TaskSpec.load("mine", directories: dirs).name == "mine")
        #expect { _ = try TaskSpec.load("nope", directories: dirs) } throws: { e in
            let m = "\(e)"
            return m.contains("no task named 'nope'") && m.contains(cwd.path) && m.contains(conf.path) && m.contains("binary_example")
        }
    }

    /// `deploy` never writes a NaN score: a feature file with a NaN row makes it fail (exit 1)
    /// naming the patient, with no patient_preds.csv written.
    @Test func deployRefusesNaNScores() throws {
        let dir = temporaryFolder("rb-deploy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cohort, _) = CrossValTests.cohort(patients: 12, seed: 3)
        let features = try cohort.write(to: dir)
        let taskURL = dir.appendingPathComponent("task.yaml")
        try Data(CrossValTests.taskYAML.utf8).write(to: taskURL)
        let out = dir.appendingPathComponent("cv")
        var o = CrossValOptions(features: features, table: dir.appendingPathComponent("clinical.csv"), task: taskURL.path, head: .abmil, out: out)
        o.folds = 2; o.epochs = 2; o.batchSize = 4; o.patience = 2; o.hidden = 8; o.attentionHidden = 8
        o.log = { _ in }
        _ = try CrossVal.run(o)
        let victim = cohort.patients[0].id
        let url = features.appendingPathComponent(FeatureStore.fileName(patientID: victim))
        var (pf, _) = try FeatureStore.read(url)
        pf.feats[0] = .nan
        try FeatureStore.write(pf, to: url)
        var d = DeployOptions(models: [out], features: features, out: dir.appendingPathComponent("deploy"))
        d.log = { _ in }
        #expect { _ = try Deploy.run(d) } throws: { e in
            let m = "\(e)"
            return m.contains(victim) && (m.contains("NaN") || m.contains("non-finite"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("deploy/patient_preds.csv").path))
    }
}
