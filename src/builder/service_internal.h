// SPDX-License-Identifier: Apache-2.0
// Private to the build service (service*.cc): its helpers, a build's log, the flags of a
// running build, and Service::Impl, whose code is split by responsibility:
//   service.cc        the public Service methods (projects, builds, webhooks, git pushes)
//   service_queue.cc  projects over the store and the persistent queue (workers, watchdog)
//   service_run.cc    one build: SOURCE, BUILD (buildspec, Dockerfile), PUSH
//   service_util.cc   the helpers declared here
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "builder/build.h"
#include "builder/executor.h"
#include "builder/git.h"
#include "builder/service_buildspec.h"
#include "builder/service_project.h"
#include "builder/webhook.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/secret_box.h"
#include "common/sha256.h"
#include "iam/iam.h"
#include "oci/oci.h"
#include "registry/registry.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace berth::builder {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kQueued = "QUEUED";
constexpr const char* kInProgress = "IN_PROGRESS";
constexpr const char* kSucceeded = "SUCCEEDED";
constexpr const char* kFailed = "FAILED";
constexpr const char* kStopped = "STOPPED";

// How long stop_build / delete_project wait for a killed build to wind down.
constexpr auto kStopWait = std::chrono::seconds(60);

int64_t now_unix();

// "2026-11-27T12:00:01.123Z"
std::string iso_now();

// "1h", "90m", "45s": how the timeout is named in the FAILED reason.
std::string duration_text(std::chrono::seconds d);

std::string seconds_text(int64_t ms);

std::string short_commit(const std::string& c);

bool is_glob(const std::string& branch);

// Appends timestamped, masked lines to a build's log. Thread-safe: run_task output arrives on
// a reader thread while the worker logs too.
class BuildLog {
 public:
  BuildLog(const std::string& path, std::vector<std::string> secrets)
      : secrets_(std::move(secrets)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  ~BuildLog() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  BuildLog(const BuildLog&) = delete;
  BuildLog& operator=(const BuildLog&) = delete;

  void add_secrets(const std::vector<std::string>& more) {
    std::lock_guard lock(mu_);
    for (const auto& s : more) {
      if (!s.empty()) {
        secrets_.push_back(s);
      }
    }
  }
  std::string mask(std::string_view text) {
    std::lock_guard lock(mu_);
    return mask_secrets(text, secrets_);
  }
  void line(std::string_view text) {
    std::lock_guard lock(mu_);
    size_t start = 0;
    do {
      size_t end = text.find('\n', start);
      std::string_view one = text.substr(start, end == std::string_view::npos ? end : end - start);
      if (!one.empty() && one.back() == '\r') {
        one.remove_suffix(1);
      }
      write_locked(one);
      start = end == std::string_view::npos ? text.size() + 1 : end + 1;
    } while (start <= text.size());
  }

 private:
  void write_locked(std::string_view one) {
    if (fd_ < 0) {
      return;
    }
    std::string out = iso_now();
    out += ' ';
    out += mask_secrets(one, secrets_);
    out += '\n';
    const char* p = out.data();
    size_t left = out.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  std::mutex mu_;
  int fd_ = -1;
  std::vector<std::string> secrets_;
};

// Kills git children working on one of dirs (the checkout, or the object cache that
// fetch_commit names with --git-dir / --work-tree; each runs in its own process group) so a
// stopped build does not wait for a slow fetch. One pass over /proc for all of them.
void kill_git_children(const std::vector<std::string>& dirs);

// One running build's shared flags. cancel is read by the executor and run_task; the rest
// is guarded by Impl::mu.
struct Running {
  int64_t id = 0;
  std::string project;
  std::atomic<bool> cancel{false};
  bool user_stop = false;
  bool timed_out = false;
  Clock::time_point deadline;
  std::string src_dir;
  std::string git_cache;  // the object cache the build fetches into (under mu)
  std::vector<std::string> base_digests;  // base images resolved so far (under mu)
};

Json phase_ms_json(const std::map<std::string, int64_t>& m);

Json steps_json(const std::vector<StepTiming>& steps);

BuildView to_view(const store::BuildRecord& r);

// "web/base:1" -> {"web/base", "1"}; "web/base@sha256:..." -> {"web/base", "sha256:..."};
// "web/base" -> {"web/base", "latest"}.
std::pair<std::string, std::string> split_reference(const std::string& ref);

// A ref given to start_build: a branch or tag name, or a full ref. Refused when git could
// read it as an option or a refspec.
Status validate_ref(const std::string& ref);

// A project file's path inside the checkout, refusing symlinks that lead out of it.
Result<std::string> inside(const std::string& root, const std::string& rel,
                           const std::string& field);

struct Service::Impl {
  ServiceDeps deps;
  std::shared_ptr<spdlog::logger> log = log::get("build");

  std::mutex mu;
  std::condition_variable cv;       // the queue changed, or stopping
  std::condition_variable done_cv;  // a running build finished
  std::condition_variable wd_cv;    // the watchdog: a build started, or stopping
  bool started = false;
  bool stopping = false;
  std::vector<std::thread> workers;
  std::thread watchdog;
  std::map<int64_t, std::shared_ptr<Running>> running;
  std::set<std::string> deleting;

  explicit Impl(ServiceDeps d) : deps(std::move(d)) {
    deps.max_concurrent = std::clamp(deps.max_concurrent, 1, 64);
    if (deps.timeout.count() < 1) {
      deps.timeout = std::chrono::seconds(3600);
    }
  }

  // ---- paths ----
  std::string git_root() const { return cat(deps.data_dir, "/git"); }
  std::string bare_repo(const std::string& project) const {
    return cat(git_root(), "/", project, ".git");
  }
  static std::string git_path(const std::string& project) { return cat("/git/", project, ".git"); }
  std::string build_root() const { return cat(deps.data_dir, "/build"); }
  std::string log_file(int64_t id) const {
    return cat(build_root(), "/logs/", std::to_string(id), ".log");
  }
  std::string work_dir(int64_t id) const { return cat(build_root(), "/work/", std::to_string(id)); }
  // Objects fetched for a project, kept between its builds (one per remote URL: the project's
  // git URL and berth's own remote), so an unchanged or slightly changed commit is not
  // fetched whole again. Builds of one project never run at once, so one fetch at a time.
  std::string git_cache_root(const std::string& project) const {
    return cat(build_root(), "/git-cache/", project);
  }
  std::string git_cache(const std::string& project, const std::string& url) const {
    return cat(git_cache_root(project), "/", Sha256::hex_of(url).substr(0, 16), ".git");
  }

  void append_log(int64_t id, const std::string& text) {
    // The service may queue before start() made the directories.
    if (auto st = fs::make_dirs(cat(build_root(), "/logs")); !st) {
      log->warn("build log dir error={}", st.error().message());
    }
    BuildLog l(log_file(id), {});
    l.line(text);
  }

  // ---- projects ----
  Result<ProjectSpec> load_spec(const store::BuildProjectRecord& rec);
  Result<ProjectView> to_project_view(const store::BuildProjectRecord& rec);

  // ---- the queue ----

  // Adds a QUEUED build and supersedes older queued builds of the same branch. Under mu.
  Result<store::BuildRecord> queue_locked(const std::string& project, const ProjectSpec& spec,
                                          const std::string& commit, const std::string& branch,
                                          const std::string& trigger, const std::string& source);

  Result<store::BuildRecord> queue(const std::string& project, const ProjectSpec& spec,
                                   const std::string& commit, const std::string& branch,
                                   const std::string& trigger, const std::string& source);

  void cancel_locked(Running& r);

  // Takes the oldest QUEUED build whose project is not building already. Under mu.
  std::optional<std::pair<store::BuildRecord, std::shared_ptr<Running>>> claim_locked();

  void worker_loop();

  void watchdog_loop();

  // ---- one build ----

  static constexpr const char* kSystemBuild = "system:build";
  // Who a build pulls and pushes as: the project's role, else its owner (the principal that
  // created or last changed it), else berth itself (projects from before owners, IAM off).
  static std::string build_principal(const ProjectSpec& spec);

  Result<BaseImage> resolve_base(const ProjectSpec& spec, const std::string& reference);
  /// resolve_base, noting the digest as in use by the running build r.
  Result<BaseImage> resolve_base_for(const ProjectSpec& spec, Running& r,
                                     const std::string& reference);

  Status run_buildspec(const store::BuildRecord& b, const ProjectSpec& spec, Running& r,
                       BuildLog& blog, const std::string& src);

  // SOURCE, BUILD, PUSH. Updates b (commit, phase, tags, digest) and the timings as it goes.
  Status execute(store::BuildRecord& b, const ProjectSpec& spec, Running& r, BuildLog& blog,
                 std::map<std::string, int64_t>& phase_ms, std::vector<StepTiming>& steps);

  void run(store::BuildRecord b, Running& r);
};

}  // namespace berth::builder
