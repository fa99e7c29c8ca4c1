// SPDX-License-Identifier: Apache-2.0
// Zone rules, change batches and the compiled zone: table tests for every rule validate_zone
// keeps, apply_changes' all-or-nothing batches and their error messages, canonical order,
// and the nodes Zone::compile builds (empty non-terminals, delegations).
#include "dns/zone.h"

#include <gtest/gtest.h>

#include "dns/name.h"
#include "dns/rdata.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

ZoneData base() { return new_zone("example.com", {"ns1.example.com", "ns2.example.net."}, 7); }

ZoneData with(std::vector<RecordSet> extra) {
  ZoneData z = base();
  for (auto& s : extra) {
    z.sets.push_back(std::move(s));
  }
  return z;
}

TEST(DnsZone, NewZoneHasSoaAndNs) {
  ZoneData z = base();
  ASSERT_EQ(z.sets.size(), 2u);
  EXPECT_EQ(z.name, "example.com");
  EXPECT_EQ(z.serial, 7u);
  // Canonical order: NS (2) before SOA (6) at the apex.
  EXPECT_EQ(z.sets[0].type, "NS");
  EXPECT_EQ(z.sets[0].ttl, 172800u);
  EXPECT_EQ(z.sets[0].values, (std::vector<std::string>{"ns1.example.com.", "ns2.example.net."}));
  EXPECT_EQ(z.sets[1].type, "SOA");
  EXPECT_EQ(z.sets[1].ttl, 900u);
  EXPECT_EQ(z.sets[1].values[0], "ns1.example.com. hostmaster.example.com. 7 3600 900 1209600 300");
  EXPECT_TRUE(validate_zone(z)) << validate_zone(z).error().message();
}

struct RuleCase {
  const char* what;
  std::vector<RecordSet> extra;
  const char* error;  // substring; "" = valid
};

RecordSet weighted(const char* id, uint32_t w, const char* value) {
  RecordSet s = rs("w.example.com", "A", {value});
  s.set_identifier = id;
  s.weight = w;
  return s;
}

RecordSet alias(std::string name, std::string service) {
  RecordSet s = rs(std::move(name), "ALIAS", {});
  s.alias_service = std::move(service);
  return s;
}

TEST(DnsZone, ValidateTable) {
  std::string long_label(64, 'a');
  std::string long_name;
  for (int i = 0; i < 5; ++i) {
    long_name += std::string(60, 'b') + ".";
  }
  long_name += "example.com";
  RecordSet soa2 = rs("example.com", "SOA",
                      {"ns1.example.com. h.example.com. 1 3600 900 1209600 300",
                       "ns2.example.com. h.example.com. 1 3600 900 1209600 300"});
  RecordSet failover_p = rs("f.example.com", "A", {"192.0.2.1"});
  failover_p.set_identifier = "p";
  failover_p.failover = "PRIMARY";
  RecordSet multi = rs("f.example.com", "A", {"192.0.2.2"});
  multi.set_identifier = "m";
  multi.multivalue = true;
  const RuleCase cases[] = {
      {"plain A", {rs("www.example.com", "A", {"192.0.2.1"})}, ""},
      {"CNAME beside A",
       {rs("www.example.com", "A", {"192.0.2.1"}), rs("www.example.com", "CNAME", {"x.org."})},
       "www.example.com CNAME: a CNAME cannot share a name with other data"},
      {"CNAME at apex",
       {rs("example.com", "CNAME", {"x.org."})},
       "a CNAME cannot be at the zone apex"},
      {"ALIAS at apex", {alias("example.com", "web")}, ""},
      {"ALIAS beside MX",
       {alias("m.example.com", "web"), rs("m.example.com", "MX", {"10 x."})},
       ""},
      {"ALIAS beside A",
       {alias("m.example.com", "web"), rs("m.example.com", "A", {"192.0.2.1"})},
       "m.example.com ALIAS: an ALIAS cannot share a name with A or AAAA data"},
      {"ALIAS beside CNAME",
       {alias("m.example.com", "web"), rs("m.example.com", "CNAME", {"x.org."})},
       "a CNAME cannot share a name"},
      {"TTL too big",
       {rs("www.example.com", "A", {"192.0.2.1"}, 2147483648u)},
       "www.example.com A: TTL 2147483648 is over the maximum"},
      {"TTL at max", {rs("www.example.com", "A", {"192.0.2.1"}, 2147483647u)}, ""},
      {"outside zone",
       {rs("www.example.org", "A", {"192.0.2.1"})},
       "www.example.org A: the name is outside the zone example.com"},
      {"label over 63", {rs(long_label + ".example.com", "A", {"192.0.2.1"})}, "bad name"},
      {"name over 255", {rs(long_name, "A", {"192.0.2.1"})}, "bad name"},
      {"two SOA values", {soa2}, "the SOA has exactly one value"},
      {"SOA below apex",
       {rs("x.example.com", "SOA", {"ns1.example.com. h.example.com. 1 3600 900 1209600 300"})},
       "an SOA may only be at the zone apex"},
      {"glue below delegation",
       {rs("sub.example.com", "NS", {"ns.sub.example.com."}),
        rs("ns.sub.example.com", "A", {"192.0.2.9"})},
       ""},
      {"TXT below delegation",
       {rs("sub.example.com", "NS", {"ns.sub.example.com."}),
        rs("x.sub.example.com", "TXT", {"\"no\""})},
       "x.sub.example.com TXT: only A/AAAA glue may lie below the delegation at sub.example.com"},
      {"MX at delegation",
       {rs("sub.example.com", "NS", {"ns.sub.example.com."}),
        rs("sub.example.com", "MX", {"10 x."})},
       "only NS and A/AAAA glue may sit at a delegation"},
      {"bad A value", {rs("www.example.com", "A", {"999.1.1.1"})}, "www.example.com A: bad value"},
      {"no values", {rs("www.example.com", "A", {})}, "at least one value"},
      {"duplicate value",
       {rs("www.example.com", "A", {"192.0.2.1", "192.0.2.1"})},
       "duplicate value"},
      {"unsupported type", {rs("www.example.com", "HINFO", {"a b"})}, "unsupported record type"},
      {"two sets no identifiers",
       {rs("www.example.com", "A", {"192.0.2.1"}), rs("www.example.com", "A", {"192.0.2.2"})},
       "each need a set identifier"},
      {"weighted pair", {weighted("a", 1, "192.0.2.1"), weighted("b", 2, "192.0.2.2")}, ""},
      {"weight over 255", {weighted("a", 256, "192.0.2.1")}, "weight 256 is over 255"},
      {"duplicate identifier",
       {weighted("a", 1, "192.0.2.1"), weighted("a", 2, "192.0.2.2")},
       "duplicate set identifier"},
      {"mixed policies", {failover_p, multi}, "the same routing policy"},
      {"identifier without policy",
       {[] {
         RecordSet s = rs("i.example.com", "A", {"192.0.2.1"});
         s.set_identifier = "x";
         return s;
       }()},
       "a set identifier needs a routing policy"},
      {"ALIAS without target", {rs("a.example.com", "ALIAS", {})}, "exactly one target"},
  };
  for (const auto& c : cases) {
    auto st = validate_zone(with(c.extra));
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(st) << c.what << ": " << (st ? "" : st.error().message());
    } else {
      ASSERT_FALSE(st) << c.what;
      EXPECT_EQ(st.error().code(), Errc::InvalidArgument) << c.what;
      EXPECT_NE(st.error().message().find(c.error), std::string::npos)
          << c.what << ": " << st.error().message();
    }
  }
}

TEST(DnsZone, ApexNeedsSoaAndNs) {
  ZoneData z = base();
  z.sets.erase(0);  // the NS set
  auto st = validate_zone(z);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "example.com NS: the zone needs an NS set at its apex");
  z = base();
  z.sets.erase(z.sets.size() - 1);  // the SOA
  st = validate_zone(z);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("exactly one SOA"), std::string::npos);
}

TEST(DnsZone, ApplyBumpsSerialAndSorts) {
  ZoneData z = base();
  auto r =
      apply_changes(z, {change(Change::Action::Upsert, rs("www.example.com", "A", {"192.0.2.1"})),
                        change(Change::Action::Create, rs("a.example.com", "TXT", {"\"x\""}))});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->serial, 8u);
  EXPECT_EQ(z.serial, 7u);  // the input is untouched
  ASSERT_EQ(r->sets.size(), 4u);
  EXPECT_EQ(r->sets[1].values[0],
            "ns1.example.com. hostmaster.example.com. 8 3600 900 1209600 300");
  EXPECT_EQ(r->sets[2].name, "a.example.com");
  EXPECT_EQ(r->sets[3].name, "www.example.com");
}

TEST(DnsZone, CanonicalOrderRfc4034) {
  // RFC 4034 §6.1's example, in the order it gives.
  const char* names[] = {"example.com",     "a.example.com",      "yljkjljk.a.example.com",
                         "z.a.example.com", "zabc.a.example.com", "z.example.com",
                         "*.z.example.com"};
  std::vector<Change> cs;
  for (int i = 6; i >= 1; --i) {
    cs.push_back(change(Change::Action::Create, rs(names[i], "TXT", {"\"t\""})));
  }
  auto r = apply_changes(base(), cs);
  ASSERT_TRUE(r) << r.error().message();
  std::vector<std::string> got;
  for (const auto& s : r->sets) {
    got.push_back(s.name + "/" + s.type);
  }
  std::vector<std::string> want = {"example.com/NS", "example.com/SOA"};
  for (int i = 1; i <= 6; ++i) {
    want.push_back(std::string(names[i]) + "/TXT");
  }
  EXPECT_EQ(got, want);
}

struct BatchCase {
  const char* what;
  std::vector<Change> changes;
  const char* error;
};

TEST(DnsZone, ApplyErrorsNameTheChange) {
  ZoneData z = with({rs("www.example.com", "A", {"192.0.2.1"}, 60)});
  using A = Change::Action;
  const BatchCase cases[] = {
      {"CNAME beside A",
       {change(A::Upsert, rs("x.example.com", "A", {"192.0.2.5"})),
        change(A::Upsert, rs("www.example.com", "CNAME", {"x.example.com."}))},
       "change 1 (UPSERT www.example.com CNAME): a CNAME cannot share a name with other data"},
      {"create existing",
       {change(A::Create, rs("www.example.com", "A", {"192.0.2.9"}))},
       "change 0 (CREATE www.example.com A): the record set already exists"},
      {"delete SOA",
       {change(A::Delete,
               rs("example.com", "SOA",
                  {"ns1.example.com. hostmaster.example.com. 7 3600 900 1209600 300"}, 900))},
       "change 0 (DELETE example.com SOA): the SOA cannot be deleted"},
      {"delete apex NS",
       {change(A::Delete,
               rs("example.com", "NS", {"ns1.example.com.", "ns2.example.net."}, 172800))},
       "the apex NS set cannot be deleted"},
      {"delete missing",
       {change(A::Delete, rs("nope.example.com", "A", {"192.0.2.1"}))},
       "change 0 (DELETE nope.example.com A): no such record set"},
      {"delete wrong TTL",
       {change(A::Delete, rs("www.example.com", "A", {"192.0.2.1"}, 61))},
       "DELETE must match the record set exactly"},
      {"outside zone",
       {change(A::Upsert, rs("a.example.com", "A", {"192.0.2.1"})),
        change(A::Upsert, rs("a.example.net", "A", {"192.0.2.1"}))},
       "change 1 (UPSERT a.example.net A): the name is outside the zone example.com"},
      {"TTL",
       {change(A::Upsert, rs("t.example.com", "A", {"192.0.2.1"}, 4000000000u))},
       "change 0 (UPSERT t.example.com A): TTL 4000000000 is over the maximum 2147483647"},
      {"data below new delegation",
       {change(A::Upsert, rs("sub.example.com", "NS", {"ns.other.org."})),
        change(A::Upsert, rs("mx.sub.example.com", "MX", {"10 x.org."}))},
       "change 1 (UPSERT mx.sub.example.com MX): only A/AAAA glue"},
      {"empty batch", {}, "at least one change"},
  };
  for (const auto& c : cases) {
    auto r = apply_changes(z, c.changes);
    ASSERT_FALSE(r) << c.what;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos)
        << c.what << ": " << r.error().message();
  }
}

TEST(DnsZone, DeleteExactAndCnameSwapInOneBatch) {
  ZoneData z = with({rs("www.example.com", "A", {"192.0.2.1", "192.0.2.2"}, 60)});
  using A = Change::Action;
  // Values in another order still match; the CNAME may replace the A in the same batch.
  auto r = apply_changes(
      z, {change(A::Delete, rs("www.example.com", "A", {"192.0.2.2", "192.0.2.1"}, 60)),
          change(A::Create, rs("www.example.com", "CNAME", {"x.org."}))});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->sets.size(), 3u);
  EXPECT_EQ(r->sets[2].type, "CNAME");
}

TEST(DnsZone, CompileBuildsNodes) {
  RecordSet w1 = rs("w.example.com", "A", {"192.0.2.1"});
  w1.set_identifier = "one";
  w1.failover = "PRIMARY";
  w1.health_check = "hc";
  ZoneData z =
      with({rs("a.b.c.example.com", "A", {"192.0.2.1"}),
            rs("sub.example.com", "NS", {"ns.sub.example.com."}),
            rs("ns.sub.example.com", "A", {"192.0.2.2"}), w1, alias("svc.example.com", "web")});
  auto c = Zone::compile(z);
  ASSERT_TRUE(c) << c.error().message();
  const Zone& zone = **c;
  EXPECT_EQ(zone.apex(), wire_lower("example.com."));
  EXPECT_EQ(zone.soa_minimum(), 300u);
  EXPECT_EQ(zone.serial(), 7u);
  ASSERT_NE(zone.find(wire_lower("a.b.c.example.com.")), nullptr);
  const Node* ent = zone.find(wire_lower("b.c.example.com."));
  ASSERT_NE(ent, nullptr);  // empty non-terminal
  EXPECT_TRUE(ent->sets.empty());
  ASSERT_NE(zone.find(wire_lower("c.example.com.")), nullptr);
  EXPECT_EQ(zone.find(wire_lower("d.example.com.")), nullptr);
  const Node* sub = zone.find(wire_lower("sub.example.com."));
  ASSERT_NE(sub, nullptr);
  EXPECT_TRUE(sub->is_delegation);
  EXPECT_FALSE(zone.apex_node().is_delegation);
  ASSERT_EQ(zone.apex_node().sets.size(), 2u);
  EXPECT_EQ(zone.apex_node().sets[0].type, type::NS);
  EXPECT_EQ(zone.apex_node().sets[0].rdata.size(), 2u);
  const Node* w = zone.find(wire_lower("w.example.com."));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->sets[0].policy, CompiledSet::Policy::Failover);
  EXPECT_TRUE(w->sets[0].primary);
  EXPECT_EQ(w->sets[0].health_check, "hc");
  EXPECT_EQ(w->sets[0].rdata[0], std::string("\xC0\x00\x02\x01", 4));
  const Node* svc = zone.find(wire_lower("svc.example.com."));
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->sets[0].type, type::ALIAS);
  EXPECT_EQ(svc->sets[0].alias_service, "web");
  // Invalid data does not compile.
  auto bad = Zone::compile(with({rs("example.com", "CNAME", {"x.org."})}));
  EXPECT_FALSE(bad);
}

TEST(DnsZone, SnapshotPicksDeepestZone) {
  Snapshot snap;
  auto parent = Zone::compile(base());
  auto child = Zone::compile(new_zone("sub.example.com", {"ns1.example.com"}, 1));
  ASSERT_TRUE(parent);
  ASSERT_TRUE(child);
  snap.zones[(*parent)->apex()] = *parent;
  snap.zones[(*child)->apex()] = *child;
  EXPECT_EQ(snap.zone_for(wire_lower("x.sub.example.com.")), child->get());
  EXPECT_EQ(snap.zone_for(wire_lower("sub.example.com.")), child->get());
  EXPECT_EQ(snap.zone_for(wire_lower("www.example.com.")), parent->get());
  EXPECT_EQ(snap.zone_for(wire_lower("example.com.")), parent->get());
  EXPECT_EQ(snap.zone_for(wire_lower("example.org.")), nullptr);
  EXPECT_EQ(snap.zone_for(wire_lower("com.")), nullptr);
}

}  // namespace
}  // namespace berth::dns
