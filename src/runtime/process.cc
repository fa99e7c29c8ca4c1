// SPDX-License-Identifier: Apache-2.0
// Subprocesses (posix_spawn, close-on-exec pipes), pidfds and small text helpers.
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "runtime/internal.h"

extern char** environ;

namespace berth::runtime::detail {

void Fd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

bool ProcResult::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string ProcResult::describe() const {
  if (WIFEXITED(status)) {
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) {
      s += ' ';
    }
    s += a;
  }
  return s;
}

Result<pid_t> spawn(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  if (argv.empty()) {
    return Error(Errc::InvalidArgument, "spawn: empty command");
  }
  Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) {
    return Error(Errc::Internal, std::string("open /dev/null: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd >= 0 ? out_fd : devnull.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd >= 0 ? err_fd : devnull.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal dispositions and an empty mask whatever ours are.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Error(Errc::FailedPrecondition,
                 "cannot run " + argv[0] + ": " + std::string(std::strerror(rc)));
  }
  return pid;
}

namespace {

Result<std::pair<Fd, Fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return Error(Errc::Internal, std::string("pipe2: ") + std::strerror(errno));
  }
  return std::make_pair(Fd(p[0]), Fd(p[1]));
}

}  // namespace

Result<OutputPipes> make_output_pipes() {
  BERTH_ASSIGN_OR_RETURN(auto out, make_pipe());
  BERTH_ASSIGN_OR_RETURN(auto err, make_pipe());
  return OutputPipes{std::move(out.first), std::move(out.second), std::move(err.first),
                     std::move(err.second)};
}

Result<ProcResult> run_process(const std::vector<std::string>& argv) {
  BERTH_ASSIGN_OR_RETURN(auto pipes, make_output_pipes());
  auto& [out_r, out_w, err_r, err_w] = pipes;
  BERTH_ASSIGN_OR_RETURN(pid_t pid, spawn(argv, out_w.get(), err_w.get()));
  out_w.reset();
  err_w.reset();
  ProcResult r;
  constexpr size_t kCap = 1 << 20;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  int open_count = 2;
  char buf[8192];
  while (open_count > 0) {
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        if (bufs[i]->size() < kCap) {
          bufs[i]->append(buf, std::min(static_cast<size_t>(got), kCap - bufs[i]->size()));
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.status = st;
  return r;
}

int open_beneath(int dirfd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

bool wait_pidfd(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return n > 0;
  }
}

void LineSplitter::feed(std::string_view data, const Emit& emit) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      buf_.append(data);
      data = {};
    } else {
      buf_.append(data.substr(0, nl));
      data.remove_prefix(nl + 1);
      if (!buf_.empty() && buf_.back() == '\r') {
        buf_.pop_back();
      }
      emit(buf_);
      buf_.clear();
    }
    while (buf_.size() >= kMaxLine) {
      emit(std::string_view(buf_).substr(0, kMaxLine));
      buf_.erase(0, kMaxLine);
    }
  }
}

void LineSplitter::finish(const Emit& emit) {
  if (!buf_.empty()) {
    emit(buf_);
    buf_.clear();
  }
}

std::vector<std::string> split_entry_path(std::string_view path, std::string* why) {
  std::vector<std::string> parts;
  why->clear();
  if (!path.empty() && path.front() == '/') {
    *why = "absolute path";
    return {};
  }
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) {
      j = path.size();
    }
    std::string_view c = path.substr(i, j - i);
    if (c == "..") {
      *why = "path contains '..'";
      return {};
    }
    if (!c.empty() && c != ".") {
      parts.emplace_back(c);
    }
    i = j + 1;
  }
  return parts;
}

std::string join_entry_path(const std::vector<std::string>& parts, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) {
      s += '/';
    }
    s += parts[i];
  }
  return s;
}

}  // namespace berth::runtime::detail
