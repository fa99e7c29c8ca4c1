// SPDX-License-Identifier: Apache-2.0
#include "api/client.h"

#include <cstdint>

#include "common/asio.h"
#include "common/url.h"

namespace berth::api {

namespace {
Errc errc_from_name(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(Errc::Internal); ++i) {
    if (name == errc_name(static_cast<Errc>(i))) {
      return static_cast<Errc>(i);
    }
  }
  return Errc::Internal;
}
}  // namespace

void Client::set_credentials(const std::string& access_key_id, const std::string& secret) {
  authorization_ =
      access_key_id.empty() ? "" : "Basic " + b64::encode(access_key_id + ":" + secret);
}

Result<Client> Client::create(const std::string& server) {
  Client c;
  std::string s = server;
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  if (s.rfind("http://", 0) != 0) {
    return Error(Errc::InvalidArgument,
                 "server '" + server + "' must look like http://HOST:PORT (https comes later)");
  }
  std::string hp = s.substr(7);
  if (hp.find('/') != std::string::npos || hp.empty()) {
    return Error(Errc::InvalidArgument, "server '" + server + "' must not have a path");
  }
  auto colon = hp.rfind(':');
  if (colon == std::string::npos || hp.back() == ']') {
    c.host_ = hp;
    c.port_ = "80";
  } else {
    c.host_ = hp.substr(0, colon);
    c.port_ = hp.substr(colon + 1);
  }
  if (c.host_.size() > 2 && c.host_.front() == '[') {
    c.host_ = c.host_.substr(1, c.host_.size() - 2);
  }
  c.server_ = s;
  return c;
}

Result<ClientResponse> Client::request(const std::string& method, const std::string& path,
                                       const std::string& body) const {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host_, port_, ec);
  if (!ec) {
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(results, ec);
  }
  if (ec) {
    return Error(Errc::Unavailable, "cannot reach berthd at " + server_ + ": " + ec.message() +
                                        " (is it running? set --server or BERTH_SERVER)");
  }
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), path, 11};
  req.set(bhttp::field::host, host_ + ":" + port_);
  req.set(bhttp::field::user_agent, "berth-cli");
  if (!authorization_.empty()) {
    req.set(bhttp::field::authorization, authorization_);
  }
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  stream.expires_after(std::chrono::minutes(30));
  bhttp::write(stream, req, ec);
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) {
    bhttp::read(stream, buf, parser, ec);
  }
  if (ec) {
    return Error(Errc::Unavailable, "request to " + server_ + path + " failed: " + ec.message());
  }
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  auto res = parser.release();
  return ClientResponse{res.result_int(), std::move(res.body())};
}

namespace {

// The Error an answer of status >= 400 stands for.
Error answer_error(const ClientResponse& r, const Json& j) {
  if (!j.is_discarded() && j.contains("error") && j["error"].is_object()) {
    return Error(errc_from_name(j["error"].value("code", "internal")),
                 j["error"].value("message", "unknown error"));
  }
  Errc code = r.status == 401   ? Errc::Unauthenticated
              : r.status == 403 ? Errc::PermissionDenied
              : r.status == 404 ? Errc::NotFound
                                : Errc::Internal;
  return Error(code, "server answered " + std::to_string(r.status) + ": " + r.body);
}

}  // namespace

Result<std::string> Client::call_text(const std::string& method, const std::string& path) const {
  auto r = request(method, path);
  if (!r) {
    return r.error();
  }
  if (r->status >= 400) {
    return answer_error(*r, Json::parse(r->body, nullptr, false));
  }
  return std::move(r->body);
}

Result<Json> Client::call(const std::string& method, const std::string& path,
                          const Json& body) const {
  auto r = request(method, path, body.is_null() ? "" : body.dump());
  if (!r) {
    return r.error();
  }
  Json j = Json::parse(r->body, nullptr, false);
  if (r->status >= 400) {
    return answer_error(*r, j);
  }
  if (j.is_discarded()) {
    return Error(Errc::Internal, "server sent a response that is not JSON");
  }
  return j;
}

}  // namespace berth::api
