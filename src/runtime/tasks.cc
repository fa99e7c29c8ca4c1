// SPDX-License-Identifier: Apache-2.0
// Runtime tasks: one-shot containers (build steps) run to completion by runc, in their own
// bundle dir and runc state root.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "runtime/core.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

namespace berth::runtime {

// ---- tasks ------------------------------------------------------------------------------------

namespace {

// Task bundles being run right now in this process, by path: several Runtimes may share a
// root (tests), and a sweep of leftovers must not touch a live task.
std::mutex& active_tasks_mu() {
  static auto* m = new std::mutex;
  return *m;
}
std::set<std::string>& active_tasks() {
  static auto* s = new std::set<std::string>;
  return *s;
}

// Marks a task bundle active for its lifetime; false when it already was.
class ActiveTask {
 public:
  explicit ActiveTask(std::string bundle) : bundle_(std::move(bundle)) {
    std::lock_guard<std::mutex> g(active_tasks_mu());
    claimed_ = active_tasks().insert(bundle_).second;
  }
  ~ActiveTask() {
    if (claimed_) {
      std::lock_guard<std::mutex> g(active_tasks_mu());
      active_tasks().erase(bundle_);
    }
  }
  ActiveTask(const ActiveTask&) = delete;
  ActiveTask& operator=(const ActiveTask&) = delete;
  bool claimed() const { return claimed_; }

 private:
  std::string bundle_;
  bool claimed_ = false;
};

bool task_active(const std::string& bundle) {
  std::lock_guard<std::mutex> g(active_tasks_mu());
  return active_tasks().count(bundle) > 0;
}

// What one path of the rootfs was before the task ran.
struct PathBefore {
  bool existed = false;
  bool is_dir = false;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// "/a/b/" -> {"a", "b"}; empty for "/" and for a path with "..".
std::vector<std::string> path_parts(const std::string& abs) {
  size_t start = abs.find_first_not_of('/');
  if (start == std::string::npos) {
    return {};
  }
  std::string why;
  auto parts = detail::split_entry_path(std::string_view(abs).substr(start), &why);
  return why.empty() ? parts : std::vector<std::string>{};
}

// Records, for every prefix of every mount destination, whether it exists in the rootfs (the
// lower layers, since the upper dir starts empty) and what it looks like. A walk stops at a
// symlink or a non-directory: runc resolves those itself, and what it then creates is not
// predictable here, so nothing below them is cleaned up.
void record_paths(const std::string& rootfs, const std::vector<std::string>& destinations,
                  std::map<std::string, PathBefore>& out) {
  for (const auto& dest : destinations) {
    auto parts = path_parts(dest);
    Fd cur(::open(rootfs.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC));
    for (size_t i = 0; i < parts.size() && cur; ++i) {
      std::string rel = detail::join_entry_path(parts, i + 1);
      struct stat st {};
      if (::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        // Missing: runc creates it and everything below it.
        for (size_t k = i; k < parts.size(); ++k) {
          out.emplace(detail::join_entry_path(parts, k + 1), PathBefore{});
        }
        break;
      }
      PathBefore b{true, S_ISDIR(st.st_mode), st.st_mode, st.st_uid, st.st_gid};
      out.emplace(rel, b);
      if (!S_ISDIR(st.st_mode)) {
        break;
      }
      cur.reset(
          ::openat(cur.get(), parts[i].c_str(), O_DIRECTORY | O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
  }
}

bool dir_is_empty(int parent, const std::string& name) {
  Fd d(::openat(parent, name.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) {
    return false;
  }
  DIR* dir = ::fdopendir(d.release());
  if (!dir) {
    return false;
  }
  bool empty = true;
  while (dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  return empty;
}

// Removes from the (unmounted) upper dir what runc created as mount points: paths the lower
// layers did not have (an empty file or directory; a directory only when nothing else landed
// in it), and directories the lower layers had that were copied up only to hold a mount point
// (empty, same mode and owner, not opaque). Deepest first, so a parent runc had to create
// goes once its mount point is gone. `keep` (the working directory and its parents) stays.
void remove_mount_points(const std::string& upper, const std::map<std::string, PathBefore>& paths,
                         const std::set<std::string>& keep) {
  std::vector<std::pair<std::string, PathBefore>> order(paths.begin(), paths.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::count(a.first.begin(), a.first.end(), '/') >
           std::count(b.first.begin(), b.first.end(), '/');
  });
  Fd root(::open(upper.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC));
  if (!root) {
    return;
  }
  for (const auto& [rel, before] : order) {
    if (keep.count(rel) || (before.existed && !before.is_dir)) {
      continue;
    }
    auto slash = rel.rfind('/');
    std::string parent_rel = slash == std::string::npos ? "." : rel.substr(0, slash);
    std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    // Never through a symlink the task may have planted in the upper dir.
    Fd parent(detail::open_beneath(root.get(), parent_rel, O_DIRECTORY | O_PATH));
    if (!parent) {
      continue;
    }
    struct stat st {};
    if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (!before.existed) {
      if (S_ISREG(st.st_mode) && st.st_size == 0) {
        ::unlinkat(parent.get(), name.c_str(), 0);
      } else if (S_ISDIR(st.st_mode)) {
        ::unlinkat(parent.get(), name.c_str(), AT_REMOVEDIR);  // fails unless empty: fine
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode) || st.st_mode != before.mode || st.st_uid != before.uid ||
        st.st_gid != before.gid) {
      continue;
    }
    Fd d(::openat(parent.get(), name.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    char v[4];
    if (!d || ::fgetxattr(d.get(), "trusted.overlay.opaque", v, sizeof v) >= 0) {
      continue;  // opaque: the task replaced the directory
    }
    d.reset();
    if (dir_is_empty(parent.get(), name)) {
      ::unlinkat(parent.get(), name.c_str(), AT_REMOVEDIR);
    }
  }
}

// Creates the working directory (and missing parents) inside the rootfs, root-owned 0755,
// resolving every component inside the rootfs.
Status make_cwd(const std::string& rootfs, const std::vector<std::string>& parts) {
  Fd root(::open(rootfs.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC));
  if (!root) {
    return Error(Errc::Internal, "open " + rootfs + ": " + std::strerror(errno));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string rel = detail::join_entry_path(parts, i + 1);
    open_how how{};
    how.flags = O_DIRECTORY | O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    Fd d(static_cast<int>(::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how)));
    if (d) {
      continue;
    }
    if (errno != ENOENT) {
      return Error(Errc::InvalidArgument,
                   "working directory /" + rel + ": " + std::string(std::strerror(errno)));
    }
    std::string parent_rel = i == 0 ? "." : detail::join_entry_path(parts, i);
    Fd parent(
        static_cast<int>(::syscall(SYS_openat2, root.get(), parent_rel.c_str(), &how, sizeof how)));
    if (!parent) {
      return Error(Errc::Internal, "open /" + parent_rel + ": " + std::strerror(errno));
    }
    Fd pdir(::openat(parent.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!pdir || (::mkdirat(pdir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)) {
      return Error(Errc::Internal, "mkdir /" + rel + ": " + std::strerror(errno));
    }
    Fd made(
        ::openat(pdir.get(), parts[i].c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (made) {
      ::fchmod(made.get(), 0755);  // whatever our umask is
      ::fchown(made.get(), 0, 0);
    }
  }
  return ok();
}

// Drains what is readable now from a non-blocking pipe into its splitter. Sets eof at the end
// of the stream.
void drain(int fd, detail::LineSplitter& split, const detail::LineSplitter::Emit& emit, bool& eof) {
  char buf[16384];
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      split.feed(std::string_view(buf, static_cast<size_t>(n)), emit);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      eof = true;
    }
    return;
  }
}

InstanceExit exit_of(const siginfo_t& info) {
  InstanceExit e;
  if (info.si_code == CLD_EXITED) {
    e.exit_code = info.si_status;
  } else {
    e.signal = info.si_status;
  }
  return e;
}

}  // namespace

void sweep_stale_tasks(RuntimeCore& st) {
  std::set<std::string> ids;
  for (const auto& dir : {st.task_runc_root, st.tasks_dir}) {
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(dir, ec)) {
      std::string n = e.path().filename().string();
      if (valid_id(n)) {
        ids.insert(n);
      }
    }
  }
  for (const auto& id : ids) {
    if (task_active(st.tasks_dir + "/" + id)) {
      continue;
    }
    // Left by a berthd that crashed mid-task: kill it and drop the mount and bundle.
    if (auto s = st.teardown_in(st.task_runc_root, st.tasks_dir, id); !s) {
      logger()->warn("stale task not removed id={} error=\"{}\"", id, s.error().message());
    } else {
      logger()->info("stale task removed id={}", id);
    }
  }
}

Result<InstanceExit> Runtime::run_task(const TaskSpec& spec) {
  State& st = *state_;
  const std::string& id = spec.id;
  const auto t0 = std::chrono::steady_clock::now();
  if (!valid_id(id)) {
    return Error(Errc::InvalidArgument, "task id \"" + id + "\" must be [a-z0-9-]{1,64}");
  }
  if (spec.args.empty()) {
    return Error(Errc::InvalidArgument, "task " + id + ": nothing to run (no arguments)");
  }
  if (spec.upper_dir.empty() || spec.work_dir.empty()) {
    return Error(Errc::InvalidArgument, "task " + id + ": upper_dir and work_dir are required");
  }
  std::string cwd = spec.cwd.empty() ? std::string(1, '/') : spec.cwd;
  auto cwd_parts = path_parts(cwd);
  if (cwd[0] != '/' || (cwd_parts.empty() && cwd.find_first_not_of('/') != std::string::npos)) {
    return Error(Errc::InvalidArgument,
                 "task " + id + ": working directory \"" + cwd + "\" must be absolute, without ..");
  }
  for (const auto& b : spec.binds) {
    if (b.destination.empty() || b.destination[0] != '/' || path_parts(b.destination).empty()) {
      return Error(Errc::InvalidArgument, "task " + id + ": bind destination \"" + b.destination +
                                              "\" must be an absolute path below /, without ..");
    }
    if (!exists(b.source)) {
      return Error(Errc::InvalidArgument,
                   "task " + id + ": bind source " + b.source + " does not exist");
    }
  }
  if (spec.cancel != nullptr && spec.cancel->load()) {
    return Error(Errc::Cancelled, "task " + id + " cancelled");
  }
  if (st.find(id)) {
    return Error(Errc::AlreadyExists, "task " + id + ": an instance has that id");
  }
  std::string bundle = st.tasks_dir + "/" + id;
  ActiveTask active(bundle);
  if (!active.claimed()) {
    return Error(Errc::AlreadyExists, "task " + id + " is running already");
  }
  if (exists(bundle) || exists(st.task_runc_root + "/" + id)) {
    BERTH_TRY(st.teardown_in(st.task_runc_root, st.tasks_dir, id));
  }

  // From here on, every return goes through finish(): runc state, mount and bundle go, and
  // the mount points runc created leave the upper dir.
  std::map<std::string, PathBefore> mount_paths;
  std::set<std::string> keep;
  bool mounted = false;
  Fd pidfd;
  bool reaped = false;
  auto finish = [&](Result<InstanceExit> r) -> Result<InstanceExit> {
    Status s = st.teardown_in(st.task_runc_root, st.tasks_dir, id);
    if (pidfd && !reaped) {
      // runc delete --force killed it; it is our child (we are its subreaper): reap it.
      if (detail::wait_pidfd(pidfd.get(), 10000)) {
        siginfo_t info{};
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
                 WEXITED | WNOHANG);
      }
    }
    if (mounted && !mount_paths.empty()) {
      remove_mount_points(spec.upper_dir, mount_paths, keep);
    }
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (r && !s) {
      r = std::move(s).error().with_context("task " + id);
    }
    if (r) {
      logger()->info("task finished id={} status=\"{}\" ms={}", id, r->str(), ms);
    } else {
      logger()->info("task failed id={} error=\"{}\" ms={}", id, r.error().message(), ms);
    }
    return r;
  };
  auto fail = [&](Error e) -> Result<InstanceExit> { return finish(std::move(e)); };

  if (::mkdir(bundle.c_str(), 0700) != 0) {
    return fail(Error(Errc::Internal, "mkdir " + bundle + ": " + std::strerror(errno)));
  }
  for (const char* sub : {"/rootfs", "/empty"}) {
    if (::mkdir((bundle + sub).c_str(), 0755) != 0) {
      return fail(Error(Errc::Internal, "mkdir " + bundle + sub + ": " + std::strerror(errno)));
    }
  }
  std::vector<std::string> lowers = spec.lower_dirs;
  if (lowers.empty()) {
    lowers.push_back(bundle + "/empty");
  }
  // No redirects and no metacopy, whatever the module defaults: the upper dir must hold whole
  // files and whole directories to become a layer.
  if (auto s = mount_overlay(lowers, spec.upper_dir, spec.work_dir, bundle + "/rootfs",
                             "redirect_dir=off,metacopy=off");
      !s) {
    return fail(std::move(s).error());
  }
  mounted = true;
  std::string rootfs = bundle + "/rootfs";
  auto user = detail::resolve_user(rootfs, spec.user);
  if (!user) {
    return fail(std::move(user).error());
  }
  // A working directory inside a bind (a buildspec's /src) is the bind's: runc makes the
  // mount point, and it is not a change of the task's. Any other is created and kept.
  bool cwd_in_bind = std::any_of(spec.binds.begin(), spec.binds.end(), [&](const auto& b) {
    auto bp = path_parts(b.destination);
    return bp.size() <= cwd_parts.size() && std::equal(bp.begin(), bp.end(), cwd_parts.begin());
  });
  if (!cwd_in_bind) {
    if (auto s = make_cwd(rootfs, cwd_parts); !s) {
      return fail(std::move(s).error());
    }
    for (size_t i = 0; i < cwd_parts.size(); ++i) {
      keep.insert(detail::join_entry_path(cwd_parts, i + 1));
    }
  }
  std::vector<std::string> destinations = {"/proc",      "/sys",          "/dev",
                                           "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"};
  for (const auto& b : spec.binds) {
    destinations.push_back(b.destination);
  }
  record_paths(rootfs, destinations, mount_paths);

  detail::BundleParams p;
  p.id = id;
  p.args = spec.args;
  p.env = detail::merge_env({}, spec.env, id, user->home);
  p.cwd = cwd;
  p.user = *user;
  p.cpus = spec.cpus;
  p.memory_bytes = spec.memory_bytes;
  p.hostname_file = bundle + "/hostname";
  // Task ids repeat across data dirs ("build-3-2" in every berthd, test, or berthd restart),
  // but cgroups are host-wide: a random part keeps two tasks from sharing (and one deleting)
  // a cgroup. runc delete removes it.
  p.cgroups_path = "/berth/task-" + id + "-" + fs::random_hex(4);
  p.host_network = spec.host_network;
  for (const auto& b : spec.binds) {
    p.binds.push_back({b.source, b.destination, b.read_only});
  }
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max < p.nofile) {
    p.nofile = nofile.rlim_max;
  }
  if (spec.host_network && exists("/etc/hosts") && exists("/etc/resolv.conf")) {
    // The host's network, so the host's name resolution (read-only binds).
    p.hosts_file = "/etc/hosts";
    p.resolv_file = "/etc/resolv.conf";
  } else {
    p.hosts_file = bundle + "/hosts";
    p.resolv_file = bundle + "/resolv.conf";
  }
  Status w = write_bundle_files(bundle, id, p,
                                spec.host_network ? "# the host has no /etc/resolv.conf\n"
                                                  : "# berth tasks without host networking have "
                                                    "loopback networking only\n");
  if (!w) {
    return fail(std::move(w).error());
  }

  // runc create: the container's init inherits our pipes as stdout and stderr and waits at
  // its exec fifo; runc create prints its own errors on the same stderr, and nothing else can
  // write there before runc start. Once runc create exits, the init is re-parented to us
  // (child subreaper), so its exit status is ours to reap through a pidfd — by this thread
  // only: the instances' exit watchers wait on their own pidfds, never on any child.
  auto pipes = detail::make_output_pipes();
  if (!pipes) {
    return fail(std::move(pipes).error());
  }
  auto& [out_r, out_w, err_r, err_w] = *pipes;
  auto argv = st.runc_at(st.task_runc_root,
                         {"create", "--bundle", bundle, "--pid-file", bundle + "/pid", id});
  auto runc_pid = detail::spawn(argv, out_w.get(), err_w.get());
  if (!runc_pid) {
    return fail(std::move(runc_pid).error());
  }
  out_w.reset();
  err_w.reset();
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  detail::LineSplitter create_split;
  std::string create_text;
  auto create_emit = [&](std::string_view l) {
    if (create_text.size() < kMaxStartErr) {
      if (!create_text.empty()) {
        create_text += '\n';
      }
      create_text += l.substr(0, kMaxStartErr);
    }
  };
  bool out_eof = false, err_eof = false;
  {
    // runc create is quick (it only sets the container up); it is not cut short by the
    // deadline or a cancel: killing it half-way would orphan its runc init helpers.
    Fd runc_fd(detail::pidfd_open(*runc_pid));
    while (runc_fd) {
      pollfd fds[3] = {{out_eof ? -1 : out_r.get(), POLLIN, 0},
                       {err_eof ? -1 : err_r.get(), POLLIN, 0},
                       {runc_fd.get(), POLLIN, 0}};
      int n = ::poll(fds, 3, 1000);
      if (n < 0 && errno != EINTR) {
        break;
      }
      if (n > 0 && fds[0].revents) {
        drain(out_r.get(), create_split, create_emit, out_eof);
      }
      if (n > 0 && fds[1].revents) {
        drain(err_r.get(), create_split, create_emit, err_eof);
      }
      if (n > 0 && fds[2].revents) {
        break;
      }
    }
  }
  int status = 0;
  while (::waitpid(*runc_pid, &status, 0) < 0 && errno == EINTR) {
  }
  // What runc printed (only runc can have written so far).
  drain(out_r.get(), create_split, create_emit, out_eof);
  drain(err_r.get(), create_split, create_emit, err_eof);
  create_split.finish(create_emit);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    detail::ProcResult pr;
    pr.status = status;
    return fail(Error(Errc::Internal, st.opts.oci_runtime + " create failed (" + pr.describe() +
                                          "): " + create_text)
                    .with_context("task " + id));
  }
  if (!create_text.empty()) {
    logger()->debug("task runc create said id={} text=\"{}\"", id, create_text);
  }
  auto pid_text = fs::read_file(bundle + "/pid");
  int pid = pid_text ? std::atoi(pid_text->c_str()) : 0;
  pidfd.reset(pid > 0 ? detail::pidfd_open(pid) : -1);
  if (!pidfd) {
    return fail(Error(Errc::Internal, "task " + id + ": no process (pid file \"" +
                                          pid_text.value_or("") + "\"): " + std::strerror(errno)));
  }

  auto deadline =
      spec.timeout.count() > 0 ? t0 + spec.timeout : std::chrono::steady_clock::time_point::max();
  auto stopped_why = [&]() -> std::optional<Error> {
    if (spec.cancel != nullptr && spec.cancel->load()) {
      return Error(Errc::Cancelled, "task " + id + " cancelled");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error(Errc::DeadlineExceeded, "task " + id + " did not finish within " +
                                               std::to_string(spec.timeout.count()) + " ms");
    }
    return std::nullopt;
  };
  if (auto why = stopped_why()) {
    return fail(std::move(*why));
  }
  auto started = detail::run_process(st.runc_at(st.task_runc_root, {"start", id}));
  if (!started || !started->ok()) {
    std::string msg =
        started ? started->describe() + "): " + started->err : started.error().message() + ")";
    return fail(Error(Errc::Internal, st.opts.oci_runtime + " start failed (" + msg)
                    .with_context("task " + id));
  }
  logger()->debug("task started id={} pid={} args=\"{}\"", id, pid, detail::join_argv(spec.args));

  detail::LineSplitter out_split, err_split;
  auto out_emit = [&](std::string_view l) {
    if (spec.output) {
      spec.output("stdout", l);
    }
  };
  auto err_emit = [&](std::string_view l) {
    if (spec.output) {
      spec.output("stderr", l);
    }
  };
  std::optional<Error> killed_for;
  bool exited = false;
  auto exited_at = std::chrono::steady_clock::time_point::max();
  auto killed_at = std::chrono::steady_clock::time_point::max();
  while (!(exited && out_eof && err_eof)) {
    auto now = std::chrono::steady_clock::now();
    if (exited && now - exited_at > std::chrono::seconds(2)) {
      break;  // a writer outlived the container (cannot happen with a pid namespace): stop
    }
    if (!exited && killed_for && now - killed_at > std::chrono::seconds(10)) {
      logger()->warn("task survived SIGKILL for 10s id={}", id);
      break;
    }
    if (!exited && !killed_for) {
      if (auto why = stopped_why()) {
        killed_for = std::move(why);
        killed_at = now;
        // pid 1 of its namespace: when it dies the kernel kills the rest of the namespace.
        detail::pidfd_send_signal(pidfd.get(), SIGKILL);
      }
    }
    pollfd fds[3] = {{out_eof ? -1 : out_r.get(), POLLIN, 0},
                     {err_eof ? -1 : err_r.get(), POLLIN, 0},
                     {exited ? -1 : pidfd.get(), POLLIN, 0}};
    int n = ::poll(fds, 3, 50);  // 50 ms: how quickly a cancel or the deadline is noticed
    if (n < 0 && errno != EINTR) {
      return fail(Error(Errc::Internal, std::string("poll: ") + std::strerror(errno)));
    }
    if (n <= 0) {
      continue;
    }
    if (fds[0].revents) {
      drain(out_r.get(), out_split, out_emit, out_eof);
    }
    if (fds[1].revents) {
      drain(err_r.get(), err_split, err_emit, err_eof);
    }
    if (fds[2].revents) {
      exited = true;
      exited_at = std::chrono::steady_clock::now();
    }
  }
  out_split.finish(out_emit);
  err_split.finish(err_emit);
  InstanceExit result;
  result.exit_code = -1;
  if (exited) {
    siginfo_t info{};
    int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
                      WEXITED | WNOHANG);
    if (rc == 0 && info.si_pid != 0) {
      reaped = true;
      result = exit_of(info);
    } else {
      // Not our child: berthd is not a subreaper (see the warning at startup).
      reaped = true;
      logger()->warn("task exit status unknown id={} error={}", id,
                     rc == 0 ? "not reapable" : std::strerror(errno));
    }
  }
  if (killed_for) {
    return fail(std::move(*killed_for));
  }
  return finish(result);
}

}  // namespace berth::runtime
