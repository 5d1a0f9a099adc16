#if canImport(Glibc)
@preconcurrency import Glibc
#else
@preconcurrency import Darwin
#endif

/// Makes standard output line-buffered, so that on a pipe or in CI each line is written when it
/// ends, in order with standard error (the default full buffering held ~4 KB and printed out of
/// order). Called once at start-up, before any thread exists.
func makeStandardOutputLineBuffered() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
