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
#include "builder/service_internal.h"

namespace berth::builder {

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
  // A build no worker runs (queued, or IN_PROGRESS in the store with berthd not started):
  // stopped at once, with nothing to kill.
  auto stop_idle = [&]() -> Result<BuildView> {
    b.status = kStopped;
    b.reason = "stopped by request";
    b.finished_at = now_unix();
    BERTH_TRY(s.deps.store.update_build(b));
    s.append_log(id, cat("build ", std::to_string(id), " STOPPED: ", b.reason));
    return to_view(b);
  };
  if (b.status == kQueued) {
    return stop_idle();
  }
  if (b.status != kInProgress) {
    return Error(Errc::FailedPrecondition,
                 cat("build ", std::to_string(id), " has already finished (", b.status, ")"));
  }
  auto it = s.running.find(id);
  if (it == s.running.end()) {
    return stop_idle();
  }
  it->second->user_stop = true;
  s.cancel_locked(*it->second);
  s.done_cv.wait_for(lk, kStopWait, [&] { return s.running.count(id) == 0; });
  BERTH_ASSIGN_OR_RETURN(auto after, s.deps.store.get_build(id));
  return to_view(after);
}

std::vector<std::string> Service::base_digests_in_use() {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [id, r] : impl_->running) {
    out.insert(out.end(), r->base_digests.begin(), r->base_digests.end());
  }
  return out;
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
