// SPDX-License-Identifier: Apache-2.0
#include "router/stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cstring>

namespace berth::router {

namespace {

constexpr size_t kRecord = 16 * 1024;  // TLS's largest plaintext record

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a connection the client
// has reset, killing berthd. This one is the socket BIO with send(MSG_NOSIGNAL) and recv.
int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(BIO_get_fd(b, nullptr), data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(b);
  }
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(BIO_get_fd(b, nullptr), data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(b);
  }
  return static_cast<int>(n);
}

int bio_puts(BIO* b, const char* s) { return bio_write(b, s, static_cast<int>(std::strlen(s))); }

const BIO_METHOD* socket_method() {
  static BIO_METHOD* m = [] {
    const BIO_METHOD* sock = BIO_s_socket();
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                  "berth socket");
    BIO_meth_set_write(bm, bio_write);
    BIO_meth_set_read(bm, bio_read);
    BIO_meth_set_puts(bm, bio_puts);
    BIO_meth_set_ctrl(bm, BIO_meth_get_ctrl(sock));  // fd bookkeeping, flush, eof
    BIO_meth_set_create(bm, BIO_meth_get_create(sock));
    BIO_meth_set_destroy(bm, BIO_meth_get_destroy(sock));
    return bm;
  }();
  return m;
}

}  // namespace

ClientStream::ClientStream(tcp::socket sock, tls::SslPtr ssl)
    : sock_(std::move(sock)), ssl_(std::move(ssl)) {
  if (ssl_) {
    BIO* bio = BIO_new(socket_method());
    BIO_set_fd(bio, static_cast<int>(sock_.native_handle()), BIO_NOCLOSE);
    SSL_set_bio(ssl_.get(), bio, bio);
    SSL_set_accept_state(ssl_.get());
  }
}

ClientStream::~ClientStream() = default;

std::string_view ClientStream::alpn() const {
  if (!ssl_) {
    return {};
  }
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_.get(), &p, &n);
  return p == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(p), n);
}

beast::error_code ClientStream::ssl_error(int ret, bool& want_read, bool& want_write) {
  want_read = want_write = false;
  int e = SSL_get_error(ssl_.get(), ret);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      want_read = true;
      return {};
    case SSL_ERROR_WANT_WRITE:
      want_write = true;
      return {};
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        want_read = true;  // not expected with a socket BIO; wait rather than fail
        return {};
      }
      return errno != 0 ? beast::error_code(errno, asio::error::get_system_category())
                        : beast::error_code(asio::error::eof);
    default:
      ERR_clear_error();
      return asio::error::connection_aborted;  // a TLS protocol error: the peer is gone to us
  }
}

awaitable<void> ClientStream::handshake(beast::error_code* ec) {
  *ec = {};
  if (!ssl_) {
    co_return;
  }
  while (true) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
      co_return;
    }
    bool rd = false, wr = false;
    *ec = ssl_error(r, rd, wr);
    if (*ec) {
      if (*ec == asio::error::eof) {
        *ec = asio::error::connection_aborted;
      }
      co_return;
    }
    co_await sock_.async_wait(rd ? tcp::socket::wait_read : tcp::socket::wait_write,
                              asio::redirect_error(use_awaitable, *ec));
    if (*ec) {
      co_return;
    }
  }
}

size_t ClientStream::tls_write_now(beast::error_code& ec) {
  ec = {};
  size_t total = 0;
  size_t i = 0, off = 0;  // position in wb_
  while (i < n_) {
    const char* p = static_cast<const char*>(wb_[i].data()) + off;
    size_t len = wb_[i].size() - off;
    if (len < kRecord && i + 1 < n_) {
      // Join short buffers (a chunk-size line, a head, a CRLF) into one record. A retry after
      // a blocked write joins the same bytes again, as OpenSSL requires.
      if (!stage_) {
        stage_ = std::make_unique_for_overwrite<char[]>(kRecord);
      }
      size_t k = 0;
      size_t j = i, o = off;
      while (j < n_ && k < kRecord) {
        size_t take = std::min(kRecord - k, wb_[j].size() - o);
        std::memcpy(stage_.get() + k, static_cast<const char*>(wb_[j].data()) + o, take);
        k += take;
        o += take;
        if (o == wb_[j].size()) {
          ++j;
          o = 0;
        }
      }
      p = stage_.get();
      len = k;
    } else {
      len = std::min(len, kRecord * 4);
    }
    ERR_clear_error();
    size_t w = 0;
    int r = SSL_write_ex(ssl_.get(), p, len, &w);
    if (r != 1) {
      bool rd = false, wr = false;
      ec = ssl_error(r, rd, wr);
      if (!ec && total == 0) {
        ec = asio::error::would_block;
      }
      return total;
    }
    total += w;
    // Advance (i, off) by w.
    while (w > 0 && i < n_) {
      size_t left = wb_[i].size() - off;
      if (w >= left) {
        w -= left;
        ++i;
        off = 0;
      } else {
        off += w;
        w = 0;
      }
    }
  }
  return total;
}

void ClientStream::consume_written(size_t n) {
  size_t i = 0;
  while (i < n_ && n >= wb_[i].size()) {
    n -= wb_[i].size();
    ++i;
  }
  if (i < n_) {
    wb_[i] += n;
  }
  std::copy(wb_.begin() + static_cast<std::ptrdiff_t>(i),
            wb_.begin() + static_cast<std::ptrdiff_t>(n_), wb_.begin());
  n_ -= i;
}

awaitable<size_t> ClientStream::tls_write_all(beast::error_code* ec) {
  size_t total = 0;
  while (n_ > 0) {
    beast::error_code e;
    size_t w = tls_write_now(e);
    total += w;
    consume_written(w);
    if (e == asio::error::would_block) {
      e = {};
    }
    if (e) {
      *ec = e;
      co_return total;
    }
    if (n_ > 0) {
      co_await sock_.async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, e));
      if (e) {
        *ec = e;
        co_return total;
      }
    }
  }
  *ec = {};
  co_return total;
}

awaitable<size_t> ClientStream::read_some(asio::mutable_buffer b, beast::error_code* ec) {
  if (!ssl_) {
    return sock_.async_read_some(b, asio::redirect_error(use_awaitable, *ec));
  }
  return tls_read_some(b, ec);
}

awaitable<size_t> ClientStream::tls_read_some(asio::mutable_buffer b, beast::error_code* ec) {
  *ec = {};
  char* p = static_cast<char*>(b.data());
  size_t got = 0;
  while (got < b.size()) {
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_read_ex(ssl_.get(), p + got, b.size() - got, &n);
    if (r == 1) {
      got += n;
      if (SSL_has_pending(ssl_.get()) == 0) {
        break;  // another read now would only find the socket empty
      }
      continue;
    }
    bool rd = false, wr = false;
    beast::error_code e = ssl_error(r, rd, wr);
    if (got > 0) {
      break;  // hand over what we have; an error repeats on the next call
    }
    if (e) {
      *ec = e;
      co_return 0;
    }
    co_await sock_.async_wait(rd ? tcp::socket::wait_read : tcp::socket::wait_write,
                              asio::redirect_error(use_awaitable, e));
    if (e) {
      *ec = e;
      co_return 0;
    }
  }
  co_return got;
}

void ClientStream::close_notify() {
  if (ssl_ && SSL_is_init_finished(ssl_.get()) == 1) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());  // sends close_notify; not waited for
    ERR_clear_error();
  }
}

void ClientStream::shutdown_send(beast::error_code& ec) {
  close_notify();
  sock_.shutdown(tcp::socket::shutdown_send, ec);
}

void ClientStream::close(beast::error_code& ec) { sock_.close(ec); }

}  // namespace berth::router
