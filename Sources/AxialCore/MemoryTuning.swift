#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// glibc malloc settings for a process whose every step allocates and frees the same large
/// temporaries (activations, adapter-hook outputs, attention blocks).
///
/// With glibc's defaults a freed block above the dynamic mmap threshold goes back to the kernel
/// and the top of the heap is trimmed above 128 KiB, so the next step gets fresh pages that the
/// kernel zeroes first: on ViT-L/14 anomaly inference that page zeroing was ⅔ of the process time
/// (`perf`: `clear_page_erms`; 16.0 s of 24.7 s system time). Keeping blocks under 32 MiB in the
/// heap (glibc 2.36 caps `M_MMAP_THRESHOLD` at 32 MiB on 64-bit) and trimming only above 1 GiB
/// free reuses those pages; the peak RSS is unchanged within a few percent because the same
/// blocks are reused step after step (figures in the README's Performance section).
///
/// Not applied when the user tuned malloc already (`GLIBC_TUNABLES`, `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`) or set `AXIAL_MALLOC=system`, and under AddressSanitizer; a no-op off glibc.
public enum MemoryTuning {
    public static let mmapThreshold: Int32 = 32 << 20
    public static let trimThreshold: Int32 = 1 << 30

    /// Whether this process runs under AddressSanitizer (its runtime is linked in): ASan owns
    /// malloc then (its `mallopt` accepts nothing), and buffer reuse would hide a use-after-free.
    public static let addressSanitizerActive = cSymbol("__asan_init") != nil

    /// Whether Axial leaves the allocator as it is: under AddressSanitizer or with
    /// `AXIAL_MALLOC=system` (also `LargeBlockCache`'s off switch).
    public static func allocatorLeftAlone(environment: [String: String]) -> Bool {
        addressSanitizerActive || environment["AXIAL_MALLOC"] == "system"
    }

    /// Whether `retainFreedMemory` applies its settings in an environment.
    public static func shouldApply(environment: [String: String]) -> Bool {
        if allocatorLeftAlone(environment: environment) { return false }
        for key in ["GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] where environment[key] != nil { return false }
        return true
    }

    /// Sets glibc's mmap and trim thresholds (once, first thing in `main`). Returns whether both
    /// settings were accepted.
    @discardableResult
    public static func retainFreedMemory(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard shouldApply(environment: environment) else { return false }
        #if canImport(Glibc)
        // Swift's Glibc module does not include <malloc.h>: mallopt is looked up in the C library
        // and called with the C convention. M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3 (<malloc.h>).
        guard let symbol = cSymbol("mallopt") else { return false }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let mmap = mallopt(-3, mmapThreshold)
        let trim = mallopt(-1, trimThreshold)
        return mmap == 1 && trim == 1
        #else
        return false
        #endif
    }

    /// A symbol of the process's loaded libraries (`dlsym(RTLD_DEFAULT, …)`), nil off glibc.
    private static func cSymbol(_ name: String) -> UnsafeMutableRawPointer? {
        #if canImport(Glibc)
        return dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
        #else
        return nil
        #endif
    }
}
