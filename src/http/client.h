// SPDX-License-Identifier: Apache-2.0
// A blocking HTTP/1.1 client for berthd's outbound calls (upstream registries): http and https,
// certificate and host name always verified over TLS (the system's CAs or a given bundle). A
// connection that carried a GET or HEAD is kept for the next request to the same origin on the
// same thread (client.cc says for how long). A request runs on a private io_context on the calling thread, so call
// it from a worker thread, never an I/O thread. Every step (resolve, connect, handshake, each
// read and write) is bounded by the idle timeout; a body may stream for as long as it keeps
// arriving.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::http {

/// An absolute http(s) URL split for a request.
struct ClientUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets
  std::string port;    // default 80 or 443
  std::string target;  // path and query, "/" at least
  /// "scheme://host[:port]", with brackets around an IPv6 address.
  std::string origin() const;
};
/// InvalidArgument naming the URL when it is not an absolute http or https URL.
Result<ClientUrl> parse_client_url(std::string_view url);

struct ClientResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, in order
  std::string body;                                          // empty when the body went to a sink
  /// The first header of that (lower-case) name, or "".
  std::string header(std::string_view name) const;
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  /// The request body: in memory, or (when body_file is set) a file's contents, streamed.
  std::string body;
  std::string body_file;
  /// Bodies kept in memory (errors, manifests, tokens) stop here: ResourceExhausted past it.
  uint64_t max_body = 4 * 1024 * 1024;
  /// When set, a 2xx response's body goes here piece by piece instead of into body; called
  /// with the head first (on_head) so the caller sees the length. Returning false stops the
  /// transfer (Cancelled).
  std::function<void(const ClientResponse&)> on_head;
  std::function<bool(std::string_view)> sink;
};

class Client {
 public:
  struct Options {
    std::string ca_file;  // PEM bundle to trust; empty: the system's CAs
    std::chrono::seconds timeout{30};
    std::string user_agent = "berth";
  };
  /// InvalidArgument when the CA file cannot be read.
  static Result<Client> create(Options opts);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  /// Unavailable when the server cannot be reached, TLS fails, or a step times out (the text
  /// says which); any HTTP status is a response.
  Result<ClientResponse> send(const ClientRequest& req);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::http
