// SPDX-License-Identifier: Apache-2.0
// Small builders the DNS unit tests share: a record set, a change, a name's wire form, a
// string's bytes. One copy here keeps the tests' unity batches free of duplicate definitions.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/dns.h"
#include "dns/name.h"

namespace berth::dns::test_util {

inline RecordSet rs(std::string name, std::string type, std::vector<std::string> values,
                    uint32_t ttl = 300) {
  RecordSet s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.values = std::move(values);
  s.ttl = ttl;
  return s;
}

inline Change change(Change::Action a, RecordSet s) {
  Change c;
  c.action = a;
  c.set = std::move(s);
  return c;
}

/// A name's wire form as name_from_text gives it; a name it refuses fails the test.
inline std::string wire(std::string_view text) {
  auto n = name_from_text(text);
  EXPECT_TRUE(n) << text << ": " << n.error().message();
  return n ? *n : std::string();
}

/// The lowercased wire form, as zones key their names.
inline std::string wire_lower(std::string_view text) {
  std::string w = wire(text);
  return w.empty() ? w : name_lower(w);
}

inline std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace berth::dns::test_util
