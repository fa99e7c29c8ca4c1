// SPDX-License-Identifier: Apache-2.0
// Both of berthd's listeners (the registry/API and the router) under abuse, against a real
// berthd process: one address holding all the connections it may, slow heads, idle
// keep-alives, stalled bodies, and request heads whose framing is ambiguous. Clients are raw
// sockets (from 127.0.0.1, or 127.0.0.2 for "somebody else") and curl.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"

namespace berth::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int connect_from(const char* src, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in s{};
  s.sin_family = AF_INET;
  ::inet_pton(AF_INET, src, &s.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof s) != 0) {
    ::close(fd);
    return -1;
  }
  if (!connect_loopback(fd, port)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    off += static_cast<size_t>(n);
  }
}

// Reads until the server closes the connection or `limit` passes. closed: it did close.
std::string read_until_closed(int fd, std::chrono::milliseconds limit, bool* closed) {
  std::string got;
  auto end = Clock::now() + limit;
  *closed = false;
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// True when the server has closed fd (readable with EOF or reset); never blocks.
bool closed_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) {
    return false;
  }
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n <= 0;
}

size_t count_lines(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class ListenerLimits : public ::testing::Test {
 protected:
  void start(const std::string& yaml) {
    write_file(dir_ / "berthd.yaml", "version: 1\n" + yaml);
    p_ = std::make_unique<BerthdProcess>(
        dir_ / "data", std::vector<std::string>{"--config", dir_ / "berthd.yaml"});
    p_->start();
    api_port_ = static_cast<uint16_t>(std::stoi(p_->host().substr(p_->host().rfind(':') + 1)));
    auto r = p_->router_url();
    router_port_ = static_cast<uint16_t>(std::stoi(r.substr(r.rfind(':') + 1)));
  }
  void TearDown() override {
    for (int fd : held_) {
      ::close(fd);
    }
  }
  // Opens n connections from src; returns how many the server kept open once it has dealt
  // with them all. Connections still in the backlog look open, so a loaded machine gets up to
  // 15 s to bring the count to `expect`, where it must then stay for a second (a count on its
  // way past `expect` does not stop the wait). Tests that hold connections across several
  // calls set a header_timeout longer than all of them.
  size_t hold(const char* src, uint16_t port, size_t n, size_t expect) {
    std::vector<int> fds;
    for (size_t i = 0; i < n; ++i) {
      int fd = connect_from(src, port);
      if (fd >= 0) {
        fds.push_back(fd);
      }
    }
    auto count_open = [&] {
      return static_cast<size_t>(
          std::count_if(fds.begin(), fds.end(), [](int fd) { return !closed_now(fd); }));
    };
    size_t seen = count_open();
    auto since = std::chrono::steady_clock::now();
    auto deadline = since + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
      size_t now_open = count_open();
      if (now_open != seen) {
        seen = now_open;
        since = std::chrono::steady_clock::now();
      } else if (seen == expect && std::chrono::steady_clock::now() - since >= 1s) {
        break;
      }
    }
    size_t open = 0;
    for (int fd : fds) {
      if (closed_now(fd)) {
        ::close(fd);
      } else {
        held_.push_back(fd);
        ++open;
      }
    }
    return open;
  }
  // Starts a blob upload in repo as admin; its Location ("" when the answer had none).
  std::string start_upload(const std::string& repo) {
    auto post = run("curl -s -D - -o /dev/null -X POST " + p_->curl_auth() + p_->url() + "/v2/" +
                    repo + "/blobs/uploads/");
    auto at = post.out.find("ocation: ");  // Location or location
    if (at == std::string::npos) {
      ADD_FAILURE() << post.all();
      return "";
    }
    return post.out.substr(at + 9, post.out.find('\r', at) - at - 9);
  }
  // A request from another client (127.0.0.2): "<status> <seconds>".
  CmdResult curl_from_elsewhere(const std::string& url, const std::string& host = "") {
    return run("curl -s -o /dev/null -m 10 --interface 127.0.0.2 " +
               (host.empty() ? std::string() : "-H 'Host: " + host + "' ") +
               "-w '%{http_code} %{time_total}' '" + url + "'");
  }

  TempDir dir_;
  std::unique_ptr<BerthdProcess> p_;
  uint16_t api_port_ = 0, router_port_ = 0;
  std::vector<int> held_;
};

// The attack from the issue: one client holding as many idle connections as it can. With the
// default caps it gets max_connections_per_address on each listener, the rest are closed at
// once, the log says so a few times (not millions), and both listeners answer others.
TEST_F(ListenerLimits, OneAddressHoldingConnectionsDoesNotStopTheDaemon) {
  // Held connections never send a byte: no header timeout may close them during the test.
  start("http:\n  header_timeout: 300s\nrouter:\n  header_timeout: 300s\n");
  auto log_before = read_file(p_->log_path()).size();
  EXPECT_EQ(hold("127.0.0.1", router_port_, 1500, 1024), 1024u);  // router default per address
  EXPECT_EQ(hold("127.0.0.1", api_port_, 400, 256), 256u);        // API default per address

  auto reg = curl_from_elsewhere(p_->url() + "/v2/");
  ASSERT_EQ(reg.out.substr(0, 3), "401") << reg.all();
  // Promptly, not after a timeout of the held connections (a loaded runner may take a while).
  EXPECT_LT(std::stod(reg.out.substr(4)), 3.0) << "GET /v2/ took " << reg.out;
  auto rt = curl_from_elsewhere(p_->router_url() + "/", "nosuch.localhost");
  ASSERT_EQ(rt.out.substr(0, 3), "404") << rt.all();
  EXPECT_LT(std::stod(rt.out.substr(4)), 3.0) << "the router took " << rt.out;

  // More attempts while the caps are full: refused, logged at most about once a second.
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(hold("127.0.0.1", router_port_, 300, 0), 0u);
  }
  std::string log = read_file(p_->log_path()).substr(log_before);
  size_t refused_lines = count_lines(log, "connection refused");
  EXPECT_GE(refused_lines, 1u) << log;
  EXPECT_LE(refused_lines, 10u) << log.substr(0, 4000);
  EXPECT_NE(log.find("reason=max_connections_per_address"), std::string::npos);

  // From another address: 127.0.0.1 holds all the API connections it may.
  auto metrics = run("curl -s --interface 127.0.0.2 " + p_->url() + "/metrics" + p_->curl_auth());
  EXPECT_NE(metrics.out.find("berth_router_connections 1024"), std::string::npos)
      << metrics.out.substr(0, 2000);
}

TEST_F(ListenerLimits, TotalCapRefusesEveryAddressButTheOtherListenerAnswers) {
  start(
      "router:\n  max_connections: 50\n  max_connections_per_address: 0\n"
      "  header_timeout: 300s\n");
  EXPECT_EQ(hold("127.0.0.1", router_port_, 80, 50), 50u);
  int late = connect_from("127.0.0.2", router_port_);
  ASSERT_GE(late, 0);
  bool closed = false;
  read_until_closed(late, 2000ms, &closed);
  EXPECT_TRUE(closed) << "a connection past router.max_connections must be closed at once";
  ::close(late);
  auto reg = curl_from_elsewhere(p_->url() + "/v2/");
  EXPECT_EQ(reg.out.substr(0, 3), "401") << reg.all();
}

TEST_F(ListenerLimits, SlowHeadsAndIdleKeepAlivesAreClosed) {
  start(
      "http:\n  header_timeout: 2s\n  keepalive_timeout: 1s\n"
      "router:\n  header_timeout: 2s\n  keepalive_timeout: 1s\n");
  for (uint16_t port : {api_port_, router_port_}) {
    SCOPED_TRACE(port == api_port_ ? "api" : "router");
    // Slowloris: a byte of head every 300 ms never completes it; closed after header_timeout.
    int slow = connect_from("127.0.0.1", port);
    ASSERT_GE(slow, 0);
    auto t0 = Clock::now();
    std::string head = "GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Slow: ";
    bool closed = false;
    for (size_t i = 0; i < 40 && !closed; ++i) {
      send_all(slow, head.substr(i % head.size(), 1));
      read_until_closed(slow, 300ms, &closed);
    }
    auto took = Clock::now() - t0;
    EXPECT_TRUE(closed) << "a trickled head must be dropped";
    EXPECT_GE(took, 1800ms);
    EXPECT_LT(took, 10s);
    ::close(slow);

    // Keep-alive: a finished request, then silence: closed after keepalive_timeout.
    int idle = connect_from("127.0.0.1", port);
    ASSERT_GE(idle, 0);
    send_all(idle, "GET /healthz HTTP/1.1\r\nHost: a.localhost\r\n\r\n");
    t0 = Clock::now();
    auto got = read_until_closed(idle, 8000ms, &closed);
    EXPECT_EQ(got.rfind("HTTP/1.1 ", 0), 0u) << got;
    EXPECT_TRUE(closed);
    EXPECT_LT(Clock::now() - t0, 5s);
    ::close(idle);
  }
}

TEST_F(ListenerLimits, AStalledRequestBodyTimesOutAndFreesItsUpload) {
  start("http:\n  body_timeout: 2s\nregistry:\n  auto_create_repositories: true\n");
  auto auth = "Authorization: " + p_->admin().basic_header() + "\r\n";
  // Start an upload, then PATCH it with a chunked body that sends 1 KB and then nothing.
  std::string location = start_upload("web/stall");
  ASSERT_FALSE(location.empty());
  int fd = connect_from("127.0.0.1", api_port_);
  ASSERT_GE(fd, 0);
  send_all(fd, "PATCH " + location + " HTTP/1.1\r\nHost: a\r\n" + auth +
                   "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   "400\r\n" + std::string(1024, 'x') + "\r\n");
  bool closed = false;
  auto t0 = Clock::now();
  read_until_closed(fd, 10000ms, &closed);
  EXPECT_TRUE(closed) << "a stalled body must be dropped after http.body_timeout";
  EXPECT_LT(Clock::now() - t0, 8s);
  ::close(fd);
  // The upload is not left "busy with another request": it can be continued or cancelled.
  auto del = run("curl -s -o /dev/null -w '%{http_code}' -X DELETE " + p_->curl_auth() + p_->url() +
                 location);
  EXPECT_EQ(del.out, "204") << del.all();

  // A manifest PUT that promises 1000 bytes and sends 1.
  fd = connect_from("127.0.0.1", api_port_);
  send_all(fd, "PUT /v2/web/stall/manifests/v1 HTTP/1.1\r\nHost: a\r\n" + auth +
                   "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                   "Content-Length: 1000\r\n\r\n{");
  t0 = Clock::now();
  read_until_closed(fd, 10000ms, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - t0, 8s);
  ::close(fd);
}

// Clients such as docker keep their connections open between requests. berthd stopping must
// close those at once (requests in flight get the grace period); it used to wait the whole
// grace period for them and then hang for good, destroying their sessions.
TEST_F(ListenerLimits, StoppingClosesIdleKeepAliveConnectionsAndExits) {
  start("");
  int kept = connect_from("127.0.0.1", api_port_);
  ASSERT_GE(kept, 0);
  send_all(kept, "GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n");
  char buf[512];
  ASSERT_GT(::recv(kept, buf, sizeof buf, 0), 0);     // answered, and the connection stays open
  int silent = connect_from("127.0.0.1", api_port_);  // connected, never sends a byte
  ASSERT_GE(silent, 0);
  std::this_thread::sleep_for(200ms);
  auto t0 = Clock::now();
  int status = p_->terminate();  // (before the fix this never returned)
  auto took = Clock::now() - t0;
  EXPECT_EQ(status, 0);
  EXPECT_LT(took, 8s) << "the grace period is 10 s: idle connections must not hold it";
  bool closed = false;
  read_until_closed(kept, 1000ms, &closed);
  EXPECT_TRUE(closed);
  ::close(kept);
  ::close(silent);
}

// A body with a Content-Length is read from the socket straight into the handler's buffer;
// where it ends is where the next request on the connection starts, whether the handler read
// the body (the PATCH) or not (the GET, whose body berthd discards).
TEST_F(ListenerLimits, ContentLengthBodiesEndWhereTheNextRequestStarts) {
  start("registry:\n  auto_create_repositories: true\n");
  auto auth = "Authorization: " + p_->admin().basic_header() + "\r\n";
  std::string location = start_upload("web/framing");
  ASSERT_FALSE(location.empty());
  std::string digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
  int fd = connect_from("127.0.0.1", api_port_);
  ASSERT_GE(fd, 0);
  // Three requests in one write, so the first body arrives together with what follows it.
  send_all(fd, "PATCH " + location + " HTTP/1.1\r\nHost: a\r\n" + auth +
                   "Content-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello" +
                   "GET /v2/ HTTP/1.1\r\nHost: a\r\n" + auth + "Content-Length: 4\r\n\r\nabcd" +
                   "PUT " + location + (location.find('?') == std::string::npos ? "?" : "&") +
                   "digest=" + digest + " HTTP/1.1\r\nHost: a\r\n" + auth +
                   "Content-Length: 0\r\nConnection: close\r\n\r\n");
  bool closed = false;
  auto got = read_until_closed(fd, 10000ms, &closed);
  ::close(fd);
  EXPECT_TRUE(closed) << got;
  ASSERT_EQ(count_lines(got, "HTTP/1.1 "), 3u) << got;
  size_t a = got.find("HTTP/1.1 202"), b = got.find("HTTP/1.1 200"), c = got.find("HTTP/1.1 201");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  ASSERT_NE(c, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  auto blob = run("curl -s " + p_->curl_auth() + p_->url() + "/v2/web/framing/blobs/" + digest);
  EXPECT_EQ(blob.out, "hello") << blob.all();
}

// RFC 9112 §6.1: an unknown transfer coding is 501, chunked not last is 400, obs-fold is 400;
// each closes the connection so that nothing after the head is read as a request.
TEST_F(ListenerLimits, AmbiguousFramingIsRefusedAndTheConnectionClosed) {
  start("");
  struct Case {
    std::string fields;
    std::string status;
  } cases[] = {
      {"Transfer-Encoding: xchunked\r\n", "501"},
      {"Transfer-Encoding: gzip, chunked\r\n", "501"},
      {"Transfer-Encoding: chunked, identity\r\n", "400"},
      {"X-Folded: a\r\n b\r\n", "400"},
  };
  for (uint16_t port : {api_port_, router_port_}) {
    for (auto& c : cases) {
      SCOPED_TRACE((port == api_port_ ? "api: " : "router: ") + c.fields);
      int fd = connect_from("127.0.0.1", port);
      ASSERT_GE(fd, 0);
      // What follows the head would be a second request if the body were taken as absent.
      send_all(fd, "POST /v2/ HTTP/1.1\r\nHost: web.localhost\r\n" + c.fields +
                       "\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: web.localhost\r\n\r\n");
      bool closed = false;
      auto got = read_until_closed(fd, 5000ms, &closed);
      EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 " + c.status) << got;
      EXPECT_EQ(count_lines(got, "HTTP/1.1 "), 1u) << "a smuggled request was answered: " << got;
      EXPECT_TRUE(closed);
      ::close(fd);
    }
  }
}

// A client that tries TLS first (skopeo, Go's registry clients) must get an answer at once so
// that it falls back to plain HTTP, not wait for a head that never comes (10 s per push).
TEST_F(ListenerLimits, BytesNoHeadContainsAreRefusedAtOnce) {
  start("");
  for (uint16_t port : {api_port_, router_port_}) {
    SCOPED_TRACE(port == api_port_ ? "api" : "router");
    int fd = connect_from("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    send_all(fd, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    bool closed = false;
    auto t0 = Clock::now();
    auto got = read_until_closed(fd, 5000ms, &closed);
    EXPECT_TRUE(closed);  // not our 5 s read timeout, nor the header timeout
    EXPECT_LT(Clock::now() - t0, 3s);
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got;
    ::close(fd);
  }
}

}  // namespace
}  // namespace berth::test
