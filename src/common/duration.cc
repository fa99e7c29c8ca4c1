// SPDX-License-Identifier: Apache-2.0
#include "common/duration.h"

namespace berth {

Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  auto bad = [&] {
    return Error(Errc::InvalidArgument, "invalid duration '" + text + "' (try 90s, 15m, 1h, 2d)");
  };
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0 || text.empty()) {
    return bad();
  }
  std::string number = text.substr(0, digits);
  std::string unit = digits == std::string::npos ? "" : text.substr(digits);
  int64_t mult = 0;
  if (unit == "ms") {
    mult = 1;
  } else if (unit.empty() || unit == "s") {
    mult = 1000;
  } else if (unit == "m") {
    mult = 60 * 1000;
  } else if (unit == "h") {
    mult = 3600 * 1000;
  } else if (unit == "d") {
    mult = 86400 * 1000;
  } else {
    return bad();
  }
  // Ten years is more than any TTL or interval needs, and keeps arithmetic far from overflow.
  constexpr int64_t kMaxMs = 10LL * 365 * 86400 * 1000;
  if (number.size() > 15 || std::stoll(number) * mult > kMaxMs) {
    return Error(Errc::InvalidArgument, "duration '" + text + "' is longer than ten years");
  }
  return std::chrono::milliseconds(std::stoll(number) * mult);
}

std::string format_age(int64_t seconds) {
  if (seconds < 120) {
    return std::to_string(seconds) + "s";
  }
  if (seconds < 7200) {
    return std::to_string(seconds / 60) + "m";
  }
  return std::to_string(seconds / 3600) + "h";
}

}  // namespace berth
