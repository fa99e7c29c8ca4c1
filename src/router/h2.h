// SPDX-License-Identifier: Apache-2.0
// Private to the router. HTTP/2 from clients (ALPN "h2"), over nghttp2 (h2.cc).
#pragma once

#include "router/state.h"
#include "router/stream.h"

namespace berth::router {

/// Serves one HTTP/2 connection until it closes: each stream is proxied to an upstream as an
/// HTTP/1.1 request (or an h2c stream, by the route's protocol).
awaitable<void> serve_h2(std::shared_ptr<State> st, ThreadCtx* tc, ClientStream stream,
                         std::string peer);

}  // namespace berth::router
