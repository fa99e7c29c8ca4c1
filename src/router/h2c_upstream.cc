// SPDX-License-Identifier: Apache-2.0
// HTTP/2 client streams proxied to an instance over HTTP/2 cleartext (prior knowledge, no
// Upgrade), for routes with protocol h2c: what gRPC needs (response trailers, streaming both
// ways, a reset from either side ending the other).
//
// Streams are multiplexed: each I/O thread keeps its own connections to an instance in the
// upstream's pool slot (state.h), and a stream takes the first with room (the instance's
// SETTINGS_MAX_CONCURRENT_STREAMS, at most kMaxStreamsPerConn), else opens one; streams that
// arrive while it connects wait for it rather than open their own. An H2cConn has one nghttp2
// client session, a writer coroutine that sends what the session has, and a reader that
// feeds it the instance's bytes; both hold it alive, and it ends when its socket does. Idle
// for RouterOptions::idle_timeout, or idle when the router stops, the sweep closes it.
//
// Back-pressure per stream is HTTP/2 flow control: the instance may send a stream
// kStreamWindow bytes ahead of what the client has taken (window updates are ours to send:
// nghttp2's automatic ones are off), so a slow client slows only its own stream. The
// connection's window is big enough for every stream's.
//
// Each stream's own coroutine (proxy_h2c) waits on its H2Stream::wake: the client side, the
// connection's reader and the sweep (the stream's deadline) all notify it.
#include <nghttp2/nghttp2.h>

#include <unordered_map>

#include "router/conn.h"
#include "router/h2_stream.h"

namespace berth::router {

namespace {
constexpr size_t kMaxStreamsPerConn = 100;
constexpr int32_t kStreamWindow = 256 * 1024;
// The largest HTTP/2 allows: nghttp2 opens it again only once half of it is consumed, so a
// window just big enough for every stream's could stall them all behind a few slow clients.
// The stream windows bound what waits in berthd.
constexpr int32_t kConnWindow = NGHTTP2_MAX_WINDOW_SIZE;
// New streams go to another connection before this one's stream ids run out.
constexpr int32_t kLastStreamId = (1 << 30);
}  // namespace

// One stream on an H2cConn, owned by its proxy_h2c coroutine.
struct H2cCall {
  H2Stream* s = nullptr;
  H2Downstream* down = nullptr;
  bool hsts_header = false;
  int64_t hsts_max_age = 0;
  int32_t sid = -1;
  unsigned status = 0;
  H2Fields cur;  // the header block being received
  bool head_done = false;
  bool closed = false;  // the upstream stream is closed (or its connection failed)
  uint32_t close_code = 0;
  bool in_deferred = false;
  uint64_t bytes = 0;     // response body received
  uint64_t consumed = 0;  // of which the instance's window was given back
  uint64_t progress = 0;  // bumped by every frame either way: the stream is not idle
  uint64_t sent = 0;      // request body bytes handed to nghttp2
};

struct H2cConn : std::enable_shared_from_this<H2cConn> {
  H2cConn(std::shared_ptr<State> s, ThreadCtx& t)
      : st(std::move(s)), tc(t), sock(t.ioc), wake(t.ioc) {
    watch.a = &sock;
    tc.add(&watch);
  }
  ~H2cConn() {
    ThreadCtx::remove(&watch);
    if (session != nullptr) {
      nghttp2_session_del(session);
    }
  }

  bool has_room() const {
    if (dead || going_away || watch.fired) {  // (fired: the sweep is closing it)
      return false;
    }
    if (connecting) {
      return waiting + 1 < kMaxStreamsPerConn;
    }
    uint32_t peer =
        nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return streams.size() < std::min<size_t>(kMaxStreamsPerConn, peer) &&
           nghttp2_session_get_next_stream_id(session) < static_cast<uint32_t>(kLastStreamId);
  }
  H2cCall* find(int32_t sid) {
    auto it = streams.find(sid);
    return it == streams.end() ? nullptr : it->second;
  }
  // No stream: the sweep closes it after idle_timeout (or at once when the router stops).
  void arm_idle(std::chrono::milliseconds idle) {
    watch.between_requests = streams.empty();
    watch.kind = Wait::Idle;
    watch.deadline = streams.empty() ? Clock::now() + idle : Clock::time_point::max();
  }
  // Ends the connection: every stream on it fails, and the reader and writer stop. A stream
  // whose HEADERS never went out fails as refused (the instance never saw it: it is retried).
  void fail() {
    if (dead) {
      return;
    }
    dead = true;
    for (auto& [sid, up] : streams) {
      if (!up->closed) {
        up->closed = true;
        bool sent = session != nullptr && nghttp2_session_find_stream(session, sid) != nullptr;
        up->close_code = sent ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_REFUSED_STREAM;
        up->s->wake.notify();
      }
    }
    streams.clear();
    beast::error_code ec;
    sock.cancel(ec);
    wake.notify();
    connected();
  }
  // The connect ended (either way): the streams waiting for it go on.
  void connected() {
    connecting = false;
    for (Signal* w : waiters) {
      w->notify();
    }
  }

  std::shared_ptr<State> st;  // outlives the ThreadCtx whose watch list holds ours
  ThreadCtx& tc;
  tcp::socket sock;
  nghttp2_session* session = nullptr;
  std::unordered_map<int32_t, H2cCall*> streams;  // by upstream stream id
  Signal wake;                                    // the writer: the session may have frames to send
  std::vector<Signal*> waiters;  // the wakes of the streams waiting for the connect
  Watch watch;
  size_t waiting = 0;  // streams waiting for the connect
  bool connecting = true;
  bool dead = false;
  bool going_away = false;  // the instance sent GOAWAY: no new streams
};

void close_h2c(const std::shared_ptr<H2cConn>& c) {
  if (c) {
    c->fail();
  }
}

namespace {

H2cConn* conn_of(void* p) { return static_cast<H2cConn*>(p); }

int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* p) {
  if (H2cCall* up = conn_of(p)->find(f->hd.stream_id)) {
    up->cur.clear();
  }
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* p) {
  H2cCall* up = conn_of(p)->find(f->hd.stream_id);
  if (up == nullptr) {
    return 0;
  }
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    unsigned code = 0;
    std::from_chars(v.data(), v.data() + v.size(), code);
    up->status = code;
  } else if (!n.empty() && n[0] != ':') {
    if (up->hsts_header && n == "strict-transport-security") {
      return 0;
    }
    up->cur.emplace_back(std::move(n), std::move(v));
  }
  return 0;
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* p) {
  H2cConn* c = conn_of(p);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    c->going_away = true;
    return 0;
  }
  H2cCall* up = c->find(f->hd.stream_id);
  if (up == nullptr) {
    return 0;
  }
  H2Stream& s = *up->s;
  bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (f->hd.type == NGHTTP2_HEADERS) {
    if (!up->head_done) {
      if (up->status >= 100 && up->status < 200) {
        up->status = 0;  // interim: wait for the final response
        return 0;
      }
      up->head_done = true;
      if (up->hsts_header) {
        up->cur.emplace_back("strict-transport-security",
                             "max-age=" + std::to_string(up->hsts_max_age));
      }
      s.end_out = end;
      if (!s.closed && !up->down->dead()) {
        up->down->submit_head(s, up->status, up->cur, !end);
      }
    } else {
      s.trailers_out = std::move(up->cur);
      s.end_out = s.end_out || end;
      if (!s.closed && !up->down->dead()) {
        up->down->resume(s);
      }
    }
    up->cur.clear();
    ++up->progress;
    s.wake.notify();  // the stream's deadline moves on
  } else if (f->hd.type == NGHTTP2_DATA && end) {
    s.end_out = true;
    if (!s.closed && !up->down->dead()) {
      up->down->resume(s);
    }
  }
  return 0;
}

int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                  void* p) {
  H2cCall* up = conn_of(p)->find(id);
  if (up == nullptr) {
    // A stream we let go of (the client reset it): its bytes still count against the
    // connection's window.
    nghttp2_session_consume_connection(session, len);
    return 0;
  }
  H2Stream& s = *up->s;
  s.out.append(reinterpret_cast<const char*>(data), len);
  up->bytes += len;
  ++up->progress;
  if (!s.closed && !up->down->dead()) {
    up->down->resume(s);
  }
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
  if (H2cCall* up = conn_of(p)->find(id)) {
    up->closed = true;
    up->close_code = code;
    up->s->wake.notify();
  }
  return 0;
}

// The request body: what the client sent that has not gone upstream yet.
ssize_t read_request(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                     nghttp2_data_source*, void* p) {
  H2cCall* up = conn_of(p)->find(id);
  if (up == nullptr) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // let go of: it is being reset
  }
  H2Stream& s = *up->s;
  size_t n = std::min(len, s.in.size());
  if (n == 0 && !s.end_in) {
    up->in_deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, s.in.data(), n);
  s.in.erase(0, n);
  ++up->progress;
  up->sent += n;
  if (n > 0 && !s.closed && !up->down->dead()) {
    up->down->consume(s, n);
  }
  if (s.end_in && s.in.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

bool init_session(H2cConn* c) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    return false;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_stream_close);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = nghttp2_session_client_new2(&c->session, cb, c, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    c->session = nullptr;
    return false;
  }
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  return nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, std::size(iv)) == 0 &&
         nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, kConnWindow) == 0;
}

awaitable<void> conn_writer(std::shared_ptr<H2cConn> c) {
  std::string out;
  beast::error_code ec;
  while (!c->dead) {
    out.clear();
    const uint8_t* data = nullptr;
    ssize_t n = 0;
    while (out.size() < kReadChunk && (n = nghttp2_session_mem_send(c->session, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (n < 0) {
      c->fail();
      break;
    }
    if (!out.empty()) {
      co_await write_all(&c->sock, asio::buffer(out), &ec);
      if (ec) {
        c->fail();
      }
      continue;
    }
    if (nghttp2_session_want_read(c->session) == 0 && nghttp2_session_want_write(c->session) == 0) {
      c->fail();  // GOAWAY done both ways
      break;
    }
    co_await c->wake.wait();
  }
}

awaitable<void> conn_reader(std::shared_ptr<H2cConn> c) {
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kReadChunk);
  while (!c->dead) {
    beast::error_code ec;
    size_t n = co_await read_some(&c->sock, asio::buffer(buf.get(), kReadChunk), &ec);
    if (ec || nghttp2_session_mem_recv(c->session, buf.get(), n) < 0) {
      c->fail();
      break;
    }
    c->wake.notify();  // acknowledgements (SETTINGS, PING), window updates, resets to send
  }
  beast::error_code ec;
  c->sock.close(ec);
}

// A connection to u with room for one more stream: one of this thread's, or a new one. Null
// when it cannot be had; *timed_out then says whether the connect ran out of time.
awaitable<std::shared_ptr<H2cConn>> take_conn(std::shared_ptr<State> st, ThreadCtx* tc,
                                              const RouterOptions* opts, Upstream* u, H2Stream* s,
                                              H2Downstream* down, bool* timed_out) {
  auto* slot = tc->slot(*u->pool, true);
  std::shared_ptr<H2cConn> c;
  if (slot != nullptr) {
    std::erase_if(slot->h2c, [](const auto& w) { return w.expired(); });
    for (auto& w : slot->h2c) {
      if (auto live = w.lock(); live->has_room()) {
        c = std::move(live);
        break;
      }
    }
  }
  if (c && c->connecting) {
    // Wait for the connect, or for the client to give up (it may reset the stream meanwhile).
    struct Waiting {
      H2cConn* c;
      Signal* wake;
      ~Waiting() {
        --c->waiting;
        std::erase(c->waiters, wake);
      }
    } waiting{c.get(), &s->wake};
    ++c->waiting;  // (has_room counts these)
    c->waiters.push_back(&s->wake);
    while (c->connecting && !s->closed && !down->dead()) {
      co_await s->wake.wait();
    }
    if (c->connecting || c->dead) {
      *timed_out = c->dead && c->watch.fired;
      co_return nullptr;
    }
    co_return c;
  }
  if (c) {
    co_return c;
  }
  auto opened = open_upstream(*tc, *u);
  if (!opened) {
    co_return nullptr;
  }
  c = std::make_shared<H2cConn>(std::move(st), *tc);
  c->sock = std::move(opened->first);
  if (slot != nullptr) {
    if (std::none_of(tc->pools.begin(), tc->pools.end(),
                     [u](const auto& w) { return w.lock() == u->pool; })) {
      tc->pools.push_back(u->pool);  // so that release_pools() finds the slot
    }
    slot->h2c.push_back(c);
  }
  c->watch.kind = Wait::Connect;
  c->watch.deadline = Clock::now() + opts->connect_timeout;
  beast::error_code ec;
  co_await c->sock.async_connect(opened->second, asio::redirect_error(use_awaitable, ec));
  c->watch.deadline = Clock::time_point::max();
  if (ec || c->dead || !init_session(c.get())) {
    *timed_out = c->watch.fired;
    c->fail();
    c->sock.close(ec);
    co_return nullptr;
  }
  c->sock.set_option(tcp::no_delay(true), ec);
  c->arm_idle(opts->idle_timeout);
  spawn_logged(tc->ioc.get_executor(), conn_writer(c), "router.h2c.writer");
  spawn_logged(tc->ioc.get_executor(), conn_reader(c), "router.h2c.reader");
  c->connected();
  co_return c;
}

// Submits the stream's request on c; false when nghttp2 refuses it.
bool submit_call(H2cConn* c, H2cCall* up, const H2Fields& fields) {
  H2Stream* s = up->s;
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size() + 4);
  auto add = [&](const std::string& n, const std::string& v) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                            v.size(), NGHTTP2_NV_FLAG_NONE});
  };
  static const std::string kMethod = ":method", kScheme = ":scheme", kHttp = "http",
                           kAuthority = ":authority", kPath = ":path";
  const std::string& authority = s->authority.empty() ? s->host : s->authority;
  add(kMethod, s->method);
  add(kScheme, kHttp);
  add(kAuthority, authority);
  add(kPath, s->path);
  for (const auto& [n, v] : fields) {
    add(n, v);
  }
  nghttp2_data_provider dp;
  dp.source.ptr = nullptr;
  dp.read_callback = &read_request;
  up->sid = nghttp2_submit_request(c->session, nullptr, nv.data(), nv.size(),
                                   s->end_in && s->in.empty() ? nullptr : &dp, nullptr);
  if (up->sid <= 0) {
    return false;
  }
  c->streams.emplace(up->sid, up);
  c->arm_idle(std::chrono::milliseconds(0));
  c->wake.notify();
  return true;
}

}  // namespace

H2Fields h2c_request_fields(const H2Stream& s, ThreadCtx& tc, std::string_view peer,
                            std::string_view authority) {
  H2Fields fields;
  fields.reserve(s.headers.size() + 4);
  std::string xff;
  bool has_rid = false;
  for (const auto& [n, v] : s.headers) {
    if (n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
        n == "transfer-encoding" || n == "upgrade" || n == "x-forwarded-proto" ||
        n == "x-forwarded-host" || (n == "te" && v != "trailers")) {
      continue;
    }
    if (n == "x-forwarded-for") {
      detail::append_forwarded_for(xff, v, "");
      continue;
    }
    if (n == "x-request-id" && v.size() <= 200) {
      has_rid = true;
    }
    fields.emplace_back(n, v);
  }
  fields.emplace_back("x-forwarded-for", xff + std::string(peer));
  fields.emplace_back("x-forwarded-proto", "https");
  fields.emplace_back("x-forwarded-host", std::string(authority));
  if (!has_rid) {
    char rid[32];
    size_t rid_len = tc.request_id(rid);
    fields.emplace_back("x-request-id", std::string(rid, rid_len));
  }
  return fields;
}

namespace {

// Runs one call submitted on c until the instance or the client ends it (or its deadline).
awaitable<void> run_call(std::shared_ptr<H2cConn> c, H2cCall* call, const RouterOptions* opts) {
  H2cCall& up = *call;
  H2Stream* s = up.s;
  H2Downstream* down = up.down;
  // The stream's deadline: the sweep notifies s->wake when it passes.
  s->watch.a = nullptr;
  s->watch.signal = &s->wake;
  s->watch.kind = Wait::Response;
  s->watch.fired = false;
  s->watch.deadline = Clock::now() + opts->response_timeout;
  uint64_t seen = 0;  // up.progress when the deadline last moved
  while (!up.closed) {
    if (s->closed || down->dead() || s->watch.fired) {
      // The client reset the stream (a deadline, a cancel), went away, or the instance went
      // quiet for too long: end it upstream.
      nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, up.sid, NGHTTP2_CANCEL);
      c->wake.notify();
      break;
    }
    if (up.in_deferred && (!s->in.empty() || s->end_in)) {
      up.in_deferred = false;
      nghttp2_session_resume_data(c->session, up.sid);
      c->wake.notify();
    }
    // What the client took of the response opens the instance's window again.
    uint64_t taken = up.bytes - (s->out.size() - s->out_off);
    if (taken > up.consumed) {
      nghttp2_session_consume(c->session, up.sid, taken - up.consumed);
      up.consumed = taken;
      c->wake.notify();
    }
    if (up.progress != seen) {
      seen = up.progress;
      s->watch.deadline =
          Clock::now() + (up.head_done ? opts->idle_timeout : opts->response_timeout);
    }
    co_await s->wake.wait();
  }
  s->watch.signal = nullptr;
  s->watch.deadline = Clock::time_point::max();
  // Let go of the stream; the connection's window gets back what the client never took.
  if (!c->dead) {
    c->streams.erase(up.sid);
    if (up.bytes > up.consumed) {
      nghttp2_session_consume_connection(c->session, up.bytes - up.consumed);
      c->wake.notify();
    }
    c->arm_idle(opts->idle_timeout);
  }
}

}  // namespace

awaitable<H2cResult> proxy_h2c(std::shared_ptr<State> st, ThreadCtx* tc, const RouterOptions* opts,
                               Upstream* u, H2Stream* s, H2Downstream* down, H2Fields fields) {
  H2cResult res;
  H2cCall up;
  for (int attempt = 0;; ++attempt) {
    bool timed_out = false;
    std::shared_ptr<H2cConn> c = co_await take_conn(st, tc, opts, u, s, down, &timed_out);
    if (!c) {
      res.status = timed_out ? 1 : 0;
      co_return res;
    }
    up = H2cCall{};
    up.s = s;
    up.down = down;
    up.hsts_header = s->hsts;
    up.hsts_max_age = opts->hsts_max_age.count();
    if (!submit_call(c.get(), &up, fields)) {
      c->going_away = true;  // (its stream ids ran out, say): the next try takes another
      if (attempt == 0) {
        continue;
      }
      co_return res;
    }
    // Whatever ends this frame (the call done, or the io_context torn down mid-call), the
    // connection must not keep a pointer to it.
    struct LetGo {
      H2cConn* c;
      H2cCall* up;
      ~LetGo() {
        if (auto it = c->streams.find(up->sid); it != c->streams.end() && it->second == up) {
          c->streams.erase(it);
        }
      }
    } let_go{c.get(), &up};
    co_await run_call(c, &up, opts);
    // REFUSED_STREAM (a connection the instance is closing with GOAWAY, or one that broke
    // before the request went out) means the instance did nothing with the request: once
    // more, on another connection, when none of its body is gone.
    if (attempt == 0 && up.closed && up.close_code == NGHTTP2_REFUSED_STREAM && !up.head_done &&
        up.sent == 0 && !s->closed && !down->dead()) {
      continue;
    }
    break;
  }
  res.bytes = up.bytes;
  if (!up.head_done) {
    res.status = s->watch.fired ? 1 : 0;
    co_return res;
  }
  res.status = up.status;
  if (!s->closed && !down->dead() && !s->end_out) {
    // The instance reset the stream or the connection broke: pass the reset on.
    down->reset(*s, up.close_code != 0 ? up.close_code : uint32_t{NGHTTP2_INTERNAL_ERROR});
  }
  co_return res;
}

}  // namespace berth::router
