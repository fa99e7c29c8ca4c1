// SPDX-License-Identifier: Apache-2.0
// Worker: its loop (commands, exits, ticks) and the state the API shows (status, route).
#include "deploy/worker.h"

namespace berth::deploy {

void Worker::run() {
  c_.log->info("service {} worker started", name_);
  if (!rec_.paused && rec_.revision > 0) {
    reconcile();
  } else if (rec_.paused) {
    publish_route("service " + name_ + " is paused");
  } else {
    set_status("waiting", "waiting for " + desired().image + " to be pushed");
    publish_route("service " + name_ + " has no deployed revision yet");
  }
  while (true) {
    std::optional<Command> cmd;
    std::vector<std::pair<std::string, runtime::InstanceExit>> exits;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, milliseconds(200), [&] { return !queue_.empty() || !exits_.empty(); });
      exits.swap(exits_);
      if (!queue_.empty()) {
        cmd = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    for (auto& [id, e] : exits) {
      on_exit(id, e);
    }
    record_superseded_pushes();
    if (cmd) {
      if (cmd->kind == Command::Stop || cmd->kind == Command::Remove) {
        shutdown(cmd->kind == Command::Remove);
        return;
      }
      handle(*cmd);
    }
    tick();
  }
}

void Worker::handle(const Command& cmd) {
  switch (cmd.kind) {
    case Command::Deploy:
      run_deployment(cmd.deployment);
      break;
    case Command::PushDeploy:
      push_deploy(cmd.tag, cmd.digest);
      break;
    case Command::Pause:
      pause();
      break;
    case Command::Resume:
      resume();
      break;
    default:
      break;
  }
}

void Worker::set_status(const std::string& status, const std::string& reason) {
  std::lock_guard lock(mu_);
  view_.status = status;
  view_.reason = reason;
}

void Worker::refresh_view() {
  std::lock_guard lock(mu_);
  view_.instances.clear();
  in_flight_.clear();
  for (const auto& i : instances_) {
    view_.instances.push_back(InstanceView{i.id, i.revision, i.state, 0, i.started_at});
    in_flight_[i.id] = i.upstream;
  }
  for (const auto& i : draining_) {
    view_.instances.push_back(InstanceView{i.id, i.revision, "draining", 0, i.started_at});
    in_flight_[i.id] = i.upstream;
  }
  view_.paused = rec_.paused;
  view_.revision = rec_.revision;
  view_.digest = current_ ? current_->digest : "";
  view_.restarts = restarts_;
}

void Worker::publish_route(const std::string& unavailable) {
  router::Route r;
  r.service = name_;
  for (const auto& i : instances_) {
    if (i.state == "healthy") {
      r.upstreams.push_back(i.upstream);
    }
  }
  r.unavailable_reason = unavailable;
  r.protocol =
      desired().protocol == "h2c" ? router::Route::Protocol::h2c : router::Route::Protocol::http1;
  if (r.unavailable_reason.empty() && r.upstreams.empty()) {
    r.unavailable_reason = "service " + name_ + " has no healthy instance";
  }
  c_.set_route(name_, std::move(r));
  refresh_view();
}

}  // namespace berth::deploy
