// SPDX-License-Identifier: Apache-2.0
// Private to the router. ClientStream: the client side of a connection, plain TCP or TLS, with
// the three operations the proxy's loops use: a non-blocking write attempt (write_some), an
// awaited read (read_some) and an awaited whole write (write_all). TLS runs OpenSSL directly
// on the non-blocking socket (a socket BIO, as nginx does): no second buffer, and a write
// attempt that the socket cannot take is finished later by write_all from the same offset,
// which is what OpenSSL asks of a retried SSL_write. Waiting is the socket's own
// async_wait, so the router's timeout sweep cancels a TLS wait as it cancels a plain read.
//
// One coroutine reads and at most one writes at a time (the Upgrade tunnel and the HTTP/2
// session do both, interleaved on one thread, which OpenSSL allows).
#pragma once

#include <openssl/ssl.h>

#include <array>

#include "common/asio.h"
#include "router/parser.h"
#include "tls/tls.h"

namespace berth::router {

using tcp = asio::ip::tcp;

class ClientStream {
 public:
  explicit ClientStream(tcp::socket sock, tls::SslPtr ssl = nullptr);
  ClientStream(ClientStream&&) = default;
  ~ClientStream();

  tcp::socket& socket() { return sock_; }
  bool tls() const { return ssl_ != nullptr; }
  SSL* ssl() { return ssl_.get(); }
  /// The ALPN protocol chosen in the handshake ("h2", "http/1.1") or empty.
  std::string_view alpn() const;

  /// The TLS handshake (a plain stream: nothing to do). ec: the failure.
  awaitable<void> handshake(beast::error_code* ec);

  /// Writes what the socket takes now without waiting; would_block when nothing went.
  template <class Buffers>
  size_t write_some(const Buffers& bufs, beast::error_code& ec) {
    if (!ssl_) {
      return sock_.write_some(bufs, ec);
    }
    n_ = 0;
    for (auto b : beast::buffers_range_ref(bufs)) {
      if (b.size() > 0 && n_ < wb_.size()) {
        wb_[n_++] = b;
      }
    }
    return tls_write_now(ec);
  }

  /// Reads at least one byte (eof at the end of the stream).
  awaitable<size_t> read_some(asio::mutable_buffer b, beast::error_code* ec);

  /// Writes all of bufs (at most kMaxBuffers of them).
  template <class Buffers>
  awaitable<size_t> write_all(const Buffers& bufs, beast::error_code* ec) {
    if (!ssl_) {
      return asio::async_write(sock_, bufs, asio::redirect_error(use_awaitable, *ec));
    }
    n_ = 0;
    for (auto b : beast::buffers_range_ref(bufs)) {
      if (b.size() > 0 && n_ < wb_.size()) {
        wb_[n_++] = b;
      }
    }
    return tls_write_all(ec);
  }

  /// TLS: sends a close_notify, without waiting for the peer's; plain: nothing.
  void close_notify();
  /// Ends our sending side (close_notify(), then a half close: the peer may still send).
  void shutdown_send(beast::error_code& ec);
  void close(beast::error_code& ec);

  static constexpr size_t kMaxBuffers = 2 + 3 * kMaxViews + 6;

 private:
  // Writes wb_[0, n_) through SSL_write until the socket would block; returns bytes taken
  // (would_block when none). Buffers shorter than a record are joined into one record.
  size_t tls_write_now(beast::error_code& ec);
  void consume_written(size_t n);
  awaitable<size_t> tls_write_all(beast::error_code* ec);
  awaitable<size_t> tls_read_some(asio::mutable_buffer b, beast::error_code* ec);
  // The SSL_get_error of a failed call as an error_code; want_read/want_write set for waits.
  beast::error_code ssl_error(int ret, bool& want_read, bool& want_write);

  tcp::socket sock_;
  tls::SslPtr ssl_;
  std::array<asio::const_buffer, kMaxBuffers> wb_;
  size_t n_ = 0;
  std::unique_ptr<char[]> stage_;  // one record's worth, when buffers must be joined
};

// The same operations on an upstream's plain socket, so the body pumps take either side.
inline awaitable<size_t> read_some(tcp::socket* s, asio::mutable_buffer b, beast::error_code* ec) {
  return s->async_read_some(b, asio::redirect_error(use_awaitable, *ec));
}
inline awaitable<size_t> read_some(ClientStream* s, asio::mutable_buffer b, beast::error_code* ec) {
  return s->read_some(b, ec);
}
template <class Buffers>
awaitable<size_t> write_all(tcp::socket* s, const Buffers& bufs, beast::error_code* ec) {
  return asio::async_write(*s, bufs, asio::redirect_error(use_awaitable, *ec));
}
template <class Buffers>
awaitable<size_t> write_all(ClientStream* s, const Buffers& bufs, beast::error_code* ec) {
  return s->write_all(bufs, ec);
}

}  // namespace berth::router
