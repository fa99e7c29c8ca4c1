// SPDX-License-Identifier: Apache-2.0
#include "http/client.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "common/ascii.h"
#include "common/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on

namespace berth::http {

using ascii::lower;

namespace {

constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kReadPiece = 256 * 1024;

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string verify_detail(SSL* ssl) {
  long v = SSL_get_verify_result(ssl);
  if (v == X509_V_OK) {
    return "";
  }
  return std::string(" (certificate verify failed: ") + X509_verify_cert_error_string(v) + ")";
}

using Outcome = Result<ClientResponse>;

// "TLS handshake: no response within 30s", or the step and Asio's words.
std::string failed(const char* step, const beast::error_code& ec, std::chrono::seconds timeout) {
  if (ec == beast::error::timeout) {
    return std::string(step) + ": no response within " + std::to_string(timeout.count()) + "s";
  }
  return std::string(step) + ": " + ec.message();
}

template <class Stream>
void arm(Stream& s, std::chrono::seconds t) {
  beast::get_lowest_layer(s).expires_after(t);
}

template <class Body>
void fill_head(bhttp::request<Body>& r, const ClientRequest& req, const ClientUrl& url,
               const std::string& user_agent, bool keep) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  bool default_port =
      (url.scheme == "https" && url.port == "443") || (url.scheme == "http" && url.port == "80");
  r.set(bhttp::field::host, default_port ? host : host + ":" + url.port);
  r.set(bhttp::field::user_agent, user_agent);
  if (!keep) {
    r.set(bhttp::field::connection, "close");
  }
  for (const auto& [k, v] : req.headers) {
    r.set(k, v);
  }
  r.prepare_payload();
}

// What became of the connection in an exchange.
struct After {
  bool head_seen = false;  // a response head arrived (a failure before it may be retried)
  bool reusable = false;   // the response was read to its end and the server keeps it open
};

// Writes the request and reads the response on a connected (and, for TLS, handshaken) stream.
// keep: ask the server to keep the connection (no "Connection: close").
template <class Stream>
awaitable<Outcome> exchange(Stream& stream, const ClientRequest& req, const ClientUrl& url,
                            const std::string& user_agent, std::chrono::seconds timeout, bool keep,
                            After* after) {
  beast::error_code ec;
  bhttp::verb verb = bhttp::string_to_verb(req.method);
  arm(stream, timeout);
  if (!req.body_file.empty()) {
    bhttp::request<bhttp::file_body> r(verb, url.target, 11);
    r.body().open(req.body_file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      co_return Error(Errc::Internal, "open " + req.body_file + ": " + ec.message());
    }
    fill_head(r, req, url, user_agent, keep);
    // A big body takes longer than one step's timeout; the stream's deadline is per write.
    bhttp::request_serializer<bhttp::file_body> sr(r);
    while (!ec && !sr.is_done()) {
      arm(stream, timeout);
      co_await bhttp::async_write_some(stream, sr, asio::redirect_error(use_awaitable, ec));
    }
  } else {
    bhttp::request<bhttp::string_body> r(verb, url.target, 11);
    r.body() = req.body;
    fill_head(r, req, url, user_agent, keep);
    co_await bhttp::async_write(stream, r, asio::redirect_error(use_awaitable, ec));
  }
  if (ec) {
    co_return Error(Errc::Unavailable, failed("send request", ec, timeout));
  }
  // Beast reads at most the buffer's free capacity (512 bytes once a head is in): without room
  // a 50 MB body took ~100 000 reads.
  beast::flat_buffer buf;
  buf.reserve(kReadPiece);
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  if (verb == bhttp::verb::head) {
    parser.skip(true);
  }
  arm(stream, timeout);
  co_await bhttp::async_read_header(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return Error(Errc::Unavailable, failed("read response", ec, timeout));
  }
  after->head_seen = true;
  ClientResponse out;
  out.status = parser.get().result_int();
  for (const auto& f : parser.get()) {
    out.headers.emplace_back(lower(std::string(f.name_string())), std::string(f.value()));
  }
  bool streamed = req.sink && out.status >= 200 && out.status < 300;
  if (streamed && req.on_head) {
    req.on_head(out);
  }
  // As big as the body when its length is known, at most kReadPiece, and not cleared: a
  // zeroed 256 KiB per request was most of a small blob's cost on a VM (the page faults).
  auto length = parser.content_length();
  size_t piece_size =
      length ? static_cast<size_t>(std::min<uint64_t>(*length, kReadPiece)) : kReadPiece;
  auto piece = std::make_unique_for_overwrite<char[]>(std::max<size_t>(piece_size, 1));
  // A piece of the body to the sink, or into out.body.
  auto deliver = [&](const char* data, size_t n) -> std::optional<Error> {
    if (streamed) {
      if (!req.sink(std::string_view(data, n))) {
        return Error(Errc::Cancelled, "transfer stopped by the receiver");
      }
      return std::nullopt;
    }
    if (out.body.size() + n > req.max_body) {
      return Error(Errc::ResourceExhausted,
                   "response body is larger than " + std::to_string(req.max_body) + " bytes");
    }
    out.body.append(data, n);
    return std::nullopt;
  };
  if (!parser.is_done() && length && !parser.chunked()) {
    // A sized body is read from the stream straight into the piece: through the parser each
    // byte was copied once more, from buf into the piece.
    uint64_t left = *length;
    size_t have = static_cast<size_t>(std::min<uint64_t>(buf.size(), left));
    if (have > 0) {
      if (auto e = deliver(static_cast<const char*>(buf.data().data()), have)) {
        co_return *e;
      }
      buf.consume(have);
      left -= have;
    }
    while (left > 0) {
      auto into =
          asio::buffer(piece.get(), static_cast<size_t>(std::min<uint64_t>(left, piece_size)));
      arm(stream, timeout);
      size_t n = co_await stream.async_read_some(into, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        co_return Error(Errc::Unavailable, failed("read response body", ec, timeout));
      }
      if (auto e = deliver(piece.get(), n)) {
        co_return *e;
      }
      left -= n;
    }
    after->reusable = keep && parser.get().keep_alive() && buf.size() == 0;
    co_return out;
  }
  while (!parser.is_done()) {
    parser.get().body().data = piece.get();
    parser.get().body().size = piece_size;
    arm(stream, timeout);
    co_await bhttp::async_read_some(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      co_return Error(Errc::Unavailable, failed("read response body", ec, timeout));
    }
    size_t n = piece_size - parser.get().body().size;
    if (n == 0) {
      continue;
    }
    if (auto e = deliver(piece.get(), n)) {
      co_return *e;
    }
  }
  // (A body that ended with the connection leaves nothing to keep.)
  after->reusable = keep && parser.get().keep_alive() && !parser.need_eof() && buf.size() == 0;
  co_return out;
}

// Connections kept open after a GET or HEAD, per thread (each request runs on its thread's
// io_context, and a socket belongs to one), so that pulling a 50-blob image through an upstream
// costs one TCP (and TLS) handshake instead of fifty: over the internet each is a round trip
// or two. At most kMaxIdle per thread, none idle longer than kIdleFor, and one found closed by
// the server is dropped before use.
constexpr size_t kMaxIdle = 8;
constexpr auto kIdleFor = std::chrono::seconds(30);

struct Kept {
  std::string key;  // the client's TLS context and the origin
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  std::chrono::steady_clock::time_point since;
  int fd() {
    return tls ? beast::get_lowest_layer(*tls).socket().native_handle()
               : tcp->socket().native_handle();
  }
};

struct ThreadConns {
  asio::io_context ioc;  // declared first: destroyed after the streams that use it
  std::vector<Kept> idle;
};

ThreadConns& thread_conns() {
  thread_local ThreadConns t;
  return t;
}

// Open as far as can be told without blocking: no EOF, no reset, nothing unasked-for waiting.
bool still_open(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Drops every kept connection that is too old or that its server closed (whatever its
// origin: a thread that talks to one upstream after another must not sit on the others'
// sockets), then hands out the newest one for key.
std::optional<Kept> take_kept(const std::string& key) {
  auto& idle = thread_conns().idle;
  auto now = std::chrono::steady_clock::now();
  std::erase_if(idle, [&](Kept& k) { return now - k.since >= kIdleFor || !still_open(k.fd()); });
  for (size_t i = idle.size(); i-- > 0;) {
    if (idle[i].key == key) {
      Kept k = std::move(idle[i]);
      idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(i));
      return k;
    }
  }
  return std::nullopt;
}

void keep_conn(Kept k) {
  auto& idle = thread_conns().idle;
  if (idle.size() >= kMaxIdle) {
    idle.erase(idle.begin());  // the oldest
  }
  k.since = std::chrono::steady_clock::now();
  idle.push_back(std::move(k));
}

// client_id: the Client's own number, never reused, so that a connection is only ever kept
// for the client (its CA bundle) that verified it.
awaitable<Outcome> run(ClientRequest req, ClientUrl url, asio::ssl::context* ctx,
                       uint64_t client_id, std::string user_agent, std::chrono::seconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  beast::error_code ec;
  // Only requests without a body are sent on kept connections: one that fails there before
  // its response began is simply sent again on a new connection.
  bool keep =
      (req.method == "GET" || req.method == "HEAD") && req.body.empty() && req.body_file.empty();
  std::string key = std::to_string(client_id) + "|" + url.origin();
  if (keep) {
    if (auto k = take_kept(key)) {
      After after;
      std::optional<Outcome> o;  // (No co_await inside ?: -- GCC 12.)
      if (k->tls) {
        o = co_await exchange(*k->tls, req, url, user_agent, timeout, true, &after);
      } else {
        o = co_await exchange(*k->tcp, req, url, user_agent, timeout, true, &after);
      }
      if (after.reusable) {
        keep_conn(std::move(*k));
      }
      if (*o || after.head_seen) {
        co_return std::move(*o);
      }
    }
  }
  asio::ip::tcp::resolver::results_type endpoints;
  if (auto ip = asio::ip::make_address(url.host, ec); !ec) {
    // An address needs no lookup, and Asio's resolver starts a thread per io_context for one.
    auto port = static_cast<unsigned short>(std::stoi(url.port));
    endpoints = asio::ip::tcp::resolver::results_type::create(asio::ip::tcp::endpoint(ip, port),
                                                              url.host, url.port);
  } else {
    asio::ip::tcp::resolver resolver(ex);
    ec = {};
    endpoints = co_await resolver.async_resolve(url.host, url.port,
                                                asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return Error(Errc::Unavailable, "resolve " + url.host + ": " + ec.message());
    }
  }
  Kept k;
  k.key = key;
  After after;
  if (url.scheme == "http") {
    k.tcp = std::make_unique<beast::tcp_stream>(ex);
    k.tcp->expires_after(timeout);
    co_await k.tcp->async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return Error(Errc::Unavailable, failed("connect", ec, timeout));
    }
    Outcome o = co_await exchange(*k.tcp, req, url, user_agent, timeout, keep, &after);
    if (after.reusable) {
      keep_conn(std::move(k));
    }
    co_return o;
  }
  k.tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, *ctx);
  auto& tls = *k.tls;
  SSL* ssl = tls.native_handle();
  if (is_ip(url.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
  } else {
    // SSL_set_tlsext_host_name without the macro's C cast.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, url.host.data());
    SSL_set1_host(ssl, url.host.c_str());
  }
  beast::get_lowest_layer(tls).expires_after(timeout);
  co_await beast::get_lowest_layer(tls).async_connect(endpoints,
                                                      asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return Error(Errc::Unavailable, failed("connect", ec, timeout));
  }
  beast::get_lowest_layer(tls).expires_after(timeout);
  co_await tls.async_handshake(asio::ssl::stream_base::client,
                               asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return Error(Errc::Unavailable, failed("TLS handshake", ec, timeout) + verify_detail(ssl));
  }
  Outcome o = co_await exchange(tls, req, url, user_agent, timeout, keep, &after);
  if (after.reusable) {
    keep_conn(std::move(k));
  }
  co_return o;
}

}  // namespace

std::string ClientUrl::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port = (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
  return scheme + "://" + h + (default_port ? "" : ":" + port);
}

Result<ClientUrl> parse_client_url(std::string_view url) {
  auto bad = [&](const char* why) {
    return Error(Errc::InvalidArgument, "URL '" + std::string(url) + "': " + why);
  };
  ClientUrl u;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    u.scheme = "https";
    rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    u.scheme = "http";
    rest = url.substr(7);
  } else {
    return bad("must start with https:// or http://");
  }
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() != '/') {
    u.target.insert(0, "/");
  }
  if (size_t hash = u.target.find('#'); hash != std::string::npos) {
    u.target.erase(hash);
  }
  for (char c : u.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("control character or space in the path");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return bad("user information is not supported");
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return bad("unclosed '['");
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return bad("junk after ']'");
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (u.host.empty()) {
    return bad("no host");
  }
  if (u.host.find_first_of(" \t\r\n/\\") != std::string::npos) {
    return bad("bad character in host");
  }
  if (port.empty()) {
    u.port = u.scheme == "https" ? "443" : "80";
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      return bad("bad port");
    }
    u.port = std::string(port);
  }
  return u;
}

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

struct Client::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  Options opts;
  uint64_t id = next_id();

  static uint64_t next_id() {
    static std::atomic<uint64_t> n{0};
    return ++n;
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::create(Options opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(opts);
  if (impl->opts.timeout.count() <= 0) {
    impl->opts.timeout = std::chrono::seconds(30);
  }
  beast::error_code ec;
  impl->ctx.set_verify_mode(asio::ssl::verify_peer, ec);
  if (impl->opts.ca_file.empty()) {
    impl->ctx.set_default_verify_paths(ec);
    if (ec) {
      return Error(Errc::Internal, "system CA certificates: " + ec.message());
    }
  } else {
    impl->ctx.load_verify_file(impl->opts.ca_file, ec);
    if (ec) {
      return Error(Errc::InvalidArgument, "CA file " + impl->opts.ca_file + ": " + ec.message());
    }
  }
  SSL_CTX_set_min_proto_version(impl->ctx.native_handle(), TLS1_2_VERSION);
  return Client(std::move(impl));
}

Result<ClientResponse> Client::send(const ClientRequest& req) {
  BERTH_ASSIGN_OR_RETURN(ClientUrl url, parse_client_url(req.url));
  asio::io_context& ioc = thread_conns().ioc;
  ioc.restart();
  std::optional<Outcome> done;
  std::string escaped;
  auto finished = [&done, &escaped](std::exception_ptr e, Outcome o) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        escaped = ex.what();
      } catch (...) {
        escaped = "unknown exception";
      }
      return;
    }
    done = std::move(o);
  };
  asio::co_spawn(ioc,
                 run(req, url, &impl_->ctx, impl_->id, impl_->opts.user_agent, impl_->opts.timeout),
                 std::move(finished));
  // Every step has its own deadline (the stream's expiry), so run() returns.
  ioc.run();
  std::string what = req.method + " " + url.origin() + url.target;
  if (!escaped.empty()) {
    return Error(Errc::Unavailable, what + ": " + escaped);
  }
  if (!done) {
    return Error(Errc::Unavailable, what + ": no response");
  }
  if (!*done) {
    Errc code = done->error().code();
    return Error(
        code == Errc::ResourceExhausted || code == Errc::Cancelled ? code : Errc::Unavailable,
        what + ": " + done->error().message());
  }
  return std::move(*done);
}

}  // namespace berth::http
