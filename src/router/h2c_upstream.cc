// SPDX-License-Identifier: Apache-2.0
// An HTTP/2 client stream proxied to an instance over HTTP/2 cleartext (prior knowledge, no
// Upgrade), for routes with protocol h2c: what gRPC needs (response trailers, streaming both
// ways, a reset from either side ending the other). The upstream side is an nghttp2 client
// session on a connection of its own per stream (no multiplexing yet, no pooling).
//
// Two coroutines per stream, both on the connection's I/O thread: this one writes what the
// session has to send (request HEADERS and DATA as the client's DATA arrives) and the reader
// feeds the instance's bytes to the session. The reader stops reading while more than
// kMaxPendingOut of the response waits for the client's window.
#include <nghttp2/nghttp2.h>

#include "router/conn.h"
#include "router/h2_stream.h"

namespace berth::router {

namespace {

constexpr size_t kMaxPendingOut = 256 * 1024;

struct Up {
  Up(asio::io_context& io, H2Stream* st, H2Downstream* d) : s(st), down(d), reader_done(io) {}
  ~Up() {
    if (session != nullptr) {
      nghttp2_session_del(session);
    }
  }
  H2Stream* s;
  H2Downstream* down;
  bool hsts_header = false;
  int64_t hsts_max_age = 0;
  nghttp2_session* session = nullptr;
  int32_t sid = -1;
  unsigned status = 0;
  H2Fields cur;  // the header block being received
  bool head_done = false;
  bool closed = false;  // the upstream stream is closed
  uint32_t close_code = 0;
  bool in_deferred = false;
  bool reading = true;
  bool failed = false;
  uint64_t bytes = 0;
  Signal reader_done;
};

int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* p) {
  auto* up = static_cast<Up*>(p);
  if (f->hd.stream_id == up->sid) {
    up->cur.clear();
  }
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* p) {
  auto* up = static_cast<Up*>(p);
  if (f->hd.stream_id != up->sid) {
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
  auto* up = static_cast<Up*>(p);
  if (f->hd.stream_id != up->sid) {
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
  } else if (f->hd.type == NGHTTP2_DATA && end) {
    s.end_out = true;
    if (!s.closed && !up->down->dead()) {
      up->down->resume(s);
    }
  }
  return 0;
}

int on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* p) {
  auto* up = static_cast<Up*>(p);
  if (id != up->sid) {
    return 0;
  }
  H2Stream& s = *up->s;
  s.out.append(reinterpret_cast<const char*>(data), len);
  up->bytes += len;
  if (!s.closed && !up->down->dead()) {
    up->down->resume(s);
  }
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
  auto* up = static_cast<Up*>(p);
  if (id == up->sid) {
    up->closed = true;
    up->close_code = code;
  }
  return 0;
}

// The request body: what the client sent that has not gone upstream yet.
ssize_t read_request(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                     nghttp2_data_source*, void* p) {
  auto* up = static_cast<Up*>(p);
  H2Stream& s = *up->s;
  size_t n = std::min(len, s.in.size());
  if (n == 0 && !s.end_in) {
    up->in_deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, s.in.data(), n);
  s.in.erase(0, n);
  if (n > 0 && !s.closed && !up->down->dead()) {
    up->down->consume(s, n);
  }
  if (s.end_in && s.in.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

awaitable<void> reader(std::shared_ptr<Up> up, const RouterOptions* opts) {
  H2Stream& s = *up->s;
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kReadChunk);
  while (up->reading && !up->closed) {
    if (s.out.size() - s.out_off >= kMaxPendingOut && !s.closed) {
      co_await s.room.wait();
      continue;
    }
    beast::error_code ec;
    size_t n = co_await read_some(&*s.up, asio::buffer(buf.get(), kReadChunk), &ec);
    if (ec) {
      up->failed = true;
      break;
    }
    s.watch.deadline = Clock::now() + (up->head_done ? opts->idle_timeout : opts->response_timeout);
    if (nghttp2_session_mem_recv(up->session, buf.get(), n) < 0) {
      up->failed = true;
      break;
    }
    s.wake.notify();  // acknowledgements (SETTINGS, WINDOW_UPDATE) to send
  }
  up->reading = false;
  s.wake.notify();
  up->reader_done.notify();
}

bool init_session(Up* up, H2Stream* s, const H2Fields& fields) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    return false;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_stream_close);
  int rv = nghttp2_session_client_new(&up->session, cb, up);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    up->session = nullptr;
    return false;
  }
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  if (nghttp2_submit_settings(up->session, NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) {
    return false;
  }
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
  up->sid = nghttp2_submit_request(up->session, nullptr, nv.data(), nv.size(),
                                   s->end_in && s->in.empty() ? nullptr : &dp, nullptr);
  return up->sid > 0;
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

awaitable<H2cResult> proxy_h2c(ThreadCtx* tc, const RouterOptions* opts, Upstream* u, H2Stream* s,
                               H2Downstream* down, H2Fields fields) {
  H2cResult res;
  auto opened = open_upstream(*tc, *u);
  if (!opened) {
    co_return res;
  }
  beast::error_code ec;
  s->up.emplace(std::move(opened->first));
  s->watch.a = &*s->up;
  s->watch.kind = Wait::Connect;
  s->watch.fired = false;
  s->watch.deadline = Clock::now() + opts->connect_timeout;
  co_await s->up->async_connect(opened->second, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    res.status = s->watch.fired ? 1 : 0;
    s->up.reset();
    s->watch.a = nullptr;
    co_return res;
  }
  s->up->set_option(tcp::no_delay(true), ec);
  s->watch.kind = Wait::Response;
  s->watch.deadline = Clock::now() + opts->response_timeout;

  auto up = std::make_shared<Up>(tc->ioc, s, down);
  up->hsts_header = s->hsts;
  up->hsts_max_age = opts->hsts_max_age.count();
  if (!init_session(up.get(), s, fields)) {
    s->up->close(ec);
    s->up.reset();
    s->watch.a = nullptr;
    co_return res;
  }
  spawn_logged(s->up->get_executor(), reader(up, opts), "router.h2c.reader");
  std::string out;
  bool cancelled = false;
  while (true) {
    if ((s->closed || down->dead()) && !up->closed && !cancelled) {
      // The client reset the stream (a deadline, a cancel) or went away: end it upstream.
      nghttp2_submit_rst_stream(up->session, NGHTTP2_FLAG_NONE, up->sid, NGHTTP2_CANCEL);
      cancelled = true;
    }
    if (up->in_deferred && !cancelled && (!s->in.empty() || s->end_in)) {
      up->in_deferred = false;
      nghttp2_session_resume_data(up->session, up->sid);
    }
    out.clear();
    const uint8_t* data = nullptr;
    ssize_t n;
    while (out.size() < kReadChunk && (n = nghttp2_session_mem_send(up->session, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!out.empty()) {
      co_await write_all(&*s->up, asio::buffer(out), &ec);
      if (ec) {
        up->failed = true;
        break;
      }
      // A long upload is not a quiet upstream.
      s->watch.deadline =
          Clock::now() + (up->head_done ? opts->idle_timeout : opts->response_timeout);
      continue;
    }
    if (cancelled || up->closed || !up->reading) {
      break;
    }
    co_await s->wake.wait();
  }
  up->reading = false;
  s->up->cancel(ec);
  s->room.notify();
  co_await up->reader_done.wait();
  s->up->close(ec);
  s->up.reset();
  s->watch.a = nullptr;
  res.bytes = up->bytes;
  if (!up->head_done) {
    res.status = s->watch.fired ? 1 : 0;
    co_return res;
  }
  res.status = up->status;
  if (!s->closed && !down->dead() && !s->end_out) {
    // The instance reset the stream or the connection broke: pass the reset on.
    down->reset(*s, up->close_code != 0 ? up->close_code : uint32_t{NGHTTP2_INTERNAL_ERROR});
  }
  co_return res;
}

}  // namespace berth::router
