// SPDX-License-Identifier: Apache-2.0
// The router's Prometheus exposition: the per-thread metrics shards summed per service.
#include "router/router.h"
#include "router/state.h"

namespace berth::router {

namespace {

std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Distinct upstreams per service in the current route table (a service's hosts share them).
std::map<std::string, size_t> upstream_counts(const Compiled& cur) {
  std::map<std::string, std::set<const Upstream*>> ups;
  for (auto& [host, route] : cur.table->hosts) {
    auto& set = ups[route.service];
    for (auto& u : route.upstreams) {
      set.insert(u.get());
    }
  }
  std::map<std::string, size_t> out;
  for (auto& [service, set] : ups) {
    out[service] = set.size();
  }
  return out;
}

}  // namespace

void record_request(ServiceMetrics* m, size_t shard, unsigned status, Clock::duration elapsed) {
  auto& sh = m->shard[shard];
  unsigned cls = status / 100;
  bump(sh.classes[(cls >= 1 && cls <= 5) ? cls - 1 : 4], uint64_t{1});
  double secs = std::chrono::duration<double>(elapsed).count();
  size_t b = 0;
  while (b < kBuckets.size() && secs > kBuckets[b]) {
    ++b;
  }
  bump(sh.buckets[b], uint64_t{1});
  bump(sh.sum_us, static_cast<uint64_t>(
                      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
}

std::string Router::metrics_text() const {
  auto& st = *state_;
  std::vector<const ServiceMetrics*> list;
  {
    std::lock_guard lock(st.metrics_mu);
    for (auto& [name, m] : st.services) {
      list.push_back(m.get());
    }
  }
  std::sort(list.begin(), list.end(),
            [](const ServiceMetrics* a, const ServiceMetrics* b) { return a->name < b->name; });
  std::string out;
  out +=
      "# HELP berth_router_requests_total Requests answered, by service and status class.\n"
      "# TYPE berth_router_requests_total counter\n";
  static const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (auto* m : list) {
    for (size_t c = 0; c < 5; ++c) {
      uint64_t n = 0;
      for (size_t s = 0; s < m->nshards; ++s) {
        n += m->shard[s].classes[c].load(std::memory_order_relaxed);
      }
      if (n > 0) {
        out += fmt::format("berth_router_requests_total{{service=\"{}\",code_class=\"{}\"}} {}\n",
                           escape_label(m->name), kClasses[c], n);
      }
    }
  }
  out +=
      "# HELP berth_router_request_duration_seconds Time from request head to the last byte "
      "of the response.\n"
      "# TYPE berth_router_request_duration_seconds histogram\n";
  for (auto* m : list) {
    std::string label = escape_label(m->name);
    uint64_t cumulative = 0;
    uint64_t sum_us = 0;
    for (size_t s = 0; s < m->nshards; ++s) {
      sum_us += m->shard[s].sum_us.load(std::memory_order_relaxed);
    }
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
      for (size_t s = 0; s < m->nshards; ++s) {
        cumulative += m->shard[s].buckets[b].load(std::memory_order_relaxed);
      }
      if (b < kBuckets.size()) {
        out += fmt::format(
            "berth_router_request_duration_seconds_bucket{{service=\"{}\",le=\"{}\"}} {}\n", label,
            kBuckets[b], cumulative);
      } else {
        out += fmt::format(
            "berth_router_request_duration_seconds_bucket{{service=\"{}\",le=\"+Inf\"}} {}\n",
            label, cumulative);
      }
    }
    out += fmt::format("berth_router_request_duration_seconds_sum{{service=\"{}\"}} {:.6f}\n",
                       label, static_cast<double>(sum_us) / 1e6);
    out += fmt::format("berth_router_request_duration_seconds_count{{service=\"{}\"}} {}\n", label,
                       cumulative);
  }
  out +=
      "# HELP berth_router_in_flight Requests being proxied now.\n"
      "# TYPE berth_router_in_flight gauge\n";
  for (auto* m : list) {
    int64_t n = 0;
    for (size_t s = 0; s < m->nshards; ++s) {
      n += m->shard[s].in_flight.load(std::memory_order_relaxed);
    }
    out += fmt::format("berth_router_in_flight{{service=\"{}\"}} {}\n", escape_label(m->name), n);
  }
  out +=
      "# HELP berth_router_upstreams Upstreams of each service in the current route table.\n"
      "# TYPE berth_router_upstreams gauge\n";
  out += fmt::format(
      "# HELP berth_router_connections Client connections open now.\n"
      "# TYPE berth_router_connections gauge\n"
      "berth_router_connections {}\n"
      "# HELP berth_router_tls_handshakes_total TLS handshakes, by result.\n"
      "# TYPE berth_router_tls_handshakes_total counter\n"
      "berth_router_tls_handshakes_total{{result=\"ok\"}} {}\n"
      "berth_router_tls_handshakes_total{{result=\"failed\"}} {}\n",
      st.gate.open(), st.tls.handshakes_ok.load(std::memory_order_relaxed),
      st.tls.handshakes_failed.load(std::memory_order_relaxed));
  auto ups = upstream_counts(*st.current.load());
  for (auto& [service, n] : ups) {
    out += fmt::format("berth_router_upstreams{{service=\"{}\"}} {}\n", escape_label(service), n);
  }
  return out;
}

std::vector<double> Router::bucket_bounds() { return {kBuckets.begin(), kBuckets.end()}; }

std::vector<Router::ServiceStats> Router::service_stats() const {
  auto& st = *state_;
  std::vector<ServiceStats> out;
  {
    std::lock_guard lock(st.metrics_mu);
    for (auto& [name, m] : st.services) {
      ServiceStats s;
      s.service = m->name;
      s.buckets.assign(kBuckets.size() + 1, 0);
      for (size_t i = 0; i < m->nshards; ++i) {
        const auto& sh = m->shard[i];
        for (size_t c = 0; c < 5; ++c) {
          s.classes[c] += sh.classes[c].load(std::memory_order_relaxed);
        }
        for (size_t b = 0; b <= kBuckets.size(); ++b) {
          s.buckets[b] += sh.buckets[b].load(std::memory_order_relaxed);
        }
        s.in_flight += sh.in_flight.load(std::memory_order_relaxed);
      }
      out.push_back(std::move(s));
    }
  }
  auto ups = upstream_counts(*st.current.load());
  for (auto& s : out) {
    if (auto it = ups.find(s.service); it != ups.end()) {
      s.upstreams = it->second;
    }
  }
  return out;
}

}  // namespace berth::router
