// SPDX-License-Identifier: Apache-2.0
// berth's DNS as a user drives it: `berth dns ...` against an in-process berthd, answers
// checked with dig (bind9-dnsutils) over UDP and TCP.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/harness.h"

namespace berth::test {
namespace {

class DnsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("dig")) {
      GTEST_SKIP() << "dig is not installed (scripts/setup --test installs bind9-dnsutils)";
    }
  }
  // dig +short-ish: the answer section's records, one per line, as "name ttl class type data".
  std::string dig(const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) +
                 " +norec +nocmd +nostats +noquestion +nocomments " + args);
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  // The full dig output (header, flags, sections).
  std::string dig_full(const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) + " +norec " + args);
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  TestDaemon d_;
};

TEST_F(DnsCli, ZoneCreatePrintsNameServersAndAnswersAuthoritatively) {
  auto c = d_.cli("dns zone create example.com");
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_NE(c.out.find("ns1.example.com."), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("registrar"), std::string::npos) << c.out;

  auto soa = dig_full("example.com SOA");
  EXPECT_NE(soa.find("status: NOERROR"), std::string::npos) << soa;
  EXPECT_NE(soa.find(" aa"), std::string::npos) << soa;
  EXPECT_NE(soa.find("hostmaster.example.com."), std::string::npos) << soa;
  // The name server's own address comes from the listen address.
  EXPECT_NE(dig("ns1.example.com A").find("127.0.0.1"), std::string::npos);

  auto up = d_.cli(
      "dns record upsert example.com --name api --type A --value 127.0.0.2 "
      "--value 127.0.0.3 --ttl 60");
  ASSERT_EQ(up.code, 0) << up.all();
  auto a = dig("api.example.com A");
  EXPECT_NE(a.find("127.0.0.2"), std::string::npos) << a;
  EXPECT_NE(a.find("127.0.0.3"), std::string::npos) << a;
  EXPECT_NE(a.find("60"), std::string::npos) << a;
  // The same over TCP.
  EXPECT_NE(dig("+tcp api.example.com A").find("127.0.0.2"), std::string::npos);

  // NXDOMAIN and NODATA carry the SOA; outside every zone is REFUSED.
  auto nx = dig_full("nope.example.com A");
  EXPECT_NE(nx.find("status: NXDOMAIN"), std::string::npos) << nx;
  EXPECT_NE(nx.find("AUTHORITY: 1"), std::string::npos) << nx;
  auto nodata = dig_full("api.example.com MX");
  EXPECT_NE(nodata.find("status: NOERROR"), std::string::npos) << nodata;
  EXPECT_NE(nodata.find("ANSWER: 0"), std::string::npos) << nodata;
  EXPECT_NE(nodata.find("SOA"), std::string::npos) << nodata;
  EXPECT_NE(dig_full("example.org A").find("status: REFUSED"), std::string::npos);

  auto ls = d_.cli("dns record ls example.com --type A");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_NE(ls.out.find("api.example.com"), std::string::npos) << ls.out;
  auto json = d_.cli("dns zone ls --json");
  ASSERT_EQ(json.code, 0) << json.all();
  EXPECT_EQ(jq(json.out, ".zones[0].name"), "\"example.com\"");

  auto del = d_.cli("dns record delete example.com --name api --type A");
  ASSERT_EQ(del.code, 0) << del.all();
  EXPECT_NE(dig_full("api.example.com A").find("status: NXDOMAIN"), std::string::npos);
}

TEST_F(DnsCli, SubZoneIsDelegatedFromItsParent) {
  auto apex = d_.cli("dns zone create example.com");
  ASSERT_EQ(apex.code, 0) << apex.all();
  EXPECT_NE(apex.out.find("set these at your registrar"), std::string::npos) << apex.out;
  auto sub = d_.cli("dns zone create www.example.com");
  ASSERT_EQ(sub.code, 0) << sub.all();
  // Its delegation is berth's own to write: nothing for the user to set elsewhere.
  EXPECT_NE(sub.out.find("delegated from example.com, which berth hosts"), std::string::npos)
      << sub.out;
  EXPECT_EQ(sub.out.find("registrar"), std::string::npos) << sub.out;
  // The parent holds NS (and glue for ns1.www.example.com) for the sub-zone.
  auto ns = d_.cli("dns record ls example.com --name www --type NS --json");
  ASSERT_EQ(ns.code, 0) << ns.all();
  EXPECT_NE(ns.out.find("ns1.www.example.com."), std::string::npos) << ns.out;
  auto glue = d_.cli("dns record ls example.com --name ns1.www --type A --json");
  EXPECT_NE(glue.out.find("127.0.0.1"), std::string::npos) << glue.out;
  // berth hosts both: www.example.com is answered from its own zone, authoritatively.
  auto soa = dig_full("www.example.com SOA");
  EXPECT_NE(soa.find(" aa"), std::string::npos) << soa;
  EXPECT_NE(soa.find("hostmaster.www.example.com."), std::string::npos) << soa;

  // That delegation is berth's: a batch may not change it.
  auto steal = d_.cli("dns record upsert example.com --name www --type NS --value ns.evil.test.");
  EXPECT_NE(steal.code, 0);
  EXPECT_NE(steal.err.find("managed by"), std::string::npos) << steal.err;

  // Removing the sub-zone removes exactly the delegation.
  ASSERT_EQ(d_.cli("dns zone rm www.example.com").code, 0);
  auto after = d_.cli("dns record ls example.com --json");
  EXPECT_EQ(after.out.find("www.example.com"), std::string::npos) << after.out;
}

TEST_F(DnsCli, BadBatchNamesTheRecordAndChangesNothing) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("dns record upsert example.com --name www --type A --value 127.0.0.5").code, 0);
  auto before = d_.cli("dns zone show example.com --json");
  TempDir t;
  // The second change puts a CNAME beside the A record: the whole batch is refused.
  write_file(t / "batch.json", R"({"Changes":[
    {"Action":"UPSERT","ResourceRecordSet":{"Name":"ok.example.com","Type":"A","TTL":60,
      "ResourceRecords":[{"Value":"127.0.0.9"}]}},
    {"Action":"CREATE","ResourceRecordSet":{"Name":"www.example.com","Type":"CNAME","TTL":60,
      "ResourceRecords":[{"Value":"ok.example.com."}]}}]})");
  auto r = d_.cli("dns change example.com --file " + (t / "batch.json"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("www.example.com"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CNAME"), std::string::npos) << r.err;
  auto after = d_.cli("dns zone show example.com --json");
  EXPECT_EQ(jq(before.out, ".serial"), jq(after.out, ".serial"));
  EXPECT_NE(dig_full("ok.example.com A").find("NXDOMAIN"), std::string::npos);

  // Each rule of the issue gets its own error, and nothing changes.
  struct Bad {
    std::string args;
    std::string says;
  };
  std::vector<Bad> bad = {
      {"--name x.example.org. --type A --value 127.0.0.1", "example.org"},
      {"--name t --type A --value 127.0.0.1 --ttl 2147483648", "TTL"},
      {"--name t --type A --value 300.1.1.1", "300.1.1.1"},
      {"--name t --type TXT --value '\"" + std::string(300, 'a') + "\"'", "255"},
      {"--name " + std::string(70, 'a') + " --type A --value 127.0.0.1", "63"},
      {"--name @ --type CNAME --value www.example.com.", "CNAME"},
  };
  for (const auto& b : bad) {
    auto e = d_.cli("dns record upsert example.com " + b.args);
    EXPECT_NE(e.code, 0) << b.args;
    EXPECT_NE(e.err.find(b.says), std::string::npos) << b.args << ": " << e.err;
  }
  auto last = d_.cli("dns zone show example.com --json");
  EXPECT_EQ(jq(before.out, ".serial"), jq(last.out, ".serial"));
}

TEST_F(DnsCli, ZoneFileExportImportRoundTrip) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  TempDir t;
  write_file(t / "in.zone", R"($ORIGIN example.com.
$TTL 300
@   3600 IN SOA ns1.example.com. hostmaster.example.com. ( 1 3600 900 1209600 300 )
@        IN NS  ns1.example.com.
ns1      IN A   127.0.0.1
www  60  IN A   127.0.0.10
         IN AAAA ::1
mail     IN MX  10 mx.example.com.
mx       IN A   127.0.0.11
txt      IN TXT "hello world" "second string"
*.dev    IN A   127.0.0.12
alias    IN CNAME www
)");
  auto imp = d_.cli("dns zone import example.com --file " + (t / "in.zone") + " --replace");
  ASSERT_EQ(imp.code, 0) << imp.all();
  EXPECT_NE(dig("www.example.com AAAA").find("::1"), std::string::npos);
  EXPECT_NE(dig("anything.dev.example.com A").find("127.0.0.12"), std::string::npos);
  auto cname = dig("alias.example.com A");
  EXPECT_NE(cname.find("CNAME"), std::string::npos) << cname;
  EXPECT_NE(cname.find("127.0.0.10"), std::string::npos) << cname;
  EXPECT_NE(dig("txt.example.com TXT").find("\"hello world\" \"second string\""),
            std::string::npos);

  auto e1 = d_.cli("dns zone export example.com");
  ASSERT_EQ(e1.code, 0) << e1.all();
  write_file(t / "out.zone", e1.out);
  auto again = d_.cli("dns zone import example.com --file " + (t / "out.zone") + " --replace");
  ASSERT_EQ(again.code, 0) << again.all();
  auto e2 = d_.cli("dns zone export example.com");
  // Identical but for the serial each import bumps.
  auto strip_serial = [](std::string z) {
    auto soa = z.find("SOA");
    auto line_end = z.find('\n', soa);
    return z.substr(0, soa) + z.substr(line_end);
  };
  EXPECT_EQ(strip_serial(e1.out), strip_serial(e2.out));

  // An error names the line and imports nothing.
  write_file(t / "bad.zone",
             "$ORIGIN example.com.\n$TTL 300\nnew IN A 127.0.0.99\nbad IN A nope\n");
  auto bad = d_.cli("dns zone import example.com --file " + (t / "bad.zone"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("line 4"), std::string::npos) << bad.err;
  EXPECT_NE(dig_full("new.example.com A").find("NXDOMAIN"), std::string::npos);
}

TEST_F(DnsCli, AliasAtTheApexIsFlattened) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("dns record upsert example.com --name lb --type A --value 127.0.0.20").code, 0);
  auto a = d_.cli("dns record upsert example.com --name @ --type ALIAS --alias-name lb");
  ASSERT_EQ(a.code, 0) << a.all();
  auto ans = dig("example.com A");
  EXPECT_NE(ans.find("127.0.0.20"), std::string::npos) << ans;
  EXPECT_EQ(ans.find("CNAME"), std::string::npos) << ans;
}

TEST_F(DnsCli, ChangePermissionCanBeLimitedToChallengeRecords) {
  ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_.cli("iam user create acme").code, 0);
  TempDir t;
  write_file(t / "p.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"dns:ChangeRecordSets","Resource":"zone/example.com/record/_acme-challenge.*"}]})");
  ASSERT_EQ(d_.cli("iam policy put acme-only --user acme --file " + (t / "p.json")).code, 0);
  auto key = d_.cli("iam key create acme --json");
  ASSERT_EQ(key.code, 0) << key.all();
  AdminCredentials acme{};
  auto unquote = [](std::string v) { return v.size() >= 2 ? v.substr(1, v.size() - 2) : v; };
  acme.key_id = unquote(jq(key.out, ".access_key_id"));
  acme.secret = unquote(jq(key.out, ".secret_access_key"));
  auto ok = d_.cli_as(acme,
                      "dns record upsert example.com --name _acme-challenge --type TXT "
                      "--value '\"token\"' --ttl 60");
  EXPECT_EQ(ok.code, 0) << ok.all();
  auto no = d_.cli_as(acme, "dns record upsert example.com --name www --type A --value 127.0.0.1");
  EXPECT_EQ(no.code, 5) << no.all();
  EXPECT_NE(dig("_acme-challenge.example.com TXT").find("token"), std::string::npos);
  // The change is in the audit log with its principal.
  // The audit log is written in batches: wait for the flush.
  std::string audit;
  for (int i = 0;
       i < 50 && audit.find("zone/example.com/record/_acme-challenge") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    audit = d_.cli("audit ls --principal user/acme --json").all();
  }
  EXPECT_NE(audit.find("zone/example.com/record/_acme-challenge.example.com"), std::string::npos)
      << audit;
  EXPECT_NE(audit.find("zone/example.com/record/www.example.com"), std::string::npos) << audit;
}

}  // namespace
}  // namespace berth::test

namespace berth::test {
namespace {

// Holds a UDP port (no SO_REUSEPORT) for as long as it lives; false when it is held already.
class UdpHold {
 public:
  explicit UdpHold(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~UdpHold() { ::close(fd_); }
  bool bound() const { return bound_; }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

// The default DNS port may be taken on a user's machine (an mDNS responder holds 5353): berthd
// still serves everything else and says why DNS is off. A port the user asked for is an error.
TEST(DnsListen, BusyDefaultPortLeavesDnsOffButAnExplicitOneIsAnError) {
  UdpHold hold(5353);  // busy now, whether we hold it or something else on this machine does
  TestDaemon d([](config::Config& c) { c.dns.listen.clear(); });
  EXPECT_TRUE(d.daemon().dns_addresses().empty());
  EXPECT_EQ(run("curl -sf " + d.url() + "/healthz").code, 0);
  // Zones are still managed through the API.
  EXPECT_EQ(d.cli("dns zone create example.com").code, 0);

  EXPECT_THROW(TestDaemon([](config::Config& c) { c.dns.listen = {"127.0.0.1:5353"}; }),
               std::runtime_error);
}

}  // namespace
}  // namespace berth::test
