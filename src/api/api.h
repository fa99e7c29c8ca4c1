// SPDX-License-Identifier: Apache-2.0
// The control API (/api/v1, JSON) over the subsystems. Errors are
// {"error":{"code":"not_found","message":"..."}} with the status from one table.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "common/asio.h"
#include "http/http.h"
#include "iam/iam.h"
#include "registry/registry.h"

namespace berth::deploy {
class Controller;
}  // namespace berth::deploy
namespace berth::router {
class Router;
}  // namespace berth::router
namespace berth::builder {
class Service;
}  // namespace berth::builder

namespace berth::dns {
class Service;
class HealthChecker;
class TsigKeyring;
}  // namespace berth::dns

namespace berth::domains {
class Manager;
}  // namespace berth::domains

namespace berth::console {
class Sessions;
}  // namespace berth::console

namespace berth::api {

class MetricsHistory;
struct ApiCall;
struct SseLimits;

/// The console's sign-in (null sessions: the console is off).
struct ConsoleSettings {
  console::Sessions* sessions = nullptr;
  BlockingPool* pool = nullptr;
  /// Checks an access key for a sign-in, with the same lockout as HTTP Basic: the principal,
  /// or Unauthenticated, or ResourceExhausted with *retry_after set.
  std::function<Result<std::string>(const std::string& key_id, const std::string& secret,
                                    const std::string& peer, std::chrono::seconds* retry_after)>
      check_key;
  bool secure_cookie = false;          // the API listener speaks TLS
  std::chrono::seconds link_ttl{120};  // one-time sign-in links from `berth console`
};

/// The domains API's dependencies (null manager: custom domains are not available).
struct DomainsSettings {
  domains::Manager* manager = nullptr;
  BlockingPool* pool = nullptr;
  std::string unavailable_reason;
};

/// The DNS API's dependencies (null service: DNS is not available).
struct DnsSettings {
  dns::Service* service = nullptr;
  BlockingPool* pool = nullptr;
  dns::HealthChecker* health = nullptr;  // null: /api/v1/dns/healthchecks is unavailable
  dns::TsigKeyring* tsig = nullptr;      // null: /api/v1/dns/tsig is unavailable
};

/// What the API needs to authenticate and issue tokens (null/false when IAM is not enforced).
struct AuthSettings {
  bool require_auth = false;
  const iam::PolicyAuthorizer* authorizer = nullptr;
  const iam::TokenSigner* signer = nullptr;
  std::chrono::seconds token_ttl{15 * 60};
};

/// The services API's dependencies (null controller: services are not available).
struct ServicesSettings {
  deploy::Controller* controller = nullptr;
  router::Router* router = nullptr;
  BlockingPool* pool = nullptr;
  std::string unavailable_reason;  // why there is no controller, for the error message
  /// True when deploying repository:reference would fetch it from an upstream registry (it is
  /// under a pull-through prefix and not cached yet): the caller then needs
  /// registry:PullThrough too. Null: never.
  std::function<bool(const std::string& repository, const std::string& reference)> fetches_upstream;
};

/// The build API's dependencies (null service: builds are not available).
struct BuildSettings {
  builder::Service* service = nullptr;
  BlockingPool* pool = nullptr;
  bool allow_file_remotes = false;  // config build.allow_file_remotes: file:// git remotes
  std::string unavailable_reason;   // why there is no build service, for the error message
  /// Concurrent /git/ requests (each runs git http-backend on its own thread); more get 503.
  int max_git_requests = 32;
};

class Api {
 public:
  Api(registry::Registry& registry, iam::Service& iam, AuthSettings auth);
  ~Api();

  /// Serves one /api/v1/ request.
  awaitable<void> handle(http::Exchange& ex);
  /// GET /v2/token: the Docker registry token endpoint. Grants are the requested scopes that
  /// the principal's policies allow.
  awaitable<void> registry_token(http::Exchange& ex);
  /// Wires /api/v1/services and /api/v1/deployments.
  void set_services(ServicesSettings s) { services_ = std::move(s); }
  /// berthd is stopping: followed logs end now instead of holding their connections open.
  void shutdown() { stopping_->store(true); }
  /// Wires /api/v1/build/projects, /api/v1/builds, /hooks/github/ and /git/.
  void set_build(BuildSettings s) { build_ = std::move(s); }
  /// Wires /api/v1/dns/zones/...
  void set_dns(DnsSettings s) { dns_ = s; }
  /// The pool that /api/v1/registry/{upstreams,replications} run on (they block).
  void set_registry_pool(BlockingPool* pool) { registry_pool_ = pool; }
  /// Wires /api/v1/domains/... and /api/v1/ca.
  void set_domains(DomainsSettings s) { domains_ = std::move(s); }
  /// Wires /api/v1/console/... (sign-in sessions and links).
  void set_console(ConsoleSettings s) { console_ = std::move(s); }
  /// Samples the router's per-service counters into the last hour's history that
  /// GET /api/v1/services/NAME/metrics answers; the daemon calls it every metrics_interval().
  void sample_metrics();
  static std::chrono::seconds metrics_interval();
  /// POST /hooks/github/NAME: a GitHub-compatible webhook. Unauthenticated: the
  /// X-Hub-Signature-256 HMAC with the project's secret is the authentication.
  awaitable<void> github_webhook(http::Exchange& ex);
  /// /git/NAME.git/...: berth's git remote (smart HTTP through git http-backend), for
  /// principals authenticated by the caller (access keys over HTTP Basic); authorizes
  /// build:GitPull or build:GitPush on project/NAME and streams both bodies.
  awaitable<void> git(http::Exchange& ex);
  /// GET /metrics: Prometheus text (router and process metrics).
  awaitable<void> metrics(http::Exchange& ex);

 private:
  /// /api/v1/iam/... and /api/v1/repositories/NAME/policy.
  awaitable<void> handle_iam(http::Exchange& ex, std::string rest);
  /// /api/v1/services/... and /api/v1/deployments/ID.
  awaitable<void> handle_services(http::Exchange& ex, std::string rest);
  /// /api/v1/dns/zones/...
  awaitable<void> handle_dns(http::Exchange& ex, std::string rest);
  /// /api/v1/dns/healthchecks/... (dns_health.cc)
  awaitable<void> handle_dns_health(http::Exchange& ex, std::string rest);
  /// /api/v1/dns/tsig/... (dns_tsig.cc)
  awaitable<void> handle_dns_tsig(http::Exchange& ex, std::string rest);
  /// /api/v1/domains/... and /api/v1/ca (domains.cc)
  awaitable<void> handle_domains(http::Exchange& ex, std::string rest);
  /// /api/v1/registry/upstreams/... and /api/v1/registry/replications/... (upstreams.cc)
  awaitable<void> handle_upstreams(http::Exchange& ex, std::string rest);
  /// /api/v1/repositories/NAME/lifecycle[/preview] (lifecycle.cc)
  awaitable<void> handle_lifecycle(http::Exchange& ex, std::string rest);
  /// /api/v1/console/... (console.cc)
  awaitable<void> handle_console(http::Exchange& ex, std::string rest);
  struct ConsoleHeaders {
    std::string cookie, host, content_type, fetch_site, origin;
  };
  http::Response console_call(const ApiCall& call, const ConsoleHeaders& h);
  /// For a live stream: whether the request's session (if any), its key and its right to
  /// `action` on `resource` still hold, as decided now; not audited.
  bool still_allowed(const http::RequestContext& ctx, const std::string& action,
                     const std::string& resource) const;
  /// services/NAME/watch, services/NAME/logs?follow=1 and services/NAME/metrics
  /// (services_live.cc).
  static bool live_services_path(const std::string& rest, bhttp::verb m, bool follow);
  awaitable<void> serve_live_services(http::Exchange& ex, std::string rest);
  /// /api/v1/build/projects/... and /api/v1/builds/...
  awaitable<void> handle_build(http::Exchange& ex, std::string rest);
  /// GET /api/v1/builds/ID/logs?follow=1: the log as it grows, until the build ends.
  awaitable<void> follow_build_log(http::Exchange& ex, int64_t id, std::string path,
                                   uint64_t offset);

  registry::Registry& registry_;
  iam::Service& iam_;
  AuthSettings auth_;
  ServicesSettings services_;
  BuildSettings build_;
  DnsSettings dns_;
  DomainsSettings domains_;
  BlockingPool* registry_pool_ = nullptr;
  ConsoleSettings console_;
  std::shared_ptr<MetricsHistory> history_;
  std::shared_ptr<SseLimits> sse_limits_;
  std::shared_ptr<std::atomic<int>> git_requests_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
};

/// The HTTP status for an error code (the one table for the REST edge).
unsigned status_for(Errc code);

}  // namespace berth::api
