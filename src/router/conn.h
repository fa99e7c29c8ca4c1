// SPDX-License-Identifier: Apache-2.0
// Private to the router. One client connection: the request loop, upstream selection, the
// body pumps, the Upgrade tunnel, error replies, access log and metrics. Its methods live in
// heads.cc (request/response heads, error replies), upstream.cc (pooled and new upstream
// connections) and conn.cc (the request loop, body pumps, tunnel).
#pragma once

#include "router/parser.h"
#include "router/state.h"
#include "router/stream.h"

namespace berth::router {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxHost = 255;
// An idle pooled connection older than this is probed (MSG_PEEK) before reuse: the upstream
// may have closed it meanwhile.
constexpr auto kProbeAfter = std::chrono::seconds(1);

// ---------------------------------------------------------------------------------------------
// One client connection.

enum class Pump { Ok, SrcFailed, DstFailed, TimedOut, Malformed, Pending };

// What a non-blocking pump step left to do.
enum class Step { Done, Read, Write, Again, Malformed, DstFailed };

enum class Head { Ok, Pending, Malformed };

enum class Framing { None, Length, Chunked, Close };

class Conn {
 public:
  // The stream's socket is non-blocking with TCP_NODELAY, its TLS handshake done (session()).
  Conn(std::shared_ptr<State> s, ThreadCtx& t, ClientStream stream, std::string peer)
      : st_(std::move(s)),
        tc_(t),
        opts_(st_->opts),
        client_(std::move(stream)),
        tls_(client_.tls()),
        peer_(std::move(peer)) {
    watch_.a = &client_.socket();
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
  template <class P, class Dst>
  Step pump_step(beast::flat_buffer* buf, P* p, Dst* dst, bool chunked_out, uint64_t* moved);
  template <class P, class Src, class Dst>
  awaitable<Pump> pump(Src* src, beast::flat_buffer* buf, P* p, Dst* dst, bool chunked_out,
                       uint64_t* moved, Step s);
  awaitable<bool> proxy(bool head_request, bool has_body, bool retryable, bool client_keep_alive,
                        bool& tunneled);
  awaitable<void> tunnel();
  awaitable<void> write_client_head();

  void build_upstream_head();
  Framing build_client_head(bool head_request, bool upgrade, bool client_keep_alive);
  void make_error(unsigned status, std::string_view body);
  // A text/plain reply; extra: more header lines, each ending in CRLF.
  void make_reply(unsigned status, std::string_view body, std::string_view extra, bool newline);
  // A 308 to the same host and target over HTTPS. False: no TLS port to send the client to.
  bool make_https_redirect(std::string_view host);
  // The ACME HTTP-01 answer when the target is a published challenge token.
  bool make_challenge_reply();
  void release_upstream(bool reusable);
  void finish(Clock::time_point started);

  std::shared_ptr<State> st_;
  ThreadCtx& tc_;
  const RouterOptions& opts_;
  ClientStream client_;
  bool tls_;
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
  bool hsts_ = false;
  char rid_[32] = {};
  size_t rid_len_ = 0;
  std::shared_ptr<Upstream> upstream_;
  ServiceMetrics* metrics_ = nullptr;
  unsigned status_ = 0;
  uint64_t bytes_ = 0;
  bool close_after_ = false;
  std::string log_method_, log_host_, log_target_;
};

}  // namespace berth::router
