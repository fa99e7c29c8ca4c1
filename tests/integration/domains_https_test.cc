// SPDX-License-Identifier: Apache-2.0
// Linked domains served over HTTPS by the router: with berth's own CA (curl verifies the chain
// against `berth ca export`), and with ACME from Debian's pebble, which resolves every name
// through berth's DNS and so validates DNS-01 against the TXT records berth writes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "support/harness.h"
#include "support/pebble.h"

namespace berth::test {
namespace {

// curl over HTTPS to name on the router's TLS port, trusting only root: "CODE BODY".
std::string https_get(const std::string& root, const std::string& name, uint16_t port,
                      const std::string& path = "/") {
  auto r = run("curl -s --max-time 10 --cacert " + root + " --resolve " + name + ":" +
               std::to_string(port) + ":127.0.0.1 -w ' %{http_code}' https://" + name + ":" +
               std::to_string(port) + path);
  return r.code == 0 ? r.out : "curl exit " + std::to_string(r.code) + ": " + r.err;
}

std::string show(const TestDaemon& d, const std::string& name, const std::string& filter) {
  auto r = d.cli("domain show '" + name + "' --json");
  EXPECT_EQ(r.code, 0) << r.all();
  return jq(r.out, filter);
}

TEST(DomainsHttps, BerthsCaCertificatesAreServedBySniAndVerifiedAgainstTheExportedRoot) {
  if (!have("curl")) {
    GTEST_SKIP() << "curl is not installed";
  }
  TestDaemon d;
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("domain link web example.com --www").code, 0);
  ASSERT_EQ(d.cli("domain link web '*.preview.example.com'").code, 0);
  TempDir t;
  auto ca = d.cli("ca export");
  ASSERT_EQ(ca.code, 0) << ca.all();
  write_file(t / "root.pem", ca.out);
  uint16_t tls = d.router_tls_port();
  ASSERT_NE(tls, 0);

  // The service has no instance yet: the router answers for it, over a verified TLS session.
  const std::string unavailable = "service web has no deployed revision yet";
  for (const char* name : {"example.com", "www.example.com", "pr-7.preview.example.com"}) {
    std::string got = https_get(t / "root.pem", name, tls);
    EXPECT_TRUE(has(got, unavailable) && has(got, " 503")) << name << ": " << got;
  }
  // Another root does not verify berth's chain.
  auto other = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                   t / "k.pem" + " -out " + t / "other.pem" + " -days 1 -subj /CN=other");
  ASSERT_EQ(other.code, 0) << other.all();
  EXPECT_TRUE(has(https_get(t / "other.pem", "example.com", tls), "curl exit 60"));

  // Plain HTTP redirects to HTTPS (308), keeping the path and query; ACME's path does not (a
  // token nobody presented goes to the service, which has no instance: 503).
  std::string rport = std::to_string(d.router_port());
  auto redirect =
      run("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --resolve example.com:" + rport +
          ":127.0.0.1 'http://example.com:" + rport + "/a/b?c=1'");
  EXPECT_EQ(redirect.out, "308 https://example.com:" + std::to_string(tls) + "/a/b?c=1");
  auto challenge = run("curl -s -o /dev/null -w '%{http_code}' --resolve example.com:" + rport +
                       ":127.0.0.1 http://example.com:" + rport + "/.well-known/acme-challenge/x");
  EXPECT_EQ(challenge.out, "503");

  // Unlinked: the name is no longer served with a certificate for it.
  ASSERT_EQ(d.cli("domain unlink web www.example.com").code, 0);
  ASSERT_EQ(d.cli("domain unlink web example.com").code, 0);
  EXPECT_TRUE(has(https_get(t / "root.pem", "example.com", tls), "curl exit"));
  std::string still = https_get(t / "root.pem", "pr-8.preview.example.com", tls);
  EXPECT_TRUE(has(still, " 503")) << still;
}

// `domain link --registry`: berthd's own registry/API listener serves the name over TLS with a
// certificate from the same machinery, while plain HTTP keeps working on the same port.
TEST(DomainsHttps, RegistryNameIsServedOverTlsOnTheApiPortNextToPlainHttp) {
  if (!have("curl") || !have("dig")) {
    GTEST_SKIP() << "curl or dig is not installed";
  }
  TestDaemon d;
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  // A service's name beside it: its certificate is the router's, never the API listener's.
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("domain link web shop.example.com").code, 0);
  std::string port = std::to_string(d.port());
  // Before any --registry link the API port speaks plain HTTP only.
  EXPECT_NE(run("curl -sk -o /dev/null --max-time 10 https://127.0.0.1:" + port + "/v2/").code, 0);
  auto link = d.cli("domain link --registry registry.example.com");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "registry.example.com: linking to the registry")) << link.out;
  EXPECT_TRUE(has(link.out, "registry.example.com: ACTIVE")) << link.out;
  EXPECT_EQ(show(d, "registry.example.com", ".registry"), "true");
  auto ls = d.cli("domain ls");
  EXPECT_TRUE(has(ls.out, "(registry)")) << ls.out;

  // The name points at the API listener (an A record, not the router's ALIAS).
  std::string dig = "dig @127.0.0.1 -p " + std::to_string(d.dns_port()) + " +short ";
  EXPECT_EQ(trimmed(run(dig + "registry.example.com A").out), "127.0.0.1");

  TempDir t;
  auto ca = d.cli("ca export");
  ASSERT_EQ(ca.code, 0) << ca.all();
  write_file(t / "root.pem", ca.out);
  auto api_get = [&](const std::string& name) {
    return run("curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert " + t / "root.pem" +
               " --resolve " + name + ":" + port + ":127.0.0.1 https://" + name + ":" + port +
               "/v2/");
  };
  // The service's name does not verify on the API port: its certificate is not served there.
  auto foreign = api_get("shop.example.com");
  EXPECT_NE(foreign.code, 0) << foreign.all();
  // TLS on the API port, verified against berth's root: the registry's challenge names the
  // https realm the client came by.
  auto v2 = run("curl -s -D - -o /dev/null --max-time 10 --cacert " + t / "root.pem" +
                " --resolve registry.example.com:" + port +
                ":127.0.0.1 https://registry.example.com:" + port + "/v2/");
  ASSERT_EQ(v2.code, 0) << v2.all();
  EXPECT_TRUE(has(v2.out, " 401")) << v2.out;
  EXPECT_TRUE(has(v2.out, "realm=\"https://registry.example.com:" + port + "/v2/token\""))
      << v2.out;
  // Plain HTTP on the same port as before, for loopback clients and the CLI.
  auto plain = run("curl -s -o /dev/null -w '%{http_code}' --max-time 10 " + d.url() + "/v2/");
  EXPECT_EQ(plain.out, "401");
  // A client that sends something else first gets a refusal, and berthd carries on.
  run("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + port +
      "; printf \"\\x16\\x03\\x01\\x00\\x05hello\" >&3; cat <&3 >/dev/null'");
  EXPECT_EQ(run("curl -s -o /dev/null -w '%{http_code}' " + d.url() + "/healthz").out, "200");

  // The name is the registry's: a service cannot take it.
  auto taken = d.cli("domain link web registry.example.com");
  EXPECT_NE(taken.code, 0);
  EXPECT_TRUE(has(taken.err, "registry.example.com is already linked to the registry"))
      << taken.all();
  // Unlinking it as a service's name is refused and changes nothing.
  auto wrong = d.cli("domain unlink web registry.example.com");
  EXPECT_NE(wrong.code, 0);
  EXPECT_TRUE(has(wrong.err, "linked to the registry, not web")) << wrong.all();

  auto unlink = d.cli("domain unlink --registry registry.example.com");
  ASSERT_EQ(unlink.code, 0) << unlink.all();
  EXPECT_TRUE(has(unlink.out, "unlinked registry.example.com from the registry")) << unlink.out;
  EXPECT_EQ(run(dig + "registry.example.com A").out, "");
  auto after = run("curl -s -o /dev/null --max-time 10 --cacert " + t / "root.pem" +
                   " --resolve registry.example.com:" + port +
                   ":127.0.0.1 https://registry.example.com:" + port + "/v2/");
  EXPECT_NE(after.code, 0) << "TLS still served after unlink";
  // No TLS at all, though the service's name (the router's) is still linked.
  EXPECT_NE(run("curl -sk -o /dev/null --max-time 10 https://127.0.0.1:" + port + "/v2/").code, 0);
  EXPECT_EQ(run("curl -s -o /dev/null -w '%{http_code}' " + d.url() + "/v2/").out, "401");
}

// With the router's HTTPS listener off, a link still completes (the certificate is kept for
// when it is on), but says the name is served over plain HTTP only, and plain HTTP is not
// redirected to an HTTPS nobody serves.
TEST(DomainsHttps, WithHttpsOffALinkSaysItServesPlainHttpOnly) {
  TestDaemon d([](config::Config& c) {
    c.router_tls_enabled = false;
    c.router_tls_listen.clear();
  });
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  auto link = d.cli("domain link web shop.example.com");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "served over plain HTTP only: the router's HTTPS listener is off"))
      << link.out;
  EXPECT_FALSE(has(link.out, "served over HTTPS")) << link.out;
  std::string rport = std::to_string(d.router_port());
  auto plain = run("curl -s -o /dev/null -w '%{http_code}' --resolve shop.example.com:" + rport +
                   ":127.0.0.1 http://shop.example.com:" + rport + "/");
  EXPECT_NE(plain.out, "308") << "redirected to an HTTPS listener that is off";
}

// Links that fail (a name of another service's, a user's record in the way, a CAA record that
// forbids berth's CA) leave what the service already had as it was: its linked name is still
// served over HTTPS, and web.localhost over plain HTTP.
TEST(DomainsHttps, AFailedLinkLeavesTheServicesOtherNamesServing) {
  if (!have("curl")) {
    GTEST_SKIP() << "curl is not installed";
  }
  TestDaemon d;
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("service create api --image web/api:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("domain link web app.example.com").code, 0);
  TempDir t;
  write_file(t / "root.pem", d.cli("ca export").out);
  const std::string unavailable = "service web has no deployed revision yet";
  auto served = [&] {
    std::string https = https_get(t / "root.pem", "app.example.com", d.router_tls_port());
    EXPECT_TRUE(has(https, unavailable) && has(https, " 503")) << https;
    auto plain = run("curl -s -m 10 -H 'Host: web.localhost' -w ' %{http_code}' " +
                     std::string("http://127.0.0.1:") + std::to_string(d.router_port()) + "/");
    EXPECT_TRUE(has(plain.out, unavailable) && has(plain.out, " 503")) << plain.all();
  };
  served();

  EXPECT_NE(d.cli("domain link api app.example.com").code, 0);
  ASSERT_EQ(d.cli("dns record upsert example.com --name taken --type A --value 127.0.0.7").code, 0);
  EXPECT_EQ(d.cli("domain link web taken.example.com").code, 1);
  ASSERT_EQ(d.cli("dns record upsert example.com --name shop --type CAA --value '0 issue "
                  "\"letsencrypt.org\"'")
                .code,
            0);
  EXPECT_EQ(d.cli("domain link web shop.example.com").code, 1);
  EXPECT_EQ(show(d, "app.example.com", ".status"), R"("ACTIVE")");
  EXPECT_EQ(show(d, "app.example.com", ".service"), R"("web")");
  served();
}

// berthd restarted on the same data: the same root, the same certificates served by SNI on
// the new run's port, and a link still waiting for its DNS picks up where it was.
TEST(DomainsHttps, ARestartKeepsTheRootTheCertificatesAndThePendingLinks) {
  if (!have("curl")) {
    GTEST_SKIP() << "curl is not installed";
  }
  TempDir data, t;
  // Never ask this machine's resolver about example.org (tests stay on loopback).
  write_file(t / "berthd.yaml", "version: 1\ntls:\n  dns_check: false\n");
  BerthdProcess p(data.path(), {"--config", t / "berthd.yaml"});
  ASSERT_NO_FATAL_FAILURE(p.start());
  ASSERT_EQ(p.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(p.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(p.cli("domain link web example.com --www").code, 0);
  auto pending = p.cli("domain link web shop.example.org --wait 10s");
  ASSERT_EQ(pending.code, 0) << pending.all();
  ASSERT_TRUE(has(pending.out, "shop.example.org: PENDING_DNS")) << pending.out;
  std::string root = p.cli("ca export").out;
  ASSERT_FALSE(root.empty());
  auto serial = [&](const std::string& name) {
    return jq(p.cli("domain show " + name + " --json").out, ".serial");
  };
  std::string before = serial("example.com");

  ASSERT_EQ(p.terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(p.start());
  EXPECT_EQ(p.cli("ca export").out, root) << "berth's CA is the one users already trust";
  EXPECT_EQ(serial("example.com"), before);
  write_file(t / "root.pem", root);
  for (const char* name : {"example.com", "www.example.com"}) {
    std::string got = https_get(t / "root.pem", name, p.router_tls_port());
    EXPECT_TRUE(has(got, "service web has no deployed revision yet") && has(got, " 503"))
        << name << ": " << got;
  }
  auto shop = p.cli("domain show shop.example.org --json");
  EXPECT_EQ(jq(shop.out, ".status"), R"("PENDING_DNS")") << shop.all();
  // Its zone is now berth's: the waiting link writes its record itself and goes on.
  ASSERT_EQ(p.cli("dns zone create example.org").code, 0);
  auto go = p.cli("domain renew shop.example.org --wait 30s");
  EXPECT_EQ(go.code, 0) << go.all();
  EXPECT_TRUE(has(go.out, "shop.example.org: ACTIVE")) << go.out;
  std::string got = https_get(t / "root.pem", "shop.example.org", p.router_tls_port());
  EXPECT_TRUE(has(got, " 503")) << got;
  EXPECT_EQ(p.terminate(), 0);
}

// Private keys are sealed at rest: the database holds certificates, never a key in the clear
// (the leaves', berth's CA's, the ACME account's).
TEST(DomainsHttps, PrivateKeysAreSealedInTheDatabase) {
  TestDaemon d;
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("domain link web example.com --www").code, 0);
  // The raw database files (SQLite keeps text as it is; the WAL holds the latest pages).
  std::string raw;
  for (const char* f : {"/berth.db", "/berth.db-wal"}) {
    raw += read_file(d.data_dir() + f);
  }
  ASSERT_NE(raw.find("BEGIN CERTIFICATE"), std::string::npos)
      << "the certificates are not where this test looks";
  EXPECT_EQ(raw.find("PRIVATE KEY"), std::string::npos) << "a private key in the clear";
}

class DomainsAcme : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Pebble::available() || !have("dig")) {
      GTEST_SKIP() << "pebble or dig is not installed (scripts/setup --test installs them)";
    }
    dns_port_ = free_port();
    router_port_ = free_port();
    while (router_port_ == dns_port_) {
      router_port_ = free_port();
    }
    Pebble::Options o;
    o.dns_port = dns_port_;
    o.http_port = router_port_;
    o.blocked_domains = {"blocked.test"};
    o.certificate_validity_seconds = validity_;
    pebble_ = std::make_unique<Pebble>(o);
    std::string why;
    ASSERT_TRUE(pebble_->start(&why)) << why;
    d_ = std::make_unique<TestDaemon>([&](config::Config& c) {
      c.dns.listen = {"127.0.0.1:" + std::to_string(dns_port_)};
      c.router_listen = {"127.0.0.1:" + std::to_string(router_port_)};
      c.tls.issuer = "acme";
      c.acme.directory_url = pebble_->directory_url();
      c.acme.ca_bundle = pebble_->ca_bundle();
      c.acme.challenge = challenge_;
    });
    ASSERT_EQ(d_->cli("service create web --image web/app:v1 --auto-deploy").code, 0);
    ASSERT_EQ(d_->cli("dns zone create example.com").code, 0);
    write_file(t_ / "pebble-root.pem", pebble_->root_pem(&why));
  }
  uint32_t validity_ = 0;
  std::string challenge_ = "auto";
  uint16_t dns_port_ = 0, router_port_ = 0;
  TempDir t_;
  std::unique_ptr<Pebble> pebble_;
  std::unique_ptr<TestDaemon> d_;
};

TEST_F(DomainsAcme, Dns01ThroughBerthsOwnDnsForTheApexWwwAndAWildcard) {
  auto link = d_->cli("domain link web example.com --www");
  ASSERT_EQ(link.code, 0) << link.all() << pebble_->log();
  EXPECT_TRUE(has(link.out, "example.com: ACTIVE")) << link.out;
  auto wild = d_->cli("domain link web '*.preview.example.com'");
  ASSERT_EQ(wild.code, 0) << wild.all() << pebble_->log();
  EXPECT_EQ(show(*d_, "*.preview.example.com", ".status"), R"("ACTIVE")");
  EXPECT_EQ(show(*d_, "example.com", ".issuer"), R"("acme")");
  // The challenge records are gone again; only the ALIASes link made remain.
  auto txt = run("dig @127.0.0.1 -p " + std::to_string(dns_port_) +
                 " +short _acme-challenge.example.com TXT");
  EXPECT_EQ(txt.out, "");
  for (const char* name : {"example.com", "www.example.com", "x.preview.example.com"}) {
    std::string got = https_get(t_ / "pebble-root.pem", name, d_->router_tls_port());
    EXPECT_TRUE(has(got, " 503")) << name << ": " << got;
  }
}

// A fresh certificate from an ACME CA is renewed again only with --force (CAs rate-limit).
TEST_F(DomainsAcme, RenewingAFreshAcmeCertificateNeedsForce) {
  ASSERT_EQ(d_->cli("domain link web example.com").code, 0) << pebble_->log();
  std::string first = show(*d_, "example.com", ".serial");
  auto refused = d_->cli("domain renew example.com");
  EXPECT_NE(refused.code, 0) << refused.all();
  EXPECT_TRUE(has(refused.err, "example.com's certificate was issued ")) << refused.all();
  EXPECT_TRUE(has(refused.err, "pass --force to renew it anyway")) << refused.all();
  EXPECT_EQ(show(*d_, "example.com", ".serial"), first);
  auto forced = d_->cli("domain renew example.com --force");
  EXPECT_EQ(forced.code, 0) << forced.all() << pebble_->log();
  EXPECT_TRUE(has(forced.out, "example.com: renewed, expires")) << forced.out;
  EXPECT_NE(show(*d_, "example.com", ".serial"), first);
}

TEST_F(DomainsAcme, ARejectedOrderFailsWithPebblesWordsAndLeavesNoRecord) {
  ASSERT_EQ(d_->cli("dns zone create blocked.test").code, 0);
  auto link = d_->cli("domain link web www.blocked.test");
  EXPECT_EQ(link.code, 1) << link.all();
  EXPECT_TRUE(has(link.out, "urn:ietf:params:acme:error:rejectedIdentifier")) << link.out;
  EXPECT_TRUE(has(show(*d_, "www.blocked.test", ".last_error"), "issuance is forbidden by policy"));
  EXPECT_EQ(show(*d_, "www.blocked.test", ".records"), "[]");
  auto a = run("dig @127.0.0.1 -p " + std::to_string(dns_port_) + " +short www.blocked.test A");
  EXPECT_EQ(a.out, "");
}

// A wildcard needs DNS-01, so berth must host its zone: refused at link, not after the user
// made records. An ACME server that cannot be reached leaves the link waiting with the reason,
// and `link` says so instead of following it for its whole --wait.
TEST_F(DomainsAcme, AWildcardOutsideBerthsZonesAndAnAcmeServerAwayAreSaidAtOnce) {
  auto wild = d_->cli("domain link web '*.preview.example.org'");
  EXPECT_NE(wild.code, 0) << wild.all();
  EXPECT_TRUE(has(wild.all(),
                  "*.preview.example.org is a wildcard, which an ACME CA validates "
                  "only through DNS-01, and berth hosts no zone for "
                  "preview.example.org"))
      << wild.all();
  EXPECT_NE(d_->cli("domain show '*.preview.example.org'").code, 0) << "nothing was linked";

  pebble_->stop();
  auto start = std::chrono::steady_clock::now();
  auto link = d_->cli("domain link web shop.example.com --wait 120s");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "shop.example.com: PENDING_CERTIFICATE: ")) << link.out;
  EXPECT_TRUE(has(link.out, "berth tries again every minute")) << link.out;
  EXPECT_LT(took, std::chrono::seconds(90)) << "followed the link for its whole --wait";
  EXPECT_FALSE(show(*d_, "shop.example.com", ".last_error").empty());

  // The ACME server is back: `domain renew` runs the waiting step now instead of at the next
  // minute, and the link completes.
  std::string why;
  ASSERT_TRUE(pebble_->start(&why)) << why;
  auto retry = d_->cli("domain renew shop.example.com --wait 60s");
  EXPECT_EQ(retry.code, 0) << retry.all() << pebble_->log();
  EXPECT_TRUE(has(retry.out, "shop.example.com: trying its waiting steps again now")) << retry.out;
  EXPECT_TRUE(has(retry.out, "shop.example.com: ACTIVE")) << retry.out;
  EXPECT_FALSE(has(retry.out, "refused"))
      << "the last attempt's error, shown as this one's: " << retry.out;
  write_file(t_ / "pebble-root-2.pem", pebble_->root_pem(&why));
  std::string got = https_get(t_ / "pebble-root-2.pem", "shop.example.com", d_->router_tls_port());
  EXPECT_TRUE(has(got, " 503")) << got;
}

class Http01Acme : public DomainsAcme {
 protected:
  Http01Acme() { challenge_ = "http-01"; }
};

// `domain link` over HTTP-01: pebble resolves the names through berth's DNS to the router and
// fetches the challenge from it over plain HTTP (which otherwise redirects linked names).
TEST_F(Http01Acme, TheRouterAnswersHttp01ForTheApexAndWww) {
  auto link = d_->cli("domain link web example.com --www");
  ASSERT_EQ(link.code, 0) << link.all() << pebble_->log();
  EXPECT_TRUE(has(link.out, "example.com: ACTIVE")) << link.out;
  EXPECT_TRUE(has(link.out, "www.example.com: ACTIVE")) << link.out;
  EXPECT_TRUE(has(pebble_->log(), "Attempting to validate w/ HTTP: http://www.example.com:"))
      << pebble_->log();
  // No TXT record was made: the proof went through the router.
  auto txt = run("dig @127.0.0.1 -p " + std::to_string(dns_port_) +
                 " +short _acme-challenge.example.com TXT");
  EXPECT_EQ(txt.out, "");
  for (const char* name : {"example.com", "www.example.com"}) {
    std::string got = https_get(t_ / "pebble-root.pem", name, d_->router_tls_port());
    EXPECT_TRUE(has(got, " 503")) << name << ": " << got;
  }
  // A wildcard still needs DNS-01, which berth answers in its zone.
  auto wild = d_->cli("domain link web '*.preview.example.com'");
  ASSERT_EQ(wild.code, 0) << wild.all() << pebble_->log();
  EXPECT_EQ(show(*d_, "*.preview.example.com", ".status"), R"("ACTIVE")");
}

class ShortLivedAcme : public DomainsAcme {
 protected:
  ShortLivedAcme() { validity_ = 15; }
};

// Pebble issues 15-second certificates: berth renews at two thirds and serves the new one.
TEST_F(ShortLivedAcme, ACertificateIsRenewedAndTheNewOneServed) {
  ASSERT_EQ(d_->cli("domain link web example.com").code, 0);
  std::string first = show(*d_, "example.com", ".expires_at");
  std::string now = first;
  for (int i = 0; i < 400 && now == first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = show(*d_, "example.com", ".expires_at");
  }
  ASSERT_NE(now, first) << "not renewed within 40 s\n" << pebble_->log();
  // The router serves the renewed certificate: its notAfter is the new one.
  auto end =
      run("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(d_->router_tls_port()) +
          " -servername example.com 2>/dev/null | openssl x509 -noout -enddate -dateopt iso_8601");
  ASSERT_EQ(end.code, 0) << end.all();
  auto want = run("date -u -d @" + now + " '+%Y-%m-%d %H:%M:%S'");
  EXPECT_TRUE(has(end.out, want.out.substr(0, 19))) << end.out << " vs " << want.out;
}

// 30-second certificates, renewed at 20 s: time enough to restart pebble before the first
// renewal on a loaded machine.
class RenewalAcme : public DomainsAcme {
 protected:
  RenewalAcme() { validity_ = 30; }
};

// A renewal the ACME server refuses keeps the old certificate serving, shows the server's own
// words in `domain ls` and backs off; `domain renew` tries again at once, and succeeds once
// the server issues again.
TEST_F(RenewalAcme, AFailedRenewalKeepsTheOldCertificateAndSaysWhy) {
  ASSERT_EQ(d_->cli("domain link web example.com").code, 0) << pebble_->log();
  auto serial = [&] { return unquote(show(*d_, "example.com", ".serial")); };
  std::string first = serial();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(served_serial(d_->router_tls_port(), "example.com"), first);

  // The same ACME server, now refusing the name (pebble forgets everything when it stops).
  pebble_->stop();
  pebble_->set_blocked_domains({"example.com"});
  std::string why;
  ASSERT_TRUE(pebble_->start(&why)) << why;
  std::string retry = "0";
  for (int i = 0; i < 450 && retry == "0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    retry = show(*d_, "example.com", ".retry_at");
  }
  ASSERT_NE(retry, "0") << "no failed renewal within 45 s\n" << pebble_->log();
  int64_t in = std::stoll(retry) - static_cast<int64_t>(::time(nullptr));
  EXPECT_GE(in, 100) << "the first retry waits 2 minutes";
  EXPECT_LE(in, 125);
  std::string error = show(*d_, "example.com", ".last_error");
  EXPECT_TRUE(has(error, "renewal failed") && has(error, "issuance is forbidden by policy"))
      << error;
  EXPECT_TRUE(has(d_->cli("domain ls").out, "issuance is forbidden by policy"));
  EXPECT_EQ(show(*d_, "example.com", ".status"), R"("ACTIVE")");
  EXPECT_EQ(serial(), first);
  EXPECT_EQ(served_serial(d_->router_tls_port(), "example.com"), first);

  // `domain renew` does not wait out the back-off; it says why the attempt failed.
  auto again = d_->cli("domain renew example.com");
  EXPECT_EQ(again.code, 1) << again.all();
  EXPECT_TRUE(has(again.out, "issuance is forbidden by policy")) << again.out;
  EXPECT_TRUE(has(again.out, "keeps serving; berth tries again at")) << again.out;

  pebble_->stop();
  pebble_->set_blocked_domains({});
  ASSERT_TRUE(pebble_->start(&why)) << why;
  auto renewed = d_->cli("domain renew example.com");
  EXPECT_EQ(renewed.code, 0) << renewed.all() << pebble_->log();
  EXPECT_TRUE(has(renewed.out, "example.com: renewed, expires")) << renewed.out;
  std::string now = serial();
  EXPECT_NE(now, first);
  EXPECT_EQ(served_serial(d_->router_tls_port(), "example.com"), now);
  EXPECT_EQ(show(*d_, "example.com", ".last_error"), R"("")");
  EXPECT_EQ(show(*d_, "example.com", ".retry_at"), "0");
}

// The usual setup on the internet: the zone is at another DNS host and the certificate comes
// from an ACME CA over HTTP-01. link waits for the user's record (PENDING_DNS, checked at the
// zone's own name servers), then pebble fetches the challenge from the router, and the name is
// served over HTTPS. The other DNS host is a second berthd serving example.org on
// 127.0.1.54:53 (where berth's check finds it; DomainsElsewhere uses 127.0.2.x, and ctest
// runs two tests at once) and on a loopback port (where pebble resolves).
TEST(DomainsElsewhereAcme, PendingDnsThenHttp01ThroughTheRouter) {
  if (!Pebble::available() || !have("curl")) {
    GTEST_SKIP() << "pebble or curl is not installed (scripts/setup --test installs them)";
  }
  if (!can_bind("127.0.1.54", 53)) {
    GTEST_SKIP() << "127.0.1.54:53 cannot be bound here (needs root and a free port)";
  }
  uint16_t other_dns = free_port();
  TestDaemon other([&](config::Config& c) {
    c.dns.listen = {"127.0.1.54:53", "127.0.0.1:" + std::to_string(other_dns)};
  });
  ASSERT_EQ(other.cli("dns zone create example.org").code, 0);

  uint16_t router_port = free_port();
  while (router_port == other_dns) {
    router_port = free_port();
  }
  Pebble::Options o;
  o.dns_port = other_dns;
  o.http_port = router_port;
  Pebble pebble(o);
  std::string why;
  ASSERT_TRUE(pebble.start(&why)) << why;
  TestDaemon d([&](config::Config& c) {
    c.router_listen = {"127.0.0.1:" + std::to_string(router_port)};
    c.tls.issuer = "acme";
    c.acme.directory_url = pebble.directory_url();
    c.acme.ca_bundle = pebble.ca_bundle();
    c.tls.dns_check = true;
    c.tls.dns_check_resolver = "127.0.1.54:53";
  });
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);

  auto link = d.cli("domain link web shop.example.org --wait 5s");
  EXPECT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "shop.example.org: PENDING_DNS")) << link.out;
  EXPECT_TRUE(has(link.out, "shop.example.org. 300 IN A 127.0.0.1")) << link.out;

  // The user makes the record at their DNS host; `domain renew` checks now instead of within
  // the minute, and follows the link to its end.
  ASSERT_EQ(other.cli("dns record upsert example.org --name shop --type A --value 127.0.0.1").code,
            0);
  auto go = d.cli("domain renew shop.example.org --wait 60s");
  EXPECT_EQ(go.code, 0) << go.all() << pebble.log();
  EXPECT_TRUE(has(go.out, "shop.example.org: ACTIVE")) << go.out << pebble.log();
  EXPECT_EQ(show(d, "shop.example.org", ".issuer"), R"("acme")");
  EXPECT_TRUE(has(pebble.log(), "Attempting to validate w/ HTTP: http://shop.example.org:"))
      << pebble.log();
  TempDir t;
  write_file(t / "pebble-root.pem", pebble.root_pem(&why));
  std::string got = https_get(t / "pebble-root.pem", "shop.example.org", d.router_tls_port());
  EXPECT_TRUE(has(got, "service web has no deployed revision yet") && has(got, " 503")) << got;
}

}  // namespace
}  // namespace berth::test
