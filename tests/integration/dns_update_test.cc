// SPDX-License-Identifier: Apache-2.0
// Dynamic updates as certbot/lego/external-dns drive them: `berth dns tsig create`, then the
// real nsupdate (bind9-dnsutils) with -y hmac-sha256:NAME:SECRET against the in-process
// berthd over UDP and TCP, answers checked with dig.
#include <gtest/gtest.h>

#include <sstream>

#include "support/harness.h"

namespace berth::test {
namespace {

class DnsUpdate : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("nsupdate") || !have("dig")) {
      GTEST_SKIP() << "nsupdate/dig are not installed (scripts/setup --test: bind9-dnsutils)";
    }
    auto z = d_.cli("dns zone create example.com");
    ASSERT_EQ(z.code, 0) << z.all();
    auto acme =
        d_.cli("dns tsig create acme --zone example.com --names '_acme-challenge.*' --json");
    ASSERT_EQ(acme.code, 0) << acme.all();
    acme_secret_ = unquote(jq(acme.out, ".secret"));
    ASSERT_EQ(acme_secret_.size(), 44u) << acme.out;  // 32 bytes, base64
    auto ops = d_.cli("dns tsig create ops --zone example.com --json");
    ASSERT_EQ(ops.code, 0) << ops.all();
    ops_secret_ = unquote(jq(ops.out, ".secret"));
  }

  static std::string unquote(std::string s) {
    if (s.size() >= 2 && s.front() == '"') {
      s = s.substr(1, s.size() - 2);
    }
    return s;
  }

  // Runs nsupdate with `lines` (server and zone lines added) signed by key:secret.
  CmdResult nsupdate(const std::string& key, const std::string& secret, const std::string& lines,
                     const std::string& flags = "") {
    std::string script = "server 127.0.0.1 " + std::to_string(d_.dns_port()) +
                         "\nzone example.com\n" + lines + "send\n";
    std::string file = tmp_ / ("update" + std::to_string(++n_) + ".txt");
    write_file(file, script);
    return run("nsupdate -t 5 -u 2 -r 1 " + flags + " -y hmac-sha256:" + key + ":" + secret + " " +
               file);
  }

  std::string dig(const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) + " +norec +short " + args);
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  std::string status(const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) + " +norec " + args);
    auto at = r.out.find("status: ");
    return at == std::string::npos ? r.all() : r.out.substr(at + 8, r.out.find(',', at) - at - 8);
  }
  std::string serial() {
    auto soa = dig("example.com SOA");
    std::istringstream in(soa);
    std::string mname, rname, s;
    in >> mname >> rname >> s;
    return s;
  }

  TestDaemon d_;
  TempDir tmp_;
  int n_ = 0;
  std::string acme_secret_, ops_secret_;
};

TEST_F(DnsUpdate, TsigCreatePrintsTheKeyOnceAndLsNeverShowsIt) {
  auto c = d_.cli("dns tsig create web-key --zone example.com");
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_NE(c.out.find("key \"web-key\" { algorithm hmac-sha256; secret \""), std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("nsupdate -y hmac-sha256:web-key:"), std::string::npos) << c.out;
  auto ls = d_.cli("dns tsig ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_NE(ls.out.find("web-key"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("_acme-challenge.*"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find(acme_secret_), std::string::npos) << ls.out;
  auto json = d_.cli("dns tsig ls --json");
  ASSERT_EQ(json.code, 0) << json.all();
  EXPECT_EQ(jq(json.out, "[.keys[].name]"), "[\"acme\",\"ops\",\"web-key\"]");
  EXPECT_EQ(jq(json.out, "[.keys[] | select(has(\"secret\"))] | length"), "0");
  // The secret is sealed at rest: the database never holds it in the clear.
  auto db = run("sqlite3 " + d_.data_dir() +
                "/berth.db \"SELECT document FROM objects WHERE kind = 'tsig'\"");
  if (db.code == 0) {
    EXPECT_EQ(db.out.find(acme_secret_), std::string::npos) << db.out;
    EXPECT_NE(db.out.find("v1:"), std::string::npos) << db.out;
  }
  EXPECT_NE(d_.cli("dns tsig create web-key").code, 0);  // exists
  auto rm = d_.cli("dns tsig rm web-key --json");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(jq(rm.out, ".deleted"), "\"web-key\"");
  EXPECT_EQ(d_.cli("dns tsig rm web-key").code, 3);  // not found
}

TEST_F(DnsUpdate, NsupdateAddsAndDeletesAnAcmeChallenge) {
  auto before = serial();
  auto add =
      nsupdate("acme", acme_secret_, "update add _acme-challenge.example.com 60 TXT \"tok\"\n");
  ASSERT_EQ(add.code, 0) << add.all();
  EXPECT_EQ(dig("_acme-challenge.example.com TXT"), "\"tok\"\n");
  EXPECT_NE(serial(), before);
  // A second token (lego/certbot add one per name) over TCP (-v).
  auto add2 = nsupdate("acme", acme_secret_,
                       "update add _acme-challenge.example.com 60 TXT \"tok2\"\n", "-v");
  ASSERT_EQ(add2.code, 0) << add2.all();
  auto both = dig("_acme-challenge.example.com TXT");
  EXPECT_NE(both.find("\"tok\""), std::string::npos) << both;
  EXPECT_NE(both.find("\"tok2\""), std::string::npos) << both;
  // Delete one record, then the set.
  auto del1 =
      nsupdate("acme", acme_secret_, "update delete _acme-challenge.example.com TXT \"tok\"\n");
  ASSERT_EQ(del1.code, 0) << del1.all();
  EXPECT_EQ(dig("_acme-challenge.example.com TXT"), "\"tok2\"\n");
  auto del = nsupdate("acme", acme_secret_, "update delete _acme-challenge.example.com TXT\n");
  ASSERT_EQ(del.code, 0) << del.all();
  EXPECT_EQ(status("_acme-challenge.example.com TXT"), "NXDOMAIN");
  // The change went through the zone's API like any other: the CLI lists it.
  auto again = nsupdate("ops", ops_secret_, "update add host.example.com 300 A 127.0.0.7\n");
  ASSERT_EQ(again.code, 0) << again.all();
  auto ls = d_.cli("dns record ls example.com --name host --type A");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_NE(ls.out.find("127.0.0.7"), std::string::npos) << ls.out;
}

TEST_F(DnsUpdate, ScopedKeyCannotAddWww) {
  auto r = nsupdate("acme", acme_secret_, "update add www.example.com 60 A 127.0.0.5\n");
  EXPECT_NE(r.code, 0) << r.all();
  EXPECT_NE(r.all().find("REFUSED"), std::string::npos) << r.all();
  EXPECT_EQ(status("www.example.com A"), "NXDOMAIN");
  // The unscoped key may.
  auto ok = nsupdate("ops", ops_secret_, "update add www.example.com 60 A 127.0.0.5\n");
  ASSERT_EQ(ok.code, 0) << ok.all();
  EXPECT_EQ(dig("www.example.com A"), "127.0.0.5\n");
}

TEST_F(DnsUpdate, WrongSecretOrUnknownKeyIsRefusedAndChangesNothing) {
  auto before = serial();
  auto wrong = nsupdate("acme", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=",
                        "update add _acme-challenge.example.com 60 TXT \"evil\"\n");
  EXPECT_NE(wrong.code, 0) << wrong.all();
  auto unknown =
      nsupdate("nobody", acme_secret_, "update add _acme-challenge.example.com 60 TXT \"evil\"\n");
  EXPECT_NE(unknown.code, 0) << unknown.all();
  EXPECT_EQ(status("_acme-challenge.example.com TXT"), "NXDOMAIN");
  EXPECT_EQ(serial(), before);
  // A deleted key stops working at once.
  ASSERT_EQ(d_.cli("dns tsig rm acme").code, 0);
  auto gone =
      nsupdate("acme", acme_secret_, "update add _acme-challenge.example.com 60 TXT \"tok\"\n");
  EXPECT_NE(gone.code, 0) << gone.all();
  EXPECT_EQ(status("_acme-challenge.example.com TXT"), "NXDOMAIN");
}

TEST_F(DnsUpdate, PrerequisitesAreChecked) {
  ASSERT_EQ(d_.cli("dns record upsert example.com --name www --type A --value 127.0.0.2").code, 0);
  auto r = nsupdate("ops", ops_secret_,
                    "prereq nxdomain www.example.com\nupdate add www.example.com 60 A 127.0.0.9\n");
  EXPECT_NE(r.code, 0) << r.all();
  EXPECT_NE(r.all().find("YXDOMAIN"), std::string::npos) << r.all();
  EXPECT_EQ(dig("www.example.com A"), "127.0.0.2\n");
  // yxrrset holds: the update goes through.
  auto ok =
      nsupdate("ops", ops_secret_,
               "prereq yxrrset www.example.com A\nupdate add www.example.com 60 A 127.0.0.9\n");
  ASSERT_EQ(ok.code, 0) << ok.all();
  auto a = dig("www.example.com A");
  EXPECT_NE(a.find("127.0.0.9"), std::string::npos) << a;
  EXPECT_NE(a.find("127.0.0.2"), std::string::npos) << a;
}

TEST_F(DnsUpdate, SoaAndApexNsAreRefused) {
  auto r = nsupdate("ops", ops_secret_, "update delete example.com NS\n");
  EXPECT_NE(r.code, 0) << r.all();
  EXPECT_NE(r.all().find("REFUSED"), std::string::npos) << r.all();
  EXPECT_NE(dig("example.com NS").find("ns1.example.com."), std::string::npos);
}

// ---- Optional: a certificate by DNS-01 with lego's rfc2136 provider against pebble --------

class DnsUpdateAcme : public DnsUpdate {
 protected:
  void SetUp() override {
    if (!have("lego") || !have("pebble") || !have("openssl") || !have("curl")) {
      GTEST_SKIP() << "lego/pebble are not installed (scripts/setup --test)";
    }
    DnsUpdate::SetUp();
  }
  void TearDown() override {
    if (!pebble_pid_.empty()) {
      run("kill " + pebble_pid_);
    }
  }
  std::string pebble_pid_;
};

TEST_F(DnsUpdateAcme, LegoGetsACertificateThroughBerthsDns) {
  // pebble: a self-signed P-256 certificate for 127.0.0.1 and a config of free ports; it
  // resolves every name (the _acme-challenge TXT included) through berth's DNS.
  std::string cert = tmp_ / "pebble.pem";
  std::string key = tmp_ / "pebble.key";
  auto gen =
      run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
          "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
          key + " -out " + cert);
  ASSERT_EQ(gen.code, 0) << gen.all();
  uint16_t acme_port = free_port();
  std::string config = tmp_ / "pebble.json";
  write_file(config,
             "{\"pebble\": {\"listenAddress\": \"127.0.0.1:" + std::to_string(acme_port) +
                 "\", \"managementListenAddress\": \"127.0.0.1:" + std::to_string(free_port()) +
                 "\", \"certificate\": \"" + cert + "\", \"privateKey\": \"" + key +
                 "\", \"httpPort\": " + std::to_string(free_port()) +
                 ", \"tlsPort\": " + std::to_string(free_port()) +
                 ", \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false}}");
  auto start = run("(PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config " + config +
                   " -dnsserver 127.0.0.1:" + std::to_string(d_.dns_port()) + " > " +
                   (tmp_ / "pebble.log") + " 2>&1 & echo $!)");
  ASSERT_EQ(start.code, 0) << start.all();
  pebble_pid_ = start.out.substr(0, start.out.find('\n'));
  std::string dir = "https://127.0.0.1:" + std::to_string(acme_port) + "/dir";
  auto up = run("for i in $(seq 1 100); do curl -sf --cacert " + cert + " " + dir +
                " >/dev/null && exit 0; sleep 0.1; done; exit 1");
  ASSERT_EQ(up.code, 0) << read_file(tmp_ / "pebble.log");

  auto lego = run("LEGO_CA_CERTIFICATES=" + cert +
                  " RFC2136_NAMESERVER=127.0.0.1:" + std::to_string(d_.dns_port()) +
                  " RFC2136_TSIG_KEY=acme RFC2136_TSIG_ALGORITHM=hmac-sha256. "
                  "RFC2136_TSIG_SECRET='" +
                  acme_secret_ + "' RFC2136_PROPAGATION_TIMEOUT=30 lego --server " + dir +
                  " --email test@example.com --accept-tos --path " + (tmp_ / "lego") +
                  " --dns rfc2136 --dns.resolvers 127.0.0.1:" + std::to_string(d_.dns_port()) +
                  " --dns.disable-cp --domains www.example.com run");
  ASSERT_EQ(lego.code, 0) << lego.all() << read_file(tmp_ / "pebble.log");
  auto pem = read_file(tmp_ / "lego/certificates/www.example.com.crt");
  ASSERT_NE(pem.find("BEGIN CERTIFICATE"), std::string::npos);
  auto text = run("openssl x509 -noout -ext subjectAltName -in " +
                  (tmp_ / "lego/certificates/www.example.com.crt"));
  EXPECT_NE(text.out.find("DNS:www.example.com"), std::string::npos) << text.all();
  // lego cleaned up: the challenge record is gone again.
  EXPECT_EQ(status("_acme-challenge.www.example.com TXT"), "NXDOMAIN");
}

}  // namespace
}  // namespace berth::test
