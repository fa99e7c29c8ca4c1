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
// the rate of stream resets and CONTINUATION frames, and answers an empty-DATA flood with
// GOAWAY; we cap concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS, and the proxies still
// running for streams the client reset: start_streams), each stream's header bytes (and end
// the connection after kMaxRefusedHeads such streams), the response bytes held per stream and
// per connection, and how long a stream waits on the client (body_timeout for its request
// body, idle_timeout for it to take the response).
#include "router/h2_conn.h"

namespace berth::router {

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
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &H2Conn::on_frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // we acknowledge what went upstream
  nghttp2_option_set_max_outbound_ack(opt, 1000);    // SETTINGS/PING flood
  nghttp2_option_set_max_settings(opt, 64);
  nghttp2_option_set_max_send_header_block_length(opt, kMaxHeaderBytes);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);  // rapid reset
  nghttp2_option_set_max_continuations(opt, 8);                // CONTINUATION flood
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
    // Resets this stream only; a client that keeps at it (an HPACK bomb: tiny frames that
    // decode to megabytes) loses the connection.
    if (++self->refused_heads_ == kMaxRefusedHeads) {
      nghttp2_session_terminate_session(self->session_, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
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

int H2Conn::on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<H2Conn*>(u);
  H2Stream* s = self->stream(f->hd.stream_id);
  if (s != nullptr && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !s->end_in) {
    // The response is complete before the request (a 408, a 413, an early answer): ask the
    // client to stop sending, without error (RFC 9113 section 8.1), so the stream closes.
    nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
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
  if (!s.in.empty()) {
    // Request bytes nobody will write upstream (an early answer, a reset): the connection's
    // window must still get them back, or it shrinks for good.
    nghttp2_session_consume_connection(self->session_, s.in.size());
    s.in.clear();
  }
  if (s.up) {
    beast::error_code ec;
    s.up->cancel(ec);
  }
  s.wake.notify();
  bool held = s.out.size() > s.out_off;
  self->streams_.erase(it);
  if (held) {
    self->wake_room_waiters();  // its bytes no longer count against the connection
  }
  if (self->streams_.empty()) {
    self->idle_since_ = Clock::now();
    self->arm_client();  // keepalive_timeout from now, for the read already waiting too
  }
  return 0;
}

size_t H2Conn::h2_thread_cap() const {
  size_t total = st_->gate.limits().max_total;
  if (total == 0) {
    return SIZE_MAX;
  }
  size_t free = total - std::min(total, st_->gate.open());
  return std::max<size_t>(kMaxStreams, free / st_->threads.size());
}

size_t H2Conn::h2_address_cap(size_t thread_cap) const {
  const auto& limits = st_->gate.limits();
  if (limits.max_per_address == 0 || limits.max_total == 0) {
    return SIZE_MAX;
  }
  size_t shares = std::max<size_t>(1, limits.max_total / limits.max_per_address);
  return std::max<size_t>(kMaxStreams, thread_cap / shares);
}

void H2Conn::start_streams() {
  // A stream reset before it started costs nothing upstream.
  std::erase_if(to_start_, [&](const auto& s) { return s->closed || dead_; });
  // After most reads nothing is new: no caps to look at (the gate's count takes a lock), unless
  // this connection was woken with a slot it may now have to pass on.
  if (to_start_.empty() && !std::exchange(woken_, false)) {
    return;
  }
  woken_ = false;
  size_t cap = h2_thread_cap();
  size_t addr_cap = h2_address_cap(cap);
  // Looked up afresh each time: a proxy may run (and end) inside spawn, which can erase it.
  auto address_streams = [&]() -> size_t {
    auto it = tc_.h2_addresses.find(addr_key_);
    return it == tc_.h2_addresses.end() ? 0 : it->second.streams;
  };
  size_t n = 0;
  while (n < to_start_.size() && running_ < kMaxStreams && tc_.h2_streams < cap &&
         address_streams() < addr_cap) {
    ++running_;
    ++tc_.h2_streams;
    ++tc_.h2_addresses[addr_key_].streams;
    auto s = to_start_[n++];
    spawn_logged(client_.socket().get_executor(), proxy(shared_from_this(), std::move(s)),
                 "router.h2.stream");
  }
  to_start_.erase(to_start_.begin(), to_start_.begin() + static_cast<std::ptrdiff_t>(n));
  bool more = !to_start_.empty() && running_ < kMaxStreams;
  bool address_full = address_streams() >= addr_cap;
  if (more && address_full) {
    if (queued_ != Queue::Address) {  // this address's share is taken: its next stream to end
      queued_ = Queue::Address;
      tc_.h2_addresses[addr_key_].waiting.push_back(weak_from_this());
    }
  } else if (more) {
    if (queued_ != Queue::Thread) {  // the thread's is: the next stream of any address to end
      queued_ = Queue::Thread;
      tc_.h2_waiting.push_back(weak_from_this());
    }
    return;
  }
  // Slots this connection leaves unused go to the next in line: of its address, of the thread.
  if (auto it = tc_.h2_addresses.find(addr_key_); it != tc_.h2_addresses.end()) {
    if (!address_full) {
      wake_first(it->second.waiting, Queue::Address);
    }
    if (it->second.streams == 0 && it->second.waiting.empty()) {
      tc_.h2_addresses.erase(it);
    }
  }
  if (tc_.h2_streams < cap) {
    wake_waiting();
  }
}

void H2Conn::stream_done() {
  --running_;
  --tc_.h2_streams;
  if (auto it = tc_.h2_addresses.find(addr_key_); it != tc_.h2_addresses.end()) {
    auto& mine = it->second;
    --mine.streams;
    // The next connection of this address waiting for its share; all of them once the
    // address has no stream left (so that none is left in a queue nobody pops).
    do {
      wake_first(mine.waiting, Queue::Address);
    } while (mine.streams == 0 && !mine.waiting.empty());
    if (mine.streams == 0 && mine.waiting.empty()) {
      tc_.h2_addresses.erase(it);
    }
  }
  if (!to_start_.empty()) {
    asio::post(client_.socket().get_executor(), [c = shared_from_this()] { c->start_streams(); });
  }
  wake_waiting();
}

void H2Conn::wake_first(std::deque<std::weak_ptr<H2Conn>>& q, Queue which) {
  while (!q.empty()) {
    auto c = q.front().lock();
    q.pop_front();
    if (c && !c->dead_ && c->queued_ == which) {
      c->queued_ = Queue::None;
      c->woken_ = true;
      asio::post(c->client_.socket().get_executor(), [c] { c->start_streams(); });
      return;
    }
  }
}

void H2Conn::wake_room_waiters() {
  if (room_waiters_.empty() || pending_out() >= kMaxConnPendingOut) {
    return;
  }
  for (int32_t w : room_waiters_) {
    if (H2Stream* s = stream(w)) {
      s->wake.notify();
    }
  }
  room_waiters_.clear();
}

size_t H2Conn::pending_out() const {
  size_t n = 0;
  for (const auto& [id, s] : streams_) {
    n += s->out.size() - s->out_off;
  }
  return n;
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
  if (n > 0 && s->wants_room) {
    s->watch.deadline =
        Clock::now() + self->opts_.idle_timeout;  // a slow reader, not a stalled one
  }
  if (s->out_off == s->out.size()) {
    if (s->out.capacity() > kReadChunk) {
      std::string().swap(s->out);  // a stream between bursts keeps no big buffer
    } else {
      s->out.clear();
    }
    s->out_off = 0;
    s->wake.notify();  // room for more of the upstream's body
    s->room.notify();
  }
  if (n > 0) {
    self->wake_room_waiters();
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
  if (dead_ || n == 0) {
    return;
  }
  if (s.closed) {
    nghttp2_session_consume_connection(session_, n);  // the stream is gone, not its bytes
  } else {
    nghttp2_session_consume(session_, s.id, n);
  }
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
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kReadChunk);
  unsigned reads = 0;
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
    start_streams();
    flush();
    if (++reads % 16 == 0) {
      // A TLS read that finds its bytes does not pass through the event loop (OpenSSL reads
      // the socket itself), so a client sending as fast as it can would keep the thread: every
      // 16 reads the thread's other connections and its accept loop go first.
      co_await asio::post(ex, use_awaitable);
    }
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

awaitable<void> serve_h2(std::shared_ptr<State> st, ThreadCtx* tc, ClientStream stream,
                         std::string peer) {
  auto c = std::make_shared<H2Conn>(std::move(st), *tc, std::move(stream), std::move(peer));
  co_await c->run();
}

}  // namespace berth::router
