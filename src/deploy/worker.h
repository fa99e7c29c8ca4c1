// SPDX-License-Identifier: Apache-2.0
// Private to deploy. A Worker is one service's thread: it owns that service's instances and
// runs its deployments one at a time; everything it does (runc, image unpacking, health
// probes, the store) is blocking and stays on that thread. Its methods live in worker.cc (the
// loop, the state shown by the API), instances.cc (launching, probing, draining),
// rollout.cc (deployments, pause/resume/remove, reconcile after a restart) and health.cc
// (crash restarts, health ticks, autoscaling); probe.cc holds the health probe itself.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "deploy/deploy.h"
#include "iam/iam.h"
#include "oci/oci.h"
#include "router/router.h"
#include "runtime/runtime.h"

namespace berth::deploy {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }
inline int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string seconds_text(milliseconds d) {
  if (d.count() % 1000 == 0) {
    return std::to_string(d.count() / 1000) + "s";
  }
  return std::to_string(d.count()) + "ms";
}

// One health probe, blocking for at most h.timeout: TCP connect, or an HTTP GET whose status
// must be 2xx. why says what failed.
bool probe(const NetNs& ns, uint16_t port, const HealthCheck& h, std::string* why);

struct Instance {
  std::string id;
  int64_t revision = 0;
  std::shared_ptr<router::Upstream> upstream;
  int64_t started_at = 0;
  std::string state = "starting";  // starting, healthy, unhealthy, draining
  int ok_streak = 0;
  int fail_streak = 0;
  Clock::time_point next_probe{};
};

// A revision loaded and unpacked: what instances are started from.
struct Revision {
  int64_t number = 0;
  std::string digest;
  ServiceSpec spec;
  runtime::PreparedImage image;
};

struct Command {
  enum Kind { Deploy, PushDeploy, Pause, Resume, Remove, Stop };
  explicit Command(Kind k, int64_t dep = 0, std::string t = "", std::string d = "")
      : kind(k), deployment(dep), tag(std::move(t)), digest(std::move(d)) {}
  Kind kind;
  int64_t deployment;  // Deploy
  std::string tag;     // PushDeploy
  std::string digest;  // PushDeploy
};

class Worker;

struct Controller::State {
  ControllerDeps deps;
  std::shared_ptr<SecretBox> box;
  std::shared_ptr<spdlog::logger> log = log::get("deploy");

  std::mutex mu;  // workers, owners, routes
  std::map<std::string, std::shared_ptr<Worker>> workers;
  std::map<std::string, std::weak_ptr<Worker>> owners;  // instance id -> worker
  std::map<std::string, router::Route> routes;          // service -> route
  std::map<std::string, DomainRoute> domains;           // linked host -> route
  bool started = false;

  explicit State(ControllerDeps d) : deps(std::move(d)) {}

  std::string host_for(const std::string& service) const {
    return service + "." + deps.apps_domain;
  }

  // Rebuilds the whole table from the per-service routes and hands it to the router, under
  // the lock: two workers publishing at once must not let an older table win.
  void set_route(const std::string& service, std::optional<router::Route> route) {
    auto table = std::make_shared<router::RouteTable>();
    std::lock_guard lock(mu);
    if (route) {
      routes[service] = std::move(*route);
    } else if (!service.empty()) {
      routes.erase(service);
    }
    for (const auto& [name, r] : routes) {
      table->hosts[host_for(name)] = r;
    }
    for (const auto& [host, d] : domains) {
      auto it = routes.find(d.service);
      router::Route r;
      if (it != routes.end()) {
        r = it->second;
      } else {
        r.service = d.service;
        r.unavailable_reason = "service " + d.service + " is not running";
      }
      r.https_redirect = d.https_redirect;
      r.hsts = d.hsts;
      table->hosts[host] = std::move(r);
    }
    deps.router.publish(std::move(table));
  }

  std::shared_ptr<Worker> worker(const std::string& name) {
    std::lock_guard lock(mu);
    auto it = workers.find(name);
    return it == workers.end() ? nullptr : it->second;
  }

  void own(const std::string& instance, const std::shared_ptr<Worker>& w) {
    std::lock_guard lock(mu);
    owners[instance] = w;
  }
  void disown(const std::string& instance) {
    std::lock_guard lock(mu);
    owners.erase(instance);
  }
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(Controller::State& c, store::ServiceRecord rec) : c_(c), rec_(std::move(rec)) {
    name_ = rec_.name;
    log_ = std::make_shared<runtime::LogSink>(c_.deps.data_dir + "/logs/" + name_ + ".log");
  }

  void start() {
    auto self = shared_from_this();
    thread_ = std::thread([self] { self->run(); });
  }

  void post(Command cmd) {
    std::vector<int64_t> superseded;
    {
      std::lock_guard lock(mu_);
      if (cmd.kind == Command::Deploy || cmd.kind == Command::PushDeploy) {
        // A newer deployment supersedes those still queued.
        for (auto it = queue_.begin(); it != queue_.end();) {
          if (it->kind == Command::Deploy || it->kind == Command::PushDeploy) {
            if (it->kind == Command::Deploy) {
              superseded.push_back(it->deployment);
            } else {
              superseded_pushes_.push_back(*it);  // recorded by the worker (store writes)
            }
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
      }
      queue_.push_back(std::move(cmd));
    }
    cv_.notify_all();
    for (int64_t id : superseded) {
      finish_deployment(id, "SUPERSEDED", "a newer deployment was queued");
    }
  }

  void exited(const std::string& id, runtime::InstanceExit e) {
    {
      std::lock_guard lock(mu_);
      exits_.emplace_back(id, e);
    }
    cv_.notify_all();
  }

  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  ServiceView view() {
    std::lock_guard lock(mu_);
    ServiceView v = view_;
    for (auto& iv : v.instances) {
      auto it = in_flight_.find(iv.id);
      if (it != in_flight_.end()) {
        if (auto u = it->second.lock()) {
          iv.in_flight = u->in_flight.load();
        }
      }
    }
    return v;
  }

  /// The desired spec, for matching pushes (any thread).
  ServiceSpec desired() {
    std::lock_guard lock(mu_);
    return view_.spec;
  }
  std::string deployed_tag() {
    std::lock_guard lock(mu_);
    return deployed_tag_;
  }
  const std::string& log_path() const { return log_->path(); }

  /// Called before the worker starts: the spec and state it begins with.
  /// A new desired spec (update, deploy of another tag, rollback).
  void set_desired(ServiceSpec spec) {
    std::lock_guard lock(mu_);
    view_.spec = std::move(spec);
  }

  void init_view(ServiceSpec spec, std::string deployed_tag) {
    std::lock_guard lock(mu_);
    view_.name = name_;
    view_.spec = std::move(spec);
    view_.paused = rec_.paused;
    view_.revision = rec_.revision;
    view_.created_at = rec_.created_at;
    view_.url = c_.deps.url_base.empty()
                    ? ""
                    : c_.deps.url_base.substr(0, c_.deps.url_base.find("://") + 3) +
                          c_.host_for(name_) + c_.deps.url_base.substr(c_.deps.url_base.rfind(':'));
    view_.status = rec_.paused ? "paused" : (rec_.revision > 0 ? "deploying" : "waiting");
    deployed_tag_ = std::move(deployed_tag);
  }

 private:
  // ---- the loop ----
  void run();
  void handle(const Command& cmd);

  // ---- state shown by the API ----
  void set_status(const std::string& status, const std::string& reason);
  void refresh_view();
  void publish_route(const std::string& unavailable);

  // ---- instances ----
  Result<Revision> load_revision(int64_t number);
  Status check_pull(const ServiceSpec& spec);
  Result<Instance> launch(const Revision& rv);
  void kill(const Instance& i, milliseconds grace) { kill(i.id, grace); }
  void kill(const std::string& id, milliseconds grace);
  // The last lines an instance wrote, for failure reasons.
  std::string last_lines(const std::vector<std::string>& ids, int64_t since_ms);
  // Takes exits of the given instances out of the queue (those of others stay).
  std::optional<std::pair<std::string, runtime::InstanceExit>> take_exit(
      const std::vector<Instance>& of);
  bool stop_requested();
  // Probes until every instance is healthy; fails on an exit or at the deadline.
  Status wait_healthy(std::vector<Instance>& insts, const HealthCheck& h, milliseconds timeout,
                      int64_t since_ms);
  // Starts n instances of rv and waits for them; on failure stops them.
  Result<std::vector<Instance>> bring_up_instances(const Revision& rv, int n);
  // Old instances leave the route table first, then finish what they are serving.
  void drain_and_stop(std::vector<Instance> old, milliseconds timeout);
  int desired_count(const ServiceSpec& spec) const;

  // ---- deployments ----
  void finish_deployment(int64_t id, const std::string& status, const std::string& reason);
  void run_deployment(int64_t id);
  // A revision and its deployment record for a pushed image; 0 when they cannot be stored.
  int64_t record_push(const std::string& tag, const std::string& digest, const std::string& status,
                      const std::string& reason);
  void record_superseded_pushes();
  void push_deploy(const std::string& tag, const std::string& digest);
  // After a berthd restart: the serving revision comes back.
  void reconcile();
  void pause();
  void resume();
  void shutdown(bool remove);

  // ---- crashes, health, scaling ----
  void schedule_restarts(int n, const std::string& why);
  void on_exit(const std::string& id, const runtime::InstanceExit& e);
  void tick();
  void autoscale(Clock::time_point now);

  Controller::State& c_;
  store::ServiceRecord rec_;
  std::string name_;
  std::shared_ptr<runtime::LogSink> log_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Command> queue_;
  std::vector<std::pair<std::string, runtime::InstanceExit>> exits_;
  std::vector<Command> superseded_pushes_;
  ServiceView view_;
  std::string deployed_tag_;
  std::map<std::string, std::weak_ptr<router::Upstream>> in_flight_;

  // Worker thread only.
  std::optional<Revision> current_;
  std::vector<Instance> instances_;
  std::vector<Instance> draining_;
  std::deque<Clock::time_point> pending_restarts_;
  std::deque<Clock::time_point> crashes_;
  std::deque<std::pair<Clock::time_point, int64_t>> samples_;
  Clock::time_point calm_since_ = Clock::now();
  int restarts_ = 0;
};

}  // namespace berth::deploy
