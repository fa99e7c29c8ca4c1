// SPDX-License-Identifier: Apache-2.0
// HTTP/2 (step 2 of the TLS work): not yet offered. ALPN only selects h2 when
// RouterOptions::http2 is on, which stays off until this file serves it.
#include "router/h2.h"

namespace berth::router {

awaitable<void> serve_h2(std::shared_ptr<State>, ThreadCtx*, ClientStream stream, std::string) {
  beast::error_code ec;
  stream.close(ec);
  co_return;
}

}  // namespace berth::router
