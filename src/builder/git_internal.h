// SPDX-License-Identifier: Apache-2.0
// Private to the builder module: what git.cc, git_child.cc and git_http_backend.cc share —
// running a child process (git, git-http-backend) with pipes and a deadline. Blocking.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::builder::detail {

using Clock = std::chrono::steady_clock;

/// How much of a child's output is read at a time; also the longest line a log keeps whole.
inline constexpr size_t kChunk = 64 * 1024;

/// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

Status make_pipe(Fd& read_end, Fd& write_end);
void set_nonblocking(int fd);
/// What a child gets to see of our environment, plus its own entries.
std::vector<std::string> child_env(const std::vector<std::string>& extra);

struct RunSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // complete environment
  Clock::time_point deadline;
  std::function<Result<size_t>(char*, size_t)> input;  // unset: empty stdin
  std::function<Status(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;
};

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
};
/// Runs a child to completion, pumping stdin from spec.input and stdout/stderr to the
/// callbacks, all within spec.deadline.
Result<RunResult> run_child(const RunSpec& spec);

/// The path of git's http-backend program (`git --exec-path`), looked up once (git.cc).
Result<std::string> http_backend_path();
/// s without its trailing newlines and spaces (git.cc).
std::string trim_line(std::string s);

}  // namespace berth::builder::detail
