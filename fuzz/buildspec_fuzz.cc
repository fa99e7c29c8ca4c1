// SPDX-License-Identifier: Apache-2.0
// buildspec.yml from a build's checkout (yaml-cpp behind parse_buildspec).
#include <string>

#include "builder/service_buildspec.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(buildspec) {
  berth::fuzz::quiet_logs();
  std::string text(berth::fuzz::as_view(data, size));
  if (auto spec = berth::builder::parse_buildspec(text)) {
    for (const auto& phase : spec->phases) {
      BERTH_FUZZ_CHECK(!phase.commands.empty());  // phases without commands are left out
    }
  }
  return 0;
}
