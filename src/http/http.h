// SPDX-License-Identifier: Apache-2.0
// The HTTP listener shared by the registry (/v2/), the control API (/api/v1/) and later the
// console. One coroutine per connection on its own strand; the handler gets an Exchange with
// the request head, a streaming body reader and response writers (string bodies, or a file
// sent with sendfile(2)). Every read has a timeout and every body a size limit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/listener.h"
#include "common/result.h"
#include "tls/tls.h"

namespace berth::http {

/// Who is asking and from where; passed explicitly (coroutines hop threads).
struct RequestContext {
  std::string request_id;
  std::string peer;
  std::string principal = "anonymous";
  bool authenticated = false;
  /// The access key the request authenticated with, directly (HTTP Basic) or through the
  /// console session it signed in with ("" otherwise).
  std::string key_id;
  /// The console session the request came with ("" for keys and tokens).
  std::string session;
  /// A registry token limits the request to its grants ("repository:web/app:pull").
  bool token_scoped = false;
  std::vector<std::string> grants;
  /// "http://HOST:PORT" as the client addressed us (for auth challenges).
  std::string base_url;
};

/// A response with a small in-memory body.
struct Response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool head_only = false;  // HEAD: send Content-Length of `content_length` but no body
  std::optional<uint64_t> content_length;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual bhttp::verb method() const = 0;
  virtual const std::string& method_string() const = 0;
  /// Decoded path without the query ("/v2/web/app/blobs/uploads/").
  virtual const std::string& path() const = 0;
  /// A decoded query parameter, or nullopt when absent.
  virtual std::optional<std::string> query(const std::string& name) const = 0;
  /// Every value of a repeated query parameter, in order.
  virtual std::vector<std::string> query_all(const std::string& name) const = 0;
  /// A request header value ("" when absent).
  virtual std::string header(bhttp::field f) const = 0;
  virtual std::string header(const std::string& name) const = 0;
  /// Content-Length when the request declares one.
  virtual std::optional<uint64_t> content_length() const = 0;
  virtual bool chunked() const = 0;

  /// Reads up to n body bytes into buf; 0 means the body is complete. Errors: Cancelled on a
  /// client that went away or timed out; InvalidArgument on a malformed body.
  virtual awaitable<Result<size_t>> read_some(char* buf, size_t n) = 0;
  /// Reads the whole body, failing with ResourceExhausted past limit bytes.
  awaitable<Result<std::string>> read_all(size_t limit);

  virtual awaitable<void> send(Response res) = 0;
  /// Sends head then `length` bytes of fd from `offset` (sendfile). fd stays the caller's.
  virtual awaitable<void> send_file(Response head, int fd, uint64_t offset, uint64_t length) = 0;

  /// A response whose body is produced while it is sent (a followed log, a git pack, a blob
  /// fetched from an upstream), with chunked transfer encoding unless head.content_length is
  /// set (then exactly that many bytes must follow). send_head() writes the status and headers
  /// (a Content-Length or Transfer-Encoding header in head is dropped), write_chunk() one piece
  /// of the body (empty data is skipped), end_body() the terminating chunk. Each returns false
  /// once the client has gone (then stop producing). A handler that returns without end_body()
  /// leaves the body truncated and the connection is closed, so the client sees the failure.
  /// An HTTP/1.0 client gets an unsized body unframed and the connection closes at the end.
  virtual awaitable<bool> send_head(Response head) = 0;
  virtual awaitable<bool> write_chunk(std::string data) = 0;
  virtual awaitable<bool> end_body() = 0;
  /// Body bytes straight from a file (sendfile on plain TCP), for a send_head() response with
  /// a content_length only. False once the client has gone (or for a chunked response).
  virtual awaitable<bool> write_file(int fd, uint64_t offset, uint64_t length) = 0;

  virtual bool responded() const = 0;
  RequestContext& context() { return ctx_; }
  const RequestContext& context() const { return ctx_; }

 protected:
  RequestContext ctx_;
};

using Handler = std::function<awaitable<void>(Exchange&)>;

struct ServerOptions {
  /// From the first byte of a request head (or from accept, for a connection's first
  /// request) until its blank line: a client trickling a head (slowloris) is dropped.
  std::chrono::seconds header_timeout{30};
  /// Between requests on a kept-alive connection.
  std::chrono::seconds keepalive_timeout{60};
  /// A request body that stops arriving, or a client that stops reading the response, for
  /// this long is dropped (and its upload with it).
  std::chrono::seconds body_timeout{60};
  size_t max_header_bytes = 64 * 1024;
  size_t max_header_fields = 100;  // past it: 431
  net::ConnectionLimits limits{4096, 256};
  bool access_log = true;
  /// Both set: the listener speaks TLS only, with this certificate for every name that no
  /// published certificate (publish_certificates) matches.
  std::string tls_cert_file;
  std::string tls_key_file;
};

/// Accepts on the first context and hands connections round-robin to all of them. Each
/// context is meant to be run by exactly one thread: a connection's coroutine then never
/// needs a strand, and no completion crosses threads (the biggest cost under load).
class Server {
 public:
  Server(std::vector<asio::io_context*> contexts, Handler handler, ServerOptions opts);
  ~Server();

  /// Binds and listens; returns the bound port (useful with port 0).
  Result<uint16_t> listen(const std::string& host, uint16_t port);
  /// Starts accepting on the io_context.
  void start();
  /// Stops accepting; connections finish their current request and close.
  void stop();
  /// Certificates for names clients reach this listener by (berth domain link --registry),
  /// chosen by SNI. While any is published, a connection whose first bytes are a TLS
  /// ClientHello gets TLS and any other plain HTTP, on the same port. Replaces the previous
  /// set; open connections keep theirs. InvalidArgument naming what is wrong. Thread-safe.
  Status publish_certificates(std::vector<tls::Certificate> certs);
  /// Connections open now.
  size_t active_connections() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace berth::http
