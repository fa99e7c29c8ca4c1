// SPDX-License-Identifier: Apache-2.0
// The deploy controller. One worker thread per service owns that service's instances and runs
// its deployments one at a time; everything a worker does (runc, image unpacking, health
// probes, the store) is blocking and stays on that thread, so services never wait on each
// other and the I/O threads never wait on any of it. Workers share only the route table
// (published to the router under a mutex) and the instance-id -> worker map used to deliver
// exit notifications.
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

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }
int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string seconds_text(milliseconds d) {
  if (d.count() % 1000 == 0) {
    return std::to_string(d.count() / 1000) + "s";
  }
  return std::to_string(d.count()) + "ms";
}

// One health probe, blocking for at most h.timeout: TCP connect, or an HTTP GET whose status
// must be 2xx. why says what failed.
bool probe(const NetNs& ns, uint16_t port, const HealthCheck& h, std::string* why) {
  auto fd = ns.tcp_socket();
  if (!fd) {
    *why = fd.error().message();
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  auto deadline = Clock::now() + h.timeout;
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::max<int64_t>(left, 0));
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string target = h.type + " :" + std::to_string(port);
  if (::connect(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      *why = target + ": " + std::strerror(errno);
      return false;
    }
    pollfd p{*fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": connect timed out after " + seconds_text(h.timeout);
      return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      *why = target + ": " + std::strerror(err);
      return false;
    }
  }
  if (h.type != "http") {
    return true;
  }
  target = "http GET " + h.path + " on :" + std::to_string(port);
  std::string req = "GET " + h.path +
                    " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: berth-health\r\n"
                    "Connection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    pollfd p{*fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": timed out";
      return false;
    }
    ssize_t n = ::send(*fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      *why = target + ": " + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    pollfd p{*fd, POLLIN, 0};
    if (::poll(&p, 1, remaining()) <= 0) {
      *why = target + ": no response within " + seconds_text(h.timeout);
      return false;
    }
    char buf[1024];
    ssize_t n = ::recv(*fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *why = target + ": connection closed before a response";
      return false;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  auto sp = head.find(' ');
  int status = sp == std::string::npos ? 0 : std::atoi(head.c_str() + sp + 1);
  if (status < 200 || status > 299) {
    *why = target + ": status " + std::to_string(status);
    return false;
  }
  return true;
}

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

}  // namespace

class Worker;

struct Controller::State {
  ControllerDeps deps;
  std::shared_ptr<SecretBox> box;
  std::shared_ptr<spdlog::logger> log = log::get("deploy");

  std::mutex mu;  // workers, owners, routes
  std::map<std::string, std::shared_ptr<Worker>> workers;
  std::map<std::string, std::weak_ptr<Worker>> owners;  // instance id -> worker
  std::map<std::string, router::Route> routes;          // service -> route
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
    } else {
      routes.erase(service);
    }
    for (const auto& [name, r] : routes) {
      table->hosts[host_for(name)] = r;
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

  void run() {
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

  void handle(const Command& cmd) {
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

  // ---- state shown by the API ----

  void set_status(const std::string& status, const std::string& reason) {
    std::lock_guard lock(mu_);
    view_.status = status;
    view_.reason = reason;
  }

  void refresh_view() {
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

  void publish_route(const std::string& unavailable) {
    router::Route r;
    r.service = name_;
    for (const auto& i : instances_) {
      if (i.state == "healthy") {
        r.upstreams.push_back(i.upstream);
      }
    }
    r.unavailable_reason = unavailable;
    if (r.unavailable_reason.empty() && r.upstreams.empty()) {
      r.unavailable_reason = "service " + name_ + " has no healthy instance";
    }
    c_.set_route(name_, std::move(r));
    refresh_view();
  }

  // ---- instances ----

  Result<Revision> load_revision(int64_t number) {
    BERTH_ASSIGN_OR_RETURN(auto rec, c_.deps.store.get_revision(name_, number));
    Revision rv;
    rv.number = number;
    rv.digest = rec.digest;
    BERTH_ASSIGN_OR_RETURN(rv.spec, spec_from_store(rec.spec, *c_.box));
    BERTH_TRY(check_pull(rv.spec));
    BERTH_ASSIGN_OR_RETURN(rv.image, c_.deps.preparer.prepare(rv.spec.repository(), rv.digest));
    return rv;
  }

  Status check_pull(const ServiceSpec& spec) {
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

  Result<Instance> launch(const Revision& rv) {
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

  void kill(const Instance& i, milliseconds grace) { kill(i.id, grace); }
  void kill(const std::string& id, milliseconds grace) {
    auto s = c_.deps.runtime.stop(id, grace);
    if (!s) {
      c_.log->warn("service {} instance {}: stop: {}", name_, id, s.error().message());
    }
    c_.disown(id);
  }

  // The last lines an instance wrote, for failure reasons.
  std::string last_lines(const std::vector<std::string>& ids, int64_t since_ms) {
    std::string out;
    for (const auto& id : ids) {
      for (const auto& l : runtime::read_log(log_->path(), since_ms, id, 10)) {
        out += "\n  " + l.instance + " " + l.stream + ": " + l.text;
      }
    }
    return out.empty() ? "" : "\nlast log lines:" + out;
  }

  // Takes exits of the given instances out of the queue (those of others stay).
  std::optional<std::pair<std::string, runtime::InstanceExit>> take_exit(
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

  bool stop_requested() {
    std::lock_guard lock(mu_);
    for (const auto& c : queue_) {
      if (c.kind == Command::Stop || c.kind == Command::Remove) {
        return true;
      }
    }
    return false;
  }

  // Probes until every instance is healthy; fails on an exit or at the deadline.
  Status wait_healthy(std::vector<Instance>& insts, const HealthCheck& h, milliseconds timeout,
                      int64_t since_ms) {
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
  Result<std::vector<Instance>> bring_up_instances(const Revision& rv, int n) {
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
  void drain_and_stop(std::vector<Instance> old, milliseconds timeout) {
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

  int desired_count(const ServiceSpec& spec) const {
    int live = static_cast<int>(instances_.size());
    return std::clamp(std::max(live, spec.min_instances), std::max(spec.min_instances, 1),
                      std::max(spec.max_instances, 1));
  }

  // ---- deployments ----

  void finish_deployment(int64_t id, const std::string& status, const std::string& reason) {
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

  void run_deployment(int64_t id) {
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
  int64_t record_push(const std::string& tag, const std::string& digest, const std::string& status,
                      const std::string& reason) {
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

  void record_superseded_pushes() {
    std::vector<Command> pushes;
    {
      std::lock_guard lock(mu_);
      pushes.swap(superseded_pushes_);
    }
    for (const auto& p : pushes) {
      record_push(p.tag, p.digest, "SUPERSEDED", "a newer push was queued");
    }
  }

  void push_deploy(const std::string& tag, const std::string& digest) {
    record_superseded_pushes();  // older pushes first, so ids follow push order
    if (current_ && current_->digest == digest && current_->spec.tag() == tag) {
      return;  // already serving exactly this
    }
    if (int64_t id = record_push(tag, digest, "QUEUED", ""); id != 0) {
      run_deployment(id);
    }
  }

  // After a berthd restart: the serving revision comes back.
  void reconcile() {
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

  void pause() {
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

  void resume() {
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

  void shutdown(bool remove) {
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

  // ---- crashes, health, scaling ----

  void schedule_restarts(int n, const std::string& why) {
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

  void on_exit(const std::string& id, const runtime::InstanceExit& e) {
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

  void tick() {
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

  void autoscale(Clock::time_point now) {
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

// ---- Controller -----------------------------------------------------------------------------

Controller::Controller(ControllerDeps deps) : state_(std::make_shared<State>(std::move(deps))) {}

Controller::~Controller() { stop(); }

void Controller::set_url_base(std::string base) { state_->deps.url_base = std::move(base); }

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

// repo:tag (or repo@digest) -> the digest it names now.
Result<std::string> resolve(store::MetadataStore& store, const ServiceSpec& spec) {
  auto at = spec.image.find('@');
  std::string repo = spec.repository();
  auto r = store.get_repository(repo);
  if (!r) {
    return Error(Errc::NotFound, "repository " + repo +
                                     " does not exist; create it with: "
                                     "berth repo create " +
                                     repo);
  }
  std::string ref = at != std::string::npos ? spec.image.substr(at + 1) : spec.tag();
  auto m = store.get_manifest(r->id, ref);
  if (!m) {
    return Error(Errc::NotFound, "image " + spec.image + " does not exist; push it first");
  }
  return m->digest;
}

}  // namespace

Result<std::pair<ServiceView, int64_t>> Controller::create(const std::string& name,
                                                           ServiceSpec spec) {
  auto& s = *state_;
  BERTH_TRY(validate_service_name(name));
  if (!s.started) {
    return Error(Errc::Unavailable, "services are not available on this berthd");
  }
  auto digest = resolve(s.deps.store, spec);
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
    auto d = resolve(s.deps.store, spec);
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
  BERTH_ASSIGN_OR_RETURN(auto digest, resolve(s.deps.store, spec));
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
