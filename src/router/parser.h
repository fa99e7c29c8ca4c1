// SPDX-License-Identifier: Apache-2.0
// Private to the router. The HTTP/1.1 head machinery of the proxy: a Beast basic_parser that
// records header fields and body pieces as views into the connection's read buffer (no
// allocation per header or per body piece; bodies are never copied into a second buffer),
// hop-by-hop classification, and HeadOut, which writes a head in place.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <optional>

#include "common/asio.h"
#include "common/http1.h"
#include "router/proxy_util.h"

namespace berth::router {

using namespace std::string_view_literals;

constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kMaxFields = 128;
constexpr size_t kMaxViews = 8;

// A buffer sequence over an array, without copying a std::vector into every write op.
struct BufSpan {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  const asio::const_buffer* b;
  size_t n;
  const_iterator begin() const { return b; }
  const_iterator end() const { return b + n; }
};

struct Field {
  bhttp::field f;
  const char* name;
  uint32_t name_len;
  const char* value;
  uint32_t value_len;
  std::string_view n() const { return {name, name_len}; }
  std::string_view v() const { return {value, value_len}; }
};

template <bool isRequest>
class Parser final : public bhttp::basic_parser<isRequest> {
 public:
  Parser() {
    this->eager(true);
    this->header_limit(static_cast<uint32_t>(kHeaderLimit));
    // Boost 1.74 mis-compares boost::none: "no limit" must be spelled UINT64_MAX.
    this->body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  bhttp::verb method = bhttp::verb::unknown;
  std::string_view method_str, target, reason;
  int version = 11;
  unsigned status = 0;
  Field fields[kMaxFields];
  size_t nfields = 0;
  bool header_done = false;
  std::string_view views[kMaxViews];
  size_t nviews = 0;

 protected:
  void on_request_impl(bhttp::verb m, std::string_view ms, std::string_view t, int v,
                       beast::error_code&) override {
    method = m;
    method_str = ms;
    target = t;
    version = v;
  }
  void on_response_impl(int code, std::string_view r, int v, beast::error_code&) override {
    status = static_cast<unsigned>(code);
    reason = r;
    version = v;
  }
  void on_field_impl(bhttp::field f, std::string_view name, std::string_view value,
                     beast::error_code& ec) override {
    if (header_done) {
      return;  // trailer fields of a chunked body are dropped
    }
    if (nfields == kMaxFields) {
      ec = bhttp::error::header_limit;
      return;
    }
    fields[nfields++] = Field{f, name.data(), static_cast<uint32_t>(name.size()), value.data(),
                              static_cast<uint32_t>(value.size())};
  }
  void on_header_impl(beast::error_code&) override { header_done = true; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  size_t on_body_impl(std::string_view body, beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_chunk_header_impl(std::uint64_t, std::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, std::string_view body, beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_finish_impl(beast::error_code&) override {}

 private:
  size_t take(std::string_view body, beast::error_code& ec) {
    if (body.empty()) {
      return 0;
    }
    if (nviews == kMaxViews) {
      ec = bhttp::error::need_buffer;
      return 0;
    }
    views[nviews++] = body;
    return body.size();
  }
};

using ReqParser = Parser<true>;
using ResParser = Parser<false>;

// Parses an upstream's response head, p[0, end) as find_head_end delimited it. Lines ended by a
// bare LF (busybox CGI and others; `bare` from find_head_end): Beast wants CRLF, so it parses
// a CRLF copy in `crlf`, into which the field views then point.
inline void put_response_head(ResParser& parser, const char* p, size_t end, bool bare,
                              std::string& crlf, beast::error_code& ec) {
  if (bare) {
    detail::crlf_line_ends(p, end, crlf);
    parser.put(asio::buffer(crlf), ec);
  } else {
    parser.put(asio::const_buffer(p, end), ec);
  }
}

// Hop-by-hop by the parser's field code: a switch instead of a string comparison for every
// field Beast knows (the same rules as detail::is_hop_by_hop).
inline bool hop_by_hop(const Field& f) {
  switch (f.f) {
    case bhttp::field::unknown:
      return detail::is_hop_by_hop(f.n());
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authentication_info:
    case bhttp::field::proxy_authorization:
    case bhttp::field::proxy_connection:
    case bhttp::field::proxy_features:
    case bhttp::field::proxy_instruction:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
      return true;
    default:
      return false;
  }
}

// Builds a head in place in a std::string: one resize up front, then memcpy per piece (an
// out-of-line std::string::append per piece cost ~10% of the router's instructions). The
// string gets its final size when the HeadOut goes away.
class HeadOut {
 public:
  HeadOut(std::string& s, size_t reserve) : s_(s) {
    s_.resize(std::max(s_.capacity(), reserve));
    p_ = s_.data();
    end_ = p_ + s_.size();
  }
  ~HeadOut() { s_.resize(static_cast<size_t>(p_ - s_.data())); }
  HeadOut(const HeadOut&) = delete;
  HeadOut& operator=(const HeadOut&) = delete;

  [[gnu::always_inline]] HeadOut& append(std::string_view v) {
    if (static_cast<size_t>(end_ - p_) < v.size()) {
      grow(v.size());
    }
    std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
    return *this;
  }
  HeadOut& append(const char* p, size_t n) { return append(std::string_view(p, n)); }
  HeadOut& number(uint64_t v) {
    char num[24];
    auto res = std::to_chars(num, num + sizeof num, v);
    return append(num, static_cast<size_t>(res.ptr - num));
  }
  void field(std::string_view name, std::string_view value) {
    append(name).append(": "sv).append(value).append("\r\n"sv);
  }

 private:
  void grow(size_t need) {
    size_t used = static_cast<size_t>(p_ - s_.data());
    s_.resize(std::max(s_.size() * 2, used + need));
    p_ = s_.data() + used;
    end_ = s_.data() + s_.size();
  }
  std::string& s_;
  char* p_;
  char* end_;
};

}  // namespace berth::router
