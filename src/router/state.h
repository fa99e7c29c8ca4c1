// SPDX-License-Identifier: Apache-2.0
// Private to the router. The state shared by the router's files: the upstream pool slots,
// the timeout watches, Core (what Router::State holds) and ThreadCtx (per-I/O-thread state:
// the timeout sweep's watch list, the cached route snapshot, pool slots). The route snapshot
// and the metrics shards are in routes.h and metrics.h.
//
// Threading: each io_context must be run by exactly one thread (as http::Server expects).
// A connection, its ThreadCtx and its pool slot are only touched on that thread; what crosses
// threads is atomic (route snapshot version, Upstream counters, metrics shards are per thread).
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/async.h"
#include "common/fs.h"
#include "common/http1.h"
#include "common/listener.h"
#include "common/log.h"
#include "router/proxy_util.h"
#include "router/routes.h"
#include "tls/tls.h"

namespace berth::router {

using tcp = asio::ip::tcp;
using namespace std::string_view_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Upstream pool: one slot per (router, I/O thread) so that a connection is only ever used on
// the io_context it is registered with, and checkout needs no lock.

struct IdleConn {
  tcp::socket sock;
  Clock::time_point since;
};

struct H2cConn;  // h2c_upstream.cc: one multiplexed HTTP/2 connection to an instance

struct Upstream::Pool {
  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<const void*> owner{nullptr};
    std::vector<IdleConn> idle;
    // h2c connections of this thread (kept alive by their own reader; the pool only finds
    // them, so it never ends one on another thread).
    std::vector<std::weak_ptr<H2cConn>> h2c;
  };
  std::array<Slot, kSlots> slots;
  std::atomic<size_t> idle_total{0};
};

// ---------------------------------------------------------------------------------------------
// Timeouts.

// A wake-up for one coroutine on this thread: notify() before or during wait() both count.
class Signal {
 public:
  explicit Signal(asio::io_context& io) : t_(io) {}
  void notify() {
    pending_ = true;
    t_.cancel();
  }
  awaitable<void> wait() {
    if (!pending_) {
      t_.expires_at(asio::steady_timer::time_point::max());
      beast::error_code ec;
      co_await t_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    pending_ = false;
  }

 private:
  asio::steady_timer t_;
  bool pending_ = false;
};

enum class Wait { Idle, Connect, Response };

// A deadline the sweep checks; when it passes, the sweep cancels a and b and notifies signal.
struct Watch {
  Clock::time_point deadline = Clock::time_point::max();
  Wait kind = Wait::Idle;
  bool fired = false;
  bool between_requests = false;
  tcp::socket* a = nullptr;
  tcp::socket* b = nullptr;
  Signal* signal = nullptr;  // for a wait on no socket of its own (an h2c stream)
  Watch* prev = nullptr;
  Watch* next = nullptr;
};

struct ThreadCtx;
class H2Conn;

// Ends an h2c connection (its streams fail); null is fine. On the connection's thread.
void close_h2c(const std::shared_ptr<H2cConn>& c);

// Router::State is private to Router; the connection code works on this base.
struct Core {
  Core(std::vector<asio::io_context*> c, RouterOptions o);
  ~Core();

  ServiceMetrics* metrics_for(const std::string& service);
  std::shared_ptr<const Compiled> compile(std::shared_ptr<const RouteTable> t);

  std::vector<asio::io_context*> contexts;
  RouterOptions opts;
  Clock::duration tick;
  std::vector<std::unique_ptr<ThreadCtx>> threads;
  // Bound but not started (with whether it speaks TLS); once started, each accept loop owns
  // its acceptor (so it dies with its io_context) and stop() reaches it through a weak pointer.
  std::vector<std::pair<std::shared_ptr<tcp::acceptor>, bool>> acceptors;
  std::vector<std::weak_ptr<tcp::acceptor>> started;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> stop_deadline_ns{0};
  net::ConnectionGate gate;
  std::shared_ptr<spdlog::logger> log = log::get("router");

  std::atomic<uint64_t> version{0};
  std::atomic<std::shared_ptr<const Compiled>> current;

  tls::ServerContext tls;
  std::atomic<uint16_t> first_tls_port{0};  // https_redirect's default target
  std::atomic<std::shared_ptr<const std::unordered_map<std::string, std::string>>> challenges;

  mutable std::mutex metrics_mu;
  std::unordered_map<std::string, std::unique_ptr<ServiceMetrics>> services;
  ServiceMetrics* none = nullptr;  // requests that matched no route
};

using State = Core;

struct Router::State : Core {
  using Core::Core;
};

struct ThreadCtx {
  ThreadCtx(State& s, asio::io_context& io, size_t i)
      : st(s), ioc(io), index(i), id_prefix(fs::random_hex(4)) {
    head.next = head.prev = &head;
  }
  ~ThreadCtx() { release_pools(); }

  // Gives back this thread's pool slots. The sockets in them belong to our io_context, so
  // this runs when the sweep coroutine ends: on that thread, or while the io_context shuts
  // down, never after it is gone.
  void release_pools() {
    for (auto& w : pools) {
      if (auto p = w.lock()) {
        for (auto& slot : p->slots) {
          if (slot.owner.load() == this) {
            p->idle_total.fetch_sub(slot.idle.size());
            slot.idle.clear();
            for (auto& conn : slot.h2c) {
              close_h2c(conn.lock());
            }
            slot.h2c.clear();
            slot.owner.store(nullptr);
          }
        }
      }
    }
    pools.clear();
  }

  void add(Watch* w) {
    w->next = head.next;
    w->prev = &head;
    head.next->prev = w;
    head.next = w;
  }
  static void remove(Watch* w) {
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = nullptr;
  }
  bool empty() const { return head.next == &head; }

  const Compiled* routes() {
    uint64_t v = st.version.load(std::memory_order_acquire);
    if (v != version || !compiled) {
      compiled = st.current.load();
      version = v;
    }
    return compiled.get();
  }

  Upstream::Pool::Slot* slot(Upstream::Pool& p, bool claim) {
    for (auto& s : p.slots) {
      if (s.owner.load(std::memory_order_relaxed) == this) {
        return &s;
      }
    }
    if (!claim) {
      return nullptr;
    }
    for (auto& s : p.slots) {
      const void* expected = nullptr;
      if (s.owner.compare_exchange_strong(expected, this)) {
        return &s;
      }
    }
    return nullptr;
  }

  // A random per-thread prefix and a counter, 16 hex digits: no syscall, no printf.
  size_t request_id(char* out) {
    static constexpr char kHex[] = "0123456789abcdef";
    size_t n = std::min<size_t>(id_prefix.size(), 8);
    std::memcpy(out, id_prefix.data(), n);
    uint64_t c = ++id_counter;
    for (int i = 7; i >= 0; --i) {
      out[n + static_cast<size_t>(i)] = kHex[c & 15];
      c >>= 4;
    }
    return n + 8;
  }

  State& st;
  asio::io_context& ioc;
  size_t index;
  Watch head;
  uint64_t version = ~uint64_t{0};
  std::shared_ptr<const Compiled> compiled;
  size_t rr = 0;
  std::string id_prefix;
  uint64_t id_counter = 0;
  std::vector<std::weak_ptr<Upstream::Pool>> pools;
  // HTTP/2 streams this thread proxies now, over all its connections (each may hold a
  // connection to an instance), and the connections waiting for one of those slots.
  size_t h2_streams = 0;
  std::deque<std::weak_ptr<H2Conn>> h2_waiting;
  // The same per source address (net::ConnectionGate::address_key), which gets its share.
  struct H2Address {
    size_t streams = 0;
    std::deque<std::weak_ptr<H2Conn>> waiting;
  };
  std::unordered_map<std::string, H2Address> h2_addresses;
};

// Upstream connections, shared by HTTP/1.1 (Conn) and HTTP/2 streams (upstream.cc).
// An idle kept-alive connection to u from this thread's pool slot, or nullopt.
std::optional<tcp::socket> take_idle(ThreadCtx& tc, Upstream& u, std::chrono::milliseconds idle);
// Gives a connection back to this thread's pool slot (or closes it when full or stopping).
void give_back(ThreadCtx& tc, Upstream& u, tcp::socket s, size_t max_idle);
// A new unconnected socket to u (inside its network namespace when it has one) and where to
// connect it. The error text is what a 502 says.
Result<std::pair<tcp::socket, tcp::endpoint>> open_upstream(ThreadCtx& tc, Upstream& u);
// Counts one answered request in the per-thread metrics shard.
void record_request(ServiceMetrics* m, size_t shard, unsigned status, Clock::duration elapsed);

// One client connection, run on tc's thread until it closes (session.cc): the TLS handshake
// when tls, then HTTP/1.1 (Conn) or HTTP/2 (by ALPN).
awaitable<void> session(std::shared_ptr<State> st, ThreadCtx* tc, tcp::socket sock, bool tls,
                        net::ConnectionGate::Ticket ticket, tcp::endpoint peer_ep);

}  // namespace berth::router
