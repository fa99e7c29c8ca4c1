// SPDX-License-Identifier: Apache-2.0
// The build service: projects over the store, a persistent queue drained by max_concurrent
// worker threads, and the build itself (SOURCE: fetch the commit; BUILD: buildspec.yml, then
// the Dockerfile executor; PUSH: Registry::push_local with the project's role).
//
// Threads: API calls arrive on the blocking pool; each worker runs one build at a time,
// entirely on its own thread (git children, runc tasks, layer writing and the push all
// block). A watchdog thread enforces the per-build timeout. Shared state (which builds run,
// their cancel flags, stopping) is under one mutex; claiming the oldest QUEUED build and
// marking it IN_PROGRESS in the store happen under that mutex, so no build is claimed twice.
// Builds of one project run one at a time, in queue order, so tags move forward in order.
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

namespace {

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

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// "2026-11-27T12:00:01.123Z"
std::string iso_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

// "1h", "90m", "45s": how the timeout is named in the FAILED reason.
std::string duration_text(std::chrono::seconds d) {
  int64_t s = d.count();
  if (s > 0 && s % 3600 == 0) {
    return cat(std::to_string(s / 3600), "h");
  }
  if (s > 0 && s % 60 == 0) {
    return cat(std::to_string(s / 60), "m");
  }
  return cat(std::to_string(s), "s");
}

std::string seconds_text(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string short_commit(const std::string& c) { return c.substr(0, 7); }

bool is_glob(const std::string& branch) { return branch.find_first_of("*?") != std::string::npos; }

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
void kill_git_children(const std::vector<std::string>& dirs) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) {
    return;
  }
  pid_t self_group = ::getpgrp();
  while (dirent* e = ::readdir(d)) {
    std::string pid_s = e->d_name;
    if (pid_s.empty() || pid_s.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream cmdline(cat("/proc/", pid_s, "/cmdline"), std::ios::binary);
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    bool git = args.rfind("git", 0) == 0 || args.find("/git") != std::string::npos;
    bool mentions = false;
    size_t start = 0;
    while (start < args.size()) {
      size_t end = args.find('\0', start);
      if (end == std::string::npos) {
        end = args.size();
      }
      for (const std::string& dir : dirs) {
        if (!dir.empty() && args.compare(start, end - start, dir) == 0) {
          mentions = true;
        }
      }
      if (mentions) {
        break;
      }
      start = end + 1;
    }
    if (!git || !mentions) {
      continue;
    }
    pid_t pid = static_cast<pid_t>(std::stol(pid_s));
    pid_t group = ::getpgid(pid);
    if (group > 1 && group != self_group) {
      ::kill(-group, SIGKILL);
    } else {
      ::kill(pid, SIGKILL);
    }
  }
  ::closedir(d);
}

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
};

Json phase_ms_json(const std::map<std::string, int64_t>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) {
    j[k] = v;
  }
  return j;
}

Json steps_json(const std::vector<StepTiming>& steps) {
  Json a = Json::array();
  for (const auto& s : steps) {
    a.push_back(Json{{"line", s.line}, {"text", s.text}, {"cached", s.cached}, {"ms", s.ms}});
  }
  return a;
}

BuildView to_view(const store::BuildRecord& r) {
  BuildView v;
  v.id = r.id;
  v.project = r.project;
  v.status = r.status;
  v.phase = r.phase;
  v.reason = r.reason;
  v.commit = r.commit_id;
  v.branch = r.branch;
  v.trigger = r.trigger;
  v.source = r.source;
  v.image = r.image;
  v.tags = r.tags;
  v.image_digest = r.digest;
  Json pm = Json::parse(r.phase_ms.empty() ? "{}" : r.phase_ms, nullptr, false);
  if (pm.is_object()) {
    for (const auto& [k, val] : pm.items()) {
      if (val.is_number_integer()) {
        v.phase_ms[k] = val.get<int64_t>();
      }
    }
  }
  Json st = Json::parse(r.steps.empty() ? "[]" : r.steps, nullptr, false);
  if (st.is_array()) {
    for (const auto& s : st) {
      if (!s.is_object()) {
        continue;
      }
      BuildStep step;
      step.line = s.value("line", 0);
      step.text = s.value("text", std::string());
      step.cached = s.value("cached", false);
      step.ms = s.value("ms", int64_t{0});
      v.steps.push_back(std::move(step));
    }
  }
  v.created_at = r.created_at;
  v.started_at = r.started_at;
  v.finished_at = r.finished_at;
  return v;
}

// "127.0.0.1:5000/web/base:1" -> "web/base:1": berth's registry is the only one, so a host
// in front (a first component with '.' or ':', or localhost) is dropped.
std::string strip_registry_host(const std::string& ref) {
  auto slash = ref.find('/');
  if (slash == std::string::npos) {
    return ref;
  }
  std::string first = ref.substr(0, slash);
  if (first.find_first_of(".:") != std::string::npos || first == "localhost") {
    return ref.substr(slash + 1);
  }
  return ref;
}

// "web/base:1" -> {"web/base", "1"}; "web/base@sha256:..." -> {"web/base", "sha256:..."};
// "web/base" -> {"web/base", "latest"}.
std::pair<std::string, std::string> split_reference(const std::string& ref) {
  auto at = ref.find('@');
  if (at != std::string::npos) {
    return {ref.substr(0, at), ref.substr(at + 1)};
  }
  auto colon = ref.rfind(':');
  auto slash = ref.rfind('/');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return {ref, "latest"};
  }
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

// A ref given to start_build: a branch or tag name, or a full ref. Refused when git could
// read it as an option or a refspec.
Status validate_ref(const std::string& ref) {
  bool bad = ref.empty() || ref.size() > 255 || ref.front() == '-' ||
             ref.find_first_of(" \t\n\r~^:\\[*?") != std::string::npos ||
             ref.find("..") != std::string::npos;
  if (bad) {
    return Error(Errc::InvalidArgument, cat("ref: '", ref, "' is not a branch, tag or commit"));
  }
  return ok();
}

// A project file's path inside the checkout, refusing symlinks that lead out of it.
Result<std::string> inside(const std::string& root, const std::string& rel,
                           const std::string& field) {
  std::error_code ec;
  stdfs::path base = stdfs::weakly_canonical(root, ec);
  stdfs::path p = stdfs::weakly_canonical(stdfs::path(root) / rel, ec);
  if (ec) {
    return Error(Errc::InvalidArgument, cat(field, ": ", rel, ": ", ec.message()));
  }
  std::string b = base.string();
  std::string s = p.string();
  if (s != b && s.rfind(b + "/", 0) != 0) {
    return Error(Errc::InvalidArgument,
                 cat(field, ": ", rel, " leads outside the repository (a symlink?)"));
  }
  return s;
}

}  // namespace

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
  Result<ProjectSpec> load_spec(const store::BuildProjectRecord& rec) {
    return project_from_store(rec.spec, *deps.box);
  }
  Result<ProjectView> to_project_view(const store::BuildProjectRecord& rec) {
    BERTH_ASSIGN_OR_RETURN(auto spec, load_spec(rec));
    ProjectView v;
    v.spec = std::move(spec);
    v.webhook_path = cat("/hooks/github/", rec.name);
    v.git_path = git_path(rec.name);
    v.created_at = rec.created_at;
    v.updated_at = rec.updated_at;
    return v;
  }

  // ---- the queue ----

  // Adds a QUEUED build and supersedes older queued builds of the same branch. Under mu.
  Result<store::BuildRecord> queue_locked(const std::string& project, const ProjectSpec& spec,
                                          const std::string& commit, const std::string& branch,
                                          const std::string& trigger, const std::string& source) {
    store::BuildRecord b;
    b.project = project;
    b.status = kQueued;
    b.commit_id = commit;
    b.branch = branch;
    b.trigger = trigger;
    b.source = source;
    b.image = cat(spec.repository, ":", spec.tag);
    b.created_at = now_unix();
    BERTH_ASSIGN_OR_RETURN(b.id, deps.store.add_build(b));
    std::string what = commit.empty() ? cat("branch ", branch) : cat("commit ", commit);
    append_log(b.id, cat("build ", std::to_string(b.id), " of ", project, " queued (", trigger,
                         "): ", what));
    if (!branch.empty()) {
      auto queued = deps.store.list_builds_by_status(kQueued);
      if (queued) {
        for (auto& old : *queued) {
          if (old.id == b.id || old.project != project || old.branch != branch) {
            continue;
          }
          old.status = kStopped;
          old.reason = cat("superseded by build ", std::to_string(b.id));
          old.finished_at = now_unix();
          if (auto st = deps.store.update_build(old); !st) {
            log->warn("supersede failed build={} error={}", old.id, st.error().message());
            continue;
          }
          append_log(old.id, cat("build ", std::to_string(old.id), " STOPPED: ", old.reason));
        }
      }
    }
    log->info("build queued id={} project={} trigger=\"{}\"", b.id, project, trigger);
    cv.notify_all();
    return b;
  }

  Result<store::BuildRecord> queue(const std::string& project, const ProjectSpec& spec,
                                   const std::string& commit, const std::string& branch,
                                   const std::string& trigger, const std::string& source) {
    std::lock_guard lock(mu);
    return queue_locked(project, spec, commit, branch, trigger, source);
  }

  void cancel_locked(Running& r) {
    r.cancel = true;
    kill_git_children({r.src_dir, r.git_cache});
  }

  // Takes the oldest QUEUED build whose project is not building already. Under mu.
  std::optional<std::pair<store::BuildRecord, std::shared_ptr<Running>>> claim_locked() {
    auto queued = deps.store.list_builds_by_status(kQueued);
    if (!queued) {
      log->error("queue read failed error={}", queued.error().message());
      return std::nullopt;
    }
    std::set<std::string> busy;
    for (const auto& [id, r] : running) {
      busy.insert(r->project);
    }
    for (auto& b : *queued) {
      if (busy.count(b.project) != 0 || deleting.count(b.project) != 0) {
        continue;
      }
      b.status = kInProgress;
      b.phase = "SOURCE";
      b.started_at = now_unix();
      b.reason.clear();
      if (auto st = deps.store.update_build(b); !st) {
        log->warn("claim failed build={} error={}", b.id, st.error().message());
        continue;
      }
      auto r = std::make_shared<Running>();
      r->id = b.id;
      r->project = b.project;
      r->deadline = Clock::now() + deps.timeout;
      r->src_dir = cat(work_dir(b.id), "/src");
      running[b.id] = r;
      wd_cv.notify_all();
      return std::make_pair(std::move(b), r);
    }
    return std::nullopt;
  }

  void worker_loop() {
    std::unique_lock lk(mu);
    while (!stopping) {
      auto claimed = claim_locked();
      if (!claimed) {
        // Notified on every queue change; the timeout only covers a failed store read.
        cv.wait_for(lk, std::chrono::seconds(5));
        continue;
      }
      lk.unlock();
      run(std::move(claimed->first), *claimed->second);
      lk.lock();
      running.erase(claimed->second->id);
      done_cv.notify_all();
      cv.notify_all();  // the project is free for its next build
    }
  }

  void watchdog_loop() {
    std::unique_lock lk(mu);
    while (!stopping) {
      auto now = Clock::now();
      auto next = now + std::chrono::seconds(60);
      for (auto& [id, r] : running) {
        if (r->cancel) {
          continue;
        }
        if (now >= r->deadline) {
          r->timed_out = true;
          cancel_locked(*r);
        } else {
          next = std::min(next, r->deadline);
        }
      }
      wd_cv.wait_until(lk, next);
    }
  }

  // ---- one build ----

  static constexpr const char* kSystemBuild = "system:build";
  // Who a build pulls and pushes as: the project's role, else its owner (the principal that
  // created or last changed it), else berth itself (projects from before owners, IAM off).
  static std::string build_principal(const ProjectSpec& spec) {
    if (!spec.role.empty()) {
      return cat("role/", spec.role);
    }
    if (spec.owner.find('/') != std::string::npos) {
      return spec.owner;
    }
    return kSystemBuild;
  }

  Result<BaseImage> resolve_base(const ProjectSpec& spec, const std::string& reference) {
    std::string ref = strip_registry_host(reference);
    auto [repo, tag_or_digest] = split_reference(ref);
    std::string who = build_principal(spec);
    if (who != kSystemBuild && deps.authorizer != nullptr) {
      iam::Request req{who, "registry:Pull", cat("repository/", repo)};
      if (!deps.authorizer->decide(req).allowed) {
        std::string shown = who;
        shown[shown.find('/')] = ' ';  // "role builder-web", as push_local says it
        return Error(Errc::PermissionDenied,
                     cat("AccessDenied: ", shown, " may not registry:Pull on repository ", repo));
      }
    }
    auto missing = [&] {
      return Error(Errc::NotFound, cat("base image ", reference,
                                       " is not in berth's registry: push it there first"));
    };
    auto rec = deps.store.get_repository(repo);
    if (!rec) {
      return missing();
    }
    auto m = deps.store.get_manifest(rec->id, tag_or_digest);
    if (!m) {
      return missing();
    }
    if (deps.preparer == nullptr) {
      return Error(Errc::FailedPrecondition, deps.unavailable_reason.empty()
                                                 ? std::string("builds need the container runtime")
                                                 : deps.unavailable_reason);
    }
    BaseImage base;
    base.reference = reference;
    base.repository = repo;
    BERTH_ASSIGN_OR_RETURN(base.prepared, deps.preparer->prepare(repo, m->digest));
    base.digest = base.prepared.digest;
    BERTH_ASSIGN_OR_RETURN(auto image_manifest, deps.store.get_manifest(rec->id, base.digest));
    BERTH_ASSIGN_OR_RETURN(auto parsed,
                           oci::parse_manifest(image_manifest.content, image_manifest.media_type));
    BERTH_ASSIGN_OR_RETURN(auto config_path, deps.registry.blob_file(base.prepared.config_digest));
    BERTH_ASSIGN_OR_RETURN(base.config_json, fs::read_file(config_path));
    for (const auto& d : parsed.layers) {
      registry::LocalBlob blob;
      blob.digest = d.digest.str();
      BERTH_ASSIGN_OR_RETURN(blob.path, deps.registry.blob_file(blob.digest));
      blob.size = d.size;
      blob.media_type = d.media_type;
      base.layer_blobs.push_back(std::move(blob));
    }
    return base;
  }

  Status run_buildspec(const store::BuildRecord& b, const ProjectSpec& spec, Running& r,
                       BuildLog& blog, const std::string& src) {
    BERTH_ASSIGN_OR_RETURN(
        auto text, fs::read_regular_file(cat(src, "/buildspec.yml"), 1 << 20, "buildspec.yml"));
    BERTH_ASSIGN_OR_RETURN(auto bs, parse_buildspec(text));
    if (deps.builder_image.empty()) {
      return Error(Errc::FailedPrecondition, "buildspec.yml needs build.builder_image to be set");
    }
    blog.line(cat("buildspec.yml: running in ", deps.builder_image));
    auto base = resolve_base(spec, deps.builder_image);
    if (!base) {
      return std::move(base).error().with_context("buildspec.yml: build.builder_image");
    }
    if (deps.runtime == nullptr) {
      return Error(Errc::FailedPrecondition, deps.unavailable_reason);
    }
    std::vector<std::string> env = base->prepared.config.env;
    for (const auto& [k, v] : bs.variables) {
      std::string prefix = cat(k, "=");
      env.erase(std::remove_if(env.begin(), env.end(),
                               [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
                env.end());
      env.push_back(cat(k, "=", v));
    }
    std::vector<std::string> lowers = base->prepared.layer_dirs;
    std::string dir = cat(work_dir(b.id), "/buildspec");
    int n = 0;
    for (const auto& phase : bs.phases) {
      blog.line(cat("buildspec.yml: phase ", phase.name));
      for (const auto& command : phase.commands) {
        if (r.cancel) {
          return Error(Errc::Cancelled, "build cancelled");
        }
        ++n;
        std::string upper = cat(dir, "/", std::to_string(n), "/upper");
        std::string work = cat(dir, "/", std::to_string(n), "/work");
        BERTH_TRY(fs::make_dirs(upper));
        BERTH_TRY(fs::make_dirs(work));
        blog.line(cat("$ ", command));
        runtime::TaskSpec t;
        t.id = cat("build-", std::to_string(b.id), "-spec-", std::to_string(n));
        t.lower_dirs = lowers;
        t.upper_dir = upper;
        t.work_dir = work;
        t.args = {"sh", "-c", command};
        t.env = env;
        t.cwd = "/src";
        t.host_network = true;
        t.binds.push_back(runtime::TaskSpec::Bind{src, "/src", false});
        t.output = [&blog](std::string_view, std::string_view line) { blog.line(line); };
        auto left = std::chrono::duration_cast<milliseconds>(r.deadline - Clock::now());
        t.timeout = std::max(left, milliseconds(1));
        t.cancel = &r.cancel;
        auto exit = deps.runtime->run_task(t);
        if (!exit) {
          return std::move(exit).error().with_context(
              cat("buildspec.yml: phases.", phase.name, ": `", command, "`"));
        }
        if (exit->exit_code != 0 || exit->signal != 0) {
          return Error(Errc::FailedPrecondition, cat("buildspec.yml: phases.", phase.name, ": `",
                                                     command, "` ", exit->str()));
        }
        // The next command sees this one's changes to the builder's filesystem too.
        lowers.push_back(upper);
      }
    }
    return ok();
  }

  // SOURCE, BUILD, PUSH. Updates b (commit, phase, tags, digest) and the timings as it goes.
  Status execute(store::BuildRecord& b, const ProjectSpec& spec, Running& r, BuildLog& blog,
                 std::map<std::string, int64_t>& phase_ms, std::vector<StepTiming>& steps) {
    auto cancelled = [&]() -> Status {
      if (r.cancel) {
        return Error(Errc::Cancelled, "build cancelled");
      }
      return ok();
    };
    auto remaining = [&] {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(r.deadline - Clock::now());
      return std::max(left, std::chrono::seconds(1));
    };
    auto enter = [&](const char* phase) {
      b.phase = phase;
      if (auto st = deps.store.update_build(b); !st) {
        log->warn("build update failed id={} error={}", b.id, st.error().message());
      }
      blog.line(cat("==> ", phase));
    };
    if (deps.runtime == nullptr) {
      return Error(Errc::FailedPrecondition,
                   deps.unavailable_reason.empty()
                       ? std::string("builds are not available: no container runtime")
                       : deps.unavailable_reason);
    }

    // SOURCE
    auto t0 = Clock::now();
    enter("SOURCE");
    std::string url;
    GitAuth auth;
    if (b.source == git_path(b.project)) {
      url = cat("file://", bare_repo(b.project));
    } else {
      url = spec.git_url;
      if (url.empty()) {
        return Error(Errc::FailedPrecondition, "the project has no git URL");
      }
      if (is_file_remote(url) && !deps.allow_file_remotes) {
        return Error(Errc::InvalidArgument,
                     "git: file:// remotes are disabled (build.allow_file_remotes)");
      }
      auth.username = spec.git_username;
      auth.password = spec.git_password;
      blog.add_secrets(auth.secrets());
    }
    std::string work = work_dir(b.id);
    std::string src = cat(work, "/src");
    std::error_code ec;
    stdfs::remove_all(work, ec);
    BERTH_TRY(fs::make_dirs(work));
    auto glog = [&blog](std::string_view line) { blog.line(line); };
    if (b.commit_id.empty()) {
      blog.line(cat("resolving ", b.branch, " at ", b.source));
      auto commit =
          resolve_ref(url, b.branch, auth, std::min(remaining(), std::chrono::seconds(60)));
      BERTH_TRY(cancelled());
      if (!commit) {
        return commit.error();
      }
      b.commit_id = *commit;
      if (auto st = deps.store.update_build(b); !st) {
        log->warn("build update failed id={} error={}", b.id, st.error().message());
      }
    }
    FetchOptions fo;
    fo.timeout = remaining();
    fo.object_cache = git_cache(b.project, url);
    {
      std::lock_guard lock(mu);
      r.git_cache = fo.object_cache;
    }
    BERTH_TRY(fs::make_dirs(git_cache_root(b.project)));
    if (!b.branch.empty() && validate_ref(b.branch)) {
      fo.fallback_ref = b.branch;
    }
    auto fetched = fetch_commit(url, b.commit_id, src, auth, glog, fo);
    BERTH_TRY(cancelled());
    if (!fetched) {
      return fetched.error();
    }
    b.commit_id = *fetched;
    phase_ms["SOURCE"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();

    // BUILD
    t0 = Clock::now();
    enter("BUILD");
    struct stat bst {};
    if (::lstat(cat(src, "/buildspec.yml").c_str(), &bst) == 0) {
      BERTH_TRY(run_buildspec(b, spec, r, blog, src));
      BERTH_TRY(cancelled());
    }
    BERTH_ASSIGN_OR_RETURN(auto context_dir, inside(src, spec.context, "context"));
    BERTH_ASSIGN_OR_RETURN(auto dockerfile, inside(src, spec.dockerfile, "dockerfile"));
    if (!stdfs::is_regular_file(dockerfile, ec)) {
      return Error(Errc::NotFound, cat("dockerfile: ", spec.dockerfile,
                                       " does not exist in commit ", short_commit(b.commit_id)));
    }
    if (!stdfs::is_directory(context_dir, ec)) {
      return Error(Errc::NotFound, cat("context: ", spec.context, " is not a directory in commit ",
                                       short_commit(b.commit_id)));
    }
    ExecutorOptions eo;
    eo.root = build_root();
    eo.runtime = deps.runtime;
    eo.preparer = deps.preparer;
    Executor executor(eo);
    BuildInput in;
    in.id = std::to_string(b.id);
    in.context_dir = context_dir;
    in.dockerfile = dockerfile;
    in.build_args = spec.build_args;
    for (const auto& [k, v] : spec.secret_build_args) {
      in.build_args[k] = v;
    }
    if (auto it = spec.build_args.find("SOURCE_DATE_EPOCH"); it != spec.build_args.end()) {
      // As BuildKit reads it: layer mtimes are clamped to it and it is the image's "created",
      // so the same commit builds to the same digest.
      in.source_date_epoch = std::stoll(it->second);
    }
    in.labels["org.opencontainers.image.revision"] = b.commit_id;
    in.labels["org.opencontainers.image.source"] = b.source;
    in.base_images = [this, &spec](const std::string& ref) { return resolve_base(spec, ref); };
    in.secrets = project_secrets(spec);
    in.log = glog;
    in.cancel = &r.cancel;
    auto built = executor.build(in);
    BERTH_TRY(cancelled());
    if (!built) {
      return built.error();
    }
    steps = built->steps;
    phase_ms["BUILD"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();

    // PUSH
    t0 = Clock::now();
    enter("PUSH");
    registry::LocalImage image;
    image.repository = spec.repository;
    image.tags = {spec.tag};
    if (short_commit(b.commit_id) != spec.tag) {
      image.tags.push_back(short_commit(b.commit_id));
    }
    image.manifest = built->manifest;
    image.media_type = built->media_type;
    std::set<std::string> seen;
    for (const auto* blob : {&built->config}) {
      seen.insert(blob->digest);
      image.blobs.push_back(*blob);
    }
    for (const auto& layer : built->layers) {
      if (seen.insert(layer.digest).second) {
        image.blobs.push_back(layer);
      }
    }
    std::string principal = build_principal(spec);
    BERTH_ASSIGN_OR_RETURN(b.digest, deps.registry.push_local(principal, image));
    b.tags = image.tags;
    std::string names;
    for (const auto& t : image.tags) {
      names += names.empty() ? "" : ", ";
      names += cat(spec.repository, ":", t);
    }
    blog.line(cat("pushed ", names, " as ", principal, ": ", b.digest));
    phase_ms["PUSH"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    return ok();
  }

  void run(store::BuildRecord b, Running& r) {
    auto t0 = Clock::now();
    std::map<std::string, int64_t> phase_ms;
    std::vector<StepTiming> steps;
    Status result = ok();
    std::vector<std::string> secrets;
    std::optional<ProjectSpec> spec;
    auto rec = deps.store.get_build_project(b.project);
    if (rec) {
      if (auto s = load_spec(*rec); s) {
        spec = std::move(*s);
        secrets = project_secrets(*spec);
      } else {
        result = s.error();
      }
      if (auto secret = deps.box->open(rec->webhook_secret); secret) {
        secrets.push_back(*secret);
      }
    } else {
      result = rec.error();
    }
    BuildLog blog(log_file(b.id), secrets);
    blog.line(cat("build ", std::to_string(b.id), " of ", b.project, " started (", b.trigger, ")"));
    if (spec) {
      result = execute(b, *spec, r, blog, phase_ms, steps);
    }
    std::error_code ec;
    stdfs::remove_all(work_dir(b.id), ec);

    bool requeue = false;
    {
      std::lock_guard lock(mu);
      if (result) {
        b.status = kSucceeded;
        b.reason.clear();
      } else if (r.timed_out) {
        b.status = kFailed;
        b.reason = cat("build timed out after ", duration_text(deps.timeout));
      } else if (r.cancel && r.user_stop) {
        b.status = kStopped;
        b.reason = "stopped by request";
      } else if (r.cancel && stopping) {
        requeue = true;
      } else {
        b.status = kFailed;
        b.reason = blog.mask(result.error().message());
      }
    }
    int64_t total = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    b.phase_ms = phase_ms_json(phase_ms).dump();
    b.steps = steps_json(steps).dump();
    if (requeue) {
      b.status = kQueued;
      b.phase.clear();
      b.started_at = 0;
      blog.line("berthd stopping; build queued again");
    } else {
      b.finished_at = now_unix();
      if (b.status == kSucceeded) {
        blog.line(cat("build ", std::to_string(b.id), " SUCCEEDED in ", seconds_text(total), ": ",
                      b.image, "@", b.digest));
      } else {
        blog.line(cat("build ", std::to_string(b.id), " ", b.status, ": ", b.reason));
      }
    }
    if (auto st = deps.store.update_build(b); !st) {
      log->warn("build update failed id={} error={}", b.id, st.error().message());
    }
    log->info("build finished id={} project={} status={} ms={}", b.id, b.project,
              requeue ? kQueued : b.status, total);
  }
};

Service::Service(ServiceDeps deps) : impl_(std::make_shared<Impl>(std::move(deps))) {}

Service::~Service() { stop(); }

Status Service::start() {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  if (s.started) {
    return ok();
  }
  BERTH_TRY(fs::make_dirs(cat(s.build_root(), "/logs")));
  BERTH_TRY(fs::make_dirs(cat(s.build_root(), "/work")));
  BERTH_TRY(fs::make_dirs(s.git_root()));
  // Nothing runs yet: checkouts left by a previous berthd are garbage.
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(cat(s.build_root(), "/work"), ec)) {
    stdfs::remove_all(e.path(), ec);
  }
  BERTH_ASSIGN_OR_RETURN(auto left, s.deps.store.list_builds_by_status(kInProgress));
  for (auto& b : left) {
    b.status = kQueued;
    b.phase.clear();
    b.started_at = 0;
    BERTH_TRY(s.deps.store.update_build(b));
    s.append_log(b.id, "berthd restarted; build queued again");
    s.log->info("build requeued after restart id={} project={}", b.id, b.project);
  }
  s.stopping = false;
  s.started = true;
  Impl* impl = impl_.get();
  for (int i = 0; i < s.deps.max_concurrent; ++i) {
    s.workers.emplace_back([impl] { impl->worker_loop(); });
  }
  s.watchdog = std::thread([impl] { impl->watchdog_loop(); });
  return ok();
}

void Service::stop() {
  auto& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (!s.started) {
      return;
    }
    s.stopping = true;
    for (auto& [id, r] : s.running) {
      s.cancel_locked(*r);
    }
    s.cv.notify_all();
    s.wd_cv.notify_all();
  }
  for (auto& w : s.workers) {
    w.join();
  }
  s.workers.clear();
  if (s.watchdog.joinable()) {
    s.watchdog.join();
  }
  std::lock_guard lock(s.mu);
  s.started = false;
  s.stopping = false;
}

Result<ProjectCreated> Service::create_project(ProjectSpec spec) {
  auto& s = *impl_;
  BERTH_TRY(validate_project_name(spec.name));
  if (spec.repository.empty()) {
    return Error(Errc::InvalidArgument, "repository: required");
  }
  std::string secret = fs::random_hex(32);
  store::BuildProjectRecord rec;
  rec.name = spec.name;
  rec.spec = project_to_store(spec, *s.deps.box);
  rec.webhook_secret = s.deps.box->seal(secret);
  rec.created_at = rec.updated_at = now_unix();
  BERTH_TRY(s.deps.store.create_build_project(rec));
  if (auto st = init_bare_repo(s.bare_repo(spec.name)); !st) {
    (void)s.deps.store.delete_build_project(spec.name);
    return std::move(st).error().with_context(cat("create git remote for ", spec.name));
  }
  s.log->info("build project created name={} repository={}", spec.name, spec.repository);
  BERTH_ASSIGN_OR_RETURN(auto view, s.to_project_view(rec));
  return ProjectCreated{std::move(view), std::move(secret)};
}

Result<ProjectView> Service::update_project(const std::string& name, ProjectSpec spec) {
  auto& s = *impl_;
  if (spec.name.empty()) {
    spec.name = name;
  }
  if (spec.name != name) {
    return Error(Errc::InvalidArgument, "name: a project cannot be renamed");
  }
  if (spec.repository.empty()) {
    return Error(Errc::InvalidArgument, "repository: required");
  }
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_build_project(name));
  rec.spec = project_to_store(spec, *s.deps.box);
  rec.updated_at = now_unix();
  BERTH_TRY(s.deps.store.update_build_project(rec));
  s.log->info("build project updated name={}", name);
  return s.to_project_view(rec);
}

Result<ProjectView> Service::get_project(const std::string& name) {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_build_project(name));
  return s.to_project_view(rec);
}

Result<std::vector<ProjectView>> Service::list_projects() {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto recs, s.deps.store.list_build_projects());
  std::vector<ProjectView> out;
  for (const auto& rec : recs) {
    BERTH_ASSIGN_OR_RETURN(auto v, s.to_project_view(rec));
    out.push_back(std::move(v));
  }
  return out;
}

Status Service::delete_project(const std::string& name) {
  auto& s = *impl_;
  std::vector<store::BuildRecord> builds;
  {
    std::unique_lock lk(s.mu);
    BERTH_TRY(s.deps.store.get_build_project(name));
    s.deleting.insert(name);
    auto busy = [&] {
      return std::any_of(s.running.begin(), s.running.end(),
                         [&](const auto& kv) { return kv.second->project == name; });
    };
    for (auto& [id, r] : s.running) {
      if (r->project == name) {
        r->user_stop = true;
        s.cancel_locked(*r);
      }
    }
    if (!s.done_cv.wait_for(lk, kStopWait, [&] { return !busy(); })) {
      // Deleting under a build that is still winding down would leave it writing to rows and
      // files that are gone: say so and let the caller retry.
      s.deleting.erase(name);
      return Error(Errc::Unavailable,
                   cat("project ", name, " still has a build stopping; try again shortly"));
    }
    auto listed = s.deps.store.list_builds(name, -1);
    if (listed) {
      builds = std::move(*listed);
    }
    auto st = s.deps.store.delete_build_project(name);
    s.deleting.erase(name);
    if (!st) {
      return st;
    }
  }
  std::error_code ec;
  for (const auto& b : builds) {
    stdfs::remove(s.log_file(b.id), ec);
  }
  stdfs::remove_all(s.bare_repo(name), ec);
  stdfs::remove_all(s.git_cache_root(name), ec);
  s.log->info("build project deleted name={} builds={}", name, builds.size());
  return ok();
}

Result<BuildView> Service::start_build(const std::string& project, const std::string& commit_or_ref,
                                       const std::string& trigger) {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_build_project(project));
  BERTH_ASSIGN_OR_RETURN(auto spec, s.load_spec(rec));
  std::string commit;
  std::string branch;
  if (is_commit_id(commit_or_ref)) {
    commit = commit_or_ref;
    branch = is_glob(spec.branch) ? std::string() : spec.branch;
  } else if (commit_or_ref.empty()) {
    if (is_glob(spec.branch)) {
      return Error(Errc::InvalidArgument, cat("ref: the project builds branches matching ",
                                              spec.branch, "; name the branch or commit to build"));
    }
    branch = spec.branch;
  } else {
    BERTH_TRY(validate_ref(commit_or_ref));
    branch = commit_or_ref;
    if (branch.rfind("refs/heads/", 0) == 0) {
      branch = branch.substr(11);
    }
  }
  std::string source =
      spec.git_url.empty() ? Impl::git_path(project) : url_without_credentials(spec.git_url);
  BERTH_ASSIGN_OR_RETURN(auto b, s.queue(project, spec, commit, branch, trigger, source));
  return to_view(b);
}

Result<BuildView> Service::get_build(int64_t id) {
  BERTH_ASSIGN_OR_RETURN(auto b, impl_->deps.store.get_build(id));
  return to_view(b);
}

Result<std::vector<BuildView>> Service::list_builds(const std::string& project, int limit) {
  auto& s = *impl_;
  if (!project.empty()) {
    BERTH_TRY(s.deps.store.get_build_project(project));
  }
  BERTH_ASSIGN_OR_RETURN(auto builds, s.deps.store.list_builds(project, limit));
  std::vector<BuildView> out;
  out.reserve(builds.size());
  for (const auto& b : builds) {
    out.push_back(to_view(b));
  }
  return out;
}

Result<BuildView> Service::stop_build(int64_t id) {
  auto& s = *impl_;
  std::unique_lock lk(s.mu);
  BERTH_ASSIGN_OR_RETURN(auto b, s.deps.store.get_build(id));
  if (b.status == kQueued) {
    b.status = kStopped;
    b.reason = "stopped by request";
    b.finished_at = now_unix();
    BERTH_TRY(s.deps.store.update_build(b));
    s.append_log(id, cat("build ", std::to_string(id), " STOPPED: ", b.reason));
    return to_view(b);
  }
  if (b.status != kInProgress) {
    return Error(Errc::FailedPrecondition,
                 cat("build ", std::to_string(id), " has already finished (", b.status, ")"));
  }
  auto it = s.running.find(id);
  if (it == s.running.end()) {
    // IN_PROGRESS in the store with no worker on it (berthd not started): nothing to kill.
    b.status = kStopped;
    b.reason = "stopped by request";
    b.finished_at = now_unix();
    BERTH_TRY(s.deps.store.update_build(b));
    s.append_log(id, cat("build ", std::to_string(id), " STOPPED: ", b.reason));
    return to_view(b);
  }
  it->second->user_stop = true;
  s.cancel_locked(*it->second);
  s.done_cv.wait_for(lk, kStopWait, [&] { return s.running.count(id) == 0; });
  BERTH_ASSIGN_OR_RETURN(auto after, s.deps.store.get_build(id));
  return to_view(after);
}

Result<std::string> Service::log_path(int64_t id) {
  BERTH_TRY(impl_->deps.store.get_build(id));
  return impl_->log_file(id);
}

Result<WebhookReply> Service::github_webhook(const std::string& project, const std::string& event,
                                             const std::string& signature,
                                             const std::string& body) {
  auto& s = *impl_;
  WebhookReply reply;
  auto rec = s.deps.store.get_build_project(project);
  if (!rec) {
    if (rec.error().code() != Errc::NotFound) {
      return rec.error();
    }
    reply.status = 404;
    reply.message = cat("build project ", project, " does not exist");
    return reply;
  }
  BERTH_ASSIGN_OR_RETURN(auto secret, s.deps.box->open(rec->webhook_secret));
  if (signature.empty()) {
    reply.status = 401;
    reply.message = "X-Hub-Signature-256 header is missing";
    return reply;
  }
  if (!verify_github_signature(secret, body, signature)) {
    reply.status = 401;
    reply.message = "signature does not match";
    return reply;
  }
  auto ev = parse_github_event(event, body);
  if (!ev) {
    reply.status = 400;
    reply.message = ev.error().message();
    return reply;
  }
  BERTH_ASSIGN_OR_RETURN(auto spec, s.load_spec(*rec));
  WebhookDecision d = decide(*ev, spec.branch);
  if (ev->kind == GithubEventKind::Ping) {
    reply.status = 200;
    reply.message = d.reason;
    return reply;
  }
  reply.status = 202;
  if (d.action != WebhookAction::Build) {
    reply.message = d.reason;
    return reply;
  }
  std::string source =
      spec.git_url.empty() ? Impl::git_path(project) : url_without_credentials(spec.git_url);
  BERTH_ASSIGN_OR_RETURN(auto b, s.queue(project, spec, d.commit, d.branch,
                                         cat("webhook push to ", d.branch), source));
  reply.build_id = b.id;
  reply.message = cat("push to ", d.branch, " at ", short_commit(d.commit), ": build ",
                      std::to_string(b.id), " queued");
  return reply;
}

std::string Service::git_root() const { return impl_->git_root(); }

Result<std::map<std::string, std::string>> Service::git_refs(const std::string& project) {
  auto& s = *impl_;
  BERTH_TRY(s.deps.store.get_build_project(project));
  return list_refs(s.bare_repo(project));
}

Result<std::vector<int64_t>> Service::git_pushed(const std::string& project,
                                                 const std::map<std::string, std::string>& before,
                                                 const std::string& principal) {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_build_project(project));
  BERTH_ASSIGN_OR_RETURN(auto spec, s.load_spec(rec));
  BERTH_ASSIGN_OR_RETURN(auto after, list_refs(s.bare_repo(project)));
  std::vector<int64_t> ids;
  const std::string heads = "refs/heads/";
  for (const auto& [ref, commit] : after) {
    if (ref.rfind(heads, 0) != 0) {
      continue;
    }
    auto old = before.find(ref);
    if (old != before.end() && old->second == commit) {
      continue;
    }
    std::string branch = ref.substr(heads.size());
    if (!spec.branch.empty() && !oci::glob_match(spec.branch, branch)) {
      s.log->info("git push ignored project={} branch={} filter={}", project, branch, spec.branch);
      continue;
    }
    BERTH_ASSIGN_OR_RETURN(
        auto b, s.queue(project, spec, commit, branch,
                        cat("git push to ", branch, " by ", principal), Impl::git_path(project)));
    ids.push_back(b.id);
  }
  return ids;
}

}  // namespace berth::builder
