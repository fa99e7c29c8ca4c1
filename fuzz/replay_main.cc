// SPDX-License-Identifier: Apache-2.0
// The replay driver: one binary holding every fuzz target, for builds without libFuzzer.
//   berth_fuzz_replay TARGET PATH...   runs TARGET on every file (directories: every regular
//                                      file in them, sorted) and fails on a crash or when no
//                                      input was found;
//   berth_fuzz_replay --list           prints the target names.
// ctest runs it once per target on fuzz/corpus/<target>/ (fuzz/CMakeLists.txt).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.h"

namespace berth::fuzz {
#define BERTH_FUZZ_ENTRY(name) int target_##name(const uint8_t* data, size_t size);
#include "fuzz_targets.inc"
#undef BERTH_FUZZ_ENTRY
}  // namespace berth::fuzz

namespace {

struct Entry {
  const char* name;
  int (*fn)(const uint8_t*, size_t);
};

const Entry kTargets[] = {
#define BERTH_FUZZ_ENTRY(name) {#name, &berth::fuzz::target_##name},
#include "fuzz_targets.inc"
#undef BERTH_FUZZ_ENTRY
};

bool read_file(const std::filesystem::path& p, std::string& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& t : kTargets) {
      std::printf("%s\n", t.name);
    }
    return 0;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TARGET PATH... | --list\n", argv[0]);
    return 2;
  }
  const Entry* target = nullptr;
  for (const auto& t : kTargets) {
    if (std::strcmp(t.name, argv[1]) == 0) {
      target = &t;
    }
  }
  if (!target) {
    std::fprintf(stderr, "unknown fuzz target %s (--list shows them)\n", argv[1]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (int i = 2; i < argc; ++i) {
    std::error_code ec;
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> in_dir;
      for (const auto& e : std::filesystem::directory_iterator(p, ec)) {
        if (e.is_regular_file()) {
          in_dir.push_back(e.path());
        }
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "%s: no inputs (an empty corpus is a mistake)\n", target->name);
    return 1;
  }
  std::string bytes;
  for (const auto& f : files) {
    if (!read_file(f, bytes)) {
      std::fprintf(stderr, "%s: cannot read %s\n", target->name, f.c_str());
      return 1;
    }
    // Print before running so a crash names its input.
    std::fprintf(stderr, "%s: %s\n", target->name, f.filename().c_str());
    target->fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%s: replayed %zu inputs\n", target->name, files.size());
  return 0;
}
