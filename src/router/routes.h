// SPDX-License-Identifier: Apache-2.0
// Private to the router: the route table as the hot path reads it. Router::publish compiles a
// RouteTable (router.h) into a Compiled snapshot (Core::compile, routes.cc); each I/O thread
// keeps the current one (ThreadCtx::routes) and looks a request's host up in it.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "router/metrics.h"
#include "router/router.h"

namespace berth::router {

struct Entry {
  const Route* route;
  ServiceMetrics* metrics;
};

// The published table plus what the hot path needs: host -> (route, metrics), keyed by views
// into the table's own strings.
struct Compiled {
  std::shared_ptr<const RouteTable> table;
  std::unordered_map<std::string_view, Entry> hosts;

  // The exact host first, then the wildcard one label up ("a.preview.example.com" ->
  // "*.preview.example.com"); null when neither is routed.
  const Entry* find(std::string_view host) const {
    if (auto it = hosts.find(host); it != hosts.end()) {
      return &it->second;
    }
    auto dot = host.find('.');
    if (dot == std::string_view::npos || dot == 0 || host.size() - dot > 254) {
      return nullptr;
    }
    char buf[256];
    buf[0] = '*';
    std::memcpy(buf + 1, host.data() + dot, host.size() - dot);
    auto it = hosts.find(std::string_view(buf, host.size() - dot + 1));
    return it == hosts.end() ? nullptr : &it->second;
  }
};

}  // namespace berth::router
