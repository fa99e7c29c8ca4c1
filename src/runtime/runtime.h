// SPDX-License-Identifier: Apache-2.0
// The container runtime: turns a pinned image into running, isolated instances.
//
//  - ImagePreparer resolves a manifest (an index is narrowed to this host's platform), checks
//    the platform, and unpacks every layer once into a shared layer cache
//    (ROOT/layers/<hex>/), converting OCI whiteouts into overlayfs ones. Extraction refuses
//    absolute paths, `..` and links that escape the layer; device nodes are skipped.
//  - Runtime starts an instance as an OCI bundle (ROOT/instances/<id>/{config.json, upper,
//    work, rootfs}) whose rootfs is an overlay over the cached layers, through the OCI runtime
//    CLI (runc by default) with its own state root (ROOT/runc). Each instance gets its own
//    pid, mount, ipc, uts and network namespaces (loopback only), Docker's default capability
//    set, no-new-privileges, Docker's default seccomp profile (seccomp.h), masked and read-only
//    /proc paths, and cgroup CPU, memory and pids limits (Confinement).
//  - Instance stdout/stderr are captured line by line into a LogSink (timestamped, labelled
//    with the instance id and stream, size-rotated).
//
// Everything here is blocking unless it says otherwise: call it through run_blocking().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/netns.h"
#include "common/result.h"

namespace berth::runtime {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64" (OCI names)
  std::string variant;       // "" or "v8", ...
  /// "linux/amd64", or "linux/arm64/v8" with a variant.
  std::string str() const;
};

/// This host's platform in OCI terms (uname's x86_64 is "amd64", aarch64 "arm64").
Platform host_platform();

/// Where image content comes from. The deploy side implements it over the registry's store.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// A manifest's bytes and media type, by digest, in repository. NotFound when absent.
  virtual Result<std::pair<std::string, std::string>> manifest(const std::string& repository,
                                                               const std::string& digest) = 0;
  /// The local path of a blob's content (a layer or config). NotFound when absent.
  virtual Result<std::string> blob_path(const std::string& digest) = 0;
};

/// The parts of an image config an instance needs.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string working_dir;
  std::string user;  // "uid[:gid]" or a name resolved in the rootfs's /etc/passwd, /etc/group
  std::string stop_signal;                 // "" = SIGTERM
  std::vector<std::string> exposed_ports;  // "8080/tcp"
};

/// An image unpacked and ready to run.
struct PreparedImage {
  std::string repository;
  std::string digest;  // the platform-specific image manifest's digest
  std::string config_digest;
  Platform platform;
  ImageConfig config;
  std::vector<std::string> layer_dirs;     // unpacked layer directories, bottom layer first
  std::vector<std::string> layer_digests;  // compressed layer digests, same order
};

class ImagePreparer {
 public:
  /// root: the runtime's data directory (ROOT/layers is the layer cache).
  ImagePreparer(std::string root, ImageSource& source);

  /// Resolves `digest` in `repository`: an index or manifest list is narrowed to this host's
  /// platform; an image whose platform does not match fails with FailedPrecondition and
  /// exactly: "image web/app@sha256:... is linux/arm64; this host runs linux/amd64: rebuild it
  /// for linux/amd64". Unpacks each layer (gzip, zstd or uncompressed tar) once; concurrent
  /// calls for the same layer unpack it once. An unsafe layer fails with InvalidArgument naming
  /// the layer and the entry.
  Result<PreparedImage> prepare(const std::string& repository, const std::string& digest);

  /// Removes unpacked layers whose digest is not in `keep`. Returns how many were removed.
  Result<size_t> prune(const std::set<std::string>& keep);

  /// The unpacked directory of one layer blob that is not (yet) in the registry, such as a
  /// layer a build just wrote: unpacks blob_path into the cache as `digest` unless it is there
  /// already, with the same checks and the same once-only locking as prepare().
  Result<std::string> unpack_layer(const std::string& digest, const std::string& blob_path);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// Appends timestamped lines to a log file, rotating it at max_bytes (FILE -> FILE.1 ... keep).
/// Thread-safe; several instances of one service share one sink. On a full disk lines are
/// dropped whole (never half a line in the file) and counted; the first line written once
/// there is room again says how many were lost ("berth stderr N log lines were dropped: the
/// disk was full").
/// Line format: "2026-11-27T09:40:48.931Z <instance-id> <stdout|stderr> <text>\n".
class LogSink {
 public:
  LogSink(std::string path, uint64_t max_bytes = 10 << 20, int keep = 3);
  ~LogSink();
  void write(const std::string& instance, const std::string& stream, std::string_view line);
  const std::string& path() const { return path_; }

 private:
  // Writes a whole record or nothing (a short write is cut back); false when it failed.
  bool append_locked(const std::string& data);

  std::string path_;
  uint64_t max_bytes_;
  int keep_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t dropped_ = 0;  // lines lost since the last successful write
};

/// One stored log line, parsed.
struct LogLine {
  int64_t time_ms = 0;  // unix milliseconds
  std::string instance;
  std::string stream;
  std::string text;
  std::string raw;  // the whole line as stored, without the newline
};

/// Reads a sink's file and its rotations, oldest first: lines at or after since_ms whose
/// instance starts with instance_prefix (""= all); at most the last `limit` of them (0 = all).
/// `offset` (in/out, may be null): byte offset in the current file to start from and, on
/// return, where it ended, so a follower can poll for new lines cheaply.
std::vector<LogLine> read_log(const std::string& path, int64_t since_ms,
                              const std::string& instance_prefix, size_t limit,
                              uint64_t* offset = nullptr);

/// How tightly a container is confined beyond what every container gets (namespaces,
/// Docker's default capabilities, no-new-privileges, masked /proc paths). The defaults are
/// the safe ones; docs/security.md says what each defends against.
struct Confinement {
  static constexpr int64_t kDefaultPidsLimit = 1024;
  bool seccomp = true;                     // Docker's default seccomp profile; false = unconfined
  int64_t pids_limit = kDefaultPidsLimit;  // cgroup pids.max: tasks and threads; 0 = no limit
  bool read_only_rootfs = false;           // rootfs mounted read-only, with a tmpfs at /tmp
};

struct InstanceSpec {
  std::string id;  // [a-z0-9-]{1,64}, unique; also the OCI container id and the hostname
  PreparedImage image;
  std::vector<std::string> env;  // the service's "KEY=VALUE" (incl. PORT), over the image's
  double cpus = 0;               // 0 = no limit
  int64_t memory_bytes = 0;      // 0 = no limit
  Confinement confinement;
  std::shared_ptr<LogSink> log;  // receives stdout/stderr; may be null (discarded)
};

/// How an instance's process ended.
struct InstanceExit {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;
  std::string str() const;  // "exited with code 1", "killed by signal 9 (SIGKILL)"
};

struct InstanceInfo {
  std::string id;
  int pid = 0;
  std::shared_ptr<NetNs> netns;  // the instance's network namespace; null when the process
                                 // had already exited by the time start() returned
};

/// A one-shot container, as a build's RUN step or buildspec command needs: runs to completion
/// in an overlay of lower_dirs, its filesystem changes landing in upper_dir.
struct TaskSpec {
  std::string id;                       // [a-z0-9-]{1,64}, unique among tasks and instances
  std::vector<std::string> lower_dirs;  // unpacked layers, bottom first; empty = empty rootfs
  std::string upper_dir;                // existing, empty: receives the changes in overlayfs format
  std::string work_dir;                 // existing, empty, on the same filesystem as upper_dir
  std::vector<std::string> args;        // argv; args[0] looked up on the task's PATH
  std::vector<std::string> env;         // "KEY=VALUE"; PATH and HOME get defaults when missing
  std::string cwd = "/";                // created (root-owned, 0755) when missing, as Docker does
  std::string user;          // "" = root; "name", "uid", "uid:gid", resolved in the rootfs
  bool host_network = true;  // false: its own network namespace with loopback only
  struct Bind {
    std::string source;       // host path (file or directory)
    std::string destination;  // absolute path in the container
    bool read_only = false;
  };
  std::vector<Bind> binds;  // e.g. the source checkout at /src for buildspec commands
  /// Receives each output line (stream "stdout" or "stderr", line without its newline), on
  /// the calling thread or a reader thread, never concurrently.
  std::function<void(std::string_view stream, std::string_view line)> output;
  std::chrono::milliseconds timeout{0};       // 0 = none; past it: SIGKILL, DeadlineExceeded
  const std::atomic<bool>* cancel = nullptr;  // polled; when set: SIGKILL, Cancelled
  double cpus = 0;                            // 0 = no limit
  int64_t memory_bytes = 0;                   // 0 = no limit
};

struct RuntimeOptions {
  std::string root;                  // e.g. DATA/runtime
  std::string oci_runtime = "runc";  // binary name or path; "crun" where it works
  /// Each instance (not build tasks) in its own user namespace: container uids and gids
  /// 0..kUsernsSize-1 are host kUsernsHostBase.. (one range for all instances; see
  /// docs/security.md). The instance's upper dir is chowned to the mapped root.
  bool userns = false;
};
inline constexpr uint32_t kUsernsHostBase = 100000;
inline constexpr uint32_t kUsernsSize = 65536;

class Runtime {
 public:
  /// ioc: where pipe reading and exit watching run (async; never blocks it). Makes this
  /// process a child subreaper (once), so detached containers are re-parented to it and their
  /// exit status can be reaped. Destroying the Runtime leaves running instances running; a
  /// new Runtime on the same root finds them through list() and can stop() them.
  Runtime(RuntimeOptions opts, asio::io_context& ioc);
  ~Runtime();

  /// Checks that the OCI runtime binary runs and overlayfs mounts work; FailedPrecondition
  /// with a sentence saying what is missing otherwise.
  Status check();

  /// Builds the bundle and starts the instance (`runc run -d`); returns once the process runs.
  /// On failure nothing is left behind (no mount, no bundle, no container state), and the
  /// error carries the runtime's stderr. Errors: InvalidArgument (bad id, nothing to run, a
  /// user or group missing from the image), AlreadyExists (id in use, or left over: stop() it),
  /// Internal (mount or runc failures, with runc's message). Blocking (~50 ms).
  Result<InstanceInfo> start(const InstanceSpec& spec);

  /// Stops an instance: its stop signal, up to `grace`, then SIGKILL; removes the container
  /// state, unmounts and deletes the bundle. Ok when the instance is already gone. This is
  /// also the cleanup after an instance exited by itself: an exit leaves the bundle, mount and
  /// runc state in place (so list() still shows it) until stop(id) is called. Blocking: up to
  /// grace plus the time SIGKILL takes.
  Status stop(const std::string& id, std::chrono::milliseconds grace);

  /// Runs a task to completion (blocking) and returns how it ended; a non-zero exit is a
  /// result, not an error. Afterwards upper_dir holds only the process's changes: mount points
  /// the runtime had to create (/proc, /sys, /dev, /etc/hosts, /etc/resolv.conf,
  /// /etc/hostname, the binds' destinations) are removed again when the lower layers did not
  /// have them. Nothing else is left behind (no mount, bundle or container state), whatever
  /// the outcome. Errors: InvalidArgument (bad id, empty args, unknown user), DeadlineExceeded,
  /// Cancelled, Internal (mount or runc failures, with runc's message). Task ids are not
  /// reported through on_exit() and not listed by list().
  Result<InstanceExit> run_task(const TaskSpec& spec);

  /// Ids of containers this runtime's state root knows (left over from a previous berthd
  /// after a crash), so reconcile can stop them.
  Result<std::vector<std::string>> list();

  /// Called once, from the io_context, when an instance's process exits by itself or is
  /// killed (not called for instances being stopped through stop()). It runs on that
  /// instance's strand, so calls for different instances may run concurrently on different
  /// I/O threads; it must not block (post the stop(id) cleanup to the blocking pool).
  void on_exit(std::function<void(const std::string& id, InstanceExit)> fn);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace berth::runtime
