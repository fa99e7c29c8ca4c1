// SPDX-License-Identifier: Apache-2.0
// The proxy's front: listen/accept, the per-thread timeout sweep (a coarse tick that cancels
// the sockets of connections past their deadline, instead of arming and cancelling an Asio
// timer per read), publish, stop. The parts:
//   parser.h      - the HTTP/1.1 head parser and head writer (views into the read buffer)
//   state.h       - Core (Router::State), ThreadCtx, pool slots, metrics shards, watches
//   session.cc    - a new connection: TLS handshake, then HTTP/1.1 (Conn) or HTTP/2
//   conn.h        - one HTTP/1.1 client connection; its code in heads.cc, upstream.cc, conn.cc
//   stream.h      - ClientStream: the client side, plain or TLS (OpenSSL on the socket)
//   tls/tls.h     - tls::ServerContext (shared with the API listener): certificates by SNI,
//                   ALPN, rotating ticket keys
//   metrics.cc    - the Prometheus exposition
#include "router/router.h"

#include "router/state.h"

namespace berth::router {

Upstream::Upstream() : pool(std::make_shared<Pool>()) {}
Upstream::~Upstream() = default;

constexpr auto kStopGrace = std::chrono::seconds(10);

Core::Core(std::vector<asio::io_context*> c, RouterOptions o)
    : contexts(std::move(c)),
      opts(std::move(o)),
      gate(opts.limits),
      tls(tls::ServerOptions{opts.http2, opts.ticket_key_rotation}) {
  auto shortest = std::min({opts.connect_timeout, opts.response_timeout, opts.idle_timeout,
                            opts.keepalive_timeout, opts.header_timeout, opts.body_timeout});
  tick = std::clamp<Clock::duration>(shortest / 8, std::chrono::milliseconds(5),
                                     std::chrono::milliseconds(250));
  for (size_t i = 0; i < contexts.size(); ++i) {
    threads.push_back(std::make_unique<ThreadCtx>(*this, *contexts[i], i));
  }
  none = metrics_for(std::string(Router::kUnmatched));
  current.store(compile(std::make_shared<RouteTable>()));
}

Core::~Core() = default;

ServiceMetrics* Core::metrics_for(const std::string& service) {
  std::lock_guard lock(metrics_mu);
  auto& m = services[service];
  if (!m) {
    m = std::make_unique<ServiceMetrics>(service, contexts.size());
  }
  return m.get();
}

namespace {

// One per listening address and I/O thread (net::acceptors_per_thread): a connection is served on
// the thread that accepted it. With two threads, handing each to a thread round-robin had made
// a new TLS connection cost berth ~1.26x nginx's CPU, where with one thread they were level.
awaitable<void> accept_loop(std::shared_ptr<State> self, std::shared_ptr<tcp::acceptor> acc,
                            ThreadCtx* tc, bool tls) {
  net::AcceptLoop loop;
  loop.acceptor = acc.get();
  loop.context = &tc->ioc;
  loop.gate = &self->gate;
  loop.on_connection = [self, tc, tls](tcp::socket sock, net::ConnectionGate::Ticket t,
                                       const tcp::endpoint& peer) {
    spawn_logged(tc->ioc.get_executor(),
                 session(self, tc, std::move(sock), tls, std::move(t), peer), "router.session");
  };
  loop.stopping = &self->stopping;
  loop.log = self->log;
  loop.name = tls ? "router-tls" : "router";
  co_await net::run_accept_loop(std::move(loop));
}

void fire(Watch* w) {
  w->fired = true;
  w->deadline = Clock::time_point::max();
  beast::error_code ec;
  if (w->a != nullptr) {
    w->a->cancel(ec);
  }
  if (w->b != nullptr) {
    w->b->cancel(ec);
  }
  if (w->signal != nullptr) {
    w->signal->notify();
  }
}

// The timeout sweep of one I/O thread.
awaitable<void> sweep(std::shared_ptr<State> self, ThreadCtx* tc) {
  struct Release {
    ThreadCtx* tc;
    ~Release() { tc->release_pools(); }
  };
  Release release{tc};
  asio::steady_timer timer(tc->ioc);
  uint64_t ticks = 0;
  while (true) {
    beast::error_code ec;
    timer.expires_after(self->tick);
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    auto now = Clock::now();
    bool stopping = self->stopping.load();
    bool hard = stopping && now.time_since_epoch().count() > self->stop_deadline_ns.load();
    for (Watch* w = tc->head.next; w != &tc->head; w = w->next) {
      if (now >= w->deadline || hard || (stopping && w->between_requests)) {
        fire(w);
      }
    }
    if (stopping && tc->empty()) {
      break;
    }
    if (++ticks % 1024 == 0) {
      std::erase_if(tc->pools, [](const auto& w) { return w.expired(); });
    }
  }
}

}  // namespace

Router::Router(std::vector<asio::io_context*> contexts, RouterOptions opts)
    : state_(std::make_shared<State>(std::move(contexts), std::move(opts))) {}

Router::~Router() { stop(); }

namespace {

Result<std::shared_ptr<tcp::acceptor>> bind(asio::io_context& io, const std::string& host,
                                            uint16_t port, const char* what) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return Error(Errc::InvalidArgument, std::string(what) + ": invalid address '" + host + "'");
  }
  tcp::endpoint ep(addr, port);
  auto acc = std::make_shared<tcp::acceptor>(io);
  acc->open(ep.protocol(), ec);
  if (!ec) {
    acc->set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec && addr.is_v6()) {
    // [::]:8080 next to 0.0.0.0:8080: each family on its own socket.
    acc->set_option(asio::ip::v6_only(true), ec);
  }
  if (!ec) {
    acc->bind(ep, ec);
  }
  if (!ec) {
    acc->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    std::string shown = addr.is_v6() ? "[" + host + "]" : host;
    return Error(Errc::Unavailable, std::string(what) + " on " + shown + ":" +
                                        std::to_string(port) + ": " + ec.message());
  }
  return acc;
}

}  // namespace

Result<uint16_t> Router::listen(const std::string& host, uint16_t port) {
  BERTH_ASSIGN_OR_RETURN(auto acc, bind(*state_->contexts.front(), host, port, "router listen"));
  uint16_t bound = acc->local_endpoint().port();
  state_->acceptors.emplace_back(std::move(acc), false);
  return bound;
}

Result<uint16_t> Router::listen_tls(const std::string& host, uint16_t port) {
  BERTH_ASSIGN_OR_RETURN(auto acc,
                         bind(*state_->contexts.front(), host, port, "router TLS listen"));
  uint16_t bound = acc->local_endpoint().port();
  state_->acceptors.emplace_back(std::move(acc), true);
  uint16_t none = 0;
  state_->first_tls_port.compare_exchange_strong(none, bound);
  return bound;
}

Status Router::publish_certificates(std::vector<TlsCertificate> certs) {
  return state_->tls.publish(certs);
}

void Router::publish_challenges(
    std::shared_ptr<const std::unordered_map<std::string, std::string>> m) {
  state_->challenges.store(std::move(m));
}

void Router::start() {
  for (auto& [acc, tls] : state_->acceptors) {
    // listen() bound acc on contexts[0]; threads[i] runs contexts[i].
    for (auto& [mine, i] :
         net::acceptors_per_thread(std::move(acc), state_->contexts, *state_->log, "router")) {
      ThreadCtx* tc = state_->threads[i].get();
      state_->started.push_back(mine);
      spawn_logged(tc->ioc.get_executor(), accept_loop(state_, std::move(mine), tc, tls),
                   "router.accept");
    }
  }
  state_->acceptors.clear();
  for (auto& tc : state_->threads) {
    spawn_logged(tc->ioc.get_executor(), sweep(state_, tc.get()), "router.sweep");
  }
}

void Router::stop() {
  if (state_->stopping.exchange(true)) {
    return;
  }
  state_->stop_deadline_ns = (Clock::now() + kStopGrace).time_since_epoch().count();
  for (auto& w : state_->started) {
    if (auto acc = w.lock()) {
      auto ex = acc->get_executor();
      asio::post(ex, [acc] {
        beast::error_code ec;
        acc->close(ec);
      });
    }
  }
}

void Router::publish(std::shared_ptr<const RouteTable> table) {
  if (!table) {
    table = std::make_shared<RouteTable>();
  }
  state_->current.store(state_->compile(std::move(table)));
  state_->version.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const RouteTable> Router::table() const { return state_->current.load()->table; }

}  // namespace berth::router
