import AxialEval
import AxialStore
import AxialTestSupport
import Foundation
import Testing

/// The HDF5 probe child (issue 17): untrusted feature files are read in `axial-h5probe` first, so
/// that a file crashing libhdf5 is reported as an error naming it instead of crashing the run.
@Suite struct FeatureProbeTests {
    static func cohortFiles(_ dir: URL, patients: Int) throws -> [URL] {
        var cfg = SyntheticCohortConfig(task: try TaskSpec.parse("name: t\nkind: binary\ncolumn: y\n"))
        cfg.patients = patients; cfg.featureDimension = 4; cfg.slices = 3...3
        let cohort = SyntheticCohort(cfg)
        let features = try cohort.write(to: dir)
        return cohort.patients.map { features.appendingPathComponent(FeatureStore.fileName(patientID: $0.id)) }
    }

    /// The real probe, built by `swift build --build-tests` beside the test bundle: valid files
    /// pass, a damaged one gets the reader's error (naming what is wrong), one child for all.
    @Test func realProbeReadsValidFilesAndReportsDamagedOnes() throws {
        let dir = temporaryFolder("probe")
        defer { try? FileManager.default.removeItem(at: dir) }
        var files = try Self.cohortFiles(dir, patients: 3)
        let damaged = dir.appendingPathComponent("damaged.h5")
        var bytes = try Data(contentsOf: files[0])
        bytes.removeLast(bytes.count / 2)
        try bytes.write(to: damaged)
        let garbage = dir.appendingPathComponent("garbage.h5")
        try Data("not an HDF5 file at all".utf8).write(to: garbage)
        files += [damaged, garbage, dir.appendingPathComponent("missing.h5")]
        #expect(try FeatureProbe.executable() != nil)
        let failures = try FeatureProbe.check(files)
        #expect(Set(failures.keys) == [damaged.path, garbage.path, dir.appendingPathComponent("missing.h5").path], "\(failures)")
        for (_, why) in failures { #expect(!why.isEmpty && why != FeatureProbe.crashReason, "\(why)") }
    }

    /// A probe that dies on a file: that file is "damaged HDF5 file (the HDF5 library crashed
    /// reading it)", a new child takes the rest (here a script standing in for the probe that kills
    /// itself with SIGSEGV on any file name containing "crash" — the name, not the path: the scratch
    /// folder's name holds "crash" too — as libhdf5 does on the fuzzer's file).
    @Test func crashedChildIsReportedAndRestarted() throws {
        let dir = temporaryFolder("probe-crash")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("fake-probe.sh")
        let starts = dir.appendingPathComponent("starts.txt")
        try """
        #!/bin/sh
        echo start >> '\(starts.path)'
        while IFS= read -r p; do
          case "${p##*/}" in
            *crash*) kill -SEGV $$ ;;
            *bad*) printf 'error %s\\tno feats dataset\\n' "$p" ;;
            *) printf 'ok %s\\n' "$p" ;;
          esac
        done
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let names = ["a.h5", "crash1.h5", "b.h5", "bad.h5", "crash2.h5", "c.h5"]
        let failures = try FeatureProbe.check(names.map { dir.appendingPathComponent($0) }, probe: script)
        #expect(failures == [dir.appendingPathComponent("crash1.h5").path: FeatureProbe.crashReason,
                             dir.appendingPathComponent("bad.h5").path: "no feats dataset",
                             dir.appendingPathComponent("crash2.h5").path: FeatureProbe.crashReason])
        // One child for the batch, one more after each crash that has files left after it.
        #expect(try String(contentsOf: starts, encoding: .utf8).split(separator: "\n").count == 3)
    }

    /// The fuzzer's file (heap-use-after-free in libhdf5 1.10.8 under ASan): read through the probe
    /// it never takes this process down; it is refused or (without ASan the freed memory may still
    /// hold the old bytes) read — either way the call returns.
    @Test func fuzzFindGoesThroughTheProbe() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Tools/fuzz/regressions/FuzzFeatureStore/hdf5-attr-uaf-libhdf5-1.10.8.h5")
        #expect(FileManager.default.fileExists(atPath: url.path))
        _ = try FeatureProbe.check([url])
    }

    /// A probe that hangs on a file (libhdf5 1.10.8 loops in its metadata cache on a damaged global
    /// heap): after the timeout that file is "did not finish", the child is killed and a new one
    /// takes the rest (a script standing in for the probe that sleeps on names containing "hang").
    @Test func hangingChildIsKilledAndRestarted() throws {
        let dir = temporaryFolder("probe-hang")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("fake-probe.sh")
        let starts = dir.appendingPathComponent("starts.txt")
        try """
        #!/bin/sh
        echo start >> '\(starts.path)'
        while IFS= read -r p; do
          case "${p##*/}" in
            *hang*) exec sleep 600 ;;
            *) printf 'ok %s\\n' "$p" ;;
          esac
        done
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let names = ["a.h5", "hang1.h5", "b.h5", "hang2.h5"]
        let t0 = Date()
        let failures = try FeatureProbe.check(names.map { dir.appendingPathComponent($0) }, probe: script, timeout: 0.5)
        #expect(Date().timeIntervalSince(t0) < 60)
        let why = FeatureProbe.hangReason(0.5)
        #expect(why.contains("did not finish") && why.contains("0.5 s") && why.contains(FeatureProbe.timeoutVariable))
        #expect(failures == [dir.appendingPathComponent("hang1.h5").path: why, dir.appendingPathComponent("hang2.h5").path: why])
        #expect(try String(contentsOf: starts, encoding: .utf8).split(separator: "\n").count == 2)
    }

    /// The fuzzer's second file (libhdf5 1.10.8 never returns from H5Aread of a variable-length string
    /// attribute whose global heap is damaged): through the real probe it is reported as damaged
    /// within the limit, and the run goes on.
    @Test func globalHeapLoopIsReportedAsDamaged() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Tools/fuzz/regressions/FuzzFeatureStore/hdf5-global-heap-loop-libhdf5-1.10.8.h5")
        #expect(FileManager.default.fileExists(atPath: url.path))
        let failures = try FeatureProbe.check([url], timeout: 2)
        // A library that reads it (a later libhdf5 refuses it with an error) may answer either way; it must answer.
        if let why = failures[url.path] { #expect(!why.isEmpty) }
    }

    @Test func badTimeoutSettingIsAClearError() throws {
        for v in ["0", "-3", "nan", "soon"] {
            #expect { try FeatureProbe.timeout([FeatureProbe.timeoutVariable: v]) } throws: { "\($0)".contains("\(FeatureProbe.timeoutVariable)=\(v)") }
        }
        #expect(try FeatureProbe.timeout([:]) == FeatureProbe.defaultTimeout)
        #expect(try FeatureProbe.timeout([FeatureProbe.timeoutVariable: "2.5"]) == 2.5)
    }

    /// Timing for README: 200 feature files through one probe child.
    @Test func twoHundredFilesThroughOneChild() throws {
        let dir = temporaryFolder("probe-200")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try Self.cohortFiles(dir, patients: 200)
        let t0 = Date()
        let failures = try FeatureProbe.check(files)
        let seconds = Date().timeIntervalSince(t0)
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        print("FeatureProbe: 200 files in \(String(format: "%.3f", seconds)) s")
    }
}
