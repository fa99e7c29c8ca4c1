// SPDX-License-Identifier: Apache-2.0
// Percent-encoding for paths and query strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth::url {

/// Decodes %XX escapes (and '+' as space in queries); nullopt on a malformed escape.
std::optional<std::string> decode(std::string_view in, bool plus_is_space);
/// Encodes everything but unreserved characters, '/' and ':'.
std::string encode(std::string_view in);

}  // namespace berth::url

namespace berth::b64 {

/// Standard base64 with padding.
std::string encode(std::string_view in);
/// Standard base64; nullopt when malformed.
std::optional<std::string> decode(std::string_view in);
/// base64url without padding (JWT).
std::string url_encode(std::string_view in);
std::optional<std::string> url_decode(std::string_view in);

}  // namespace berth::b64
