import Testing
@testable import AxialCore

@Suite struct MemoryTuningTests {
    @Test func userSettingsWin() {
        let asan = MemoryTuning.addressSanitizerActive   // under Tools/asan nothing is applied
        #expect(MemoryTuning.shouldApply(environment: [:]) == !asan)
        #expect(MemoryTuning.shouldApply(environment: ["AXIAL_MALLOC": "tuned", "HOME": "/root"]) == !asan)
        #expect(!MemoryTuning.shouldApply(environment: ["AXIAL_MALLOC": "system"]))
        #expect(!MemoryTuning.shouldApply(environment: ["GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"]))
        #expect(!MemoryTuning.shouldApply(environment: ["MALLOC_MMAP_THRESHOLD_": "65536"]))
        #expect(!MemoryTuning.shouldApply(environment: ["MALLOC_TRIM_THRESHOLD_": "0"]))
        #expect(!MemoryTuning.retainFreedMemory(environment: ["AXIAL_MALLOC": "system"]))
    }

    /// glibc rejects an mmap threshold above HEAP_MAX_SIZE/2 (32 MiB on 64-bit) and returns 0:
    /// the chosen values must be ones it accepts.
    @Test func glibcAcceptsTheThresholds() {
        #if canImport(Glibc)
        if MemoryTuning.addressSanitizerActive {
            #expect(!MemoryTuning.retainFreedMemory(environment: [:]))   // ASan owns malloc: not applied
        } else {
            #expect(MemoryTuning.retainFreedMemory(environment: [:]))
        }
        #endif
    }
}
