// SPDX-License-Identifier: Apache-2.0
// A data directory written by the previous release opens in this one: tests/data/upgrade/ keeps
// one per shipped schema (README.md there says how each was made), and each must start, serve
// its image, sign its users in and pass fsck.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/registry_client.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// What tests/data/upgrade/main-0657134.tar.gz holds (made by berthd at commit 0657134).
constexpr const char* kFixture = "main-0657134.tar.gz";
constexpr const char* kManifest =
    "sha256:c20f808dbf33648d73a8d5bf9722ce1f87868add172287c535ee33e60cfec5af";
constexpr const char* kConfig =
    "sha256:d4999b1e9a64c665bf592abd7c200554d9a86eafe2eb70a4000f109dbabe0b36";
constexpr const char* kLayer =
    "sha256:3a627f17a9101cb6b5d7d4405812bd7ccc91e5c89b041136c4f05cdeca10ed5d";
// User ci: may pull repository/fixture/* (a test fixture's key, never used anywhere else).
constexpr const char* kCiKey = "BKLUK7AICDPGL7FXYLGU";
constexpr const char* kCiSecret = "y8XOMiufYTN2zLwzC5SGV4VmH43Z9Af3mlhP8PyQ";

TEST(UpgradeTest, PreviousReleaseDataDirOpensWithEverythingInIt) {
  TempDir work;
  std::string data = work / "data";
  auto x = run("mkdir -p " + data + " && tar -xzf " + std::string(BERTH_SOURCE_DIR) +
               "/tests/data/upgrade/" + kFixture + " -C " + data);
  ASSERT_EQ(x.code, 0) << x.all();
  {
    BerthdProcess p(data);
    p.start();  // the fixture's admin.credentials still sign in
    RegistryClient admin(p.port(), p.admin().basic_header());
    auto m = admin.get("/v2/fixture/app/manifests/v1", {{"Accept", kOciManifestType}});
    ASSERT_EQ(m.status, 200) << m.describe();
    EXPECT_EQ(sha256_digest(m.body), kManifest);
    for (const char* d : {kConfig, kLayer}) {
      auto b = admin.get(std::string("/v2/fixture/app/blobs/") + d);
      EXPECT_EQ(b.status, 200) << b.describe();
      EXPECT_EQ(sha256_digest(b.body), d);
    }

    // The user, its key and its policy: pull allowed, push denied.
    RegistryClient ci(p.port(), "Basic " + base64(std::string(kCiKey) + ":" + kCiSecret));
    auto pull = ci.get("/v2/fixture/app/manifests/v1", {{"Accept", kOciManifestType}});
    EXPECT_EQ(pull.status, 200) << pull.describe();
    auto denied = ci.push_blob("fixture/app", "ci may not push");
    EXPECT_EQ(denied.status, 403) << denied.describe();

    // A push into the upgraded store works as on a new one.
    auto pushed = admin.push_blob("fixture/app", "pushed after the upgrade");
    EXPECT_EQ(pushed.status, 201) << pushed.describe();

    // The service spec and the build project (with its git remote) came along.
    auto svc = p.cli("service show web");
    EXPECT_EQ(svc.code, 0) << svc.all();
    EXPECT_NE(svc.out.find("fixture/app:v1"), std::string::npos) << svc.out;
    auto proj = p.cli("build project ls");
    EXPECT_EQ(proj.code, 0) << proj.all();
    EXPECT_NE(proj.out.find("site"), std::string::npos) << proj.out;
    EXPECT_EQ(p.terminate(), 0);
  }
  auto fsck = run(bin("berthd") + " fsck --data " + data);
  EXPECT_EQ(fsck.code, 0) << fsck.all();

  // Offline, the upgraded directory backs up and restores whole, git remote included.
  auto b = run(bin("berthd") + " backup --data " + data + " --to " + (work / "up.tar"));
  ASSERT_EQ(b.code, 0) << b.all();
  auto r = run(bin("berthd") + " restore --from " + (work / "up.tar") + " --data " +
               (work / "restored"));
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(run("test -f " + (work / "restored/git/site.git/HEAD")).code, 0);
  fsck = run(bin("berthd") + " fsck --data " + (work / "restored"));
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

// tests/data/upgrade/main-b526c8c.tar.gz (made by berthd at commit b526c8c, which kept each DNS
// zone as one JSON document): three zones, a sub-zone delegated from its parent, records of
// every kind berth stores, a routing policy and transfer settings. main-b526c8c/ holds each
// zone's export as that release wrote it.
constexpr const char* kDnsFixture = "main-b526c8c.tar.gz";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(UpgradeTest, DnsZonesFromThePreviousReleaseAnswerTheSame) {
  TempDir work;
  std::string data = work / "data";
  std::string fixtures = std::string(BERTH_SOURCE_DIR) + "/tests/data/upgrade/";
  auto x = run("mkdir -p " + data + " && tar -xzf " + fixtures + kDnsFixture + " -C " + data);
  ASSERT_EQ(x.code, 0) << x.all();
  BerthdProcess p(data);
  p.start();

  // Every zone exports exactly as the previous release exported it (serials, sets, policies,
  // the ALIAS), and keeps its transfer settings.
  auto ls = p.cli("dns zone ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  const std::vector<std::string> zones = {"example.com", "www.example.com", "2.0.192.in-addr.arpa"};
  for (const auto& z : zones) {
    EXPECT_NE(ls.out.find(z), std::string::npos) << ls.out;
    auto e = p.cli("dns zone export " + z);
    ASSERT_EQ(e.code, 0) << e.all();
    EXPECT_EQ(e.out, read_text(fixtures + "main-b526c8c/" + z + ".zone")) << z;
  }
  auto show = p.cli("dns zone show example.com --json");
  ASSERT_EQ(show.code, 0) << show.all();
  EXPECT_NE(show.out.find("127.0.0.1:53999"), std::string::npos) << show.out;

  if (have("dig")) {
    auto dig = [&](const std::string& q) {
      auto r = run("dig @127.0.0.1 -p " + std::to_string(p.dns_port()) +
                   " +norec +short +tries=2 +time=3 " + q);
      EXPECT_EQ(r.code, 0) << r.all();
      return r.out;
    };
    EXPECT_EQ(dig("example.com SOA"),
              "ns1.example.com. hostmaster.example.com. 2026120515 3600 900 1209600 300\n");
    EXPECT_EQ(dig("edge.example.com A"), "192.0.2.25\n192.0.2.26\n");  // ALIAS, flattened
    EXPECT_EQ(dig("x.apps.example.com A"), "192.0.2.80\n");            // wildcard
    EXPECT_EQ(dig("api.example.com CNAME"), "mail.example.com.\n");
    EXPECT_EQ(dig("_sip._tcp.example.com SRV"), "10 60 5060 mail.example.com.\n");
    EXPECT_EQ(dig("blog.www.example.com AAAA"), "2001:db8::8\n");  // the sub-zone
    EXPECT_EQ(dig("1.2.0.192.in-addr.arpa PTR"), "example.com.\n");
    auto nx = run("dig @127.0.0.1 -p " + std::to_string(p.dns_port()) +
                  " +norec +tries=2 +time=3 nx.example.com A");
    EXPECT_NE(nx.out.find("NXDOMAIN"), std::string::npos) << nx.out;
    auto cut = run("dig @127.0.0.1 -p " + std::to_string(p.dns_port()) +
                   " +norec +tries=2 +time=3 www.example.com NS");
    EXPECT_NE(cut.out.find("ns1.www.example.com."), std::string::npos) << cut.out;
  }

  // The upgraded zones take changes as new ones do, and keep them across a restart.
  auto up = p.cli("dns record upsert example.com --name after --type A --value 192.0.2.77");
  EXPECT_EQ(up.code, 0) << up.all();
  auto del = p.cli("dns record delete example.com --name deep.a.b --type A");
  EXPECT_EQ(del.code, 0) << del.all();
  EXPECT_EQ(p.terminate(), 0);
  p.start();
  auto after = p.cli("dns record ls example.com --json");
  ASSERT_EQ(after.code, 0) << after.all();
  EXPECT_NE(after.out.find("192.0.2.77"), std::string::npos) << after.out;
  EXPECT_EQ(after.out.find("192.0.2.99"), std::string::npos) << after.out;
  auto www = p.cli("dns zone export www.example.com");
  EXPECT_EQ(www.out, read_text(fixtures + "main-b526c8c/www.example.com.zone"));
  EXPECT_EQ(p.terminate(), 0);
  auto fsck = run(bin("berthd") + " fsck --data " + data);
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

// tests/data/upgrade/main-c69d6d0.tar.gz (made by berthd at commit c69d6d0, which kept TSIG keys
// and health checks in a table of their own, dns_objects): zone example.com, TSIG key acme
// (example.com, names _acme-challenge.*, the secret below) and TCP health check app-tcp.
constexpr const char* kObjectsFixture = "main-c69d6d0.tar.gz";
constexpr const char* kAcmeSecret = "dXBncmFkZS1maXh0dXJlLXRzaWcta2V5LWMzMmJ5dGVzIQ==";

TEST(UpgradeTest, TsigKeysAndHealthChecksFromThePreviousReleaseStillWork) {
  TempDir work;
  std::string data = work / "data";
  std::string fixtures = std::string(BERTH_SOURCE_DIR) + "/tests/data/upgrade/";
  auto x = run("mkdir -p " + data + " && tar -xzf " + fixtures + kObjectsFixture + " -C " + data);
  ASSERT_EQ(x.code, 0) << x.all();
  BerthdProcess p(data);
  p.start();

  auto keys = p.cli("dns tsig ls --json");
  ASSERT_EQ(keys.code, 0) << keys.all();
  EXPECT_EQ(jq(keys.out, "[.keys[] | [.name, .zones[0], .names[0]]]"),
            "[[\"acme\",\"example.com\",\"_acme-challenge.*\"]]");
  auto checks = p.cli("dns healthcheck ls --json");
  ASSERT_EQ(checks.code, 0) << checks.all();
  EXPECT_NE(checks.out.find("app-tcp"), std::string::npos) << checks.out;
  EXPECT_NE(checks.out.find("127.0.0.1:9"), std::string::npos) << checks.out;

  // The key still signs updates (its secret came through sealed and opens), within its scope.
  if (have("nsupdate") && have("dig")) {
    std::string port = std::to_string(p.dns_port());
    std::string file = work / "update.txt";
    write_file(file, "server 127.0.0.1 " + port +
                         "\nzone example.com\nupdate add _acme-challenge.example.com 60 TXT "
                         "\"after-upgrade\"\nsend\n");
    auto up =
        run("nsupdate -t 5 -u 2 -r 1 -y hmac-sha256:acme:" + std::string(kAcmeSecret) + " " + file);
    EXPECT_EQ(up.code, 0) << up.all();
    auto dig = run("dig @127.0.0.1 -p " + port +
                   " +norec +short +tries=2 +time=3 _acme-challenge.example.com TXT");
    EXPECT_EQ(dig.out, "\"after-upgrade\"\n") << dig.all();
  }
  EXPECT_EQ(p.terminate(), 0);
  // The old table is gone: one table holds every kind of document.
  if (have("sqlite3")) {
    auto tables = run("sqlite3 " + data +
                      "/berth.db \"SELECT name FROM sqlite_master WHERE "
                      "name IN ('dns_objects', 'objects')\"");
    EXPECT_EQ(tables.out, "objects\n") << tables.all();
  }
  auto fsck = run(bin("berthd") + " fsck --data " + data);
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

}  // namespace
}  // namespace berth::test
