// SPDX-License-Identifier: Apache-2.0
// The live side of /api/v1/services: a service's state and deployments as they change
// (`watch`), its logs as they are written (`logs?follow=1`), both as Server-Sent Events, and
// the last hour of its traffic (`metrics`), sampled from the router into memory.
#include <cmath>
#include <ctime>
#include <deque>
#include <mutex>

#include "api/api.h"
#include "api/internal.h"
#include "common/json.h"
#include "deploy/deploy.h"
#include "router/router.h"
#include "runtime/runtime.h"

namespace berth::api {

namespace {

constexpr std::chrono::milliseconds kLivePoll{300};
// How often an open stream asks again whether its reader may still read it (signed out, key
// deactivated, right removed): every this many polls, about 10 s.
constexpr int kRecheckPolls = 33;
// JSON of text that came from containers: invalid UTF-8 is replaced, never an exception.
std::string dump_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}
// Lines sent per poll of a followed log at most; a flood beyond it skips to the newest.
constexpr size_t kMaxLinesPerPoll = 2000;

Json lines_json(const std::vector<runtime::LogLine>& lines) {
  Json arr = Json::array();
  for (const auto& l : lines) {
    arr.push_back(Json{
        {"time_ms", l.time_ms}, {"instance", l.instance}, {"stream", l.stream}, {"text", l.text}});
  }
  return Json{{"lines", arr}};
}

}  // namespace

/// The last hour of each service's traffic, one point per sample interval.
class MetricsHistory {
 public:
  struct Point {
    int64_t time = 0;
    double rps = 0;
    double p50_ms = -1, p90_ms = -1, p99_ms = -1;  // -1: no requests in the interval
    uint64_t status[4] = {};                       // 2xx 3xx 4xx 5xx (1xx counted as 2xx)
    size_t instances = 0;
  };

  void sample(const std::vector<router::Router::ServiceStats>& stats, int64_t now) {
    static const std::vector<double> bounds = router::Router::bucket_bounds();
    std::lock_guard lock(mu_);
    for (const auto& s : stats) {
      auto& h = services_[s.service];
      if (h.last_time != 0 && now > h.last_time) {
        Point p;
        p.time = now;
        uint64_t total = 0;
        for (size_t c = 0; c < 5; ++c) {
          uint64_t d = s.classes[c] - h.last.classes[c];
          total += d;
          p.status[c == 0 ? 0 : c - 1] += d;
        }
        p.rps = static_cast<double>(total) / static_cast<double>(now - h.last_time);
        std::vector<uint64_t> delta(s.buckets.size());
        uint64_t n = 0;
        for (size_t b = 0; b < s.buckets.size(); ++b) {
          delta[b] = s.buckets[b] - (b < h.last.buckets.size() ? h.last.buckets[b] : 0);
          n += delta[b];
        }
        if (n > 0) {
          p.p50_ms = quantile_ms(delta, n, 0.50, bounds);
          p.p90_ms = quantile_ms(delta, n, 0.90, bounds);
          p.p99_ms = quantile_ms(delta, n, 0.99, bounds);
        }
        p.instances = s.upstreams;
        h.points.push_back(p);
        while (h.points.size() > kPoints) {
          h.points.pop_front();
        }
      }
      h.last = s;
      h.last_time = now;
    }
  }

  Json json(const std::string& service, int64_t since) const {
    Json arr = Json::array();
    std::lock_guard lock(mu_);
    if (auto it = services_.find(service); it != services_.end()) {
      for (const auto& p : it->second.points) {
        if (p.time < since) {
          continue;
        }
        auto ms = [](double v) { return v < 0 ? Json(nullptr) : Json(std::round(v * 100) / 100); };
        arr.push_back(Json{{"time", p.time},
                           {"rps", std::round(p.rps * 100) / 100},
                           {"p50_ms", ms(p.p50_ms)},
                           {"p90_ms", ms(p.p90_ms)},
                           {"p99_ms", ms(p.p99_ms)},
                           {"status",
                            {{"2xx", p.status[0]},
                             {"3xx", p.status[1]},
                             {"4xx", p.status[2]},
                             {"5xx", p.status[3]}}},
                           {"instances", p.instances}});
      }
    }
    return Json{{"interval_seconds", kInterval.count()}, {"points", arr}};
  }

  static constexpr std::chrono::seconds kInterval{10};
  static constexpr size_t kPoints = 360;  // an hour

 private:
  // The q-quantile of a histogram (counts per bucket), interpolated inside its bucket, in ms.
  static double quantile_ms(const std::vector<uint64_t>& counts, uint64_t n, double q,
                            const std::vector<double>& bounds) {
    double rank = q * static_cast<double>(n);
    double seen = 0;
    for (size_t b = 0; b < counts.size(); ++b) {
      double c = static_cast<double>(counts[b]);
      if (c > 0 && seen + c >= rank) {
        double lo = b == 0 ? 0 : bounds[b - 1];
        double hi = b < bounds.size() ? bounds[b] : bounds.back();
        return 1000 * (lo + (hi - lo) * std::clamp((rank - seen) / c, 0.0, 1.0));
      }
      seen += c;
    }
    return 1000 * bounds.back();
  }

  struct History {
    router::Router::ServiceStats last;
    int64_t last_time = 0;
    std::deque<Point> points;
  };
  mutable std::mutex mu_;
  std::map<std::string, History> services_;
};

Api::Api(registry::Registry& registry, iam::Service& iam, AuthSettings auth)
    : registry_(registry),
      iam_(iam),
      auth_(auth),
      history_(std::make_shared<MetricsHistory>()),
      sse_limits_(std::make_shared<SseLimits>()) {}

Api::~Api() = default;

std::chrono::seconds Api::metrics_interval() { return MetricsHistory::kInterval; }

void Api::sample_metrics() {
  if (services_.router == nullptr) {
    return;
  }
  history_->sample(services_.router->service_stats(), static_cast<int64_t>(std::time(nullptr)));
}

bool Api::live_services_path(const std::string& rest, bhttp::verb m, bool follow) {
  if (m != bhttp::verb::get) {
    return false;
  }
  auto seg = segments(rest);
  return seg.size() == 3 && seg[0] == "services" &&
         (seg[2] == "watch" || seg[2] == "metrics" || (seg[2] == "logs" && follow));
}

awaitable<void> Api::serve_live_services(http::Exchange& ex, std::string rest) {
  auto seg = segments(rest);
  std::string name = seg[1];
  std::string what = seg[2];
  std::string resource = "service/" + name;
  auto* c = services_.controller;
  auto* iam = &iam_;
  http::RequestContext ctx = ex.context();

  if (what == "metrics") {
    auto job = [c, iam, ctx, name, resource, history = history_]() -> http::Response {
      if (Status s = iam->authorize(ctx, "service:GetService", resource); !s) {
        return error_response(s.error());
      }
      if (auto v = c->get(name); !v) {
        return error_response(v.error());
      }
      int64_t since = static_cast<int64_t>(std::time(nullptr)) - 3600;
      return json_response(200, history->json(name, since));
    };
    http::Response r = co_await run_blocking(*services_.pool, std::move(job));
    co_return co_await ex.send(std::move(r));
  }

  std::function<SsePoll()> poll;
  if (what == "watch") {
    // Sends the service and its deployments at once, then again whenever either changes.
    struct Seen {
      bool authorized = false;
      int polls = 0;
      std::string service, deployments;
    };
    auto seen = std::make_shared<Seen>();
    poll = [this, c, iam, ctx, name, resource, seen]() -> SsePoll {
      SsePoll p;
      if (!seen->authorized) {
        if (Status s = iam->authorize(ctx, "service:GetService", resource); !s) {
          p.error = s.error();
          return p;
        }
        seen->authorized = true;
      } else if (++seen->polls % kRecheckPolls == 0 &&
                 !still_allowed(ctx, "service:GetService", resource)) {
        p.events = sse_event("ended", Json{{"reason", "signed out, or no longer allowed"}}.dump());
        p.done = true;
        return p;
      }
      auto v = c->get(name);
      if (!v) {
        if (v.error().code() == Errc::NotFound && !seen->service.empty()) {
          p.events = sse_event("deleted", Json{{"service", name}}.dump());
          p.done = true;
        } else {
          p.error = v.error();
        }
        return p;
      }
      std::string sj = dump_text(service_json(*v));
      if (sj != seen->service) {
        p.events += sse_event("service", sj);
        seen->service = std::move(sj);
      }
      if (auto list = c->deployments(name, 20)) {
        Json arr = Json::array();
        for (const auto& d : *list) {
          arr.push_back(deployment_json(d));
        }
        std::string dj = dump_text(Json{{"deployments", arr}});
        if (dj != seen->deployments) {
          p.events += sse_event("deployments", dj);
          seen->deployments = std::move(dj);
        }
      }
      return p;
    };
  } else {
    // logs?follow=1: the recent lines (or those since since_ms), then new ones as written.
    char* end = nullptr;
    std::string since_s = ex.query("since_ms").value_or("0");
    long long since = std::strtoll(since_s.c_str(), &end, 10);
    if (*end != '\0') {
      co_return co_await ex.send(
          error_response(Error(Errc::InvalidArgument, "since_ms must be a number")));
    }
    struct Tail {
      bool started = false;
      int polls = 0;
      std::string path;
      uint64_t offset = 0;
    };
    auto tail = std::make_shared<Tail>();
    std::string instance = ex.query("instance").value_or("");
    poll = [this, c, iam, ctx, name, resource, tail, since, instance]() -> SsePoll {
      SsePoll p;
      if (!tail->started) {
        if (Status s = iam->authorize(ctx, "service:GetLogs", resource); !s) {
          p.error = s.error();
          return p;
        }
        auto path = c->log_path(name);
        if (!path) {
          p.error = path.error();
          return p;
        }
        tail->path = *path;
        tail->started = true;
        auto lines = runtime::read_log(tail->path, since, instance, 1000, &tail->offset);
        p.events = sse_event("lines", dump_text(lines_json(lines)));
        return p;
      }
      if (++tail->polls % kRecheckPolls == 0 && !still_allowed(ctx, "service:GetLogs", resource)) {
        p.events = sse_event("ended", Json{{"reason", "signed out, or no longer allowed"}}.dump());
        p.done = true;
        return p;
      }
      auto lines = runtime::read_log(tail->path, 0, instance, kMaxLinesPerPoll, &tail->offset);
      if (!lines.empty()) {
        p.events = sse_event("lines", dump_text(lines_json(lines)));
      }
      return p;
    };
  }
  co_await serve_sse(ex, *services_.pool, std::move(poll), kLivePoll, stopping_, sse_limits_);
}

}  // namespace berth::api
