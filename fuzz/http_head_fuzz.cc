// SPDX-License-Identifier: Apache-2.0
// HTTP/1.1 request heads as both berthd listeners see them:
//  - http::Server (API, registry, hooks): http1::check_request_head on the raw head, then Beast's
//    request_parser<buffer_body> with the server's header limit;
//  - the router: detail::find_head_end (CRLF and bare-LF scanning, resumed in pieces as the
//    socket delivers them), check_request_head, then a Beast basic_parser put() of the head,
//    and the pure helpers it applies to fields (Host normalization, Connection token lists,
//    X-Forwarded-For). The router's parser class itself is private to router.cc; the one
//    below is configured the same way (eager, 64 KiB head, no body limit).
#include <limits>
#include <string>

#include "common/asio.h"
#include "common/http1.h"
#include "fuzz.h"
#include "router/proxy_util.h"

namespace {

namespace bhttp = boost::beast::http;

constexpr size_t kHeaderLimit = 64 * 1024;

class FieldParser final : public bhttp::basic_parser<true> {
 public:
  FieldParser() {
    eager(true);
    header_limit(static_cast<uint32_t>(kHeaderLimit));
    body_limit(std::numeric_limits<std::uint64_t>::max());
  }
  std::string host, connection, xff;

 private:
  void on_request_impl(bhttp::verb, boost::beast::string_view, boost::beast::string_view, int,
                       boost::beast::error_code&) override {}
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(bhttp::field f, boost::beast::string_view name,
                     boost::beast::string_view value, boost::beast::error_code&) override {
    if (f == bhttp::field::host) {
      host.assign(value.data(), value.size());
    } else if (f == bhttp::field::connection) {
      connection.assign(value.data(), value.size());
    } else if (boost::beast::iequals(name, "x-forwarded-for")) {
      xff.assign(value.data(), value.size());
    }
  }
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(boost::optional<std::uint64_t> const&,
                         boost::beast::error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view s, boost::beast::error_code&) override {
    return s.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view,
                            boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view s,
                                 boost::beast::error_code&) override {
    return s.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}
};

void server_view(std::string_view raw) {
  if (berth::http1::check_request_head(raw, 100)) {
    return;  // refused before Beast sees it
  }
  bhttp::request_parser<bhttp::buffer_body> parser;
  parser.header_limit(static_cast<uint32_t>(kHeaderLimit));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  parser.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  if (!ec && parser.is_header_done()) {
    auto& req = parser.get();
    (void)req.method();
    (void)req.target();
    (void)req.keep_alive();
    (void)parser.content_length();
    (void)parser.chunked();
  }
}

void router_view(std::string_view raw) {
  // Scan as the router does while bytes arrive: in two pieces, resuming at the old end - 2.
  bool bare = false;
  size_t cut = raw.size() / 2;
  size_t end = berth::router::detail::find_head_end(raw.data(), cut, 0, bare);
  if (end == 0) {
    end = berth::router::detail::find_head_end(raw.data(), raw.size(), cut > 2 ? cut - 2 : 0, bare);
  }
  bool bare_once = false;
  size_t end_once = berth::router::detail::find_head_end(raw.data(), raw.size(), 0, bare_once);
  if (end != 0 && end_once != 0) {
    BERTH_FUZZ_CHECK(end_once <= end);
  }
  BERTH_FUZZ_CHECK(end <= raw.size());
  if (end == 0) {
    return;
  }
  std::string_view head = raw.substr(0, end);
  std::string crlf;
  berth::router::detail::crlf_line_ends(head.data(), head.size(), crlf);
  BERTH_FUZZ_CHECK(crlf.size() >= head.size());
  if (berth::http1::check_request_head(head)) {
    return;
  }
  FieldParser p;
  boost::beast::error_code ec;
  p.put(boost::asio::const_buffer(head.data(), head.size()), ec);
  if (ec || !p.is_header_done()) {
    return;
  }
  char buf[256];
  std::string_view host = berth::router::detail::normalize_host(p.host, buf, sizeof buf);
  BERTH_FUZZ_CHECK(host.size() <= sizeof buf);
  (void)berth::router::detail::connection_names_fields(p.connection);
  (void)berth::router::detail::token_list_contains(p.connection, "upgrade");
  std::string out;
  berth::router::detail::append_forwarded_for(out, p.xff, "127.0.0.1");
  (void)berth::router::detail::is_hop_by_hop(p.host);
}

}  // namespace

BERTH_FUZZ_TARGET(http_head) {
  berth::fuzz::quiet_logs();
  std::string_view raw = berth::fuzz::as_view(data, size);
  server_view(raw);
  router_view(raw);
  return 0;
}
