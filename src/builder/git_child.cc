// SPDX-License-Identifier: Apache-2.0
// Child processes for git and git-http-backend: spawned in their own process group, pumped
// through pipes within a deadline, reaped with their helpers. See git_internal.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "builder/git_internal.h"
#include "common/url.h"

extern char** environ;

namespace berth::builder::detail {

// ---------------------------------------------------------------------------------------------
// Child processes

Status make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    std::string m = "pipe2: ";
    m += std::strerror(errno);
    return make_error(Errc::Internal, std::move(m));
  }
  read_end = Fd(p[0]);
  write_end = Fd(p[1]);
  return ok();
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// What a child gets to see of our environment, plus its own entries.
std::vector<std::string> child_env(const std::vector<std::string>& extra) {
  static constexpr const char* kPass[] = {
      "PATH",       "HOME",        "TMPDIR",   "SSL_CERT_FILE", "SSL_CERT_DIR",
      "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",    "HTTPS_PROXY",
      "NO_PROXY",   "all_proxy",   "ALL_PROXY"};
  std::vector<std::string> env;
  for (const char* name : kPass) {
    if (const char* v = std::getenv(name)) {
      std::string e = name;
      e += '=';
      e += v;
      env.push_back(std::move(e));
    }
  }
  if (std::getenv("PATH") == nullptr) {
    env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  }
  env.emplace_back("LC_ALL=C");
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

namespace {

/// Blocks SIGPIPE on this thread while writing to a pipe, and swallows one that a write to a
/// closed pipe raised, so an early-exiting child cannot kill the daemon.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &set_, &old_) == 0 && sigismember(&old_, SIGPIPE) != 1;
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      timespec zero{0, 0};
      while (sigtimedwait(&set_, nullptr, &zero) > 0) {
      }
    }
    if (blocked_) {
      pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t set_;
  sigset_t old_;
  bool blocked_ = false;
  bool was_pending_ = false;
};

// berthd is a child subreaper (src/runtime): whatever a git child leaves behind in its process
// group (an upload-pack that outlives a failed fetch, the helpers of a killed one) is
// re-parented to us and would stay a zombie. The group was SIGKILLed while its leader still
// held the group id; reap what is ours of it now (a straggler still being re-parented gets a
// few milliseconds).
void reap_group(pid_t pgid) {
  for (int idle = 0; idle < 20;) {
    siginfo_t info{};
    if (::waitid(P_PGID, static_cast<id_t>(pgid), &info, WEXITED | WNOHANG) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // ECHILD: no child of ours is left in the group
    }
    if (info.si_pid == 0) {
      ++idle;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

void kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  reap_group(pid);
}

Result<pid_t> spawn_child(const RunSpec& spec, int in_fd, int out_fd, int err_fd) {
  std::vector<char*> argv;
  for (const auto& a : spec.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  // Its own process group, so a timeout kills git's helpers (remote-https, ssh) too.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  // argv[0] is a path or a name looked up on our PATH; every fd we own is close-on-exec.
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::string m = "start ";
    m += spec.argv[0];
    m += ": ";
    m += std::strerror(rc);
    return make_error(Errc::Internal, std::move(m));
  }
  return pid;
}

}  // namespace

/// Runs a child to completion, pumping stdin from spec.input and stdout/stderr to the
/// callbacks, all within spec.deadline.
Result<RunResult> run_child(const RunSpec& spec) {
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  BERTH_TRY(make_pipe(in_r, in_w));
  BERTH_TRY(make_pipe(out_r, out_w));
  BERTH_TRY(make_pipe(err_r, err_w));
  BERTH_ASSIGN_OR_RETURN(pid_t pid, spawn_child(spec, in_r.get(), out_w.get(), err_w.get()));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (!spec.input) {
    in_w.reset();
  } else {
    set_nonblocking(in_w.get());
  }
  ScopedSigpipeBlock no_sigpipe;

  std::string pending;  // input read from the callback, not yet written
  size_t pending_off = 0;
  bool input_done = !spec.input;
  std::vector<char> buf(kChunk);
  auto fail = [&](Error e) -> Result<RunResult> {
    kill_and_reap(pid);
    return e;
  };

  while (out_r.valid() || err_r.valid()) {
    auto now = Clock::now();
    if (now >= spec.deadline) {
      return fail(make_error(Errc::DeadlineExceeded, spec.argv[0] + std::string(" timed out")));
    }
    // Refill from the caller before polling, so poll only waits on the child.
    if (in_w.valid() && !input_done && pending_off == pending.size()) {
      pending.resize(kChunk);
      auto n = spec.input(pending.data(), pending.size());
      if (!n) {
        return fail(std::move(n).error().with_context("read request body"));
      }
      pending.resize(*n);
      pending_off = 0;
      if (*n == 0) {
        input_done = true;
        in_w.reset();
      }
    }
    pollfd fds[3];
    int nfds = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (in_w.valid()) {
      in_idx = nfds;
      fds[nfds++] = pollfd{in_w.get(), POLLOUT, 0};
    }
    if (out_r.valid()) {
      out_idx = nfds;
      fds[nfds++] = pollfd{out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_idx = nfds;
      fds[nfds++] = pollfd{err_r.get(), POLLIN, 0};
    }
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(spec.deadline - now).count() + 1;
    int rc = ::poll(fds, nfds, static_cast<int>(std::min<int64_t>(left, 60000)));
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(make_error(Errc::Internal, std::string("poll: ") + std::strerror(errno)));
    }
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      if ((fds[in_idx].revents & (POLLERR | POLLHUP)) != 0) {
        in_w.reset();  // the child closed its stdin: it has read all it wants
      } else {
        ssize_t w = ::write(in_w.get(), pending.data() + pending_off, pending.size() - pending_off);
        if (w > 0) {
          pending_off += static_cast<size_t>(w);
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          in_w.reset();  // EPIPE: same as above
        }
      }
    }
    auto pump = [&](int idx, Fd& fd, bool is_out) -> Status {
      if (idx < 0 || fds[idx].revents == 0) {
        return ok();
      }
      ssize_t r = ::read(fd.get(), buf.data(), buf.size());
      if (r > 0) {
        std::string_view chunk(buf.data(), static_cast<size_t>(r));
        if (is_out) {
          if (spec.on_stdout) {
            return spec.on_stdout(chunk);
          }
        } else if (spec.on_stderr) {
          spec.on_stderr(chunk);
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
      return ok();
    };
    if (auto s = pump(out_idx, out_r, true); !s) {
      return fail(std::move(s).error());
    }
    if (auto s = pump(err_idx, err_r, false); !s) {
      return fail(std::move(s).error());
    }
  }
  in_w.reset();
  // The pipes are closed; the child is exiting (or has detached them, which git never does).
  // Wait for the exit without reaping (WNOWAIT): the zombie keeps the group id reserved while
  // what is left of the group is killed and reaped.
  siginfo_t info{};
  while (true) {
    info = siginfo_t{};
    int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid) {
      break;
    }
    if (r < 0 && errno != EINTR) {
      return make_error(Errc::Internal, std::string("waitid: ") + std::strerror(errno));
    }
    if (Clock::now() >= spec.deadline) {
      return fail(make_error(Errc::DeadlineExceeded, spec.argv[0] + std::string(" timed out")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(-pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  reap_group(pid);
  RunResult res;
  if (WIFEXITED(st)) {
    res.exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    res.signal = WTERMSIG(st);
  }
  return res;
}

}  // namespace berth::builder::detail
