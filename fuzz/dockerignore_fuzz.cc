// SPDX-License-Identifier: Apache-2.0
// .dockerignore files (and COPY --exclude patterns, the same syntax) from a build's checkout,
// matched against paths; plus path_match (COPY source globs) and clean_path.
// Input: the .dockerignore text; its first line is also used as a path and as a glob.
#include <string>
#include <vector>

#include "builder/dockerfile.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(dockerignore) {
  using namespace berth::builder;
  berth::fuzz::quiet_logs();
  std::string_view text = berth::fuzz::as_view(data, size);
  std::string_view rest;
  std::string_view line = berth::fuzz::first_line(text, rest);

  std::string cleaned = clean_path(line);
  BERTH_FUZZ_CHECK(!cleaned.empty());
  BERTH_FUZZ_CHECK(clean_path(cleaned) == cleaned);  // idempotent
  BERTH_FUZZ_CHECK(cleaned.front() != '/');

  if (auto ign = DockerIgnore::parse(text)) {
    const std::string paths[] = {std::string(line), cleaned,      "a", "a/b/c.txt", ".git",
                                 "node_modules/x",  "Dockerfile", ".", ""};
    for (const auto& p : paths) {
      (void)ign->excluded(p);
      (void)ign->may_reinclude_below(p);
    }
    BERTH_FUZZ_CHECK(!ign->excluded(""));
    BERTH_FUZZ_CHECK(!ign->excluded("."));
  }
  // Each line of the rest as a glob against the first line, both matcher modes.
  while (!rest.empty()) {
    std::string_view tail;
    std::string_view pattern = berth::fuzz::first_line(rest, tail);
    (void)path_match(pattern, line, false);
    (void)path_match(pattern, line, true);
    rest = tail;
  }
  return 0;
}
