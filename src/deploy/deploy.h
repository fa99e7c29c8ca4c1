// SPDX-License-Identifier: Apache-2.0
// Services and their deployments: the deploy controller turns a service's desired state (an
// image, a configuration, paused or not) into running instances behind the router.
//
// Every deployment is an immutable revision: the pinned image digest plus the whole service
// configuration. A deployment starts the new instances, waits until each passes its health
// check, switches the route table, lets the old instances drain, then stops them. One that
// does not become healthy in time is FAILED with the reason and the new instances' last log
// lines; the old revision keeps serving. Deployments of one service are serialized on that
// service's worker thread; a newer one supersedes any still queued.
//
// The controller also restarts crashed instances (exponential backoff), marks crash loops,
// health-checks running instances, autoscales on the router's in-flight counts, and on start
// reconciles every service back to its desired state.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/events.h"
#include "common/json.h"
#include "common/result.h"
#include "common/secret_box.h"
#include "store/store.h"

namespace berth::runtime {
struct Confinement;
class Runtime;
class ImagePreparer;
}  // namespace berth::runtime
namespace berth::router {
class Router;
}  // namespace berth::router
namespace berth::iam {
class PolicyAuthorizer;
}  // namespace berth::iam

namespace berth::deploy {

struct HealthCheck {
  std::string type = "tcp";  // "tcp" or "http"
  std::string path;          // http: the path, 2xx is healthy
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};
  int healthy_threshold = 1;    // consecutive successes to become healthy
  int unhealthy_threshold = 5;  // consecutive failures to be replaced
};

/// A service's configuration: what a revision pins along with the image digest.
struct ServiceSpec {
  std::string image;  // "web/app:latest" (or "web/app@sha256:...")
  uint16_t port = 8080;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secret_env;  // plaintext in memory only
  double cpus = 0;                                // 0 = no limit
  int64_t memory_bytes = 0;                       // 0 = no limit
  int min_instances = 1;
  int max_instances = 4;
  int concurrency = 100;  // in-flight requests per instance before scaling out
  HealthCheck health;
  std::string role;              // pulls with this role's rights; "" = berth's own
  bool auto_deploy = false;      // follow the tag in `image`
  std::string auto_deploy_tags;  // or: the highest semantic version among tags matching this
  std::chrono::milliseconds deploy_timeout{60000};
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds scale_in_cooldown{60000};
  // Confinement (docs/security.md). "unconfined" turns seccomp off and needs
  // service:Privileged on the service.
  std::string seccomp = "default";  // "default" or "unconfined"
  int64_t pids_limit = 1024;        // cgroup pids.max per instance; 0 = no limit
  bool read_only = false;           // read-only rootfs with a tmpfs at /tmp
  // How the router speaks to the instances: "http1" (HTTP/1.1) or "h2c" (HTTP/2 cleartext
  // with prior knowledge, for gRPC; reached by HTTP/2 clients over TLS).
  std::string protocol = "http1";

  std::string repository() const;  // "web/app"
  std::string tag() const;         // "latest", "" when pinned by digest
};

/// What the runtime applies to the spec's instances (seccomp, pids limit, read-only rootfs).
runtime::Confinement confinement_of(const ServiceSpec& spec);

/// Checks a service name: a DNS label of at most 40 characters ([a-z0-9-], no leading or
/// trailing '-').
Status validate_service_name(const std::string& name);

/// Applies a JSON request body ({"image":..., "port":..., "env":{...}, ...}, see docs/services.md)
/// over base. Errors name the field.
Result<ServiceSpec> spec_from_request(const Json& body, ServiceSpec base);

using berth::SecretBox;  // common/secret_box.h: secret env is sealed at rest

/// Stored form (secret values sealed) and back.
std::string spec_to_store(const ServiceSpec& spec, const SecretBox& box);
Result<ServiceSpec> spec_from_store(const std::string& json, const SecretBox& box);
/// The form the API shows: secret_env is the list of names, never the values.
Json spec_to_view(const ServiceSpec& spec);

/// "1.2.3", "v1.2", "v2.0.0-rc1" -> comparable parts; nullopt when not a version.
std::optional<std::vector<int64_t>> parse_semver(const std::string& tag);

struct InstanceView {
  std::string id;
  int64_t revision = 0;
  std::string state;  // starting, healthy, unhealthy, draining
  int64_t in_flight = 0;
  int64_t started_at = 0;
};

struct ServiceView {
  std::string name;
  ServiceSpec spec;
  bool paused = false;
  std::string status;  // waiting, deploying, running, unhealthy, failed, paused
  std::string reason;  // why it is not running, when it is not
  int64_t revision = 0;
  std::string digest;
  std::string url;
  int restarts = 0;
  std::vector<InstanceView> instances;
  int64_t created_at = 0;
};

struct ControllerDeps {
  store::MetadataStore& store;
  runtime::Runtime& runtime;
  runtime::ImagePreparer& preparer;
  router::Router& router;
  const iam::PolicyAuthorizer* authorizer = nullptr;  // null: roles are not checked
  std::string data_dir;
  std::string apps_domain = "localhost";
  std::string url_base;  // "http://{}:8080" style prefix used to show URLs: scheme://HOST:PORT
  /// For a repository under a pull-through upstream's prefix: makes repository:reference
  /// local and returns the digest it names. nullopt for any other repository (its images must
  /// have been pushed), and when unset.
  std::function<std::optional<Result<std::string>>(const std::string& repository,
                                                   const std::string& reference)>
      pull;
};

/// A custom domain (src/domains) served by a service: the service's route under another host.
struct DomainRoute {
  std::string service;
  bool https_redirect = true;  // plain HTTP answers 308 to https://
  bool hsts = false;
};

class Controller {
 public:
  explicit Controller(ControllerDeps deps);
  ~Controller();

  /// Loads services, stops instances left from a previous berthd and starts each service's
  /// worker (which brings it back to its desired state). Subscribes to ImagePushed.
  Status start(EventBus& bus);
  /// Stops every instance (draining briefly) and the workers.
  void stop();
  /// "http://127.0.0.1:8080": how service URLs are shown (host replaced by the service's).
  void set_url_base(std::string base);
  /// The linked domains (host -> route), republished with every route change. Thread-safe.
  void set_domains(std::map<std::string, DomainRoute> hosts);

  // All blocking (store and thread hand-offs): call through run_blocking.
  /// Creates the service and queues its first deployment (none when the image is not pushed
  /// yet and auto-deploy will bring it). Returns the view and the deployment id (0 if none).
  Result<std::pair<ServiceView, int64_t>> create(const std::string& name, ServiceSpec spec);
  /// A configuration change: a new revision of the running image with spec, deployed.
  Result<int64_t> update(const std::string& name, ServiceSpec spec);
  /// Deploys image (a tag or digest of the service's repository or another; "" = the spec's)
  /// resolved and pinned now.
  Result<int64_t> deploy(const std::string& name, const std::string& image);
  /// Redeploys the newest successful revision before the serving one.
  Result<int64_t> rollback(const std::string& name);
  Status pause(const std::string& name);
  Status resume(const std::string& name);
  Status remove(const std::string& name);
  Result<ServiceView> get(const std::string& name);
  Result<std::vector<ServiceView>> list();
  Result<std::vector<store::DeploymentRecord>> deployments(const std::string& name, int limit);
  Result<store::DeploymentRecord> deployment(int64_t id);
  /// The service's log file (DATA/logs/NAME.log), for reading with runtime::read_log.
  Result<std::string> log_path(const std::string& name);
  /// Spec stored for name (secrets decrypted), for updates that change a few fields.
  Result<ServiceSpec> spec(const std::string& name);

  /// Implementation detail, public only so the workers in controller.cc can name it.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace berth::deploy
