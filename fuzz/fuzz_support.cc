// SPDX-License-Identifier: Apache-2.0
#include "common/log.h"
#include "fuzz.h"

namespace berth::fuzz {

void quiet_logs() {
  static const bool done = [] {
    log::set_level("off");
    return true;
  }();
  (void)done;
}

}  // namespace berth::fuzz
