// SPDX-License-Identifier: Apache-2.0
// Private to certs: the HTTPS client the ACME client talks through, on berth's one outbound
// HTTP client (http/client.h): one TLS connection per request (ACME's few requests per order
// do not need keep-alive), certificate verification always on (the given CA bundle, or the
// system's), the host name (or IP address) checked against the certificate, every step bounded
// by the timeout. Blocking.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "http/client.h"

namespace berth::certs::acme {

using HttpResponse = http::ClientResponse;

class HttpsClient {
 public:
  /// ca_bundle: a PEM file of trusted CAs; empty: the system's. InvalidArgument when the
  /// bundle cannot be read.
  static Result<HttpsClient> create(const std::string& ca_bundle, std::chrono::seconds timeout);

  /// method "GET", "HEAD" or "POST" (body sent as application/jose+json). Unavailable when
  /// the server cannot be reached, the TLS handshake or verification fails, or the request
  /// times out; InvalidArgument for a URL that is not https. Any HTTP status is a response.
  Result<HttpResponse> request(const std::string& method, const std::string& url,
                               const std::string& body = "", const std::string& accept = "");

 private:
  explicit HttpsClient(http::Client client) : client_(std::move(client)) {}
  http::Client client_;
};

}  // namespace berth::certs::acme
