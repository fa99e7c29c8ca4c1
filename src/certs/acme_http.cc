// SPDX-License-Identifier: Apache-2.0
#include "certs/acme_http.h"

#include "certs/acme_protocol.h"

namespace berth::certs::acme {

namespace {
constexpr uint64_t kMaxBodyBytes = uint64_t{4} * 1024 * 1024;  // a chain or a JSON document
}  // namespace

Result<HttpsClient> HttpsClient::create(const std::string& ca_bundle,
                                        std::chrono::seconds timeout) {
  http::Client::Options o;
  o.ca_file = ca_bundle;
  o.timeout = timeout.count() > 0 ? timeout : std::chrono::seconds(30);
  o.user_agent = "berth-acme/0.1";
  auto c = http::Client::create(o);
  if (!c) {
    return Error(c.error().code(), "ca_bundle: " + c.error().message());
  }
  return HttpsClient(std::move(*c));
}

Result<HttpResponse> HttpsClient::request(const std::string& method, const std::string& url,
                                          const std::string& body, const std::string& accept) {
  BERTH_TRY(parse_https_url(url));
  http::ClientRequest req;
  req.method = method;
  req.url = url;
  req.max_body = kMaxBodyBytes;
  if (!accept.empty()) {
    req.headers.emplace_back("Accept", accept);
  }
  if (method == "POST") {
    req.headers.emplace_back("Content-Type", "application/jose+json");
    req.body = body;
  }
  auto r = client_.send(req);
  if (!r) {
    return Error(Errc::Unavailable, "acme: " + r.error().message());
  }
  return r;
}

}  // namespace berth::certs::acme
