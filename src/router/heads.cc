// SPDX-License-Identifier: Apache-2.0
// Conn: checking the client's request head, rewriting the heads sent upstream and back to
// the client, and error replies.
#include "common/http1.h"
#include "router/conn.h"

namespace berth::router {

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
    if (ec == bhttp::error::header_limit) {
      close_after_ = true;
      make_error(431,
                 "request header too large: more than " + std::to_string(kMaxFields) + " fields");
      return Head::Malformed;
    }
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
  if (!http1::plausible_head_bytes(std::string_view(
          p + std::min(scanned, data.size()), data.size() - std::min(scanned, data.size())))) {
    close_after_ = true;
    make_error(400, "malformed request: not an HTTP/1.1 request head");
    return Head::Malformed;
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
  h.append(tls_ ? "X-Forwarded-Proto: https\r\n"sv : "X-Forwarded-Proto: http\r\n"sv);
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
    if (hsts_ && f.f == bhttp::field::strict_transport_security) {
      continue;  // the route's own policy, added below
    }
    if (conn_fields && detail::token_list_contains(connection, name)) {
      continue;
    }
    h.field(name, f.v());
  }
  if (hsts_) {
    h.append("Strict-Transport-Security: max-age="sv)
        .number(static_cast<uint64_t>(opts_.hsts_max_age.count()))
        .append("\r\n"sv);
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
  make_reply(status, body, {}, true);
}

void Conn::make_reply(unsigned status, std::string_view body, std::string_view extra,
                      bool newline) {
  status_ = status;
  size_t len = body.size() + (newline ? 1 : 0);
  bytes_ = len;
  bool head = req_ && req_->is_header_done() && req_->method == bhttp::verb::head;
  auto& h = chead_;
  h.clear();
  char line[96];
  int n = std::snprintf(
      line, sizeof line, "HTTP/1.1 %03u %s\r\nContent-Type: text/plain; charset=utf-8\r\n", status,
      std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))).c_str());
  h.append(line, static_cast<size_t>(n));
  n = std::snprintf(line, sizeof line, "Content-Length: %zu\r\n", len);
  h.append(line, static_cast<size_t>(n));
  h.append(extra);
  if (close_after_ || (req_ && req_->is_header_done() && !req_->keep_alive())) {
    close_after_ = true;
    h.append("Connection: close\r\n"sv);
  }
  h.append("\r\n"sv);
  if (!head) {
    h.append(body);
    if (newline) {
      h.append("\n"sv);
    }
  } else {
    bytes_ = 0;
  }
}

bool Conn::make_https_redirect(std::string_view host) {
  uint16_t port = opts_.https_port != 0 ? opts_.https_port
                                        : st_->first_tls_port.load(std::memory_order_relaxed);
  if (port == 0 || host.empty()) {
    return false;
  }
  std::string target(req_->target);
  if (target.empty() || target[0] != '/') {
    target = "/";  // absolute-form or '*': send the client to the root
  }
  std::string loc = "https://";
  loc.append(host);
  if (port != 443) {
    loc += ":" + std::to_string(port);
  }
  loc += target;
  std::string extra = "Location: " + loc + "\r\n";
  make_reply(308, "moved to " + loc, extra, true);
  return true;
}

bool Conn::make_challenge_reply() {
  std::string_view target = req_->target;
  if (!detail::is_acme_challenge(target)) {
    return false;
  }
  auto m = st_->challenges.load();
  if (!m) {
    return false;
  }
  std::string_view token = target.substr(detail::kAcmeChallengePrefix.size());
  token = token.substr(0, token.find('?'));
  auto it = m->find(std::string(token));
  if (it == m->end()) {
    return false;
  }
  make_reply(200, it->second, {}, false);
  return true;
}

awaitable<void> Conn::write_client_head() {
  arm(Wait::Idle, opts_.idle_timeout);
  beast::error_code ec;
  co_await client_.write_all(asio::buffer(chead_), &ec);
  if (ec) {
    close_after_ = true;
  }
}

}  // namespace berth::router
