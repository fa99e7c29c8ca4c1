// SPDX-License-Identifier: Apache-2.0
// The pure judge of tar entry paths and hardlink targets in image layers
// (runtime::detail::split_entry_path, used by the layer unpacker for both), checked against
// the invariants the unpacker relies on, and differentially against the builder's
// builder::clean_path (Go's filepath.Clean) for the paths it accepts.
#include <string>

#include "builder/dockerfile.h"
#include "fuzz.h"
#include "runtime/internal.h"

BERTH_FUZZ_TARGET(tar_path) {
  berth::fuzz::quiet_logs();
  std::string_view path = berth::fuzz::as_view(data, size);
  std::string why;
  auto parts = berth::runtime::detail::split_entry_path(path, &why);
  if (!path.empty() && path.front() == '/') {
    BERTH_FUZZ_CHECK(!why.empty());
  }
  if (!why.empty()) {
    BERTH_FUZZ_CHECK(parts.empty());
    return 0;
  }
  std::string joined;
  for (const auto& c : parts) {
    // No component may climb, be empty, or smuggle a separator (openat2 walks them one by one).
    BERTH_FUZZ_CHECK(!c.empty() && c != "." && c != "..");
    BERTH_FUZZ_CHECK(c.find('/') == std::string::npos);
    joined += (joined.empty() ? "" : "/") + c;
  }
  // An accepted path has no ".." and is relative, so cleaning it only drops "." and "//".
  BERTH_FUZZ_CHECK(berth::builder::clean_path(path) == (joined.empty() ? "." : joined));
  return 0;
}
