// SPDX-License-Identifier: Apache-2.0
// Dynamic updates: plan_update's prerequisites (RFC 2136 §3.2) and update section (§3.4) as
// change batches that apply_changes accepts, and UpdateHandler end to end over an in-memory
// store: TSIG errors, key scope, signed replies, audit records.
#include "dns/update.h"

#include <gtest/gtest.h>

#include "common/secret_box.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/tsig.h"
#include "store/store.h"
#include "support/harness.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

ZoneData zone() {
  ZoneData z = new_zone("example.com", {"ns1.example.com"}, 10);
  z.sets.push_back(rs("ns1.example.com", "A", {"192.0.2.53"}));
  z.sets.push_back(rs("www.example.com", "A", {"192.0.2.1", "192.0.2.2"}));
  z.sets.push_back(rs("www.example.com", "TXT", {"\"hello\""}));
  z.sets.push_back(rs("alias.example.com", "CNAME", {"www.example.com."}));
  return z;
}

ResourceRecord rr(const std::string& name, uint16_t t, uint16_t klass, uint32_t ttl,
                  const std::string& text = "") {
  ResourceRecord r;
  r.name = *name_from_text(name + ".");
  r.type = t;
  r.klass = klass;
  r.ttl = ttl;
  if (!text.empty()) {
    r.rdata = *rdata_from_text(t, text);
  }
  return r;
}

Message update(std::vector<ResourceRecord> prereqs, std::vector<ResourceRecord> updates) {
  Message m;
  m.id = 42;
  m.flags = static_cast<uint16_t>(opcode::UPDATE << 11);
  m.questions.push_back(Question{*name_from_text("example.com."), type::SOA, kClassIN});
  m.answers = std::move(prereqs);
  m.authority = std::move(updates);
  return m;
}

const RecordSet* find(const ZoneData& z, const std::string& name, const std::string& type) {
  for (const auto& s : z.sets) {
    if (s.name == name && s.type == type) {
      return &s;
    }
  }
  return nullptr;
}

// Plans and applies; the zone after the update.
ZoneData applied(const ZoneData& z, const Message& m) {
  UpdatePlan p = plan_update(z, m);
  EXPECT_EQ(p.rcode, 0) << p.reason;
  if (p.changes.empty()) {
    return z;
  }
  auto out = apply_changes(z, p.changes);
  EXPECT_TRUE(out) << out.error().message();
  return out ? *out : z;
}

TEST(DnsUpdatePlanTest, AddCreatesASetAndExtendsAnExistingOne) {
  ZoneData z = zone();
  auto after = applied(
      z, update({}, {rr("_acme-challenge.example.com", type::TXT, kClassIN, 60, "\"tok\"")}));
  const RecordSet* txt = find(after, "_acme-challenge.example.com", "TXT");
  ASSERT_NE(txt, nullptr);
  EXPECT_EQ(txt->values, std::vector<std::string>{"\"tok\""});
  EXPECT_EQ(txt->ttl, 60u);
  EXPECT_EQ(after.serial, 11u);

  auto p = plan_update(z, update({}, {rr("www.example.com", type::A, kClassIN, 120, "192.0.2.3"),
                                      rr("www.example.com", type::A, kClassIN, 120, "192.0.2.1")}));
  ASSERT_EQ(p.rcode, 0) << p.reason;
  ASSERT_EQ(p.changes.size(), 2u);  // DELETE as it was, CREATE as it becomes
  EXPECT_EQ(p.changes[0].action, Change::Action::Delete);
  EXPECT_EQ(p.changes[0].set.values.size(), 2u);
  EXPECT_EQ(p.changes[1].action, Change::Action::Create);
  EXPECT_EQ(p.changes[1].set.values,
            (std::vector<std::string>{"192.0.2.1", "192.0.2.2", "192.0.2.3"}));
  EXPECT_EQ(p.changes[1].set.ttl, 120u);
  EXPECT_EQ(p.names, std::vector<std::string>{"www.example.com"});
}

TEST(DnsUpdatePlanTest, AddingWhatIsThereChangesNothing) {
  auto p =
      plan_update(zone(), update({}, {rr("www.example.com", type::A, kClassIN, 300, "192.0.2.2")}));
  EXPECT_EQ(p.rcode, 0);
  EXPECT_TRUE(p.changes.empty());
}

TEST(DnsUpdatePlanTest, Deletions) {
  ZoneData z = zone();
  // One RR out of two; then the last one removes the set.
  auto a = applied(z, update({}, {rr("www.example.com", type::A, kClassNONE, 0, "192.0.2.1")}));
  ASSERT_NE(find(a, "www.example.com", "A"), nullptr);
  EXPECT_EQ(find(a, "www.example.com", "A")->values, std::vector<std::string>{"192.0.2.2"});
  auto b = applied(a, update({}, {rr("www.example.com", type::A, kClassNONE, 0, "192.0.2.2")}));
  EXPECT_EQ(find(b, "www.example.com", "A"), nullptr);
  EXPECT_NE(find(b, "www.example.com", "TXT"), nullptr);
  // An RRset.
  auto c = applied(z, update({}, {rr("www.example.com", type::TXT, kClassANY, 0)}));
  EXPECT_EQ(find(c, "www.example.com", "TXT"), nullptr);
  EXPECT_NE(find(c, "www.example.com", "A"), nullptr);
  // Every set at a name.
  auto d = applied(z, update({}, {rr("www.example.com", type::ANY, kClassANY, 0)}));
  EXPECT_EQ(find(d, "www.example.com", "TXT"), nullptr);
  EXPECT_EQ(find(d, "www.example.com", "A"), nullptr);
  // At the apex, "delete everything" keeps the SOA and NS.
  ZoneData withmx = z;
  withmx.sets.push_back(rs("example.com", "MX", {"10 mail.example.com."}));
  auto e = applied(withmx, update({}, {rr("example.com", type::ANY, kClassANY, 0)}));
  EXPECT_EQ(find(e, "example.com", "MX"), nullptr);
  EXPECT_NE(find(e, "example.com", "SOA"), nullptr);
  EXPECT_NE(find(e, "example.com", "NS"), nullptr);
  // Deleting what is not there is no error and no change.
  auto p =
      plan_update(z, update({}, {rr("nope.example.com", type::A, kClassNONE, 0, "192.0.2.9")}));
  EXPECT_EQ(p.rcode, 0);
  EXPECT_TRUE(p.changes.empty());
}

TEST(DnsUpdatePlanTest, Prerequisites) {
  ZoneData z = zone();
  auto add = rr("new.example.com", type::A, kClassIN, 60, "192.0.2.7");
  // nxdomain on an existing name: YXDOMAIN; yxdomain on a missing one: NXDOMAIN.
  EXPECT_EQ(plan_update(z, update({rr("www.example.com", type::ANY, kClassNONE, 0)}, {add})).rcode,
            rcode::YXDOMAIN);
  EXPECT_EQ(plan_update(z, update({rr("nope.example.com", type::ANY, kClassANY, 0)}, {add})).rcode,
            rcode::NXDOMAIN);
  EXPECT_EQ(plan_update(z, update({rr("www.example.com", type::MX, kClassANY, 0)}, {add})).rcode,
            rcode::NXRRSET);
  EXPECT_EQ(plan_update(z, update({rr("www.example.com", type::A, kClassNONE, 0)}, {add})).rcode,
            rcode::YXRRSET);
  // Passing ones.
  auto ok = plan_update(z, update({rr("new.example.com", type::ANY, kClassNONE, 0),
                                   rr("www.example.com", type::ANY, kClassANY, 0),
                                   rr("www.example.com", type::A, kClassANY, 0),
                                   rr("www.example.com", type::MX, kClassNONE, 0)},
                                  {add}));
  EXPECT_EQ(ok.rcode, 0) << ok.reason;
  EXPECT_EQ(ok.changes.size(), 1u);
  // Value-dependent: the whole set must match (order and duplicates aside).
  auto exact = update({rr("www.example.com", type::A, kClassIN, 0, "192.0.2.2"),
                       rr("www.example.com", type::A, kClassIN, 0, "192.0.2.1")},
                      {add});
  EXPECT_EQ(plan_update(z, exact).rcode, 0);
  auto partial = update({rr("www.example.com", type::A, kClassIN, 0, "192.0.2.1")}, {add});
  EXPECT_EQ(plan_update(z, partial).rcode, rcode::NXRRSET);
  // Names in rdata compare case-insensitively.
  auto cname =
      update({rr("alias.example.com", type::CNAME, kClassIN, 0, "WWW.Example.COM.")}, {add});
  EXPECT_EQ(plan_update(z, cname).rcode, 0);
  // A prerequisite with a TTL is malformed; outside the zone is NOTZONE.
  EXPECT_EQ(plan_update(z, update({rr("www.example.com", type::ANY, kClassANY, 5)}, {add})).rcode,
            rcode::FORMERR);
  EXPECT_EQ(plan_update(z, update({rr("www.example.org", type::ANY, kClassANY, 0)}, {add})).rcode,
            rcode::NOTZONE);
}

TEST(DnsUpdatePlanTest, RefusesWhatBerthKeeps) {
  ZoneData z = zone();
  EXPECT_EQ(plan_update(z, update({}, {rr("example.com", type::SOA, kClassANY, 0)})).rcode,
            rcode::REFUSED);
  EXPECT_EQ(plan_update(z, update({}, {rr("example.com", type::NS, kClassANY, 0)})).rcode,
            rcode::REFUSED);
  EXPECT_EQ(
      plan_update(z, update({}, {rr("example.com", type::NS, kClassIN, 60, "ns9.example.net.")}))
          .rcode,
      rcode::REFUSED);
  EXPECT_EQ(
      plan_update(z, update({}, {rr("example.com", type::NS, kClassNONE, 0, "ns1.example.com.")}))
          .rcode,
      rcode::REFUSED);
  // A delegation below the apex is fine.
  auto sub = plan_update(
      z, update({}, {rr("sub.example.com", type::NS, kClassIN, 60, "ns.elsewhere.net.")}));
  EXPECT_EQ(sub.rcode, 0) << sub.reason;
  // Routing-policy sets belong to the API.
  ZoneData w = z;
  RecordSet weighted = rs("lb.example.com", "A", {"192.0.2.10"});
  weighted.set_identifier = "one";
  weighted.weight = 10;
  w.sets.push_back(weighted);
  EXPECT_EQ(
      plan_update(w, update({}, {rr("lb.example.com", type::A, kClassIN, 60, "192.0.2.11")})).rcode,
      rcode::REFUSED);
  // Malformed: meta types, TTL on a deletion, unknown classes; outside the zone.
  EXPECT_EQ(plan_update(z, update({}, {rr("www.example.com", type::ANY, kClassIN, 0)})).rcode,
            rcode::FORMERR);
  EXPECT_EQ(plan_update(z, update({}, {rr("www.example.com", type::A, kClassANY, 60)})).rcode,
            rcode::FORMERR);
  EXPECT_EQ(plan_update(z, update({}, {rr("www.example.com", type::A, 3, 0)})).rcode,
            rcode::FORMERR);
  EXPECT_EQ(
      plan_update(z, update({}, {rr("www.example.org", type::A, kClassIN, 60, "192.0.2.1")})).rcode,
      rcode::NOTZONE);
}

TEST(DnsUpdatePlanTest, CnameConflictsAreIgnored) {
  ZoneData z = zone();
  // A beside a CNAME, and a CNAME beside other data: ignored (§3.4.2.2), nothing changes.
  EXPECT_TRUE(
      plan_update(z, update({}, {rr("alias.example.com", type::A, kClassIN, 60, "192.0.2.1")}))
          .changes.empty());
  EXPECT_TRUE(plan_update(z, update({}, {rr("www.example.com", type::CNAME, kClassIN, 60,
                                            "alias.example.com.")}))
                  .changes.empty());
  // A CNAME replaces a CNAME.
  auto after = applied(
      z, update({}, {rr("alias.example.com", type::CNAME, kClassIN, 60, "ns1.example.com.")}));
  ASSERT_NE(find(after, "alias.example.com", "CNAME"), nullptr);
  EXPECT_EQ(find(after, "alias.example.com", "CNAME")->values,
            std::vector<std::string>{"ns1.example.com."});
}

// ---- UpdateHandler over an in-memory store ----

class DnsUpdateHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::open_sqlite(":memory:");
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    service_ = std::make_unique<Service>(*store_, Settings{});
    ASSERT_TRUE(service_->load());
    ASSERT_TRUE(service_->create_zone("example.com"));
    auto box = SecretBox::load_or_create(tmp_ / "secrets.key");
    ASSERT_TRUE(box);
    keys_ = std::make_unique<TsigKeyring>(*store_, *box);
    TsigKey acme;
    acme.name = "acme";
    acme.secret = "0123456789abcdef0123456789abcdef";
    acme.zones = {"example.com"};
    acme.names = {"_acme-challenge.*"};
    ASSERT_TRUE(keys_->create(acme));
    handler_ = std::make_unique<UpdateHandler>(
        *service_, *keys_,
        [this](const std::string& p, const std::string& a, const std::string& r, bool allowed,
               const std::string&) {
          audit_.push_back(p + " " + a + " " + r + (allowed ? " allowed" : " denied"));
        });
    handler_->set_clock_for_test([] { return uint64_t{1700000000}; });
  }

  // An update of the TXT at `name`, signed with (name, secret) at `when`.
  std::string signed_update(const std::string& name, const std::string& key,
                            const std::string& secret, uint64_t when, std::string* mac) {
    std::string out;
    Writer w(out, 65535);
    w.header(99, static_cast<uint16_t>(opcode::UPDATE << 11));
    w.question(Question{*name_from_text("example.com."), type::SOA, kClassIN});
    EXPECT_TRUE(w.add(Writer::kAuthority, *name_from_text(name + "."), type::TXT, kClassIN, 60,
                      *rdata_from_text(type::TXT, "\"tok\"")));
    TsigKey k;
    k.name = key;
    k.secret = secret;
    *mac = tsig_append(out, k, *name_from_text(key + "."), when, 0, {});
    return out;
  }

  Message reply(const std::string& pkt, const std::string& peer = "127.0.0.1") {
    std::string r =
        handler_->handle({reinterpret_cast<const uint8_t*>(pkt.data()), pkt.size()}, peer);
    auto m = parse_message({reinterpret_cast<const uint8_t*>(r.data()), r.size()});
    EXPECT_TRUE(m);
    last_ = r;
    return m ? *m : Message{};
  }

  bool has_txt(const std::string& name) {
    auto z = service_->get_zone("example.com");
    return z && find(*z, name, "TXT") != nullptr;
  }

  test::TempDir tmp_;
  store::MetadataStorePtr store_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<TsigKeyring> keys_;
  std::unique_ptr<UpdateHandler> handler_;
  std::vector<std::string> audit_;
  std::string last_;
};

TEST_F(DnsUpdateHandlerTest, SignedUpdateIsAppliedAndTheReplyIsSigned) {
  std::string mac;
  auto pkt = signed_update("_acme-challenge.example.com", "acme",
                           "0123456789abcdef0123456789abcdef", 1700000010, &mac);
  Message m = reply(pkt);
  EXPECT_EQ(m.id, 99);
  EXPECT_EQ(m.opcode(), opcode::UPDATE);
  EXPECT_EQ(m.rcode(), rcode::NOERROR);
  EXPECT_TRUE(has_txt("_acme-challenge.example.com"));
  ASSERT_TRUE(m.tsig_offset);
  auto c = tsig_verify(
      {reinterpret_cast<const uint8_t*>(last_.data()), last_.size()}, m,
      [this](std::string_view n) { return keys_->find(n); }, 1700000000, mac);
  EXPECT_EQ(c.error, 0);
  ASSERT_EQ(audit_.size(), 1u);
  EXPECT_EQ(audit_[0],
            "tsig/acme dns:ChangeRecordSets zone/example.com/record/_acme-challenge.example.com "
            "allowed");
}

TEST_F(DnsUpdateHandlerTest, TsigFailures) {
  std::string mac;
  // Wrong secret: NOTAUTH + BADSIG, unsigned; nothing changes.
  Message bad = reply(signed_update("_acme-challenge.example.com", "acme",
                                    "ffffffffffffffffffffffffffffffff", 1700000000, &mac));
  EXPECT_EQ(bad.rcode(), rcode::NOTAUTH);
  ASSERT_TRUE(bad.tsig_offset);
  auto rec = parse_tsig_rdata(bad.additional.back().rdata);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->error, rcode::BADSIG);
  EXPECT_TRUE(rec->mac.empty());
  EXPECT_FALSE(has_txt("_acme-challenge.example.com"));
  // Unknown key: BADKEY.
  Message unknown = reply(signed_update("_acme-challenge.example.com", "nobody",
                                        "0123456789abcdef0123456789abcdef", 1700000000, &mac));
  EXPECT_EQ(unknown.rcode(), rcode::NOTAUTH);
  EXPECT_EQ(parse_tsig_rdata(unknown.additional.back().rdata)->error, rcode::BADKEY);
  // Ten minutes off: BADTIME, signed, with our time in Other Data.
  Message late = reply(signed_update("_acme-challenge.example.com", "acme",
                                     "0123456789abcdef0123456789abcdef", 1700000600, &mac));
  EXPECT_EQ(late.rcode(), rcode::NOTAUTH);
  auto late_rec = parse_tsig_rdata(late.additional.back().rdata);
  ASSERT_TRUE(late_rec);
  EXPECT_EQ(late_rec->error, rcode::BADTIME);
  EXPECT_EQ(late_rec->mac.size(), 32u);
  EXPECT_EQ(late_rec->other.size(), 6u);
  EXPECT_FALSE(has_txt("_acme-challenge.example.com"));
  EXPECT_EQ(audit_.size(), 3u);
  for (const auto& a : audit_) {
    EXPECT_NE(a.find(" denied"), std::string::npos) << a;
  }
}

TEST_F(DnsUpdateHandlerTest, UnsignedAndOutOfScopeUpdatesAreRefused) {
  std::string out;
  Writer w(out, 512);
  w.header(5, static_cast<uint16_t>(opcode::UPDATE << 11));
  w.question(Question{*name_from_text("example.com."), type::SOA, kClassIN});
  EXPECT_EQ(reply(out).rcode(), rcode::REFUSED);

  std::string mac;
  Message www = reply(signed_update("www.example.com", "acme", "0123456789abcdef0123456789abcdef",
                                    1700000000, &mac));
  EXPECT_EQ(www.rcode(), rcode::REFUSED);
  EXPECT_TRUE(www.tsig_offset);  // signed: the key was good, its scope was not
  EXPECT_FALSE(has_txt("www.example.com"));
  ASSERT_FALSE(audit_.empty());
  EXPECT_EQ(audit_.back(),
            "tsig/acme dns:ChangeRecordSets zone/example.com/record/www.example.com denied");

  // A zone berth does not host: NOTAUTH.
  std::string other;
  Writer w2(other, 512);
  w2.header(6, static_cast<uint16_t>(opcode::UPDATE << 11));
  w2.question(Question{*name_from_text("example.org."), type::SOA, kClassIN});
  TsigKey k;
  k.name = "acme";
  k.secret = "0123456789abcdef0123456789abcdef";
  tsig_append(other, k, *name_from_text("acme."), 1700000000, 0, {});
  EXPECT_EQ(reply(other).rcode(), rcode::NOTAUTH);
}

}  // namespace
}  // namespace berth::dns
