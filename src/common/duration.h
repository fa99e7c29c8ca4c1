// SPDX-License-Identifier: Apache-2.0
// The one parser for durations people type: config values, service fields, CLI flags.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"

namespace berth {

/// "250ms", "90s", "15m", "1h", "2d", or a plain number of seconds. InvalidArgument naming the
/// text when malformed ("invalid duration '5x' (try 90s, 15m, 1h, 2d)") or over ten years.
Result<std::chrono::milliseconds> parse_duration(const std::string& text);

/// An age or wait for people to read, in parse_duration's units: "45s" under two minutes,
/// "12m" under two hours, else "5h".
std::string format_age(int64_t seconds);

}  // namespace berth
