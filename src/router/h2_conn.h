// SPDX-License-Identifier: Apache-2.0
// Private to the router: H2Conn, one client's HTTP/2 connection. Its code is in h2.cc (the
// nghttp2 session: callbacks, the reader and writer loops, answers made here) and
// h2_proxy.cc (each stream proxied to an upstream: the request up, the response down, with
// flow control both ways). See h2.cc for the design.
#pragma once

#include <nghttp2/nghttp2.h>

#include "common/ascii.h"
#include "router/conn.h"
#include "router/h2.h"
#include "router/h2_stream.h"

namespace berth::router {

// The limits of one client connection (docs/router.md, "HTTP/2 limits").
inline constexpr uint32_t kMaxStreams = 128;           // SETTINGS_MAX_CONCURRENT_STREAMS
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;   // one request's header list
inline constexpr size_t kMaxRefusedHeads = 8;          // header lists over it; then GOAWAY
inline constexpr size_t kMaxPendingOut = 256 * 1024;   // response bytes one stream holds
inline constexpr size_t kMaxConnPendingOut = 1 << 20;  // ... and all streams together
inline constexpr size_t kSmallChunk = 4096;            // a read once those are nearly spent
inline constexpr int32_t kWindow = 1 << 20;            // the connection's receive window

// How a stream's request went up (send_request).
enum class Sent { Ok, UpstreamFailed, BodyStalled };

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
    beast::error_code ec;
    auto a = asio::ip::make_address(peer_, ec);
    addr_key_ = ec ? peer_ : net::ConnectionGate::address_key(a);
  }
  ~H2Conn() {
    ThreadCtx::remove(&watch_);
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  awaitable<void> run();

 private:
  enum class Queue { None, Thread, Address };  // where a connection waits for a slot

  bool init();
  awaitable<void> writer(std::shared_ptr<H2Conn> self);
  awaitable<void> proxy(std::shared_ptr<H2Conn> self, std::shared_ptr<H2Stream> s);
  // Coroutines: pointers, not references (STYLE 6); the caller awaits them at once.
  awaitable<Sent> send_request(H2Stream* s, bool chunked);
  awaitable<unsigned> relay_response(H2Stream* s, uint64_t* bytes, bool* reusable);
  awaitable<unsigned> proxy_h2c_stream(H2Stream* s, Upstream* u, ServiceMetrics* metrics,
                                       std::string_view authority, uint64_t* bytes);
  void respond_error(H2Stream& s, unsigned status, const std::string& text);
  void submit_head(H2Stream& s, unsigned status, const H2Fields& fields, bool body) override;
  bool dead() const override { return dead_; }
  void resume(H2Stream& s) override;
  // n request bytes of s are done with (written upstream, or never to be): the client's
  // window opens again, the connection's alone once s is closed.
  void consume(H2Stream& s, size_t n) override;
  void reset(H2Stream& s, uint32_t error_code) override;
  void flush() { writer_wake_.notify(); }
  // Starts the proxies of the streams whose requests arrived, at most kMaxStreams running
  // (a stream the client reset stays counted until its proxy has let go of its upstream), at
  // most h2_thread_cap() on this thread and h2_address_cap() from this client's address; past
  // those the connection waits in the thread's queue or its address's.
  void start_streams();
  // A proxy ended: its slots go to this connection's next stream or another's.
  void stream_done();
  // Lets the first live connection in tc_.h2_waiting try again.
  void wake_waiting() { wake_first(tc_.h2_waiting, Queue::Thread); }
  // Pops q until a connection that still waits in it as `which` (an entry goes stale when its
  // connection moves on), and has that one try again.
  static void wake_first(std::deque<std::weak_ptr<H2Conn>>& q, Queue which);
  // Streams one I/O thread proxies at once: its share of the client connections
  // router.max_connections still allows. The descriptor plan counts each client connection
  // twice (itself and one to an instance); streams in that room keep every open descriptor
  // in the plan however the clients mix HTTP/1.1 and HTTP/2. Never fewer than kMaxStreams.
  size_t h2_thread_cap() const;
  // An address's share of that, as router.max_connections_per_address is of
  // router.max_connections (no cap when that is 0), and never fewer than kMaxStreams.
  size_t h2_address_cap(size_t thread_cap) const;
  // Response bytes all streams hold for the client.
  size_t pending_out() const;
  // The streams waiting for pending_out() to fall, once it has.
  void wake_room_waiters();
  // The connection's own deadline: with no stream open, keepalive_timeout from when the last
  // one closed (frames such as PINGs do not extend it); else idle_timeout from now.
  void arm_client() {
    watch_.between_requests = streams_.empty();
    watch_.fired = false;
    watch_.deadline = streams_.empty() ? idle_since_ + opts_.keepalive_timeout
                                       : Clock::now() + opts_.idle_timeout;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* u);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* u);
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
  size_t running_ = 0;                 // proxy coroutines not yet done
  std::vector<int32_t> room_waiters_;  // streams waiting for pending_out() to fall
  size_t reading_ = 0;                 // body bytes streams are reading from instances now
  Queue queued_ = Queue::None;         // which queue this connection waits in for a slot
  bool woken_ = false;                 // taken from a queue: start_streams passes an unused slot
  std::string addr_key_;               // the client's address, as the connection gate counts it
  size_t refused_heads_ = 0;           // streams reset for a header list over kMaxHeaderBytes
  Clock::time_point idle_since_ = Clock::now();
  Watch watch_;
  Signal writer_wake_;
  asio::steady_timer writer_done_;
  bool dead_ = false;
  bool writer_running_ = false;
  bool writer_idle_ = false;
};

}  // namespace berth::router
