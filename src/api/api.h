// SPDX-License-Identifier: Apache-2.0
// The control API (/api/v1, JSON) over the subsystems. Errors are
// {"error":{"code":"not_found","message":"..."}} with the status from one table.
#pragma once

#include <chrono>

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

namespace berth::api {

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
};

class Api {
 public:
  Api(registry::Registry& registry, iam::Service& iam, AuthSettings auth)
      : registry_(registry), iam_(iam), auth_(auth) {}

  /// Serves one /api/v1/ request.
  awaitable<void> handle(http::Exchange& ex);
  /// GET /v2/token: the Docker registry token endpoint. Grants are the requested scopes that
  /// the principal's policies allow.
  awaitable<void> registry_token(http::Exchange& ex);
  /// Wires /api/v1/services and /api/v1/deployments.
  void set_services(ServicesSettings s) { services_ = std::move(s); }
  /// GET /metrics: Prometheus text (router and process metrics).
  awaitable<void> metrics(http::Exchange& ex);

 private:
  /// /api/v1/iam/... and /api/v1/repositories/NAME/policy.
  awaitable<void> handle_iam(http::Exchange& ex, std::string rest);
  /// /api/v1/services/... and /api/v1/deployments/ID.
  awaitable<void> handle_services(http::Exchange& ex, std::string rest);

  registry::Registry& registry_;
  iam::Service& iam_;
  AuthSettings auth_;
  ServicesSettings services_;
};

/// The HTTP status for an error code (the one table for the REST edge).
unsigned status_for(Errc code);

}  // namespace berth::api
