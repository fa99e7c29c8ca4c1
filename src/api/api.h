// SPDX-License-Identifier: Apache-2.0
// The control API (/api/v1, JSON) over the subsystems. Errors are
// {"error":{"code":"not_found","message":"..."}} with the status from one table.
#pragma once

#include "common/asio.h"
#include "http/http.h"
#include "iam/iam.h"
#include "registry/registry.h"

namespace berth::api {

class Api {
 public:
  Api(registry::Registry& registry, iam::Service& iam) : registry_(registry), iam_(iam) {}

  /// Serves one /api/v1/ request.
  awaitable<void> handle(http::Exchange& ex);

 private:
  /// /api/v1/iam/... and /api/v1/repositories/NAME/policy.
  awaitable<void> handle_iam(http::Exchange& ex, std::string rest);

  registry::Registry& registry_;
  iam::Service& iam_;
};

/// The HTTP status for an error code (the one table for the REST edge).
unsigned status_for(Errc code);

}  // namespace berth::api
