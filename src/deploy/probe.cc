// SPDX-License-Identifier: Apache-2.0
// The health probe: a TCP connect, or an HTTP GET, inside an instance's network namespace.
#include "deploy/worker.h"

namespace berth::deploy {

// One health probe, blocking for at most h.timeout: TCP connect, or an HTTP GET whose status
// must be 2xx. why says what failed.
bool probe(const NetNs& ns, uint16_t port, const HealthCheck& h, std::string* why) {
  auto fd = ns.tcp_socket();
  if (!fd) {
    *why = fd.error().message();
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  auto deadline = Clock::now() + h.timeout;
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::max<int64_t>(left, 0));
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string target = h.type + " :" + std::to_string(port);
  if (::connect(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      *why = target + ": " + std::strerror(errno);
      return false;
    }
    pollfd p{*fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": connect timed out after " + seconds_text(h.timeout);
      return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      *why = target + ": " + std::strerror(err);
      return false;
    }
  }
  if (h.type != "http") {
    return true;
  }
  target = "http GET " + h.path + " on :" + std::to_string(port);
  std::string req = "GET " + h.path +
                    " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: berth-health\r\n"
                    "Connection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    pollfd p{*fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": timed out";
      return false;
    }
    ssize_t n = ::send(*fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      *why = target + ": " + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    pollfd p{*fd, POLLIN, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": no response within " + seconds_text(h.timeout);
      return false;
    }
    char buf[1024];
    ssize_t n = ::recv(*fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *why = target + ": connection closed before a response";
      return false;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  auto sp = head.find(' ');
  int status = sp == std::string::npos ? 0 : std::atoi(head.c_str() + sp + 1);
  if (status < 200 || status > 299) {
    *why = target + ": status " + std::to_string(status);
    return false;
  }
  return true;
}

}  // namespace berth::deploy
