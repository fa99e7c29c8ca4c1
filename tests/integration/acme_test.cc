// SPDX-License-Identifier: Apache-2.0
// The ACME client against a real ACME server: Debian's pebble, resolving every name through
// berth's own DNS (an in-process berthd). HTTP-01 is answered by a small HTTP server of the
// test's own on pebble's validation port; DNS-01 by TXT records written into berth's zone
// through the berth CLI. The issued chains are checked with `openssl verify` against pebble's
// root, and served by `openssl s_server` to curl --cacert.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "certs/certs.h"
#include "support/harness.h"
#include "support/pebble.h"

namespace berth::test {
namespace {

using certs::Challenge;

// Answers GET /.well-known/acme-challenge/TOKEN with the key authorization put() for it (404
// otherwise), one connection at a time, on 127.0.0.1 and a port of its own.
class ChallengeServer {
 public:
  ChallengeServer() {
    fd_ = listen_loopback(port_);
    if (fd_ < 0) {
      ADD_FAILURE() << "challenge server: cannot listen";
      return;
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~ChallengeServer() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  void put(const std::string& token, const std::string& value) {
    std::lock_guard lock(mu_);
    answers_[token] = value;
  }
  void erase(const std::string& token) {
    std::lock_guard lock(mu_);
    answers_.erase(token);
  }
  int requests() const { return requests_; }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        continue;
      }
      serve(c);
      ::close(c);
    }
  }
  void serve(int c) {
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) {
        return;
      }
      req.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    std::string prefix = "GET /.well-known/acme-challenge/";
    std::string body;
    bool found = false;
    if (req.rfind(prefix, 0) == 0) {
      std::string token = req.substr(prefix.size(), req.find(' ', prefix.size()) - prefix.size());
      std::lock_guard lock(mu_);
      auto it = answers_.find(token);
      found = it != answers_.end();
      body = found ? it->second : "";
    }
    std::string resp = std::string(found ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found") +
                       "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body;
    ssize_t ignored = ::write(c, resp.data(), resp.size());
    (void)ignored;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::map<std::string, std::string> answers_;
  std::thread thread_;
};

// HTTP-01 through ChallengeServer, DNS-01 through `berth dns record upsert` into `zone`. Every
// call is recorded, and it can be told to present nothing or refuse every identifier.
class Responder : public certs::ChallengeResponder {
 public:
  Responder(ChallengeServer& http, TestDaemon& d, std::string zone)
      : http_(http), d_(d), zone_(std::move(zone)) {}

  std::optional<Challenge::Type> choose(std::string_view domain, bool wildcard) override {
    chosen.push_back((wildcard ? "*." : "") + std::string(domain));
    if (refuse) {
      return std::nullopt;
    }
    if (use_http) {
      return Challenge::Type::http01;
    }
    return wildcard || use_dns ? Challenge::Type::dns01 : Challenge::Type::http01;
  }
  Status present(const Challenge& c) override {
    presented.push_back(c);
    if (fail_present) {
      return Error(Errc::PermissionDenied, "zone example.com is not yours");
    }
    if (answer_nothing) {
      return ok();
    }
    if (c.type == Challenge::Type::http01) {
      http_.put(c.token, c.key_authorization);
      return ok();
    }
    auto r = d_.cli("dns record upsert " + zone_ + " --name " + relative(c.dns_name()) +
                    " --type TXT --ttl 5 --value '\"" + c.dns_value() + "\"'");
    if (r.code != 0) {
      return Error(Errc::Unavailable, "dns record upsert: " + r.all());
    }
    return ok();
  }
  void cleanup(const Challenge& c) override {
    cleaned.push_back(c);
    if (c.type == Challenge::Type::http01) {
      http_.erase(c.token);
    } else if (!answer_nothing) {
      auto r = d_.cli("dns record delete " + zone_ + " --name " + relative(c.dns_name()) +
                      " --type TXT");
      EXPECT_EQ(r.code, 0) << r.all();
    }
  }

  bool refuse = false;
  bool use_dns = false;
  bool use_http = false;  // even for wildcards (which pebble offers only dns-01)
  bool fail_present = false;
  bool answer_nothing = false;
  std::vector<std::string> chosen;
  std::vector<Challenge> presented;
  std::vector<Challenge> cleaned;

 private:
  std::string relative(const std::string& fqdn) const {
    return fqdn.substr(0, fqdn.size() - zone_.size() - 1);
  }
  ChallengeServer& http_;
  TestDaemon& d_;
  std::string zone_;
};

// Serves dir/leaf.pem (+ dir/rest.pem as the chain, dir/key.pem) with `openssl s_server` on
// 127.0.0.1 and a free port, and GETs https://host:PORT/ with curl trusting only dir/root.pem.
void serve_to_curl(const TempDir& dir, const std::string& host) {
  std::string port = std::to_string(free_port());
  std::string chain =
      read_file(dir / "rest.pem").empty() ? "" : " -cert_chain " + (dir / "rest.pem");
  auto served =
      run("timeout 30 openssl s_server -accept 127.0.0.1:" + port + " -cert " + (dir / "leaf.pem") +
          " -key " + (dir / "key.pem") + chain + " -www -naccept 1 >" + (dir / "s_server.log") +
          " 2>&1 & srv=$!; curl -sS -o /dev/null -w '%{http_code}' --retry 30 "
          "--retry-connrefused --retry-delay 1 --cacert " +
          (dir / "root.pem") + " --resolve " + host + ":" + port + ":127.0.0.1 https://" + host +
          ":" + port + "/; rc=$?; kill $srv 2>/dev/null; wait $srv 2>/dev/null; exit $rc");
  EXPECT_EQ(served.code, 0) << served.all() << read_file(dir / "s_server.log");
  EXPECT_EQ(served.out, "200") << served.all();
}

class AcmeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Pebble::available()) {
      GTEST_SKIP() << "pebble is not installed (apt-get install pebble)";
    }
    ASSERT_EQ(d_.cli("dns zone create example.com").code, 0);
    for (const char* name : {"@", "www", "nothere"}) {
      auto r = d_.cli(std::string("dns record upsert example.com --name ") + name +
                      " --type A --value 127.0.0.1 --ttl 5");
      ASSERT_EQ(r.code, 0) << r.all();
    }
    start_pebble(0);
  }

  void start_pebble(int authz_reuse_percent, int nonce_reject_percent = 5) {
    pebble_.reset();
    Pebble::Options o;
    o.dns_port = d_.dns_port();
    o.http_port = http_.port();
    // Two labels: pebble 2.4 panics on an order for a name with fewer labels than an entry.
    o.blocked_domains = {"blocked.test"};
    o.authz_reuse_percent = authz_reuse_percent;
    o.nonce_reject_percent = nonce_reject_percent;
    pebble_ = std::make_unique<Pebble>(o);
    std::string why;
    ASSERT_TRUE(pebble_->start(&why)) << why;
  }

  certs::AcmeOptions options() const {
    certs::AcmeOptions o;
    o.directory_url = pebble_->directory_url();
    o.ca_bundle = pebble_->ca_bundle();
    o.email = "admin@example.com";
    o.timeout = std::chrono::seconds(15);
    o.order_timeout = std::chrono::seconds(120);
    return o;
  }

  certs::AcmeClient client(const std::string& key = "") {
    auto c = certs::AcmeClient::create(options(), key);
    EXPECT_TRUE(c) << c.error().message();
    return std::move(*c);
  }

  // obtain() with the progress lines collected.
  Result<certs::Issued> obtain(certs::AcmeClient& c, const std::vector<std::string>& names) {
    progress_.clear();
    return c.obtain(names, responder_,
                    [this](std::string_view line) { progress_.emplace_back(line); });
  }

  bool progressed(const std::string& line) const {
    for (const auto& p : progress_) {
      if (p.find(line) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  std::string progress_text() const {
    std::string out;
    for (const auto& p : progress_) {
      out += p + "\n";
    }
    return out;
  }

  // The chain verifies against pebble's root for every name, with openssl; its names and
  // expiry are what inspect() said; and curl trusts it when openssl s_server serves it.
  void verify_issued(const certs::Issued& got, const std::vector<std::string>& names,
                     const std::string& host) {
    std::string why;
    std::string root = pebble_->root_pem(&why);
    ASSERT_FALSE(root.empty()) << why;
    TempDir t;
    std::string end = "-----END CERTIFICATE-----\n";
    size_t leaf_end = got.chain_pem.find(end);
    ASSERT_NE(leaf_end, std::string::npos) << got.chain_pem;
    write_file(t / "root.pem", root);
    write_file(t / "chain.pem", got.chain_pem);
    write_file(t / "leaf.pem", got.chain_pem.substr(0, leaf_end + end.size()));
    write_file(t / "rest.pem", got.chain_pem.substr(leaf_end + end.size()));
    write_file(t / "key.pem", got.key_pem);
    EXPECT_NE(test::read_file(t / "rest.pem").find("BEGIN CERTIFICATE"), std::string::npos)
        << "no intermediate in the chain";
    std::string verify = "openssl verify -purpose sslserver -CAfile " + (t / "root.pem") +
                         " -untrusted " + (t / "rest.pem");
    auto v = run(verify + " -verify_hostname " + host + " " + (t / "leaf.pem"));
    EXPECT_EQ(v.code, 0) << v.all();
    auto wrong = run(verify + " -verify_hostname other.example.net " + (t / "leaf.pem"));
    EXPECT_NE(wrong.code, 0) << wrong.all();
    // The intermediate alone is no trust anchor: pebble's root is what verifies it.
    auto alone = run("openssl verify -CAfile " + (t / "rest.pem") + " " + (t / "leaf.pem"));
    EXPECT_NE(alone.code, 0) << "verified without pebble's root: " << alone.all();

    EXPECT_EQ(got.info.names, names);
    auto san = run("openssl x509 -in " + (t / "leaf.pem") + " -noout -ext subjectAltName");
    for (const auto& n : names) {
      EXPECT_NE(san.out.find("DNS:" + n), std::string::npos) << san.out;
    }
    auto end_date = run("date -u -d \"$(openssl x509 -in " + (t / "leaf.pem") +
                        " -noout -enddate | cut -d= -f2)\" +%s");
    ASSERT_EQ(end_date.code, 0) << end_date.all();
    EXPECT_EQ(std::stoll(end_date.out), got.info.not_after);
    auto start_date = run("date -u -d \"$(openssl x509 -in " + (t / "leaf.pem") +
                          " -noout -startdate | cut -d= -f2)\" +%s");
    EXPECT_EQ(std::stoll(start_date.out), got.info.not_before);
    EXPECT_NE(got.info.issuer.find("Pebble Intermediate CA"), std::string::npos) << got.info.issuer;
    auto serial = run("openssl x509 -in " + (t / "leaf.pem") + " -noout -serial | cut -d= -f2");
    std::string hex = serial.out.substr(0, serial.out.find('\n'));
    for (char& ch : hex) {
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(hex.substr(hex.find_first_not_of('0')), got.info.serial);
    auto matches = certs::key_matches(got.chain_pem, got.key_pem);
    ASSERT_TRUE(matches);
    EXPECT_TRUE(*matches);

    // A TLS server with this chain, and curl trusting only pebble's root.
    serve_to_curl(t, host);
  }

  TestDaemon d_;
  ChallengeServer http_;
  std::unique_ptr<Pebble> pebble_;
  Responder responder_{http_, d_, "example.com"};
  std::vector<std::string> progress_;
};

TEST_F(AcmeTest, Http01IssuesAChainThatVerifies) {
  auto c = client();
  auto got = obtain(c, {"example.com", "WWW.example.com"});
  ASSERT_TRUE(got) << got.error().message() << "\n" << progress_text() << pebble_->log();
  EXPECT_TRUE(progressed("order created")) << progress_text();
  EXPECT_TRUE(progressed("http-01 for example.com: presented")) << progress_text();
  EXPECT_TRUE(progressed("http-01 for www.example.com: validated")) << progress_text();
  EXPECT_TRUE(progressed("certificate issued")) << progress_text();
  // Both identifiers were answered over HTTP, and every present() was cleaned up.
  ASSERT_EQ(responder_.presented.size(), 2u);
  EXPECT_EQ(responder_.cleaned.size(), 2u);
  EXPECT_EQ(responder_.presented[0].type, Challenge::Type::http01);
  EXPECT_GE(http_.requests(), 2);
  verify_issued(*got, {"example.com", "www.example.com"}, "www.example.com");

  // The account key stored and given back finds the same account.
  std::string account = c.account_url();
  ASSERT_FALSE(account.empty());
  auto again = client(c.account_key_pem());
  ASSERT_TRUE(again.register_account());
  EXPECT_EQ(again.account_url(), account);
}

TEST_F(AcmeTest, Dns01ForAWildcardThroughBerthsDns) {
  responder_.use_dns = true;
  auto c = client();
  auto got = obtain(c, {"*.preview.example.com", "preview.example.com"});
  ASSERT_TRUE(got) << got.error().message() << "\n" << progress_text() << pebble_->log();
  EXPECT_TRUE(progressed("dns-01 for *.preview.example.com: presented")) << progress_text();
  EXPECT_TRUE(progressed("dns-01 for *.preview.example.com: validated")) << progress_text();
  // Pebble lists the authorizations in no fixed order.
  std::sort(responder_.chosen.begin(), responder_.chosen.end());
  EXPECT_EQ(responder_.chosen,
            (std::vector<std::string>{"*.preview.example.com", "preview.example.com"}));
  ASSERT_EQ(responder_.presented.size(), 2u);
  for (const auto& p : responder_.presented) {
    EXPECT_EQ(p.type, Challenge::Type::dns01);
    EXPECT_EQ(p.domain, "preview.example.com");  // the wildcard's too: without "*."
  }
  EXPECT_EQ(responder_.cleaned.size(), 2u);
  // The TXT record is gone again.
  auto dig = run("dig +short @127.0.0.1 -p " + std::to_string(d_.dns_port()) +
                 " _acme-challenge.preview.example.com TXT");
  EXPECT_EQ(dig.out, "") << dig.all();
  verify_issued(*got, {"*.preview.example.com", "preview.example.com"},
                "pr-12.preview.example.com");
}

TEST_F(AcmeTest, ReusedAuthorizationsNeedNoChallenge) {
  start_pebble(100);
  auto c = client();
  auto first = obtain(c, {"www.example.com"});
  ASSERT_TRUE(first) << first.error().message() << "\n" << progress_text();
  ASSERT_EQ(responder_.presented.size(), 1u);
  auto second = obtain(c, {"www.example.com"});
  ASSERT_TRUE(second) << second.error().message() << "\n" << progress_text();
  EXPECT_TRUE(progressed("www.example.com: already authorized")) << progress_text();
  EXPECT_EQ(responder_.presented.size(), 1u);
  EXPECT_NE(second->info.serial, first->info.serial);
  auto same_key = certs::key_matches(second->chain_pem, first->key_pem);
  ASSERT_TRUE(same_key);
  EXPECT_FALSE(*same_key);  // every certificate gets a new key
}

TEST_F(AcmeTest, BadNonceIsRetriedThenReported) {
  start_pebble(0, 100);  // every nonce is "bad"
  auto c = client();
  auto got = obtain(c, {"www.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::FailedPrecondition);
  EXPECT_EQ(got.error().message().rfind("acme: urn:ietf:params:acme:error:badNonce: ", 0), 0u)
      << got.error().message();
  // The first try and three retries, each with the nonce the rejection carried.
  std::string log = pebble_->log();
  size_t posts = 0;
  for (size_t at = log.find("POST /sign-me-up"); at != std::string::npos;
       at = log.find("POST /sign-me-up", at + 1)) {
    ++posts;
  }
  EXPECT_EQ(posts, 4u) << log;
  EXPECT_TRUE(responder_.presented.empty());
}

TEST_F(AcmeTest, RejectedIdentifierCarriesPebblesProblem) {
  auto c = client();
  auto got = obtain(c, {"www.blocked.test"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::FailedPrecondition);
  const std::string& m = got.error().message();
  EXPECT_EQ(m.rfind("acme: urn:ietf:params:acme:error:rejectedIdentifier: ", 0), 0u) << m;
  // Pebble's own words.
  EXPECT_NE(m.find("Order included an identifier for which issuance is forbidden by policy"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("www.blocked.test"), std::string::npos) << m;
  EXPECT_TRUE(responder_.presented.empty());
}

TEST_F(AcmeTest, UnansweredChallengeFailsWithTheValidationError) {
  responder_.answer_nothing = true;
  auto c = client();
  auto got = obtain(c, {"nothere.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::FailedPrecondition);
  const std::string& m = got.error().message();
  EXPECT_EQ(m.rfind("acme: urn:ietf:params:acme:error:unauthorized: ", 0), 0u) << m;
  // Pebble fetched our (empty) answer and said so.
  EXPECT_NE(m.find("/.well-known/acme-challenge/"), std::string::npos) << m;
  EXPECT_NE(m.find("404"), std::string::npos) << m;
  EXPECT_NE(m.find("http-01 for nothere.example.com"), std::string::npos) << m;
  EXPECT_EQ(responder_.presented.size(), 1u);
  EXPECT_EQ(responder_.cleaned.size(), 1u);
  EXPECT_FALSE(progressed("certificate issued"));
}

TEST_F(AcmeTest, NoChallengeTypeNamesTheIdentifier) {
  responder_.refuse = true;
  auto c = client();
  auto got = obtain(c, {"*.preview.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::FailedPrecondition);
  EXPECT_NE(got.error().message().find("*.preview.example.com"), std::string::npos)
      << got.error().message();
  EXPECT_NE(got.error().message().find("dns-01"), std::string::npos) << got.error().message();
  EXPECT_TRUE(responder_.presented.empty());
}

TEST_F(AcmeTest, AChallengeTypeTheServerDoesNotOfferIsNamed) {
  responder_.use_http = true;
  auto c = client();
  auto got = obtain(c, {"*.preview.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::FailedPrecondition);
  EXPECT_EQ(got.error().message(),
            "acme: the server offers no http-01 challenge for *.preview.example.com (it offers: "
            "dns-01)");
  EXPECT_TRUE(responder_.presented.empty());
}

TEST_F(AcmeTest, APresentFailureStopsTheOrderAndIsCleanedUp) {
  responder_.fail_present = true;
  auto c = client();
  auto got = obtain(c, {"www.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::PermissionDenied);  // the responder's own code
  EXPECT_EQ(got.error().message(),
            "acme: http-01 for www.example.com: present: zone example.com is not yours");
  EXPECT_EQ(responder_.presented.size(), 1u);
  EXPECT_EQ(responder_.cleaned.size(), 1u);
}

TEST_F(AcmeTest, OrderTimeoutEndsTheWait) {
  auto o = options();
  o.order_timeout = std::chrono::seconds(0);  // the first wait on the server is too long
  auto c = certs::AcmeClient::create(o, "");
  ASSERT_TRUE(c);
  auto got = obtain(*c, {"www.example.com"});
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::DeadlineExceeded);
  EXPECT_NE(got.error().message().find("within 0s"), std::string::npos) << got.error().message();
  EXPECT_EQ(responder_.presented.size(), responder_.cleaned.size());
}

TEST_F(AcmeTest, ServerCertificateIsVerified) {
  auto o = options();
  o.ca_bundle.clear();  // the system's CAs do not know pebble's certificate
  auto c = certs::AcmeClient::create(o, "");
  ASSERT_TRUE(c);
  auto got = c->obtain({"example.com"}, responder_, nullptr);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Unavailable);
  EXPECT_NE(got.error().message().find("certificate verify failed"), std::string::npos)
      << got.error().message();
  // A bundle that holds some other certificate does not help either.
  auto ca = certs::Authority::create();
  ASSERT_TRUE(ca);
  TempDir t;
  write_file(t / "other.pem", ca->root_pem());
  o.ca_bundle = t / "other.pem";
  auto other = certs::AcmeClient::create(o, "");
  ASSERT_TRUE(other);
  auto refused = other->obtain({"example.com"}, responder_, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Unavailable);
}

TEST_F(AcmeTest, RequestedLifetimeGivesAShortLivedCertificate) {
  auto o = options();
  o.requested_lifetime = std::chrono::hours(1);
  auto c = certs::AcmeClient::create(o, "");
  ASSERT_TRUE(c);
  auto got = obtain(*c, {"www.example.com"});
  ASSERT_TRUE(got) << got.error().message() << "\n" << pebble_->log();
  int64_t now = std::time(nullptr);
  EXPECT_GE(got->info.not_after, now + 3600 - 120);
  EXPECT_LE(got->info.not_after, now + 3600 + 5);
}

// berth's own CA: curl trusts a leaf it issued when given the root, as `berth ca export` and
// `curl --cacert berth-root.pem` will be used.
TEST(CertsAuthorityServeTest, CurlTrustsALeafThroughTheExportedRoot) {
  auto ca = certs::Authority::create();
  ASSERT_TRUE(ca) << ca.error().message();
  auto leaf = ca->issue({"example.com", "*.preview.example.com"}, std::chrono::hours(24));
  ASSERT_TRUE(leaf) << leaf.error().message();
  TempDir t;
  write_file(t / "root.pem", ca->root_pem());
  write_file(t / "leaf.pem", leaf->chain_pem);
  write_file(t / "rest.pem", "");
  write_file(t / "key.pem", leaf->key_pem);
  serve_to_curl(t, "pr-7.preview.example.com");
  serve_to_curl(t, "example.com");
  // Without the root, curl refuses it.
  auto other = certs::Authority::create();
  ASSERT_TRUE(other);
  write_file(t / "root.pem", other->root_pem());
  std::string port = std::to_string(free_port());
  auto refused = run("timeout 30 openssl s_server -accept 127.0.0.1:" + port + " -cert " +
                     (t / "leaf.pem") + " -key " + (t / "key.pem") +
                     " -www -naccept 1 >/dev/null 2>&1 & srv=$!; curl -sS -o /dev/null --retry 30 "
                     "--retry-connrefused --retry-delay 1 --cacert " +
                     (t / "root.pem") + " --resolve example.com:" + port +
                     ":127.0.0.1 https://example.com:" + port +
                     "/; rc=$?; kill $srv 2>/dev/null; wait $srv 2>/dev/null; exit $rc");
  EXPECT_EQ(refused.code, 60) << refused.all();  // curl: peer certificate cannot be authenticated
}

}  // namespace
}  // namespace berth::test
