// SPDX-License-Identifier: Apache-2.0
// Private to src/config: what config.cc (loading, the key table) and validate.cc share.
#pragma once

#include <string>

#include "common/result.h"

namespace berth::config {

/// "key: why", as every refused setting is reported.
inline Error bad(const std::string& key, const std::string& why) {
  return Error(Errc::InvalidArgument, key + ": " + why);
}

}  // namespace berth::config
