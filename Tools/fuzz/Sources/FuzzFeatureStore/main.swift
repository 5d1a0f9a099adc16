import AxialStore
import Foundation
import FuzzSupport

// Per-patient HDF5 feature files, as crossval / deploy / report open them: first through the
// axial-h5probe child (FeatureProbe; a file that crashes libhdf5 kills the child, not this
// process), then, only for files the probe read cleanly, in-process.
func fuzzFeatureStore(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let url = FuzzScratch.file("P0001.h5", bytes)
        guard try FeatureProbe.check([url]).isEmpty else { return }
        _ = FeatureStore.readProvenance(url)
        _ = FeatureStore.isComplete(url)
        _ = try FeatureStore.read(url)
    }
}

// The fuzz build's probe is `fuzz-h5probe` beside this binary (SwiftPM refuses a second target
// named axial-h5probe in the package graph), unless AXIAL_H5PROBE names another.
if ProcessInfo.processInfo.environment[FeatureProbe.pathVariable] == nil,
   let exe = Bundle.main.executableURL?.resolvingSymlinksInPath() {
    setenv(FeatureProbe.pathVariable, exe.deletingLastPathComponent().appendingPathComponent("fuzz-h5probe").path, 1)
}

// A file on which libhdf5 loops is killed after 3 s (libFuzzer's own limit here is 10 s per input).
if ProcessInfo.processInfo.environment[FeatureProbe.timeoutVariable] == nil { setenv(FeatureProbe.timeoutVariable, "3", 1) }

fuzzMain { data, size in fuzzFeatureStore(data, size) }
