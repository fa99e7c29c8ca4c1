// SPDX-License-Identifier: Apache-2.0
// A small blocking HTTP/JSON client for the control API; the CLI's only way to the server.
#pragma once

#include <string>

#include "common/json.h"
#include "common/result.h"

namespace berth::api {

struct ClientResponse {
  unsigned status = 0;
  std::string body;
};

class Client {
 public:
  /// server: "http://HOST:PORT" (a trailing slash is fine). InvalidArgument when malformed.
  static Result<Client> create(const std::string& server);

  /// Sends a request; transport failures are Unavailable naming the server.
  Result<ClientResponse> request(const std::string& method, const std::string& path,
                                 const std::string& body = "") const;
  /// Sends JSON and decodes a JSON answer; an {"error":{...}} body becomes an Error with the
  /// server's code and message.
  Result<Json> call(const std::string& method, const std::string& path,
                    const Json& body = nullptr) const;

  /// Like call, for an answer that is text (a zone file): the body as it came, or the
  /// server's error.
  Result<std::string> call_text(const std::string& method, const std::string& path) const;

  /// Sends `Authorization: Basic base64(ID:SECRET)` on every request from now on. An empty id
  /// clears the credentials (requests go out anonymous).
  void set_credentials(const std::string& access_key_id, const std::string& secret);
  bool has_credentials() const { return !authorization_.empty(); }

  const std::string& server() const { return server_; }

 private:
  std::string server_, host_, port_;
  std::string authorization_;  // the Authorization header value, "" when anonymous
};

}  // namespace berth::api
