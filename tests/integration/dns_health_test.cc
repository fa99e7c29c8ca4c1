// SPDX-License-Identifier: Apache-2.0
// Health checks as a user drives them: `berth dns healthcheck ...` against an in-process
// berthd whose checker probes a tiny HTTP server run by the test on 127.0.0.1; routing
// policies answer around failing checks (checked with dig).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "support/harness.h"

namespace berth::test {
namespace {

// An HTTP/1.1 server on 127.0.0.1 answering every request with a settable status. stop()
// closes the listening socket (connections are refused); start() again on the same port.
class TinyHttp {
 public:
  ~TinyHttp() { stop(); }

  uint16_t start(uint16_t port = 0) {
    port_ = port;
    fd_ = test::listen_loopback(port_);
    if (fd_ < 0) {
      ADD_FAILURE() << "bind 127.0.0.1:" << port << ": " << std::strerror(errno);
      return 0;
    }
    stopping_ = false;
    thread_ = std::thread([this] { serve(); });
    return port_;
  }

  void stop() {
    if (thread_.joinable()) {
      stopping_ = true;
      thread_.join();
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  void set_status(int s) { status_ = s; }
  uint16_t port() const { return port_; }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void serve() {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        continue;
      }
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        last_ = req;
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status_.load()) +
                         " X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      (void)!::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> status_{200};
  std::mutex mu_;
  std::string last_;
};

// Generous bounds: a state change needs interval × threshold (here 1 s × 2) plus jitter.
constexpr std::chrono::seconds kFlip{20};

class DnsHealth : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("dig")) {
      GTEST_SKIP() << "dig is not installed (scripts/setup --test installs bind9-dnsutils)";
    }
    auto z = d_.cli("dns zone create example.com");
    ASSERT_EQ(z.code, 0) << z.all();
  }
  // The A records of name, one address per line (dig +short).
  std::string dig(const std::string& name) {
    auto r =
        run("dig @127.0.0.1 -p " + std::to_string(d_.dns_port()) + " +norec +short " + name + " A");
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  std::string state(const std::string& id) {
    auto r = d_.cli("dns healthcheck show " + id + " --json");
    return r.code == 0 ? jq(r.out, ".Status.State") : "error: " + r.all();
  }
  void create_check(const std::string& id, uint16_t port, const std::string& extra = "") {
    auto r = d_.cli("dns healthcheck create " + id +
                    " --type HTTP --target 127.0.0.1:" + std::to_string(port) +
                    " --interval 1s --timeout 1s --failure-threshold 2 " + extra);
    ASSERT_EQ(r.code, 0) << r.all();
  }
  void upsert(const std::string& args) {
    auto r = d_.cli("dns record upsert example.com --ttl 1 " + args);
    ASSERT_EQ(r.code, 0) << r.all();
  }
  TestDaemon d_;
};

TEST_F(DnsHealth, FailoverFollowsTheCheck) {
  TinyHttp web;
  uint16_t port = web.start();
  ASSERT_NE(port, 0);
  create_check("web", port, "--host web.localhost --path /healthz");
  ASSERT_TRUE(eventually([&] { return state("web") == "\"HEALTHY\""; }, kFlip)) << state("web");
  // The probe asked for the path with the Host header given.
  std::string req = web.last_request();
  EXPECT_NE(req.find("GET /healthz HTTP/1.1"), std::string::npos) << req;
  EXPECT_NE(req.find("Host: web.localhost"), std::string::npos) << req;

  upsert(
      "--name www --type A --value 127.0.0.10 --set-id primary --failover PRIMARY "
      "--health-check web");
  upsert("--name www --type A --value 127.0.0.20 --set-id secondary --failover SECONDARY");
  EXPECT_EQ(dig("www.example.com"), "127.0.0.10\n");

  web.stop();
  EXPECT_TRUE(eventually([&] { return dig("www.example.com") == "127.0.0.20\n"; }, kFlip))
      << dig("www.example.com");
  EXPECT_EQ(state("web"), "\"UNHEALTHY\"");
  auto ls = d_.cli("dns healthcheck ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_NE(ls.out.find("LAST ERROR"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("UNHEALTHY"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("connect"), std::string::npos) << ls.out;

  ASSERT_EQ(web.start(port), port);
  EXPECT_TRUE(eventually([&] { return dig("www.example.com") == "127.0.0.10\n"; }, kFlip))
      << dig("www.example.com");
  EXPECT_EQ(state("web"), "\"HEALTHY\"");
}

TEST_F(DnsHealth, WeightedAndMultivalueLeaveOutUnhealthySets) {
  TinyHttp good;
  TinyHttp bad;
  bad.set_status(503);
  create_check("good", good.start());
  create_check("bad", bad.start());
  ASSERT_TRUE(eventually([&] { return state("bad") == "\"UNHEALTHY\""; }, kFlip));
  ASSERT_TRUE(eventually([&] { return state("good") == "\"HEALTHY\""; }, kFlip));
  auto show = d_.cli("dns healthcheck show bad");
  EXPECT_NE(show.out.find("HTTP 503"), std::string::npos) << show.all();

  upsert("--name w --type A --value 127.0.0.1 --set-id one --weight 1 --health-check good");
  upsert("--name w --type A --value 127.0.0.2 --set-id two --weight 100 --health-check bad");
  upsert("--name m --type A --value 127.0.0.3 --set-id one --multivalue --health-check good");
  upsert("--name m --type A --value 127.0.0.4 --set-id two --multivalue --health-check bad");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(dig("w.example.com"), "127.0.0.1\n");
    EXPECT_EQ(dig("m.example.com"), "127.0.0.3\n");
  }

  // The bad server recovers: after two good answers in a row its sets come back.
  bad.set_status(200);
  EXPECT_TRUE(eventually(
      [&] {
        auto m = dig("m.example.com");
        return m.find("127.0.0.3") != std::string::npos && m.find("127.0.0.4") != std::string::npos;
      },
      kFlip))
      << dig("m.example.com");
  std::set<std::string> weighted;
  EXPECT_TRUE(eventually(
      [&] {
        weighted.insert(dig("w.example.com"));
        return weighted.count("127.0.0.2\n") != 0;
      },
      kFlip));
}

TEST_F(DnsHealth, CommandsValidateAndGuardReferences) {
  // Bad input is refused with the field named (exit 2), nothing is created.
  auto bad = d_.cli("dns healthcheck create x --type ICMP --target 127.0.0.1:1");
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("Type"), std::string::npos) << bad.err;
  bad = d_.cli("dns healthcheck create x --type HTTP --target localhost:80");
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("Target"), std::string::npos) << bad.err;
  bad = d_.cli("dns healthcheck create x --type TCP --target 127.0.0.1:1 --interval 1s");
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.err.find("Timeout"), std::string::npos) << bad.err;

  // A record set may name only an existing check.
  auto up = d_.cli(
      "dns record upsert example.com --name www --type A --value 127.0.0.10 --set-id p "
      "--failover PRIMARY --health-check nope");
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.err.find("'nope' does not exist"), std::string::npos) << up.err;

  // A TCP check on a port nobody listens on (bound and closed here) turns unhealthy.
  TinyHttp closed;
  uint16_t port = closed.start();
  closed.stop();
  auto c =
      d_.cli("dns healthcheck create tcp1 --type TCP --target 127.0.0.1:" + std::to_string(port) +
             " --interval 1s --timeout 1s --json");
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_EQ(jq(c.out, ".Type"), "\"TCP\"");
  EXPECT_EQ(jq(c.out, ".Status.State"), "\"UNKNOWN\"");
  EXPECT_EQ(d_.cli("dns healthcheck create tcp1 --type TCP --target 127.0.0.1:1").code, 4);
  ASSERT_TRUE(eventually([&] { return state("tcp1") == "\"UNHEALTHY\""; }, kFlip));
  auto show = d_.cli("dns healthcheck show tcp1 --json");
  EXPECT_NE(jq(show.out, ".Status.LastError").find("connect"), std::string::npos) << show.out;
  auto ls = d_.cli("dns healthcheck ls --json");
  EXPECT_EQ(jq(ls.out, ".health_checks | length"), "1");

  // Deleting a check a record set uses is refused, naming the record.
  upsert(
      "--name www --type A --value 127.0.0.10 --set-id p --failover PRIMARY "
      "--health-check tcp1");
  auto rm = d_.cli("dns healthcheck rm tcp1");
  EXPECT_NE(rm.code, 0);
  EXPECT_NE(rm.err.find("www.example.com A (set p)"), std::string::npos) << rm.err;
  // Its only candidate is unhealthy: the set is answered anyway (fail open).
  EXPECT_EQ(dig("www.example.com"), "127.0.0.10\n");

  ASSERT_EQ(d_.cli("dns record delete example.com --name www --type A").code, 0);
  rm = d_.cli("dns healthcheck rm tcp1");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(d_.cli("dns healthcheck show tcp1").code, 3);
  EXPECT_EQ(jq(d_.cli("dns healthcheck ls --json").out, ".health_checks | length"), "0");
}

// IAM: listing and managing are separate actions on healthcheck/ID.
TEST_F(DnsHealth, PermissionsArePerCheck) {
  ASSERT_EQ(d_.cli("iam user create ops").code, 0);
  TempDir t;
  write_file(t / "p.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dns:ListHealthChecks","dns:GetHealthCheck","dns:ManageHealthChecks"],
    "Resource":"healthcheck/ops-*"}, {"Effect":"Allow","Action":"dns:ListHealthChecks",
    "Resource":"healthcheck/*"}]})");
  ASSERT_EQ(d_.cli("iam policy put ops-checks --user ops --file " + (t / "p.json")).code, 0);
  auto key = d_.cli("iam key create ops --json");
  ASSERT_EQ(key.code, 0) << key.all();
  auto unquote = [](std::string v) { return v.size() >= 2 ? v.substr(1, v.size() - 2) : v; };
  AdminCredentials ops{};
  ops.key_id = unquote(jq(key.out, ".access_key_id"));
  ops.secret = unquote(jq(key.out, ".secret_access_key"));
  auto mine = d_.cli_as(ops, "dns healthcheck create ops-web --type TCP --target 127.0.0.1:9");
  EXPECT_EQ(mine.code, 0) << mine.all();
  auto other = d_.cli_as(ops, "dns healthcheck create web --type TCP --target 127.0.0.1:9");
  EXPECT_EQ(other.code, 5) << other.all();
  ASSERT_EQ(d_.cli("dns healthcheck create web --type TCP --target 127.0.0.1:9").code, 0);
  EXPECT_EQ(d_.cli_as(ops, "dns healthcheck show web").code, 5);
  EXPECT_EQ(d_.cli_as(ops, "dns healthcheck rm web").code, 5);
  EXPECT_EQ(jq(d_.cli_as(ops, "dns healthcheck ls --json").out, ".health_checks | length"), "2");
  EXPECT_EQ(d_.cli_as(ops, "dns healthcheck rm ops-web").code, 0);
}

// HTTPS: the handshake carries SNI = --host, and a self-signed certificate passes (not
// verified). openssl s_server answers only the server name web.localhost (a fatal alert for
// any other); a plain HTTP server fails the handshake.
TEST_F(DnsHealth, HttpsSendsSniAndDoesNotVerify) {
  if (!have("openssl")) {
    GTEST_SKIP() << "openssl is not installed";
  }
  TempDir t;
  auto gen = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                 (t / "k.pem") + " -out " + (t / "c.pem") + " -subj /CN=web.localhost -days 1");
  ASSERT_EQ(gen.code, 0) << gen.all();
  uint16_t port = free_port();
  auto srv =
      run("(timeout 120 openssl s_server -accept 127.0.0.1:" + std::to_string(port) + " -cert " +
          (t / "c.pem") + " -key " + (t / "k.pem") + " -cert2 " + (t / "c.pem") + " -key2 " +
          (t / "k.pem") + " -servername web.localhost -servername_fatal -www -quiet > " +
          (t / "s.log") + " 2>&1 & echo $!)");
  ASSERT_EQ(srv.code, 0) << srv.all();
  std::string pid = srv.out.substr(0, srv.out.find('\n'));
  ASSERT_FALSE(pid.empty());
  std::string target = "127.0.0.1:" + std::to_string(port);
  for (const auto& [id, host] : {std::pair<std::string, std::string>{"tls-ok", "web.localhost"},
                                 {"tls-other", "other.localhost"}}) {
    auto r = d_.cli("dns healthcheck create " + id + " --type HTTPS --target " + target +
                    " --host " + host + " --interval 1s --timeout 1s --failure-threshold 1");
    ASSERT_EQ(r.code, 0) << r.all();
  }
  TinyHttp plain;
  auto r = d_.cli("dns healthcheck create tls-plain --type HTTPS --target 127.0.0.1:" +
                  std::to_string(plain.start()) + " --interval 1s --timeout 1s");
  ASSERT_EQ(r.code, 0) << r.all();

  EXPECT_TRUE(eventually([&] { return state("tls-ok") == "\"HEALTHY\""; }, kFlip))
      << d_.cli("dns healthcheck show tls-ok").all() << read_file(t / "s.log");
  EXPECT_TRUE(eventually([&] { return state("tls-other") == "\"UNHEALTHY\""; }, kFlip));
  EXPECT_TRUE(eventually([&] { return state("tls-plain") == "\"UNHEALTHY\""; }, kFlip));
  for (const char* id : {"tls-other", "tls-plain"}) {
    auto show = d_.cli(std::string("dns healthcheck show ") + id + " --json");
    EXPECT_NE(jq(show.out, ".Status.LastError").find("TLS handshake"), std::string::npos)
        << show.out;
  }
  run("kill " + pid);
}

}  // namespace
}  // namespace berth::test
