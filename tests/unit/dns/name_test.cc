// SPDX-License-Identifier: Apache-2.0
// Wire names: text ⇄ wire round trips, RFC 1035 escapes, every rule name_from_text enforces,
// and the case-insensitive helpers the zone lookup relies on.
#include "dns/name.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

using ::testing::HasSubstr;

using namespace std::string_literals;

TEST(DnsName, FromTextToWire) {
  struct Case {
    std::string text;
    std::string origin;
    std::string wire;
  };
  const Case cases[] = {
      {"www.example.com.", "", "\3www\7example\3com\0"s},
      {"www.example.com", "", "\3www\7example\3com\0"s},  // empty origin: absolute
      {"www", "\7example\3com\0"s, "\3www\7example\3com\0"s},
      {"a.b", "\3com\0"s, "\1a\1b\3com\0"s},
      {"@", "\7example\3com\0"s, "\7example\3com\0"s},
      {".", "\3com\0"s, "\0"s},
      {"WwW.Example.COM.", "", "\3WwW\7Example\3COM\0"s},  // case kept
      {"a\\.b.c.", "", "\3a.b\1c\0"s},
      {"\\065\\000x.", "", "\3A\0x\0"s},
      {"\\@.", "", "\1@\0"s},
      {"*.example.", "", "\1*\7example\0"s},
      {"_sip._tcp.example.", "", "\4_sip\4_tcp\7example\0"s},
  };
  for (const auto& c : cases) {
    auto n = name_from_text(c.text, c.origin);
    ASSERT_TRUE(n) << c.text << ": " << n.error().message();
    EXPECT_EQ(*n, c.wire) << c.text;
  }
}

TEST(DnsName, FromTextErrors) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "empty name"},
      {"a..b", "empty label"},
      {".a", "empty label"},
      {"..", "empty label"},
      {std::string(64, 'a') + ".com", "label over 63 bytes"},
      {"a\\", "bad escape"},
      {"a\\12", "bad escape"},
      {"a\\1x2", "bad escape"},
      {"a\\256", "bad escape"},
  };
  for (const auto& c : cases) {
    auto n = name_from_text(c.text);
    ASSERT_FALSE(n) << c.text;
    EXPECT_EQ(n.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(n.error().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(DnsName, LengthLimits) {
  // 63-byte labels are fine; four of them plus the root byte make 257 bytes: too long.
  std::string l63(63, 'x');
  std::string ok_text = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'y') + ".";
  auto ok_name = name_from_text(ok_text);
  ASSERT_TRUE(ok_name) << ok_name.error().message();
  EXPECT_EQ(ok_name->size(), 255u);
  auto too_long = name_from_text(l63 + "." + l63 + "." + l63 + "." + std::string(62, 'y') + ".");
  ASSERT_FALSE(too_long);
  EXPECT_THAT(too_long.error().message(), HasSubstr("name over 255 bytes"));
  // The origin counts too.
  std::string origin = *name_from_text(l63 + "." + l63 + "." + l63 + ".");
  auto rel = name_from_text(std::string(62, 'y'), origin);
  ASSERT_FALSE(rel);
  EXPECT_THAT(rel.error().message(), HasSubstr("name over 255 bytes"));
}

TEST(DnsName, ToTextAndApi) {
  struct Case {
    std::string wire;
    std::string text;
    std::string api;
  };
  const Case cases[] = {
      {"\0"s, ".", ""},
      {"\3www\7example\3com\0"s, "www.example.com.", "www.example.com"},
      {"\3a.b\1c\0"s, "a\\.b.c.", "a\\.b.c"},
      {"\3a b\0"s, "a\\032b.", "a\\032b"},
      {"\2\x01\xff\0"s, "\\001\\255.", "\\001\\255"},
      {"\3\"x;\0"s, "\\\"x\\;.", "\\\"x\\;"},
      {"\1*\4_tcp\3Foo\0"s, "*._tcp.Foo.", "*._tcp.Foo"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(name_to_text(c.wire), c.text);
    EXPECT_EQ(name_to_api(c.wire), c.api);
    // What is printed parses back to the same bytes.
    auto back = name_from_text(c.text);
    ASSERT_TRUE(back) << c.text;
    EXPECT_EQ(*back, c.wire) << c.text;
  }
}

TEST(DnsName, LowerLabelsParent) {
  std::string w = wire("WWW.Example.COM.");
  EXPECT_EQ(name_lower(w), "\3www\7example\3com\0"s);
  EXPECT_EQ(name_labels(w), 3);
  EXPECT_EQ(name_labels("\0"s), 0);
  EXPECT_EQ(name_parent(w), "\7Example\3COM\0"s);
  EXPECT_EQ(name_parent(name_parent(name_parent(w))), "\0"s);
  EXPECT_EQ(name_parent("\0"s), "\0"s);
}

TEST(DnsName, WithinAndEqual) {
  struct Case {
    std::string name;
    std::string ancestor;
    bool within;
  };
  const Case cases[] = {
      {"www.example.com.", "example.com.", true}, {"WWW.EXAMPLE.COM.", "example.com.", true},
      {"example.com.", "example.com.", true},     {"example.com.", ".", true},
      {"wwwexample.com.", "example.com.", false},  // not a label boundary
      {"xample.com.", "example.com.", false},     {"example.com.", "www.example.com.", false},
      {"example.org.", "example.com.", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(name_is_within(wire(c.name), wire(c.ancestor)), c.within)
        << c.name << " within " << c.ancestor;
  }
  EXPECT_TRUE(name_equal(wire("Example.COM."), wire("example.com.")));
  EXPECT_FALSE(name_equal(wire("example.com."), wire("example.co.")));
  EXPECT_FALSE(name_equal(wire("a.example."), wire("b.example.")));
}

TEST(DnsName, Check) {
  auto n = name_check("\3www\7example\0trailing"s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 13u);
  EXPECT_EQ(*name_check("\0"s), 1u);
  const std::string bad[] = {
      ""s,
      "\3www"s,                                // no root
      "\5ab\0"s,                               // label runs past the end
      "\x40"s + std::string(64, 'a') + "\0"s,  // 64-byte label
      "\xc0\x0c"s,                             // a pointer is not a wire name
  };
  for (const auto& b : bad) {
    EXPECT_FALSE(name_check(b)) << b.size();
  }
  std::string long_name;
  for (int i = 0; i < 4; ++i) {
    long_name += '\77' + std::string(63, 'a');
  }
  long_name += '\0';
  auto too_long = name_check(long_name);
  ASSERT_FALSE(too_long);
  EXPECT_THAT(too_long.error().message(), HasSubstr("255"));
}

}  // namespace
}  // namespace berth::dns
