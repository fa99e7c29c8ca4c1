// SPDX-License-Identifier: Apache-2.0
// berth's DNS side by side with NSD 4.6 (Debian's nsd): the same zone loaded in both must be
// answered the same (a differential test over a few hundred queries, dns_nsd_diff.py), NSD as a
// secondary must transfer berth's zone and follow its NOTIFYs, and TCP pipelining and IPv6
// must work with real clients (dig).
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "support/harness.h"
#include "support/nsd.h"

namespace berth::test {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

std::string source(const std::string& rel) { return std::string(BERTH_SOURCE_DIR) + "/" + rel; }

bool have_dnspython() {
  return run(std::string(kPython) + " -c 'import dns.message, dns.query'").code == 0;
}

/// Replaces every "SERIAL" in text.
std::string with_serial(std::string text, const std::string& serial) {
  for (size_t at = text.find("SERIAL"); at != std::string::npos; at = text.find("SERIAL", at)) {
    text.replace(at, 6, serial);
  }
  return text;
}

class DnsVsNsd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Nsd::available()) {
      GTEST_SKIP() << "nsd is not installed (apt-get install nsd)";
    }
    if (!have("dig")) {
      GTEST_SKIP() << "dig is not installed (bind9-dnsutils)";
    }
  }
  std::string berth_dig(const TestDaemon& d, const std::string& args) {
    auto r = run("dig @127.0.0.1 -p " + std::to_string(d.dns_port()) + " " + args);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.all();
    return r.out;
  }
};

TEST_F(DnsVsNsd, SameZoneSameAnswers) {
  if (!have_dnspython()) {
    GTEST_SKIP() << "python3-dnspython is not installed";
  }
  TestDaemon d;
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("dns zone create example.net").code, 0);
  TempDir t;
  std::string zone = read_file(source("tests/data/dns/nsd_diff.zone"));
  std::string net = read_file(source("tests/data/dns/nsd_diff_net.zone"));
  write_file(t / "net.zone", with_serial(net, "1"));
  auto imp_net = d.cli("dns zone import example.net --file " + (t / "net.zone") + " --replace");
  ASSERT_EQ(imp_net.code, 0) << imp_net.all();
  std::string net_serial = jq(d.cli("dns zone show example.net --json").out, ".serial");
  ASSERT_NE(zone.find("SERIAL"), std::string::npos);
  write_file(t / "berth.zone", with_serial(zone, "1"));
  auto imp = d.cli("dns zone import example.com --file " + (t / "berth.zone") + " --replace");
  ASSERT_EQ(imp.code, 0) << imp.all();
  // berth bumps the serial on import: NSD gets the zone with the serial berth serves.
  auto show = d.cli("dns zone show example.com --json");
  ASSERT_EQ(show.code, 0) << show.all();
  std::string serial = jq(show.out, ".serial");
  ASSERT_FALSE(serial.empty());

  Nsd nsd;
  nsd.add_primary("example.com", with_serial(zone, serial));
  nsd.add_primary("example.net", with_serial(net, net_serial));
  std::string why;
  ASSERT_TRUE(nsd.start(&why)) << why;
  ASSERT_NE(nsd.dig("+short example.com SOA").out.find(" " + serial + " "), std::string::npos)
      << nsd.log();
  ASSERT_NE(berth_dig(d, "+short example.com SOA").find(" " + serial + " "), std::string::npos);

  auto r = run(std::string(kPython) + " " + source("tests/integration/dns_nsd_diff.py") + " " +
               std::to_string(d.dns_port()) + " " + std::to_string(nsd.port()));
  // Every difference is printed with the query and both answers.
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find(" diffs=0 "), std::string::npos) << r.all();
  auto at = r.out.find("queries=");
  ASSERT_NE(at, std::string::npos) << r.all();
  EXPECT_GE(std::stoi(r.out.substr(at + 8)), 300) << r.out.substr(at);
  // The accepted differences (EXCEPTIONS in dns_nsd_diff.py) and the summary.
  for (size_t from = 0, nl = 0; from < r.out.size(); from = nl + 1) {
    nl = r.out.find('\n', from);
    nl = nl == std::string::npos ? r.out.size() : nl;
    std::string line = r.out.substr(from, nl - from);
    if (line.rfind("EXCEPTED", 0) == 0 || line.rfind("queries=", 0) == 0) {
      std::cout << line << "\n";
    }
  }
}

TEST_F(DnsVsNsd, NsdTransfersTheZoneAndFollowsNotify) {
  TestDaemon d;
  Nsd nsd;
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(
      d.cli("dns record upsert example.com --name www --type A --value 127.0.0.80 --ttl 60").code,
      0);
  auto upd =
      d.cli("dns zone update example.com --allow-transfer 127.0.0.1 --also-notify 127.0.0.1:" +
            std::to_string(nsd.port()));
  ASSERT_EQ(upd.code, 0) << upd.all();

  nsd.add_secondary("example.com", d.dns_port());
  std::string why;
  ASSERT_TRUE(nsd.start(&why)) << why;
  // NSD transfers at start-up.
  ASSERT_TRUE(eventually(
      [&] {
        return nsd.dig("+short www.example.com A").out.find("127.0.0.80") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << nsd.log();
  auto soa = nsd.dig("+norec example.com SOA").out;
  EXPECT_NE(soa.find(" aa"), std::string::npos) << soa;
  EXPECT_NE(soa.find("hostmaster.example.com."), std::string::npos) << soa;

  // A change reaches NSD through NOTIFY (its refresh timer is an hour: only NOTIFY makes it
  // ask again), and it then serves berth's new serial.
  auto up = d.cli("dns record upsert example.com --name api --type A --value 127.0.0.2 --ttl 60");
  ASSERT_EQ(up.code, 0) << up.all();
  std::string serial = jq(d.cli("dns zone show example.com --json").out, ".serial");
  EXPECT_TRUE(eventually(
      [&] {
        return nsd.dig("+short api.example.com A").out.find("127.0.0.2") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << nsd.log();
  EXPECT_NE(nsd.dig("+short example.com SOA").out.find(" " + serial + " "), std::string::npos)
      << nsd.log();

  // AXFR: from the allowed address the whole zone, SOA first and last; from another
  // loopback address (not in allow_transfer) REFUSED.
  auto axfr = berth_dig(d, "example.com AXFR");
  EXPECT_NE(axfr.find("api.example.com."), std::string::npos) << axfr;
  if (!can_bind("127.0.0.2")) {
    GTEST_SKIP() << "127.0.0.2 is not usable as a source address here";
  }
  auto refused =
      run("dig -b 127.0.0.2 @127.0.0.1 -p " + std::to_string(d.dns_port()) + " example.com AXFR");
  EXPECT_NE(refused.all().find("Transfer failed"), std::string::npos) << refused.all();
  EXPECT_EQ(refused.out.find("api.example.com."), std::string::npos) << refused.out;
}

TEST_F(DnsVsNsd, TcpPipeliningAndIpv6) {
  if (!can_bind("::1")) {
    GTEST_SKIP() << "::1 is not usable here";
  }
  TestDaemon d([](config::Config& c) { c.dns.listen = {"127.0.0.1:0", "[::1]:0"}; });
  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d.cli("dns record upsert example.com --name a --type A --value 127.0.0.11").code, 0);
  ASSERT_EQ(d.cli("dns record upsert example.com --name b --type AAAA --value ::1").code, 0);

  // Two queries on one TCP connection (dig +keepopen): both answered.
  auto two = berth_dig(d, "+tcp +keepopen +short a.example.com A b.example.com AAAA");
  EXPECT_NE(two.find("127.0.0.11"), std::string::npos) << two;
  EXPECT_NE(two.find("::1"), std::string::npos) << two;

  // Three queries written at once on one connection (RFC 7766 pipelining): three replies,
  // each with its own id, on that same connection.
  if (have_dnspython()) {
    std::string py = R"PY(
import socket, struct, sys
import dns.message
port = int(sys.argv[1])
qs = [dns.message.make_query(n, t) for n, t in
      [("a.example.com", "A"), ("b.example.com", "AAAA"), ("nx.example.com", "A")]]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in qs)))
buf = b""
got = {}
while len(got) < 3:
    chunk = s.recv(65535)
    if not chunk:
        break
    buf += chunk
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
        n = struct.unpack("!H", buf[:2])[0]
        m = dns.message.from_wire(buf[2:2 + n])
        got[m.id] = m
        buf = buf[2 + n:]
for q in qs:
    m = got.get(q.id)
    print(q.question[0].name, m.rcode() if m else "missing", [str(r) for r in (m.answer if m else [])])
)PY";
    TempDir t;
    write_file(t / "pipe.py", py);
    auto r = run(std::string(kPython) + " " + (t / "pipe.py") + " " + std::to_string(d.dns_port()));
    ASSERT_EQ(r.code, 0) << r.all();
    EXPECT_NE(r.out.find("a.example.com. 0 ['a.example.com. 300 IN A 127.0.0.11']"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("b.example.com. 0 ['b.example.com. 300 IN AAAA ::1']"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("nx.example.com. 3 []"), std::string::npos) << r.out;  // NXDOMAIN
    EXPECT_EQ(r.out.find("missing"), std::string::npos) << r.out;
  }

  // IPv6: UDP and TCP on [::1].
  std::string v6port;
  for (const auto& a : d.daemon().dns_addresses()) {
    if (a.rfind("[::1]:", 0) == 0) {
      v6port = a.substr(6);
    }
  }
  ASSERT_FALSE(v6port.empty()) << "no [::1] address bound";
  for (std::string transport : {"+notcp", "+tcp"}) {
    auto r = run("dig @::1 -p " + v6port + " " + transport + " +norec a.example.com A");
    ASSERT_EQ(r.code, 0) << r.all();
    EXPECT_NE(r.out.find("status: NOERROR"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("127.0.0.11"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" aa"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace berth::test
