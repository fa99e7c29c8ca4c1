// SPDX-License-Identifier: Apache-2.0
#include "common/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace berth {

namespace {

// This thread's own namespace, opened once per thread so we can return to it.
int home_netns() {
  thread_local int fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return fd;
}

}  // namespace

Result<std::shared_ptr<NetNs>> NetNs::of_pid(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::NotFound, "cannot open " + path + ": " + std::strerror(errno));
  }
  return std::make_shared<NetNs>(fd);
}

NetNs::~NetNs() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Result<int> NetNs::tcp_socket() const {
  int home = home_netns();
  if (home < 0) {
    return Error(Errc::Internal,
                 std::string("cannot open own network namespace: ") + std::strerror(errno));
  }
  if (::setns(fd_, CLONE_NEWNET) != 0) {
    return Error(Errc::Unavailable,
                 std::string("cannot enter instance network namespace: ") + std::strerror(errno));
  }
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int saved = errno;
  if (::setns(home, CLONE_NEWNET) != 0) {
    // A thread stuck in an instance's namespace would misroute every later connection.
    log::get("netns")->critical("cannot return to own network namespace: {}", std::strerror(errno));
    std::abort();
  }
  if (s < 0) {
    return Error(Errc::Internal, std::string("socket: ") + std::strerror(saved));
  }
  return s;
}

}  // namespace berth
