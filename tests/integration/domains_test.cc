// SPDX-License-Identifier: Apache-2.0
// `berth domain link|ls|show|unlink` and `berth ca export` against an in-process berthd with
// berth's own CA as the issuer: the records link writes (checked with dig), the steps and
// statuses, what unlink takes back, and the ways a link fails without leaving half of itself.
// ACME (pebble) and HTTPS through the router are in domains_https_test.cc.
#include "domains/domains.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "support/harness.h"

namespace berth::test {
namespace {

class Domains : public ::testing::Test {
 protected:
  explicit Domains(std::function<void(config::Config&)> tweak = {}) : d_(std::move(tweak)) {}
  void SetUp() override {
    if (!have("dig")) {
      GTEST_SKIP() << "dig is not installed (scripts/setup --test installs bind9-dnsutils)";
    }
    // A service that follows a tag nobody pushed: it exists, so it can be linked.
    auto c = d_.cli("service create web --image web/app:v1 --auto-deploy");
    ASSERT_EQ(c.code, 0) << c.all();
  }
  std::string dig(const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) + " +norec +short " + args);
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  std::string show(const std::string& name, const std::string& jq_expr) {
    auto r = d_.cli("domain show " + name + " --json");
    EXPECT_EQ(r.code, 0) << r.all();
    return jq(r.out, jq_expr);
  }
  TestDaemon d_;
};

TEST_F(Domains, LinkWritesAliasesIssuesFromBerthsCaAndUnlinkTakesBackOnlyThat) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("dns zone create www.example.com").code, 0);
  // The user's own record, which link and unlink must leave alone.
  ASSERT_EQ(d_.cli("dns record upsert example.com --name api --type A --value 127.0.0.9").code, 0);

  auto link = d_.cli("domain link web example.com --www");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out,
                  "example.com: dns done: ALIAS example.com -> service web (zone "
                  "example.com)"))
      << link.out;
  EXPECT_TRUE(has(link.out,
                  "www.example.com: dns done: ALIAS www.example.com -> service web "
                  "(zone www.example.com)"))
      << link.out;
  EXPECT_TRUE(has(link.out, "example.com: ACTIVE")) << link.out;
  EXPECT_TRUE(has(link.out, "www.example.com: ACTIVE")) << link.out;

  // The apex ALIAS is flattened to the router's address; www lives in its own sub-zone.
  EXPECT_EQ(dig("example.com A"), "127.0.0.1\n");
  EXPECT_EQ(dig("www.example.com A"), "127.0.0.1\n");
  EXPECT_EQ(
      show("example.com", ".records"),
      R"([{"content":["service web"],"name":"example.com","type":"ALIAS","zone":"example.com"}])");
  EXPECT_EQ(show("www.example.com", ".records[0].zone"), R"("www.example.com")");
  EXPECT_EQ(show("example.com", ".status"), R"("ACTIVE")");
  EXPECT_EQ(show("example.com", ".issuer"), R"("internal")");
  EXPECT_EQ(show("example.com", "[.steps[].status] | unique"), R"(["done"])");

  // The certificate covers both names and chains to the root `ca export` prints.
  TempDir t;
  auto ca = d_.cli("ca export");
  ASSERT_EQ(ca.code, 0) << ca.all();
  ASSERT_TRUE(has(ca.out, "-----BEGIN CERTIFICATE-----")) << ca.out;
  write_file(t / "root.pem", ca.out);
  auto subj = run("openssl x509 -noout -subject -in " + t / "root.pem");
  EXPECT_TRUE(has(subj.out, "berth root CA")) << subj.all();

  // `domain ls SERVICE`: that service's names only, with status, issuer and expiry.
  ASSERT_EQ(d_.cli("service create api --image web/api:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d_.cli("domain link api status.example.com").code, 0);
  auto ls = d_.cli("domain ls web");
  ASSERT_EQ(ls.code, 0) << ls.all();
  for (const char* column : {"DOMAIN", "SERVICE", "STATUS", "ISSUER", "EXPIRES", "LAST ERROR"}) {
    EXPECT_TRUE(has(ls.out, column)) << column << " in " << ls.out;
  }
  EXPECT_TRUE(has(ls.out, "www.example.com")) << ls.out;
  EXPECT_TRUE(has(ls.out, "ACTIVE")) << ls.out;
  EXPECT_TRUE(has(ls.out, "internal")) << ls.out;
  EXPECT_FALSE(has(ls.out, "status.example.com")) << ls.out;
  EXPECT_TRUE(has(d_.cli("domain ls").out, "status.example.com"));
  ASSERT_EQ(d_.cli("domain unlink api status.example.com").code, 0);

  auto served_names = [&] {
    return run("echo | openssl s_client -connect 127.0.0.1:" +
               std::to_string(d_.router_tls_port()) +
               " -servername example.com 2>/dev/null | openssl x509 -noout -ext subjectAltName")
        .out;
  };
  EXPECT_TRUE(has(served_names(), "DNS:www.example.com")) << served_names();

  // Unlinking www removes its record in the sub-zone and nothing else, and the apex gets a
  // certificate without www at once (renewals would otherwise keep asking for it).
  auto un = d_.cli("domain unlink web www.example.com");
  ASSERT_EQ(un.code, 0) << un.all();
  EXPECT_EQ(dig("www.example.com A"), "");
  EXPECT_EQ(dig("example.com A"), "127.0.0.1\n");
  EXPECT_EQ(show("example.com", ".status"), R"("ACTIVE")");
  std::string names = served_names();
  for (int i = 0; i < 100 && has(names, "www.example.com"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    names = served_names();
  }
  EXPECT_TRUE(has(names, "DNS:example.com")) << names;
  EXPECT_FALSE(has(names, "www.example.com")) << names;
  ASSERT_EQ(d_.cli("domain unlink web example.com").code, 0);
  EXPECT_EQ(dig("example.com A"), "");
  EXPECT_EQ(dig("api.example.com A"), "127.0.0.9\n");
  auto gone = d_.cli("domain show example.com");
  EXPECT_NE(gone.code, 0);
  EXPECT_TRUE(has(gone.err, "example.com is not linked to any service")) << gone.all();
}

TEST_F(Domains, ANameLinkedToAnotherServiceIsRefused) {
  ASSERT_EQ(d_.cli("service create api --image web/api:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("domain link web example.com").code, 0);
  auto again = d_.cli("domain link api example.com");
  EXPECT_NE(again.code, 0);
  EXPECT_TRUE(has(again.err, "example.com is already linked to another service (web)"))
      << again.all();
  auto wrong = d_.cli("domain unlink api example.com");
  EXPECT_EQ(wrong.code, 4) << wrong.all();  // a conflict, like linking it there
  EXPECT_TRUE(has(wrong.err, "linked to service web, not api")) << wrong.all();
  auto typo = d_.cli("domain ls wbe");
  EXPECT_EQ(typo.code, 3) << typo.all();
  EXPECT_TRUE(has(typo.err, "service wbe does not exist")) << typo.all();
  auto unknown = d_.cli("domain link nosuch other.example.com");
  EXPECT_NE(unknown.code, 0);
  EXPECT_TRUE(has(unknown.err, "service nosuch does not exist")) << unknown.all();
  auto bad = d_.cli("domain link web 'a..example.com'");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(has(bad.err, "each label must be 1 to 63 characters")) << bad.all();
  // Names no certificate or outside resolver can serve are refused before anything is written.
  for (auto [name, why] : {std::pair{"Bad_Name.example.com", "'_' cannot appear"},
                           std::pair{"127.0.0.1", "an IP address is not a domain name"},
                           std::pair{"web.localhost", "names under localhost"}}) {
    auto r = d_.cli(std::string("domain link web ") + name);
    EXPECT_EQ(r.code, 2) << r.all();
    EXPECT_TRUE(has(r.err, why)) << r.all();
  }
  EXPECT_EQ(dig("bad_name.example.com A"), "");
  EXPECT_FALSE(has(d_.cli("domain ls").out, "localhost"));
  EXPECT_EQ(show("example.com", ".service"), R"("web")");
}

// The apex already has the user's A record: the link fails, and the www ALIAS it wrote for
// the same group is taken back, so no half-linked domain remains.
TEST_F(Domains, AUserRecordInTheWayFailsTheWholeLinkAndLeavesNoRecord) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("dns record upsert example.com --name @ --type A --value 127.0.0.7").code, 0);
  auto link = d_.cli("domain link web example.com --www");
  EXPECT_EQ(link.code, 1) << link.all();
  EXPECT_TRUE(has(link.out,
                  "example.com: FAILED: example.com already has A records in zone "
                  "example.com that berth did not create"))
      << link.out;
  EXPECT_EQ(show("www.example.com", ".status"), R"("FAILED")");
  EXPECT_EQ(show("www.example.com", ".records"), "[]");
  EXPECT_EQ(dig("www.example.com A"), "");
  EXPECT_EQ(dig("example.com A"), "127.0.0.7\n");

  // Doing what the error says (delete the record, link again) is the retry: the failed link
  // makes way for the new one.
  ASSERT_EQ(d_.cli("dns record delete example.com --name @ --type A").code, 0);
  auto again = d_.cli("domain link web example.com --www");
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_TRUE(has(again.out, "example.com: ACTIVE")) << again.out;
  EXPECT_TRUE(has(again.out, "www.example.com: ACTIVE")) << again.out;
  EXPECT_EQ(dig("example.com A"), "127.0.0.1\n");
  EXPECT_EQ(show("example.com", ".last_error"), R"("")");
  // Another service still cannot take a name of a link that failed.
  ASSERT_EQ(d_.cli("dns record upsert example.com --name shop --type A --value 127.0.0.7").code, 0);
  EXPECT_EQ(d_.cli("domain link web shop.example.com").code, 1);
  ASSERT_EQ(d_.cli("service create api --image web/api:v1 --auto-deploy").code, 0);
  auto other = d_.cli("domain link api shop.example.com");
  EXPECT_EQ(other.code, 4) << other.all();
  EXPECT_TRUE(has(other.err, "already linked to another service (web)")) << other.all();
}

// A record link wrote and the user has since changed is the user's: unlink leaves it, and
// says so.
TEST_F(Domains, UnlinkLeavesARecordTheUserChangedSinceLink) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("service create web2 --image web/app:v2 --auto-deploy").code, 0);
  ASSERT_EQ(d_.cli("domain link web t.example.com").code, 0);
  ASSERT_EQ(d_.cli("domain link web u.example.com").code, 0);
  // The table lines up on a terminal: "→" is one column, though three bytes.
  auto table = d_.cli("dns record ls example.com --type ALIAS");
  ASSERT_EQ(table.code, 0) << table.all();
  auto columns = [](const std::string& line) {
    return std::count_if(line.begin(), line.end(),
                         [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; });
  };
  std::istringstream lines(table.out);
  std::string header, row;
  std::getline(lines, header);
  ASSERT_TRUE(header.ends_with("POLICY")) << table.out;
  while (std::getline(lines, row)) {
    EXPECT_TRUE(has(row, "ALIAS → service web")) << row;
    EXPECT_EQ(columns(row) - 1, columns(header) - 6) << table.out;  // POLICY "-" under its head
  }
  ASSERT_EQ(d_.cli("dns record upsert example.com --name t --type ALIAS --alias-service web2").code,
            0);
  auto un = d_.cli("domain unlink web t.example.com");
  ASSERT_EQ(un.code, 0) << un.all();
  EXPECT_TRUE(has(un.out, "kept ALIAS t.example.com in zone example.com: changed since link"))
      << un.out;
  auto rec = d_.cli("dns record ls example.com --json");
  EXPECT_TRUE(has(rec.out, "web2")) << rec.out;
  // The one left as link wrote it goes.
  auto un2 = d_.cli("domain unlink web u.example.com --json");
  ASSERT_EQ(un2.code, 0) << un2.all();
  EXPECT_EQ(jq(un2.out, ".kept_records"), "[]") << un2.out;
  EXPECT_EQ(dig("u.example.com A"), "");
}

TEST_F(Domains, CaaThatForbidsBerthFailsWithTheReason) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("dns record upsert example.com --name @ --type CAA --value '0 issue "
                   "\"letsencrypt.org\"'")
                .code,
            0);
  auto link = d_.cli("domain link web shop.example.com");
  EXPECT_EQ(link.code, 1) << link.all();
  EXPECT_TRUE(has(link.out, "CAA records at example.com allow only letsencrypt.org")) << link.out;
  EXPECT_EQ(show("shop.example.com", ".records"), "[]");
  EXPECT_EQ(dig("shop.example.com A"), "");
}

TEST_F(Domains, AWildcardIsLinkedAndAnswersForEveryName) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  auto link = d_.cli("domain link web '*.preview.example.com'");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "*.preview.example.com: ACTIVE")) << link.out;
  EXPECT_EQ(dig("pr-12.preview.example.com A"), "127.0.0.1\n");
}

TEST_F(Domains, ANameOutsideBerthsZonesWaitsForTheUsersRecords) {
  auto link = d_.cli("domain link web shop.example.org");
  EXPECT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "shop.example.org: PENDING_DNS")) << link.out;
  EXPECT_TRUE(has(link.out, "shop.example.org. 300 IN A 127.0.0.1")) << link.out;
  EXPECT_EQ(show("shop.example.org", ".status"), R"("PENDING_DNS")");
}

TEST_F(Domains, MissingArgumentsAreNamed) {
  auto reg = d_.cli("domain link --registry");
  EXPECT_NE(reg.code, 0);
  EXPECT_TRUE(has(reg.err, "--registry needs a DOMAIN")) << reg.all();
  auto svc = d_.cli("domain link web");
  EXPECT_NE(svc.code, 0);
  EXPECT_TRUE(has(svc.err, "needs SERVICE DOMAIN (or --registry DOMAIN)")) << svc.all();
  auto un = d_.cli("domain unlink --registry");
  EXPECT_NE(un.code, 0);
  EXPECT_TRUE(has(un.err, "--registry needs a DOMAIN")) << un.all();
}

// `domain renew`: a new certificate at once for every name it covers, served right away; a
// pending name's steps are tried again; unknown and FAILED names are refused with the reason.
TEST_F(Domains, RenewIssuesANewCertificateNowAndRefusesWhatItCannotRenew) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("domain link web example.com --www").code, 0);
  std::string first = show("example.com", ".serial");
  ASSERT_NE(first, R"("")");
  EXPECT_EQ(show("www.example.com", ".serial"), first) << "one certificate for both names";
  auto renew = d_.cli("domain renew www.example.com");
  ASSERT_EQ(renew.code, 0) << renew.all();
  EXPECT_TRUE(has(renew.out, "www.example.com: renewing the certificate that expires"))
      << renew.out;
  EXPECT_TRUE(has(renew.out, "www.example.com: renewed, expires")) << renew.out;
  std::string now = show("example.com", ".serial");
  EXPECT_NE(now, first);
  EXPECT_EQ(show("www.example.com", ".serial"), now);
  EXPECT_TRUE(has(renew.out, "(serial " + unquote(now) + ")")) << renew.out;
  EXPECT_TRUE(has(show("example.com", ".steps[1].detail"), "renewed by berth root CA"));
  EXPECT_EQ(served_serial(d_.router_tls_port(), "example.com"), unquote(now));
  EXPECT_TRUE(has(d_.cli("domain show example.com").out, "serial       " + unquote(now)));

  // Renewing is an action of its own: reading a domain does not allow it.
  ASSERT_EQ(d_.cli("iam user create reader").code, 0);
  Json key = Json::parse(d_.cli("iam key create reader --json").out, nullptr, false);
  AdminCredentials reader{key.value("access_key_id", ""), key.value("secret_access_key", "")};
  TempDir pol;
  write_file(pol / "read.json", R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["domain:GetDomain"],"Resource":["domain/*"]}]})");
  ASSERT_EQ(d_.cli("iam policy put --user reader read --file " + pol / "read.json").code, 0);
  EXPECT_EQ(d_.cli_as(reader, "domain show example.com").code, 0);
  auto denied = d_.cli_as(reader, "domain renew example.com");
  EXPECT_NE(denied.code, 0);
  EXPECT_TRUE(has(denied.err, "domain:RenewDomain")) << denied.all();
  EXPECT_EQ(show("example.com", ".serial"), now) << "a denied renew changed nothing";

  auto unknown = d_.cli("domain renew nosuch.example.com");
  EXPECT_NE(unknown.code, 0);
  EXPECT_TRUE(has(unknown.err, "nosuch.example.com is not linked to any service")) << unknown.all();

  ASSERT_EQ(d_.cli("dns record upsert example.com --name shop --type A --value 127.0.0.7").code, 0);
  EXPECT_EQ(d_.cli("domain link web shop.example.com").code, 1);
  auto failed = d_.cli("domain renew shop.example.com");
  EXPECT_NE(failed.code, 0);
  EXPECT_TRUE(has(failed.err, "shop.example.com FAILED: shop.example.com already has A records"))
      << failed.all();
  EXPECT_TRUE(has(failed.err, "renew does not retry a failed link: link it again")) << failed.all();

  ASSERT_EQ(d_.cli("domain link web shop.example.org").code, 0);
  auto pending = d_.cli("domain renew shop.example.org --wait 10s");
  EXPECT_EQ(pending.code, 0) << pending.all();
  EXPECT_TRUE(has(pending.out, "shop.example.org: trying its waiting steps again now"))
      << pending.out;
  EXPECT_TRUE(has(pending.out, "shop.example.org. 300 IN A 127.0.0.1")) << pending.out;
}

// An IPv6 address the router serves only HTTPS on still gives linked names their AAAA (the
// addresses come from the TLS listeners as well as the plain ones).
class DomainsHttpsOnlyIpv6 : public Domains {
 protected:
  // The daemon starts in the constructor, before SetUp: the listener only where ::1 works.
  DomainsHttpsOnlyIpv6()
      : Domains([](config::Config& c) {
          if (can_bind("::1")) {
            c.router_tls_listen.push_back("[::1]:" + std::to_string(free_port()));
          }
        }) {}
  void SetUp() override {
    if (!can_bind("::1")) {
      GTEST_SKIP() << "::1 is not usable here";
    }
    Domains::SetUp();
  }
};

TEST_F(DomainsHttpsOnlyIpv6, TheAliasAnswersAaaaForAnHttpsOnlyIpv6Listener) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("domain link web example.com").code, 0);
  EXPECT_EQ(dig("example.com A"), "127.0.0.1\n");
  EXPECT_EQ(dig("example.com AAAA"), "::1\n");
}

// A name at another DNS host: berth finds the zone's name servers through the resolver and
// asks them directly. The other host is a second berthd serving example.org on port 53 of
// other_host() (name servers answer on 53), which also stands in for the resolver.
class DomainsElsewhere : public Domains {
 protected:
  DomainsElsewhere()
      : Domains([](config::Config& c) {
          c.tls.dns_check = true;
          c.tls.dns_check_resolver = other_host() + ":53";
        }) {}

  // Each test its own loopback address: ctest runs two tests at once, and two of these on one
  // address would find port 53 taken. (A new test gets the last one until it is listed.)
  static std::string other_host() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (name == "PendingDnsAsksTheZonesOwnNameServers") {
      return "127.0.2.53";
    }
    if (name == "PendingDnsFollowsACnameIntoAnotherZone") {
      return "127.0.2.54";
    }
    return "127.0.2.55";
  }

  void SetUp() override {
    // The other host's address: binding it needs root and a free port 53.
    if (!can_bind(other_host(), 53)) {
      GTEST_SKIP() << other_host() << ":53 cannot be bound here (needs root and a free port)";
    }
    Domains::SetUp();
  }
  // Waits (waking the domain worker each time; up to 30 s) until show(domain, field) contains
  // `want`; returns the last value seen.
  std::string wait_show(const std::string& domain, const std::string& field,
                        const std::string& want) {
    std::string seen;
    for (int i = 0; i < 300 && !has(seen, want); ++i) {
      d_.daemon().domains()->wake();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      seen = show(domain, field);
    }
    return seen;
  }
};

TEST_F(DomainsElsewhere, PendingDnsAsksTheZonesOwnNameServers) {
  TestDaemon other([](config::Config& c) { c.dns.listen = {other_host() + ":53"}; });
  ASSERT_EQ(other.cli("dns zone create example.org").code, 0);

  auto link = d_.cli("domain link web shop.example.org --wait 5s");
  EXPECT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "shop.example.org: PENDING_DNS")) << link.out;

  // The record made at the other host, pointing elsewhere first: still pending, saying where.
  ASSERT_EQ(other.cli("dns record upsert example.org --name shop --type A --value 127.0.0.9").code,
            0);
  std::string detail = wait_show("shop.example.org", ".steps[0].detail", "127.0.0.9");
  EXPECT_TRUE(has(detail, "at its zone's name servers it points at 127.0.0.9")) << detail;
  EXPECT_EQ(show("shop.example.org", ".status"), R"("PENDING_DNS")");

  // Pointed at this berth: the link goes on by itself.
  ASSERT_EQ(other.cli("dns record upsert example.org --name shop --type A --value 127.0.0.1").code,
            0);
  EXPECT_EQ(wait_show("shop.example.org", ".status", "ACTIVE"), R"("ACTIVE")")
      << show("shop.example.org", ".steps");
  EXPECT_TRUE(has(show("shop.example.org", ".steps[0].detail"),
                  "points at this berth at its zone's name servers"));

  // A record set too big for a UDP answer: the server cuts it (TC), and the check asks again
  // over TCP.
  std::string many = "dns record upsert example.org --name many --type A --value 127.0.0.1";
  for (int i = 10; i < 50; ++i) {
    many += " --value 127.0.0." + std::to_string(i);
  }
  ASSERT_EQ(other.cli(many).code, 0);
  auto udp = run("dig +notcp +noedns +norecurse +ignore @" + other_host() + " many.example.org A");
  EXPECT_TRUE(has(udp.out, " tc")) << "the UDP answer must be cut short: " << udp.out;
  auto big = d_.cli("domain link web many.example.org --wait 10s");
  EXPECT_EQ(big.code, 0) << big.all();
  EXPECT_EQ(wait_show("many.example.org", ".status", "ACTIVE"), R"("ACTIVE")")
      << show("many.example.org", ".steps");
}

// A www pointed with a CNAME at a host name in another zone (a provider's, say): berth follows
// it to that zone's own name servers. berth's DNS, like other authoritative servers, follows a
// CNAME only within the zone the question fell in.
TEST_F(DomainsElsewhere, PendingDnsFollowsACnameIntoAnotherZone) {
  TestDaemon other([](config::Config& c) { c.dns.listen = {other_host() + ":53"}; });
  for (const char* cmd : {"dns zone create example.org", "dns zone create example.net",
                          "dns record upsert example.org --name www --type CNAME --value "
                          "edge.example.net",
                          "dns record upsert example.net --name edge --type A --value 127.0.0.9"}) {
    auto r = other.cli(cmd);
    ASSERT_EQ(r.code, 0) << cmd << ": " << r.all();
  }
  auto answer = run("dig +short +norecurse @" + other_host() + " www.example.org A");
  EXPECT_EQ(trimmed(answer.out), "edge.example.net.")
      << "the answer must end at the CNAME for berth to follow it";

  auto link = d_.cli("domain link web www.example.org --wait 5s");
  EXPECT_EQ(link.code, 0) << link.all();
  std::string detail = wait_show("www.example.org", ".steps[0].detail", "127.0.0.9");
  EXPECT_TRUE(has(detail, "at its zone's name servers it points at edge.example.net -> 127.0.0.9"))
      << detail;

  ASSERT_EQ(other.cli("dns record upsert example.net --name edge --type A --value 127.0.0.1").code,
            0);
  EXPECT_EQ(wait_show("www.example.org", ".status", "ACTIVE"), R"("ACTIVE")")
      << show("www.example.org", ".steps");
  EXPECT_TRUE(has(show("www.example.org", ".steps[0].detail"),
                  "www.example.org points at this berth at its zone's name servers through "
                  "CNAME edge.example.net"))
      << show("www.example.org", ".steps");

  // A loop across the two zones stays pending and says so.
  for (const char* cmd : {"dns record upsert example.org --name loop --type CNAME --value "
                          "back.example.net",
                          "dns record upsert example.net --name back --type CNAME --value "
                          "loop.example.org"}) {
    auto r = other.cli(cmd);
    ASSERT_EQ(r.code, 0) << cmd << ": " << r.all();
  }
  auto loop = d_.cli("domain link web loop.example.org --wait 5s");
  EXPECT_EQ(loop.code, 0) << loop.all();
  EXPECT_EQ(wait_show("loop.example.org", ".status", "PENDING_DNS"), R"("PENDING_DNS")");
  const std::string kLoop =
      "a CNAME loop: loop.example.org -> back.example.net -> loop.example.org";
  EXPECT_TRUE(has(wait_show("loop.example.org", ".steps[0].detail", kLoop), kLoop))
      << show("loop.example.org", ".steps");
}

class ShortLivedDomains : public Domains {
 protected:
  ShortLivedDomains()
      : Domains([](config::Config& c) { c.tls.internal_lifetime = std::chrono::seconds(12); }) {}
};

// Certificates renew at two thirds of their lifetime.
TEST_F(ShortLivedDomains, ACertificateIsRenewedBeforeItExpires) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("domain link web example.com").code, 0);
  std::string first = show("example.com", ".expires_at");
  std::string now = first;
  for (int i = 0; i < 300 && now == first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = show("example.com", ".expires_at");
  }
  EXPECT_NE(now, first) << "not renewed within 30 s";
  // At two thirds of the 12 s lifetime: 4 s before the end.
  int64_t renew_at = std::stoll(show("example.com", ".renew_at"));
  int64_t expires_at = std::stoll(show("example.com", ".expires_at"));
  EXPECT_GE(expires_at - renew_at, 3);
  EXPECT_LE(expires_at - renew_at, 5);
  EXPECT_TRUE(has(show("example.com", ".steps[1].detail"), "renewed by berth root CA"))
      << show("example.com", ".steps");
  EXPECT_EQ(show("example.com", ".status"), R"("ACTIVE")");
}

}  // namespace
}  // namespace berth::test
