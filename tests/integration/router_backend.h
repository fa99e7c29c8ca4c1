// SPDX-License-Identifier: Apache-2.0
// A blocking test backend for the router's integration tests (one thread per connection, so
// tests can see connections, headers and bodies), shared by router_test.cc and
// router_tls_test.cc.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "router/router.h"
#include "support/harness.h"

namespace berth::test::router_backend {

using namespace std::chrono_literals;

struct SeenRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // first 1 MiB
  uint64_t body_bytes = 0;
  bool body_all_zero = true;
  bool chunked = false;
};

inline bool read_some(int fd, std::string& buf) {
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) {
    return false;
  }
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

inline void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

inline std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

inline void take_body(SeenRequest& r, const char* p, size_t n) {
  for (size_t i = 0; i < n && r.body_all_zero; ++i) {
    if (p[i] != 0) {
      r.body_all_zero = false;
    }
  }
  if (r.body.size() < (1u << 20)) {
    r.body.append(p, std::min(n, (1u << 20) - r.body.size()));
  }
  r.body_bytes += n;
}

// Reads one request (head and body) from fd; buf keeps bytes beyond it.
inline bool read_request(int fd, std::string& buf, SeenRequest& r) {
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!read_some(fd, buf)) {
      return false;
    }
  }
  std::istringstream head(buf.substr(0, end));
  buf.erase(0, end + 4);
  std::string line;
  std::getline(head, line);
  std::istringstream rl(line);
  rl >> r.method >> r.target;
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') {
      v.erase(0, 1);
    }
    auto name = lower(line.substr(0, colon));
    if (r.headers.count(name)) {
      r.headers[name] += ", " + v;
    } else {
      r.headers[name] = v;
    }
  }
  if (r.headers.count("expect")) {
    write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (r.headers.count("content-length")) {
    uint64_t left = std::stoull(r.headers["content-length"]);
    while (left > 0) {
      if (buf.empty() && !read_some(fd, buf)) {
        return false;
      }
      size_t n = std::min<uint64_t>(left, buf.size());
      take_body(r, buf.data(), n);
      buf.erase(0, n);
      left -= n;
    }
  } else if (lower(r.headers["transfer-encoding"]) == "chunked") {
    r.chunked = true;
    while (true) {
      size_t eol;
      while ((eol = buf.find("\r\n")) == std::string::npos) {
        if (!read_some(fd, buf)) {
          return false;
        }
      }
      uint64_t size = std::stoull(buf.substr(0, eol), nullptr, 16);
      buf.erase(0, eol + 2);
      while (buf.size() < size + 2) {
        if (!read_some(fd, buf)) {
          return false;
        }
      }
      if (size == 0) {
        buf.erase(0, 2);  // no trailers from our proxy
        break;
      }
      take_body(r, buf.data(), size);
      buf.erase(0, size + 2);
    }
  }
  return true;
}

class Backend {
 public:
  // Writes the whole response for one request to fd. Return false to close the connection.
  using Handler = std::function<bool(const SeenRequest&, int fd)>;

  explicit Backend(Handler h) : handler_(std::move(h)) {
    lfd_ = test::listen_loopback(port_, 128);
    EXPECT_GE(lfd_, 0) << std::strerror(errno);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Backend() {
    stopping_ = true;
    ::shutdown(lfd_, SHUT_RDWR);
    ::close(lfd_);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) {
        ::shutdown(fd, SHUT_RDWR);
      }
    }
    for (auto& t : workers_) {
      t.join();
    }
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  std::vector<SeenRequest> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) {
          return;
        }
        continue;
      }
      connections_++;
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string buf;
    while (true) {
      SeenRequest r;
      if (!read_request(fd, buf, r)) {
        break;
      }
      requests_++;
      {
        std::lock_guard lock(mu_);
        seen_.push_back(r);
      }
      if (!handler_(r, fd)) {
        break;
      }
    }
    ::shutdown(fd, SHUT_RDWR);
  }

  Handler handler_;
  int lfd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
  std::vector<SeenRequest> seen_;
};

inline std::string response(const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Answers "NAME bytes=N zero=0|1 chunked=0|1" for every request.
inline Backend::Handler echo_name(std::string name) {
  return [name](const SeenRequest& r, int fd) {
    write_all(fd, response(name + " bytes=" + std::to_string(r.body_bytes) +
                           " zero=" + (r.body_all_zero ? "1" : "0") +
                           " chunked=" + (r.chunked ? "1" : "0") + "\n"));
    return true;
  };
}

// The router counts a request in flight until its coroutine resumes after the last write, which
// can be a moment after the client has read the whole reply (seen under ASan on a loaded VM).
inline int64_t settled_in_flight(const router::Upstream& u) {
  eventually([&] { return u.in_flight.load() == 0; }, 10s, 10ms);
  return u.in_flight.load();
}
}  // namespace berth::test::router_backend
