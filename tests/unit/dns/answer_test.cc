// SPDX-License-Identifier: Apache-2.0
// answer_query end to end on bytes: queries built with Writer, replies read back with
// parse_message. Positive answers, RFC 2308 negatives, empty non-terminals, CNAME chains,
// RFC 4592 wildcards, referrals with glue, ALIAS flattening, routing policies with health
// checks, REFUSED/FORMERR/NOTIMP, case echo, EDNS and truncation.
#include "dns/answer.h"

#include <gtest/gtest.h>

#include <optional>

#include "dns/name.h"
#include "dns/rdata.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

RecordSet policy(std::string name, std::string id, std::string value, std::string health = {}) {
  RecordSet s = rs(std::move(name), "A", {std::move(value)}, 60);
  s.set_identifier = std::move(id);
  s.health_check = std::move(health);
  return s;
}

std::string ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                     static_cast<char>(d)};
}

Snapshot make_snapshot() {
  ZoneData z = new_zone("example.com", {"ns1.example.com", "ns2.example.net"}, 1);
  auto add = [&](RecordSet s) { z.sets.push_back(std::move(s)); };
  add(rs("ns1.example.com", "A", {"192.0.2.53"}));
  add(rs("www.example.com", "A", {"192.0.2.1", "192.0.2.2"}));
  add(rs("www.example.com", "AAAA", {"2001:db8::1"}));
  add(rs("example.com", "MX", {"10 mail.example.com."}));
  add(rs("mail.example.com", "A", {"192.0.2.25"}));
  add(rs("a.b.c.example.com", "A", {"192.0.2.3"}));
  add(rs("alias1.example.com", "CNAME", {"alias2.example.com."}));
  add(rs("alias2.example.com", "CNAME", {"www.example.com."}));
  add(rs("ext.example.com", "CNAME", {"www.example.org."}));
  add(rs("dangling.example.com", "CNAME", {"nothing.example.com."}));
  add(rs("loop1.example.com", "CNAME", {"loop2.example.com."}));
  add(rs("loop2.example.com", "CNAME", {"loop1.example.com."}));
  add(rs("*.wild.example.com", "TXT", {"\"wild\""}));
  add(rs("exists.wild.example.com", "A", {"192.0.2.4"}));
  add(rs("*.w2.example.com", "A", {"192.0.2.5"}));
  add(rs("a.b.w2.example.com", "A", {"192.0.2.6"}));
  add(rs("sub.example.com", "NS", {"ns.sub.example.com.", "ns.other.net."}));
  add(rs("ns.sub.example.com", "A", {"192.0.2.99"}));
  RecordSet apex_alias = rs("example.com", "ALIAS", {}, 45);
  apex_alias.alias_service = "web";
  add(apex_alias);
  RecordSet down = rs("down.example.com", "ALIAS", {}, 45);
  down.alias_service = "stopped";
  add(down);
  RecordSet flat = rs("flat.example.com", "ALIAS", {}, 50);
  flat.alias_name = "www.example.com";
  add(flat);
  RecordSet flat2 = rs("flat2.example.com", "ALIAS", {}, 51);
  flat2.alias_name = "flat.example.com";
  add(flat2);
  RecordSet w1 = policy("wt.example.com", "w1", "192.0.2.10", "hc1");
  w1.weight = 1;
  RecordSet w2 = policy("wt.example.com", "w2", "192.0.2.11");
  w2.weight = 3;
  add(w1);
  add(w2);
  RecordSet p = policy("fo.example.com", "p", "192.0.2.20", "hcp");
  p.failover = "PRIMARY";
  RecordSet sec = policy("fo.example.com", "s", "192.0.2.21");
  sec.failover = "SECONDARY";
  add(p);
  add(sec);
  for (int i = 0; i < 10; ++i) {
    RecordSet m = policy("mv.example.com", "m" + std::to_string(i),
                         "192.0.2." + std::to_string(100 + i), i == 0 ? "hcm" : "");
    m.multivalue = true;
    add(m);
  }
  std::vector<std::string> big;
  for (int i = 0; i < 10; ++i) {
    big.push_back("\"" + std::string(200, static_cast<char>('a' + i)) + "\"");
  }
  add(rs("big.example.com", "TXT", big));
  std::string m1(212, 'm');
  std::string m2(212, 'n');
  m1.front() = m1.back() = m2.front() = m2.back() = '"';
  add(rs("mid.example.com", "TXT", {m1 + " " + m2}));  // one record of 422 bytes
  std::vector<std::string> many_ns;
  for (int i = 0; i < 12; ++i) {
    std::string ns = "ns" + std::to_string(i) + ".wide.example.com";
    many_ns.push_back(ns + ".");
    add(rs(ns, "AAAA", {"2001:db8::" + std::to_string(i + 1)}));
  }
  add(rs("wide.example.com", "NS", many_ns));
  add(rs("srv._tcp.example.com", "SRV", {"0 5 443 www.example.com."}));
  auto zone = Zone::compile(z);
  EXPECT_TRUE(zone) << zone.error().message();
  Snapshot snap;
  snap.zones[(*zone)->apex()] = *zone;
  auto other = Zone::compile(new_zone("example.net", {"ns1.example.net"}, 1));
  snap.zones[(*other)->apex()] = *other;
  snap.services = {"web"};
  snap.service_a = {ip4(198, 51, 100, 7)};
  snap.service_aaaa = {std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x07"};
  snap.unhealthy_checks = {"hcm", "hc1"};
  return snap;
}

const Snapshot& snap() {
  static const Snapshot s = make_snapshot();
  return s;
}

struct Q {
  Q(std::string n, uint16_t t = type::A, uint16_t k = kClassIN)
      : name(std::move(n)), type(t), klass(k) {}
  std::string name;
  uint16_t type;
  uint16_t klass;
  std::optional<Edns> edns;
  uint16_t flags = flag::RD;
};

std::string build(const Q& q) {
  std::string out;
  Writer w(out, 65535);
  w.header(0x1234, q.flags);
  auto wire = name_from_text(q.name);
  EXPECT_TRUE(wire) << q.name;
  w.question(Question{*wire, q.type, q.klass});
  if (q.edns) {
    w.opt(*q.edns);
  }
  return out;
}

std::string raw_reply(const std::string& query, QueryContext ctx = {}) {
  std::string out = "stale";
  answer_query(snap(), bytes(query), ctx, out);
  return out;
}

Message ask(const Q& q, QueryContext ctx = {}) {
  std::string out = raw_reply(build(q), ctx);
  auto m = parse_message(bytes(out));
  EXPECT_TRUE(m) << q.name << ": " << (m ? "" : m.error().message());
  if (m) {
    EXPECT_EQ(m->id, 0x1234);
    EXPECT_TRUE(m->flags & flag::QR);
  }
  return m ? *m : Message{};
}

Edns edns(uint16_t payload = 4096, uint8_t version = 0) {
  Edns e;
  e.udp_payload = payload;
  e.version = version;
  return e;
}

std::vector<std::string> texts(const std::vector<ResourceRecord>& rrs, uint16_t t) {
  std::vector<std::string> out;
  for (const auto& rr : rrs) {
    if (rr.type == t) {
      auto v = rdata_to_text(t, rr.rdata);
      out.push_back(name_to_text(rr.name) + " " + (v ? *v : "?"));
    }
  }
  return out;
}

bool aa(const Message& m) { return (m.flags & flag::AA) != 0; }
bool tc(const Message& m) { return (m.flags & flag::TC) != 0; }

TEST(DnsAnswer, PositiveAnswerWithNsAndGlue) {
  Message m = ask({"www.example.com", type::A});
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  EXPECT_TRUE(aa(m));
  EXPECT_TRUE(m.flags & flag::RD);  // copied
  EXPECT_EQ(texts(m.answers, type::A),
            (std::vector<std::string>{"www.example.com. 192.0.2.1", "www.example.com. 192.0.2.2"}));
  // NSD 4.6's default: the apex NS in authority, its in-zone glue in additional.
  EXPECT_EQ(texts(m.authority, type::NS).size(), 2u);
  EXPECT_EQ(texts(m.additional, type::A),
            (std::vector<std::string>{"ns1.example.com. 192.0.2.53"}));
  EXPECT_FALSE(m.edns);  // none asked for
}

TEST(DnsAnswer, NegativeAnswersCarrySoa) {
  struct Case {
    const char* name;
    uint16_t type;
    int rcode;
  };
  const Case cases[] = {
      {"nope.example.com", type::A, rcode::NXDOMAIN},
      {"x.www.example.com", type::A, rcode::NXDOMAIN},
      {"www.example.com", type::MX, rcode::NOERROR},            // NODATA
      {"b.c.example.com", type::A, rcode::NOERROR},             // empty non-terminal
      {"c.example.com", type::TXT, rcode::NOERROR},             // empty non-terminal
      {"x.exists.wild.example.com", type::A, rcode::NXDOMAIN},  // wildcard doesn't reach
      {"b.w2.example.com", type::A, rcode::NOERROR},            // ENT blocks *.w2
      {"dangling.example.com", type::A, rcode::NXDOMAIN},       // chain ends in NXDOMAIN
      {"down.example.com", type::A, rcode::NOERROR},            // ALIAS to an unknown service
      {"www.example.com", type::ALIAS, rcode::NOERROR},         // never sent on the wire
  };
  for (const auto& c : cases) {
    Message m = ask({c.name, c.type});
    EXPECT_EQ(m.rcode(), c.rcode) << c.name;
    EXPECT_TRUE(aa(m)) << c.name;
    EXPECT_TRUE(texts(m.answers, c.type).empty()) << c.name;
    ASSERT_EQ(m.authority.size(), 1u) << c.name;
    EXPECT_EQ(m.authority[0].type, type::SOA) << c.name;
    EXPECT_EQ(name_to_text(m.authority[0].name), "example.com.");
    EXPECT_EQ(m.authority[0].ttl, 300u) << c.name;  // min(SOA TTL 900, minimum 300)
  }
}

TEST(DnsAnswer, CnameChainFollowedInZone) {
  Message m = ask({"alias1.example.com", type::A});
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  EXPECT_TRUE(aa(m));
  EXPECT_EQ(texts(m.answers, type::CNAME),
            (std::vector<std::string>{"alias1.example.com. alias2.example.com.",
                                      "alias2.example.com. www.example.com."}));
  EXPECT_EQ(texts(m.answers, type::A).size(), 2u);
  // Out of the zone: the CNAME alone.
  Message ext = ask({"ext.example.com", type::A});
  EXPECT_EQ(ext.rcode(), rcode::NOERROR);
  EXPECT_EQ(ext.answers.size(), 1u);
  EXPECT_TRUE(ext.authority.empty());  // as NSD: no NS when the chain leaves the zone
  // A CNAME query answers the CNAME without following it.
  Message self = ask({"alias1.example.com", type::CNAME});
  EXPECT_EQ(self.answers.size(), 1u);
  // A loop stops where it comes back to a name already answered, each CNAME once (as NSD).
  Message loop = ask({"loop1.example.com", type::A});
  EXPECT_EQ(loop.rcode(), rcode::NOERROR);
  EXPECT_EQ(loop.answers.size(), 2u);
  EXPECT_TRUE(loop.authority.empty());
}

TEST(DnsAnswer, Wildcards) {
  Message m = ask({"Anything.Wild.example.com", type::TXT});
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  EXPECT_TRUE(aa(m));
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(m.answers[0].name, *name_from_text("Anything.Wild.example.com"));  // synthesised
  EXPECT_EQ(texts(m.answers, type::TXT)[0], "Anything.Wild.example.com. \"wild\"");
  Message deep = ask({"a.b.c.wild.example.com", type::TXT});
  EXPECT_EQ(deep.answers.size(), 1u);
  Message nodata = ask({"x.wild.example.com", type::A});
  EXPECT_EQ(nodata.rcode(), rcode::NOERROR);
  EXPECT_TRUE(nodata.answers.empty());
  Message exists = ask({"exists.wild.example.com", type::TXT});  // a real name: no wildcard
  EXPECT_TRUE(exists.answers.empty());
  Message w2 = ask({"c.w2.example.com", type::A});
  EXPECT_EQ(texts(w2.answers, type::A), (std::vector<std::string>{"c.w2.example.com. 192.0.2.5"}));
}

TEST(DnsAnswer, ReferralBelowCut) {
  for (const char* name : {"www.sub.example.com", "sub.example.com"}) {
    Message m = ask({name, type::A});
    EXPECT_EQ(m.rcode(), rcode::NOERROR) << name;
    EXPECT_FALSE(aa(m)) << name;
    EXPECT_TRUE(m.answers.empty()) << name;
    EXPECT_EQ(texts(m.authority, type::NS),
              (std::vector<std::string>{"sub.example.com. ns.sub.example.com.",
                                        "sub.example.com. ns.other.net."}))
        << name;
    EXPECT_EQ(texts(m.additional, type::A),
              (std::vector<std::string>{"ns.sub.example.com. 192.0.2.99"}))
        << name;
  }
}

TEST(DnsAnswer, ReferralGlueIsRequired) {
  // 12 in-domain name servers with AAAA glue: over 512 bytes. RFC 9471: TC, not a referral
  // missing glue; with EDNS it all fits.
  Message udp = ask({"x.wide.example.com", type::A});
  EXPECT_TRUE(tc(udp));
  EXPECT_FALSE(aa(udp));
  EXPECT_EQ(texts(udp.authority, type::NS).size(), 12u);
  EXPECT_LT(texts(udp.additional, type::AAAA).size(), 12u);
  Q e{"x.wide.example.com", type::A};
  e.edns = edns(1232);
  Message full = ask(e);
  EXPECT_FALSE(tc(full));
  EXPECT_EQ(texts(full.authority, type::NS).size(), 12u);
  EXPECT_EQ(texts(full.additional, type::AAAA).size(), 12u);
}

TEST(DnsAnswer, AliasFlattened) {
  Message apex = ask({"example.com", type::A});
  EXPECT_TRUE(aa(apex));
  EXPECT_EQ(texts(apex.answers, type::A), (std::vector<std::string>{"example.com. 198.51.100.7"}));
  EXPECT_EQ(apex.answers[0].ttl, 45u);
  Message six = ask({"example.com", type::AAAA});
  EXPECT_EQ(texts(six.answers, type::AAAA), (std::vector<std::string>{"example.com. 2001:db8::7"}));
  Message mx = ask({"example.com", type::MX});  // ALIAS beside MX: MX unaffected
  EXPECT_EQ(texts(mx.answers, type::MX).size(), 1u);
  EXPECT_EQ(texts(mx.additional, type::A)[0], "mail.example.com. 192.0.2.25");
  Message flat = ask({"flat.example.com", type::A});
  EXPECT_EQ(
      texts(flat.answers, type::A),
      (std::vector<std::string>{"flat.example.com. 192.0.2.1", "flat.example.com. 192.0.2.2"}));
  EXPECT_EQ(flat.answers[0].ttl, 50u);
  for (const auto& rr : flat.answers) {
    EXPECT_NE(rr.type, type::CNAME);
    EXPECT_NE(rr.type, type::ALIAS);
  }
  Message flat2 = ask({"flat2.example.com", type::AAAA});  // one more ALIAS level
  EXPECT_EQ(texts(flat2.answers, type::AAAA),
            (std::vector<std::string>{"flat2.example.com. 2001:db8::1"}));
  EXPECT_EQ(flat2.answers[0].ttl, 51u);
}

TEST(DnsAnswer, RoutingPolicies) {
  // Weighted: w1 (weight 1) is unhealthy, so every draw gives w2.
  for (uint32_t r : {0u, 1u, 2u, 3u}) {
    Message m = ask({"wt.example.com", type::A}, {false, r});
    EXPECT_EQ(texts(m.answers, type::A), (std::vector<std::string>{"wt.example.com. 192.0.2.11"}))
        << r;
  }
  // Failover: the primary's check (hcp) is healthy.
  Message fo = ask({"fo.example.com", type::A});
  EXPECT_EQ(texts(fo.answers, type::A), (std::vector<std::string>{"fo.example.com. 192.0.2.20"}));
  // Multivalue: 8 of the 9 healthy sets, never the unhealthy m0.
  for (uint32_t r : {0u, 5u, 9u}) {
    Message mv = ask({"mv.example.com", type::A}, {false, r});
    auto got = texts(mv.answers, type::A);
    EXPECT_EQ(got.size(), 8u);
    for (const auto& g : got) {
      EXPECT_NE(g, "mv.example.com. 192.0.2.100");
    }
  }
}

TEST(DnsAnswer, RoutingPoliciesHealthChanges) {
  Snapshot s = make_snapshot();
  s.unhealthy_checks = {"hcp"};
  std::string out;
  answer_query(s, bytes(build({"fo.example.com", type::A})), {}, out);
  auto m = parse_message(bytes(out));
  ASSERT_TRUE(m);
  EXPECT_EQ(texts(m->answers, type::A), (std::vector<std::string>{"fo.example.com. 192.0.2.21"}));
  // Weighted with everything healthy: random 0 lands on w1 (weight 1 of 4), 1..3 on w2.
  s.unhealthy_checks.clear();
  answer_query(s, bytes(build({"wt.example.com", type::A})), {false, 0}, out);
  m = parse_message(bytes(out));
  ASSERT_TRUE(m);
  EXPECT_EQ(texts(m->answers, type::A), (std::vector<std::string>{"wt.example.com. 192.0.2.10"}));
  answer_query(s, bytes(build({"wt.example.com", type::A})), {false, 3}, out);
  m = parse_message(bytes(out));
  ASSERT_TRUE(m);
  EXPECT_EQ(texts(m->answers, type::A), (std::vector<std::string>{"wt.example.com. 192.0.2.11"}));
}

TEST(DnsAnswer, RefusedAndErrors) {
  struct Case {
    Q q;
    int rcode;
  };
  const Case cases[] = {
      {{"www.example.org", type::A}, rcode::REFUSED},
      {{"org", type::A}, rcode::REFUSED},
      {{"www.example.com", type::A, kClassCH}, rcode::REFUSED},
      {{"example.com", type::AXFR}, rcode::REFUSED},
      {{"example.com", type::IXFR}, rcode::REFUSED},
  };
  for (const auto& c : cases) {
    Message m = ask(c.q);
    EXPECT_EQ(m.rcode(), c.rcode) << c.q.name << " " << c.q.type;
    EXPECT_FALSE(aa(m));
    EXPECT_TRUE(m.answers.empty());
    ASSERT_EQ(m.questions.size(), 1u);
  }
  // Other opcodes: NOTIMP.
  Q status{"www.example.com", type::A};
  status.flags = static_cast<uint16_t>(2 << 11);
  Message notimp = ask(status);
  EXPECT_EQ(notimp.rcode(), rcode::NOTIMP);
}

TEST(DnsAnswer, MalformedQueries) {
  std::string q = build({"www.example.com", type::A});
  // Truncated question: FORMERR.
  std::string cut = q.substr(0, q.size() - 3);
  auto m = parse_message(bytes(raw_reply(cut)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode(), rcode::FORMERR);
  // QDCOUNT 2 with one question: FORMERR.
  std::string two = q;
  two[5] = 2;
  m = parse_message(bytes(raw_reply(two)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode(), rcode::FORMERR);
  // QDCOUNT 0: FORMERR.
  std::string none = q.substr(0, kHeaderBytes);
  none[5] = 0;
  m = parse_message(bytes(raw_reply(none)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode(), rcode::FORMERR);
  // Trailing garbage: FORMERR.
  m = parse_message(bytes(raw_reply(q + "xyz")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode(), rcode::FORMERR);
  // Short of a header, or a response: dropped.
  EXPECT_TRUE(raw_reply(q.substr(0, 11)).empty());
  std::string resp = q;
  resp[2] = static_cast<char>(resp[2] | 0x80);
  EXPECT_TRUE(raw_reply(resp).empty());
}

TEST(DnsAnswer, EchoesQueryCase) {
  Message m = ask({"WwW.ExAmPlE.cOm", type::A});
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, *name_from_text("WwW.ExAmPlE.cOm"));
  ASSERT_FALSE(m.answers.empty());
  EXPECT_EQ(m.answers[0].name, *name_from_text("WwW.ExAmPlE.cOm"));
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
}

TEST(DnsAnswer, Edns) {
  Q q{"www.example.com", type::A};
  q.edns = edns(4096);
  Message m = ask(q);
  ASSERT_TRUE(m.edns);
  EXPECT_EQ(m.edns->udp_payload, kEdnsUdpPayload);
  EXPECT_EQ(m.edns->version, 0);
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  q.edns = edns(4096, 1);
  Message bad = ask(q);
  ASSERT_TRUE(bad.edns);
  EXPECT_EQ(bad.rcode(), 0);  // BADVERS (16): upper bits in the OPT
  EXPECT_EQ(bad.edns->extended_rcode, 1);
  EXPECT_TRUE(bad.answers.empty());
}

TEST(DnsAnswer, TruncationCutsWholeSets) {
  // 10 × 201-byte TXT strings: over 512 and 1232, under 65535.
  Message udp = ask({"big.example.com", type::TXT});
  EXPECT_TRUE(tc(udp));
  EXPECT_TRUE(udp.answers.empty());  // the set is cut whole
  EXPECT_TRUE(udp.authority.empty());
  Q e{"big.example.com", type::TXT};
  e.edns = edns(4096);
  std::string out = raw_reply(build(e));
  EXPECT_LE(out.size(), kEdnsUdpPayload);
  auto m = parse_message(bytes(out));
  ASSERT_TRUE(m);
  EXPECT_TRUE(tc(*m));
  EXPECT_TRUE(m->edns);  // the OPT still fits
  Message tcp = ask({"big.example.com", type::TXT}, {true, 0});
  EXPECT_FALSE(tc(tcp));
  EXPECT_EQ(tcp.answers.size(), 10u);
  // A small payload below 512 is raised to 512: www fits without TC.
  Q small{"www.example.com", type::A};
  small.edns = edns(100);
  Message s = ask(small);
  EXPECT_FALSE(tc(s));
  EXPECT_EQ(s.answers.size(), 2u);
}

TEST(DnsAnswer, ExtraDataDroppedBeforeTc) {
  // mid's TXT fills most of 512 bytes: the apex NS and its glue (extra data) no longer fit
  // and are left out without TC; with EDNS's 1232 they are there.
  Message small = ask({"mid.example.com", type::TXT});
  EXPECT_FALSE(tc(small));
  EXPECT_EQ(small.answers.size(), 1u);
  EXPECT_TRUE(small.authority.empty());
  EXPECT_TRUE(small.additional.empty());
  Q big{"mid.example.com", type::TXT};
  big.edns = edns(1232);
  Message full = ask(big);
  EXPECT_FALSE(tc(full));
  EXPECT_EQ(full.answers.size(), 1u);
  EXPECT_EQ(texts(full.authority, type::NS).size(), 2u);
  EXPECT_EQ(texts(full.additional, type::A).size(), 1u);
  // SRV targets get their addresses in additional.
  Message srv = ask({"srv._tcp.example.com", type::SRV});
  EXPECT_FALSE(tc(srv));
  EXPECT_EQ(texts(srv.answers, type::SRV).size(), 1u);
  EXPECT_EQ(texts(srv.additional, type::A).size(), 3u);  // www ×2 + ns1 glue
  EXPECT_EQ(texts(srv.additional, type::AAAA).size(), 1u);
}

// RFC 8482 §4.2, as NSD 4.6: one set at the name (the first in type order), no NS in authority.
TEST(DnsAnswer, AnyReturnsOneSet) {
  Message m = ask({"www.example.com", type::ANY});
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  EXPECT_EQ(texts(m.answers, type::A).size(), 2u);
  EXPECT_EQ(texts(m.answers, type::AAAA).size(), 0u);
  EXPECT_EQ(m.answers.size(), 2u);
  EXPECT_TRUE(m.authority.empty());
  Message apex = ask({"example.com", type::ANY});
  ASSERT_FALSE(apex.answers.empty());
  for (const auto& rr : apex.answers) {
    EXPECT_EQ(rr.type, apex.answers[0].type);
    EXPECT_NE(rr.type, type::ALIAS);
  }
  EXPECT_TRUE(apex.authority.empty());
}

// An address already in the answer is not repeated in additional (as NSD 4.6).
TEST(DnsAnswer, AdditionalDoesNotRepeatTheAnswer) {
  Message m = ask({"ns1.example.com", type::A});
  ASSERT_EQ(texts(m.answers, type::A).size(), 1u);
  EXPECT_EQ(texts(m.authority, type::NS).size(), 2u);
  for (const auto& rr : m.additional) {
    EXPECT_FALSE(rr.type == type::A && rr.name == m.answers[0].name) << "ns1 A repeated";
  }
}

}  // namespace
}  // namespace berth::dns
