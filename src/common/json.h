// SPDX-License-Identifier: Apache-2.0
// nlohmann-json, plus a non-throwing parse for request paths.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/result.h"

namespace berth {
using Json = nlohmann::json;

/// Parses text; malformed input is InvalidArgument naming what was wrong. Never throws.
Result<Json> parse_json(std::string_view text, const char* what = "JSON");
}  // namespace berth
