// SPDX-License-Identifier: Apache-2.0
// Compiling a published route table into the snapshot the hot path reads (routes.h).
#include "router/routes.h"

#include "router/state.h"

namespace berth::router {

std::shared_ptr<const Compiled> Core::compile(std::shared_ptr<const RouteTable> t) {
  auto c = std::make_shared<Compiled>();
  c->table = std::move(t);
  c->hosts.reserve(c->table->hosts.size());
  for (auto& [host, route] : c->table->hosts) {
    c->hosts.emplace(std::string_view(host), Entry{&route, metrics_for(route.service)});
  }
  return c;
}

}  // namespace berth::router
