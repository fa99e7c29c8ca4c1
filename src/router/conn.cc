// SPDX-License-Identifier: Apache-2.0
// Conn: the request loop (serve_one, proxy, run), the body pumps, the Upgrade tunnel, and the
// access log and metrics of each request.
#include "router/conn.h"

namespace berth::router {

namespace {

// After a 101: bytes flow both ways until either side closes (or nothing moves for
// idle_timeout). Both directions are coroutines of their own; this one waits for both.
struct Tunnel {
  explicit Tunnel(asio::io_context& io) : done(io) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  ClientStream* client = nullptr;
  tcp::socket* up = nullptr;
  Watch* watch = nullptr;
  std::chrono::milliseconds idle{0};
  int alive = 2;
  asio::steady_timer done;
};

template <class Src, class Dst>
awaitable<void> splice(std::shared_ptr<Tunnel> t, Src* src, Dst* dst) {
  auto buf = std::make_unique_for_overwrite<char[]>(kReadChunk);
  while (true) {
    beast::error_code ec;
    auto mb = asio::buffer(buf.get(), kReadChunk);
    size_t n = co_await read_some(src, mb, &ec);
    if (ec) {
      break;
    }
    t->watch->deadline = Clock::now() + t->idle;
    auto cb = asio::buffer(buf.get(), n);
    co_await write_all(dst, cb, &ec);
    if (ec) {
      break;
    }
    t->watch->deadline = Clock::now() + t->idle;
  }
  beast::error_code ec;
  t->client->socket().shutdown(tcp::socket::shutdown_both, ec);
  t->up->shutdown(tcp::socket::shutdown_both, ec);
  t->client->socket().cancel(ec);
  t->up->cancel(ec);
  if (--t->alive == 0) {
    t->done.cancel();
  }
}

}  // namespace

// One step of moving a message body from a buffer (parsed by p) to dst, without waiting:
// parses what buf holds and writes it (preceded by *ps_.head while ps_.head_pending,
// re-framed as chunked when chunked_out) with one direct non-blocking writev. Bytes are
// written straight out of buf (the parser only yields views), so memory stays bounded by the
// 64 KiB read size no matter how long the body is. Write: the socket took only part, the
// rest (ps_) goes out asynchronously.
template <class P, class Dst>
Step Conn::pump_step(beast::flat_buffer* buf, P* p, Dst* dst, bool chunked_out, uint64_t* moved) {
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
template <class P, class Src, class Dst>
awaitable<Pump> Conn::pump(Src* src, beast::flat_buffer* buf, P* p, Dst* dst, bool chunked_out,
                           uint64_t* moved, Step s) {
  while (true) {
    beast::error_code ec;
    if (s == Step::Write) {
      BufSpan span{ps_.bufs.data(), ps_.nb};
      beast::buffers_suffix<BufSpan> rest(span);
      rest.consume(ps_.sent);
      arm(Wait::Idle, opts_.idle_timeout);
      co_await write_all(dst, rest, &ec);
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
      arm(Wait::Idle, std::is_same_v<Src, ClientStream> ? opts_.body_timeout : opts_.idle_timeout);
      auto mb = buf->prepare(kReadChunk);
      size_t n = co_await read_some(src, mb, &ec);
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

awaitable<void> Conn::tunnel() {
  beast::error_code ec;
  // Client bytes that arrived behind the request head belong to the new protocol.
  if (cbuf_.size() > 0) {
    arm(Wait::Idle, opts_.idle_timeout);
    auto pending = cbuf_.data();
    co_await write_all(&*up_, pending, &ec);
    cbuf_.consume(cbuf_.size());
    if (ec) {
      co_return;
    }
  }
  auto t = std::make_shared<Tunnel>(tc_.ioc);
  t->client = &client_;
  t->up = &*up_;
  t->watch = &watch_;
  t->idle = opts_.idle_timeout;
  arm(Wait::Idle, opts_.idle_timeout);
  auto ex = client_.socket().get_executor();
  spawn_logged(ex, splice(t, &client_, &*up_), "router.tunnel");
  spawn_logged(ex, splice(t, &*up_, &client_), "router.tunnel");
  co_await t->done.async_wait(asio::redirect_error(use_awaitable, ec));
}

void Conn::finish(Clock::time_point started) {
  auto elapsed = Clock::now() - started;
  record_request(metrics_, tc_.index, status_, elapsed);
  double secs = std::chrono::duration<double>(elapsed).count();
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
    size_t n = co_await client_.read_some(mb, &ec);
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
  hsts_ = false;
  if (!tls_ && make_challenge_reply()) {
    // ACME HTTP-01: answered for any Host, before routing and never redirected.
    if (has_body) {
      close_after_ = true;
    }
  } else if (host_raw_.empty() && rq.version >= 11) {
    close_after_ = true;
    make_error(400, "missing Host header");
  } else {
    const Entry* found = tc_.routes()->find(host);
    if (found == nullptr) {
      if (has_body) {
        close_after_ = true;
      }
      make_error(404, "no service at host " + std::string(host.empty() ? host_raw_ : host));
    } else {
      entry = found;
      metrics_ = entry->metrics;
      const Route& route = *entry->route;
      if (!tls_ && route.https_redirect && !detail::is_acme_challenge(rq.target) &&
          make_https_redirect(host)) {
        if (has_body) {
          close_after_ = true;
        }
        entry = nullptr;
      } else if (route.upstreams.empty()) {
        if (has_body) {
          close_after_ = true;
        }
        make_error(503, route.unavailable_reason.empty()
                            ? "service " + route.service + " has no healthy instance"
                            : route.unavailable_reason);
        entry = nullptr;
      } else {
        hsts_ = tls_ && route.hsts;
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
    co_await client_.write_all(cb, &ec);
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
    co_await client_.write_all(parts, &ec);
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
  // A client that said it closes, whose request was read to its end, sends nothing more:
  // close at once, as nginx does (the wait below cost a shutdown, a read, a re-arm and a
  // wake-up per connection).
  if (cbuf_.size() == 0 && req_ && req_->is_done() && !req_->keep_alive()) {
    client_.close_notify();
    client_.close(ec);
    co_return;
  }
  client_.shutdown_send(ec);
  // Read what the client still sends (an unread body) for a moment, so closing does not
  // reset the connection before the client has read our answer.
  if (!ec && cbuf_.size() == 0) {
    arm(Wait::Idle, std::min(opts_.idle_timeout, std::chrono::milliseconds(1000)));
    size_t drained = 0;
    while (drained < (1u << 20)) {
      auto mb = cbuf_.prepare(16 * 1024);
      size_t n = co_await client_.read_some(mb, &ec);
      if (ec) {
        break;
      }
      drained += n;
    }
  }
  client_.close(ec);
}

}  // namespace berth::router
