// SPDX-License-Identifier: Apache-2.0
// The ingress router: an HTTP/1.1 reverse proxy (plain HTTP and HTTPS with SNI; HTTP/2 over
// TLS by ALPN) that routes by Host to upstreams. It knows
// only its route table: whoever runs instances (the deploy controller) publishes an immutable
// RouteTable snapshot, swapped in atomically; requests already in flight finish on the
// snapshot they started with.
//
// Per request: pick the upstream with the fewest requests in flight; take a keep-alive
// connection from that upstream's pool (or open one, inside the upstream's network namespace
// when it has one); stream the request body up and the response body down without buffering
// either whole; pass Upgrade (WebSocket) requests through as a raw byte tunnel; add
// X-Forwarded-For, X-Forwarded-Proto (http or https, per connection), X-Forwarded-Host and
// X-Request-Id. Errors are short
// plain-text bodies: 404 for an unknown host (naming it), 503 when a route has no upstream,
// 502 when the upstream fails, 504 when it does not answer in time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/asio.h"
#include "common/listener.h"
#include "common/netns.h"
#include "common/result.h"
#include "tls/tls.h"

namespace berth::router {

/// One backend: an instance. The same object stays in successive route tables while the
/// instance lives, so its counters and connection pool carry over.
struct Upstream {
  std::string id;                // instance id (logs, metrics)
  std::shared_ptr<NetNs> netns;  // null: connect from the host's own namespace
  std::string host = "127.0.0.1";
  uint16_t port = 0;

  std::atomic<int64_t> in_flight{0};  // requests being proxied to it now
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> failures_total{0};  // connect errors, resets, timeouts

  /// Idle keep-alive connections, owned by the router (opaque here).
  struct Pool;
  std::shared_ptr<Pool> pool;

  Upstream();
  ~Upstream();
};

struct Route {
  std::string service;                               // label for logs and metrics
  std::vector<std::shared_ptr<Upstream>> upstreams;  // healthy instances; may be empty
  /// Body of the 503 when upstreams is empty ("service web is paused").
  std::string unavailable_reason;
  /// Plain HTTP -> 308 to https://host[:port]/path?query, except
  /// /.well-known/acme-challenge/ (and only while a TLS listener is bound).
  bool https_redirect = false;
  /// Add Strict-Transport-Security (max-age from RouterOptions) to HTTPS responses.
  bool hsts = false;
  /// How the router speaks to the instances.
  enum class Protocol { http1, h2c } protocol = Protocol::http1;
};

/// A certificate the router serves over TLS (tls/tls.h).
using TlsCertificate = tls::Certificate;

/// Immutable once published.
struct RouteTable {
  /// Lower-case host name without port -> route.
  std::unordered_map<std::string, Route> hosts;
};

struct RouterOptions {
  std::chrono::milliseconds connect_timeout{5000};
  /// Time to wait for the upstream's response headers. No cap on the body: long polling and
  /// streaming responses run as long as data keeps moving.
  std::chrono::milliseconds response_timeout{60000};
  /// Close a connection with no bytes moving inside a request (a quiet response stream, an
  /// Upgrade tunnel, an idle pooled upstream connection) after this long.
  std::chrono::milliseconds idle_timeout{300000};
  /// A kept-alive client connection may wait this long for its next request to begin.
  std::chrono::milliseconds keepalive_timeout{60000};
  /// A request head must arrive whole within this long (of accept, or of its first byte).
  std::chrono::milliseconds header_timeout{30000};
  /// A request body with no bytes arriving for this long is dropped.
  std::chrono::milliseconds body_timeout{60000};
  /// Client connections held open at once, in total and per source address.
  net::ConnectionLimits limits{16384, 1024};
  /// Idle kept-alive connections to one upstream, per I/O thread (router.max_idle_per_upstream).
  /// HTTP/2 clients multiplex many streams, each proxied on its own upstream connection: a pool
  /// smaller than the streams in flight closes a connection after most responses and opens a
  /// new one for the next request, and that churn (thousands of TIME_WAITs a second) is what
  /// gave HTTP/2 its 0.6-1.8 s tail.
  size_t max_idle_per_upstream = 1024;
  bool access_log = true;
  /// The port https_redirect sends clients to: 0 = the first bound TLS port. Left out of the
  /// URL when 443.
  uint16_t https_port = 0;
  /// Strict-Transport-Security max-age for routes with hsts.
  std::chrono::seconds hsts_max_age{365 * 24 * 3600};
  /// Offer HTTP/2 (ALPN "h2") on TLS listeners.
  bool http2 = true;
  /// Session-ticket keys are replaced this often; tickets sealed with the previous two keys
  /// still resume (and get a fresh ticket).
  std::chrono::seconds ticket_key_rotation{3600};
};

class Router {
 public:
  /// One io_context per I/O thread, as for http::Server; connections spread round-robin.
  Router(std::vector<asio::io_context*> contexts, RouterOptions opts);
  ~Router();

  /// Binds host:port for plain HTTP (port 0 picks a free one); returns the bound port.
  /// Repeatable (IPv4 and IPv6). Call before start().
  Result<uint16_t> listen(const std::string& host, uint16_t port);
  /// Binds a TLS listener (port 0 picks a free one); returns the bound port. Repeatable.
  Result<uint16_t> listen_tls(const std::string& host, uint16_t port);
  void start();
  /// Stops accepting and closes idle connections; in-flight requests finish (bounded).
  void stop();

  /// Swaps the table in atomically. Thread-safe.
  void publish(std::shared_ptr<const RouteTable> table);
  std::shared_ptr<const RouteTable> table() const;

  /// Checks every certificate (PEM parses, key matches the leaf) and swaps the whole set in
  /// atomically; on any error nothing changes and the error (InvalidArgument) names the bad
  /// certificate. New handshakes use the new set; open connections keep theirs (no
  /// connection dropped). Until a set is published, TLS handshakes fail with an alert.
  /// Thread-safe.
  Status publish_certificates(std::vector<TlsCertificate> certs);
  /// ACME HTTP-01: token -> key authorization, answered 200 text/plain on plain HTTP at
  /// /.well-known/acme-challenge/TOKEN for any Host (even unknown ones), never redirected.
  /// Thread-safe.
  void publish_challenges(std::shared_ptr<const std::unordered_map<std::string, std::string>> m);

  /// Prometheus text exposition: berth_router_requests_total{service,code_class},
  /// berth_router_request_duration_seconds histogram{service}, berth_router_in_flight{service},
  /// berth_router_upstreams{service}, berth_router_connections. Requests that matched no
  /// route count under service="_unmatched" (service names never start with '_').
  /// Also berth_router_tls_handshakes_total{result="ok|failed"}.
  std::string metrics_text() const;
  static constexpr std::string_view kUnmatched = "_unmatched";

  /// One service's counters since berthd started: what metrics_text() shows, as numbers (the
  /// API's per-service history samples them).
  struct ServiceStats {
    std::string service;
    uint64_t classes[5] = {};       // responses by status class: 1xx .. 5xx
    std::vector<uint64_t> buckets;  // request durations per bucket (not cumulative)
    int64_t in_flight = 0;
    size_t upstreams = 0;  // in the current route table
  };
  /// The upper bounds of the duration buckets, in seconds (the last bucket is +Inf).
  static std::vector<double> bucket_bounds();
  std::vector<ServiceStats> service_stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace berth::router
