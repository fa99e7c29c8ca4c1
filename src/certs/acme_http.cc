// SPDX-License-Identifier: Apache-2.0
#include "certs/acme_http.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certs/acme_protocol.h"
#include "common/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on

namespace berth::certs::acme {

namespace {

constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr uint64_t kMaxBodyBytes = uint64_t{4} * 1024 * 1024;  // a chain or a JSON document

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// A response, or what failed: the step and Asio's words (plus OpenSSL's verify result when
// the handshake failed on the certificate).
struct Outcome {
  Result<HttpResponse> response;
};

std::string verify_detail(SSL* ssl) {
  long v = SSL_get_verify_result(ssl);
  if (v == X509_V_OK) {
    return "";
  }
  return std::string(" (certificate verify failed: ") + X509_verify_cert_error_string(v) + ")";
}

// One request on its own connection. Parameters by value (coroutine rule).
awaitable<Outcome> exchange(std::string method, Url url, std::string body, std::string accept,
                            asio::ssl::context* ctx) {
  Outcome out;
  auto ex = co_await asio::this_coro::executor;
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(ex);
  auto endpoints =
      co_await resolver.async_resolve(url.host, url.port, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.response = Error(Errc::Unavailable, "resolve " + url.host + ": " + ec.message());
    co_return out;
  }
  beast::ssl_stream<beast::tcp_stream> tls(ex, *ctx);
  SSL* ssl = tls.native_handle();
  if (is_ip(url.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
  } else {
    // SSL_set_tlsext_host_name without the macro's C cast.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, url.host.data());
    SSL_set1_host(ssl, url.host.c_str());
  }
  co_await beast::get_lowest_layer(tls).async_connect(endpoints,
                                                      asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.response = Error(Errc::Unavailable, "connect: " + ec.message());
    co_return out;
  }
  co_await tls.async_handshake(asio::ssl::stream_base::client,
                               asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.response = Error(Errc::Unavailable, "TLS handshake: " + ec.message() + verify_detail(ssl));
    co_return out;
  }
  bhttp::verb verb = bhttp::string_to_verb(method);
  bhttp::request<bhttp::string_body> req(verb, url.target, 11);
  std::string host_header =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != "443") {
    host_header += ":" + url.port;
  }
  req.set(bhttp::field::host, host_header);
  req.set(bhttp::field::user_agent, "berth-acme/0.1");
  req.set(bhttp::field::connection, "close");
  if (!accept.empty()) {
    req.set(bhttp::field::accept, accept);
  }
  if (verb == bhttp::verb::post) {
    req.set(bhttp::field::content_type, "application/jose+json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  co_await bhttp::async_write(tls, req, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.response = Error(Errc::Unavailable, "send request: " + ec.message());
    co_return out;
  }
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxBodyBytes);
  if (verb == bhttp::verb::head) {
    parser.skip(true);
  }
  co_await bhttp::async_read(tls, buf, parser, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.response = Error(Errc::Unavailable, "read response: " + ec.message());
    co_return out;
  }
  HttpResponse r;
  r.status = parser.get().result_int();
  for (const auto& f : parser.get()) {
    r.headers.emplace_back(lower(std::string(f.name_string())), std::string(f.value()));
  }
  r.body = std::move(parser.get().body());
  out.response = std::move(r);
  co_return out;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

struct HttpsClient::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  std::chrono::seconds timeout{30};
};

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::HttpsClient(HttpsClient&&) noexcept = default;
HttpsClient& HttpsClient::operator=(HttpsClient&&) noexcept = default;
HttpsClient::~HttpsClient() = default;

Result<HttpsClient> HttpsClient::create(const std::string& ca_bundle,
                                        std::chrono::seconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->timeout = timeout.count() > 0 ? timeout : std::chrono::seconds(30);
  beast::error_code ec;
  impl->ctx.set_verify_mode(asio::ssl::verify_peer, ec);
  if (ca_bundle.empty()) {
    impl->ctx.set_default_verify_paths(ec);
    if (ec) {
      return Error(Errc::Internal, "system CA certificates: " + ec.message());
    }
  } else {
    impl->ctx.load_verify_file(ca_bundle, ec);
    if (ec) {
      return Error(Errc::InvalidArgument, "ca_bundle " + ca_bundle + ": " + ec.message());
    }
  }
  SSL_CTX_set_min_proto_version(impl->ctx.native_handle(), TLS1_2_VERSION);
  return HttpsClient(std::move(impl));
}

Result<HttpResponse> HttpsClient::request(const std::string& method, const std::string& url,
                                          const std::string& body, const std::string& accept) {
  BERTH_ASSIGN_OR_RETURN(Url u, parse_https_url(url));
  asio::io_context ioc;
  std::optional<Outcome> done;
  std::string escaped;
  asio::co_spawn(ioc, exchange(method, u, body, accept, &impl_->ctx),
                 [&done, &escaped](std::exception_ptr e, Outcome o) {
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
                 });
  ioc.run_for(impl_->timeout);
  std::string what = "acme: " + method + " " + url;
  if (!escaped.empty()) {
    return Error(Errc::Unavailable, what + ": " + escaped);
  }
  if (!done) {
    // Stops the request; the io_context's destructor frees the coroutine and its socket.
    ioc.stop();
    return Error(Errc::Unavailable,
                 what + ": no response within " + std::to_string(impl_->timeout.count()) + "s");
  }
  if (!done->response) {
    return Error(Errc::Unavailable, what + ": " + done->response.error().message());
  }
  return std::move(done->response);
}

}  // namespace berth::certs::acme
