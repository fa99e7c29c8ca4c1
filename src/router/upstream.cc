// SPDX-License-Identifier: Apache-2.0
// Conn: taking a pooled upstream connection or connecting a new one, giving it back, and
// reading the upstream's response head.
#include "router/conn.h"

namespace berth::router {

std::optional<tcp::socket> take_idle(ThreadCtx& tc, Upstream& u, std::chrono::milliseconds idle) {
  auto* slot = tc.slot(*u.pool, false);
  if (slot == nullptr) {
    return std::nullopt;
  }
  auto now = Clock::now();
  while (!slot->idle.empty()) {
    IdleConn c = std::move(slot->idle.back());
    slot->idle.pop_back();
    u.pool->idle_total.fetch_sub(1, std::memory_order_relaxed);
    auto age = now - c.since;
    if (age > idle) {
      continue;
    }
    if (age > kProbeAfter) {
      char b;
      ssize_t r = ::recv(c.sock.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        continue;  // closed by the upstream, or unsolicited bytes
      }
    }
    return std::move(c.sock);
  }
  return std::nullopt;
}

void give_back(ThreadCtx& tc, Upstream& u, tcp::socket s, size_t max_idle) {
  if (!tc.st.stopping.load(std::memory_order_relaxed) &&
      u.pool->idle_total.load(std::memory_order_relaxed) < max_idle) {
    auto* slot = tc.slot(*u.pool, true);
    if (slot != nullptr) {
      if (slot->idle.capacity() == 0) {
        tc.pools.push_back(u.pool);
      }
      slot->idle.push_back(IdleConn{std::move(s), Clock::now()});
      u.pool->idle_total.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  beast::error_code ec;
  s.close(ec);
}

Result<std::pair<tcp::socket, tcp::endpoint>> open_upstream(ThreadCtx& tc, Upstream& u) {
  beast::error_code ec;
  tcp::socket s(tc.ioc);
  if (u.netns) {
    auto fd = u.netns->tcp_socket();
    if (!fd) {
      return Error(Errc::Unavailable, "upstream " + u.id + ": " + fd.error().message());
    }
    s.assign(tcp::v4(), *fd, ec);
  } else {
    s.open(tcp::v4(), ec);
  }
  auto addr = asio::ip::make_address(u.host, ec);
  if (ec) {
    return Error(Errc::Unavailable, "upstream " + u.id + ": bad address " + u.host);
  }
  return std::make_pair(std::move(s), tcp::endpoint(addr, u.port));
}

// Takes an idle kept-alive connection to upstream_ from this thread's pool slot, without
// waiting. False: none usable.
bool Conn::take_pooled() {
  up_reused_ = false;
  auto s = take_idle(tc_, *upstream_, opts_.idle_timeout);
  if (!s) {
    return false;
  }
  up_.emplace(std::move(*s));
  up_reused_ = true;
  set_upstream_socket(&*up_);
  return true;
}

// Opens a new connection to upstream_. False: failed (status_ and the reply are set).
awaitable<bool> Conn::connect_upstream() {
  Upstream& u = *upstream_;
  up_reused_ = false;
  beast::error_code ec;
  auto opened = open_upstream(tc_, u);
  if (!opened) {
    u.failures_total.fetch_add(1, std::memory_order_relaxed);
    make_error(502, opened.error().message());
    co_return false;
  }
  tcp::endpoint ep = opened->second;
  up_.emplace(std::move(opened->first));
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
  if (reusable && ubuf_.size() == 0) {
    give_back(tc_, *upstream_, std::move(*up_), opts_.max_idle_per_upstream);
    up_.reset();
    set_upstream_socket(nullptr);
    return;
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
    put_response_head(*res_, p, end, res_bare_, res_crlf_, ec);
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

}  // namespace berth::router
