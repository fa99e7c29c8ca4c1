// SPDX-License-Identifier: Apache-2.0
// Record data: presentation text ⇄ wire for every type berth stores, printed the way dig
// prints it, the RFC 3597 generic form, and every rule rdata_from_text and rdata_check keep.
#include "dns/rdata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "dns/name.h"

namespace berth::dns {
namespace {

using ::testing::HasSubstr;

using namespace std::string_literals;

const std::string kOrigin = "\7example\3com\0"s;

// "s" in double quotes (appending, not operator+(const char*, string&&), which trips GCC 12's
// -Wrestrict false positive).
std::string in_quotes(const std::string& s) {
  std::string out(1, '"');
  out += s;
  out += '"';
  return out;
}

TEST(DnsRdata, TypeNames) {
  struct Case {
    uint16_t type;
    std::string text;
  };
  const Case cases[] = {
      {type::A, "A"},       {type::NS, "NS"},   {type::CNAME, "CNAME"}, {type::SOA, "SOA"},
      {type::PTR, "PTR"},   {type::MX, "MX"},   {type::TXT, "TXT"},     {type::AAAA, "AAAA"},
      {type::SRV, "SRV"},   {type::CAA, "CAA"}, {type::ALIAS, "ALIAS"}, {type::OPT, "OPT"},
      {type::AXFR, "AXFR"}, {type::ANY, "ANY"}, {4321, "TYPE4321"},     {0, "TYPE0"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(type_to_text(c.type), c.text);
    auto back = type_from_text(c.text);
    ASSERT_TRUE(back) << c.text;
    EXPECT_EQ(*back, c.type);
  }
  EXPECT_EQ(*type_from_text("aaaa"), type::AAAA);
  EXPECT_EQ(*type_from_text("type65535"), 65535);
  for (const char* bad : {"", "AAAAA", "TYPE", "TYPE65536", "TYPE-1", "TYPEx", "A "}) {
    auto r = type_from_text(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  }
}

TEST(DnsRdata, SupportedAndCompressing) {
  for (uint16_t t : {type::SOA, type::NS, type::A, type::AAAA, type::CNAME, type::MX, type::TXT,
                     type::SRV, type::CAA, type::PTR, type::ALIAS}) {
    EXPECT_TRUE(type_supported(t)) << t;
  }
  for (uint16_t t : {type::OPT, type::TSIG, type::ANY, uint16_t{99}}) {
    EXPECT_FALSE(type_supported(t)) << t;
  }
  for (uint16_t t : {type::NS, type::CNAME, type::SOA, type::MX, type::PTR}) {
    EXPECT_TRUE(type_compresses(t)) << t;
  }
  for (uint16_t t : {type::SRV, type::TXT, type::A, type::CAA, type::ALIAS}) {
    EXPECT_FALSE(type_compresses(t)) << t;
  }
}

// text → wire (checked against hand-made bytes) → text (as dig prints it) → wire again.
TEST(DnsRdata, RoundTripEveryType) {
  struct Case {
    uint16_t type;
    std::string in;
    std::string wire;
    std::string printed;
  };
  const Case cases[] = {
      {type::A, "192.0.2.1", "\xc0\x00\x02\x01"s, "192.0.2.1"},
      {type::AAAA, "2001:DB8:0:0:0:0:0:1", "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\1",
       "2001:db8::1"},
      {type::AAAA, "::ffff:192.0.2.1", std::string(10, '\0') + "\xff\xff\xc0\x00\x02\x01"s,
       "::ffff:192.0.2.1"},
      {type::NS, "ns1", "\3ns1\7example\3com\0"s, "ns1.example.com."},
      {type::CNAME, "web.example.org.", "\3web\7example\3org\0"s, "web.example.org."},
      {type::PTR, "host.example.com.", "\4host\7example\3com\0"s, "host.example.com."},
      {type::ALIAS, "@", kOrigin, "example.com."},
      {type::ALIAS, "web.service.berth.", "\3web\7service\5berth\0"s, "web.service.berth."},
      {type::MX, "10 mail", "\0\x0a\4mail\7example\3com\0"s, "10 mail.example.com."},
      {type::MX, "0 .", "\0\0\0"s, "0 ."},
      {type::SOA, "ns1 hostmaster 2026120501 3600 900 1209600 300",
       "\3ns1"s + kOrigin + "\12hostmaster" + kOrigin +
           "\x78\xc4\x25\x35\0\0\x0e\x10\0\0\x03\x84\0\x12\x75\0\0\0\x01\x2c"s,
       "ns1.example.com. hostmaster.example.com. 2026120501 3600 900 1209600 300"},
      {type::SOA, "ns1. h. 1 1h 15m 2w 5m",
       "\3ns1\0\1h\0\0\0\0\1\0\0\x0e\x10\0\0\x03\x84"s + "\0\x12\x75\0\0\0\x01\x2c"s,
       "ns1. h. 1 3600 900 1209600 300"},
      {type::TXT, "\"a\" \"b\"", "\1a\1b"s, "\"a\" \"b\""},
      {type::TXT, "v=spf1 -all", "\6v=spf1\4-all"s, "\"v=spf1\" \"-all\""},
      {type::TXT, "\"v=spf1 -all\"", "\13v=spf1 -all"s, "\"v=spf1 -all\""},
      {type::TXT, "\"\"", "\0"s, "\"\""},
      {type::TXT, R"("say \"hi\" \\ \009\255")", "\15say \"hi\" \\ \x09\xff"s,
       R"("say \"hi\" \\ \009\255")"},
      {type::TXT, R"("caf\195\169")", "\5caf\xc3\xa9"s, R"("caf\195\169")"},
      {type::SRV, "10 5 443 host", "\0\x0a\0\x05\x01\xbb\4host"s + kOrigin,
       "10 5 443 host.example.com."},
      {type::CAA, "0 issue \"letsencrypt.org\"", "\0\5issueletsencrypt.org"s,
       "0 issue \"letsencrypt.org\""},
      {type::CAA, "128 iodef mailto:a@example.com", "\x80\5iodefmailto:a@example.com"s,
       "128 iodef \"mailto:a@example.com\""},
      {type::CAA, "0 issue \"\"", "\0\5issue"s, "0 issue \"\""},
      {4321, "\\# 3 abcdef", "\xab\xcd\xef"s, "\\# 3 ABCDEF"},
      {4321, "\\# 4 0a00 0001", "\x0a\0\0\1"s, "\\# 4 0A000001"},
      {4321, "\\# 0", ""s, "\\# 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(type_to_text(c.type) + " " + c.in);
    auto w = rdata_from_text(c.type, c.in, kOrigin);
    ASSERT_TRUE(w) << w.error().message();
    EXPECT_EQ(*w, c.wire);
    EXPECT_TRUE(rdata_check(c.type, *w));
    auto t = rdata_to_text(c.type, *w);
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(*t, c.printed);
    auto again = rdata_from_text(c.type, *t);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, c.wire);
  }
}

TEST(DnsRdata, GenericFormForKnownTypes) {
  // RFC 3597 §5: the generic form is accepted for known types and must be valid for them.
  auto a = rdata_from_text(type::A, "\\# 4 C0000201");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, "\xc0\x00\x02\x01"s);
  auto bad = rdata_from_text(type::A, "\\# 3 C00002");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("4 bytes"));
}

TEST(DnsRdata, FromTextErrors) {
  struct Case {
    uint16_t type;
    std::string in;
    std::string message;
  };
  const Case cases[] = {
      {type::A, "", "empty value"},
      {type::A, "192.0.2", "not an IPv4 address"},
      {type::A, "192.0.2.256", "not an IPv4 address"},
      {type::A, "2001:db8::1", "not an IPv4 address"},
      {type::A, "192.0.2.1 192.0.2.2", "expected 1 field"},
      {type::AAAA, "192.0.2.1", "not an IPv6 address"},
      {type::AAAA, "2001:db8:::1", "not an IPv6 address"},
      {type::NS, "a..b", "empty label"},
      {type::CNAME, "a b", "expected 1 field"},
      {type::MX, "mail", "expected 2 fields"},
      {type::MX, "65536 mail", "preference must be a number 0..65535"},
      {type::MX, "-1 mail", "preference must be a number"},
      {type::MX, "x mail", "preference must be a number"},
      {type::SRV, "1 2 70000 host", "port must be a number 0..65535"},
      {type::SRV, "1 2 3", "expected 4 fields"},
      {type::SOA, "ns1 h 4294967296 1 1 1 1", "serial must be a number 0..4294967295"},
      {type::SOA, "ns1 h 1 1x 1 1 1", "refresh must be a number"},
      {type::SOA, "ns1 h 1 1 1 1", "expected 7 fields"},
      {type::TXT, in_quotes(std::string(256, 'a')), "TXT string over 255 bytes"},
      {type::TXT, std::string(300, 'b'), "TXT string over 255 bytes"},
      {type::TXT, "\"open", "unterminated quoted string"},
      {type::TXT, "\"bad \\25\"", "bad escape"},
      {type::TXT, "\"bad \\300\"", "bad escape"},
      {type::CAA, "256 issue \"x\"", "flags must be a number 0..255"},
      {type::CAA, "0 is-sue \"x\"", "tag must be 1..15 letters and digits"},
      {type::CAA, "0 abcdefghijklmnop \"x\"", "tag must be 1..15 letters and digits"},
      {type::CAA, "0 issue", "expected 3 fields"},
      {4321, "abc", "\\# <length> <hex>"},
      {4321, "\\# 2 abcdef", "length does not match"},
      {4321, "\\# 1 a", "odd number"},
      {4321, "\\# 1 zz", "hex"},
      {4321, "\\#", "length"},
  };
  for (const auto& c : cases) {
    auto w = rdata_from_text(c.type, c.in, kOrigin);
    ASSERT_FALSE(w) << type_to_text(c.type) << " " << c.in;
    EXPECT_EQ(w.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(w.error().message(), HasSubstr(c.message)) << type_to_text(c.type) << " " << c.in;
    // Errors name the type.
    EXPECT_THAT(w.error().message(), HasSubstr(type_to_text(c.type)));
  }
}

TEST(DnsRdata, TxtMaxString) {
  std::string s255(255, 'z');
  auto w = rdata_from_text(type::TXT, in_quotes(s255) + " short");
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->size(), 256u + 6u);
  EXPECT_EQ(static_cast<uint8_t>((*w)[0]), 255);
}

TEST(DnsRdata, WireChecks) {
  struct Case {
    uint16_t type;
    std::string rdata;
    bool valid;
  };
  const Case cases[] = {
      {type::A, "\1\2\3\4"s, true},
      {type::A, "\1\2\3"s, false},
      {type::AAAA, std::string(16, '\1'), true},
      {type::AAAA, std::string(4, '\1'), false},
      {type::NS, "\2ns\0"s, true},
      {type::NS, "\2ns\0\0"s, false},     // trailing bytes
      {type::CNAME, "\xc0\x0c"s, false},  // compressed: not allowed in stored rdata
      {type::PTR, "\5ab\0"s, false},      // label past the end
      {type::MX, "\0\1\0"s, true},
      {type::MX, "\0"s, false},
      {type::SRV, "\0\0\0\0\0\0\0"s, true},
      {type::SRV, "\0\0\0\0\0\0"s, false},
      {type::SOA, "\0\0"s + std::string(20, '\0'), true},
      {type::SOA, "\0\0"s + std::string(19, '\0'), false},
      {type::SOA, "\0\0"s + std::string(21, '\0'), false},
      {type::TXT, "\1a\0"s, true},
      {type::TXT, ""s, false},
      {type::TXT, "\3ab"s, false},
      {type::CAA, "\0\5issue"s, true},
      {type::CAA, "\0\0"s, false},     // empty tag
      {type::CAA, "\0\5iss"s, false},  // tag past the end
      {type::CAA, "\0\3a-b"s, false},  // tag not alphanumeric
      {type::ALIAS, "\3web\0"s, true},
      {4321, "anything"s, true},
  };
  for (const auto& c : cases) {
    auto st = rdata_check(c.type, c.rdata);
    EXPECT_EQ(st.has_value(), c.valid) << type_to_text(c.type) << " size " << c.rdata.size();
    // rdata_to_text refuses exactly what rdata_check refuses.
    EXPECT_EQ(rdata_to_text(c.type, c.rdata).has_value(), c.valid) << type_to_text(c.type);
  }
}

TEST(DnsRdata, UnknownTypePrintsGeneric) {
  auto t = rdata_to_text(type::OPT, "\0\x0a\0\0"s);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, "\\# 4 000A0000");
}

}  // namespace
}  // namespace berth::dns
