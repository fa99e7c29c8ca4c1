// SPDX-License-Identifier: Apache-2.0
// The berthd config file (YAML, config::load_string), then validate() on what it loaded, and the
// value parsers the loader and the environment overrides use.
#include <string>

#include "config/config.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(config) {
  using namespace berth;
  fuzz::quiet_logs();
  std::string text(fuzz::as_view(data, size));
  if (auto cfg = config::load_string(text)) {
    (void)config::validate(*cfg);
  }
  std::string_view rest;
  std::string line(fuzz::first_line(text, rest));
  (void)config::split_host_port(line);
  (void)config::parse_duration(line);
  return 0;
}
