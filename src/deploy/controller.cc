// SPDX-License-Identifier: Apache-2.0
// The deploy controller: the API's entry points (create, update, deploy, rollback, pause,
// resume, remove, views) and start/stop. One worker thread per service (deploy/worker.h) owns
// that service's instances and runs its deployments one at a time, so services never wait on
// each other and the I/O threads never wait on any of it. Workers share only the route table
// (published to the router under a mutex) and the instance-id -> worker map used to deliver
// exit notifications.
#include "deploy/worker.h"

namespace berth::deploy {

// ---- Controller -----------------------------------------------------------------------------

Controller::Controller(ControllerDeps deps) : state_(std::make_shared<State>(std::move(deps))) {}

Controller::~Controller() { stop(); }

void Controller::set_url_base(std::string base) { state_->deps.url_base = std::move(base); }

void Controller::set_domains(std::map<std::string, DomainRoute> hosts) {
  {
    std::lock_guard lock(state_->mu);
    state_->domains = std::move(hosts);
  }
  state_->set_route("", std::nullopt);  // republish the table with them
}

namespace {

std::shared_ptr<Worker> make_worker(Controller::State& s, const store::ServiceRecord& rec) {
  auto w = std::make_shared<Worker>(s, rec);
  auto spec = spec_from_store(rec.spec, *s.box);
  std::string tag;
  if (rec.revision > 0) {
    auto rev = s.deps.store.get_revision(rec.name, rec.revision);
    if (rev) {
      auto rs = spec_from_store(rev->spec, *s.box);
      tag = rs ? rs->tag() : "";
    }
  }
  w->init_view(spec ? *spec : ServiceSpec{}, tag);
  return w;
}

}  // namespace

Status Controller::start(EventBus& bus) {
  auto& s = *state_;
  BERTH_ASSIGN_OR_RETURN(s.box, SecretBox::load_or_create(s.deps.data_dir + "/secrets.key"));
  std::error_code ec;
  std::filesystem::create_directories(s.deps.data_dir + "/logs", ec);
  // Instances of a previous berthd lost their log pipes and supervisor: replace them.
  auto left = s.deps.runtime.list();
  if (left) {
    for (const auto& id : *left) {
      s.log->info("stopping instance {} left by a previous berthd", id);
      (void)s.deps.runtime.stop(id, milliseconds(2000));
    }
  }
  // Deployments interrupted by that stop.
  auto deps = s.deps.store.list_deployments("", 1000);
  if (deps) {
    for (auto d : *deps) {
      if (d.status == "IN_PROGRESS" || d.status == "QUEUED") {
        d.status = "FAILED";
        d.reason = "interrupted by a berthd restart";
        d.finished_at = now_unix();
        (void)s.deps.store.update_deployment(d);
      }
    }
  }
  s.deps.runtime.on_exit(
      [weak = std::weak_ptr<State>(state_)](const std::string& id, runtime::InstanceExit e) {
        auto st = weak.lock();
        if (!st) {
          return;
        }
        std::shared_ptr<Worker> w;
        {
          std::lock_guard lock(st->mu);
          auto it = st->owners.find(id);
          if (it != st->owners.end()) {
            w = it->second.lock();
          }
        }
        if (w) {
          w->exited(id, e);
        }
      });
  BERTH_ASSIGN_OR_RETURN(auto services, s.deps.store.list_services());
  {
    std::lock_guard lock(s.mu);
    s.started = true;
  }
  for (const auto& rec : services) {
    auto w = make_worker(s, rec);
    {
      std::lock_guard lock(s.mu);
      s.workers[rec.name] = w;
    }
    w->start();
  }
  bus.subscribe([weak = std::weak_ptr<State>(state_)](const ImagePushed& e) {
    auto st = weak.lock();
    if (!st || e.tag.empty()) {
      return;
    }
    std::vector<std::shared_ptr<Worker>> ws;
    {
      std::lock_guard lock(st->mu);
      for (auto& [n, w] : st->workers) {
        ws.push_back(w);
      }
    }
    for (auto& w : ws) {
      ServiceSpec spec = w->desired();
      if (spec.repository() != e.repository) {
        continue;
      }
      bool follow = spec.auto_deploy && spec.auto_deploy_tags.empty() && spec.tag() == e.tag;
      if (!spec.auto_deploy_tags.empty() && oci::glob_match(spec.auto_deploy_tags, e.tag)) {
        auto pushed = parse_semver(e.tag);
        auto serving = parse_semver(w->deployed_tag());
        follow = pushed && (!serving || *pushed > *serving);
      }
      if (follow) {
        st->log->info("{}:{} pushed ({}); deploying it", e.repository, e.tag, e.digest);
        w->post(Command(Command::PushDeploy, 0, e.tag, e.digest));
      }
    }
  });
  return ok();
}

void Controller::stop() {
  auto& s = *state_;
  std::map<std::string, std::shared_ptr<Worker>> ws;
  {
    std::lock_guard lock(s.mu);
    if (!s.started) {
      return;
    }
    s.started = false;
    ws.swap(s.workers);
  }
  for (auto& [n, w] : ws) {
    w->post(Command(Command::Stop));
  }
  for (auto& [n, w] : ws) {
    w->join();
  }
}

namespace {

// repo:tag (or repo@digest) -> the digest it names now, pulled through an upstream when the
// repository is under one and berth does not have the image yet.
Result<std::string> resolve(const ControllerDeps& deps, const ServiceSpec& spec) {
  auto at = spec.image.find('@');
  std::string repo = spec.repository();
  std::string ref = at != std::string::npos ? spec.image.substr(at + 1) : spec.tag();
  auto r = deps.store.get_repository(repo);
  auto m = r ? deps.store.get_manifest(r->id, ref) : Result<store::ManifestRecord>(r.error());
  if (m) {
    return m->digest;
  }
  if (deps.pull) {
    if (auto pulled = deps.pull(repo, ref)) {
      return std::move(*pulled);
    }
  }
  if (!r) {
    return Error(Errc::NotFound, "repository " + repo +
                                     " does not exist; create it with: "
                                     "berth repo create " +
                                     repo);
  }
  return Error(Errc::NotFound, "image " + spec.image + " does not exist; push it first");
}

}  // namespace

Result<std::pair<ServiceView, int64_t>> Controller::create(const std::string& name,
                                                           ServiceSpec spec) {
  auto& s = *state_;
  BERTH_TRY(validate_service_name(name));
  if (!s.started) {
    return Error(Errc::Unavailable, "services are not available on this berthd");
  }
  auto digest = resolve(s.deps, spec);
  if (!digest && !(spec.auto_deploy || !spec.auto_deploy_tags.empty())) {
    return digest.error();
  }
  int64_t now = now_unix();
  store::ServiceRecord rec{name, spec_to_store(spec, *s.box), false, 0, now, now};
  BERTH_TRY(s.deps.store.create_service(rec));
  int64_t dep = 0;
  if (digest) {
    auto number = s.deps.store.add_revision(store::RevisionRecord{name, 0, *digest, rec.spec, now});
    if (!number) {
      (void)s.deps.store.delete_service(name);
      return number.error();
    }
    store::DeploymentRecord d;
    d.service = name;
    d.revision = *number;
    d.status = "QUEUED";
    d.trigger = "create";
    d.created_at = now;
    auto id = s.deps.store.add_deployment(d);
    if (!id) {
      (void)s.deps.store.delete_service(name);
      return id.error();
    }
    dep = *id;
  }
  auto w = make_worker(s, rec);
  {
    std::lock_guard lock(s.mu);
    s.workers[name] = w;
  }
  w->start();
  if (dep != 0) {
    w->post(Command(Command::Deploy, dep));
  }
  return std::make_pair(w->view(), dep);
}

namespace {

Result<int64_t> queue_revision(Controller::State& s, Worker& w, const std::string& name,
                               const std::string& digest, const ServiceSpec& spec,
                               const std::string& trigger) {
  int64_t now = now_unix();
  BERTH_ASSIGN_OR_RETURN(int64_t number, s.deps.store.add_revision(store::RevisionRecord{
                                             name, 0, digest, spec_to_store(spec, *s.box), now}));
  store::DeploymentRecord d;
  d.service = name;
  d.revision = number;
  d.status = "QUEUED";
  d.trigger = trigger;
  d.created_at = now;
  BERTH_ASSIGN_OR_RETURN(int64_t id, s.deps.store.add_deployment(d));
  w.post(Command(Command::Deploy, id));
  return id;
}

}  // namespace

Result<int64_t> Controller::update(const std::string& name, ServiceSpec spec) {
  auto& s = *state_;
  auto w = s.worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_service(name));
  ServiceSpec old = w->desired();
  rec.spec = spec_to_store(spec, *s.box);
  rec.updated_at = now_unix();
  // The serving image with the new configuration; before any deploy, only the spec changes.
  std::string digest;
  if (rec.revision > 0) {
    BERTH_ASSIGN_OR_RETURN(auto rev, s.deps.store.get_revision(name, rec.revision));
    digest = rev.digest;
  }
  if (spec.image != old.image) {
    auto d = resolve(s.deps, spec);
    if (d) {
      digest = *d;
    } else if (!(spec.auto_deploy || !spec.auto_deploy_tags.empty())) {
      return d.error();
    } else {
      digest.clear();  // deployed when it is pushed, not under the old image's digest
    }
  }
  BERTH_TRY(s.deps.store.update_service(rec));
  w->set_desired(spec);
  if (digest.empty()) {
    return int64_t{0};
  }
  return queue_revision(s, *w, name, digest, spec, "update");
}

Result<int64_t> Controller::deploy(const std::string& name, const std::string& image) {
  auto& s = *state_;
  auto w = s.worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  ServiceSpec spec = w->desired();
  if (!image.empty()) {
    Json body = Json::object();
    body["image"] = image;
    BERTH_ASSIGN_OR_RETURN(spec, spec_from_request(body, spec));
  }
  BERTH_ASSIGN_OR_RETURN(auto digest, resolve(s.deps, spec));
  if (spec.image != w->desired().image) {
    BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_service(name));
    rec.spec = spec_to_store(spec, *s.box);
    rec.updated_at = now_unix();
    BERTH_TRY(s.deps.store.update_service(rec));
    w->set_desired(spec);
  }
  return queue_revision(s, *w, name, digest, spec, "deploy " + spec.image);
}

Result<int64_t> Controller::rollback(const std::string& name) {
  auto& s = *state_;
  auto w = s.worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  BERTH_ASSIGN_OR_RETURN(auto rec, s.deps.store.get_service(name));
  BERTH_ASSIGN_OR_RETURN(auto history, s.deps.store.list_deployments(name, 1000));
  int64_t target = 0;
  for (const auto& d : history) {
    if (d.status == "SUCCEEDED" && d.revision != rec.revision) {
      target = d.revision;
      break;
    }
  }
  if (target == 0) {
    return Error(Errc::FailedPrecondition,
                 "service " + name + " has no earlier successful revision to roll back to");
  }
  BERTH_ASSIGN_OR_RETURN(auto rev, s.deps.store.get_revision(name, target));
  BERTH_ASSIGN_OR_RETURN(auto spec, spec_from_store(rev.spec, *s.box));
  rec.spec = rev.spec;
  rec.updated_at = now_unix();
  BERTH_TRY(s.deps.store.update_service(rec));
  w->set_desired(spec);
  store::DeploymentRecord d;
  d.service = name;
  d.revision = target;
  d.status = "QUEUED";
  d.trigger = "rollback to revision " + std::to_string(target);
  d.created_at = now_unix();
  BERTH_ASSIGN_OR_RETURN(int64_t id, s.deps.store.add_deployment(d));
  w->post(Command(Command::Deploy, id));
  return id;
}

Status Controller::pause(const std::string& name) {
  auto w = state_->worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  w->post(Command(Command::Pause));
  return ok();
}

Status Controller::resume(const std::string& name) {
  auto w = state_->worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  w->post(Command(Command::Resume));
  return ok();
}

Status Controller::remove(const std::string& name) {
  auto& s = *state_;
  std::shared_ptr<Worker> w;
  {
    std::lock_guard lock(s.mu);
    auto it = s.workers.find(name);
    if (it == s.workers.end()) {
      return Error(Errc::NotFound, "service " + name + " does not exist");
    }
    w = it->second;
    s.workers.erase(it);
  }
  w->post(Command(Command::Remove));
  w->join();
  BERTH_TRY(s.deps.store.delete_service(name));
  std::error_code ec;
  for (int i = 0; i <= 3; ++i) {
    std::filesystem::remove(w->log_path() + (i == 0 ? "" : "." + std::to_string(i)), ec);
  }
  return ok();
}

Result<ServiceView> Controller::get(const std::string& name) {
  auto w = state_->worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return w->view();
}

Result<std::vector<ServiceView>> Controller::list() {
  std::vector<std::shared_ptr<Worker>> ws;
  {
    std::lock_guard lock(state_->mu);
    for (auto& [n, w] : state_->workers) {
      ws.push_back(w);
    }
  }
  std::vector<ServiceView> out;
  for (auto& w : ws) {
    out.push_back(w->view());
  }
  return out;
}

Result<std::vector<store::DeploymentRecord>> Controller::deployments(const std::string& name,
                                                                     int limit) {
  if (!state_->worker(name)) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return state_->deps.store.list_deployments(name, limit);
}

Result<store::DeploymentRecord> Controller::deployment(int64_t id) {
  return state_->deps.store.get_deployment(id);
}

Result<std::string> Controller::log_path(const std::string& name) {
  auto w = state_->worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return w->log_path();
}

Result<ServiceSpec> Controller::spec(const std::string& name) {
  auto w = state_->worker(name);
  if (!w) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return w->desired();
}

}  // namespace berth::deploy
