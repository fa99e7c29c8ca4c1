// SPDX-License-Identifier: Apache-2.0
// One HTTP/2 stream proxied to an upstream (HTTP/1.1 from the pools, or an h2c stream): the
// request head and body sent up as the client's DATA arrives (acknowledged only once written),
// the response relayed down while the stream's pending output stays under kMaxPendingOut.
#include "router/h2_conn.h"

namespace berth::router {

awaitable<Sent> H2Conn::send_request(H2Stream* s, bool chunked) {
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
      consume(*s, n);  // written or not, the client's window opens again
      if (ec) {
        co_return Sent::UpstreamFailed;
      }
      continue;
    }
    if (s->end_in) {
      if (chunked) {
        static constexpr std::string_view kLast = "0\r\n\r\n";
        co_await write_all(&*s->up, asio::buffer(kLast.data(), kLast.size()), &ec);
        if (ec) {
          co_return Sent::UpstreamFailed;
        }
      }
      co_return Sent::Ok;
    }
    s->watch.fired = false;
    s->watch.deadline = Clock::now() + opts_.body_timeout;  // the client's next DATA
    co_await s->wake.wait();
    if (s->watch.fired) {
      co_return Sent::BodyStalled;
    }
  }
  co_return Sent::UpstreamFailed;
}

// Reads the upstream's response and hands it to nghttp2. Returns the status (0: none came).
awaitable<unsigned> H2Conn::relay_response(H2Stream* s, uint64_t* bytes, bool* reusable) {
  beast::flat_buffer buf;
  std::optional<ResParser> parser;
  parser.emplace();
  parser->skip(s->method == "HEAD");
  beast::error_code ec;
  bool head_done = false;
  unsigned status = 0;
  size_t scanned = 0;
  bool bare = false;  // a line of the head ends in a bare LF (put_response_head)
  std::string crlf;
  s->watch.kind = Wait::Response;
  s->watch.deadline = Clock::now() + opts_.response_timeout;
  while (!s->closed && !dead_) {
    if (!head_done) {
      auto data = buf.data();
      const char* p = static_cast<const char*>(data.data());
      size_t end = data.size() == 0
                       ? 0
                       : detail::find_head_end(p, data.size(), scanned > 2 ? scanned - 2 : 0, bare);
      if (end != 0) {
        put_response_head(*parser, p, end, bare, crlf, ec);
        if (ec || !parser->is_header_done()) {
          co_return 0;
        }
        if (parser->status >= 100 && parser->status < 200) {
          buf.consume(end);  // interim: wait for the final response
          parser.emplace();
          parser->skip(s->method == "HEAD");
          scanned = 0;
          bare = false;
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
      } else if (data.size() >= kHeaderLimit) {
        co_return 0;  // an oversized head: a 502
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
      if (s->out_off > 0 && s->out_off >= s->out.size() - s->out_off) {
        // Bytes the client took go before more are added: a stream the client drains slowly
        // but never quite empties must not keep the whole body (a copy of at most what was
        // taken since the last time, so each byte is moved about once).
        s->out.erase(0, s->out_off);
        s->out_off = 0;
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
      if (used > 0) {
        continue;
      }
    }
    if (s->closed || dead_) {
      break;
    }
    size_t chunk = kReadChunk;
    if (head_done) {
      // Body bytes held for the client: at most kMaxPendingOut for this stream (it waits for
      // the client to take them all) and kMaxConnPendingOut for all the connection's streams
      // (it waits for room, which read_body and stream closes signal). A stream holding
      // nothing always gets a small read, so that streams the client has paused cannot starve
      // the others. Reads under way count, to make the next ones small when they would crowd
      // the connection.
      size_t mine = s->out.size() - s->out_off;
      size_t conn = pending_out();
      bool wait_own = mine >= kMaxPendingOut;
      bool wait_conn = mine > 0 && conn >= kMaxConnPendingOut;
      if (wait_own || wait_conn) {
        if (buf.size() == 0) {
          buf.shrink_to_fit();  // a waiting stream holds no read buffer
        }
        // The client has not taken what we have yet: idle_timeout for it to take some
        // (read_body moves the deadline on with every byte it takes).
        s->watch.fired = false;
        s->watch.deadline = Clock::now() + opts_.idle_timeout;
        s->wants_room = true;
        if (wait_conn && !wait_own) {
          room_waiters_.push_back(s->id);
        }
        co_await s->wake.wait();
        s->wants_room = false;
        if (s->watch.fired) {
          co_return status;  // the caller resets the stream: the response broke off
        }
        continue;
      }
      size_t room =
          std::min(kMaxPendingOut - mine, kMaxConnPendingOut - std::min(conn, kMaxConnPendingOut));
      bool crowded = conn + reading_ + kReadChunk > kMaxConnPendingOut;
      chunk = std::min(crowded ? kSmallChunk : kReadChunk, std::max(room, kSmallChunk));
      s->watch.deadline = Clock::now() + opts_.idle_timeout;
    } else {
      // The head in small reads: the body bytes that come with it are held before the room
      // for them is checked.
      chunk = kSmallChunk;
      s->watch.deadline = Clock::now() + opts_.response_timeout;
    }
    auto mb = buf.prepare(chunk);
    reading_ += chunk;
    size_t n = co_await read_some(&*s->up, mb, &ec);
    reading_ -= chunk;
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
  H2cResult r = co_await proxy_h2c(st_, &tc_, &opts_, u, s, this, std::move(fields));
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
  s.watch.signal = &s.wake;  // the waits on the client (its body, its window) time out too
  tc_.add(&s.watch);
  struct Unwatch {
    H2Conn* c;
    Watch* w;
    ~Unwatch() {
      ThreadCtx::remove(w);
      c->stream_done();
    }
  } unwatch{this, &s.watch};

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
    if (s.closed || dead_) {
      status = 499;  // reset while it waited for a slot: nothing goes upstream
    } else if (auto idle = take_idle(tc_, u, opts_.idle_timeout)) {
      s.up.emplace(std::move(*idle));
    } else if (auto opened = open_upstream(tc_, u)) {
      s.up.emplace(std::move(opened->first));
      s.watch.a = &*s.up;
      s.watch.kind = Wait::Connect;
      s.watch.fired = false;
      s.watch.deadline = Clock::now() + opts_.connect_timeout;
      co_await s.up->async_connect(opened->second, asio::redirect_error(use_awaitable, ec));
      if (!ec && (s.closed || dead_)) {
        status = 499;  // reset while connecting: the request is not sent
        s.up->close(ec);
        s.up.reset();
      } else if (ec) {
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
      Sent sent = ec ? Sent::UpstreamFailed : co_await send_request(&s, chunked);
      bool reusable = false;
      unsigned got = 0;
      if (sent == Sent::Ok) {
        got = co_await relay_response(&s, &bytes, &reusable);
      }
      if (got >= 100) {
        status = got;
      } else if (sent == Sent::BodyStalled) {
        status = 408;
        respond_error(
            s, status,
            "request body timed out: no DATA for " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::seconds>(opts_.body_timeout).count()) +
                " s");
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

}  // namespace berth::router
