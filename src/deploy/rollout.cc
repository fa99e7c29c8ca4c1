// SPDX-License-Identifier: Apache-2.0
// Worker: deployments (run, finish, pushes, supersede), reconcile after a restart, pause,
// resume, shutdown.
#include "deploy/worker.h"

namespace berth::deploy {

void Worker::finish_deployment(int64_t id, const std::string& status, const std::string& reason) {
  auto d = c_.deps.store.get_deployment(id);
  if (!d) {
    return;
  }
  d->status = status;
  d->reason = reason;
  if (d->started_at == 0) {
    d->started_at = now_unix();
  }
  d->finished_at = now_unix();
  (void)c_.deps.store.update_deployment(*d);
}

void Worker::run_deployment(int64_t id) {
  auto d = c_.deps.store.get_deployment(id);
  if (!d || d->status != "QUEUED") {
    return;
  }
  d->status = "IN_PROGRESS";
  d->started_at = now_unix();
  (void)c_.deps.store.update_deployment(*d);
  std::string before = current_ ? "running" : "deploying";
  set_status("deploying", "deployment " + std::to_string(id) + " in progress");
  c_.log->info("service {} deployment {} of revision {} started ({})", name_, id, d->revision,
               d->trigger);
  auto t0 = Clock::now();
  auto rv = load_revision(d->revision);
  if (rv && rec_.paused) {
    // Paused: the revision is checked and pinned now and starts when the service resumes.
    current_ = std::move(*rv);
    rec_.revision = current_->number;
    rec_.spec = spec_to_store(current_->spec, *c_.box);
    rec_.updated_at = now_unix();
    (void)c_.deps.store.update_service(rec_);
    {
      std::lock_guard lock(mu_);
      view_.spec = current_->spec;
      deployed_tag_ = current_->spec.tag();
    }
    finish_deployment(id, "SUCCEEDED", "service is paused: this revision starts on resume");
    set_status("paused", "");
    refresh_view();
    return;
  }
  Result<std::vector<Instance>> fresh = rv ? bring_up_instances(*rv, desired_count(rv->spec))
                                           : Result<std::vector<Instance>>(rv.error());
  if (!fresh) {
    std::string reason = fresh.error().message();
    finish_deployment(id, "FAILED", reason);
    c_.log->warn("service {} deployment {} failed: {}", name_, id, reason);
    if (current_) {
      set_status("running", "deployment " + std::to_string(id) + " failed; revision " +
                                std::to_string(current_->number) + " keeps serving: " + reason);
    } else {
      set_status("failed", reason);
    }
    refresh_view();
    return;
  }
  std::vector<Instance> old = std::move(instances_);
  instances_ = std::move(*fresh);
  current_ = std::move(*rv);
  {
    std::lock_guard lock(mu_);
    view_.spec = current_->spec;
    deployed_tag_ = current_->spec.tag();
  }
  rec_.revision = current_->number;
  rec_.spec = spec_to_store(current_->spec, *c_.box);
  rec_.updated_at = now_unix();
  (void)c_.deps.store.update_service(rec_);
  if (!rec_.paused) {
    publish_route("");
  }
  auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  c_.log->info("service {} deployment {} switched to revision {} in {} ms", name_, id,
               current_->number, ms);
  drain_and_stop(std::move(old), current_->spec.drain_timeout);
  finish_deployment(id, "SUCCEEDED", "");
  crashes_.clear();
  set_status(rec_.paused ? "paused" : "running", "");
  (void)before;
}

// A revision and its deployment record for a pushed image; 0 when they cannot be stored.
int64_t Worker::record_push(const std::string& tag, const std::string& digest,
                            const std::string& status, const std::string& reason) {
  ServiceSpec spec = desired();
  spec.image = spec.repository() + ":" + tag;
  store::RevisionRecord r{name_, 0, digest, spec_to_store(spec, *c_.box), now_unix()};
  auto number = c_.deps.store.add_revision(r);
  if (!number) {
    c_.log->warn("service {}: cannot record a revision: {}", name_, number.error().message());
    return 0;
  }
  store::DeploymentRecord d;
  d.service = name_;
  d.revision = *number;
  d.status = status;
  d.reason = reason;
  d.trigger = "push " + spec.image;
  d.created_at = now_unix();
  if (status != "QUEUED") {
    d.started_at = d.finished_at = d.created_at;
  }
  auto id = c_.deps.store.add_deployment(d);
  return id ? *id : 0;
}

void Worker::record_superseded_pushes() {
  std::vector<Command> pushes;
  {
    std::lock_guard lock(mu_);
    pushes.swap(superseded_pushes_);
  }
  for (const auto& p : pushes) {
    record_push(p.tag, p.digest, "SUPERSEDED", "a newer push was queued");
  }
}

void Worker::push_deploy(const std::string& tag, const std::string& digest) {
  record_superseded_pushes();  // older pushes first, so ids follow push order
  if (current_ && current_->digest == digest && current_->spec.tag() == tag) {
    return;  // already serving exactly this
  }
  if (int64_t id = record_push(tag, digest, "QUEUED", ""); id != 0) {
    run_deployment(id);
  }
}

// After a berthd restart: the serving revision comes back.
void Worker::reconcile() {
  for (const auto& i : instances_) {
    kill(i, milliseconds(2000));
  }
  instances_.clear();
  pending_restarts_.clear();
  auto rv = load_revision(rec_.revision);
  if (!rv) {
    set_status("failed", "cannot restore revision " + std::to_string(rec_.revision) + ": " +
                             rv.error().message());
    publish_route("service " + name_ + " could not be restored: " + rv.error().message());
    return;
  }
  current_ = std::move(*rv);
  {
    std::lock_guard lock(mu_);
    deployed_tag_ = current_->spec.tag();
  }
  auto fresh = bring_up_instances(*current_, std::max(current_->spec.min_instances, 1));
  if (!fresh) {
    set_status("unhealthy", fresh.error().message());
    publish_route("");
    schedule_restarts(std::max(current_->spec.min_instances, 1), fresh.error().message());
    return;
  }
  instances_ = std::move(*fresh);
  publish_route("");
  set_status("running", "");
}

void Worker::pause() {
  if (rec_.paused) {
    return;
  }
  rec_.spec = spec_to_store(desired(), *c_.box);
  rec_.paused = true;
  rec_.updated_at = now_unix();
  (void)c_.deps.store.update_service(rec_);
  std::vector<Instance> old = std::move(instances_);
  instances_.clear();
  publish_route("service " + name_ + " is paused");
  pending_restarts_.clear();
  drain_and_stop(std::move(old), milliseconds(5000));
  set_status("paused", "");
}

void Worker::resume() {
  if (!rec_.paused) {
    return;
  }
  rec_.spec = spec_to_store(desired(), *c_.box);
  rec_.paused = false;
  rec_.updated_at = now_unix();
  (void)c_.deps.store.update_service(rec_);
  if (rec_.revision == 0) {
    set_status("waiting", "waiting for " + desired().image + " to be pushed");
    publish_route("");
    return;
  }
  set_status("deploying", "resuming");
  reconcile();
}

void Worker::shutdown(bool remove) {
  std::vector<Instance> all = std::move(instances_);
  instances_.clear();
  publish_route("service " + name_ + " is stopping");
  if (remove) {
    drain_and_stop(std::move(all), milliseconds(5000));
  } else {
    for (const auto& i : all) {
      kill(i, milliseconds(2000));
    }
  }
  c_.set_route(name_, std::nullopt);
  c_.log->info("service {} worker stopped", name_);
}

}  // namespace berth::deploy
