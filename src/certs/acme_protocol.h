// SPDX-License-Identifier: Apache-2.0
// Private to certs (tests and the fuzz target include it): the ACME (RFC 8555) resources the
// client reads — directory, problem documents, orders, authorizations — parsed from the
// server's JSON into plain values, and the rules that turn a problem into a berth Error.
// Pure: no I/O, no clock (callers pass "now"). Every parser takes untrusted text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace berth::certs::acme {

/// An RFC 7807 problem document as ACME uses it (RFC 8555 6.7).
struct Problem {
  std::string type;    // "urn:ietf:params:acme:error:rejectedIdentifier"
  std::string detail;  // the server's own words
  int status = 0;      // the HTTP status in the document (0 when absent)
  /// Per-identifier subproblems: "identifier: type: detail".
  std::vector<std::string> subproblems;
};

constexpr std::string_view kErrorPrefix = "urn:ietf:params:acme:error:";

/// A problem document from a JSON value; nullopt when it is not an object with a string type.
std::optional<Problem> problem_from_json(const Json& j);
/// The same from a response body (application/problem+json).
std::optional<Problem> parse_problem(std::string_view body);
/// "acme: TYPE: DETAIL" (+ "; SUBPROBLEM" each), with the Errc the type calls for:
/// serverInternal and HTTP 5xx → Unavailable, rateLimited → ResourceExhausted, everything
/// else the server refuses → FailedPrecondition.
Error problem_error(const Problem& p, unsigned http_status);
/// True for urn:ietf:params:acme:error:<name>.
bool is_problem(const Problem& p, std::string_view name);

struct Directory {
  std::string new_nonce, new_account, new_order;
  std::string terms_of_service;  // meta.termsOfService, may be empty
};
Result<Directory> parse_directory(std::string_view body);

struct Identifier {
  std::string type;  // "dns"
  std::string value;
};

struct Order {
  std::string status;  // pending, ready, processing, valid, invalid
  std::vector<Identifier> identifiers;
  std::vector<std::string> authorizations;  // URLs
  std::string finalize;                     // URL
  std::string certificate;                  // URL, once valid
  std::optional<Problem> error;
};
Result<Order> parse_order(std::string_view body);

struct ChallengeDoc {
  std::string type;  // "http-01", "dns-01", ...
  std::string url;
  std::string token;
  std::string status;
  std::optional<Problem> error;
};

struct Authorization {
  std::string status;  // pending, valid, invalid, deactivated, expired, revoked
  Identifier identifier;
  bool wildcard = false;
  std::vector<ChallengeDoc> challenges;
  /// The error of the challenge that failed, if any.
  const ChallengeDoc* failed() const;
  const ChallengeDoc* find(std::string_view type) const;
};
Result<Authorization> parse_authorization(std::string_view body);

/// The wait a Retry-After header asks for: delta-seconds or an HTTP-date (IMF-fixdate),
/// relative to now (unix seconds). nullopt when absent or unreadable; a date in the past is 0.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, int64_t now);

/// A URL split for an HTTPS request. Only https, a host (name, IPv4, or [IPv6]), optional
/// port (default 443), and a path (default "/").
struct Url {
  std::string host;  // without brackets
  std::string port;
  std::string target;  // path and query
};
Result<Url> parse_https_url(std::string_view url);

}  // namespace berth::certs::acme
