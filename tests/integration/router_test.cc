// SPDX-License-Identifier: Apache-2.0
// The ingress router against real backends: a small blocking HTTP server in this process (one
// thread per connection, so tests can see connections, headers and bodies), busybox httpd
// inside its own network namespace, and curl (or a raw socket) as the client.
#include "router/router.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/asio.h"
#include "integration/router_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

using namespace std::chrono_literals;
using router::Route;
using router::Router;
using router::RouterOptions;
using router::RouteTable;
using router::Upstream;

using namespace router_backend;

// ---------------------------------------------------------------------------------------------
// The router under test: two io_contexts on two threads, as berthd runs it.

class RouterTest : public ::testing::Test {
 protected:
  void start(RouterOptions opts = {}) {
    opts.access_log = true;
    for (int i = 0; i < 2; ++i) {
      ios_.push_back(std::make_unique<asio::io_context>(1));
    }
    std::vector<asio::io_context*> raw;
    for (auto& io : ios_) {
      raw.push_back(io.get());
    }
    router_ = std::make_unique<Router>(raw, opts);
    auto port = router_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.has_value());
    port_ = *port;
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

  static std::shared_ptr<Upstream> upstream(const std::string& id, uint16_t port) {
    auto u = std::make_shared<Upstream>();
    u->id = id;
    u->port = port;
    return u;
  }
  void publish(std::map<std::string, Route> hosts) {
    auto t = std::make_shared<RouteTable>();
    for (auto& [h, r] : hosts) {
      t->hosts[h] = r;
    }
    router_->publish(t);
  }
  static Route route(const std::string& service, std::vector<std::shared_ptr<Upstream>> ups,
                     const std::string& reason = "") {
    Route r;
    r.service = service;
    r.upstreams = std::move(ups);
    r.unavailable_reason = reason;
    return r;
  }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // curl -s with a Host header; prints the body then "\n<status>".
  CmdResult curl(const std::string& host, const std::string& args = "",
                 const std::string& path = "/") const {
    return run("curl -s -m 30 -H 'Host: " + host + "' " + args + " -w '\\n%{http_code}' '" +
               url(path) + "'");
  }

  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Router> router_;
  uint16_t port_ = 0;
};

TEST_F(RouterTest, RoutesByHostIgnoringPortAndCase) {
  Backend a(echo_name("A")), b(echo_name("B"));
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})},
           {"b.test", route("b", {upstream("b1", b.port())})}});
  auto r = curl("A.Test:8080");
  EXPECT_EQ(r.out, "A bytes=0 zero=1 chunked=0\n\n200");
  r = curl("b.TEST");
  EXPECT_EQ(r.out, "B bytes=0 zero=1 chunked=0\n\n200");
  r = curl("b.test.");
  EXPECT_EQ(r.out, "B bytes=0 zero=1 chunked=0\n\n200");
}

TEST_F(RouterTest, UnknownHostIs404NamingIt) {
  start();
  auto r = curl("Nope.Example:81");
  EXPECT_EQ(r.out, "no service at host nope.example\n\n404");
}

TEST_F(RouterTest, EmptyRouteIs503WithItsReason) {
  start();
  publish({{"paused.test", route("web", {}, "service web is paused")},
           {"empty.test", route("api", {})}});
  EXPECT_EQ(curl("paused.test").out, "service web is paused\n\n503");
  EXPECT_EQ(curl("empty.test").out, "service api has no healthy instance\n\n503");
}

TEST_F(RouterTest, DeadUpstreamIs502) {
  start();
  auto dead = upstream("dead1", free_port());
  publish({{"dead.test", route("dead", {dead})}});
  auto r = curl("dead.test");
  EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "502");
  EXPECT_EQ(dead->failures_total.load(), 1u);
  EXPECT_EQ(settled_in_flight(*dead), 0);

  // Garbage instead of HTTP is a 502 too.
  Backend junk([](const SeenRequest&, int fd) {
    write_all(fd, "SSH-2.0-OpenSSH\r\nnot http at all\r\n\r\n");
    return false;
  });
  publish({{"junk.test", route("junk", {upstream("junk1", junk.port())})}});
  r = curl("junk.test");
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "502") << r.out;
}

TEST_F(RouterTest, SlowUpstreamIs504AfterResponseTimeout) {
  Backend slow([](const SeenRequest&, int fd) {
    std::this_thread::sleep_for(6s);
    write_all(fd, response("late\n"));
    return true;
  });
  RouterOptions o;
  o.response_timeout = 300ms;
  start(o);
  publish({{"slow.test", route("slow", {upstream("slow1", slow.port())})}});
  auto t0 = std::chrono::steady_clock::now();
  auto r = curl("slow.test");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.out, "upstream slow1 sent no response within 300 ms\n\n504");
  // At the deadline, not when the backend finally answers (after 6 s); room for a busy runner.
  EXPECT_LT(took, 4s);
}

TEST_F(RouterTest, LeastOutstandingSpreadsLoad) {
  auto slow = [](std::string name) {
    return [name](const SeenRequest&, int fd) {
      // Busy while all four requests arrive, even on a loaded runner.
      std::this_thread::sleep_for(2s);
      write_all(fd, response(name));
      return true;
    };
  };
  Backend a(slow("A")), b(slow("B"));
  start();
  auto ua = upstream("a1", a.port());
  auto ub = upstream("b1", b.port());
  publish({{"lb.test", route("lb", {ua, ub})}});
  // Four requests at once: two go to each (a busy upstream is never picked over an idle one).
  std::string cmd;
  for (int i = 0; i < 4; ++i) {
    cmd += "curl -s -m 10 -H 'Host: lb.test' '" + url() + "' & sleep 0.1; ";
  }
  cmd += "wait";
  auto r = run(cmd);
  EXPECT_EQ(a.requests(), 2) << r.out;
  EXPECT_EQ(b.requests(), 2) << r.out;
  EXPECT_EQ(settled_in_flight(*ua), 0);
  EXPECT_EQ(settled_in_flight(*ub), 0);
  EXPECT_EQ(ua->requests_total.load() + ub->requests_total.load(), 4u);
}

TEST_F(RouterTest, UpstreamConnectionsAreKeptAlive) {
  Backend a(echo_name("A"));
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  // One client connection, five requests: one upstream connection.
  std::string urls;
  for (int i = 0; i < 5; ++i) {
    urls += " '" + url("/" + std::to_string(i)) + "'";
  }
  auto r = run("curl -s -H 'Host: a.test'" + urls);
  EXPECT_EQ(a.requests(), 5) << r.all();
  EXPECT_EQ(a.connections(), 1);
  // Separate client connections (spread over both I/O threads) reuse pooled connections too.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(curl("a.test").code, 0);
  }
  EXPECT_EQ(a.requests(), 11);
  EXPECT_LE(a.connections(), 2);
}

TEST_F(RouterTest, StaleKeptAliveConnectionIsRetriedOnce) {
  // The backend closes every connection after answering, without saying so: the pooled
  // connection is dead on reuse, and the idempotent GET goes out again on a fresh one.
  Backend a([](const SeenRequest&, int fd) {
    write_all(fd, response("ok\n"));
    return false;
  });
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  auto r =
      run("curl -s -H 'Host: a.test' '" + url("/1") + "' '" + url("/2") + "' '" + url("/3") + "'");
  EXPECT_EQ(r.out, "ok\nok\nok\n");
  EXPECT_EQ(a.requests(), 3);
}

TEST_F(RouterTest, ForwardedHeadersAndRequestIdReachTheBackend) {
  Backend a(echo_name("A"));
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  auto r = curl("a.test:1234",
                "-H 'X-Forwarded-For: 1.2.3.4' -H 'Connection: keep-alive, X-Secret' "
                "-H 'X-Secret: 1' -H 'Keep-Alive: timeout=5' -H 'Proxy-Authorization: Basic x' "
                "-H 'TE: trailers' -H 'X-Forwarded-Proto: gopher'");
  ASSERT_EQ(r.code, 0);
  r = curl("a.test", "-H 'X-Request-Id: my-id-42'");
  auto seen = a.seen();
  ASSERT_EQ(seen.size(), 2u);
  auto& h = seen[0].headers;
  EXPECT_EQ(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1");
  EXPECT_EQ(h["x-forwarded-proto"], "http");
  EXPECT_EQ(h["x-forwarded-host"], "a.test:1234");
  EXPECT_EQ(h["host"], "a.test:1234");
  EXPECT_GE(h["x-request-id"].size(), 8u);
  for (auto gone : {"connection", "x-secret", "keep-alive", "proxy-authorization", "te"}) {
    EXPECT_EQ(h.count(gone), 0u) << gone;
  }
  EXPECT_EQ(seen[1].headers["x-request-id"], "my-id-42");
  EXPECT_EQ(seen[1].headers["x-forwarded-for"], "127.0.0.1");
}

TEST_F(RouterTest, ChunkedRequestBodyArrivesIntact) {
  Backend a([](const SeenRequest& r, int fd) {
    write_all(fd, response(r.body, "X-Was-Chunked: " + std::to_string(r.chunked) + "\r\n"));
    return true;
  });
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  TempDir dir;
  std::string payload;
  for (int i = 0; i < 20000; ++i) {
    payload += "line " + std::to_string(i) + "\n";
  }
  write_file(dir / "body", payload);
  auto r = run("curl -s -D " + dir / "h" + " -H 'Host: a.test' -H 'Transfer-Encoding: chunked' " +
               "--data-binary @" + dir / "body" + " '" + url() + "'");
  EXPECT_EQ(r.out, payload);
  EXPECT_NE(read_file(dir / "h").find("X-Was-Chunked: 1"), std::string::npos);
}

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

TEST_F(RouterTest, LargeUploadsStreamWithBoundedMemory) {
  Backend a(echo_name("A"));
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  TempDir dir;
  ASSERT_EQ(run("truncate -s 200M " + dir / "zero").code, 0);
  long before = rss_kb();
  // Content-Length upload (curl sends Expect: 100-continue for it).
  auto r = curl("a.test", "-T " + dir / "zero");
  EXPECT_EQ(r.out, "A bytes=209715200 zero=1 chunked=0\n\n200");
  // Chunked upload of unknown length from a pipe.
  r = run("head -c 200M /dev/zero | curl -s -m 60 -H 'Host: a.test' -T - -w '\\n%{http_code}' '" +
          url() + "'");
  EXPECT_EQ(r.out, "A bytes=209715200 zero=1 chunked=1\n\n200");
  long grown = rss_kb() - before;
  EXPECT_LT(grown, 40 * 1024) << "RSS grew by " << grown << " KiB";
}

TEST_F(RouterTest, StreamingResponseArrivesProgressively) {
  Backend a([](const SeenRequest&, int fd) {
    write_all(fd,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 6; ++i) {
      std::string line = "tick " + std::to_string(i) + "\n";
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", line.size());
      write_all(fd, std::string(size) + line + "\r\n");
      std::this_thread::sleep_for(500ms);
    }
    write_all(fd, "0\r\n\r\n");
    return true;
  });
  RouterOptions o;
  o.response_timeout = 1s;  // the body takes 3 s: only the head is bound by this
  start(o);
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  // Each line stamped with its arrival time (ms since start).
  auto r = run("s=$(date +%s%3N); curl -sN -H 'Host: a.test' '" + url() +
               "' | while read -r l; do echo \"$(( $(date +%s%3N) - s )) $l\"; done");
  std::istringstream in(r.out);
  std::vector<long> at;
  std::string l;
  while (std::getline(in, l)) {
    at.push_back(std::stol(l));
  }
  ASSERT_EQ(at.size(), 6u) << r.out;
  // The first line long before the last (the shell and curl start inside the first figure).
  EXPECT_LT(at.front(), 2000) << r.out;
  EXPECT_GT(at.back() - at.front(), 2000) << r.out;
}

// The router's open client connections, from its metrics.
int open_connections(const Router& r) {
  std::string m = r.metrics_text();
  auto at = m.find("\nberth_router_connections ");
  return at == std::string::npos ? -1 : std::atoi(m.c_str() + at + 26);
}

TEST_F(RouterTest, AClientThatSaysCloseIsClosedAtOnce) {
  Backend a(echo_name("A"));
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  int fd = connect_loopback(port_, 5s);
  ASSERT_GE(fd, 0);
  write_all(fd, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
  std::string got;
  while (read_some(fd, got)) {
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  // Our socket stays open: the router must not wait for it (it used to linger for up to 1 s
  // reading, with the connection still counted).
  EXPECT_TRUE(eventually([&] { return open_connections(*router_) == 0; }, 800ms, 10ms))
      << router_->metrics_text();
  ::close(fd);
}

TEST_F(RouterTest, ABodyLeftUnreadIsDrainedSoTheAnswerIsNotReset) {
  start();
  // No route: a 404 before the body is read. Closing with the rest of the body unread in the
  // socket would reset the connection, and the client could lose the answer: the router
  // reads (and drops) what still comes first.
  int fd = connect_loopback(port_, 5s);
  ASSERT_GE(fd, 0);
  std::string body(256 * 1024, 'x');
  write_all(fd, "POST /up HTTP/1.1\r\nHost: nope.test\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n");
  std::thread sender([fd, &body] { write_all(fd, body); });
  std::string got;
  while (read_some(fd, got)) {
  }
  sender.join();
  EXPECT_EQ(got.rfind("HTTP/1.1 404", 0), 0u) << got;
  EXPECT_NE(got.find("no service at host nope.test"), std::string::npos) << got;
  ::close(fd);
}

TEST_F(RouterTest, UpgradeTunnelsBytesBothWays) {
  Backend ws([](const SeenRequest& r, int fd) {
    auto h = r.headers;
    if (lower(h["upgrade"]) != "websocket" ||
        lower(h["connection"]).find("upgrade") == std::string::npos) {
      write_all(fd, response("no upgrade\n"));
      return true;
    }
    write_all(fd,
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "\r\nhello ");
    // Echo raw bytes until the client closes.
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        return false;
      }
      write_all(fd, std::string_view(buf, static_cast<size_t>(n)));
    }
  });
  start();
  publish({{"ws.test", route("ws", {upstream("ws1", ws.port())})}});
  int fd = connect_loopback(port_, 5s);
  ASSERT_GE(fd, 0);
  write_all(fd,
            "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n");
  std::string got;
  while (got.find("hello ") == std::string::npos && read_some(fd, got)) {
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
  EXPECT_NE(got.find("Upgrade: websocket"), std::string::npos) << got;
  got.clear();
  for (int i = 0; i < 3; ++i) {
    std::string msg = "ping-" + std::to_string(i);
    write_all(fd, msg);
    std::string echo;
    while (echo.size() < msg.size() && read_some(fd, echo)) {
    }
    EXPECT_EQ(echo, msg);
  }
  ::close(fd);
}

TEST_F(RouterTest, HeadAnd204And304HaveNoBody) {
  Backend a([](const SeenRequest& r, int fd) {
    if (r.target == "/204") {
      write_all(fd, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
    } else if (r.target == "/304") {
      write_all(fd, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
    } else if (r.method == "HEAD") {
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n");
    } else {
      write_all(fd, response("body\n"));
    }
    return true;
  });
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  // All on one client connection: a stray body byte would corrupt the next response.
  auto r =
      run("curl -s -H 'Host: a.test' -w '%{http_code} ' '" + url("/204") + "' '" + url("/304") +
          "' '" + url("/x") + "' && curl -sI -H 'Host: a.test' '" + url("/h") + "'");
  EXPECT_EQ(r.out.substr(0, 17), "204 304 body\n200 ") << r.out;
  EXPECT_NE(r.out.find("Content-Length: 12345"), std::string::npos) << r.out;
}

// busybox httpd's CGI responses (and some apps) end header lines with a bare LF. The router
// accepts them as nginx does, and the client gets a CRLF head.
TEST_F(RouterTest, UpstreamHeadWithBareLineFeedsIsAccepted) {
  Backend a([](const SeenRequest& r, int fd) {
    if (r.target == "/cgi") {
      // CGI style: no length, the body ends with the connection.
      write_all(fd, "HTTP/1.0 200 OK\nContent-Type: text/plain\nX-Cgi: 1\n\nhello from cgi\n");
      return false;
    }
    if (r.target == "/continue") {
      write_all(fd, "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 3\n\nok\n");
      return true;
    }
    // Mixed line ends, with a length, on a kept-alive connection.
    write_all(fd, "HTTP/1.1 201 Created\r\nContent-Length: 5\nX-Mixed: yes\n\r\nmixed");
    return true;
  });
  start();
  publish({{"a.test", route("a", {upstream("a1", a.port())})}});
  auto r = curl("a.test", "-i", "/cgi");
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("Content-Type: text/plain\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("X-Cgi: 1\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\r\n\r\nhello from cgi\n\n200"), std::string::npos) << r.out;
  // Twice on one client connection: the framing of the first must not leak into the second.
  r = run("curl -s -H 'Host: a.test' -w ' %{http_code}\n' '" + url("/m") + "' '" + url("/m") +
          "' '" + url("/continue") + "'");
  EXPECT_EQ(r.out, "mixed 201\nmixed 201\nok\n 200\n") << r.out;
}

TEST_F(RouterTest, MalformedRequestIs400AndClosed) {
  start();
  int fd = connect_loopback(port_, 5s);
  ASSERT_GE(fd, 0);
  write_all(fd, "GET / HTTP/1.1\r\nHost: a.test\r\nBad Header Line\r\n\r\n");
  std::string got;
  while (read_some(fd, got)) {
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  ::close(fd);
}

// Past 128 header fields (a limit of the router's own, docs/router.md) the answer is 431, as for
// a head over 64 KiB, not a 400 that blames the syntax.
TEST_F(RouterTest, TooManyHeaderFieldsIs431) {
  start();
  int fd = connect_loopback(port_, 5s);
  ASSERT_GE(fd, 0);
  std::string head = "GET / HTTP/1.1\r\nHost: a.test\r\n";
  for (int i = 0; i < 130; ++i) {
    head += "X-F" + std::to_string(i) + ": v\r\n";
  }
  write_all(fd, head + "\r\n");
  std::string got;
  while (read_some(fd, got)) {
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 431", 0), 0u) << got;
  EXPECT_NE(got.find("more than 128 fields"), std::string::npos) << got;
  ::close(fd);
}

TEST_F(RouterTest, PublishSwapsWhileRequestsRun) {
  Backend a(echo_name("A")), b(echo_name("B"));
  start();
  auto ua = upstream("a1", a.port());
  auto ub = upstream("b1", b.port());
  publish({{"s.test", route("s", {ua})}});
  std::atomic<bool> done{false};
  std::thread swapper([&] {
    for (int i = 0; !done; ++i) {
      publish({{"s.test", route("s", {(i % 2) != 0 ? ua : ub})}});
      std::this_thread::sleep_for(2ms);
    }
  });
  std::string urls;
  for (int i = 0; i < 100; ++i) {
    urls += " -o /dev/null '" + url() + "'";
  }
  auto r = run("curl -s -H 'Host: s.test' -w '%{http_code}\\n'" + urls +
               " & curl -s -H 'Host: s.test' -w '%{http_code}\\n'" + urls + "; wait");
  done = true;
  swapper.join();
  std::istringstream in(r.out);
  std::string code;
  int ok = 0;
  while (in >> code) {
    EXPECT_EQ(code, "200");
    ok += code == "200";
  }
  EXPECT_EQ(ok, 200);
  EXPECT_GT(a.requests(), 0);
  EXPECT_GT(b.requests(), 0);
}

TEST_F(RouterTest, MetricsCountRequests) {
  Backend a(echo_name("A"));
  start();
  publish({{"a.test", route("web", {upstream("a1", a.port())})},
           {"www.a.test", route("web", {upstream("a1", a.port())})}});
  curl("a.test");
  curl("a.test");
  curl("nope.test");
  // Counted when the coroutine resumes after its last write: maybe just after curl is done.
  std::string m;
  for (int i = 0; i < 200; ++i) {
    m = router_->metrics_text();
    if (m.find("code_class=\"4xx\"} 1") != std::string::npos &&
        m.find("berth_router_in_flight{service=\"web\"} 0") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(m.find("berth_router_requests_total{service=\"web\",code_class=\"2xx\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("berth_router_requests_total{service=\"_unmatched\",code_class=\"4xx\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("berth_router_request_duration_seconds_count{service=\"web\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("berth_router_request_duration_seconds_bucket{service=\"web\",le=\"+Inf\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("berth_router_in_flight{service=\"web\"} 0"), std::string::npos) << m;
  EXPECT_NE(m.find("berth_router_upstreams{service=\"web\"} 2"), std::string::npos) << m;
}

TEST_F(RouterTest, ReachesAnUpstreamInsideItsNetworkNamespace) {
  if (!have("unshare") || !have("busybox") || !have("ip")) {
    GTEST_SKIP() << "needs unshare, ip and busybox";
  }
  TempDir www;
  write_file(www / "index.html", "inside the namespace\n");
  uint16_t port = free_port();
  std::string script =
      "ip link set lo up; exec busybox httpd -f -p 127.0.0.1:" + std::to_string(port) + " -h " +
      www.path();
  TempDir logs;
  pid_t pid = spawn_server({"unshare", "--net", "--fork", "--kill-child", "sh", "-c", script},
                           logs / "httpd.log");
  ASSERT_GE(pid, 0);
  // unshare(1) itself moves into the new namespace before forking the shell.
  std::shared_ptr<NetNs> ns;
  for (int i = 0; i < 100 && !ns; ++i) {
    std::this_thread::sleep_for(20ms);
    auto self = run("readlink /proc/self/ns/net").out;
    auto theirs = run("readlink /proc/" + std::to_string(pid) + "/ns/net").out;
    if (!theirs.empty() && theirs != self) {
      auto n = NetNs::of_pid(pid);
      ASSERT_TRUE(n.has_value());
      ns = *n;
    }
  }
  ASSERT_TRUE(ns);
  start();
  auto u = upstream("ns1", port);
  u->netns = ns;
  publish({{"ns.test", route("ns", {u})}});
  CmdResult r;
  for (int i = 0; i < 50; ++i) {
    r = curl("ns.test", "", "/index.html");
    if (r.out == "inside the namespace\n\n200") {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(r.out, "inside the namespace\n\n200");
  // The host's own 127.0.0.1:PORT is not that server.
  auto direct =
      run("curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:" + std::to_string(port) +
          "/index.html");
  EXPECT_EQ(direct.out, "000");
  // unshare --fork waits out SIGTERM; SIGKILL takes the shell with it (--kill-child).
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace
}  // namespace berth::test
