// What the Jazzer.js 2.1.0 addon expects from its libFuzzer fork
// (CodeIntelligenceTesting/llvm-project-jazzer) and upstream libFuzzer 14
// (Debian's libclang-rt-14-dev) lacks or does differently. Built with the
// addon by scripts/build-jazzer.mjs; fuzz/README.md explains each point.
//
//  1. The death callback. The fork calls __jazzer_set_death_callback;
//     upstream calls __sanitizer_set_death_callback (a weak symbol, so
//     defining it here is how a sanitizer runtime would hook in too). The
//     addon calls it back to dump the crashing input when JS reports a
//     finding. We also note that it ran.
//  2. Stopping on a finding. The addon's callback returns -2 (RETURN_EXIT)
//     once the JS target threw; the fork stops its loop on that, upstream
//     treats it like -1 ("do not add to the corpus") and keeps fuzzing, so a
//     finding would end with exit code 0 after -max_total_time. The wrapper
//     below exits at once instead: 77 (libFuzzer's -error_exitcode) when the
//     input was dumped, 72 (its -interrupted_exitcode) when JS stopped without
//     a finding (SIGINT).
//  3. The end of a run. Upstream's FuzzerDriver ends with exit(0) (the fork
//     returns), which would run static destructors under a live V8 isolate,
//     from the fuzzing thread in async mode. An on_exit handler armed while
//     the driver runs leaves with _Exit(status) instead.
//  4. Unit timeouts in async mode. libFuzzer's SIGALRM handler only acts in
//     its own thread (the fork patched that out); in async mode the JS target
//     runs on Node's main thread, so a target stuck in a synchronous loop
//     would never time out. A watchdog thread does it for both modes: the
//     input is dumped (as crash-<sha1>) and the process exits with 70
//     (libFuzzer's -timeout_exitcode).
//  5. Two tracing entry points with an explicit PC, added by the fork. Here
//     they go to the upstream functions, which take the PC from their return
//     address: the comparison operands still feed libFuzzer's table of
//     recent compares (the mutator's CMP dictionary), but value profiles
//     (-use_value_profile=1) would see one PC, so we do not use them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>

namespace fuzzer {
using UserCallback = int (*)(const uint8_t *Data, size_t Size);
// libFuzzer's real entry point (libclang_rt.fuzzer_no_main).
int FuzzerDriver(int *argc, char ***argv, UserCallback Callback);
} // namespace fuzzer

extern "C" {
void __jazzer_set_death_callback(void (*callback)()); // shared/sanitizer_symbols.cpp
void __sanitizer_cov_trace_const_cmp8(uint64_t Arg1, uint64_t Arg2);
void __sanitizer_cov_trace_pc_indir(uintptr_t Callee);
}

namespace {
constexpr int kRetExit = -2;       // libfuzzer::RETURN_EXIT in shared/libfuzzer.h
constexpr int kExitFinding = 77;   // -error_exitcode
constexpr int kExitTimeout = 70;   // -timeout_exitcode
constexpr int kExitInterrupted = 72; // -interrupted_exitcode

fuzzer::UserCallback gInner = nullptr;
void (*gLibFuzzerDeathCallback)() = nullptr;
std::atomic<bool> gDumped{false};
std::atomic<bool> gInDriver{false};
std::atomic<bool> gExiting{false};
// Start of the running input in ms since the epoch of steady_clock, 0 between inputs.
std::atomic<int64_t> gUnitStartMs{0};
int gTimeoutSec = 0;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Say(const char *msg) {
  fprintf(stderr, "==%d== sockeye jazzer shim: %s\n", (int)getpid(), msg);
  fflush(stderr);
}

[[noreturn]] void Leave(int code) {
  gExiting = true;
  fflush(stdout);
  fflush(stderr);
  _Exit(code);
}

void DeathCallback() {
  gDumped = true;
  if (gLibFuzzerDeathCallback) gLibFuzzerDeathCallback();
}

int WrappedCallback(const uint8_t *Data, size_t Size) {
  gUnitStartMs = NowMs();
  int r = gInner(Data, Size);
  gUnitStartMs = 0;
  if (r == kRetExit) {
    if (gDumped) Leave(kExitFinding);
    Say("the target stopped the run without a finding (interrupted)");
    Leave(kExitInterrupted);
  }
  return r;
}

void Watchdog() {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int64_t start = gUnitStartMs;
    if (start == 0 || gExiting) continue;
    if (NowMs() - start < int64_t(gTimeoutSec) * 1000) continue;
    char msg[160];
    snprintf(msg, sizeof msg, "timeout: one input ran for more than %d s (-timeout); dumping it", gTimeoutSec);
    Say(msg);
    fprintf(stderr, "==%d== ERROR: libFuzzer: timeout after %d seconds\n", (int)getpid(), gTimeoutSec);
    if (gLibFuzzerDeathCallback) gLibFuzzerDeathCallback();
    Leave(kExitTimeout);
  }
}

void OnExit(int status, void *) {
  if (!gInDriver || gExiting) return;
  Leave(status);
}

int ParseTimeout(int argc, char **argv) {
  int t = 1200; // libFuzzer's default -timeout
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "-timeout=", 9) == 0) t = atoi(argv[i] + 9);
  return t;
}
} // namespace

namespace sockeye_jazzer {
int FuzzerDriver(int *argc, char ***argv, fuzzer::UserCallback Callback) {
  gInner = Callback;
  gTimeoutSec = ParseTimeout(*argc, *argv);
  if (gTimeoutSec > 0) std::thread(Watchdog).detach();
  gInDriver = true;
  on_exit(OnExit, nullptr);
  int r = fuzzer::FuzzerDriver(argc, argv, WrappedCallback);
  gInDriver = false;
  return r;
}
} // namespace sockeye_jazzer

extern "C" {
void __sanitizer_set_death_callback(void (*callback)()) {
  gLibFuzzerDeathCallback = callback;
  __jazzer_set_death_callback(DeathCallback);
}

void __sanitizer_cov_trace_const_cmp8_with_pc(uintptr_t, uint64_t Arg1, uint64_t Arg2) {
  __sanitizer_cov_trace_const_cmp8(Arg1, Arg2);
}

void __sanitizer_cov_trace_pc_indir_with_pc(void *, uintptr_t Callee) {
  __sanitizer_cov_trace_pc_indir(Callee);
}
}
