// SPDX-License-Identifier: Apache-2.0
// Private helpers of the runtime module: subprocesses, line splitting, path checks, config.json
// generation. Not part of the module's API.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runtime/runtime.h"

namespace berth::runtime::detail {

/// An owned file descriptor (closed on destruction).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset(o.release());
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct ProcResult {
  int status = 0;  // as from waitpid
  std::string out;
  std::string err;
  bool ok() const;
  /// "exit status 1" / "signal 9".
  std::string describe() const;
};

/// A child's stdout and stderr: two close-on-exec pipes (our read ends, its write ends).
struct OutputPipes {
  Fd out_r, out_w, err_r, err_w;
};
Result<OutputPipes> make_output_pipes();

/// Starts argv[0] (searched on PATH) with stdin /dev/null and stdout/stderr on the given fds
/// (-1: /dev/null). Returns the pid. Every other descriptor of ours is close-on-exec.
Result<pid_t> spawn(const std::vector<std::string>& argv, int out_fd, int err_fd);

/// Runs argv to completion, capturing stdout and stderr (each capped at 1 MiB). Blocking.
Result<ProcResult> run_process(const std::vector<std::string>& argv);

/// "a b c" for messages.
std::string join_argv(const std::vector<std::string>& argv);

/// openat2() with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
/// RESOLVE_NO_XDEV (O_CLOEXEC added): path never leaves dirfd's tree, nor follows a symlink.
/// Returns the fd or -1 (errno set).
int open_beneath(int dirfd, const std::string& path, int flags);

int pidfd_open(pid_t pid);
int pidfd_send_signal(int pidfd, int sig);

/// Waits up to timeout_ms for a pidfd to become readable (the process exited). True if it did.
bool wait_pidfd(int pidfd, int timeout_ms);

/// Splits a byte stream into lines; overly long lines are cut at kMaxLine bytes.
class LineSplitter {
 public:
  static constexpr size_t kMaxLine = 16 * 1024;
  using Emit = std::function<void(std::string_view)>;
  void feed(std::string_view data, const Emit& emit);
  void finish(const Emit& emit);

 private:
  std::string buf_;
};

/// Lexically normalises a tar entry path: strips "./" and leading "/" is refused. Returns the
/// components; an error message (empty on success) when the path is absolute or has "..".
std::vector<std::string> split_entry_path(std::string_view path, std::string* why);
/// The first n components joined with '/' (the inverse of split_entry_path).
std::string join_entry_path(const std::vector<std::string>& parts, size_t n);

/// The resolved identity of the instance process.
struct ProcessUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string home;  // "" when unknown
};

/// Resolves an image config's User against the files in rootfs (read without following
/// symlinks out of the rootfs). InvalidArgument for an unknown user or group.
Result<ProcessUser> resolve_user(const std::string& rootfs, const std::string& user);

/// Inputs of config.json.
struct BundleParams {
  std::string id;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd;
  ProcessUser user;
  double cpus = 0;
  int64_t memory_bytes = 0;
  std::string hosts_file;     // bind-mounted at /etc/hosts
  std::string hostname_file;  // at /etc/hostname
  std::string resolv_file;    // at /etc/resolv.conf
  std::string cgroups_path;   // "/berth/<id>"
  uint64_t nofile = 65536;    // RLIMIT_NOFILE soft and hard
  bool host_network = false;  // true: no network namespace (tasks: build steps)
  Confinement confinement;    // seccomp, pids limit, read-only rootfs
  bool userns = false;        // a user namespace mapping 0..kUsernsSize-1 to kUsernsHostBase..
  struct Bind {
    std::string source;       // host path
    std::string destination;  // absolute path in the container
    bool read_only = false;
  };
  std::vector<Bind> binds;  // after the standard mounts, in order
};

/// config.json text (OCI runtime spec 1.0.2).
std::string make_config_json(const BundleParams& p);

/// The process environment: image env overridden by the service's, PATH and HOME defaults.
std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::vector<std::string>& spec_env,
                                   const std::string& hostname, const std::string& home);

/// The overlay mount options for the layers (top first) and the instance dirs.
std::string overlay_options(const std::vector<std::string>& lower_top_first,
                            const std::string& upper, const std::string& work);

}  // namespace berth::runtime::detail
