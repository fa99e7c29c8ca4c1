// SPDX-License-Identifier: Apache-2.0
// Pure pieces of the router (private to src/router, tested in tests/unit/router_test.cc):
// host normalization, the least-outstanding pick, hop-by-hop header rules, X-Forwarded-For.
// No sockets, no clock, no allocation unless a function returns a std::string.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/router.h"

namespace berth::router::detail {

/// Lower-cases a Host header value and strips its port (and one trailing dot) into buf.
/// "[::1]:80" keeps the brackets: "[::1]". Returns a view into buf, or an empty view when the
/// host does not fit or is not a plausible host name (spaces, control characters).
std::string_view normalize_host(std::string_view host, char* buf, size_t cap);

/// Index of the upstream with the fewest requests in flight. Scanning starts at start % size,
/// so equal loads are broken round-robin when the caller advances start. ups must not be empty.
size_t pick_least_outstanding(const std::vector<std::shared_ptr<Upstream>>& ups, size_t start);

/// True for headers that describe one hop and are never forwarded as received: Connection,
/// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade (the proxy re-adds Upgrade for
/// upgrades and re-frames bodies itself). Case-insensitive.
bool is_hop_by_hop(std::string_view name);

/// True when the comma-separated token list (a Connection header value) names token.
bool token_list_contains(std::string_view list, std::string_view token);

/// Appends to out the X-Forwarded-For value to send: the client's own value (if any, trimmed)
/// followed by peer.
void append_forwarded_for(std::string& out, std::string_view existing, std::string_view peer);

/// "1xx".."5xx" (anything else counts as "5xx").
const char* status_class(unsigned status);

/// RFC 9110 idempotent methods: a failed attempt may be repeated.
bool idempotent_method(std::string_view method);

/// False when a Connection header value names no field besides the ones every proxy drops
/// anyway (keep-alive, close, upgrade): then no field needs a token_list_contains() check.
bool connection_names_fields(std::string_view connection);

/// Position just past the empty line that ends an HTTP head in [p, p+n), or 0 while it is
/// incomplete. Lines may end in CRLF or in a bare LF (as some CGI scripts send); bare is set
/// when a bare LF is seen. Scanning resumes at from: pass the previous n minus 2 (or 0).
size_t find_head_end(const char* p, size_t n, size_t from, bool& bare);

/// Copies the head [p, p+n) into out with every bare LF turned into CRLF.
void crlf_line_ends(const char* p, size_t n, std::string& out);

/// ACME HTTP-01 (RFC 8555 8.3): where challenges are asked for on plain HTTP.
constexpr std::string_view kAcmeChallengePrefix = "/.well-known/acme-challenge/";
/// True when a request target asks for an ACME HTTP-01 token (never redirected to HTTPS).
inline bool is_acme_challenge(std::string_view target) {
  return target.size() > kAcmeChallengePrefix.size() &&
         target.substr(0, kAcmeChallengePrefix.size()) == kAcmeChallengePrefix;
}

}  // namespace berth::router::detail
