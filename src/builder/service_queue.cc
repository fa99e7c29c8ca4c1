// SPDX-License-Identifier: Apache-2.0
// The build service's projects over the store and its persistent queue: queueing (older
// queued builds of a branch superseded), claiming under the mutex so no build is claimed
// twice, the worker threads and the timeout watchdog.
#include "builder/service_internal.h"

namespace berth::builder {

Result<ProjectSpec> Service::Impl::load_spec(const store::BuildProjectRecord& rec) {
  return project_from_store(rec.spec, *deps.box);
}

Result<ProjectView> Service::Impl::to_project_view(const store::BuildProjectRecord& rec) {
  BERTH_ASSIGN_OR_RETURN(auto spec, load_spec(rec));
  ProjectView v;
  v.spec = std::move(spec);
  v.webhook_path = cat("/hooks/github/", rec.name);
  v.git_path = git_path(rec.name);
  v.created_at = rec.created_at;
  v.updated_at = rec.updated_at;
  return v;
}

Result<store::BuildRecord> Service::Impl::queue_locked(
    const std::string& project, const ProjectSpec& spec, const std::string& commit,
    const std::string& branch, const std::string& trigger, const std::string& source) {
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

Result<store::BuildRecord> Service::Impl::queue(const std::string& project, const ProjectSpec& spec,
                                                const std::string& commit,
                                                const std::string& branch,
                                                const std::string& trigger,
                                                const std::string& source) {
  std::lock_guard lock(mu);
  return queue_locked(project, spec, commit, branch, trigger, source);
}

void Service::Impl::cancel_locked(Running& r) {
  r.cancel = true;
  kill_git_children({r.src_dir, r.git_cache});
}

std::optional<std::pair<store::BuildRecord, std::shared_ptr<Running>>>
Service::Impl::claim_locked() {
  auto queued = deps.store.list_builds_by_status(kQueued);
  if (!queued) {
    // The store being away (PostgreSQL restarting) is handled: the next tick reads again.
    if (queued.error().code() == Errc::Unavailable) {
      log->warn("queue read failed error={}", queued.error().message());
    } else {
      log->error("queue read failed error={}", queued.error().message());
    }
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

void Service::Impl::worker_loop() {
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

void Service::Impl::watchdog_loop() {
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

}  // namespace berth::builder
