// SPDX-License-Identifier: Apache-2.0
#include "builder/git.h"

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

#include "common/url.h"

extern char** environ;

namespace berth::builder {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxCgiHead = 16 * 1024;
constexpr size_t kMaxStderr = 8 * 1024;
constexpr size_t kTailLines = 20;
constexpr const char* kMask = "****";

// ---------------------------------------------------------------------------------------------
// Child processes

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

// ---------------------------------------------------------------------------------------------
// Logging with masking

/// Splits child output into lines, masks them and passes them on; keeps the last lines for
/// error messages.
class MaskedLines {
 public:
  MaskedLines(const GitLogFn& log, const std::vector<std::string>& secrets)
      : log_(log), secrets_(secrets) {}

  void feed(std::string_view data) {
    for (char c : data) {
      if (c == '\n' || c == '\r') {
        emit();
      } else {
        buf_ += c;
        if (buf_.size() >= kChunk) {
          emit();
        }
      }
    }
  }
  void line(std::string_view text) {
    buf_ = std::string(text);
    emit();
  }
  void flush() { emit(); }
  /// The last lines, joined with "; ".
  std::string tail() const {
    std::string out;
    for (const auto& l : tail_) {
      if (!out.empty()) {
        out += "; ";
      }
      out += l;
    }
    return out;
  }
  std::string all_text() const {
    std::string out;
    for (const auto& l : tail_) {
      out += l;
      out += '\n';
    }
    return out;
  }
  void clear_tail() { tail_.clear(); }

 private:
  void emit() {
    if (buf_.empty()) {
      return;
    }
    std::string masked = mask_secrets(buf_, secrets_);
    buf_.clear();
    if (log_) {
      log_(masked);
    }
    tail_.push_back(std::move(masked));
    if (tail_.size() > kTailLines) {
      tail_.pop_front();
    }
  }

  const GitLogFn& log_;
  const std::vector<std::string>& secrets_;
  std::string buf_;
  std::deque<std::string> tail_;
};

// ---------------------------------------------------------------------------------------------
// git invocations

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

/// scheme://[userinfo@]host[:port] of an http(s) URL, userinfo removed, plus "/".
std::string http_origin(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return {};
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string_view authority = url.substr(
      host_start, path_start == std::string_view::npos ? url.npos : path_start - host_start);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string out(url.substr(0, host_start));
  out += authority;
  out += '/';
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

/// The environment for git talking to a remote: no system or user config, no prompts, only
/// the transports berth supports, and the credentials as config entries that only this
/// child sees.
std::vector<std::string> git_env(const std::string& url, const GitAuth& auth) {
  std::vector<std::pair<std::string, std::string>> config;
  config.emplace_back("credential.helper", "");
  // Automatic gc and maintenance run in the foreground (inside our timeout), never as a
  // detached process that the group clean-up would kill.
  config.emplace_back("gc.autoDetach", "false");
  config.emplace_back("maintenance.autoDetach", "false");
  if (!auth.password.empty() || !auth.username.empty()) {
    if (starts_with(url, "http://") || starts_with(url, "https://")) {
      std::string header = "Authorization: Basic ";
      header += b64::encode(auth.username + ":" + auth.password);
      // Scoped to the remote's origin: git sends it to no other host.
      std::string key = "http.";
      key += http_origin(url);
      key += ".extraHeader";
      config.emplace_back(std::move(key), std::move(header));
    }
  }
  std::vector<std::string> extra = {
      "GIT_TERMINAL_PROMPT=0",       "GIT_CONFIG_NOSYSTEM=1",
      "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ALLOW_PROTOCOL=http:https:ssh:file",
      "GIT_ASKPASS=/bin/false",      "SSH_ASKPASS=/bin/false",
  };
  std::string ssh = "ssh -o BatchMode=yes";
  if (!auth.ssh_key_file.empty()) {
    ssh += " -o IdentitiesOnly=yes -i ";
    ssh += shell_quote(auth.ssh_key_file);
  }
  if (!auth.known_hosts_file.empty()) {
    ssh += " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=";
    ssh += shell_quote(auth.known_hosts_file);
  }
  extra.push_back("GIT_SSH_COMMAND=" + ssh);
  extra.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (size_t i = 0; i < config.size(); ++i) {
    extra.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    extra.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  return child_env(extra);
}

struct GitRun {
  int exit_code = -1;
  std::string out;  // stdout (when captured)
  std::string log_tail;
};

/// Runs git with args; stderr (and stdout unless capture_stdout) go to lines.
Result<GitRun> run_git(const std::vector<std::string>& args, const std::vector<std::string>& env,
                       Clock::time_point deadline, MaskedLines& lines, bool capture_stdout) {
  RunSpec spec;
  spec.argv.emplace_back("git");
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env;
  spec.deadline = deadline;
  GitRun run;
  spec.on_stdout = [&](std::string_view chunk) -> Status {
    if (capture_stdout) {
      run.out += chunk;
    } else {
      lines.feed(chunk);
    }
    return ok();
  };
  spec.on_stderr = [&](std::string_view chunk) { lines.feed(chunk); };
  lines.clear_tail();
  auto r = run_child(spec);
  lines.flush();
  if (!r) {
    return std::move(r).error();
  }
  if (r->signal != 0) {
    // Killed from outside (a stopped build): no fallback fetch or next step may follow.
    return make_error(Errc::Cancelled, "git " + (args.empty() ? std::string() : args.back()) +
                                           " was killed by signal " + std::to_string(r->signal));
  }
  run.exit_code = r->exit_code;
  run.log_tail = lines.tail();
  return run;
}

/// Errc for a failed git talking to a remote, from what it said.
Errc classify(const std::string& text) {
  static constexpr const char* kAuth[] = {"Authentication failed",
                                          "could not read Username",
                                          "could not read Password",
                                          "terminal prompts disabled",
                                          "Permission denied",
                                          "401",
                                          "403"};
  static constexpr const char* kMissing[] = {"couldn't find remote ref",
                                             "not found",
                                             "does not appear to be a git repository",
                                             "not our ref",
                                             "unadvertised object",
                                             "no such ref"};
  for (const char* s : kAuth) {
    if (text.find(s) != std::string::npos) {
      return Errc::Unauthenticated;
    }
  }
  for (const char* s : kMissing) {
    if (text.find(s) != std::string::npos) {
      return Errc::NotFound;
    }
  }
  return Errc::Unavailable;
}

Error git_failed(const std::string& what, const GitRun& run) {
  std::string m = what;
  m += " failed (exit ";
  m += std::to_string(run.exit_code);
  m += ")";
  if (!run.log_tail.empty()) {
    m += ": ";
    m += run.log_tail;
  }
  return make_error(classify(run.log_tail), std::move(m));
}

/// True for ref names git would accept that cannot be taken for an option or a refspec.
bool is_safe_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 1024 || ref.front() == '-' || ref.front() == '/' ||
      ref.back() == '/' || ref.back() == '.' || ref.find("..") != ref.npos ||
      ref.find("@{") != ref.npos || ref.find("//") != ref.npos ||
      (ref.size() >= 5 && ref.substr(ref.size() - 5) == ".lock")) {
    return false;
  }
  for (char c : ref) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
        c == '*' || c == '[' || c == '\\') {
      return false;
    }
  }
  return true;
}

Status prepare_dest(const std::string& dest) {
  std::error_code ec;
  if (stdfs::exists(dest, ec)) {
    if (!stdfs::is_directory(dest, ec) || !stdfs::is_empty(dest, ec)) {
      return make_error(Errc::FailedPrecondition, dest + ": exists and is not an empty directory");
    }
    return ok();
  }
  stdfs::create_directories(dest, ec);
  if (ec) {
    return make_error(Errc::Internal, dest + ": " + ec.message());
  }
  return ok();
}

std::string trim_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

void log_command(MaskedLines& lines, const std::vector<std::string>& args) {
  std::string cmd = "$ git";
  for (const auto& a : args) {
    cmd += ' ';
    cmd += a;
  }
  lines.line(cmd);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public helpers

std::vector<std::string> GitAuth::secrets() const {
  std::vector<std::string> out;
  if (!password.empty()) {
    out.push_back(password);
    std::string pair = username;
    pair += ':';
    pair += password;
    out.push_back(b64::encode(pair));
    out.push_back(std::move(pair));
  }
  return out;
}

std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string> forms;
  for (const auto& s : secrets) {
    if (s.empty()) {
      continue;
    }
    forms.push_back(s);
    std::string enc;
    std::string enc_lower;
    static constexpr char kUpper[] = "0123456789ABCDEF";
    static constexpr char kLower[] = "0123456789abcdef";
    for (unsigned char c : s) {
      if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
        enc += static_cast<char>(c);
        enc_lower += static_cast<char>(c);
      } else {
        enc += '%';
        enc += kUpper[c >> 4];
        enc += kUpper[c & 0xf];
        enc_lower += '%';
        enc_lower += kLower[c >> 4];
        enc_lower += kLower[c & 0xf];
      }
    }
    forms.push_back(std::move(enc));
    forms.push_back(std::move(enc_lower));
    std::string b = b64::encode(s);
    // Inside a longer base64 text the padding of the secret's own encoding is absent.
    while (!b.empty() && b.back() == '=') {
      b.pop_back();
    }
    if (!b.empty()) {
      forms.push_back(std::move(b));
    }
  }
  std::sort(forms.begin(), forms.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
  std::string out(text);
  for (const auto& f : forms) {
    size_t pos = 0;
    while ((pos = out.find(f, pos)) != std::string::npos) {
      out.replace(pos, f.size(), kMask);
      pos += std::strlen(kMask);
    }
  }
  return out;
}

std::string url_password(std::string_view u) {
  size_t scheme_end = u.find("://");
  if (scheme_end == std::string_view::npos) {
    return {};
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = u.find('/', host_start);
  std::string_view authority =
      u.substr(host_start, path_start == u.npos ? u.npos : path_start - host_start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return {};
  }
  std::string_view userinfo = authority.substr(0, at);
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    return {};
  }
  std::string_view pw = userinfo.substr(colon + 1);
  auto decoded = url::decode(pw, false);
  return decoded ? *decoded : std::string(pw);
}

bool is_supported_remote(std::string_view u) {
  if (u.empty() || u.front() == '-' || u.size() > 4096) {
    return false;
  }
  for (char c : u) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return false;
    }
  }
  for (std::string_view scheme : {"http://", "https://", "ssh://", "file://"}) {
    if (starts_with(u, scheme)) {
      return u.size() > scheme.size();
    }
  }
  if (u.find("::") != u.npos || u.find("://") != u.npos) {
    return false;  // ext::, fd::, git://, and anything else with a scheme
  }
  // scp-like user@host:path (git reads "host:path" with a '/' before the ':' as a local path).
  size_t colon = u.find(':');
  size_t slash = u.find('/');
  size_t at = u.find('@');
  return at != u.npos && colon != u.npos && at < colon && (slash == u.npos || colon < slash) &&
         colon + 1 < u.size();
}

bool is_commit_id(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::string> fetch_commit(const std::string& url, const std::string& commit_or_ref,
                                 const std::string& dest_dir, const GitAuth& auth,
                                 const GitLogFn& log, const FetchOptions& options) {
  std::vector<std::string> secrets = auth.secrets();
  if (std::string pw = url_password(url); !pw.empty()) {
    secrets.push_back(pw);
  }
  const std::string shown_url = mask_secrets(url, secrets);
  if (!is_supported_remote(url)) {
    return make_error(Errc::InvalidArgument, "git remote " + shown_url +
                                                 ": only http(s)://, ssh://, user@host:path and "
                                                 "file:// remotes are supported");
  }
  const bool by_id = is_commit_id(commit_or_ref);
  if (!by_id && !is_safe_ref(commit_or_ref)) {
    return make_error(Errc::InvalidArgument,
                      "\"" + commit_or_ref + "\" is neither a full commit id nor a ref name");
  }
  if (!options.fallback_ref.empty() && !is_safe_ref(options.fallback_ref)) {
    return make_error(Errc::InvalidArgument, "\"" + options.fallback_ref + "\" is not a ref name");
  }
  BERTH_TRY(prepare_dest(dest_dir));

  const auto deadline = Clock::now() + options.timeout;
  const auto env = git_env(url, auth);
  MaskedLines lines(log, secrets);
  const std::string proto = "protocol.version=" + std::to_string(options.protocol_version);

  auto step = [&](const std::vector<std::string>& args, bool capture) -> Result<GitRun> {
    log_command(lines, args);
    return run_git(args, env, deadline, lines, capture);
  };

  // Where objects go: dest_dir's own .git, or the shared bare cache.
  const bool cached = !options.object_cache.empty();
  const std::string git_dir = cached ? options.object_cache : dest_dir + "/.git";
  std::vector<std::string> repo = {"--git-dir", git_dir};
  if (!cached || !stdfs::exists(git_dir + "/HEAD")) {
    std::vector<std::string> args = {"init", "-q", "--template="};
    if (cached) {
      args.emplace_back("--bare");
    }
    args.push_back(cached ? git_dir : dest_dir);
    BERTH_ASSIGN_OR_RETURN(auto r, step(args, false));
    if (r.exit_code != 0) {
      return git_failed("git init", r);
    }
  }
  auto fetch = [&](const std::vector<std::string>& extra, const std::string& spec) {
    std::vector<std::string> args = repo;
    args.insert(args.end(), {"-c", proto, "fetch", "--no-tags", "--no-recurse-submodules"});
    args.insert(args.end(), extra.begin(), extra.end());
    args.emplace_back("--");
    args.push_back(url);
    args.push_back(spec);
    // The logged command shows the URL masked; git itself gets the real one.
    std::vector<std::string> shown = args;
    shown[shown.size() - 2] = shown_url;
    lines.line([&] {
      std::string c = "$ git";
      for (const auto& a : shown) {
        c += ' ';
        c += a;
      }
      return c;
    }());
    return run_git(args, env, deadline, lines, false);
  };
  auto has_commit = [&](const std::string& id) -> Result<bool> {
    std::string obj = id;
    obj += "^{commit}";
    std::vector<std::string> args = repo;
    args.insert(args.end(), {"rev-parse", "-q", "--verify", obj});  // quiet when absent
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, true));
    return r.exit_code == 0;
  };

  std::string checkout = "FETCH_HEAD";
  bool have = false;
  if (cached && by_id) {
    BERTH_ASSIGN_OR_RETURN(have, has_commit(commit_or_ref));
    if (have) {
      lines.line("commit " + commit_or_ref + " is already fetched");
      checkout = commit_or_ref;
    }
  }
  if (!have) {
    BERTH_ASSIGN_OR_RETURN(auto first, fetch({"--depth", "1"}, commit_or_ref));
    if (first.exit_code != 0) {
      Errc code = classify(first.log_tail);
      if (!by_id || code == Errc::Unauthenticated) {
        return git_failed("git fetch " + shown_url + " " + commit_or_ref, first);
      }
      // The server would not send a commit by id: fetch branch history and look for it.
      std::string spec = "+refs/heads/*:refs/remotes/origin/*";
      if (!options.fallback_ref.empty()) {
        std::string ref = options.fallback_ref;
        if (!starts_with(ref, "refs/")) {
          ref = "refs/heads/" + ref;
        }
        spec = ref;
      }
      lines.line("server refused to send commit " + commit_or_ref + " by id; fetching " + spec);
      BERTH_ASSIGN_OR_RETURN(auto second, fetch({"--depth", "50"}, spec));
      if (second.exit_code != 0) {
        return git_failed("git fetch " + shown_url + " " + spec, second);
      }
      BERTH_ASSIGN_OR_RETURN(bool found, has_commit(commit_or_ref));
      if (!found && stdfs::exists(git_dir + "/shallow")) {
        BERTH_ASSIGN_OR_RETURN(auto third, fetch({"--unshallow"}, spec));
        if (third.exit_code != 0) {
          return git_failed("git fetch --unshallow " + shown_url + " " + spec, third);
        }
        BERTH_ASSIGN_OR_RETURN(found, has_commit(commit_or_ref));
      }
      if (!found) {
        return make_error(Errc::NotFound,
                          "commit " + commit_or_ref + " not found in " + spec + " of " + shown_url);
      }
      checkout = commit_or_ref;
    }
  }
  // The commit id first: FETCH_HEAD is per repository, and the cache's is rewritten by the
  // next fetch.
  std::vector<std::string> args = repo;
  std::string target = checkout + "^{commit}";
  args.insert(args.end(), {"rev-parse", "--verify", target});
  BERTH_ASSIGN_OR_RETURN(auto head, run_git(args, env, deadline, lines, true));
  std::string id = trim_line(head.out);
  if (head.exit_code != 0 || !is_commit_id(id)) {
    return git_failed("git rev-parse " + checkout, head);
  }
  if (by_id && id != commit_or_ref) {
    return make_error(Errc::Internal, "fetched " + id + " instead of " + commit_or_ref);
  }
  if (cached) {
    // Only the files: a private index beside dest_dir, so the cache itself never changes.
    std::string index = dest_dir + ".index";
    std::vector<std::string> co_env = env;
    co_env.push_back("GIT_INDEX_FILE=" + index);
    std::vector<std::string> co = {"--git-dir", git_dir, "--work-tree", dest_dir, "checkout", "-q",
                                   "-f",        id,      "--",          "."};
    log_command(lines, co);
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(co, co_env, deadline, lines, false));
    std::error_code ec;
    stdfs::remove(index, ec);
    if (r.exit_code != 0) {
      return git_failed("git checkout", r);
    }
  } else {
    std::vector<std::string> co = {"-C",       dest_dir, "-c",       "advice.detachedHead=false",
                                   "checkout", "-q",     "--detach", id};
    BERTH_ASSIGN_OR_RETURN(auto r, step(co, false));
    if (r.exit_code != 0) {
      return git_failed("git checkout", r);
    }
  }
  lines.line("checked out " + id);
  return id;
}

Result<std::string> resolve_ref(const std::string& url, const std::string& ref, const GitAuth& auth,
                                std::chrono::seconds timeout) {
  std::vector<std::string> secrets = auth.secrets();
  if (std::string pw = url_password(url); !pw.empty()) {
    secrets.push_back(pw);
  }
  const std::string shown_url = mask_secrets(url, secrets);
  if (!is_supported_remote(url)) {
    return make_error(Errc::InvalidArgument, "git remote " + shown_url + " is not supported");
  }
  if (ref != "HEAD" && !is_safe_ref(ref)) {
    return make_error(Errc::InvalidArgument, "\"" + ref + "\" is not a ref name");
  }
  std::vector<std::string> candidates;
  if (ref == "HEAD" || starts_with(ref, "refs/")) {
    candidates = {ref + "^{}", ref};
  } else {
    candidates = {"refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref};
  }
  std::vector<std::string> args = {"-c", "protocol.version=2", "ls-remote", "--", url};
  // ls-remote matches patterns against the whole tail, so the peeled "^{}" lines of
  // annotated tags need their own patterns.
  args.insert(args.end(), candidates.begin(), candidates.end());
  GitLogFn none;
  MaskedLines lines(none, secrets);
  BERTH_ASSIGN_OR_RETURN(auto r,
                         run_git(args, git_env(url, auth), Clock::now() + timeout, lines, true));
  if (r.exit_code != 0) {
    return git_failed("git ls-remote " + shown_url, r);
  }
  std::map<std::string, std::string> found;
  size_t pos = 0;
  while (pos < r.out.size()) {
    size_t end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? r.out.size() : end + 1;
    size_t tab = line.find('\t');
    if (tab != std::string::npos) {
      found[line.substr(tab + 1)] = line.substr(0, tab);
    }
  }
  for (const auto& c : candidates) {
    auto it = found.find(c);
    if (it != found.end() && is_commit_id(it->second)) {
      return it->second;
    }
  }
  return make_error(Errc::NotFound, "ref " + ref + " not found at " + shown_url);
}

Status init_bare_repo(const std::string& path) {
  std::error_code ec;
  stdfs::create_directories(stdfs::path(path).parent_path(), ec);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  const auto env = child_env({"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"});
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  if (!stdfs::exists(stdfs::path(path) / "HEAD", ec)) {
    std::vector<std::string> args = {"init", "-q", "--bare", "--template=", "--initial-branch=main",
                                     path};
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, false));
    if (r.exit_code != 0) {
      auto e = git_failed("git init --bare " + path, r);
      return make_error(Errc::Internal, e.message());
    }
  }
  std::vector<std::string> args = {"-C", path, "config", "http.receivepack", "true"};
  BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, false));
  if (r.exit_code != 0) {
    auto e = git_failed("git config http.receivepack in " + path, r);
    return make_error(Errc::Internal, e.message());
  }
  return ok();
}

Result<std::map<std::string, std::string>> list_refs(const std::string& repo_path) {
  std::error_code ec;
  if (!stdfs::is_directory(repo_path, ec)) {
    return make_error(Errc::NotFound, repo_path + ": no such repository");
  }
  const auto env =
      child_env({"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                 "GIT_CEILING_DIRECTORIES=" + stdfs::path(repo_path).parent_path().string()});
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  std::vector<std::string> args = {"-C", repo_path, "for-each-ref",
                                   "--format=%(objectname) %(refname)"};
  BERTH_ASSIGN_OR_RETURN(auto r,
                         run_git(args, env, Clock::now() + std::chrono::seconds(60), lines, true));
  if (r.exit_code != 0) {
    if (r.log_tail.find("not a git repository") != std::string::npos) {
      return make_error(Errc::NotFound, repo_path + ": not a git repository");
    }
    auto e = git_failed("git for-each-ref in " + repo_path, r);
    return make_error(Errc::Internal, e.message());
  }
  std::map<std::string, std::string> refs;
  size_t pos = 0;
  while (pos < r.out.size()) {
    size_t end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? r.out.size() : end + 1;
    size_t sp = line.find(' ');
    if (sp != std::string::npos) {
      refs[line.substr(sp + 1)] = line.substr(0, sp);
    }
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP

namespace {

Result<std::string> http_backend_path() {
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) {
    return cached;
  }
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  std::vector<std::string> args = {"--exec-path"};
  BERTH_ASSIGN_OR_RETURN(
      auto r, run_git(args, child_env({}), Clock::now() + std::chrono::seconds(30), lines, true));
  std::string dir = trim_line(r.out);
  if (r.exit_code != 0 || dir.empty()) {
    return make_error(Errc::Internal, "git --exec-path failed: " + r.log_tail);
  }
  std::string path = dir + "/git-http-backend";
  if (::access(path.c_str(), X_OK) != 0) {
    return make_error(Errc::Internal, path + ": not executable; install git's http-backend");
  }
  cached = path;
  return cached;
}

bool safe_path_info(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 4096) {
    return false;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') {
      return false;
    }
  }
  size_t pos = 0;
  while (pos < p.size()) {
    size_t next = p.find('/', pos + 1);
    std::string_view seg = p.substr(pos + 1, next == p.npos ? p.npos : next - pos - 1);
    if (seg == ".." || seg == ".") {
      return false;
    }
    pos = next == p.npos ? p.size() : next;
  }
  return true;
}

bool safe_header_value(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

/// Collects the CGI head from the backend's stdout, then passes the body on.
class CgiOutput {
 public:
  CgiOutput(CgiResponse& resp, const CgiSink& sink) : resp_(resp), sink_(sink) {}

  Status feed(std::string_view chunk) {
    if (head_done_) {
      return body(chunk);
    }
    head_ += chunk;
    size_t end = head_.find("\r\n\r\n");
    size_t sep = 4;
    size_t lf = head_.find("\n\n");
    if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
      end = lf;
      sep = 2;
    }
    if (end == std::string::npos) {
      if (head_.size() > kMaxCgiHead) {
        return make_error(Errc::Internal, "git http-backend: response head too large");
      }
      return ok();
    }
    std::string rest = head_.substr(end + sep);
    head_.resize(end);
    BERTH_TRY(parse_head());
    head_done_ = true;
    if (sink_.on_head) {
      BERTH_TRY(sink_.on_head(resp_));
    }
    return rest.empty() ? ok() : body(rest);
  }

  bool head_done() const { return head_done_; }

 private:
  Status body(std::string_view chunk) {
    resp_.body_bytes += chunk.size();
    if (sink_.on_body) {
      return sink_.on_body(chunk);
    }
    resp_.body += chunk;
    return ok();
  }

  Status parse_head() {
    size_t pos = 0;
    while (pos <= head_.size()) {
      size_t nl = head_.find('\n', pos);
      std::string line = head_.substr(pos, nl == std::string::npos ? nl : nl - pos);
      pos = nl == std::string::npos ? head_.size() + 1 : nl + 1;
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.empty()) {
        continue;
      }
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) {
        return make_error(Errc::Internal, "git http-backend: malformed header line");
      }
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.erase(0, 1);
      }
      if (strcasecmp(name.c_str(), "Status") == 0) {
        int code = std::atoi(value.c_str());
        if (code < 100 || code > 599) {
          return make_error(Errc::Internal, "git http-backend: bad Status " + value);
        }
        resp_.status = code;
        size_t sp = value.find(' ');
        resp_.reason = sp == std::string::npos ? std::string() : value.substr(sp + 1);
      } else {
        resp_.headers.emplace_back(std::move(name), std::move(value));
      }
    }
    return ok();
  }

  CgiResponse& resp_;
  const CgiSink& sink_;
  std::string head_;
  bool head_done_ = false;
};

}  // namespace

Result<CgiResponse> run_git_http_backend(const CgiRequest& req, const CgiSink& sink) {
  if (req.method != "GET" && req.method != "POST") {
    return make_error(Errc::InvalidArgument, "git http-backend: method " + req.method);
  }
  if (!safe_path_info(req.path_info)) {
    return make_error(Errc::InvalidArgument, "git http-backend: bad path " + req.path_info);
  }
  if (req.project_root.empty() || req.project_root.front() != '/') {
    return make_error(Errc::InvalidArgument, "git http-backend: project root must be absolute");
  }
  for (const std::string* v : {&req.query_string, &req.content_type, &req.content_encoding,
                               &req.git_protocol, &req.remote_user, &req.remote_addr}) {
    if (!safe_header_value(*v)) {
      return make_error(Errc::InvalidArgument, "git http-backend: control character in request");
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::string backend, http_backend_path());

  std::vector<std::string> extra = {
      "GIT_CONFIG_NOSYSTEM=1",
      "GIT_CONFIG_GLOBAL=/dev/null",
      "GATEWAY_INTERFACE=CGI/1.1",
      "SERVER_PROTOCOL=HTTP/1.1",
      "GIT_HTTP_EXPORT_ALL=1",
      "GIT_PROJECT_ROOT=" + req.project_root,
      // receive-pack's automatic gc runs in the foreground: a detached one would outlive the
      // request's process group (see reap_group()).
      "GIT_CONFIG_COUNT=2",
      "GIT_CONFIG_KEY_0=gc.autoDetach",
      "GIT_CONFIG_VALUE_0=false",
      "GIT_CONFIG_KEY_1=maintenance.autoDetach",
      "GIT_CONFIG_VALUE_1=false",
      "PATH_INFO=" + req.path_info,
      "REQUEST_METHOD=" + req.method,
      "QUERY_STRING=" + req.query_string,
  };
  if (!req.content_type.empty()) {
    extra.push_back("CONTENT_TYPE=" + req.content_type);
  }
  if (req.content_length) {
    extra.push_back("CONTENT_LENGTH=" + std::to_string(*req.content_length));
  }
  if (!req.content_encoding.empty()) {
    extra.push_back("HTTP_CONTENT_ENCODING=" + req.content_encoding);
  }
  if (!req.git_protocol.empty()) {
    extra.push_back("HTTP_GIT_PROTOCOL=" + req.git_protocol);
  }
  if (!req.remote_user.empty()) {
    extra.push_back("REMOTE_USER=" + req.remote_user);
  }
  if (!req.remote_addr.empty()) {
    extra.push_back("REMOTE_ADDR=" + req.remote_addr);
  }

  CgiResponse resp;
  CgiOutput out(resp, sink);
  RunSpec spec;
  spec.argv = {backend};
  spec.env = child_env(extra);
  spec.deadline = Clock::now() + req.timeout;
  if (req.read_body) {
    spec.input = req.read_body;
  }
  spec.on_stdout = [&](std::string_view chunk) { return out.feed(chunk); };
  spec.on_stderr = [&](std::string_view chunk) {
    if (resp.backend_stderr.size() < kMaxStderr) {
      resp.backend_stderr += chunk.substr(0, kMaxStderr - resp.backend_stderr.size());
    }
  };
  BERTH_ASSIGN_OR_RETURN(auto r, run_child(spec));
  if (!out.head_done()) {
    std::string m = "git http-backend exited (";
    m += std::to_string(r.exit_code);
    m += ") without a response";
    if (!resp.backend_stderr.empty()) {
      m += ": ";
      m += trim_line(resp.backend_stderr);
    }
    return make_error(Errc::Internal, std::move(m));
  }
  return resp;
}

}  // namespace berth::builder
