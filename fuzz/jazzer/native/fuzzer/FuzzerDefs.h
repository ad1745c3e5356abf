// Stand-in for compiler-rt's <fuzzer/FuzzerDefs.h>, which the Jazzer.js 2.1.0
// addon (utils.h) includes for two declarations. Debian ships libFuzzer as a
// library (libclang-rt-14-dev) without this header, and fetching compiler-rt
// from GitHub is what the upstream build does and what we avoid.
//
// The addon's one call, fuzzer::FuzzerDriver(...) in utils.cpp, is routed to
// sockeye_jazzer::FuzzerDriver (jazzer-shim.cpp), which wraps the callback and
// then calls libFuzzer's real fuzzer::FuzzerDriver. See fuzz/README.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fuzzer {
using UserCallback = int (*)(const uint8_t *Data, size_t Size);
}

namespace sockeye_jazzer {
int FuzzerDriver(int *argc, char ***argv, fuzzer::UserCallback Callback);
}

namespace fuzzer {
using sockeye_jazzer::FuzzerDriver;
}
