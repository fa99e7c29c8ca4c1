// SPDX-License-Identifier: Apache-2.0
// HTTP/1.1 message-framing rules that both berthd listeners (the API/registry server and the
// router) enforce on a request head before trusting its framing. A proxy and a server that
// disagree about where a body ends can be made to read a body as a second request (request
// smuggling), so anything ambiguous is refused and the connection closed (RFC 9112 §5.2,
// §6.1, §6.3).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth::http1 {

struct FramingError {
  unsigned status;      // 400, 431 or 501
  std::string message;  // for the response body
};

/// Checks a raw request head (request line, fields, up to and including the blank line):
///  - a field line starting with SP or HTAB (obs-fold) is 400;
///  - Transfer-Encoding (all its field lines together): chunked anywhere but last (so also
///    chunked twice) is 400, an empty list is 400; any coding other than chunked is 501.
///  - more than max_fields field lines (when not 0) is 431.
/// nullopt: the head may be trusted.
std::optional<FramingError> check_request_head(std::string_view head, size_t max_fields = 0);

/// False when bytes hold something no request head contains (control bytes other than CR, LF
/// and HTAB: a TLS ClientHello starts with 0x16). A listener answers 400 at once instead of
/// waiting for the rest of a head that will never come, so a client that tried TLS first
/// falls back to plain HTTP without waiting out its handshake timeout.
bool plausible_head_bytes(std::string_view bytes);

}  // namespace berth::http1
