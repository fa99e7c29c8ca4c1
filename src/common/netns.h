// SPDX-License-Identifier: Apache-2.0
// Network namespaces of instances. Every instance has its own namespace with only loopback, so
// the router and the health checker reach it through a socket created inside that namespace:
// a socket keeps the namespace it was created in, so it is created on a thread that has
// setns()-ed in for a moment, and then used from anywhere (connect to 127.0.0.1:PORT).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace berth {

class NetNs {
 public:
  /// The namespace of a running process (/proc/PID/ns/net). The handle keeps the namespace
  /// alive after the process exits (connections then fail with ECONNREFUSED).
  static Result<std::shared_ptr<NetNs>> of_pid(int pid);
  /// Adopts an open namespace fd.
  explicit NetNs(int fd) : fd_(fd) {}
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  int fd() const { return fd_; }
  /// A new non-blocking, close-on-exec TCP socket (AF_INET) inside this namespace. Cheap (two
  /// setns calls on the calling thread, which is back in its own namespace before returning);
  /// fine on an I/O thread. The caller owns the fd.
  Result<int> tcp_socket() const;

 private:
  int fd_ = -1;
};

}  // namespace berth
