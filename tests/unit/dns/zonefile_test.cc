// SPDX-License-Identifier: Apache-2.0
// BIND zone files in and out (src/dns/zonefile.cc): every syntax feature, every error with its
// line number, export → import → export byte-identical (berth's ALIAS and routing-policy
// comments included), and NSD 4 loading what berth exports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dns/dns.h"
#include "support/harness.h"

namespace berth::dns {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Four lines every feature case starts with (unless it brings its own SOA).
constexpr char kHead[] =
    "$TTL 3600\n"
    "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n"
    "@ IN NS ns1\n"
    "ns1 IN A 192.0.2.53\n";

bool is_head_set(const RecordSet& s) {
  return (s.name == "example.com" && (s.type == "SOA" || s.type == "NS")) ||
         (s.name == "ns1.example.com" && s.type == "A");
}

// One line per set: "name TYPE ttl v1|v2 [alias...] [policy...]".
std::string describe(const ZoneData& z, bool with_head) {
  std::string out;
  for (const auto& s : z.sets) {
    if (!with_head && is_head_set(s)) {
      continue;
    }
    out += s.name + " " + s.type + " " + std::to_string(s.ttl);
    for (size_t i = 0; i < s.values.size(); ++i) {
      out += (i == 0 ? " " : "|") + s.values[i];
    }
    if (!s.alias_name.empty()) {
      out += " alias_name=" + s.alias_name;
    }
    if (!s.alias_service.empty()) {
      out += " alias_service=" + s.alias_service;
    }
    if (!s.set_identifier.empty()) {
      out += " set=" + s.set_identifier;
    }
    if (s.weight) {
      out += " weight=" + std::to_string(*s.weight);
    }
    if (!s.failover.empty()) {
      out += " failover=" + s.failover;
    }
    if (s.multivalue) {
      out += " multivalue";
    }
    if (!s.health_check.empty()) {
      out += " health=" + s.health_check;
    }
    out += "\n";
  }
  return out;
}

struct Case {
  const char* name;
  const char* text;
  const char* want;  // describe() of the sets other than the head's
  bool head = true;  // prepend kHead
};

TEST(DnsZoneFile, ParsesEverySyntaxFeature) {
  const Case cases[] = {
      {"relative_and_absolute_names", "www IN A 192.0.2.1\nmail.example.com. IN A 192.0.2.2\n",
       "mail.example.com A 3600 192.0.2.2\nwww.example.com A 3600 192.0.2.1\n"},
      {"at_is_the_origin", "@ IN MX 10 mail\nmail IN A 192.0.2.2\n",
       "example.com MX 3600 10 mail.example.com.\nmail.example.com A 3600 192.0.2.2\n"},
      {"blank_owner_is_the_previous_owner",
       "www IN A 192.0.2.1\n    IN A 192.0.2.2\n\tIN AAAA 2001:db8::1\n",
       "www.example.com A 3600 192.0.2.1|192.0.2.2\nwww.example.com AAAA 3600 2001:db8::1\n"},
      {"origin_absolute_and_relative",
       "$ORIGIN sub.example.com.\nhost IN CNAME target\n$ORIGIN example.com.\n$ORIGIN dev\n"
       "box IN A 192.0.2.9\n",
       "box.dev.example.com A 3600 192.0.2.9\nhost.sub.example.com CNAME 3600 "
       "target.sub.example.com.\n"},
      {"origin_keeps_the_previous_owner",
       "www IN A 192.0.2.1\n$ORIGIN other.example.com.\n IN A 192.0.2.2\n",
       "www.example.com A 3600 192.0.2.1|192.0.2.2\n"},
      {"ttl_units",
       "a 1h30m IN A 192.0.2.1\nb 2d IN A 192.0.2.2\nc 1w IN A 192.0.2.3\nd 90s IN A "
       "192.0.2.4\ne 1H IN A 192.0.2.5\nf 1w2d3h4m5s IN A 192.0.2.6\n",
       "a.example.com A 5400 192.0.2.1\nb.example.com A 172800 192.0.2.2\nc.example.com A 604800 "
       "192.0.2.3\nd.example.com A 90 192.0.2.4\ne.example.com A 3600 192.0.2.5\nf.example.com A "
       "788645 192.0.2.6\n"},
      {"class_and_ttl_in_either_order_or_absent",
       "a IN 60 A 192.0.2.1\nb 60 IN A 192.0.2.2\nc A 192.0.2.3\nd in 60 a 192.0.2.4\ne 61 A "
       "192.0.2.5\n",
       "a.example.com A 60 192.0.2.1\nb.example.com A 60 192.0.2.2\nc.example.com A 3600 "
       "192.0.2.3\nd.example.com A 60 192.0.2.4\ne.example.com A 61 192.0.2.5\n"},
      {"ttl_directive_changes_midway", "a IN A 192.0.2.1\n$TTL 5m\nb IN A 192.0.2.2\n",
       "a.example.com A 3600 192.0.2.1\nb.example.com A 300 192.0.2.2\n"},
      {"without_ttl_directive_the_previous_ttl",
       "@ 7200 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\nns1 60 IN A "
       "192.0.2.53\nwww IN A 192.0.2.1\n",
       "example.com NS 7200 ns1.example.com.\nexample.com SOA 7200 ns1.example.com. "
       "hostmaster.example.com. 1 7200 900 1209600 300\nns1.example.com A 60 "
       "192.0.2.53\nwww.example.com A 60 192.0.2.1\n",
       false},
      {"parentheses_and_comments_inside",
       "$TTL 1h\n@ IN SOA ns1.example.com. hostmaster.example.com. (\n  2024010101 ; serial\n"
       "  7200 ; refresh\n  900 1209600\n  300 ) ; minimum\n@ IN NS ns1\nns1 IN A 192.0.2.53\n",
       "example.com NS 3600 ns1.example.com.\nexample.com SOA 3600 ns1.example.com. "
       "hostmaster.example.com. 2024010101 7200 900 1209600 300\nns1.example.com A 3600 "
       "192.0.2.53\n",
       false},
      {"comments_and_blank_lines",
       "; a comment line\n\n   ; indented comment\nwww IN A 192.0.2.1 ; trailing comment\n",
       "www.example.com A 3600 192.0.2.1\n"},
      {"quoted_strings_with_semicolons_and_escapes",
       "txt IN TXT \"v=spf1 -all; ok\" \"say \\\"hi\\\"\" bare\n",
       "txt.example.com TXT 3600 \"v=spf1 -all; ok\" \"say \\\"hi\\\"\" \"bare\"\n"},
      {"txt_strings_across_lines", "txt IN TXT ( \"part one\"\n  \"part two\" )\n",
       "txt.example.com TXT 3600 \"part one\" \"part two\"\n"},
      {"names_and_types_are_case_insensitive", "WWW in a 192.0.2.1\nwww IN A 192.0.2.2\n",
       "www.example.com A 3600 192.0.2.1|192.0.2.2\n"},
      {"duplicate_records_are_dropped", "www IN A 192.0.2.1\nwww IN A 192.0.2.1\n",
       "www.example.com A 3600 192.0.2.1\n"},
      {"escaped_owner_and_wildcard", "a\\.b IN A 192.0.2.1\n*.dev IN A 192.0.2.2\n",
       "a\\.b.example.com A 3600 192.0.2.1\n*.dev.example.com A 3600 192.0.2.2\n"},
      {"every_type_normalised",
       "@ IN CAA 0 issue \"letsencrypt.org\"\n@ IN MX 10 mail\n_sip._tcp IN SRV 0 5 5060 sip\n"
       "1.2 IN PTR host.example.org.\nalias IN CNAME www\nsub IN NS ns.sub\nns.sub IN AAAA "
       "2001:DB8:0:0::1\n",
       "example.com MX 3600 10 mail.example.com.\nexample.com CAA 3600 0 issue "
       "\"letsencrypt.org\"\n1.2.example.com PTR 3600 host.example.org.\n_sip._tcp.example.com "
       "SRV 3600 0 5 5060 sip.example.com.\nalias.example.com CNAME 3600 www.example.com.\n"
       "sub.example.com NS 3600 ns.sub.example.com.\nns.sub.example.com AAAA 3600 "
       "2001:db8::1\n"},
      {"canonical_order",
       "c IN A 192.0.2.3\na.b IN A 192.0.2.4\nB IN A 192.0.2.2\na IN A 192.0.2.1\n",
       "a.example.com A 3600 192.0.2.1\nb.example.com A 3600 192.0.2.2\na.b.example.com A 3600 "
       "192.0.2.4\nc.example.com A 3600 192.0.2.3\n"},
      {"crlf_line_ends", "www IN A 192.0.2.1\r\nwww IN TXT \"x\"\r\n",
       "www.example.com A 3600 192.0.2.1\nwww.example.com TXT 3600 \"x\"\n"},
      {"alias_to_a_name_and_a_service",
       "@ 60 IN ALIAS service:web\nwww IN ALIAS lb.example.com.\napi IN ALIAS lb\nlb IN A "
       "192.0.2.7\n",
       "example.com ALIAS 60 alias_service=web\napi.example.com ALIAS 3600 "
       "alias_name=lb.example.com\nlb.example.com A 3600 192.0.2.7\nwww.example.com ALIAS 3600 "
       "alias_name=lb.example.com\n"},
      {"alias_to_a_name_that_reads_like_a_service",  // exported as service\058web...
       "www IN ALIAS Service:web.example.com.\n",
       "www.example.com ALIAS 3600 alias_name=service:web.example.com\n"},
      {"weighted_sets_in_berth_comments",
       "www 60 IN A 192.0.2.1 ; berth: set=eu weight=10 health=hc1\n"
       "www 60 IN A 192.0.2.3 ; berth: set=eu\n"
       "www 60 IN A 192.0.2.2 ;berth: set=us weight=0\n",
       "www.example.com A 60 192.0.2.1|192.0.2.3 set=eu weight=10 health=hc1\n"
       "www.example.com A 60 192.0.2.2 set=us weight=0\n"},
      {"failover_and_multivalue",
       "f 60 IN A 192.0.2.1 ; berth: set=p failover=primary health=\"check one\"\n"
       "f 60 IN A 192.0.2.2 ; berth: set=s failover=SECONDARY\n"
       "m 60 IN A 192.0.2.3 ; berth: set=\"a \\\"quoted\\\" id\" multivalue\n"
       "m 60 IN A 192.0.2.4 ; berth: set=b multivalue\n",
       "f.example.com A 60 192.0.2.1 set=p failover=PRIMARY health=check one\n"
       "f.example.com A 60 192.0.2.2 set=s failover=SECONDARY\n"
       "m.example.com A 60 192.0.2.3 set=a \"quoted\" id multivalue\n"
       "m.example.com A 60 192.0.2.4 set=b multivalue\n"},
      {"berth_comment_inside_parentheses_and_other_comments_ignored",
       "www 60 IN A ( ; not berth: set=x\n 192.0.2.1 ; berth: set=a weight=5\n)\n",
       "www.example.com A 60 192.0.2.1 set=a weight=5\n"},
      {"alias_with_a_routing_policy",
       "www 60 IN ALIAS service:web ; berth: set=a weight=1\nwww 60 IN ALIAS lb ; berth: set=b "
       "weight=2\nlb IN A 192.0.2.7\n",
       "lb.example.com A 3600 192.0.2.7\nwww.example.com ALIAS 60 alias_service=web set=a "
       "weight=1\nwww.example.com ALIAS 60 alias_name=lb.example.com set=b weight=2\n"},
  };
  for (const auto& c : cases) {
    std::string text = c.head ? std::string(kHead) + c.text : std::string(c.text);
    auto z = parse_zone_file(text, "example.com");
    ASSERT_TRUE(z) << c.name << ": " << z.error().message();
    EXPECT_EQ(describe(*z, !c.head), c.want) << c.name;
    EXPECT_EQ(z->name, "example.com") << c.name;
    // Whatever parsed exports to a file that parses back to the same zone.
    std::string exported = export_zone_file(*z);
    auto again = parse_zone_file(exported, "example.com");
    ASSERT_TRUE(again) << c.name << ": " << again.error().message() << "\n" << exported;
    EXPECT_EQ(again->sets, z->sets) << c.name << "\n" << exported;
    EXPECT_EQ(export_zone_file(*again), exported) << c.name;
  }
}

TEST(DnsZoneFile, SerialComesFromTheSoa) {
  auto z = parse_zone_file(
      "$TTL 60\n@ SOA ns1 hostmaster 2024123101 1 1 1 1\n@ NS ns1\nns1 A 192.0.2.53\n",
      "Example.COM.");
  ASSERT_TRUE(z) << z.error().message();
  EXPECT_EQ(z->serial, 2024123101u);
  EXPECT_EQ(z->name, "example.com");
}

struct ErrorCase {
  const char* name;
  const char* text;
  const char* want;  // the message starts with it
  bool head = true;
};

TEST(DnsZoneFile, EveryErrorNamesItsLine) {
  // kHead is lines 1-4: a case's first line is line 5.
  const ErrorCase cases[] = {
      {"include_refused", "$INCLUDE other.zone\n", "line 5: $INCLUDE is not supported"},
      {"unknown_directive", "$GENERATE 1-5 host$ A 192.0.2.$\n", "line 5: unknown directive"},
      {"directive_arguments", "$ORIGIN a. b.\n", "line 5: $ORIGIN takes one argument"},
      {"bad_ttl_directive", "$TTL 1x\n", "line 5: bad TTL \"1x\": unknown unit"},
      {"bad_origin", "$ORIGIN a..b.\n", "line 5: bad $ORIGIN"},
      {"ttl_too_large", "www 2147483648 IN A 192.0.2.1\n", "line 5: bad TTL"},
      {"ttl_unit_without_number", "www 1hm IN A 192.0.2.1\n", "line 5: bad TTL"},
      {"ttl_number_after_unit", "www 1h30 IN A 192.0.2.1\n", "line 5: bad TTL"},
      {"two_ttls", "www 60 70 A 192.0.2.1\n", "line 5: a second TTL"},
      {"class_ch", "www CH A 192.0.2.1\n", "line 5: class CH is not supported"},
      {"two_classes", "www IN IN A 192.0.2.1\n", "line 5: class IN given twice"},
      {"unknown_type", "\nwww IN FOO 1\n", "line 6: unknown type \"FOO\""},
      {"unsupported_type", "www IN TYPE1000 \\# 0\n", "line 5: type TYPE1000 is not supported"},
      {"no_type", "www 60 IN\n", "line 5: the record has no type"},
      {"no_data", "www IN A\n", "line 5: the A record has no data"},
      {"bad_data", "www IN A 300.1.1.1\n", "line 5: bad A data \"300.1.1.1\""},
      {"bad_data_on_a_continued_record", "www IN MX (\n 10\n bad..name )\n", "line 5: bad MX data"},
      {"bad_owner", "a..b IN A 192.0.2.1\n", "line 5: bad owner name \"a..b\""},
      {"quoted_owner", "\"www\" IN A 192.0.2.1\n", "line 5: bad owner name"},
      {"outside_the_zone", "www.example.org. IN A 192.0.2.1\n",
       "line 5: www.example.org. is outside the zone example.com."},
      {"unclosed_parenthesis", "www IN TXT ( \"a\"\n \"b\"\n", "line 5: '(' is never closed"},
      {"stray_close", "www IN A 192.0.2.1 )\n", "line 5: ')' without an opening '('"},
      {"nested_parentheses", "www IN TXT ( ( \"a\" ) )\n", "line 5: '(' inside parentheses"},
      {"unclosed_quote", "\n\ntxt IN TXT \"abc\n", "line 7: quoted string not closed"},
      {"unclosed_quote_inside_parentheses", "txt IN TXT (\n \"abc\n)\n",
       "line 6: quoted string not closed"},
      {"backslash_at_line_end", "www\\\n IN A 192.0.2.1\n", "line 5: '\\' at the end of a line"},
      {"control_character", "www IN A 192.0.2.1\x01\n", "line 5: control character 0x01"},
      {"ttl_differs_in_a_set", "www 60 IN A 192.0.2.1\nwww 120 IN A 192.0.2.2\n",
       "line 6: TTL 120 differs from the TTL 60 of www.example.com. A (line 5)"},
      {"second_soa", "@ IN SOA ns2 hostmaster 2 1 1 1 1\n", "line 5: a second SOA record"},
      {"soa_not_at_apex", "sub IN SOA ns1 hostmaster 2 1 1 1 1\n", "line 5: SOA at sub"},
      {"alias_two_targets", "www IN ALIAS a.example.com.\nwww IN ALIAS b.example.com.\n",
       "line 6: www.example.com. ALIAS already has its one ALIAS target (line 5)"},
      {"alias_two_words", "www IN ALIAS a. b.\n", "line 5: ALIAS takes one target"},
      {"alias_empty_service", "www IN ALIAS service:\n", "line 5: ALIAS service: needs"},
      {"berth_unknown_key", "www IN A 192.0.2.1 ; berth: set=a wieght=3\n",
       "line 5: unknown berth: key \"wieght\""},
      {"berth_bad_weight", "www IN A 192.0.2.1 ; berth: set=a weight=256\n",
       "line 5: berth: weight \"256\" is not a number 0..255"},
      {"berth_bad_failover", "www IN A 192.0.2.1 ; berth: set=a failover=third\n",
       "line 5: berth: failover \"third\""},
      {"berth_policy_without_set", "www IN A 192.0.2.1 ; berth: weight=3\n",
       "line 5: berth: a routing policy needs set="},
      {"berth_key_twice", "www IN A 192.0.2.1 ; berth: set=a set=b\n",
       "line 5: berth: set given twice"},
      {"berth_set_without_value", "www IN A 192.0.2.1 ; berth: set weight=1\n",
       "line 5: berth: set needs a value"},
      {"berth_unclosed_quote", "www IN A 192.0.2.1 ; berth: set=\"a weight=1\n",
       "line 5: berth: set= has an unclosed quote"},
      {"berth_empty", "www IN A 192.0.2.1 ; berth:\n", "line 5: empty \"; berth:\" comment"},
      {"berth_comment_alone", "\n; berth: set=a weight=1\n",
       "line 6: a \"; berth:\" comment belongs on a record line"},
      {"berth_comment_on_a_directive", "$TTL 60 ; berth: set=a\n",
       "line 5: a \"; berth:\" comment belongs on a record line"},
      {"two_berth_comments", "www IN A ( ; berth: set=a weight=1\n 192.0.2.1 ; berth: set=b )\n",
       "line 6: a second \"; berth:\" comment in the record of line 5"},
      {"berth_policy_differs",
       "www IN A 192.0.2.1 ; berth: set=a weight=1\nwww IN A 192.0.2.2 ; berth: set=a weight=2\n",
       "line 6: the routing policy differs from that of www.example.com. A set=a (line 5)"},
      {"zone_rule_cname_and_other_data", "a IN A 192.0.2.1\nwww IN CNAME a\nwww IN TXT \"x\"\n",
       "line 6: www.example.com CNAME: a CNAME cannot share a name with other data"},
      {"zone_rule_cname_at_apex_line", "\n\n@ IN CNAME www\n", "line 7: example.com CNAME"},
      {"blank_owner_first", "  IN A 192.0.2.1\n", "line 1: a record starting with a blank", false},
      {"no_ttl_anywhere", "@ IN SOA ns1 hostmaster 1 1 1 1 1\n", "line 1: no TTL", false},
      {"no_soa", "$TTL 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n",
       "line 3: no SOA record at the zone apex example.com.", false},
      {"empty_file", "", "line 1: no SOA record", false},
  };
  for (const auto& c : cases) {
    std::string text = c.head ? std::string(kHead) + c.text : std::string(c.text);
    auto z = parse_zone_file(text, "example.com");
    ASSERT_FALSE(z) << c.name << " parsed:\n" << export_zone_file(*z);
    EXPECT_EQ(z.error().code(), Errc::InvalidArgument) << c.name;
    EXPECT_THAT(z.error().message(), StartsWith(c.want)) << c.name;
  }
}

TEST(DnsZoneFile, RefusesABadZoneName) {
  auto z = parse_zone_file(kHead, "a..b");
  ASSERT_FALSE(z);
  EXPECT_THAT(z.error().message(), HasSubstr("bad zone name"));
}

// Every feature in one zone, written the way people write zone files.
constexpr char kRich[] =
    "; example.com, by hand\n"
    "$ORIGIN example.com.\n"
    "$TTL 1h\n"
    "@   IN SOA ns1 hostmaster ( 2024010101 ; serial\n"
    "            7200 900 1209600 300 )\n"
    "@       NS  ns1\n"
    "        NS  ns2.example.net.\n"
    "        MX  10 mail\n"
    "        TXT \"v=spf1 mx -all\"\n"
    "        CAA 0 issue \"letsencrypt.org\"\n"
    "@   60  ALIAS service:web\n"
    "ns1     A   192.0.2.53\n"
    "mail    A   192.0.2.25\n"
    "        AAAA 2001:db8::25\n"
    "www 60  A   192.0.2.1  ; berth: set=eu weight=10 health=hc-eu\n"
    "www 60  A   192.0.2.2  ; berth: set=us weight=20\n"
    "api 30  ALIAS www.example.com. ; berth: set=primary failover=PRIMARY\n"
    "api 30  ALIAS service:api      ; berth: set=backup failover=SECONDARY\n"
    "mv  60  A   192.0.2.10 ; berth: set=\"one; two\" multivalue\n"
    "docs    CNAME www\n"
    "_https._tcp SRV 0 5 443 www\n"
    "long-txt TXT ( \"a\" \"b\\\"c\" \"d\\\\e\" )\n"
    "a\\.dotted A 192.0.2.99\n"
    "*.apps  A   192.0.2.100\n";

TEST(DnsZoneFile, ExportIsCanonicalAndRoundTrips) {
  auto z = parse_zone_file(kRich, "example.com");
  ASSERT_TRUE(z) << z.error().message();
  std::string first = export_zone_file(*z);
  auto z2 = parse_zone_file(first, "example.com");
  ASSERT_TRUE(z2) << z2.error().message() << "\n" << first;
  EXPECT_EQ(z2->sets, z->sets);
  EXPECT_EQ(z2->serial, 2024010101u);
  EXPECT_EQ(export_zone_file(*z2), first);
  // The layout is part of the contract: readable diffs.
  EXPECT_EQ(first,
            "$ORIGIN example.com.\n"
            "$TTL 300\n"
            "@                       3600    IN SOA    ns1.example.com. hostmaster.example.com. "
            "2024010101 7200 900 1209600 300\n"
            "@                       3600    IN NS     ns1.example.com.\n"
            "@                       3600    IN NS     ns2.example.net.\n"
            "@                       3600    IN MX     10 mail.example.com.\n"
            "@                       3600    IN TXT    \"v=spf1 mx -all\"\n"
            "@                       3600    IN CAA    0 issue \"letsencrypt.org\"\n"
            "@                       60      IN ALIAS  service:web\n"
            "_https._tcp             3600    IN SRV    0 5 443 www.example.com.\n"
            "a\\.dotted               3600    IN A      192.0.2.99\n"
            "api                     30      IN ALIAS  service:api ; berth: set=backup "
            "failover=SECONDARY\n"
            "api                     30      IN ALIAS  www.example.com. ; berth: set=primary "
            "failover=PRIMARY\n"
            "*.apps                  3600    IN A      192.0.2.100\n"
            "docs                    3600    IN CNAME  www.example.com.\n"
            "long-txt                3600    IN TXT    \"a\" \"b\\\"c\" \"d\\\\e\"\n"
            "mail                    3600    IN A      192.0.2.25\n"
            "mail                    3600    IN AAAA   2001:db8::25\n"
            "mv                      60      IN A      192.0.2.10 ; berth: set=\"one; two\" "
            "multivalue\n"
            "ns1                     3600    IN A      192.0.2.53\n"
            "www                     60      IN A      192.0.2.1 ; berth: set=eu weight=10 "
            "health=hc-eu\n"
            "www                     60      IN A      192.0.2.2 ; berth: set=us weight=20\n");
}

TEST(DnsZoneFile, ExportQuotesOddPolicyValues) {
  auto z = parse_zone_file(kHead, "example.com");
  ASSERT_TRUE(z) << z.error().message();
  RecordSet s;
  s.name = "www.example.com";
  s.type = "A";
  s.ttl = 60;
  s.values = {"192.0.2.1"};
  s.set_identifier = "tab\there \"q\" back\\slash";
  s.weight = 1;
  z->sets.push_back(s);
  std::string text = export_zone_file(*z);
  EXPECT_THAT(text, HasSubstr("; berth: set=\"tab\\009here \\\"q\\\" back\\\\slash\" weight=1\n"));
  auto back = parse_zone_file(text, "example.com");
  ASSERT_TRUE(back) << back.error().message() << "\n" << text;
  EXPECT_EQ(back->sets, z->sets);
  EXPECT_EQ(export_zone_file(*back), text);
}

TEST(DnsZoneFile, ExportUsesTheSoaMinimumForTtlAndStartsWithTheSoa) {
  ZoneData z = new_zone("example.com", {"ns1.example.com"}, 7);
  std::string text = export_zone_file(z);
  EXPECT_THAT(text, StartsWith("$ORIGIN example.com.\n$TTL "));
  EXPECT_THAT(text.substr(text.find('\n', text.find("$TTL")) + 1), StartsWith("@ "));
  EXPECT_THAT(text.substr(text.find('\n', text.find("$TTL")) + 1), HasSubstr(" IN SOA "));
  auto back = parse_zone_file(text, "example.com");
  ASSERT_TRUE(back) << back.error().message() << "\n" << text;
  EXPECT_EQ(export_zone_file(*back), text);
}

TEST(DnsZoneFile, NsdLoadsTheExport) {
  if (!test::have("nsd-checkzone")) {
    GTEST_SKIP() << "nsd-checkzone is not installed";
  }
  // kRich without berth's extensions (ALIAS, berth: comments); of www's two weighted sets one
  // is kept, as without their set ids they would be one set.
  std::string plain;
  size_t pos = 0;
  std::string rich = kRich;
  while (pos < rich.size()) {
    size_t nl = rich.find('\n', pos);
    std::string line = rich.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find("ALIAS") != std::string::npos || line.starts_with("www 60  A   192.0.2.2")) {
      continue;
    }
    if (auto c = line.find("; berth:"); c != std::string::npos) {
      line = line.substr(0, c);
    }
    plain += line + "\n";
  }
  plain += "sub NS ns.sub\nns.sub A 192.0.2.77\n";  // a delegation with glue
  auto z = parse_zone_file(plain, "example.com");
  ASSERT_TRUE(z) << z.error().message() << "\n" << plain;
  test::TempDir dir;
  std::string path = dir / "example.com.zone";
  test::write_file(path, export_zone_file(*z));
  auto r = test::run("nsd-checkzone example.com " + path);
  EXPECT_EQ(r.code, 0) << r.all() << "\n" << export_zone_file(*z);
  EXPECT_THAT(r.all(), HasSubstr("zone example.com is ok"));
}

}  // namespace
}  // namespace berth::dns
