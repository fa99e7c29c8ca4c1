// SPDX-License-Identifier: Apache-2.0
// Private to the router. One HTTP/2 client stream as h2.cc keeps it, shared with the h2c
// upstream (h2c_upstream.cc), which proxies it to an instance over HTTP/2 cleartext.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/state.h"

namespace berth::router {

using H2Fields = std::vector<std::pair<std::string, std::string>>;

struct H2Stream {
  H2Stream(asio::io_context& io, int32_t i) : id(i), wake(io), room(io) {}
  int32_t id;
  std::string method, path, authority, scheme, host;
  H2Fields headers;  // regular fields, lower case
  size_t header_bytes = 0;
  bool started = false;
  // Request body from the client, not yet written upstream.
  std::string in;
  bool end_in = false;
  // Response body for the client, not yet taken by nghttp2.
  std::string out;
  size_t out_off = 0;
  bool end_out = false;
  H2Fields trailers_out;  // response trailers, sent after the body (h2c upstreams)
  bool deferred = false;
  bool wants_room = false;  // its proxy waits for the client to take response bytes
  bool closed = false;      // nghttp2 closed it (done, or reset by either side)
  bool hsts = false;        // the route's Strict-Transport-Security
  Signal wake;
  Signal room;  // the client took response bytes
  std::optional<tcp::socket> up;
  Watch watch;
};

// The client side of a stream, as the h2c upstream sees it (implemented by h2.cc).
class H2Downstream {
 public:
  virtual ~H2Downstream() = default;
  virtual bool dead() const = 0;
  // Sends the response head; body=false ends the stream with it (a trailers-only response).
  virtual void submit_head(H2Stream& s, unsigned status, const H2Fields& fields, bool body) = 0;
  // More of s.out (or s.end_out) is ready for the client.
  virtual void resume(H2Stream& s) = 0;
  // n request body bytes went upstream: the client's window opens again.
  virtual void consume(H2Stream& s, size_t n) = 0;
  virtual void reset(H2Stream& s, uint32_t error_code) = 0;
};

struct H2cResult {
  unsigned status = 0;  // 0: no response head came (502), 1: none in time (504)
  uint64_t bytes = 0;
};

// The request's fields for the instance: connection-specific ones dropped, X-Forwarded-*
// and X-Request-Id added.
H2Fields h2c_request_fields(const H2Stream& s, ThreadCtx& tc, std::string_view peer,
                            std::string_view authority);

// Proxies stream s to upstream u over HTTP/2 cleartext with prior knowledge, on one of this
// thread's connections to u, shared with other streams (h2c_upstream.cc). fields: the
// request's regular header fields to forward.
awaitable<H2cResult> proxy_h2c(std::shared_ptr<State> st, ThreadCtx* tc, const RouterOptions* opts,
                               Upstream* u, H2Stream* s, H2Downstream* down, H2Fields fields);

}  // namespace berth::router
