// SPDX-License-Identifier: Apache-2.0
// berth's routing-policy comments in zone files (see zonefile_internal.h): the one place that
// knows their syntax, so that what export_zone_file writes parse_zone_file reads back.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

#include "common/ascii.h"
#include "dns/zonefile_internal.h"

namespace berth::dns::zonefile {

using ascii::upper;
namespace {

Error line_error(int line, std::string_view what) {
  return make_error(Errc::InvalidArgument, fmt::format("line {}: {}", line, what));
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// A berth: comment value: bare when it is plain, else quoted with \" \\ and \DDD.
std::string comment_value(std::string_view v) {
  bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '/' || c == '@' || c == '+';
  });
  if (plain) {
    return std::string(v);
  }
  std::string out = "\"";
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\{:03d}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

std::string policy_comment(const RecordSet& s) {
  std::string c;
  auto add = [&](std::string_view kv) {
    c += c.empty() ? " ; berth: " : " ";
    c += kv;
  };
  if (!s.set_identifier.empty()) {
    add("set=" + comment_value(s.set_identifier));
  }
  if (s.weight) {
    add(fmt::format("weight={}", *s.weight));
  }
  if (!s.failover.empty()) {
    add("failover=" + comment_value(s.failover));
  }
  if (s.multivalue) {
    add("multivalue");
  }
  if (!s.health_check.empty()) {
    add("health=" + comment_value(s.health_check));
  }
  return c;
}

/// key=value pairs; a value may be quoted with \" \\ and \DDD escapes.
Result<Policy> parse_berth_comment(std::string_view s, int line) {
  Policy p;
  std::vector<std::string> seen;
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_blank(s[i])) {
      ++i;
    }
    if (i >= s.size()) {
      break;
    }
    size_t k = i;
    while (i < s.size() && s[i] != '=' && !is_blank(s[i])) {
      ++i;
    }
    std::string key(s.substr(k, i - k));
    std::optional<std::string> value;
    if (i < s.size() && s[i] == '=') {
      ++i;
      std::string v;
      if (i < s.size() && s[i] == '"') {
        ++i;
        while (true) {
          if (i >= s.size()) {
            return line_error(line, fmt::format("berth: {}= has an unclosed quote", key));
          }
          char c = s[i++];
          if (c == '"') {
            break;
          }
          if (c == '\\' && i < s.size()) {
            if (i + 2 < s.size() && is_digit(s[i]) && is_digit(s[i + 1]) && is_digit(s[i + 2])) {
              int d = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
              if (d > 255) {
                return line_error(line, fmt::format("berth: {}= has a bad escape", key));
              }
              c = static_cast<char>(d);
              i += 3;
            } else {
              c = s[i++];
            }
          }
          v += c;
        }
        if (i < s.size() && !is_blank(s[i])) {
          return line_error(line, fmt::format("berth: {}= has text after its closing quote", key));
        }
      } else {
        size_t vs = i;
        while (i < s.size() && !is_blank(s[i])) {
          ++i;
        }
        v = std::string(s.substr(vs, i - vs));
      }
      value = std::move(v);
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return line_error(line, fmt::format("berth: {} given twice", key));
    }
    seen.push_back(key);
    auto need_value = [&]() -> Status {
      if (!value || value->empty()) {
        return line_error(line, fmt::format("berth: {} needs a value ({}=...)", key, key));
      }
      return ok();
    };
    if (key == "set") {
      BERTH_TRY(need_value());
      p.set = *value;
    } else if (key == "health") {
      BERTH_TRY(need_value());
      p.health = *value;
    } else if (key == "weight") {
      BERTH_TRY(need_value());
      uint32_t w = 0;
      auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), w);
      if (ec != std::errc() || end != value->data() + value->size() || w > 255) {
        return line_error(line, fmt::format("berth: weight \"{}\" is not a number 0..255", *value));
      }
      p.weight = w;
    } else if (key == "failover") {
      BERTH_TRY(need_value());
      std::string f = upper(*value);
      if (f != "PRIMARY" && f != "SECONDARY") {
        return line_error(
            line, fmt::format("berth: failover \"{}\" is not PRIMARY or SECONDARY", *value));
      }
      p.failover = f;
    } else if (key == "multivalue") {
      if (value && *value != "true") {
        return line_error(line, "berth: multivalue takes no value");
      }
      p.multivalue = true;
    } else {
      return line_error(
          line, fmt::format("unknown berth: key \"{}\" (set, weight, failover, multivalue, health)",
                            key));
    }
  }
  if (!p.set && (p.weight || p.failover || p.multivalue)) {
    return line_error(line, "berth: a routing policy needs set=<identifier>");
  }
  return p;
}

}  // namespace berth::dns::zonefile
