// SPDX-License-Identifier: Apache-2.0
// The proxy. Layout of this file:
//   Parser        - a Beast basic_parser that records header fields and body pieces as views
//                   into the connection's read buffer (no allocation per header or per body
//                   piece; bodies are never copied into a second buffer).
//   Watch/Thread  - per-I/O-thread state: the timeout sweep (a coarse tick that cancels the
//                   sockets of connections past their deadline, instead of arming and
//                   cancelling an Asio timer per read), the cached route snapshot, pool slots.
//   Conn          - one client connection: the request loop, upstream selection, the body
//                   pumps, the Upgrade tunnel, error replies, access log and metrics.
//   Router        - listen/accept, publish, metrics_text, stop.
//
// Threading: each io_context must be run by exactly one thread (as http::Server expects).
// A connection, its ThreadCtx and its pool slot are only touched on that thread; what crosses
// threads is atomic (route snapshot version, Upstream counters, metrics shards are per thread).
#include "router/router.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
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

struct Upstream::Pool {
  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<const void*> owner{nullptr};
    std::vector<IdleConn> idle;
  };
  std::array<Slot, kSlots> slots;
  std::atomic<size_t> idle_total{0};
};

Upstream::Upstream() : pool(std::make_shared<Pool>()) {}
Upstream::~Upstream() = default;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kMaxFields = 128;
constexpr size_t kMaxViews = 8;
constexpr size_t kMaxHost = 255;
constexpr auto kStopGrace = std::chrono::seconds(10);
// An idle pooled connection older than this is probed (MSG_PEEK) before reuse: the upstream
// may have closed it meanwhile.
constexpr auto kProbeAfter = std::chrono::seconds(1);

// A buffer sequence over an array, without copying a std::vector into every write op.
struct BufSpan {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  const asio::const_buffer* b;
  size_t n;
  const_iterator begin() const { return b; }
  const_iterator end() const { return b + n; }
};

struct Field {
  bhttp::field f;
  const char* name;
  uint32_t name_len;
  const char* value;
  uint32_t value_len;
  std::string_view n() const { return {name, name_len}; }
  std::string_view v() const { return {value, value_len}; }
};

template <bool isRequest>
class Parser final : public bhttp::basic_parser<isRequest> {
 public:
  Parser() {
    this->eager(true);
    this->header_limit(static_cast<uint32_t>(kHeaderLimit));
    // Boost 1.74 mis-compares boost::none: "no limit" must be spelled UINT64_MAX.
    this->body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  bhttp::verb method = bhttp::verb::unknown;
  std::string_view method_str, target, reason;
  int version = 11;
  unsigned status = 0;
  Field fields[kMaxFields];
  size_t nfields = 0;
  bool header_done = false;
  std::string_view views[kMaxViews];
  size_t nviews = 0;

 protected:
  void on_request_impl(bhttp::verb m, std::string_view ms, std::string_view t, int v,
                       beast::error_code&) override {
    method = m;
    method_str = ms;
    target = t;
    version = v;
  }
  void on_response_impl(int code, std::string_view r, int v, beast::error_code&) override {
    status = static_cast<unsigned>(code);
    reason = r;
    version = v;
  }
  void on_field_impl(bhttp::field f, std::string_view name, std::string_view value,
                     beast::error_code& ec) override {
    if (header_done) {
      return;  // trailer fields of a chunked body are dropped
    }
    if (nfields == kMaxFields) {
      ec = bhttp::error::header_limit;
      return;
    }
    fields[nfields++] = Field{f, name.data(), static_cast<uint32_t>(name.size()), value.data(),
                              static_cast<uint32_t>(value.size())};
  }
  void on_header_impl(beast::error_code&) override { header_done = true; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  size_t on_body_impl(std::string_view body, beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_chunk_header_impl(std::uint64_t, std::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, std::string_view body, beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_finish_impl(beast::error_code&) override {}

 private:
  size_t take(std::string_view body, beast::error_code& ec) {
    if (body.empty()) {
      return 0;
    }
    if (nviews == kMaxViews) {
      ec = bhttp::error::need_buffer;
      return 0;
    }
    views[nviews++] = body;
    return body.size();
  }
};

using ReqParser = Parser<true>;
using ResParser = Parser<false>;

// Hop-by-hop by the parser's field code: a switch instead of a string comparison for every
// field Beast knows (the same rules as detail::is_hop_by_hop).
bool hop_by_hop(const Field& f) {
  switch (f.f) {
    case bhttp::field::unknown:
      return detail::is_hop_by_hop(f.n());
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authentication_info:
    case bhttp::field::proxy_authorization:
    case bhttp::field::proxy_connection:
    case bhttp::field::proxy_features:
    case bhttp::field::proxy_instruction:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
      return true;
    default:
      return false;
  }
}

// Builds a head in place in a std::string: one resize up front, then memcpy per piece (an
// out-of-line std::string::append per piece cost ~10% of the router's instructions). The
// string gets its final size when the HeadOut goes away.
class HeadOut {
 public:
  HeadOut(std::string& s, size_t reserve) : s_(s) {
    s_.resize(std::max(s_.capacity(), reserve));
    p_ = s_.data();
    end_ = p_ + s_.size();
  }
  ~HeadOut() { s_.resize(static_cast<size_t>(p_ - s_.data())); }
  HeadOut(const HeadOut&) = delete;
  HeadOut& operator=(const HeadOut&) = delete;

  [[gnu::always_inline]] HeadOut& append(std::string_view v) {
    if (static_cast<size_t>(end_ - p_) < v.size()) {
      grow(v.size());
    }
    std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
    return *this;
  }
  HeadOut& append(const char* p, size_t n) { return append(std::string_view(p, n)); }
  HeadOut& number(uint64_t v) {
    char num[24];
    auto res = std::to_chars(num, num + sizeof num, v);
    return append(num, static_cast<size_t>(res.ptr - num));
  }
  void field(std::string_view name, std::string_view value) {
    append(name).append(": "sv).append(value).append("\r\n"sv);
  }

 private:
  void grow(size_t need) {
    size_t used = static_cast<size_t>(p_ - s_.data());
    s_.resize(std::max(s_.size() * 2, used + need));
    p_ = s_.data() + used;
    end_ = s_.data() + s_.size();
  }
  std::string& s_;
  char* p_;
  char* end_;
};

// ---------------------------------------------------------------------------------------------
// Metrics: one shard per I/O thread, each written by its thread only (no contended atomics).

constexpr std::array<double, 15> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};

struct ServiceMetrics {
  struct alignas(64) Shard {
    std::atomic<uint64_t> classes[5]{};
    std::atomic<uint64_t> buckets[kBuckets.size() + 1]{};
    std::atomic<uint64_t> sum_us{0};
    std::atomic<int64_t> in_flight{0};
  };
  ServiceMetrics(std::string n, size_t shards)
      : name(std::move(n)), shard(std::make_unique<Shard[]>(shards)), nshards(shards) {}
  std::string name;
  std::unique_ptr<Shard[]> shard;
  size_t nshards;
};

template <class T>
void bump(std::atomic<T>& a, T by) {
  a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct Entry {
  const Route* route;
  ServiceMetrics* metrics;
};

// The published table plus what the hot path needs: host -> (route, metrics), keyed by views
// into the table's own strings.
struct Compiled {
  std::shared_ptr<const RouteTable> table;
  std::unordered_map<std::string_view, Entry> hosts;
};

// ---------------------------------------------------------------------------------------------
// Timeouts.

enum class Wait { Idle, Connect, Response };

struct Watch {
  Clock::time_point deadline = Clock::time_point::max();
  Wait kind = Wait::Idle;
  bool fired = false;
  bool between_requests = false;
  tcp::socket* a = nullptr;
  tcp::socket* b = nullptr;
  Watch* prev = nullptr;
  Watch* next = nullptr;
};

}  // namespace

struct ThreadCtx;

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
  // Bound but not started; once started, each accept loop owns its acceptor (so it dies with
  // its io_context) and stop() reaches it through a weak pointer.
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  std::vector<std::weak_ptr<tcp::acceptor>> started;
  size_t next_thread = 0;  // accept loops run on contexts[0]'s thread only
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> stop_deadline_ns{0};
  net::ConnectionGate gate;
  std::shared_ptr<spdlog::logger> log = log::get("router");

  std::atomic<uint64_t> version{0};
  std::atomic<std::shared_ptr<const Compiled>> current;

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
};

Core::Core(std::vector<asio::io_context*> c, RouterOptions o)
    : contexts(std::move(c)), opts(std::move(o)), gate(opts.limits) {
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

std::shared_ptr<const Compiled> Core::compile(std::shared_ptr<const RouteTable> t) {
  auto c = std::make_shared<Compiled>();
  c->table = std::move(t);
  c->hosts.reserve(c->table->hosts.size());
  for (auto& [host, route] : c->table->hosts) {
    c->hosts.emplace(std::string_view(host), Entry{&route, metrics_for(route.service)});
  }
  return c;
}

namespace {

// ---------------------------------------------------------------------------------------------
// One client connection.

enum class Pump { Ok, SrcFailed, DstFailed, TimedOut, Malformed, Pending };

// What a non-blocking pump step left to do.
enum class Step { Done, Read, Write, Again, Malformed, DstFailed };

enum class Head { Ok, Pending, Malformed };

enum class Framing { None, Length, Chunked, Close };

class Conn {
 public:
  Conn(std::shared_ptr<State> s, ThreadCtx& t, tcp::socket sock)
      : st_(std::move(s)), tc_(t), opts_(st_->opts), client_(std::move(sock)) {
    beast::error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
    client_.non_blocking(true, ec);  // pump() tries writes synchronously first
    auto ep = client_.remote_endpoint(ec);
    peer_ = ec ? std::string("unknown") : ep.address().to_string();
    watch_.a = &client_;
    tc_.add(&watch_);
  }
  ~Conn() {
    ThreadCtx::remove(&watch_);
    drop_upstream();
  }

  awaitable<void> run();

 private:
  void arm(Wait kind, std::chrono::milliseconds d) {
    watch_.kind = kind;
    watch_.fired = false;
    watch_.deadline = Clock::now() + d;
  }
  bool timed_out(const beast::error_code& ec) const {
    return watch_.fired && ec == asio::error::operation_aborted;
  }
  void set_upstream_socket(tcp::socket* s) { watch_.b = s; }
  void drop_upstream() {
    if (up_) {
      beast::error_code ec;
      up_->close(ec);
      up_.reset();
    }
    set_upstream_socket(nullptr);
  }

  awaitable<bool> serve_one();
  Head check_request_head(size_t& scanned);
  bool take_pooled();
  awaitable<bool> connect_upstream();
  void start_response();
  Pump check_response_head(bool& saw_bytes);
  template <class P>
  Step pump_step(beast::flat_buffer* buf, P* p, tcp::socket* dst, bool chunked_out,
                 uint64_t* moved);
  template <class P>
  awaitable<Pump> pump(tcp::socket* src, beast::flat_buffer* buf, P* p, tcp::socket* dst,
                       bool chunked_out, uint64_t* moved, Step s);
  awaitable<bool> proxy(bool head_request, bool has_body, bool retryable, bool client_keep_alive,
                        bool& tunneled);
  awaitable<void> tunnel();
  awaitable<void> write_client_head();

  void build_upstream_head();
  Framing build_client_head(bool head_request, bool upgrade, bool client_keep_alive);
  void make_error(unsigned status, std::string_view body);
  void release_upstream(bool reusable);
  void finish(Clock::time_point started);

  std::shared_ptr<State> st_;
  ThreadCtx& tc_;
  const RouterOptions& opts_;
  tcp::socket client_;
  std::optional<tcp::socket> up_;
  bool up_reused_ = false;
  std::string peer_;
  bool first_request_ = true;
  Watch watch_;
  beast::flat_buffer cbuf_, ubuf_;
  std::optional<ReqParser> req_;
  std::optional<ResParser> res_;
  std::string uhead_, chead_;
  std::string res_crlf_;  // a response head with bare LFs, rewritten with CRLF
  size_t res_scanned_ = 0;
  bool res_bare_ = false;
  // The body pump's pending write (one pump runs at a time).
  struct PumpState {
    std::array<asio::const_buffer, 2 + 3 * kMaxViews> bufs;
    size_t nb = 0;
    size_t sent = 0;
    size_t used = 0;
    bool done = false;
    const std::string* head = nullptr;
    bool head_pending = false;
  } ps_;
  std::array<char, kMaxViews * 20> sizes_{};

  // Per request.
  size_t req_head_len_ = 0;
  size_t res_head_used_ = 0;
  std::string_view host_raw_, rid_in_, upgrade_;
  bool expect_continue_ = false;
  bool upgrade_req_ = false;
  char rid_[32] = {};
  size_t rid_len_ = 0;
  std::shared_ptr<Upstream> upstream_;
  ServiceMetrics* metrics_ = nullptr;
  unsigned status_ = 0;
  uint64_t bytes_ = 0;
  bool close_after_ = false;
  std::string log_method_, log_host_, log_target_;
};

// Looks for a whole request head in cbuf_ and parses it. Pending: read more. Malformed: the
// reply (400 or 431) is set and the connection closes after it.
Head Conn::check_request_head(size_t& scanned) {
  if (cbuf_.size() == 0) {
    return Head::Pending;
  }
  auto data = cbuf_.data();
  const char* p = static_cast<const char*>(data.data());
  bool bare = false;  // requests are parsed strictly: a bare LF is a 400
  size_t end = detail::find_head_end(p, data.size(), scanned > 2 ? scanned - 2 : 0, bare);
  if (end != 0) {
    if (auto bad = http1::check_request_head(std::string_view(p, end))) {
      close_after_ = true;
      make_error(bad->status, bad->message);
      return Head::Malformed;
    }
    beast::error_code ec;
    size_t used = req_->put(asio::const_buffer(p, end), ec);
    if (ec || !req_->is_header_done()) {
      close_after_ = true;
      std::string msg = "malformed request: ";
      msg += ec ? ec.message() : std::string("header");
      make_error(400, msg);
      return Head::Malformed;
    }
    req_head_len_ = used;
    return Head::Ok;
  }
  scanned = data.size();
  if (data.size() >= kHeaderLimit) {
    close_after_ = true;
    make_error(431, "request header too large");
    return Head::Malformed;
  }
  return Head::Pending;
}

// Serializes the request head for the upstream into uhead_, filtering hop-by-hop fields and
// adding the X-Forwarded-* set. Reads views into cbuf_: call before consuming the head.
void Conn::build_upstream_head() {
  auto& r = *req_;
  std::string_view connection;
  host_raw_ = {};
  rid_in_ = {};
  upgrade_ = {};
  expect_continue_ = false;
  for (size_t i = 0; i < r.nfields; ++i) {
    const Field& f = r.fields[i];
    switch (f.f) {
      case bhttp::field::host:
        host_raw_ = f.v();
        break;
      case bhttp::field::connection:
        connection = f.v();
        break;
      case bhttp::field::upgrade:
        upgrade_ = f.v();
        break;
      case bhttp::field::expect:
        expect_continue_ = beast::iequals(f.v(), "100-continue");
        break;
      default:
        if (f.f == bhttp::field::unknown && beast::iequals(f.n(), "x-request-id")) {
          rid_in_ = f.v();
        }
        break;
    }
  }
  upgrade_req_ = !upgrade_.empty() && detail::token_list_contains(connection, "upgrade");

  bool conn_fields = detail::connection_names_fields(connection);
  HeadOut h(uhead_, 2048);
  h.append(r.method_str).append(" "sv).append(r.target).append(" HTTP/1.1\r\n"sv);
  for (size_t i = 0; i < r.nfields; ++i) {
    const Field& f = r.fields[i];
    std::string_view name = f.n();
    if (f.f == bhttp::field::content_length || f.f == bhttp::field::expect || hop_by_hop(f)) {
      continue;
    }
    if (f.f == bhttp::field::unknown &&
        (beast::iequals(name, "x-forwarded-for") || beast::iequals(name, "x-forwarded-proto") ||
         beast::iequals(name, "x-forwarded-host"))) {
      continue;
    }
    if (conn_fields && detail::token_list_contains(connection, name)) {
      continue;
    }
    h.field(name, f.v());
  }
  if (r.chunked()) {
    h.append("Transfer-Encoding: chunked\r\n"sv);
  } else if (auto cl = r.content_length()) {
    h.append("Content-Length: "sv).number(*cl).append("\r\n"sv);
  }
  if (upgrade_req_) {
    h.append("Connection: Upgrade\r\nUpgrade: "sv).append(upgrade_).append("\r\n"sv);
  }
  h.append("X-Forwarded-For: "sv);
  // Repeated X-Forwarded-For fields form one list, in order.
  for (size_t i = 0; i < r.nfields; ++i) {
    const Field& f = r.fields[i];
    if (f.f == bhttp::field::unknown && beast::iequals(f.n(), "x-forwarded-for")) {
      std::string xff;  // rare: only behind another proxy
      detail::append_forwarded_for(xff, f.v(), "");
      h.append(xff);
    }
  }
  h.append(peer_).append("\r\n"sv);
  h.append("X-Forwarded-Proto: "sv).append(opts_.scheme).append("\r\n"sv);
  if (!host_raw_.empty()) {
    h.append("X-Forwarded-Host: "sv).append(host_raw_).append("\r\n"sv);
  }
  if (rid_in_.empty() || rid_in_.size() > 200) {
    rid_len_ = tc_.request_id(rid_);
    h.append("X-Request-Id: "sv).append(rid_, rid_len_).append("\r\n"sv);
  } else {
    rid_len_ = std::min(rid_in_.size(), sizeof rid_);
    std::memcpy(rid_, rid_in_.data(), rid_len_);
  }
  h.append("\r\n"sv);
}

// The response head for the client, from res_ (views into ubuf_). Returns how the body goes.
Framing Conn::build_client_head(bool head_request, bool upgrade, bool client_keep_alive) {
  auto& r = *res_;
  Framing fr;
  bool no_body = head_request || r.status < 200 || r.status == 204 || r.status == 304;
  bool client11 = req_->version >= 11;
  if (no_body) {
    fr = Framing::None;
  } else if (r.chunked()) {
    fr = client11 ? Framing::Chunked : Framing::Close;
  } else if (r.content_length()) {
    fr = Framing::Length;
  } else {
    fr = client11 ? Framing::Chunked : Framing::Close;
  }
  if (fr == Framing::Close || !client_keep_alive) {
    close_after_ = true;
  }
  std::string_view connection;
  for (size_t i = 0; i < r.nfields; ++i) {
    if (r.fields[i].f == bhttp::field::connection) {
      connection = r.fields[i].v();
    }
  }
  bool conn_fields = detail::connection_names_fields(connection);
  HeadOut h(chead_, 1024);
  h.append("HTTP/1.1 "sv).number(r.status).append(" "sv);
  if (!r.reason.empty()) {
    h.append(r.reason);
  } else {
    h.append(bhttp::obsolete_reason(static_cast<bhttp::status>(r.status)));
  }
  h.append("\r\n"sv);
  for (size_t i = 0; i < r.nfields; ++i) {
    const Field& f = r.fields[i];
    std::string_view name = f.n();
    if (f.f == bhttp::field::upgrade && upgrade) {
      h.append("Upgrade: "sv).append(f.v()).append("\r\n"sv);
      continue;
    }
    if (hop_by_hop(f)) {
      continue;
    }
    if (f.f == bhttp::field::content_length && !(no_body && r.status != 204)) {
      continue;  // re-added below (kept as received for HEAD and 304)
    }
    if (conn_fields && detail::token_list_contains(connection, name)) {
      continue;
    }
    h.field(name, f.v());
  }
  if (fr == Framing::Length) {
    h.append("Content-Length: "sv).number(*r.content_length()).append("\r\n"sv);
  } else if (fr == Framing::Chunked) {
    h.append("Transfer-Encoding: chunked\r\n"sv);
  }
  if (upgrade) {
    h.append("Connection: Upgrade\r\n"sv);
  } else if (close_after_) {
    h.append("Connection: close\r\n"sv);
  } else if (!client11) {
    h.append("Connection: keep-alive\r\n"sv);
  }
  h.append("\r\n"sv);
  return fr;
}

void Conn::make_error(unsigned status, std::string_view body) {
  status_ = status;
  bytes_ = body.size() + 1;
  bool head = req_ && req_->is_header_done() && req_->method == bhttp::verb::head;
  auto& h = chead_;
  h.clear();
  char line[96];
  int n = std::snprintf(
      line, sizeof line, "HTTP/1.1 %03u %s\r\nContent-Type: text/plain; charset=utf-8\r\n", status,
      std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))).c_str());
  h.append(line, static_cast<size_t>(n));
  n = std::snprintf(line, sizeof line, "Content-Length: %zu\r\n", body.size() + 1);
  h.append(line, static_cast<size_t>(n));
  if (close_after_ || (req_ && req_->is_header_done() && !req_->keep_alive())) {
    close_after_ = true;
    h.append("Connection: close\r\n"sv);
  }
  h.append("\r\n"sv);
  if (!head) {
    h.append(body).append("\n"sv);
  } else {
    bytes_ = 0;
  }
}

awaitable<void> Conn::write_client_head() {
  arm(Wait::Idle, opts_.idle_timeout);
  beast::error_code ec;
  co_await asio::async_write(client_, asio::buffer(chead_),
                             asio::redirect_error(use_awaitable, ec));
  if (ec) {
    close_after_ = true;
  }
}

// Takes an idle kept-alive connection to upstream_ from this thread's pool slot, without
// waiting. False: none usable.
bool Conn::take_pooled() {
  Upstream& u = *upstream_;
  up_reused_ = false;
  auto* slot = tc_.slot(*u.pool, false);
  if (slot == nullptr) {
    return false;
  }
  auto now = Clock::now();
  while (!slot->idle.empty()) {
    IdleConn c = std::move(slot->idle.back());
    slot->idle.pop_back();
    u.pool->idle_total.fetch_sub(1, std::memory_order_relaxed);
    auto age = now - c.since;
    if (age > opts_.idle_timeout) {
      continue;
    }
    if (age > kProbeAfter) {
      char b;
      ssize_t r = ::recv(c.sock.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        continue;  // closed by the upstream, or unsolicited bytes
      }
    }
    up_.emplace(std::move(c.sock));
    up_reused_ = true;
    set_upstream_socket(&*up_);
    return true;
  }
  return false;
}

// Opens a new connection to upstream_. False: failed (status_ and the reply are set).
awaitable<bool> Conn::connect_upstream() {
  Upstream& u = *upstream_;
  up_reused_ = false;
  beast::error_code ec;
  tcp::socket s(tc_.ioc);
  if (u.netns) {
    auto fd = u.netns->tcp_socket();
    if (!fd) {
      u.failures_total.fetch_add(1, std::memory_order_relaxed);
      make_error(502, "upstream " + u.id + ": " + fd.error().message());
      co_return false;
    }
    s.assign(tcp::v4(), *fd, ec);
  } else {
    s.open(tcp::v4(), ec);
  }
  auto addr = asio::ip::make_address(u.host, ec);
  if (ec) {
    u.failures_total.fetch_add(1, std::memory_order_relaxed);
    make_error(502, "upstream " + u.id + ": bad address " + u.host);
    co_return false;
  }
  tcp::endpoint ep(addr, u.port);
  up_.emplace(std::move(s));
  set_upstream_socket(&*up_);
  arm(Wait::Connect, opts_.connect_timeout);
  co_await up_->async_connect(ep, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    u.failures_total.fetch_add(1, std::memory_order_relaxed);
    bool to = timed_out(ec);
    drop_upstream();
    if (to) {
      make_error(504, "upstream " + u.id + " did not accept a connection in time");
    } else {
      make_error(502, "upstream " + u.id + " refused the connection: " + ec.message());
    }
    co_return false;
  }
  up_->set_option(tcp::no_delay(true), ec);
  up_->non_blocking(true, ec);  // pump() tries writes synchronously first
  co_return true;
}

void Conn::release_upstream(bool reusable) {
  if (!up_) {
    return;
  }
  Upstream& u = *upstream_;
  if (reusable && !st_->stopping.load(std::memory_order_relaxed) && ubuf_.size() == 0 &&
      u.pool->idle_total.load(std::memory_order_relaxed) < opts_.max_idle_per_upstream) {
    auto* slot = tc_.slot(*u.pool, true);
    if (slot != nullptr) {
      if (slot->idle.capacity() == 0) {
        tc_.pools.push_back(u.pool);
      }
      slot->idle.push_back(IdleConn{std::move(*up_), Clock::now()});
      u.pool->idle_total.fetch_add(1, std::memory_order_relaxed);
      up_.reset();
      set_upstream_socket(nullptr);
      return;
    }
  }
  drop_upstream();
  ubuf_.clear();
}

void Conn::start_response() {
  res_.emplace();
  if (req_->method == bhttp::verb::head) {
    res_->skip(true);
  }
  res_scanned_ = 0;
  res_bare_ = false;
}

// Looks for the upstream's response head in ubuf_ and parses it into res_, skipping interim
// 1xx other than 101. Pending: read more.
Pump Conn::check_response_head(bool& saw_bytes) {
  while (ubuf_.size() > 0) {
    saw_bytes = true;
    auto data = ubuf_.data();
    const char* p = static_cast<const char*>(data.data());
    size_t from = res_scanned_ > 2 ? res_scanned_ - 2 : 0;
    size_t end = detail::find_head_end(p, data.size(), from, res_bare_);
    if (end == 0) {
      res_scanned_ = data.size();
      return data.size() >= kHeaderLimit ? Pump::Malformed : Pump::Pending;
    }
    beast::error_code ec;
    if (res_bare_) {
      // Lines ended by a bare LF (busybox CGI and others): Beast wants CRLF, so it parses a
      // CRLF copy; the field views point into res_crlf_.
      detail::crlf_line_ends(p, end, res_crlf_);
      res_->put(asio::buffer(res_crlf_), ec);
    } else {
      res_->put(asio::const_buffer(p, end), ec);
    }
    if (ec || !res_->is_header_done()) {
      return Pump::Malformed;
    }
    if (res_->status >= 100 && res_->status < 200 && res_->status != 101) {
      ubuf_.consume(end);
      start_response();  // interim response: wait for the final one
      continue;
    }
    res_head_used_ = end;
    return Pump::Ok;
  }
  return Pump::Pending;
}

// One step of moving a message body from a buffer (parsed by p) to dst, without waiting:
// parses what buf holds and writes it (preceded by *ps_.head while ps_.head_pending,
// re-framed as chunked when chunked_out) with one direct non-blocking writev. Bytes are
// written straight out of buf (the parser only yields views), so memory stays bounded by the
// 64 KiB read size no matter how long the body is. Write: the socket took only part, the
// rest (ps_) goes out asynchronously.
template <class P>
Step Conn::pump_step(beast::flat_buffer* buf, P* p, tcp::socket* dst, bool chunked_out,
                     uint64_t* moved) {
  while (true) {
    beast::error_code ec;
    size_t used = 0;
    p->nviews = 0;
    if (!p->is_done() && buf->size() > 0) {
      used = p->put(buf->data(), ec);
      if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        return Step::Malformed;
      }
    }
    bool done = p->is_done();
    auto& bufs = ps_.bufs;
    size_t nb = 0;
    if (ps_.head_pending) {
      bufs[nb++] = asio::buffer(*ps_.head);
    }
    for (size_t i = 0; i < p->nviews; ++i) {
      std::string_view v = p->views[i];
      if (chunked_out) {
        char* s = sizes_.data() + i * 20;
        auto res = std::to_chars(s, s + 16, v.size(), 16);
        size_t k = static_cast<size_t>(res.ptr - s);
        s[k++] = '\r';
        s[k++] = '\n';
        bufs[nb++] = asio::const_buffer(s, k);
        bufs[nb++] = asio::const_buffer(v.data(), v.size());
        bufs[nb++] = asio::const_buffer("\r\n", 2);
      } else {
        bufs[nb++] = asio::const_buffer(v.data(), v.size());
      }
      if (moved != nullptr) {
        *moved += v.size();
      }
    }
    if (done && chunked_out) {
      bufs[nb++] = asio::const_buffer("0\r\n\r\n", 5);
    }
    if (nb > 0) {
      BufSpan span{bufs.data(), nb};
      size_t total = asio::buffer_size(span);
      size_t sent = dst->write_some(span, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        sent = 0;
      }
      if (ec) {
        return Step::DstFailed;
      }
      ps_.head_pending = false;
      if (sent < total) {
        ps_.nb = nb;
        ps_.sent = sent;
        ps_.used = used;
        ps_.done = done;
        return Step::Write;
      }
    }
    buf->consume(used);
    if (done) {
      return Step::Done;
    }
    if (used == 0) {
      return Step::Read;
    }
  }
}

// The waiting part of a body pump: starts from s (what pump_step last returned) and runs
// until the body is through.
template <class P>
awaitable<Pump> Conn::pump(tcp::socket* src, beast::flat_buffer* buf, P* p, tcp::socket* dst,
                           bool chunked_out, uint64_t* moved, Step s) {
  while (true) {
    beast::error_code ec;
    if (s == Step::Write) {
      BufSpan span{ps_.bufs.data(), ps_.nb};
      beast::buffers_suffix<BufSpan> rest(span);
      rest.consume(ps_.sent);
      arm(Wait::Idle, opts_.idle_timeout);
      co_await asio::async_write(*dst, rest, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (timed_out(ec)) {
          co_return Pump::TimedOut;
        }
        co_return Pump::DstFailed;
      }
      buf->consume(ps_.used);
      if (ps_.done) {
        co_return Pump::Ok;
      }
      s = ps_.used > 0 ? Step::Again : Step::Read;
    }
    switch (s) {
      case Step::Done:
        co_return Pump::Ok;
      case Step::Malformed:
        co_return Pump::Malformed;
      case Step::DstFailed:
        co_return Pump::DstFailed;
      default:
        break;
    }
    if (s == Step::Read) {
      // A request body that stops arriving is dropped sooner than a quiet response stream.
      arm(Wait::Idle, src == &client_ ? opts_.body_timeout : opts_.idle_timeout);
      auto mb = buf->prepare(kReadChunk);
      size_t n = co_await src->async_read_some(mb, asio::redirect_error(use_awaitable, ec));
      buf->commit(n);
      if (ec == asio::error::eof) {
        beast::error_code eof_ec;
        p->put_eof(eof_ec);
        if (eof_ec) {
          co_return Pump::SrcFailed;
        }
        // a body delimited by the close is complete now
      } else if (ec) {
        if (timed_out(ec)) {
          co_return Pump::TimedOut;
        }
        co_return Pump::SrcFailed;
      }
    }
    s = pump_step(buf, p, dst, chunked_out, moved);
  }
}

// After a 101: bytes flow both ways until either side closes (or nothing moves for
// idle_timeout). Both directions are coroutines of their own; this one waits for both.
struct Tunnel {
  explicit Tunnel(asio::io_context& io) : done(io) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  tcp::socket* a = nullptr;
  tcp::socket* b = nullptr;
  Watch* watch = nullptr;
  std::chrono::milliseconds idle{0};
  int alive = 2;
  asio::steady_timer done;
};

awaitable<void> splice(std::shared_ptr<Tunnel> t, bool a_to_b) {
  tcp::socket* src = a_to_b ? t->a : t->b;
  tcp::socket* dst = a_to_b ? t->b : t->a;
  auto buf = std::make_unique<char[]>(kReadChunk);
  while (true) {
    beast::error_code ec;
    auto mb = asio::buffer(buf.get(), kReadChunk);
    size_t n = co_await src->async_read_some(mb, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
    t->watch->deadline = Clock::now() + t->idle;
    auto cb = asio::buffer(buf.get(), n);
    co_await asio::async_write(*dst, cb, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
    t->watch->deadline = Clock::now() + t->idle;
  }
  beast::error_code ec;
  t->a->shutdown(tcp::socket::shutdown_both, ec);
  t->b->shutdown(tcp::socket::shutdown_both, ec);
  t->a->cancel(ec);
  t->b->cancel(ec);
  if (--t->alive == 0) {
    t->done.cancel();
  }
}

awaitable<void> Conn::tunnel() {
  beast::error_code ec;
  // Client bytes that arrived behind the request head belong to the new protocol.
  if (cbuf_.size() > 0) {
    arm(Wait::Idle, opts_.idle_timeout);
    co_await asio::async_write(*up_, cbuf_.data(), asio::redirect_error(use_awaitable, ec));
    cbuf_.consume(cbuf_.size());
    if (ec) {
      co_return;
    }
  }
  auto t = std::make_shared<Tunnel>(tc_.ioc);
  t->a = &client_;
  t->b = &*up_;
  t->watch = &watch_;
  t->idle = opts_.idle_timeout;
  arm(Wait::Idle, opts_.idle_timeout);
  auto ex = client_.get_executor();
  spawn_logged(ex, splice(t, true), "router.tunnel");
  spawn_logged(ex, splice(t, false), "router.tunnel");
  co_await t->done.async_wait(asio::redirect_error(use_awaitable, ec));
}

void Conn::finish(Clock::time_point started) {
  auto elapsed = Clock::now() - started;
  auto& sh = metrics_->shard[tc_.index];
  unsigned cls = status_ / 100;
  bump(sh.classes[(cls >= 1 && cls <= 5) ? cls - 1 : 4], uint64_t{1});
  double secs = std::chrono::duration<double>(elapsed).count();
  size_t b = 0;
  while (b < kBuckets.size() && secs > kBuckets[b]) {
    ++b;
  }
  bump(sh.buckets[b], uint64_t{1});
  bump(sh.sum_us, static_cast<uint64_t>(
                      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
  if (opts_.access_log) {
    st_->log->info(
        "request method={} host={} path={} status={} bytes={} ms={:.2f} upstream={} id={}",
        log_method_, log_host_, log_target_, status_, bytes_, secs * 1000.0,
        upstream_ ? std::string_view(upstream_->id) : std::string_view("-"),
        std::string_view(rid_, rid_len_));
  }
}

// One request: reads its head, routes it and proxies it. False: close the connection.
awaitable<bool> Conn::serve_one() {
  req_.emplace();
  watch_.between_requests = true;
  // A new connection has header_timeout for its whole first head; a kept-alive one may wait
  // keepalive_timeout for the next request to begin, then has header_timeout to finish it.
  bool head_armed = first_request_ || cbuf_.size() > 0;
  first_request_ = false;
  arm(Wait::Idle, head_armed ? opts_.header_timeout : opts_.keepalive_timeout);
  size_t scanned = 0;
  while (true) {
    Head hs = check_request_head(scanned);
    if (hs == Head::Ok) {
      break;
    }
    if (hs == Head::Malformed) {
      co_await write_client_head();
      co_return false;
    }
    if (st_->stopping.load(std::memory_order_relaxed)) {
      co_return false;
    }
    beast::error_code ec;
    auto mb = cbuf_.prepare(cbuf_.size() < 4096 ? 16 * 1024 : kReadChunk);
    size_t n = co_await client_.async_read_some(mb, asio::redirect_error(use_awaitable, ec));
    cbuf_.commit(n);
    if (ec) {
      co_return false;  // closed, reset or idle: nothing to answer
    }
    if (!head_armed) {
      head_armed = true;
      arm(Wait::Idle, opts_.header_timeout);
    }
  }
  watch_.between_requests = false;
  auto started = Clock::now();
  status_ = 0;
  bytes_ = 0;
  upstream_.reset();
  metrics_ = st_->none;
  build_upstream_head();
  auto& rq = *req_;
  if (opts_.access_log) {
    log_method_.assign(rq.method_str);
    log_host_.assign(host_raw_);
    log_target_.assign(rq.target);
  }
  bool client_keep_alive = rq.keep_alive();
  if (!client_keep_alive) {
    close_after_ = true;
  }
  bool head_request = rq.method == bhttp::verb::head;
  bool has_body = !rq.is_done();
  bool retryable = !has_body && detail::idempotent_method(rq.method_str);

  // Route.
  char hostbuf[kMaxHost];
  std::string_view host = detail::normalize_host(host_raw_, hostbuf, sizeof hostbuf);
  const Entry* entry = nullptr;
  if (host_raw_.empty() && rq.version >= 11) {
    close_after_ = true;
    make_error(400, "missing Host header");
  } else {
    const Compiled* rt = tc_.routes();
    auto it = rt->hosts.find(host);
    if (it == rt->hosts.end()) {
      if (has_body) {
        close_after_ = true;
      }
      make_error(404, "no service at host " + std::string(host.empty() ? host_raw_ : host));
    } else {
      entry = &it->second;
      metrics_ = entry->metrics;
      const Route& route = *entry->route;
      if (route.upstreams.empty()) {
        if (has_body) {
          close_after_ = true;
        }
        make_error(503, route.unavailable_reason.empty()
                            ? "service " + route.service + " has no healthy instance"
                            : route.unavailable_reason);
        entry = nullptr;
      } else {
        size_t i = detail::pick_least_outstanding(route.upstreams, tc_.rr++);
        upstream_ = route.upstreams[i];
      }
    }
  }
  cbuf_.consume(req_head_len_);  // views into the request head are dead from here on
  if (!upstream_) {
    co_await write_client_head();
    finish(started);
    co_return !close_after_;
  }

  Upstream& u = *upstream_;
  u.in_flight.fetch_add(1, std::memory_order_relaxed);
  u.requests_total.fetch_add(1, std::memory_order_relaxed);
  auto& shard = metrics_->shard[tc_.index];
  bump(shard.in_flight, int64_t{1});
  bool tunneled = false;
  bool keep = co_await proxy(head_request, has_body, retryable, client_keep_alive, tunneled);
  bump(shard.in_flight, int64_t{-1});
  u.in_flight.fetch_sub(1, std::memory_order_relaxed);
  finish(started);
  co_return keep && !tunneled;
}

// Sends the request upstream and the response back. False: close the client connection.
awaitable<bool> Conn::proxy(bool head_request, bool has_body, bool retryable,
                            bool client_keep_alive, bool& tunneled) {
  Upstream& u = *upstream_;
  bool ok = take_pooled();
  if (!ok) {
    ok = co_await connect_upstream();
  }
  if (!ok) {
    if (has_body) {
      close_after_ = true;
    }
    co_await write_client_head();
    co_return !close_after_;
  }
  if (expect_continue_ && has_body && req_->version >= 11 && cbuf_.size() == 0) {
    // The body is forwarded as it comes, so the client may send it right away.
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    beast::error_code ec;
    arm(Wait::Idle, opts_.idle_timeout);
    auto cb = asio::buffer(kContinue.data(), kContinue.size());
    co_await asio::async_write(client_, cb, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      drop_upstream();
      co_return false;
    }
  }
  for (int attempt = 0;; ++attempt) {
    bool can_retry = attempt == 0 && up_reused_ && retryable;
    ps_.head = &uhead_;
    ps_.head_pending = true;
    Step step = pump_step(&cbuf_, &*req_, &*up_, req_->chunked(), nullptr);
    Pump pr = Pump::Ok;
    if (step != Step::Done) {
      pr = co_await pump(&client_, &cbuf_, &*req_, &*up_, req_->chunked(), nullptr, step);
    }
    if (pr == Pump::DstFailed && can_retry) {
      drop_upstream();
      ok = co_await connect_upstream();
      if (!ok) {
        co_await write_client_head();
        co_return !close_after_;
      }
      continue;
    }
    if (pr == Pump::DstFailed) {
      u.failures_total.fetch_add(1, std::memory_order_relaxed);
      drop_upstream();
      close_after_ = true;
      make_error(502, "upstream " + u.id + " failed while receiving the request");
      co_await write_client_head();
      co_return false;
    }
    if (pr != Pump::Ok) {
      // The client went away, stalled, or sent a malformed body: nothing sensible to answer.
      status_ = pr == Pump::Malformed ? 400 : 499;
      drop_upstream();
      co_return false;
    }
    bool saw = false;
    arm(Wait::Response, opts_.response_timeout);
    start_response();
    while (true) {
      pr = check_response_head(saw);
      if (pr != Pump::Pending) {
        break;
      }
      beast::error_code ec;
      auto mb = ubuf_.prepare(kReadChunk);
      size_t n = co_await up_->async_read_some(mb, asio::redirect_error(use_awaitable, ec));
      ubuf_.commit(n);
      if (ec) {
        if (n > 0) {
          saw = true;
        }
        pr = timed_out(ec) ? Pump::TimedOut : Pump::SrcFailed;
        break;
      }
    }
    if (pr == Pump::Ok) {
      break;
    }
    if (pr == Pump::SrcFailed && !saw && can_retry) {
      drop_upstream();  // a stale keep-alive connection: try once more on a fresh one
      ok = co_await connect_upstream();
      if (!ok) {
        co_await write_client_head();
        co_return !close_after_;
      }
      continue;
    }
    u.failures_total.fetch_add(1, std::memory_order_relaxed);
    drop_upstream();
    if (pr == Pump::TimedOut) {
      make_error(504, "upstream " + u.id + " sent no response within " +
                          std::to_string(opts_.response_timeout.count()) + " ms");
    } else if (pr == Pump::Malformed) {
      make_error(502, "upstream " + u.id + " sent a malformed response");
    } else {
      make_error(502, "upstream " + u.id + " closed the connection without a response");
    }
    co_await write_client_head();
    co_return !close_after_;
  }

  bool upgrade = upgrade_req_ && res_->status == 101;
  Framing fr = build_client_head(head_request, upgrade, client_keep_alive);
  status_ = res_->status;
  ubuf_.consume(res_head_used_);
  if (upgrade) {
    tunneled = true;
    std::array<asio::const_buffer, 2> parts = {asio::buffer(chead_), ubuf_.data()};
    beast::error_code ec;
    arm(Wait::Idle, opts_.idle_timeout);
    co_await asio::async_write(client_, parts, asio::redirect_error(use_awaitable, ec));
    ubuf_.consume(ubuf_.size());
    if (!ec) {
      co_await tunnel();
    }
    drop_upstream();
    co_return false;
  }
  uint64_t moved = 0;
  ps_.head = &chead_;
  ps_.head_pending = true;
  bool chunked_out = fr == Framing::Chunked;
  Step step = pump_step(&ubuf_, &*res_, &client_, chunked_out, &moved);
  Pump pr = Pump::Ok;
  if (step != Step::Done) {
    pr = co_await pump(&*up_, &ubuf_, &*res_, &client_, chunked_out, &moved, step);
  }
  bytes_ = moved;
  if (pr == Pump::Ok) {
    release_upstream(res_->keep_alive());
    co_return !close_after_;
  }
  if (pr != Pump::DstFailed) {
    u.failures_total.fetch_add(1, std::memory_order_relaxed);
  }
  drop_upstream();
  ubuf_.clear();
  co_return false;
}

awaitable<void> Conn::run() {
  while (!st_->stopping.load(std::memory_order_relaxed)) {
    close_after_ = false;
    bool keep = co_await serve_one();
    if (!keep || close_after_) {
      break;
    }
  }
  beast::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  // Read what the client still sends (an unread body) for a moment, so closing does not
  // reset the connection before the client has read our answer.
  if (!ec && cbuf_.size() == 0) {
    arm(Wait::Idle, std::min(opts_.idle_timeout, std::chrono::milliseconds(1000)));
    size_t drained = 0;
    while (drained < (1u << 20)) {
      auto mb = cbuf_.prepare(16 * 1024);
      size_t n = co_await client_.async_read_some(mb, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        break;
      }
      drained += n;
    }
  }
  client_.close(ec);
}

awaitable<void> session(std::shared_ptr<State> st, ThreadCtx* tc, tcp::socket sock,
                        [[maybe_unused]] net::ConnectionGate::Ticket ticket) {
  Conn c(std::move(st), *tc, std::move(sock));
  co_await c.run();
}

awaitable<void> accept_loop(std::shared_ptr<State> self, std::shared_ptr<tcp::acceptor> acc) {
  // The thread of the next connection, picked with its io_context and used right after.
  auto pick = std::make_shared<ThreadCtx*>(nullptr);
  net::AcceptLoop loop;
  loop.acceptor = acc.get();
  loop.next_context = [s = self.get(), pick]() -> asio::io_context& {
    *pick = s->threads[s->next_thread++ % s->threads.size()].get();
    return (*pick)->ioc;
  };
  loop.gate = &self->gate;
  loop.on_connection = [self, pick](tcp::socket sock, net::ConnectionGate::Ticket t) {
    ThreadCtx* tc = *pick;
    spawn_logged(tc->ioc.get_executor(), session(self, tc, std::move(sock), std::move(t)),
                 "router.session");
  };
  loop.stopping = &self->stopping;
  loop.log = self->log;
  loop.name = "router";
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

}  // namespace

Router::Router(std::vector<asio::io_context*> contexts, RouterOptions opts)
    : state_(std::make_shared<State>(std::move(contexts), std::move(opts))) {}

Router::~Router() { stop(); }

Result<uint16_t> Router::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return Error(Errc::InvalidArgument, "router listen: invalid address '" + host + "'");
  }
  tcp::endpoint ep(addr, port);
  auto acc = std::make_shared<tcp::acceptor>(*state_->contexts.front());
  acc->open(ep.protocol(), ec);
  if (!ec) {
    acc->set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acc->bind(ep, ec);
  }
  if (!ec) {
    acc->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Error(Errc::Unavailable,
                 "router listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  uint16_t bound = acc->local_endpoint().port();
  state_->acceptors.push_back(std::move(acc));
  return bound;
}

void Router::start() {
  for (auto& acc : state_->acceptors) {
    state_->started.push_back(acc);
    auto ex = acc->get_executor();
    spawn_logged(ex, accept_loop(state_, std::move(acc)), "router.accept");
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
      "berth_router_connections {}\n",
      st.gate.open());
  auto cur = st.current.load();
  std::map<std::string, std::set<const Upstream*>> ups;
  for (auto& [host, route] : cur->table->hosts) {
    auto& set = ups[route.service];
    for (auto& u : route.upstreams) {
      set.insert(u.get());
    }
  }
  for (auto& [service, set] : ups) {
    out += fmt::format("berth_router_upstreams{{service=\"{}\"}} {}\n", escape_label(service),
                       set.size());
  }
  return out;
}

}  // namespace berth::router
