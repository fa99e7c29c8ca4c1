// SPDX-License-Identifier: Apache-2.0
// Record sets and change batches as Route 53-shaped JSON: normalisation of names and values,
// round trips, and errors that name the field and the change.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dns/dns.h"

namespace berth::dns {
namespace {

using nlohmann::json;

RecordSet must(const char* text) {
  auto s = record_set_from_json(json::parse(text), "example.com");
  EXPECT_TRUE(s) << text << ": " << (s ? "" : s.error().message());
  return s ? *s : RecordSet{};
}

TEST(DnsRecordsJson, NormalisesNamesAndValues) {
  RecordSet s = must(
      R"({"Name":"WWW.Example.COM.","Type":"mx","TTL":60,
          "ResourceRecords":[{"Value":"10 mail.example.com"},{"Value":"20 mx2.example.net."}]})");
  EXPECT_EQ(s.name, "www.example.com");
  EXPECT_EQ(s.type, "MX");
  EXPECT_EQ(s.ttl, 60u);
  ASSERT_EQ(s.values.size(), 2u);
  // Names in values are absolute with or without the dot (never completed with the zone).
  EXPECT_EQ(s.values[0], "10 mail.example.com.");
  EXPECT_EQ(s.values[1], "20 mx2.example.net.");
  RecordSet no_dot = must(R"({"Name":"www.example.com","Type":"A","TTL":5,
                             "ResourceRecords":[{"Value":"192.0.2.1"}]})");
  EXPECT_EQ(no_dot.name, "www.example.com");
  EXPECT_EQ(no_dot.values, std::vector<std::string>{"192.0.2.1"});
  RecordSet apex = must(R"({"Name":"example.com.","Type":"TXT",
                            "ResourceRecords":[{"Value":"\"v=spf1 -all\""}]})");
  EXPECT_EQ(apex.name, "example.com");
  EXPECT_EQ(apex.ttl, 300u);  // default
  EXPECT_EQ(apex.values, std::vector<std::string>{"\"v=spf1 -all\""});
}

TEST(DnsRecordsJson, RoundTrips) {
  const char* docs[] = {
      R"({"Name":"www.example.com.","Type":"A","TTL":60,"ResourceRecords":[{"Value":"192.0.2.1"}],
          "SetIdentifier":"blue","Weight":10,"HealthCheckId":"hc-1"})",
      R"({"Name":"example.com.","Type":"ALIAS","TTL":30,"AliasTarget":{"Service":"web"}})",
      R"({"Name":"a.example.com.","Type":"ALIAS","TTL":30,
          "AliasTarget":{"DNSName":"www.example.com."}})",
      R"({"Name":"f.example.com.","Type":"AAAA","TTL":30,"ResourceRecords":[{"Value":"2001:db8::1"}],
          "SetIdentifier":"p","Failover":"PRIMARY"})",
      R"({"Name":"m.example.com.","Type":"A","TTL":30,"ResourceRecords":[{"Value":"192.0.2.7"}],
          "SetIdentifier":"m1","MultiValueAnswer":true})",
  };
  for (const char* d : docs) {
    RecordSet s = must(d);
    json back = record_set_to_json(s);
    auto again = record_set_from_json(back, "example.com.");
    ASSERT_TRUE(again) << back.dump() << ": " << again.error().message();
    EXPECT_EQ(*again, s) << back.dump();
    EXPECT_EQ(back["Name"].get<std::string>().back(), '.');
  }
  RecordSet a = must(docs[2]);
  EXPECT_EQ(a.alias_name, "www.example.com");
  EXPECT_TRUE(a.values.empty());
}

struct ErrCase {
  const char* doc;
  const char* error;
};

TEST(DnsRecordsJson, RecordSetErrors) {
  std::string long_txt(302, 'x');  // one quoted 300-byte string
  long_txt.front() = '"';
  long_txt.back() = '"';
  std::string txt_doc = R"({"Name":"t.example.com","Type":"TXT","ResourceRecords":[{"Value":)" +
                        json(long_txt).dump() + "}]}";
  const ErrCase cases[] = {
      {R"({"Name":"www.example.org","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "Name: www.example.org is not within the zone example.com"},
      {R"({"Name":"www","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "Name: www is not within the zone"},
      {R"({"Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}]})", "Name: required"},
      {R"({"Name":"a.example.com","Type":"BOGUS","ResourceRecords":[{"Value":"x"}]})",
       "Type: unsupported record type BOGUS"},
      {R"({"Name":"a.example.com","Type":"A","TTL":-1,"ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "TTL: must be an integer from 0 to 2147483647"},
      {R"({"Name":"a.example.com","Type":"A","TTL":"60","ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "TTL: must be an integer"},
      {R"({"Name":"a.example.com","Type":"A","TTL":2147483648,"ResourceRecords":[{"Value":"1.2.3.4"}]})",
       "TTL: must be an integer"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[]})",
       "ResourceRecords: a non-empty"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[{"Value":"300.0.0.1"}]})",
       "ResourceRecords[0].Value:"},
      {R"({"Name":"a.example.com","Type":"A","Ttl":5,"ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "Ttl: unknown field"},
      {R"({"Name":"a.example.com","Type":"ALIAS","AliasTarget":{"Service":"web","DNSName":"x."}})",
       "AliasTarget: exactly one of Service and DNSName"},
      {R"({"Name":"a.example.com","Type":"A","AliasTarget":{"Service":"web"},
           "ResourceRecords":[{"Value":"192.0.2.1"}]})",
       "AliasTarget: only a set of Type ALIAS"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}],
           "SetIdentifier":"a","Weight":256})",
       "Weight: must be an integer from 0 to 255"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}],
           "SetIdentifier":"a"})",
       "SetIdentifier: needs Weight, Failover or MultiValueAnswer"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}],
           "Weight":3})",
       "SetIdentifier: required with a routing policy"},
      {R"({"Name":"a.example.com","Type":"A","ResourceRecords":[{"Value":"192.0.2.1"}],
           "SetIdentifier":"a","Failover":"primary"})",
       "Failover: PRIMARY or SECONDARY"},
      {txt_doc.c_str(), "TXT string over 255 bytes; split it into several quoted strings"},
  };
  for (const auto& c : cases) {
    auto s = record_set_from_json(json::parse(c.doc), "example.com");
    ASSERT_FALSE(s) << c.doc;
    EXPECT_EQ(s.error().code(), Errc::InvalidArgument);
    EXPECT_NE(s.error().message().find(c.error), std::string::npos)
        << c.doc << " → " << s.error().message();
  }
}

TEST(DnsRecordsJson, TxtSplitIntoStringsIsFine) {
  std::string two(405, 'x');  // two quoted 200-byte strings
  two[0] = '"';
  two[201] = '"';
  two[202] = ' ';
  two[203] = '"';
  for (size_t i = 204; i < 404; ++i) {
    two[i] = 'y';
  }
  two[404] = '"';
  json doc = {{"Name", "t.example.com"},
              {"Type", "TXT"},
              {"ResourceRecords", json::array({{{"Value", two}}})}};
  auto s = record_set_from_json(doc, "example.com");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->values.size(), 1u);
  EXPECT_NE(s->values[0].find(std::string(200, 'y')), std::string::npos);
}

TEST(DnsRecordsJson, ChangeBatch) {
  auto b = parse_change_batch(R"({"Comment":"x","Changes":[
      {"Action":"CREATE","ResourceRecordSet":{"Name":"a.example.com","Type":"A",
        "ResourceRecords":[{"Value":"192.0.2.1"}]}},
      {"Action":"DELETE","ResourceRecordSet":{"Name":"b.example.com.","Type":"TXT","TTL":9,
        "ResourceRecords":[{"Value":"\"hi\""}]}},
      {"Action":"UPSERT","ResourceRecordSet":{"Name":"c.example.com","Type":"CNAME",
        "ResourceRecords":[{"Value":"a.example.com"}]}}]})",
                              "example.com");
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_EQ(b->size(), 3u);
  EXPECT_EQ((*b)[0].action, Change::Action::Create);
  EXPECT_EQ((*b)[1].action, Change::Action::Delete);
  EXPECT_EQ((*b)[1].set.ttl, 9u);
  EXPECT_EQ((*b)[2].action, Change::Action::Upsert);
  EXPECT_EQ((*b)[2].set.values, std::vector<std::string>{"a.example.com."});
}

TEST(DnsRecordsJson, ChangeBatchErrors) {
  const ErrCase cases[] = {
      {"not json", "change batch"},
      {"[]", "a change batch must be an object"},
      {R"({"Changes":[]})", "Changes: a non-empty list"},
      {R"({"Changes":[{"Action":"MERGE","ResourceRecordSet":{}}]})",
       "Changes[0].Action: must be CREATE, UPSERT or DELETE"},
      {R"({"Changes":[{"Action":"CREATE"}]})", "Changes[0].ResourceRecordSet: required"},
      {R"({"Changes":[
          {"Action":"CREATE","ResourceRecordSet":{"Name":"a.example.com","Type":"A",
            "ResourceRecords":[{"Value":"192.0.2.1"}]}},
          {"Action":"CREATE","ResourceRecordSet":{"Name":"b.example.com","Type":"A","TTL":1.5,
            "ResourceRecords":[{"Value":"192.0.2.1"}]}}]})",
       "Changes[1].ResourceRecordSet.TTL: must be an integer"},
      {R"({"Changes":[{"Action":"CREATE","ResourceRecordSet":{"Name":"x.example.net","Type":"A",
            "ResourceRecords":[{"Value":"192.0.2.1"}]}}]})",
       "Changes[0].ResourceRecordSet.Name: x.example.net is not within the zone"},
      {R"({"Changes":[{"Action":"CREATE","ResourceRecordSet":[]}]})",
       "Changes[0].ResourceRecordSet: a record set must be an object"},
      {R"({"Changes":[],"Extra":1})", "Extra: unknown field"},
  };
  for (const auto& c : cases) {
    auto b = parse_change_batch(c.doc, "example.com");
    ASSERT_FALSE(b) << c.doc;
    EXPECT_NE(b.error().message().find(c.error), std::string::npos)
        << c.doc << " → " << b.error().message();
  }
}

TEST(DnsRecordsJson, BatchAppliesToNewZone) {
  auto b = parse_change_batch(R"({"Changes":[
      {"Action":"UPSERT","ResourceRecordSet":{"Name":"example.com","Type":"ALIAS","TTL":60,
        "AliasTarget":{"Service":"Web"}}}]})",
                              "example.com.");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ((*b)[0].set.alias_service, "web");
  auto z = apply_changes(new_zone("example.com", {"ns1.example.com"}, 1), *b);
  ASSERT_TRUE(z) << z.error().message();
  EXPECT_EQ(z->serial, 2u);
}

}  // namespace
}  // namespace berth::dns
