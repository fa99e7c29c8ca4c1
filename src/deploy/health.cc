// SPDX-License-Identifier: Apache-2.0
// Worker: crash restarts with backoff, the periodic health tick, autoscaling.
#include "deploy/worker.h"

namespace berth::deploy {

void Worker::schedule_restarts(int n, const std::string& why) {
  auto now = Clock::now();
  crashes_.push_back(now);
  while (!crashes_.empty() && now - crashes_.front() > std::chrono::minutes(5)) {
    crashes_.pop_front();
  }
  int k = static_cast<int>(crashes_.size());
  auto backoff = milliseconds(std::min<int64_t>(500LL << std::min(k - 1, 6), 30000));
  for (int i = 0; i < n; ++i) {
    pending_restarts_.push_back(now + backoff);
  }
  if (k >= 3) {
    set_status("unhealthy", "crash loop (" + std::to_string(k) + " restarts in 5m, next in " +
                                seconds_text(backoff) + "): " + why);
  }
}

void Worker::on_exit(const std::string& id, const runtime::InstanceExit& e) {
  auto it = std::find_if(instances_.begin(), instances_.end(),
                         [&](const Instance& i) { return i.id == id; });
  if (it == instances_.end()) {
    c_.disown(id);
    return;
  }
  Instance dead = *it;
  instances_.erase(it);
  publish_route("");
  kill(dead, milliseconds(0));
  ++restarts_;
  std::string why = "instance " + id + " " + e.str() + last_lines({id}, now_ms() - 60000);
  c_.log->warn("service {}: {}", name_, why);
  if (!rec_.paused && current_) {
    schedule_restarts(1, why);
  }
  refresh_view();
}

void Worker::tick() {
  if (!current_ || rec_.paused) {
    return;
  }
  auto now = Clock::now();
  // Restarts whose backoff has passed.
  if (!pending_restarts_.empty() && pending_restarts_.front() <= now) {
    pending_restarts_.pop_front();
    auto fresh = bring_up_instances(*current_, 1);
    if (fresh) {
      for (auto& i : *fresh) {
        instances_.push_back(std::move(i));
      }
      publish_route("");
      if (pending_restarts_.empty()) {
        set_status("running", "");
      }
    } else {
      schedule_restarts(1, fresh.error().message());
    }
    return;
  }
  // Health of running instances.
  const auto& h = current_->spec.health;
  std::vector<Instance> failed;
  for (auto it = instances_.begin(); it != instances_.end();) {
    if (it->next_probe > now) {
      ++it;
      continue;
    }
    it->next_probe = now + h.interval;
    std::string why;
    if (probe(*it->upstream->netns, it->upstream->port, h, &why)) {
      it->fail_streak = 0;
      if (it->state != "healthy") {
        it->state = "healthy";
        publish_route("");
      }
      ++it;
      continue;
    }
    if (++it->fail_streak >= h.unhealthy_threshold) {
      c_.log->warn("service {} instance {} failed {} health checks ({}); replacing it", name_,
                   it->id, it->fail_streak, why);
      failed.push_back(*it);
      it = instances_.erase(it);
    } else {
      ++it;
    }
  }
  if (!failed.empty()) {
    publish_route("");
    for (const auto& i : failed) {
      kill(i, milliseconds(2000));
      ++restarts_;
      schedule_restarts(1, "instance " + i.id + " failed its health check");
    }
    refresh_view();
  }
  autoscale(now);
}

void Worker::autoscale(Clock::time_point now) {
  const auto& spec = current_->spec;
  int64_t load = 0;
  for (const auto& i : instances_) {
    load += i.upstream->in_flight.load();
  }
  samples_.emplace_back(now, load);
  while (!samples_.empty() && now - samples_.front().first > std::chrono::seconds(1)) {
    samples_.pop_front();
  }
  int64_t peak = 0;
  for (const auto& s : samples_) {
    peak = std::max(peak, s.second);
  }
  int live = static_cast<int>(instances_.size()) + static_cast<int>(pending_restarts_.size());
  int want = static_cast<int>((peak + spec.concurrency - 1) / spec.concurrency);
  want = std::clamp(want, std::max(spec.min_instances, 1), std::max(spec.max_instances, 1));
  if (want > live) {
    c_.log->info("service {}: {} requests in flight, scaling out from {} to {} instances", name_,
                 peak, live, want);
    auto fresh = bring_up_instances(*current_, want - live);
    if (fresh) {
      for (auto& i : *fresh) {
        instances_.push_back(std::move(i));
      }
      publish_route("");
    }
    calm_since_ = now;
    return;
  }
  if (want >= live || live <= std::max(spec.min_instances, 1)) {
    calm_since_ = now;
    return;
  }
  if (now - calm_since_ >= spec.scale_in_cooldown && !instances_.empty()) {
    c_.log->info("service {}: load {} for {}, scaling in from {} instances", name_, peak,
                 seconds_text(spec.scale_in_cooldown), live);
    Instance last = instances_.back();
    instances_.pop_back();
    publish_route("");
    drain_and_stop({last}, spec.drain_timeout);
    calm_since_ = now;
  }
}

}  // namespace berth::deploy
