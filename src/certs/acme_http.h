// SPDX-License-Identifier: Apache-2.0
// Private to certs: the blocking HTTPS client the ACME client talks through. One TLS
// connection per request (ACME's few requests per order do not need keep-alive), certificate
// verification always on (the given CA bundle, or the system's), the host name (or IP address)
// checked against the certificate. Each request runs on a private io_context on the calling
// thread, bounded by the timeout as a whole (resolve, connect, handshake, write, read).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::certs::acme {

struct HttpResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, in order
  std::string body;
  /// The first header of that (lower-case) name, or "".
  std::string header(std::string_view name) const;
};

class HttpsClient {
 public:
  /// ca_bundle: a PEM file of trusted CAs; empty: the system's. InvalidArgument when the
  /// bundle cannot be read.
  static Result<HttpsClient> create(const std::string& ca_bundle, std::chrono::seconds timeout);
  HttpsClient(HttpsClient&&) noexcept;
  HttpsClient& operator=(HttpsClient&&) noexcept;
  ~HttpsClient();

  /// method "GET", "HEAD" or "POST" (body sent as application/jose+json). Unavailable when
  /// the server cannot be reached, the TLS handshake or verification fails, or the request
  /// times out; InvalidArgument for a URL that is not https. Any HTTP status is a response.
  Result<HttpResponse> request(const std::string& method, const std::string& url,
                               const std::string& body = "", const std::string& accept = "");

  struct Impl;

 private:
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::certs::acme
