#ifndef AXIAL_FUZZ_DRIVER_H
#define AXIAL_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>
// libFuzzer's driver entry (compiler-rt, LLVM >= 13): parses libFuzzer's flags from argv and runs
// the fuzzing loop over `callback`. SwiftPM gives every executable its own main
// (`<Module>_main`, where the top-level code of main.swift goes), so the targets call this instead of linking libFuzzer's main.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
