// SPDX-License-Identifier: Apache-2.0
// ASCII helpers for protocol text (HTTP field names, DNS names and mnemonics, hex digests):
// locale-free, byte by byte, so a non-ASCII byte is never folded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace berth::ascii {

/// 'A'..'Z' to 'a'..'z'; every other byte unchanged.
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// A copy with 'A'..'Z' lowered (lower) or 'a'..'z' raised (upper); other bytes unchanged.
std::string lower(std::string_view s);
std::string upper(std::string_view s);

/// s without leading and trailing spaces, tabs and carriage returns (HTTP's optional
/// whitespace, and the CR of a CRLF line end).
std::string_view trim(std::string_view s);

/// Equal ignoring ASCII case.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

/// The value of a hex digit (either case), or -1.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// Levenshtein distance (insertions, deletions, substitutions of one byte each): how far a
/// mistyped word is from a known one, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace berth::ascii
