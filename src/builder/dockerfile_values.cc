// SPDX-License-Identifier: Apache-2.0
// Dockerfile values: stage references, ports, durations, signals, remote sources. See dockerfile.h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/dockerfile_internal.h"

namespace berth::builder {

using namespace detail;

// ---- stage references ---------------------------------------------------------------------

StageRef resolve_base(const Dockerfile& dockerfile, size_t current, std::string_view base) {
  StageRef ref;
  std::string name = lower(base);
  for (size_t j = 0; j < current && j < dockerfile.stages.size(); ++j) {
    if (!dockerfile.stages[j].name.empty() && dockerfile.stages[j].name == name) {
      ref.stage = j;
      return ref;
    }
  }
  if (name == "scratch") {
    ref.scratch = true;
    return ref;
  }
  ref.image = std::string(base);
  return ref;
}

Result<StageRef> resolve_copy_from(const Dockerfile& dockerfile, size_t current,
                                   std::string_view from) {
  StageRef ref;
  std::string prefix = "COPY --from=";
  prefix += from;
  prefix += ": ";
  if (all_digits(from)) {
    size_t idx = from.size() < 6 ? std::stoul(std::string(from)) : SIZE_MAX;
    if (idx >= current) {
      std::string m = prefix;
      m += "stage ";
      m += from;
      m += current == 0 ? " does not come before this one (this is the first stage)"
                        : " does not come before this one (earlier stages are 0 to ";
      if (current != 0) {
        m += std::to_string(current - 1);
        m += ')';
      }
      return Error(Errc::InvalidArgument, std::move(m));
    }
    ref.stage = idx;
    return ref;
  }
  std::string name = lower(from);
  for (size_t j = 0; j < dockerfile.stages.size(); ++j) {
    if (dockerfile.stages[j].name.empty() || dockerfile.stages[j].name != name) {
      continue;
    }
    if (j < current) {
      ref.stage = j;
      return ref;
    }
    std::string m = prefix;
    if (j == current) {
      m += "a stage cannot copy from itself";
    } else {
      m += "stage ";
      m += name;
      m += " is defined later; copy only from earlier stages";
    }
    return Error(Errc::InvalidArgument, std::move(m));
  }
  ref.image = std::string(from);
  return ref;
}

// ---- values ---------------------------------------------------------------------------

std::string PortSpec::str() const {
  std::string s = std::to_string(first);
  if (last != first) {
    s += '-';
    s += std::to_string(last);
  }
  s += '/';
  s += protocol;
  return s;
}

Result<PortSpec> parse_port(std::string_view text) {
  PortSpec p;
  std::string_view t = text;
  size_t slash = t.find('/');
  p.protocol = "tcp";
  if (slash != std::string_view::npos) {
    p.protocol = lower(t.substr(slash + 1));
    t = t.substr(0, slash);
    if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp") {
      std::string m = quoted(text);
      m += ": protocol must be tcp, udp or sctp";
      return Error(Errc::InvalidArgument, std::move(m));
    }
  }
  auto number = [](std::string_view s) -> std::optional<uint16_t> {
    if (!all_digits(s) || s.size() > 5) {
      return std::nullopt;
    }
    unsigned long v = std::stoul(std::string(s));
    if (v < 1 || v > 65535) {
      return std::nullopt;
    }
    return static_cast<uint16_t>(v);
  };
  size_t dash = t.find('-');
  auto a = number(t.substr(0, dash));
  auto b = dash == std::string_view::npos ? a : number(t.substr(dash + 1));
  if (!a || !b || *b < *a) {
    std::string m = quoted(text);
    m += ": not a port (1-65535), a range such as 8000-8010, with an optional /tcp or /udp";
    return Error(Errc::InvalidArgument, std::move(m));
  }
  p.first = *a;
  p.last = *b;
  return p;
}

Result<int64_t> parse_duration(std::string_view text) {
  std::string_view s = text;
  auto bad = [&text] {
    std::string m = "invalid duration ";
    m += quoted(text);
    m += " (use e.g. 30s, 1m30s, 500ms)";
    return Error(Errc::InvalidArgument, std::move(m));
  };
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    return int64_t{0};
  }
  if (s.empty()) {
    return bad();
  }
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && is_digit(s[i])) {
      ++i;
    }
    size_t int_len = i;
    size_t frac_len = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && is_digit(s[i])) {
        ++i;
        ++frac_len;
      }
    }
    if (int_len == 0 && frac_len == 0) {
      return bad();
    }
    std::string digits = "0";
    digits += s.substr(0, i);
    // strtold, not stold: thousands of digits overflow (or underflow) a long double, and stold
    // throws out_of_range for that. strtold gives inf (refused below as too long) or ~0.
    long double number = std::strtold(digits.c_str(), nullptr);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !is_digit(s[u]) && s[u] != '.') {
      ++u;
    }
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return bad();
    }
    total += number * scale;
  }
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return bad();
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return neg ? -ns : ns;
}

Result<std::string> parse_signal(std::string_view text) {
  std::string_view t = trim(text);
  auto bad = [&text] {
    std::string m = "invalid signal ";
    m += quoted(text);
    m += " (use a name such as SIGTERM or a number)";
    return Error(Errc::InvalidArgument, std::move(m));
  };
  if (all_digits(t)) {
    if (t.size() > 2 || std::stoi(std::string(t)) < 1 || std::stoi(std::string(t)) > 64) {
      return bad();
    }
    return std::to_string(std::stoi(std::string(t)));
  }
  std::string up = upper(t);
  if (up.rfind("SIG", 0) == 0) {
    up = up.substr(3);
  }
  static constexpr const char* kNames[] = {
      "ABRT", "ALRM",   "BUS",  "CHLD",   "CLD",   "CONT", "FPE",  "HUP",   "ILL",
      "INT",  "IO",     "IOT",  "KILL",   "PIPE",  "POLL", "PROF", "PWR",   "QUIT",
      "SEGV", "STKFLT", "STOP", "SYS",    "TERM",  "TRAP", "TSTP", "TTIN",  "TTOU",
      "URG",  "USR1",   "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};
  bool known = std::find(std::begin(kNames), std::end(kNames), up) != std::end(kNames);
  if (!known) {
    for (const char* base : {"RTMIN+", "RTMAX-"}) {
      std::string_view b = base;
      if (up.size() > b.size() && up.compare(0, b.size(), b) == 0) {
        std::string_view n = std::string_view(up).substr(b.size());
        known = all_digits(n) && n.size() <= 2 && std::stoi(std::string(n)) >= 1 &&
                std::stoi(std::string(n)) <= 15;
      }
    }
  }
  if (!known) {
    return bad();
  }
  std::string out = "SIG";
  out += up;
  return out;
}

bool is_remote_source(std::string_view source) {
  return starts_with_ci(source, "http://") || starts_with_ci(source, "https://") ||
         starts_with_ci(source, "git://") || starts_with_ci(source, "ssh://") ||
         starts_with_ci(source, "git@");
}

}  // namespace berth::builder
