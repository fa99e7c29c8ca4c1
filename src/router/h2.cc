// SPDX-License-Identifier: Apache-2.0
// HTTP/2 from clients (ALPN "h2") over nghttp2: the session is nghttp2's, this file moves
// bytes and maps each stream to an upstream request. One reader coroutine feeds
// nghttp2_session_mem_recv; one writer drains nghttp2_session_mem_send to the client; each
// stream is a coroutine of its own that proxies to an upstream as HTTP/1.1 over the same
// pools as Conn (or, for h2c routes, as an HTTP/2 stream: h2c_upstream.cc) (request body streamed
// up, response streamed down). All of them run on the connection's I/O thread, so they share the
// session without locks.
//
// Flow control is honoured both ways: request DATA is acknowledged (WINDOW_UPDATE, via
// nghttp2_session_consume) only once written upstream, and the upstream is read only while
// the stream's pending response stays under kMaxPendingOut. Abuse costs this connection only:
// nghttp2 caps queued ACKs (SETTINGS/PING floods), SETTINGS entries, header block size and
// the rate of stream resets, and answers an empty-DATA flood with GOAWAY; we cap concurrent
// streams (SETTINGS_MAX_CONCURRENT_STREAMS) and each stream's header bytes.
#include "router/h2.h"

#include <nghttp2/nghttp2.h>

#include "common/ascii.h"
#include "router/conn.h"
#include "router/h2_stream.h"

namespace berth::router {

namespace {

constexpr uint32_t kMaxStreams = 128;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxPendingOut = 256 * 1024;
constexpr int32_t kWindow = 1 << 20;

class H2Conn final : public std::enable_shared_from_this<H2Conn>, public H2Downstream {
 public:
  H2Conn(std::shared_ptr<State> st, ThreadCtx& tc, ClientStream stream, std::string peer)
      : st_(std::move(st)),
        tc_(tc),
        opts_(st_->opts),
        client_(std::move(stream)),
        peer_(std::move(peer)),
        writer_wake_(tc.ioc),
        writer_done_(tc.ioc) {
    watch_.a = &client_.socket();
    tc_.add(&watch_);
  }
  ~H2Conn() {
    ThreadCtx::remove(&watch_);
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  awaitable<void> run();

 private:
  bool init();
  awaitable<void> writer(std::shared_ptr<H2Conn> self);
  awaitable<void> proxy(std::shared_ptr<H2Conn> self, std::shared_ptr<H2Stream> s);
  // Coroutines: pointers, not references (STYLE 6); the caller awaits them at once.
  awaitable<bool> send_request(H2Stream* s, bool chunked);
  awaitable<unsigned> relay_response(H2Stream* s, uint64_t* bytes, bool* reusable);
  awaitable<unsigned> proxy_h2c_stream(H2Stream* s, Upstream* u, ServiceMetrics* metrics,
                                       std::string_view authority, uint64_t* bytes);
  void respond_error(H2Stream& s, unsigned status, const std::string& text);
  void submit_head(H2Stream& s, unsigned status, const H2Fields& fields, bool body) override;
  bool dead() const override { return dead_; }
  void resume(H2Stream& s) override;
  void consume(H2Stream& s, size_t n) override;
  void reset(H2Stream& s, uint32_t error_code) override;
  void flush() { writer_wake_.notify(); }
  void arm_client() {
    watch_.between_requests = streams_.empty();
    watch_.fired = false;
    watch_.deadline =
        Clock::now() + (streams_.empty() ? opts_.keepalive_timeout : opts_.idle_timeout);
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* u);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* u);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* u);
  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void* u);

  H2Stream* stream(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  std::shared_ptr<State> st_;
  ThreadCtx& tc_;
  const RouterOptions& opts_;
  ClientStream client_;
  std::string peer_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::shared_ptr<H2Stream>> streams_;
  std::vector<std::shared_ptr<H2Stream>> to_start_;
  Watch watch_;
  Signal writer_wake_;
  asio::steady_timer writer_done_;
  bool dead_ = false;
  bool writer_running_ = false;
  bool writer_idle_ = false;
};

bool H2Conn::init() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    return false;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &H2Conn::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Conn::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Conn::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Conn::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Conn::on_stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // we acknowledge what went upstream
  nghttp2_option_set_max_outbound_ack(opt, 1000);    // SETTINGS/PING flood
  nghttp2_option_set_max_settings(opt, 64);
  nghttp2_option_set_max_send_header_block_length(opt, kMaxHeaderBytes);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);  // rapid reset
  int rv = nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kWindow / 4)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxHeaderBytes)},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) {
    return false;
  }
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindow);
  return true;
}

int H2Conn::on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  self->streams_[f->hd.stream_id] = std::make_shared<H2Stream>(self->tc_.ioc, f->hd.stream_id);
  return 0;
}

int H2Conn::on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  H2Stream* s = self->stream(f->hd.stream_id);
  if (s == nullptr || s->started) {
    return 0;  // trailers of a request: HTTP/1.1 upstreams get none
  }
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > kMaxHeaderBytes) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets this stream only
  }
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") {
    s->method = std::move(v);
  } else if (n == ":path") {
    s->path = std::move(v);
  } else if (n == ":authority") {
    s->authority = std::move(v);
  } else if (n == ":scheme") {
    s->scheme = std::move(v);
  } else if (n == "host") {
    s->host = std::move(v);
  } else if (!n.empty() && n[0] != ':') {
    s->headers.emplace_back(std::move(n), std::move(v));
  }
  return 0;
}

int H2Conn::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  H2Stream* s = self->stream(f->hd.stream_id);
  if (s == nullptr) {
    return 0;
  }
  bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (f->hd.type == NGHTTP2_HEADERS && !s->started) {
    s->started = true;
    s->end_in = end;
    self->to_start_.push_back(self->streams_[f->hd.stream_id]);
  } else if (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) {
    if (end) {
      s->end_in = true;
      s->wake.notify();
    }
  }
  return 0;
}

int H2Conn::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                          void* u) {
  auto* self = static_cast<H2Conn*>(u);
  if (H2Stream* s = self->stream(id)) {
    s->in.append(reinterpret_cast<const char*>(data), len);
    s->wake.notify();
  } else {
    // A stream we no longer serve: give the connection window back at once.
    nghttp2_session_consume_connection(self->session_, len);
  }
  return 0;
}

int H2Conn::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) {
    return 0;
  }
  auto& s = *it->second;
  s.closed = true;
  if (s.up) {
    beast::error_code ec;
    s.up->cancel(ec);
  }
  s.wake.notify();
  self->streams_.erase(it);
  return 0;
}

ssize_t H2Conn::read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                          nghttp2_data_source*, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  H2Stream* s = self->stream(id);
  if (s == nullptr) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  size_t avail = s->out.size() - s->out_off;
  size_t n = std::min(avail, len);
  std::memcpy(buf, s->out.data() + s->out_off, n);
  s->out_off += n;
  if (s->out_off == s->out.size()) {
    s->out.clear();
    s->out_off = 0;
    s->wake.notify();  // room for more of the upstream's body
    s->room.notify();
  }
  if (n == 0 && !s->end_out) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (s->end_out && s->out.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s->trailers_out.empty()) {
      std::vector<nghttp2_nv> nv;
      nv.reserve(s->trailers_out.size());
      for (auto& [tn, tv] : s->trailers_out) {
        nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(tn.data()),
                                reinterpret_cast<uint8_t*>(tv.data()), tn.size(), tv.size(),
                                NGHTTP2_NV_FLAG_NONE});
      }
      if (nghttp2_submit_trailer(self->session_, id, nv.data(), nv.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
  }
  return static_cast<ssize_t>(n);
}

void H2Conn::submit_head(H2Stream& s, unsigned status, const H2Fields& fields, bool body) {
  std::string code = std::to_string(status);
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size() + 1);
  auto add = [&](const std::string& n, const std::string& v) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                            v.size(), NGHTTP2_NV_FLAG_NONE});
  };
  static const std::string kStatus = ":status";
  add(kStatus, code);
  for (const auto& [n, v] : fields) {
    add(n, v);
  }
  nghttp2_data_provider dp;
  dp.source.ptr = nullptr;
  dp.read_callback = &H2Conn::read_body;
  nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), body ? &dp : nullptr);
  flush();
}

void H2Conn::resume(H2Stream& s) {
  if (s.deferred && (s.end_out || s.out.size() > s.out_off)) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  flush();
}

void H2Conn::consume(H2Stream& s, size_t n) {
  nghttp2_session_consume(session_, s.id, n);
  flush();
}

void H2Conn::reset(H2Stream& s, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, error_code);
  flush();
}

void H2Conn::respond_error(H2Stream& s, unsigned status, const std::string& text) {
  if (s.closed || dead_) {
    return;
  }
  s.out = text + "\n";
  s.out_off = 0;
  s.end_out = true;
  std::vector<std::pair<std::string, std::string>> fields = {
      {"content-type", "text/plain; charset=utf-8"},
      {"content-length", std::to_string(s.out.size())}};
  submit_head(s, status, fields, true);
}

// Writes the request head and body upstream. False: the upstream failed.
awaitable<bool> H2Conn::send_request(H2Stream* s, bool chunked) {
  beast::error_code ec;
  while (!s->closed && !dead_) {
    if (!s->in.empty()) {
      std::string piece;
      if (chunked) {
        char hex[20];
        auto r = std::to_chars(hex, hex + sizeof hex, s->in.size(), 16);
        piece.assign(hex, r.ptr);
        piece += "\r\n";
        piece += s->in;
        piece += "\r\n";
      } else {
        piece = s->in;
      }
      size_t n = s->in.size();
      s->in.clear();
      s->watch.deadline = Clock::now() + opts_.idle_timeout;
      co_await write_all(&*s->up, asio::buffer(piece), &ec);
      if (ec) {
        co_return false;
      }
      if (!dead_ && !s->closed) {
        nghttp2_session_consume(session_, s->id, n);  // opens the client's window again
        flush();
      }
      continue;
    }
    if (s->end_in) {
      if (chunked) {
        static constexpr std::string_view kLast = "0\r\n\r\n";
        co_await write_all(&*s->up, asio::buffer(kLast.data(), kLast.size()), &ec);
        if (ec) {
          co_return false;
        }
      }
      co_return true;
    }
    co_await s->wake.wait();
  }
  co_return false;
}

// Reads the upstream's response and hands it to nghttp2. Returns the status (0: none came).
awaitable<unsigned> H2Conn::relay_response(H2Stream* s, uint64_t* bytes, bool* reusable) {
  beast::flat_buffer buf;
  std::optional<ResParser> parser;
  parser.emplace();
  if (s->method == "HEAD") {
    parser->skip(true);
  }
  beast::error_code ec;
  bool head_done = false;
  unsigned status = 0;
  size_t scanned = 0;
  s->watch.kind = Wait::Response;
  s->watch.deadline = Clock::now() + opts_.response_timeout;
  while (!s->closed && !dead_) {
    if (!head_done) {
      auto data = buf.data();
      const char* p = static_cast<const char*>(data.data());
      bool bare = false;
      size_t end = data.size() == 0
                       ? 0
                       : detail::find_head_end(p, data.size(), scanned > 2 ? scanned - 2 : 0, bare);
      if (end != 0 && !bare) {
        parser->put(asio::const_buffer(p, end), ec);
        if (ec || !parser->is_header_done()) {
          co_return 0;
        }
        if (parser->status >= 100 && parser->status < 200) {
          buf.consume(end);  // interim: wait for the final response
          parser.emplace();
          scanned = 0;
          continue;
        }
        status = parser->status;
        std::vector<std::pair<std::string, std::string>> fields;
        for (size_t i = 0; i < parser->nfields; ++i) {
          const Field& f = parser->fields[i];
          if (hop_by_hop(f) || (s->hsts && f.f == bhttp::field::strict_transport_security)) {
            continue;
          }
          std::string n(f.n());
          for (auto& c : n) {
            c = ascii::lower(c);
          }
          fields.emplace_back(std::move(n), std::string(f.v()));
        }
        if (s->hsts) {
          fields.emplace_back("strict-transport-security",
                              "max-age=" + std::to_string(opts_.hsts_max_age.count()));
        }
        buf.consume(end);
        head_done = true;
        s->watch.kind = Wait::Idle;
        if (parser->is_done()) {
          s->end_out = true;
        }
        submit_head(*s, status, fields, true);
        if (s->end_out) {
          *reusable = parser->keep_alive() && buf.size() == 0;
          co_return status;
        }
        continue;  // body bytes may already be in buf
      } else if (end != 0 || data.size() >= kHeaderLimit) {
        co_return 0;  // bare LFs (rare) or an oversized head: a 502
      } else {
        scanned = data.size();
      }
    } else if (buf.size() > 0) {
      parser->nviews = 0;
      size_t used = parser->put(buf.data(), ec);
      if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        co_return status;  // a malformed body: the stream is reset below
      }
      for (size_t i = 0; i < parser->nviews; ++i) {
        s->out.append(parser->views[i]);
        *bytes += parser->views[i].size();
      }
      buf.consume(used);
      if (parser->is_done()) {
        s->end_out = true;
      }
      if (s->deferred && (s->end_out || s->out.size() > s->out_off)) {
        s->deferred = false;
        nghttp2_session_resume_data(session_, s->id);
        flush();
      }
      if (s->end_out) {
        *reusable = parser->keep_alive() && buf.size() == 0;
        co_return status;
      }
      if (used == 0 && s->out.size() - s->out_off < kMaxPendingOut) {
        // need more bytes: fall through to the read below
      } else {
        while (!s->closed && !dead_ && s->out.size() - s->out_off >= kMaxPendingOut) {
          co_await s->wake.wait();  // the client has not taken what we have yet
        }
        if (used > 0) {
          continue;
        }
      }
    }
    if (s->closed || dead_) {
      break;
    }
    if (!head_done) {
      s->watch.deadline = Clock::now() + opts_.response_timeout;
    } else {
      s->watch.deadline = Clock::now() + opts_.idle_timeout;
    }
    auto mb = buf.prepare(kReadChunk);
    size_t n = co_await read_some(&*s->up, mb, &ec);
    buf.commit(n);
    if (ec == asio::error::eof && head_done) {
      beast::error_code e2;
      parser->put_eof(e2);
      if (!e2) {
        s->end_out = true;
        if (s->deferred) {
          s->deferred = false;
          nghttp2_session_resume_data(session_, s->id);
          flush();
        }
        co_return status;
      }
    }
    if (ec) {
      if (s->watch.fired && !head_done) {
        co_return 1;  // timed out waiting for the head: a 504
      }
      break;
    }
  }
  co_return head_done ? status : 0;
}

// A route with protocol h2c: the stream goes to the instance as an HTTP/2 stream
// (h2c_upstream.cc), trailers and all. Returns the status for the log.
awaitable<unsigned> H2Conn::proxy_h2c_stream(H2Stream* s, Upstream* u, ServiceMetrics* metrics,
                                             std::string_view authority, uint64_t* bytes) {
  u->in_flight.fetch_add(1, std::memory_order_relaxed);
  u->requests_total.fetch_add(1, std::memory_order_relaxed);
  auto& shard = metrics->shard[tc_.index];
  bump(shard.in_flight, int64_t{1});
  H2Fields fields = h2c_request_fields(*s, tc_, peer_, authority);
  H2cResult r = co_await proxy_h2c(&tc_, &opts_, u, s, this, std::move(fields));
  *bytes = r.bytes;
  unsigned status = r.status;
  if (status < 100) {
    if (!s->closed && !dead_) {
      u->failures_total.fetch_add(1, std::memory_order_relaxed);
      status = status == 1 ? 504 : 502;
      respond_error(*s, status,
                    status == 504 ? "upstream " + u->id + " sent no response in time"
                                  : "upstream " + u->id + " failed");
    } else {
      status = 499;
    }
  }
  bump(shard.in_flight, int64_t{-1});
  u->in_flight.fetch_sub(1, std::memory_order_relaxed);
  co_return status;
}

awaitable<void> H2Conn::proxy(std::shared_ptr<H2Conn> self, std::shared_ptr<H2Stream> sp) {
  H2Stream& s = *sp;
  auto started = Clock::now();
  s.watch.a = nullptr;
  tc_.add(&s.watch);
  struct Unwatch {
    Watch* w;
    ~Unwatch() { ThreadCtx::remove(w); }
  } unwatch{&s.watch};

  std::string_view authority = s.authority.empty() ? std::string_view(s.host) : s.authority;
  char hostbuf[kMaxHost];
  std::string_view host = detail::normalize_host(authority, hostbuf, sizeof hostbuf);
  const Entry* found = tc_.routes()->find(host);  // exact, then wildcard
  ServiceMetrics* metrics = st_->none;
  unsigned status = 0;
  uint64_t bytes = 0;
  std::shared_ptr<Upstream> up;
  bool h2c = false;
  if (s.method.empty() || s.path.empty() || s.method == "CONNECT") {
    status = 400;
    respond_error(s, status, "malformed HTTP/2 request");
  } else if (found == nullptr) {
    status = 404;
    respond_error(s, status, "no service at host " + std::string(host.empty() ? authority : host));
  } else {
    metrics = found->metrics;
    const Route& route = *found->route;
    if (route.upstreams.empty()) {
      status = 503;
      respond_error(s, status,
                    route.unavailable_reason.empty()
                        ? "service " + route.service + " has no healthy instance"
                        : route.unavailable_reason);
    } else {
      up = route.upstreams[detail::pick_least_outstanding(route.upstreams, tc_.rr++)];
    }
    s.hsts = route.hsts;
    h2c = route.protocol == Route::Protocol::h2c;
  }
  if (up && h2c) {
    status = co_await proxy_h2c_stream(&s, up.get(), metrics, authority, &bytes);
  } else if (up) {
    Upstream& u = *up;
    u.in_flight.fetch_add(1, std::memory_order_relaxed);
    u.requests_total.fetch_add(1, std::memory_order_relaxed);
    auto& shard = metrics->shard[tc_.index];
    bump(shard.in_flight, int64_t{1});
    // Upstream request head.
    bool has_cl = false;
    std::string head;
    head.reserve(512);
    head += s.method + " " + s.path + " HTTP/1.1\r\nHost: " + std::string(authority) + "\r\n";
    std::string xff;
    char rid[32];
    size_t rid_len = 0;
    for (const auto& [n, v] : s.headers) {
      if (n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
          n == "transfer-encoding" || n == "upgrade" || n == "te" || n == "x-forwarded-proto" ||
          n == "x-forwarded-host") {
        continue;
      }
      if (n == "x-forwarded-for") {
        detail::append_forwarded_for(xff, v, "");
        continue;
      }
      if (n == "content-length") {
        has_cl = true;
      }
      if (n == "x-request-id" && v.size() <= 200) {
        rid_len = std::min(v.size(), sizeof rid);
        std::memcpy(rid, v.data(), rid_len);
      }
      head += n + ": " + v + "\r\n";
    }
    bool chunked = !has_cl && !s.end_in;
    if (chunked) {
      head += "Transfer-Encoding: chunked\r\n";
    }
    head += "X-Forwarded-For: " + xff + peer_ + "\r\nX-Forwarded-Proto: https\r\n";
    head += "X-Forwarded-Host: " + std::string(authority) + "\r\n";
    if (rid_len == 0) {
      rid_len = tc_.request_id(rid);
      head += "X-Request-Id: " + std::string(rid, rid_len) + "\r\n";
    }
    head += "\r\n";

    beast::error_code ec;
    if (auto idle = take_idle(tc_, u, opts_.idle_timeout)) {
      s.up.emplace(std::move(*idle));
    } else if (auto opened = open_upstream(tc_, u)) {
      s.up.emplace(std::move(opened->first));
      s.watch.a = &*s.up;
      s.watch.kind = Wait::Connect;
      s.watch.fired = false;
      s.watch.deadline = Clock::now() + opts_.connect_timeout;
      co_await s.up->async_connect(opened->second, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        status = s.watch.fired ? 504 : 502;
        respond_error(s, status, "upstream " + u.id + " refused the connection: " + ec.message());
        s.up.reset();
      } else {
        s.up->set_option(tcp::no_delay(true), ec);
      }
    } else {
      status = 502;
      respond_error(s, status, opened.error().message());
    }
    if (s.up) {
      s.watch.a = &*s.up;
      s.watch.fired = false;
      s.watch.kind = Wait::Idle;
      s.watch.deadline = Clock::now() + opts_.idle_timeout;
      co_await write_all(&*s.up, asio::buffer(head), &ec);
      bool sent = !ec && co_await send_request(&s, chunked);
      bool reusable = false;
      unsigned got = 0;
      if (sent) {
        got = co_await relay_response(&s, &bytes, &reusable);
      }
      if (got >= 100) {
        status = got;
      } else if (!s.closed && !dead_) {
        u.failures_total.fetch_add(1, std::memory_order_relaxed);
        status = got == 1 ? 504 : 502;
        respond_error(s, status,
                      got == 1 ? "upstream " + u.id + " sent no response in time"
                               : "upstream " + u.id + " failed");
      } else {
        status = 499;
      }
      if (!s.end_out && !s.closed && !dead_) {
        // The response broke off: reset the stream rather than end it as if complete.
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
        flush();
        reusable = false;
      }
      if (reusable) {
        give_back(tc_, u, std::move(*s.up), opts_.max_idle_per_upstream);
      } else {
        s.up->close(ec);
      }
      s.up.reset();
      s.watch.a = nullptr;
    }
    bump(shard.in_flight, int64_t{-1});
    u.in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  auto elapsed = Clock::now() - started;
  record_request(metrics, tc_.index, status, elapsed);
  if (opts_.access_log) {
    st_->log->info(
        "request proto=h2 method={} host={} path={} status={} bytes={} ms={:.2f} "
        "upstream={}",
        s.method, authority, s.path, status, bytes,
        std::chrono::duration<double, std::milli>(elapsed).count(),
        up ? std::string_view(up->id) : std::string_view("-"));
  }
  (void)self;  // kept alive until the stream is done
}

awaitable<void> H2Conn::writer(std::shared_ptr<H2Conn> self) {
  std::string out;
  while (!dead_) {
    out.clear();
    while (out.size() < 64 * 1024) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        dead_ = true;
        break;
      }
      if (n == 0) {
        break;
      }
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!out.empty()) {
      beast::error_code ec;
      co_await client_.write_all(asio::buffer(out), &ec);
      if (ec) {
        dead_ = true;
        break;
      }
      if (!streams_.empty()) {
        watch_.deadline = Clock::now() + opts_.idle_timeout;  // a long download is not idle
      }
      continue;
    }
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
      break;  // GOAWAY sent and received, nothing left
    }
    writer_idle_ = true;
    co_await writer_wake_.wait();
    writer_idle_ = false;
  }
  dead_ = true;
  beast::error_code ec;
  client_.socket().cancel(ec);  // ends the reader too
  writer_running_ = false;
  writer_done_.cancel();
  (void)self;  // kept alive until the writer is done
}

awaitable<void> H2Conn::run() {
  auto self = shared_from_this();
  if (!init()) {
    co_return;
  }
  auto ex = client_.socket().get_executor();
  writer_running_ = true;
  writer_done_.expires_at(asio::steady_timer::time_point::max());
  spawn_logged(ex, writer(self), "router.h2.writer");
  flush();  // our SETTINGS
  auto buf = std::make_unique<uint8_t[]>(kReadChunk);
  while (!dead_) {
    if (st_->stopping.load(std::memory_order_relaxed)) {
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      flush();
    }
    arm_client();
    beast::error_code ec;
    size_t n = co_await client_.read_some(asio::buffer(buf.get(), kReadChunk), &ec);
    if (ec || dead_) {
      break;
    }
    ssize_t rv = nghttp2_session_mem_recv(session_, buf.get(), n);
    if (rv < 0) {
      // A protocol error or a flood: nghttp2 has queued a GOAWAY; send it and close.
      st_->log->debug("h2 session error peer={} error={}", peer_,
                      nghttp2_strerror(static_cast<int>(rv)));
      flush();
      break;
    }
    for (auto& s : to_start_) {
      spawn_logged(ex, proxy(self, s), "router.h2.stream");
    }
    to_start_.clear();
    flush();
  }
  // The read side is over. What nghttp2 queued (a GOAWAY after a protocol error or a flood)
  // goes out in one attempt when the writer is not mid-write; nothing waits for it.
  if (writer_idle_ && !dead_) {
    std::string out;
    const uint8_t* data = nullptr;
    ssize_t n;
    while (out.size() < 64 * 1024 && (n = nghttp2_session_mem_send(session_, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!out.empty()) {
      beast::error_code ec;
      client_.write_some(asio::buffer(out), ec);
    }
  }
  dead_ = true;
  for (auto& [id, s] : streams_) {
    s->closed = true;
    if (s->up) {
      beast::error_code ec;
      s->up->cancel(ec);
    }
    s->wake.notify();
  }
  streams_.clear();
  writer_wake_.notify();
  if (writer_running_) {
    beast::error_code ec;
    co_await writer_done_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  beast::error_code ec;
  client_.shutdown_send(ec);
  client_.close(ec);
}

}  // namespace

awaitable<void> serve_h2(std::shared_ptr<State> st, ThreadCtx* tc, ClientStream stream,
                         std::string peer) {
  auto c = std::make_shared<H2Conn>(std::move(st), *tc, std::move(stream), std::move(peer));
  co_await c->run();
}

}  // namespace berth::router
