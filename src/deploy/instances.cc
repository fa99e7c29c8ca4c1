// SPDX-License-Identifier: Apache-2.0
// Worker: instances: loading a revision, launching, probing until healthy, draining and
// stopping.
#include "deploy/worker.h"

namespace berth::deploy {

Result<Revision> Worker::load_revision(int64_t number) {
  BERTH_ASSIGN_OR_RETURN(auto rec, c_.deps.store.get_revision(name_, number));
  Revision rv;
  rv.number = number;
  rv.digest = rec.digest;
  BERTH_ASSIGN_OR_RETURN(rv.spec, spec_from_store(rec.spec, *c_.box));
  BERTH_TRY(check_pull(rv.spec));
  BERTH_ASSIGN_OR_RETURN(rv.image, c_.deps.preparer.prepare(rv.spec.repository(), rv.digest));
  return rv;
}

Status Worker::check_pull(const ServiceSpec& spec) {
  if (spec.role.empty() || c_.deps.authorizer == nullptr) {
    return ok();
  }
  iam::Request req{"role/" + spec.role, "registry:Pull", "repository/" + spec.repository()};
  if (!c_.deps.authorizer->decide(req).allowed) {
    return Error(Errc::PermissionDenied, "AccessDenied: role " + spec.role +
                                             " may not registry:Pull on repository " +
                                             spec.repository());
  }
  return ok();
}

Result<Instance> Worker::launch(const Revision& rv) {
  runtime::InstanceSpec spec;
  spec.id = name_ + "-" + std::to_string(rv.number) + "-" + fs::random_hex(3);
  spec.image = rv.image;
  for (const auto& [k, v] : rv.spec.env) {
    spec.env.push_back(k + "=" + v);
  }
  for (const auto& [k, v] : rv.spec.secret_env) {
    spec.env.push_back(k + "=" + v);
  }
  spec.env.push_back("PORT=" + std::to_string(rv.spec.port));
  spec.cpus = rv.spec.cpus;
  spec.memory_bytes = rv.spec.memory_bytes;
  spec.confinement = confinement_of(rv.spec);
  spec.log = log_;
  c_.own(spec.id, shared_from_this());
  auto info = c_.deps.runtime.start(spec);
  if (!info) {
    c_.disown(spec.id);
    return Error(info.error().code(),
                 "instance " + spec.id + " did not start: " + info.error().message());
  }
  if (!info->netns) {
    // It exited before its namespace could be opened; its exit report is on the way.
    std::string how = "exited as soon as it started";
    Instance probe_for;
    probe_for.id = spec.id;
    for (int i = 0; i < 50; ++i) {
      if (auto e = take_exit({probe_for})) {
        how = e->second.str() + " as soon as it started";
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    std::string lines = last_lines({spec.id}, now_ms() - 60000);
    kill(spec.id, milliseconds(0));
    return Error(Errc::FailedPrecondition, "instance " + spec.id + " " + how + lines);
  }
  Instance inst;
  inst.id = spec.id;
  inst.revision = rv.number;
  inst.started_at = now_unix();
  inst.upstream = std::make_shared<router::Upstream>();
  inst.upstream->id = spec.id;
  inst.upstream->netns = info->netns;
  inst.upstream->port = rv.spec.port;
  c_.log->info("service {} instance {} started (revision {}, pid {})", name_, inst.id, rv.number,
               info->pid);
  return inst;
}

void Worker::kill(const std::string& id, milliseconds grace) {
  auto s = c_.deps.runtime.stop(id, grace);
  if (!s) {
    c_.log->warn("service {} instance {}: stop: {}", name_, id, s.error().message());
  }
  c_.disown(id);
}

// The last lines an instance wrote, for failure reasons.
std::string Worker::last_lines(const std::vector<std::string>& ids, int64_t since_ms) {
  std::string out;
  for (const auto& id : ids) {
    for (const auto& l : runtime::read_log(log_->path(), since_ms, id, 10)) {
      out += "\n  " + l.instance + " " + l.stream + ": " + l.text;
    }
  }
  return out.empty() ? "" : "\nlast log lines:" + out;
}

// Takes exits of the given instances out of the queue (those of others stay).
std::optional<std::pair<std::string, runtime::InstanceExit>> Worker::take_exit(
    const std::vector<Instance>& of) {
  std::lock_guard lock(mu_);
  for (auto it = exits_.begin(); it != exits_.end(); ++it) {
    for (const auto& i : of) {
      if (i.id == it->first) {
        auto e = *it;
        exits_.erase(it);
        return e;
      }
    }
  }
  return std::nullopt;
}

bool Worker::stop_requested() {
  std::lock_guard lock(mu_);
  for (const auto& c : queue_) {
    if (c.kind == Command::Stop || c.kind == Command::Remove) {
      return true;
    }
  }
  return false;
}

// Probes until every instance is healthy; fails on an exit or at the deadline.
Status Worker::wait_healthy(std::vector<Instance>& insts, const HealthCheck& h,
                            milliseconds timeout, int64_t since_ms) {
  auto deadline = Clock::now() + timeout;
  std::map<std::string, std::string> why;
  while (true) {
    if (auto e = take_exit(insts)) {
      kill(e->first, milliseconds(0));
      std::vector<std::string> ids;
      for (const auto& i : insts) {
        ids.push_back(i.id);
      }
      return Error(Errc::FailedPrecondition, "instance " + e->first + " " + e->second.str() +
                                                 " before passing its health check" +
                                                 last_lines(ids, since_ms));
    }
    bool all = true;
    for (auto& i : insts) {
      if (i.state == "healthy") {
        continue;
      }
      std::string w;
      if (probe(*i.upstream->netns, i.upstream->port, h, &w)) {
        if (++i.ok_streak >= h.healthy_threshold) {
          i.state = "healthy";
          continue;
        }
      } else {
        i.ok_streak = 0;
        why[i.id] = w;
      }
      all = false;
    }
    if (all) {
      return ok();
    }
    if (Clock::now() >= deadline || stop_requested()) {
      std::string detail;
      std::vector<std::string> ids;
      for (const auto& i : insts) {
        ids.push_back(i.id);
        if (i.state != "healthy") {
          detail = "instance " + i.id + " did not pass its health check (" + why[i.id] +
                   ") within " + seconds_text(timeout);
        }
      }
      return Error(Errc::DeadlineExceeded, detail + last_lines(ids, since_ms));
    }
    // Quick probes while starting: a deploy is as fast as the app, not the interval.
    std::this_thread::sleep_for(milliseconds(h.healthy_threshold > 1 ? 200 : 25));
  }
}

// Starts n instances of rv and waits for them; on failure stops them.
Result<std::vector<Instance>> Worker::bring_up_instances(const Revision& rv, int n) {
  std::vector<Instance> fresh;
  int64_t since = now_ms() - 1000;
  for (int k = 0; k < n; ++k) {
    auto inst = launch(rv);
    if (!inst) {
      for (const auto& i : fresh) {
        kill(i, milliseconds(0));
      }
      return inst.error();
    }
    fresh.push_back(std::move(*inst));
  }
  auto s = wait_healthy(fresh, rv.spec.health, rv.spec.deploy_timeout, since);
  if (!s) {
    for (const auto& i : fresh) {
      kill(i, milliseconds(0));
    }
    return s.error();
  }
  auto next = Clock::now() + rv.spec.health.interval;
  for (auto& i : fresh) {
    i.next_probe = next;
  }
  return fresh;
}

// Old instances leave the route table first, then finish what they are serving.
void Worker::drain_and_stop(std::vector<Instance> old, milliseconds timeout) {
  if (old.empty()) {
    return;
  }
  for (auto& i : old) {
    i.state = "draining";
    draining_.push_back(i);
  }
  refresh_view();
  auto deadline = Clock::now() + timeout;
  std::this_thread::sleep_for(milliseconds(50));  // requests routed just before the switch
  while (Clock::now() < deadline) {
    bool busy = false;
    for (const auto& i : old) {
      busy = busy || i.upstream->in_flight.load() > 0;
    }
    if (!busy) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  for (const auto& i : old) {
    kill(i, milliseconds(5000));
  }
  draining_.clear();
  refresh_view();
}

int Worker::desired_count(const ServiceSpec& spec) const {
  int live = static_cast<int>(instances_.size());
  return std::clamp(std::max(live, spec.min_instances), std::max(spec.min_instances, 1),
                    std::max(spec.max_instances, 1));
}

}  // namespace berth::deploy
