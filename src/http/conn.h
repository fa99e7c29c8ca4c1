// SPDX-License-Identifier: Apache-2.0
// Private to src/http: Conn, the Exchange a handler sees for one request on one connection
// (plain TCP or TLS): the parsed head (method, path, query), reading the body (whole, in
// pieces, or sized), and writing the response (whole, a head then a streamed or chunked body,
// a file with sendfile). server.cc accepts connections and runs each one's requests through it.
#pragma once

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "common/async.h"
#include "common/fs.h"
#include "common/http1.h"
#include "common/url.h"
#include "http/http.h"

namespace berth::http::detail {

using tcp = asio::ip::tcp;

// Unique per process: a random prefix per thread and a counter (no syscall per request).
inline std::string next_request_id() {
  thread_local std::string prefix = fs::random_hex(4);
  thread_local uint64_t counter = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08llx", prefix.c_str(),
                static_cast<unsigned long long>(++counter));
  return buf;
}

template <class Stream>
class Conn final : public Exchange {
 public:
  Conn(Stream& stream, beast::flat_buffer& buffer,
       bhttp::request_parser<bhttp::buffer_body>& parser, const ServerOptions& opts)
      : stream_(stream), buffer_(buffer), parser_(parser), opts_(opts) {
    auto& req = parser_.get();
    method_string_ = std::string(req.method_string());
    std::string_view target = req.target();
    auto q = target.find('?');
    auto decoded = url::decode(target.substr(0, q), false);
    path_ = decoded ? *decoded : std::string(target.substr(0, q));
    bad_path_ = !decoded;
    if (q != std::string_view::npos) {
      std::string_view qs = target.substr(q + 1);
      while (!qs.empty()) {
        auto amp = qs.find('&');
        std::string_view kv = qs.substr(0, amp);
        auto eq = kv.find('=');
        auto k = url::decode(kv.substr(0, eq), true);
        auto v = eq == std::string_view::npos ? std::optional<std::string>("")
                                              : url::decode(kv.substr(eq + 1), true);
        if (k && v) {
          query_.emplace(*k, *v);
        }
        if (amp == std::string_view::npos) {
          break;
        }
        qs = qs.substr(amp + 1);
      }
    }
  }

  bool bad_path() const { return bad_path_; }
  bhttp::verb method() const override { return parser_.get().method(); }
  const std::string& method_string() const override { return method_string_; }
  const std::string& path() const override { return path_; }
  std::optional<std::string> query(const std::string& name) const override {
    auto it = query_.find(name);
    if (it == query_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  std::vector<std::string> query_all(const std::string& name) const override {
    std::vector<std::string> out;
    auto [a, b] = query_.equal_range(name);
    for (auto it = a; it != b; ++it) {
      out.push_back(it->second);
    }
    return out;
  }
  std::string header(bhttp::field f) const override { return std::string(parser_.get()[f]); }
  std::string header(const std::string& name) const override {
    return std::string(parser_.get()[name]);
  }
  std::optional<uint64_t> content_length() const override {
    auto cl = parser_.content_length();
    if (cl) {
      return *cl;
    }
    return std::nullopt;
  }
  bool chunked() const override { return parser_.chunked(); }

  awaitable<Result<size_t>> read_some(char* buf, size_t n) override {
    if (body_done()) {
      co_return size_t{0};
    }
    if (!continued_ && beast::iequals(parser_.get()[bhttp::field::expect], "100-continue")) {
      continued_ = true;
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      beast::error_code wec;
      co_await bhttp::async_write(stream_, cont, asio::redirect_error(use_awaitable, wec));
      if (wec) {
        co_return Error(Errc::Cancelled, "client went away: " + wec.message());
      }
    }
    if (!parser_.chunked() && parser_.content_length()) {
      co_return co_await read_sized(buf, n);
    }
    // Beast sizes each socket read by the buffer's free capacity (512 bytes minimum, 64 KiB
    // maximum): without room, a body arrives 512 bytes per recvmsg.
    if (buffer_.capacity() < kBodyReadBuffer) {
      buffer_.reserve(kBodyReadBuffer);
    }
    // Re-arming the timer costs a syscall; once a second of progress is precise enough.
    auto now = std::chrono::steady_clock::now();
    if (now - last_arm_ > std::chrono::seconds(1)) {
      beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
      last_arm_ = now;
    }
    auto& body = parser_.get().body();
    body.data = buf;
    body.size = n;
    beast::error_code ec;
    co_await bhttp::async_read(stream_, buffer_, parser_, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      broken_ = true;
      if (ec == beast::error::timeout) {
        co_return Error(Errc::Cancelled, "request body timed out");
      }
      if (ec == bhttp::error::partial_message || ec == asio::error::eof ||
          ec == asio::error::connection_reset) {
        co_return Error(Errc::Cancelled, "client closed the connection mid-body");
      }
      co_return Error(Errc::InvalidArgument, "malformed request body: " + ec.message());
    }
    co_return n - body.size;
  }

  awaitable<void> send(Response res) override {
    bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status),
                                            parser_.get().version()};
    out.set(bhttp::field::server, "berth");
    for (auto& [k, v] : res.headers) {
      out.set(k, v);
    }
    out.keep_alive(keep_alive());
    if (res.head_only || method() == bhttp::verb::head) {
      bhttp::response<bhttp::empty_body> h{out.result(), out.version()};
      for (auto& f : out) {
        h.set(f.name_string(), f.value());
      }
      h.content_length(res.content_length.value_or(res.body.size()));
      h.keep_alive(keep_alive());
      bhttp::response_serializer<bhttp::empty_body> sr{h};
      beast::error_code ec;
      beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
      co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
      finish(res.status, 0, ec);
      co_return;
    }
    bytes_ = res.body.size();
    out.body() = std::move(res.body);
    out.prepare_payload();
    beast::error_code ec;
    beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
    co_await bhttp::async_write(stream_, out, asio::redirect_error(use_awaitable, ec));
    finish(res.status, bytes_, ec);
  }

  awaitable<void> send_file(Response head, int fd, uint64_t offset, uint64_t length) override {
    bhttp::response<bhttp::empty_body> h{static_cast<bhttp::status>(head.status),
                                         parser_.get().version()};
    h.set(bhttp::field::server, "berth");
    for (auto& [k, v] : head.headers) {
      h.set(k, v);
    }
    h.content_length(length);
    h.keep_alive(keep_alive());
    bhttp::response_serializer<bhttp::empty_body> sr{h};
    beast::error_code ec;
    beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
    co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      finish(head.status, 0, ec);
      co_return;
    }
    uint64_t sent = co_await file_bytes(fd, offset, length, ec);
    finish(head.status, sent, ec);
  }

  awaitable<bool> write_file(int fd, uint64_t offset, uint64_t length) override {
    if (broken_ || !streaming_ || chunked_) {
      // (Chunked framing would need a chunk header around the bytes: sized bodies only.)
      co_return false;
    }
    beast::error_code ec;
    uint64_t sent = co_await file_bytes(fd, offset, length, ec);
    finish(status_, bytes_ + sent, ec);
    co_return !ec;
  }
  awaitable<bool> send_head(Response head) override {
    bhttp::response<bhttp::empty_body> h{static_cast<bhttp::status>(head.status),
                                         parser_.get().version()};
    h.set(bhttp::field::server, "berth");
    for (auto& [k, v] : head.headers) {
      if (!beast::iequals(k, "Content-Length") && !beast::iequals(k, "Transfer-Encoding")) {
        h.set(k, v);
      }
    }
    // A known length (head.content_length) frames the body itself; otherwise chunked.
    sized_ = head.content_length.has_value();
    chunked_ = !sized_ && parser_.get().version() >= 11;
    if (sized_) {
      h.content_length(*head.content_length);
    } else if (chunked_) {
      h.chunked(true);
    }
    h.keep_alive((chunked_ || sized_) && keep_alive());
    streaming_ = true;  // until end_body(): a handler that stops early closes the connection
    bhttp::response_serializer<bhttp::empty_body> sr{h};
    beast::error_code ec;
    beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
    co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
    finish(head.status, 0, ec);
    co_return !ec;
  }

  awaitable<bool> write_chunk(std::string data) override {
    if (broken_ || !streaming_) {
      co_return false;
    }
    if (data.empty()) {
      co_return true;
    }
    beast::error_code ec;
    beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
    if (chunked_) {
      co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(data)),
                                 asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(stream_, asio::buffer(data),
                                 asio::redirect_error(use_awaitable, ec));
    }
    finish(status_, bytes_ + data.size(), ec);
    co_return !ec;
  }

  awaitable<bool> end_body() override {
    if (broken_ || !streaming_) {
      co_return false;
    }
    beast::error_code ec;
    if (chunked_) {
      beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
      co_await asio::async_write(stream_, bhttp::make_chunk_last(),
                                 asio::redirect_error(use_awaitable, ec));
    } else if (!sized_) {
      broken_ = true;  // unframed (HTTP/1.0): the end of the body is the end of the connection
    }
    streaming_ = false;
    finish(status_, bytes_, ec);
    co_return !ec;
  }

  // Sends `length` bytes of fd from `offset` as they are (no framing): sendfile(2) on plain
  // TCP, pread and write through TLS. Returns how many went out; ec says why it stopped short.
  awaitable<uint64_t> file_bytes(int fd, uint64_t offset, uint64_t length, beast::error_code& ec) {
    uint64_t left = length;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      // Plain TCP: the kernel copies file pages straight to the socket.
      auto& sock = stream_.socket();
      sock.non_blocking(true, ec);
      off_t off = static_cast<off_t>(offset);
      while (left > 0 && !ec) {
        ssize_t n = ::sendfile(sock.native_handle(), fd, &off,
                               static_cast<size_t>(std::min<uint64_t>(left, 1 << 30)));
        if (n > 0) {
          left -= static_cast<uint64_t>(n);
          continue;
        }
        if (n == 0) {
          ec = asio::error::eof;  // file shorter than promised
          break;
        }
        if (errno == EINTR) {
          continue;
        }
        if (errno == EAGAIN) {
          stream_.expires_after(opts_.body_timeout);
          co_await stream_.socket().async_wait(tcp::socket::wait_write,
                                               asio::redirect_error(use_awaitable, ec));
          continue;
        }
        ec = beast::error_code(errno, boost::system::system_category());
      }
    } else {
      // TLS: the bytes must pass through the encryption layer.
      // Not cleared, and no bigger than what is sent: clearing 256 KiB per small blob cost more
      // (in page faults) than sending it.
      size_t chunk_size = static_cast<size_t>(std::min<uint64_t>(left, 256 * 1024));
      auto chunk = std::make_unique_for_overwrite<char[]>(std::max<size_t>(chunk_size, 1));
      uint64_t pos = offset;
      while (left > 0 && !ec) {
        ssize_t n =
            ::pread(fd, chunk.get(), std::min<uint64_t>(left, chunk_size), static_cast<off_t>(pos));
        if (n <= 0) {
          ec = n == 0 ? beast::error_code(asio::error::eof)
                      : beast::error_code(errno, boost::system::system_category());
          break;
        }
        beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
        co_await asio::async_write(stream_, asio::buffer(chunk.get(), static_cast<size_t>(n)),
                                   asio::redirect_error(use_awaitable, ec));
        pos += static_cast<uint64_t>(n);
        left -= static_cast<uint64_t>(n);
      }
    }
    co_return length - left;
  }

  bool responded() const override { return status_ != 0; }
  unsigned status() const { return status_; }
  uint64_t bytes() const { return bytes_; }
  bool broken() const { return broken_; }
  bool keep_alive() const { return parser_.get().keep_alive() && !broken_ && !streaming_; }
  /// The whole request body has been read (or there is none).
  bool body_done() const { return sized_left_ ? *sized_left_ == 0 : parser_.is_done(); }

 private:
  // A Content-Length body goes from the socket straight into the caller's buffer, after the
  // bytes that arrived with the head: through the parser each byte was copied once more (from
  // buffer_), 6% of berthd's CPU in a push of big layers. Bytes past the body (a pipelined
  // request) stay in buffer_ for the next parser.
  awaitable<Result<size_t>> read_sized(char* buf, size_t n) {
    if (!sized_left_) {
      sized_left_ = parser_.content_length_remaining().value_or(0);
    }
    uint64_t& left = *sized_left_;
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, left));
    if (want == 0) {
      co_return size_t{0};
    }
    if (buffer_.size() > 0) {
      size_t k = std::min(want, buffer_.size());
      std::memcpy(buf, buffer_.data().data(), k);
      buffer_.consume(k);
      left -= k;
      co_return k;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_arm_ > std::chrono::seconds(1)) {
      beast::get_lowest_layer(stream_).expires_after(opts_.body_timeout);
      last_arm_ = now;
    }
    beast::error_code ec;
    size_t got = co_await stream_.async_read_some(asio::buffer(buf, want),
                                                  asio::redirect_error(use_awaitable, ec));
    if (ec) {
      broken_ = true;
      if (ec == beast::error::timeout) {
        co_return Error(Errc::Cancelled, "request body timed out");
      }
      co_return Error(Errc::Cancelled, "client closed the connection mid-body");
    }
    left -= got;
    co_return got;
  }

  void finish(unsigned status, uint64_t bytes, beast::error_code ec) {
    status_ = status;
    bytes_ = bytes;
    if (ec) {
      broken_ = true;
    }
  }

  Stream& stream_;
  beast::flat_buffer& buffer_;
  bhttp::request_parser<bhttp::buffer_body>& parser_;
  const ServerOptions& opts_;
  std::string method_string_;
  std::string path_;
  bool bad_path_ = false;
  std::multimap<std::string, std::string> query_;
  static constexpr size_t kBodyReadBuffer = 128 * 1024;
  std::chrono::steady_clock::time_point last_arm_{};
  bool continued_ = false;
  bool broken_ = false;
  bool streaming_ = false;  // a send_head() response whose end_body() has not been sent
  bool chunked_ = false;
  bool sized_ = false;                  // a send_head() response with a Content-Length
  std::optional<uint64_t> sized_left_;  // body bytes still to come, once read_sized() began
  unsigned status_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace berth::http::detail
