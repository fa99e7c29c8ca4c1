// SPDX-License-Identifier: Apache-2.0
// What every fuzz target includes. A target is one fuzz/<name>_fuzz.cc that defines its entry
// point with BERTH_FUZZ_TARGET(name) { ... } and has seeds in fuzz/corpus/<name>/.
//
// Built two ways (fuzz/CMakeLists.txt):
//  - BERTH_FUZZ=ON (clang): each target is its own libFuzzer binary and the macro defines
//    LLVMFuzzerTestOneInput;
//  - otherwise (the normal GCC build): every target is linked into one replay binary
//    (replay_main.cc), the macro defines berth::fuzz::target_<name>, and ctest replays each
//    corpus through it. No clang needed.
// Targets must not assert on what the code under test returns for bad input: an error is a
// fine answer. They check invariants that must hold for *every* input (round trips, "a
// refused path never comes back as components") with BERTH_FUZZ_CHECK, which aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#ifdef BERTH_FUZZ_REPLAY
#define BERTH_FUZZ_TARGET(name)                        \
  namespace berth::fuzz {                              \
  int target_##name(const uint8_t* data, size_t size); \
  }                                                    \
  int berth::fuzz::target_##name(const uint8_t* data, size_t size)
#else
#define BERTH_FUZZ_TARGET(name) \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#endif

/// Aborts (a crash libFuzzer keeps, a failed replay) when an invariant does not hold.
#define BERTH_FUZZ_CHECK(cond)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace berth::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Splits off the first line ("selector" bytes some targets use to pick a mode or a header):
/// returns it and leaves the rest in `rest`.
inline std::string_view first_line(std::string_view in, std::string_view& rest) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    rest = {};
    return in;
  }
  rest = in.substr(nl + 1);
  return in.substr(0, nl);
}

/// Turns logging off once (parsers may log at debug/warn; the fuzzer's output is the crash).
void quiet_logs();

}  // namespace berth::fuzz
