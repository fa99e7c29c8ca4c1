// SPDX-License-Identifier: Apache-2.0
// The control API (/api/v1, JSON) over the subsystems. Errors are
// {"error":{"code":"not_found","message":"..."}} with the status from one table.
#pragma once

#include "common/asio.h"
#include "http/http.h"
#include "registry/registry.h"

namespace berth::api {

class Api {
 public:
  explicit Api(registry::Registry& registry) : registry_(registry) {}

  /// Serves one /api/v1/ request.
  awaitable<void> handle(http::Exchange& ex);

 private:
  registry::Registry& registry_;
};

/// The HTTP status for an error code (the one table for the REST edge).
unsigned status_for(Errc code);

}  // namespace berth::api
