// SPDX-License-Identifier: Apache-2.0
// Runtime: instances as OCI bundles run by runc (`runc run -d`), stdout/stderr read on the
// io_context, exits seen through pidfds. berthd is a child subreaper, so a detached container
// process is re-parented to it when runc exits and its exit status can be reaped.
#include "runtime/runtime.h"

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

namespace berth::runtime {

using detail::Fd;

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

int parse_signal(const std::string& s) {
  if (s.empty()) {
    return SIGTERM;
  }
  if (s.find_first_not_of("0123456789") == std::string::npos && s.size() < 3) {
    int n = std::stoi(s);
    return n > 0 && n < NSIG ? n : SIGTERM;
  }
  std::string name = s;
  std::transform(name.begin(), name.end(), name.begin(), ::toupper);
  if (name.rfind("SIG", 0) == 0) {
    name = name.substr(3);
  }
  for (int i = 1; i < NSIG; ++i) {
    const char* a = sigabbrev_np(i);
    if (a && name == a) {
      return i;
    }
  }
  return SIGTERM;
}

Status write_small(const std::string& path, const std::string& content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    return Error(Errc::Internal, "create " + path + ": " + std::strerror(errno));
  }
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    return Error(Errc::Internal, "write " + path + ": " + std::strerror(errno));
  }
  return ok();
}

Status write_bundle_files(const std::string& bundle, const std::string& id,
                          const detail::BundleParams& p, const std::string& resolv) {
  auto own = [&bundle](const std::string& path) { return path.rfind(bundle + "/", 0) == 0; };
  BERTH_TRY(write_small(p.hostname_file, id + "\n"));
  if (own(p.hosts_file)) {
    BERTH_TRY(write_small(p.hosts_file, "127.0.0.1\tlocalhost " + id +
                                            "\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
  }
  if (own(p.resolv_file)) {
    BERTH_TRY(write_small(p.resolv_file, resolv));
  }
  return write_small(bundle + "/config.json", detail::make_config_json(p));
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// Mounts the overlay. The option string must fit in a page: with many layers, the mount is
// done from a forked child whose working directory is the layer cache, using relative names.
// extra: more mount options ("redirect_dir=off,..."), appended after a comma when not empty.
Status mount_overlay(const std::vector<std::string>& layers_bottom_first, const std::string& upper,
                     const std::string& work, const std::string& target, const std::string& extra) {
  std::vector<std::string> lower(layers_bottom_first.rbegin(), layers_bottom_first.rend());
  std::string tail;
  if (!extra.empty()) {
    tail.assign(1, ',');  // not = ",": GCC 12 -O3 reports a false -Wrestrict
    tail += extra;
  }
  std::string opts = detail::overlay_options(lower, upper, work) + tail;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (opts.size() < page - 1) {
    if (::mount("overlay", target.c_str(), "overlay", 0, opts.c_str()) != 0) {
      return Error(Errc::Internal, "mount overlay on " + target + ": " + std::strerror(errno));
    }
    return ok();
  }
  std::string parent = stdfs::path(lower.front()).parent_path().string();
  std::vector<std::string> rel;
  for (const auto& l : lower) {
    stdfs::path p(l);
    if (p.parent_path().string() != parent) {
      return Error(Errc::Internal, "overlay: layers are not in one directory");
    }
    rel.push_back(p.filename().string());
  }
  opts = detail::overlay_options(rel, upper, work) + tail;
  if (opts.size() >= page - 1) {
    return Error(Errc::Unsupported, "image has too many layers (" + std::to_string(lower.size()) +
                                        ") for one overlay mount: squash some of them");
  }
  const char* dir = parent.c_str();
  const char* tgt = target.c_str();
  const char* o = opts.c_str();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and _exit.
    if (::chdir(dir) != 0) {
      ::_exit(errno);
    }
    ::_exit(::mount("overlay", tgt, "overlay", 0, o) == 0 ? 0 : errno);
  }
  if (pid < 0) {
    return Error(Errc::Internal, std::string("fork: ") + std::strerror(errno));
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return Error(Errc::Internal, "mount overlay on " + target + ": " +
                                     std::strerror(WIFEXITED(st) ? WEXITSTATUS(st) : EIO));
  }
  return ok();
}

Status unmount(const std::string& target) {
  if (::umount2(target.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT) {
    return ok();
  }
  if (::umount2(target.c_str(), MNT_DETACH) == 0) {
    return ok();
  }
  return Error(Errc::Internal, "unmount " + target + ": " + std::strerror(errno));
}

void remove_cgroups(const std::string& id) {
  std::error_code ec;
  for (const auto& c : stdfs::directory_iterator("/sys/fs/cgroup", ec)) {
    std::string dir = c.path().string() + "/berth/" + id;
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      logger()->warn("cgroup not removed dir={} error={}", dir, std::strerror(errno));
    }
  }
}

namespace {

// Reads one pipe into its splitter; lines go to the sink (and, for stderr during start, into
// an error text).
struct PipeReader : std::enable_shared_from_this<PipeReader> {
  PipeReader(asio::strand<asio::io_context::executor_type> ex, int fd) : sd(ex, fd) {}
  asio::posix::stream_descriptor sd;
  std::array<char, 16384> buf{};
  detail::LineSplitter split;
  std::shared_ptr<LogSink> sink;
  std::string id;
  std::string stream;

  void emit(std::string_view line) {
    if (sink) {
      sink->write(id, stream, line);
    }
  }
  void start() {
    auto self = shared_from_this();
    sd.async_read_some(asio::buffer(buf), [self](const boost::system::error_code& ec, size_t n) {
      self->on_read(ec, n);
    });
  }
  void on_read(const boost::system::error_code& ec, size_t n) {
    auto fn = [this](std::string_view l) { emit(l); };
    if (n > 0) {
      split.feed(std::string_view(buf.data(), n), fn);
    }
    if (ec) {
      split.finish(fn);
      boost::system::error_code ignored;
      sd.close(ignored);
      return;
    }
    start();
  }
};

}  // namespace

namespace {

// Watches an instance's pidfd on its strand and reaps the process when it exits.
struct ExitWatcher : std::enable_shared_from_this<ExitWatcher> {
  ExitWatcher(asio::strand<asio::io_context::executor_type> ex, int fd) : sd(ex, fd) {}
  asio::posix::stream_descriptor sd;
  std::shared_ptr<Instance> inst;
  std::weak_ptr<RuntimeCore> state;

  void arm() {
    auto self = shared_from_this();
    sd.async_wait(asio::posix::stream_descriptor::wait_read,
                  [self](const boost::system::error_code& ec) { self->fired(ec); });
    // An exit that happened before the descriptor was registered may not be reported by the
    // edge-triggered reactor: check now and complete the wait if so.
    pollfd p{sd.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      boost::system::error_code ignored;
      sd.cancel(ignored);
    }
  }

  void fired(const boost::system::error_code& ec) {
    siginfo_t info{};
    int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(sd.native_handle()), &info,
                      WEXITED | WNOHANG);
    InstanceExit e;
    if (rc == 0 && info.si_pid == 0) {
      // Not exited (spurious wake-up or an early cancel): wait again unless closing down.
      if (ec != asio::error::operation_aborted || sd.is_open()) {
        pollfd p{sd.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) {
          auto self = shared_from_this();
          sd.async_wait(asio::posix::stream_descriptor::wait_read,
                        [self](const boost::system::error_code& e2) { self->fired(e2); });
          return;
        }
        // Readable but not reapable by us: not our child (berthd was not its subreaper).
      }
      e.exit_code = -1;
    } else if (rc == 0) {
      if (info.si_code == CLD_EXITED) {
        e.exit_code = info.si_status;
      } else {
        e.signal = info.si_status;
      }
    } else {
      e.exit_code = -1;  // ECHILD: someone else's child; the status is not ours to know
    }
    boost::system::error_code ignored;
    sd.close(ignored);
    if (auto st = state.lock()) {
      st->exited(inst, e);
    } else {
      inst->exit = e;
      inst->exited = true;
    }
  }
};

// What runtime.userns needs from the host: user namespaces the kernel allows, and a path to
// the bundles that the mapped root (an unprivileged uid on the host) may traverse.
Status check_userns(const std::string& root) {
  std::ifstream f("/proc/sys/user/max_user_namespaces");
  long long max = -1;
  if (!(f >> max)) {
    return Error(Errc::FailedPrecondition,
                 "runtime.userns is on but this kernel has no user namespaces "
                 "(/proc/sys/user/max_user_namespaces is missing)");
  }
  if (max <= 0) {
    return Error(Errc::FailedPrecondition,
                 "runtime.userns is on but /proc/sys/user/max_user_namespaces is 0: raise it "
                 "(sysctl user.max_user_namespaces=15000) or turn runtime.userns off");
  }
  for (stdfs::path p = stdfs::absolute(root); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      return Error(Errc::FailedPrecondition, "stat " + p.string() + ": " + std::strerror(errno));
    }
    if (!(st.st_mode & S_IXOTH)) {
      return Error(Errc::FailedPrecondition,
                   "runtime.userns is on but " + p.string() +
                       " is not searchable by others (o+x): the root of an instance's user "
                       "namespace (host uid " +
                       std::to_string(kUsernsHostBase) + ") must reach its rootfs; chmod o+x it");
    }
    if (p == p.parent_path()) {
      break;
    }
  }
  return ok();
}

}  // namespace

Runtime::Runtime(RuntimeOptions opts, asio::io_context& ioc) : state_(std::make_shared<State>()) {
  state_->opts = std::move(opts);
  state_->ioc = &ioc;
  state_->runc_root = state_->opts.root + "/runc";
  state_->instances_dir = state_->opts.root + "/instances";
  state_->task_runc_root = state_->opts.root + "/runc-tasks";
  state_->tasks_dir = state_->opts.root + "/tasks";
  (void)fs::make_dirs(state_->runc_root);
  (void)fs::make_dirs(state_->instances_dir);
  (void)fs::make_dirs(state_->task_runc_root);
  (void)fs::make_dirs(state_->tasks_dir);
  static std::once_flag once;
  std::call_once(once, [] {
    // Detached containers are re-parented to us when runc exits, so we can reap them and
    // learn their exit status.
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
      logger()->warn("cannot become child subreaper error={}", std::strerror(errno));
    }
  });
  sweep_stale_tasks(*state_);
}

Runtime::~Runtime() = default;

void Runtime::on_exit(std::function<void(const std::string& id, InstanceExit)> fn) {
  std::lock_guard<std::mutex> g(state_->mu);
  state_->on_exit = std::move(fn);
}

Status Runtime::check() {
  auto v = detail::run_process({state_->opts.oci_runtime, "--version"});
  if (!v || !v->ok()) {
    return Error(Errc::FailedPrecondition,
                 "the OCI runtime \"" + state_->opts.oci_runtime + "\" does not run (" +
                     (v ? v->describe() + " " + v->err : v.error().message()) +
                     "): install runc (apt-get install runc) or set runtime.oci_runtime");
  }
  std::string dir = state_->opts.root + "/check-" + fs::random_hex(4);
  for (const char* sub : {"/lower", "/upper", "/work", "/merged"}) {
    if (auto s = fs::make_dirs(dir + sub); !s) {
      return Error(Errc::FailedPrecondition,
                   "cannot create " + dir + sub + ": " + s.error().message());
    }
  }
  Status result = write_small(dir + "/lower/probe", "ok");
  if (result) {
    result = mount_overlay({dir + "/lower"}, dir + "/upper", dir + "/work", dir + "/merged");
    if (result) {
      (void)unmount(dir + "/merged");
    } else {
      result = Error(Errc::FailedPrecondition,
                     "overlayfs mounts do not work here (" + result.error().message() +
                         "): berthd must run as root on a kernel with overlayfs, and " +
                         state_->opts.root + " must not be on overlayfs itself");
    }
  }
  std::error_code ec;
  stdfs::remove_all(dir, ec);
  if (result && state_->opts.userns) {
    result = check_userns(state_->opts.root);
  }
  return result;
}

Result<InstanceInfo> Runtime::start(const InstanceSpec& spec) {
  State& st = *state_;
  const std::string& id = spec.id;
  if (!valid_id(id)) {
    return Error(Errc::InvalidArgument, "instance id \"" + id + "\" must be [a-z0-9-]{1,64}");
  }
  std::vector<std::string> args = spec.image.config.entrypoint;
  args.insert(args.end(), spec.image.config.cmd.begin(), spec.image.config.cmd.end());
  if (args.empty()) {
    return Error(Errc::InvalidArgument, "image " + spec.image.repository + "@" + spec.image.digest +
                                            " has neither Entrypoint nor Cmd: nothing to run");
  }
  if (spec.image.layer_dirs.empty()) {
    return Error(Errc::InvalidArgument,
                 "image " + spec.image.repository + "@" + spec.image.digest + " has no layers");
  }
  std::string bundle = st.instances_dir + "/" + id;
  if (st.find(id) || exists(st.runc_root + "/" + id)) {
    return Error(Errc::AlreadyExists, "instance " + id + " exists");
  }
  if (::mkdir(bundle.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return Error(Errc::AlreadyExists,
                   "instance " + id + " exists (bundle " + bundle + "): stop it first");
    }
    return Error(Errc::Internal, "mkdir " + bundle + ": " + std::strerror(errno));
  }
  auto fail = [&](Error e) -> Error {
    (void)st.teardown(id);
    logger()->warn("instance start failed id={} error=\"{}\"", id, e.message());
    return std::move(e).with_context("start instance " + id);
  };
  for (const char* sub : {"/upper", "/work", "/rootfs"}) {
    if (::mkdir((bundle + sub).c_str(), 0755) != 0) {
      return fail(Error(Errc::Internal, "mkdir " + bundle + sub + ": " + std::strerror(errno)));
    }
  }
  if (st.opts.userns) {
    // The mapped root must reach rootfs/ and the bind-mounted files in the bundle, and own
    // the upper dir (the overlay's root directory) to write in it; the read-only layers stay
    // readable to it as "other".
    if (::chmod(bundle.c_str(), 0711) != 0 ||
        ::chown((bundle + "/upper").c_str(), kUsernsHostBase, kUsernsHostBase) != 0) {
      return fail(
          Error(Errc::Internal, "userns: chmod/chown in " + bundle + ": " + std::strerror(errno)));
    }
  }
  if (auto s = mount_overlay(spec.image.layer_dirs, bundle + "/upper", bundle + "/work",
                             bundle + "/rootfs");
      !s) {
    return fail(std::move(s).error());
  }
  auto user = detail::resolve_user(bundle + "/rootfs", spec.image.config.user);
  if (!user) {
    return fail(std::move(user).error());
  }

  detail::BundleParams p;
  p.id = id;
  p.args = std::move(args);
  p.env = detail::merge_env(spec.image.config.env, spec.env, id, user->home);
  p.cwd = spec.image.config.working_dir.empty() ? "/" : spec.image.config.working_dir;
  p.user = *user;
  p.cpus = spec.cpus;
  p.memory_bytes = spec.memory_bytes;
  p.confinement = spec.confinement;
  p.userns = st.opts.userns;
  p.hosts_file = bundle + "/hosts";
  p.hostname_file = bundle + "/hostname";
  p.resolv_file = bundle + "/resolv.conf";
  p.cgroups_path = "/berth/" + id;
  // 65536 open files, or what berthd itself may have when that is less: raising a hard limit
  // needs CAP_SYS_RESOURCE, which a berthd in a user namespace lacks.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max < p.nofile) {
    p.nofile = nofile.rlim_max;
  }
  // Instances have loopback networking only: there is no name server to reach.
  Status w = write_bundle_files(bundle, id, p, "# berth instances have loopback networking only\n");
  if (!w) {
    return fail(std::move(w).error());
  }

  // runc run -d: the container inherits our pipes as its stdout and stderr, and runc prints
  // its own errors on the same stderr. Read both until runc exits, then hand them to the
  // io_context.
  auto pipes = detail::make_output_pipes();
  if (!pipes) {
    return fail(std::move(pipes).error());
  }
  auto& [out_r, out_w, err_r, err_w] = *pipes;
  auto argv = st.runc({"run", "-d", "--bundle", bundle, "--pid-file", bundle + "/pid", id});
  auto runc_pid = detail::spawn(argv, out_w.get(), err_w.get());
  if (!runc_pid) {
    return fail(std::move(runc_pid).error());
  }
  out_w.reset();
  err_w.reset();
  Fd runc_fd(detail::pidfd_open(*runc_pid));
  if (!runc_fd) {
    // Cannot watch runc while reading its output: let it finish first (it only waits for the
    // container to start; the pipes have room for what it prints).
    siginfo_t si{};
    while (::waitid(P_PID, static_cast<id_t>(*runc_pid), &si, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR) {
    }
  }
  detail::LineSplitter out_split, err_split;
  std::string err_text;
  auto out_emit = [&](std::string_view l) {
    if (spec.log) {
      spec.log->write(id, "stdout", l);
    }
  };
  auto err_emit = [&](std::string_view l) {
    if (spec.log) {
      spec.log->write(id, "stderr", l);
    }
    if (err_text.size() < kMaxStartErr) {
      err_text += (err_text.empty() ? "" : "\n") + std::string(l.substr(0, kMaxStartErr));
    }
  };
  bool out_eof = false, err_eof = false;
  auto pump = [&](Fd& fd, detail::LineSplitter& sp, const detail::LineSplitter::Emit& emit,
                  bool& eof) {
    char buf[8192];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      sp.feed(std::string_view(buf, static_cast<size_t>(n)), emit);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      eof = true;
    }
  };
  for (;;) {
    if (!runc_fd) {
      break;
    }
    pollfd fds[3] = {{out_eof ? -1 : out_r.get(), POLLIN, 0},
                     {err_eof ? -1 : err_r.get(), POLLIN, 0},
                     {runc_fd.get(), POLLIN, 0}};
    int n = ::poll(fds, 3, -1);
    if (n < 0 && errno != EINTR) {
      break;
    }
    if (n <= 0) {
      continue;
    }
    if (fds[0].revents) {
      pump(out_r, out_split, out_emit, out_eof);
    }
    if (fds[1].revents) {
      pump(err_r, err_split, err_emit, err_eof);
    }
    if (fds[2].revents) {
      break;
    }
  }
  int status = 0;
  while (::waitpid(*runc_pid, &status, 0) < 0 && errno == EINTR) {
  }
  runc_fd.reset();
  // Whatever is already buffered; the rest is read on the io_context.
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  for (int i = 0; i < 64 && !out_eof; ++i) {
    bool before = out_eof;
    pump(out_r, out_split, out_emit, out_eof);
    if (errno == EAGAIN && before == out_eof) {
      break;
    }
  }
  for (int i = 0; i < 64 && !err_eof; ++i) {
    bool before = err_eof;
    pump(err_r, err_split, err_emit, err_eof);
    if (errno == EAGAIN && before == err_eof) {
      break;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    err_split.finish(err_emit);
    detail::ProcResult pr;
    pr.status = status;
    return fail(Error(Errc::Internal,
                      st.opts.oci_runtime + " run failed (" + pr.describe() + "): " + err_text));
  }
  auto pid_text = fs::read_file(bundle + "/pid");
  int pid = 0;
  if (pid_text) {
    pid = std::atoi(pid_text->c_str());
  }
  Fd pidfd(pid > 0 ? detail::pidfd_open(pid) : -1);
  if (!pidfd) {
    return fail(Error(Errc::Internal, "no process for instance (pid file \"" +
                                          pid_text.value_or("") + "\"): " + std::strerror(errno)));
  }
  auto inst = std::make_shared<Instance>();
  inst->id = id;
  inst->bundle = bundle;
  inst->pid = pid;
  inst->stop_signal = parse_signal(spec.image.config.stop_signal);
  Fd watch_fd(::fcntl(pidfd.get(), F_DUPFD_CLOEXEC, 3));
  inst->pidfd = std::move(pidfd);

  InstanceInfo info;
  info.id = id;
  info.pid = pid;
  // A process that already exited has no namespace to open: netns stays null then.
  if (auto ns = NetNs::of_pid(pid)) {
    info.netns = *ns;
  }
  {
    std::lock_guard<std::mutex> g(st.mu);
    st.instances[id] = inst;
  }

  // Readers and the exit watcher live on one strand per instance.
  auto strand = asio::make_strand(*st.ioc);
  std::shared_ptr<PipeReader> readers[2];
  Fd* fds[2] = {&out_r, &err_r};
  detail::LineSplitter* splits[2] = {&out_split, &err_split};
  bool eofs[2] = {out_eof, err_eof};
  const char* names[2] = {"stdout", "stderr"};
  for (int i = 0; i < 2; ++i) {
    if (eofs[i]) {
      if (i == 0) {
        out_split.finish(out_emit);
      } else {
        err_split.finish(err_emit);
      }
      continue;
    }
    readers[i] = std::make_shared<PipeReader>(strand, fds[i]->release());
    readers[i]->split = std::move(*splits[i]);
    readers[i]->sink = spec.log;
    readers[i]->id = id;
    readers[i]->stream = names[i];
  }
  auto watcher = std::make_shared<ExitWatcher>(strand, watch_fd.release());
  watcher->inst = inst;
  watcher->state = state_;
  asio::post(strand, [r0 = readers[0], r1 = readers[1], watcher] {
    if (r0) {
      r0->start();
    }
    if (r1) {
      r1->start();
    }
    watcher->arm();
  });
  logger()->info("instance started id={} pid={} image={}@{}", id, pid, spec.image.repository,
                 spec.image.digest);
  return info;
}

namespace {

// Whether process pid has a handler for sig. An instance's process is its namespace's init,
// which the kernel shields from signals it has no handler for: a SIGTERM to a shell or a
// busybox httpd running as pid 1 does nothing, so waiting out the grace period is pointless.
bool catches_signal(pid_t pid, int sig) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigCgt:", 0) == 0) {
      unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
      return (mask >> (sig - 1)) & 1ULL;
    }
  }
  return true;  // unknown: give it the grace period
}

}  // namespace

Status Runtime::stop(const std::string& id, std::chrono::milliseconds grace) {
  State& st = *state_;
  if (!valid_id(id)) {
    return Error(Errc::InvalidArgument, "instance id \"" + id + "\" must be [a-z0-9-]{1,64}");
  }
  auto inst = st.find(id);
  Fd own_pidfd;
  int pidfd = -1;
  int sig = SIGTERM;
  pid_t pid = 0;
  if (inst) {
    inst->stopping = true;
    pidfd = inst->pidfd.get();
    sig = inst->stop_signal;
    pid = inst->pid;
  } else if (exists(st.runc_root + "/" + id)) {
    // Left over from an earlier berthd: find its process through runc's state.
    auto r = detail::run_process(st.runc({"state", id}));
    if (r && r->ok()) {
      auto j = parse_json(r->out, "runc state");
      if (j && j->is_object() && j->value("status", "") == "running") {
        pid = j->value("pid", 0);
        if (pid > 0) {
          own_pidfd.reset(detail::pidfd_open(pid));
          pidfd = own_pidfd.get();
        }
      }
    }
  }
  if (pidfd >= 0 && !detail::wait_pidfd(pidfd, 0)) {
    if (pid > 0 && sig != SIGKILL && !catches_signal(pid, sig)) {
      grace = std::chrono::milliseconds(0);  // it would ignore the signal: kill at once
    }
    detail::pidfd_send_signal(pidfd, sig);
    if (!detail::wait_pidfd(pidfd, static_cast<int>(grace.count()))) {
      if (grace.count() > 0) {
        logger()->info("instance did not stop in time, killing id={} grace_ms={}", id,
                       grace.count());
      }
      detail::pidfd_send_signal(pidfd, SIGKILL);
      if (!detail::wait_pidfd(pidfd, 10000)) {
        logger()->warn("instance survived SIGKILL for 10s id={}", id);
      }
    }
  }
  Status s = st.teardown(id);
  {
    std::lock_guard<std::mutex> g(st.mu);
    auto it = st.instances.find(id);
    if (it != st.instances.end() && it->second == inst) {
      st.instances.erase(it);
    }
  }
  if (s) {
    logger()->info("instance stopped id={}", id);
  }
  return s;
}

Result<std::vector<std::string>> Runtime::list() {
  std::set<std::string> ids;
  for (const auto& dir : {state_->runc_root, state_->instances_dir}) {
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(dir, ec)) {
      std::string n = e.path().filename().string();
      if (valid_id(n) && e.is_directory()) {
        ids.insert(n);
      }
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Error(Errc::Internal, "list " + dir + ": " + ec.message());
    }
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

}  // namespace berth::runtime