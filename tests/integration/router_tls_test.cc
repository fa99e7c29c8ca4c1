// SPDX-License-Identifier: Apache-2.0
// The router over TLS, against real clients: curl (--cacert, --resolve) and a small blocking
// OpenSSL client in this file (for keep-alive across a certificate swap and for session
// resumption). Certificates come from the openssl CLI: a CA, a leaf for an exact name, a leaf
// for a wildcard, and a second leaf for the exact name to swap in.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "common/asio.h"
#include "integration/router_backend.h"
#include "router/router.h"
#include "support/harness.h"

namespace berth::test {
namespace {

using namespace std::chrono_literals;
using namespace router_backend;
using router::Route;
using router::Router;
using router::RouterOptions;
using router::RouteTable;
using router::TlsCertificate;
using router::Upstream;

// ---------------------------------------------------------------------------------------------
// Certificates made with the openssl CLI, once per test binary.

struct Pki {
  TempDir dir;
  std::string ca;  // CA certificate path
  // name -> (chain, key) PEM text
  TlsCertificate app, app2, wild, other;

  Pki() {
    ca = dir / "ca.pem";
    auto r = run("cd " + dir.path() +
                 " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout ca.key -out ca.pem -days 2 -subj /CN=berth-test-ca 2>&1");
    EXPECT_EQ(r.code, 0) << r.all();
    app = leaf("app", {"app.test"}, "ec -pkeyopt ec_paramgen_curve:P-256");
    app2 = leaf("app2", {"app.test"}, "rsa:2048");
    wild = leaf("wild", {"*.wild.test"}, "ec -pkeyopt ec_paramgen_curve:P-256");
    other = leaf("other", {"other.test"}, "ec -pkeyopt ec_paramgen_curve:P-256");
  }

  TlsCertificate leaf(const std::string& file, std::vector<std::string> names,
                      const std::string& keyspec) {
    std::string san;
    for (const auto& n : names) {
      san += (san.empty() ? "DNS:" : ",DNS:") + n;
    }
    write_file(dir / (file + ".ext"), "subjectAltName=" + san + "\n");
    auto r =
        run("cd " + dir.path() + " && openssl req -newkey " + keyspec + " -nodes -keyout " + file +
            ".key -out " + file + ".csr -subj /CN=" + file + " 2>&1 && openssl x509 -req -in " +
            file + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile " + file +
            ".ext -out " + file + ".pem 2>&1");
    EXPECT_EQ(r.code, 0) << r.all();
    TlsCertificate c;
    c.names = std::move(names);
    c.chain_pem = read_file(dir / (file + ".pem")) + read_file(ca);
    c.key_pem = read_file(dir / (file + ".key"));
    return c;
  }
};

Pki& pki() {
  static Pki p;  // shared by the tests; its dir is removed at exit
  return p;
}

// ---------------------------------------------------------------------------------------------
// A blocking TLS client: one connection, requests written and responses read whole.

class TlsClient {
 public:
  // check_host: verify that the certificate names sni (not only that the test CA signed it).
  TlsClient(uint16_t port, const std::string& sni, SSL_SESSION* resume = nullptr,
            bool check_host = true, int max_version = 0, bool h2 = false,
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (h2) {
      static const unsigned char kH2[] = "\x02h2";
      SSL_CTX_set_alpn_protos(ctx_, kH2, 3);
    }
    if (max_version != 0) {
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    }
    SSL_CTX_load_verify_locations(ctx_, pki().ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    // No client cache: freeing a context flushes its cache and makes those sessions
    // unresumable; the test keeps the session itself.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    fd_ = connect_loopback(port, timeout);
    if (fd_ < 0) {
      return;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, sni.c_str());
    if (check_host) {
      SSL_set1_host(ssl_, sni.c_str());
    }
    if (resume != nullptr) {
      SSL_set_session(ssl_, resume);
    }
    ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    if (ssl_ != nullptr) {
      if (ok_) {
        SSL_shutdown(ssl_);  // without it OpenSSL marks the session not resumable
      }
      SSL_free(ssl_);
    }
    if (fd_ >= 0) {
      ::close(fd_);
    }
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  SSL* ssl() { return ssl_; }
  bool resumed() const { return SSL_session_reused(ssl_) == 1; }
  SSL_SESSION* session() const { return SSL_get1_session(ssl_); }
  // The served leaf's common name.
  std::string peer_cn() const {
    X509* x = SSL_get1_peer_certificate(ssl_);
    if (x == nullptr) {
      return "";
    }
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_free(x);
    return cn;
  }
  // Sends a GET and reads one Content-Length response; "" when the connection failed.
  std::string get(const std::string& host, const std::string& path = "/") {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) {
      return "";
    }
    std::string in;
    while (true) {
      auto end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = in.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) {
          size_t n = std::stoul(in.substr(cl + 16));
          if (in.size() >= end + 4 + n) {
            return in.substr(0, end + 4 + n);
          }
        }
      }
      char buf[16384];
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        return "";
      }
      in.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

// Answers with the forwarded headers it saw: "proto=https for=127.0.0.1 host=app.test".
Backend::Handler echo_forwarded() {
  return [](const SeenRequest& r, int fd) {
    auto h = r.headers;
    write_all(fd, response("proto=" + h["x-forwarded-proto"] + " for=" + h["x-forwarded-for"] +
                           " host=" + h["x-forwarded-host"] + " path=" + r.target + "\n"));
    return true;
  };
}

class RouterTlsTest : public ::testing::Test {
 protected:
  void start(RouterOptions opts = {}, bool ipv6 = false) {
    for (int i = 0; i < 2; ++i) {
      ios_.push_back(std::make_unique<asio::io_context>(1));
    }
    std::vector<asio::io_context*> raw;
    for (auto& io : ios_) {
      raw.push_back(io.get());
    }
    router_ = std::make_unique<Router>(raw, opts);
    auto p = router_->listen("127.0.0.1", 0);
    ASSERT_TRUE(p) << p.error().message();
    port_ = *p;
    auto t = router_->listen_tls("127.0.0.1", 0);
    ASSERT_TRUE(t) << t.error().message();
    tls_port_ = *t;
    if (ipv6) {
      auto t6 = router_->listen_tls("::1", 0);
      ASSERT_TRUE(t6) << t6.error().message();
      tls6_port_ = *t6;
      auto p6 = router_->listen("::1", 0);
      ASSERT_TRUE(p6) << p6.error().message();
      port6_ = *p6;
    }
    router_->start();
    for (auto& io : ios_) {
      threads_.emplace_back([c = io.get()] {
        auto guard = asio::make_work_guard(*c);
        c->run();
      });
    }
  }
  void TearDown() override {
    if (router_) {
      router_->stop();
    }
    for (auto& io : ios_) {
      io->stop();
    }
    for (auto& t : threads_) {
      t.join();
    }
    router_.reset();
  }
  void route(const std::string& host, uint16_t backend_port, bool redirect = false,
             bool hsts = false) {
    auto u = std::make_shared<Upstream>();
    u->id = "i-" + host;
    u->port = backend_port;
    Route r;
    r.service = "svc";
    r.upstreams = {u};
    r.https_redirect = redirect;
    r.hsts = hsts;
    auto t = std::make_shared<RouteTable>();
    t->hosts[host] = r;
    router_->publish(t);
  }
  void publish_all() {
    auto& p = pki();
    auto s = router_->publish_certificates({p.other, p.app, p.wild});
    ASSERT_TRUE(s) << s.error().message();
  }
  // curl over HTTPS to name:port resolved to addr; prints the body then "\n<status>".
  CmdResult curl_https(const std::string& name, const std::string& path = "/",
                       const std::string& args = "", const std::string& addr = "127.0.0.1",
                       uint16_t port = 0) const {
    std::string p = std::to_string(port != 0 ? port : tls_port_);
    return run("curl -sS -m 30 --cacert " + pki().ca + " --resolve " + name + ":" + p + ":" + addr +
               " " + args + " -w '\\n%{http_code}' 'https://" + name + ":" + p + path + "'");
  }
  // h2load from 127.0.0.1 with `conns` connections of 100 streams each, through a router with
  // these limits, to a backend that answers every request after `delay`: h2load's output, and
  // the connections and requests the backend saw.
  struct SlowLoad {
    std::string out;
    int connections = 0;
    int requests = 0;
  };
  SlowLoad slow_h2load(net::ConnectionLimits limits, int conns, std::chrono::milliseconds delay) {
    Backend b([delay](const SeenRequest&, int fd) {
      std::this_thread::sleep_for(delay);
      write_all(fd, response("slow"));
      return true;
    });
    RouterOptions o;
    o.limits = limits;
    start(o);
    publish_all();
    route("app.test", b.port());
    auto r =
        run("h2load -n " + std::to_string(100 * conns) + " -c " + std::to_string(conns) +
            " -m 100 -H ':authority: app.test' https://127.0.0.1:" + std::to_string(tls_port_) +
            "/slow 2>&1");
    return SlowLoad{r.out, b.connections(), b.requests()};
  }
  // The common name of the certificate served for an SNI name.
  std::string served_cn(const std::string& sni) const {
    TlsClient c(tls_port_, sni, nullptr, false);
    return c.ok() ? c.peer_cn() : "(handshake failed)";
  }

  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Router> router_;
  uint16_t port_ = 0, tls_port_ = 0, port6_ = 0, tls6_port_ = 0;
};

TEST_F(RouterTlsTest, ServesHttpsOverIpv4AndIpv6WithForwardedHeaders) {
  Backend b(echo_forwarded());
  start({}, true);
  publish_all();
  route("app.test", b.port());
  // HTTP/2 (curl's choice over ALPN) and HTTP/1.1 over TLS alike.
  for (const char* version : {"", "--http1.1"}) {
    auto r = curl_https("app.test", "/x?y=1", version);
    EXPECT_EQ(r.out, "proto=https for=127.0.0.1 host=app.test:" + std::to_string(tls_port_) +
                         " path=/x?y=1\n\n200")
        << version << " " << r.all();
  }
  CmdResult r;
  r = curl_https("app.test", "/", "", "[::1]", tls6_port_);
  EXPECT_EQ(r.out,
            "proto=https for=::1 host=app.test:" + std::to_string(tls6_port_) + " path=/\n\n200")
      << r.all();
  // Plain HTTP next to it says http, over IPv6 too.
  r = run("curl -sS -m 30 -H 'Host: app.test' -w '\\n%{http_code}' http://[::1]:" +
          std::to_string(port6_) + "/");
  EXPECT_EQ(r.out, "proto=http for=::1 host=app.test path=/\n\n200") << r.all();
  // TLS 1.2 and 1.3 both, AES-128-GCM first whatever order the client offers (curl's
  // OpenSSL puts AES-256-GCM first), and no CBC suite for TLS 1.2.
  r = curl_https("app.test", "/", "--tlsv1.2 --tls-max 1.2 -v");
  EXPECT_NE(r.err.find("TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "200");
  r = curl_https("app.test", "/", "--tlsv1.3 -v");
  EXPECT_NE(r.err.find("TLSv1.3 / TLS_AES_128_GCM_SHA256"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "200");
  r = curl_https("app.test", "/", "--tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384 -v");
  EXPECT_NE(r.err.find("TLSv1.3 / TLS_AES_256_GCM_SHA384"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "200");
  r = curl_https("app.test", "/", "--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA");
  EXPECT_NE(r.code, 0) << "a CBC suite was accepted: " << r.all();
}

// Ticket keys rotate (here every second): a ticket sealed under one of the two previous keys
// still resumes, one older than that does not (a full handshake instead), so a stolen ticket
// key stops opening sessions after three rotations.
TEST_F(RouterTlsTest, TicketKeysRotateAndOldTicketsStopResuming) {
  Backend b(echo_forwarded());
  RouterOptions o;
  o.ticket_key_rotation = std::chrono::seconds(1);
  start(o);
  publish_all();
  route("app.test", b.port());
  SSL_SESSION* first = nullptr;
  {
    TlsClient c(tls_port_, "app.test", nullptr, true, TLS1_2_VERSION);
    ASSERT_TRUE(c.ok());
    first = c.session();
  }
  ASSERT_NE(first, nullptr);
  auto resumes = [&](SSL_SESSION* sess) {
    TlsClient c(tls_port_, "app.test", sess, true, TLS1_2_VERSION);
    EXPECT_TRUE(c.ok());
    return c.resumed();
  };
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(resumes(first)) << "a ticket under the previous key must still resume";
  for (int i = 0; i < 2; ++i) {
    std::this_thread::sleep_for(1100ms);
    TlsClient rotate(tls_port_, "app.test", nullptr, true, TLS1_2_VERSION);  // rotates the keys
    ASSERT_TRUE(rotate.ok());
  }
  EXPECT_FALSE(resumes(first)) << "a ticket three keys old resumed";
  SSL_SESSION_free(first);
}

TEST_F(RouterTlsTest, SniPicksExactThenWildcardThenFirst) {
  start();
  publish_all();
  EXPECT_EQ(served_cn("app.test"), "app");
  EXPECT_EQ(served_cn("a.wild.test"), "wild");
  EXPECT_EQ(served_cn("b.a.wild.test"), "other");  // one label only: the first certificate
  EXPECT_EQ(served_cn("unknown.test"), "other");
}

TEST_F(RouterTlsTest, NoCertificateFailsTheHandshakeCleanly) {
  Backend b(echo_forwarded());
  start();
  route("app.test", b.port());
  auto r = curl_https("app.test");
  EXPECT_NE(r.code, 0);
  // An alert (unrecognized_name), not a reset.
  EXPECT_NE(r.err.find("unrecognized name"), std::string::npos) << r.err;
  // The router is fine: plain HTTP works, and HTTPS once certificates arrive.
  r = run("curl -sS -m 30 -H 'Host: app.test' http://127.0.0.1:" + std::to_string(port_) + "/");
  EXPECT_EQ(r.out.rfind("proto=http ", 0), 0u) << r.all();
  publish_all();
  r = curl_https("app.test");
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "200") << r.all();
  EXPECT_NE(router_->metrics_text().find("berth_router_tls_handshakes_total{result=\"failed\"} 1"),
            std::string::npos);
}

TEST_F(RouterTlsTest, GarbageInsteadOfHelloCostsOneConnection) {
  Backend b(echo_forwarded());
  RouterOptions o;
  o.header_timeout = 1s;
  start(o);
  publish_all();
  route("app.test", b.port());
  auto connect_raw = [&] {
    int fd = connect_loopback(tls_port_);
    EXPECT_GE(fd, 0);
    return fd;
  };
  // Garbage: the router answers (at most) an alert and closes.
  int fd = connect_raw();
  std::string junk = "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";
  junk += std::string(4096, '\x16');
  write_all(fd, junk);
  char buf[4096];
  ssize_t n;
  size_t total = 0;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    total += static_cast<size_t>(n);
  }
  EXPECT_EQ(n, 0) << "closed, not timed out";
  EXPECT_LT(total, 64u);
  ::close(fd);
  // Silence: the handshake times out after header_timeout.
  fd = connect_raw();
  auto t0 = std::chrono::steady_clock::now();
  n = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(n, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  ::close(fd);
  auto r = curl_https("app.test");
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "200") << r.all();
}

TEST_F(RouterTlsTest, PublishRejectsABadSetAndKeepsTheOld) {
  start();
  publish_all();
  auto& p = pki();
  TlsCertificate mismatched = p.app;
  mismatched.key_pem = p.wild.key_pem;
  auto s = router_->publish_certificates({p.other, mismatched});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("app.test"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("does not match"), std::string::npos);
  TlsCertificate garbage = p.other;
  garbage.chain_pem = "not a pem";
  s = router_->publish_certificates({garbage});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("other.test"), std::string::npos) << s.error().message();
  TlsCertificate upper = p.other;
  upper.names = {"Other.test"};
  EXPECT_FALSE(router_->publish_certificates({upper}));
  EXPECT_EQ(served_cn("app.test"), "app");  // the old set still serves
}

TEST_F(RouterTlsTest, CertificateSwapKeepsOpenConnections) {
  Backend b(echo_forwarded());
  start();
  publish_all();
  route("app.test", b.port());
  TlsClient open(tls_port_, "app.test");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open.peer_cn(), "app");
  EXPECT_NE(open.get("app.test").find("proto=https"), std::string::npos);
  auto& p = pki();
  ASSERT_TRUE(router_->publish_certificates({p.app2, p.wild}));
  EXPECT_EQ(served_cn("app.test"), "app2");      // new handshakes: the new certificate
  EXPECT_EQ(served_cn("other.test"), "app2");    // and the new default
  auto again = open.get("app.test", "/second");  // the open connection: still served
  EXPECT_NE(again.find("path=/second"), std::string::npos) << again;
  EXPECT_EQ(b.connections(), 1);  // one upstream connection, reused
}

TEST_F(RouterTlsTest, SessionsResumeWithTickets) {
  Backend b(echo_forwarded());
  start();
  publish_all();
  route("app.test", b.port());
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_SESSION* sess = nullptr;
    {
      TlsClient first(tls_port_, "app.test", nullptr, true, version);
      ASSERT_TRUE(first.ok());
      EXPECT_FALSE(first.resumed());
      ASSERT_FALSE(first.get("app.test").empty());  // TLS 1.3 tickets come after the handshake
      sess = first.session();
    }
    // Each connection resumes from the session the one before it ended with, as browsers and
    // wrk do. TLS 1.3 clients use a ticket once (RFC 8446, C.4; wrk's OpenSSL then makes a
    // full handshake), so every TLS 1.3 resumption must bring a new ticket.
    auto ticket = [](SSL_SESSION* s) {
      const unsigned char* t = nullptr;
      size_t n = 0;
      SSL_SESSION_get0_ticket(s, &t, &n);
      return std::string(reinterpret_cast<const char*>(t), n);
    };
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE(i);
      ASSERT_NE(sess, nullptr);
      std::string offered = ticket(sess);
      EXPECT_FALSE(offered.empty());
      TlsClient next(tls_port_, "app.test", sess, true, version);
      SSL_SESSION_free(sess);
      ASSERT_TRUE(next.ok());
      EXPECT_TRUE(next.resumed());
      EXPECT_FALSE(next.get("app.test").empty());
      sess = next.session();
      if (version == TLS1_3_VERSION) {
        EXPECT_TRUE(ticket(sess) != offered) << "the resumption brought no new ticket";
      }
    }
    SSL_SESSION_free(sess);
  }
}

TEST_F(RouterTlsTest, RedirectsPlainHttpExceptAcmeChallenges) {
  Backend b(echo_forwarded());
  start();
  publish_all();
  route("app.test", b.port(), true, true);
  auto r =
      run("curl -sS -m 30 -o /dev/null -H 'Host: App.test:8080' -w "
          "'%{http_code} %{redirect_url}' 'http://127.0.0.1:" +
          std::to_string(port_) + "/a/b?c=d'");
  EXPECT_EQ(r.out, "308 https://app.test:" + std::to_string(tls_port_) + "/a/b?c=d") << r.all();
  // Following it lands on HTTPS, with HSTS.
  r = run("curl -sS -m 30 -L -i --cacert " + pki().ca + " --resolve app.test:" +
          std::to_string(tls_port_) + ":127.0.0.1 --resolve app.test:" + std::to_string(port_) +
          ":127.0.0.1 'http://app.test:" + std::to_string(port_) + "/p'");
  EXPECT_NE(lower(r.out).find("strict-transport-security: max-age=31536000"), std::string::npos)
      << r.all();  // HTTP/2 (curl's choice)
  EXPECT_NE(r.out.find("proto=https"), std::string::npos) << r.all();
  r = curl_https("app.test", "/", "--http1.1 -i");
  EXPECT_NE(r.out.find("Strict-Transport-Security: max-age=31536000"), std::string::npos)
      << r.all();  // and HTTP/1.1
  // ACME HTTP-01: answered on plain HTTP for any host, never redirected.
  auto m = std::make_shared<std::unordered_map<std::string, std::string>>();
  (*m)["tok-1"] = "tok-1.thumbprint";
  router_->publish_challenges(m);
  r = run("curl -sS -m 30 -H 'Host: nowhere.test' -i http://127.0.0.1:" + std::to_string(port_) +
          "/.well-known/acme-challenge/tok-1");
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.all();
  EXPECT_NE(r.out.find("text/plain"), std::string::npos);
  EXPECT_EQ(r.out.substr(r.out.size() - 16), "tok-1.thumbprint") << r.out;
  // An unknown token on a redirected route goes to the service, not to HTTPS.
  r = run("curl -sS -m 30 -H 'Host: app.test' -w '\\n%{http_code}' http://127.0.0.1:" +
          std::to_string(port_) + "/.well-known/acme-challenge/other");
  EXPECT_EQ(r.out,
            "proto=http for=127.0.0.1 host=app.test path=/.well-known/acme-challenge/other"
            "\n\n200")
      << r.all();
  // Without hsts, no header.
  route("app.test", b.port(), false, false);
  r = curl_https("app.test", "/", "-i");
  EXPECT_EQ(r.out.find("strict-transport-security"), std::string::npos) << r.out;
}

TEST_F(RouterTlsTest, RedirectPortOmittedFor443) {
  Backend b(echo_forwarded());
  RouterOptions o;
  o.https_port = 443;
  start(o);
  route("app.test", b.port(), true);
  auto r =
      run("curl -sS -m 30 -o /dev/null -H 'Host: app.test' -w '%{http_code} "
          "%{redirect_url}' 'http://127.0.0.1:" +
          std::to_string(port_) + "/q'");
  EXPECT_EQ(r.out, "308 https://app.test/q") << r.all();
}

TEST_F(RouterTlsTest, Http2WithCurlAndH2load) {
  Backend b(echo_name("A"));
  start();
  publish_all();
  route("app.test", b.port());
  auto r = curl_https("app.test", "/h2", "--http2 -v");
  EXPECT_EQ(r.out, "A bytes=0 zero=1 chunked=0\n\n200") << r.all();
  EXPECT_NE(r.err.find("using HTTP/2"), std::string::npos) << r.err;
  // A body streamed up: with a length, and without one (chunked to the upstream).
  TempDir tmp;
  run("head -c 3000000 /dev/zero > " + tmp / "big");
  r = curl_https("app.test", "/up", "--http2 --data-binary @" + tmp / "big");
  EXPECT_EQ(r.out, "A bytes=3000000 zero=1 chunked=0\n\n200") << r.all();
  r = curl_https("app.test", "/up",
                 "--http2 -H 'Transfer-Encoding: chunked' --data-binary @" + tmp / "big");
  EXPECT_EQ(r.out, "A bytes=3000000 zero=1 chunked=1\n\n200") << r.all();
  // Unknown host: a 404 over h2.
  r = curl_https("app.test", "/", "--http2 -H 'Host: nope.test'");
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "404") << r.all();
  // Many streams on a few connections.
  if (have("h2load")) {
    r = run("h2load -n 400 -c 4 -m 16 -H ':authority: app.test' https://127.0.0.1:" +
            std::to_string(tls_port_) + "/load 2>&1");
    EXPECT_NE(r.out.find("400 succeeded, 0 failed, 0 errored"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Application protocol: h2"), std::string::npos) << r.out;
  }
}

// An upstream head with bare-LF line ends (busybox httpd's CGI) is accepted over HTTP/2 as it
// is over HTTP/1.1: one rule for both.
TEST_F(RouterTlsTest, Http2TakesAnUpstreamHeadWithBareLineFeeds) {
  Backend b([](const SeenRequest& r, int fd) {
    if (r.target == "/continue") {
      write_all(fd, "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 3\n\nok\n");
      return true;
    }
    write_all(fd, "HTTP/1.0 200 OK\nContent-Type: text/plain\nX-Cgi: 1\n\nhello from cgi\n");
    return false;
  });
  start();
  publish_all();
  route("app.test", b.port());
  for (const char* proto : {"--http2", "--http1.1"}) {
    auto r = curl_https("app.test", "/cgi", std::string(proto) + " -i");
    std::string head = r.out;
    std::transform(head.begin(), head.end(), head.begin(), [](char c) { return std::tolower(c); });
    EXPECT_NE(head.find("x-cgi: 1"), std::string::npos) << proto << ": " << r.all();
    EXPECT_NE(r.out.find("hello from cgi\n"), std::string::npos) << proto << ": " << r.all();
    EXPECT_EQ(r.out.substr(r.out.size() - 3), "200") << proto << ": " << r.all();
    r = curl_https("app.test", "/continue", proto);
    EXPECT_EQ(r.out, "ok\n\n200") << proto << ": " << r.all();
  }
}

TEST_F(RouterTlsTest, Http2LargeResponseHonoursFlowControl) {
  // 8 MiB down through a 64 KiB client window: curl reads it all, in order.
  std::string body(8 << 20, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) {
    body[i] = static_cast<char>('a' + (i / 4096) % 26);
  }
  Backend b([&body](const SeenRequest&, int fd) {
    write_all(fd, response(body));
    return true;
  });
  start();
  publish_all();
  route("app.test", b.port());
  TempDir tmp;
  auto r = curl_https("app.test", "/big", "--http2 -o " + tmp / "out");
  EXPECT_EQ(r.out, "\n200") << r.all();
  EXPECT_TRUE(read_file(tmp / "out") == body);
}

// Writes an HTTP/2 connection preface, an empty SETTINGS and then `frames` over TLS to the
// router without reading its answers, and reads until the connection ends. "closed" when the
// router closed it; "open" when it was still open after `patience` of silence (our socket's send
// or receive timeout), as with a router that swallowed the flood. No wall-clock bound on the
// whole: a loaded machine may take its time.
std::string router_closes_after(uint16_t port, const std::string& frames,
                                std::chrono::seconds patience = 30s) {
  TlsClient c(port, "app.test", nullptr, true, 0, true, patience);
  if (!c.ok()) {
    return "no TLS connection";
  }
  // An error ends the connection unless it is our own socket's timeout.
  auto end = [&c](int ret) -> std::string {
    int err = SSL_get_error(c.ssl(), ret);
    int sys = errno;
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
        (err == SSL_ERROR_SYSCALL && (sys == EAGAIN || sys == EWOULDBLOCK))) {
      return "open";
    }
    return "closed";  // EOF, close_notify, a reset or a broken pipe
  };
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bytes += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);  // SETTINGS
  bytes += frames;
  size_t off = 0;
  while (off < bytes.size()) {
    errno = 0;
    int n = SSL_write(c.ssl(), bytes.data() + off,
                      static_cast<int>(std::min<size_t>(16384, bytes.size() - off)));
    if (n <= 0) {
      return end(n);
    }
    off += static_cast<size_t>(n);
  }
  char buf[16384];
  while (true) {
    errno = 0;
    int n = SSL_read(c.ssl(), buf, sizeof buf);
    if (n <= 0) {
      return end(n);
    }
  }
}

// An HTTP/2 frame header: 24-bit length, type, flags, stream id.
std::string h2_frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  uint32_t len = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(len >> 16);
  f += static_cast<char>(len >> 8);
  f += static_cast<char>(len);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int shift : {24, 16, 8, 0}) {
    f += static_cast<char>((stream >> shift) & 0xff);
  }
  return f + payload;
}

// :method GET/POST, :scheme https, :path / from the static table, :authority app.test literal.
const std::string kGet = std::string("\x82\x87\x84\x01\x08", 5) + "app.test";
const std::string kPost = std::string("\x83\x87\x84\x01\x08", 5) + "app.test";

TEST_F(RouterTlsTest, Http2FloodsCostOneConnection) {
  // Our client's writes to the connection the router closes must not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  Backend b(echo_name("A"));
  // Only the flood defences may close these connections within the client's patience.
  RouterOptions o;
  o.keepalive_timeout = o.header_timeout = o.body_timeout = std::chrono::minutes(10);
  start(o);
  publish_all();
  route("app.test", b.port());

  // The control: one PING is no flood, and the connection stays open (5 s of silence; the
  // patience also bounds the TLS handshake, which a loaded machine may slow).
  EXPECT_EQ(router_closes_after(tls_port_, h2_frame(0x6, 0, 0, "12345678"), 5s), "open");

  // PINGs whose ACKs we never read: nghttp2 calls it a flood past 1000 queued ACKs.
  std::string pings;
  for (int i = 0; i < 20000; ++i) {
    pings += h2_frame(0x6, 0, 0, "12345678");
  }
  EXPECT_EQ(router_closes_after(tls_port_, pings), "closed") << "PING flood";

  // The same with SETTINGS frames, each of which must be acknowledged.
  std::string settings;
  for (int i = 0; i < 20000; ++i) {
    settings += h2_frame(0x4, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6));
  }
  EXPECT_EQ(router_closes_after(tls_port_, settings), "closed") << "SETTINGS flood";

  // Rapid reset (CVE-2023-44487): each stream opened with a GET and cancelled at once.
  std::string resets;
  for (uint32_t id = 1; id < 40000; id += 2) {
    resets += h2_frame(0x1, 0x5, id, kGet);                              // HEADERS, END_*
    resets += h2_frame(0x3, 0, id, std::string("\x00\x00\x00\x08", 4));  // RST_STREAM CANCEL
  }
  EXPECT_EQ(router_closes_after(tls_port_, resets), "closed") << "rapid reset";

  // Others are served as before.
  auto r = curl_https("app.test", "/after", "--http2");
  EXPECT_EQ(r.out, "A bytes=0 zero=1 chunked=0\n\n200") << r.all();
}

// What h2_talk saw: the router's frames, and whether it closed the connection.
struct H2Frame {
  uint8_t type, flags;
  uint32_t stream;
  std::string payload;
};
struct H2Seen {
  std::vector<H2Frame> frames;
  bool closed = false;
  bool has(uint8_t type, uint32_t stream) const {
    return std::any_of(frames.begin(), frames.end(),
                       [&](const H2Frame& f) { return f.type == type && f.stream == stream; });
  }
};

// Sends the preface, an empty SETTINGS and `frames`, then reads for `listen` or until the
// router closes, a PING every 250 ms when `ping` (a client that keeps a connection busy).
H2Seen h2_talk(uint16_t port, const std::string& frames, std::chrono::milliseconds listen,
               bool ping = false) {
  H2Seen seen;
  TlsClient c(port, "app.test", nullptr, true, 0, true, 250ms);
  if (!c.ok()) {
    ADD_FAILURE() << "no TLS connection";
    return seen;
  }
  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  out += h2_frame(0x4, 0, 0, "") + frames;
  if (SSL_write(c.ssl(), out.data(), static_cast<int>(out.size())) <= 0) {
    seen.closed = true;
    return seen;
  }
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + listen;
  char buf[16384];
  while (std::chrono::steady_clock::now() < deadline) {
    errno = 0;
    int n = SSL_read(c.ssl(), buf, sizeof buf);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(c.ssl(), n);
    int sys = errno;
    ERR_clear_error();
    if (!(err == SSL_ERROR_WANT_READ ||
          (err == SSL_ERROR_SYSCALL && (sys == EAGAIN || sys == EWOULDBLOCK)))) {
      seen.closed = true;
      break;
    }
    if (ping) {
      std::string p = h2_frame(0x6, 0, 0, "12345678");
      if (SSL_write(c.ssl(), p.data(), static_cast<int>(p.size())) <= 0) {
        seen.closed = true;
        break;
      }
    }
  }
  for (size_t i = 0; i + 9 <= in.size();) {
    auto u = [&](size_t k) { return static_cast<uint8_t>(in[i + k]); };
    size_t len = (size_t{u(0)} << 16) | (size_t{u(1)} << 8) | u(2);
    uint32_t id =
        ((uint32_t{u(5)} & 0x7f) << 24) | (uint32_t{u(6)} << 16) | (uint32_t{u(7)} << 8) | u(8);
    seen.frames.push_back(H2Frame{u(3), u(4), id, in.substr(i + 9, len)});
    i += 9 + len;
  }
  return seen;
}

// Streams reset in the same packet as they were opened never reach the instance: the rapid
// reset attack, short of nghttp2's reset limit, must not turn into upstream connections.
TEST_F(RouterTlsTest, Http2StreamsResetBeforeTheyStartCostNothingUpstream) {
  Backend b(echo_name("A"));
  start();
  publish_all();
  route("app.test", b.port());
  std::string frames;
  for (uint32_t id = 1; id < 2 * 500; id += 2) {
    frames += h2_frame(0x1, 0x5, id, kGet);                              // HEADERS, END_*
    frames += h2_frame(0x3, 0, id, std::string("\x00\x00\x00\x08", 4));  // RST_STREAM CANCEL
  }
  h2_talk(tls_port_, frames, 1s);
  EXPECT_LE(b.connections(), 2) << "reset streams opened upstream connections";
  EXPECT_LE(b.requests(), 2);
  auto r = curl_https("app.test", "/after", "--http2");
  EXPECT_EQ(r.out, "A bytes=0 zero=1 chunked=0\n\n200") << r.all();
}

// Each I/O thread proxies at most its share of router.max_connections streams at once (each
// may hold a connection to an instance), and never fewer than 128: four connections asking
// for 100 slow responses each, on a router of two threads with a tiny cap, never have more
// than 2 x 128 connections open to the instance, and every stream is still answered.
TEST_F(RouterTlsTest, Http2StreamsShareTheThreadsBudgetOfInstanceConnections) {
  if (!have("h2load")) {
    GTEST_SKIP() << "h2load is not installed (scripts/setup --test)";
  }
  // Room for the four clients; a share of 8 a thread, so 128.
  auto r = slow_h2load(net::ConnectionLimits{16, 1024}, 4, 500ms);
  EXPECT_NE(r.out.find("400 succeeded, 0 failed, 0 errored"), std::string::npos) << r.out;
  EXPECT_LE(r.connections, 2 * 128) << "more instance connections than the threads' share";
  EXPECT_EQ(r.requests, 400);
}

// One address gets its share of a thread's streams, as router.max_connections_per_address is of
// router.max_connections: 4096 and 256 make it a sixteenth, never fewer than 128 a thread. Eight
// connections from one address asking for 100 slow responses each reach at most 2 x 128 instance
// connections at once, and every stream is answered.
TEST_F(RouterTlsTest, Http2StreamsOfOneAddressGetItsShare) {
  if (!have("h2load")) {
    GTEST_SKIP() << "h2load is not installed (scripts/setup --test)";
  }
  auto r = slow_h2load(net::ConnectionLimits{4096, 256}, 8, 300ms);
  EXPECT_NE(r.out.find("800 succeeded, 0 failed, 0 errored"), std::string::npos) << r.out;
  EXPECT_LE(r.connections, 2 * 128) << "one address took more than its share";
  EXPECT_EQ(r.requests, 800);
}

// An HPACK bomb: one 4000-byte entry put in the dynamic table, then header blocks of one-byte
// references to it, each decoding to 48 MB. No such stream is answered; the eighth ends the
// connection with ENHANCE_YOUR_CALM, and other clients never notice.
TEST_F(RouterTlsTest, Http2HpackBombEndsTheConnection) {
  Backend b(echo_name("A"));
  start();
  publish_all();
  route("app.test", b.port());
  std::string entry = std::string("\x40\x01x\x7f\xa1\x1e", 6) + std::string(4000, 'v');
  std::string refs(12000, '\xbe');  // the first dynamic-table entry
  std::string frames;
  for (uint32_t id = 1; id < 2 * 20; id += 2) {
    frames += h2_frame(0x1, 0x5, id, kGet + (id == 1 ? entry : "") + refs);
  }
  auto seen = h2_talk(tls_port_, frames, 10s);
  uint32_t goaway = 0;
  for (const auto& f : seen.frames) {
    if (f.type == 0x7 && f.payload.size() >= 8) {
      goaway =
          (uint32_t{static_cast<uint8_t>(f.payload[6])} << 8) | static_cast<uint8_t>(f.payload[7]);
    }
  }
  EXPECT_EQ(goaway, 0xbu) << "no GOAWAY ENHANCE_YOUR_CALM";
  EXPECT_TRUE(seen.closed);
  EXPECT_FALSE(seen.has(0x1, 1)) << "a bomb's stream was answered";
  auto r = curl_https("app.test", "/after", "--http2");
  EXPECT_EQ(r.out, "A bytes=0 zero=1 chunked=0\n\n200") << r.all();
}

// A stream whose request body stops arriving gets 408 after body_timeout; a client whose
// window stays shut loses the stream after idle_timeout; and a connection with no stream left
// closes after keepalive_timeout however many PINGs it sends.
TEST_F(RouterTlsTest, Http2StreamsWaitingOnTheClientTimeOut) {
  std::string big(4 << 20, 'x');
  Backend b([&big](const SeenRequest& r, int fd) {
    write_all(fd, response(r.target == "/big" ? big : "ok"));
    return true;
  });
  RouterOptions o;
  o.body_timeout = 1s;
  o.idle_timeout = 2s;
  o.keepalive_timeout = 3s;
  start(o);
  publish_all();
  route("app.test", b.port());

  // POST with a length and no DATA.
  std::string post = kPost + std::string("\x5c\x04", 2) + "1000";  // content-length: 1000
  auto stalled = h2_talk(tls_port_, h2_frame(0x1, 0x4, 1, post), 20s, true);
  ASSERT_TRUE(stalled.has(0x1, 1)) << "no response head for the stalled upload";
  bool saw408 = false;
  for (const auto& f : stalled.frames) {
    if (f.type == 0x0 && f.stream == 1) {
      saw408 = saw408 || f.payload.find("request body timed out") != std::string::npos;
    }
  }
  EXPECT_TRUE(saw408);
  EXPECT_TRUE(stalled.closed) << "PINGs kept a connection with no stream open";

  // A 4 MiB download with the window at zero (SETTINGS_INITIAL_WINDOW_SIZE 0): reset.
  std::string zero = h2_frame(0x4, 0, 0, std::string("\x00\x04\x00\x00\x00\x00", 6));
  std::string get_big =
      std::string("\x82\x87\x04\x04", 4) + "/big" + std::string("\x01\x08", 2) + "app.test";
  auto shut = h2_talk(tls_port_, zero + h2_frame(0x1, 0x5, 1, get_big), 20s, true);
  EXPECT_TRUE(shut.has(0x3, 1)) << "the stream waiting on a shut window was not reset";
  EXPECT_TRUE(shut.closed);
}

TEST(RouterTlsDaemonTest, BindsAFreeTlsPortAndFailsOnABusyExplicitOne) {
  TestDaemon d;
  EXPECT_NE(d.router_tls_port(), 0);
  EXPECT_NE(d.router_tls_port(), 8443);
  auto r = run("curl -sS -m 10 -k https://127.0.0.1:" + std::to_string(d.router_tls_port()) + "/");
  EXPECT_NE(r.code, 0);  // no certificate yet: an alert, and berthd still answers
  EXPECT_EQ(run("curl -sS -m 10 " + d.url() + "/healthz").code, 0);

  uint16_t busy = d.router_tls_port();
  EXPECT_THROW(TestDaemon([busy](config::Config& c) {
                 c.router_tls_listen = {"127.0.0.1:" + std::to_string(busy)};
               }),
               std::runtime_error);
}

}  // namespace
}  // namespace berth::test
