// SPDX-License-Identifier: Apache-2.0
// Domain names in wire form: a std::string holding length-prefixed labels and the final zero
// byte ("\3www\7example\3com\0"; the root is "\0"). At most 255 bytes, labels at most 63.
// Lookups use the lower-cased wire form as the key; answers echo the query's case.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace berth::dns {

inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxLabelBytes = 63;

/// Presentation text to wire form. Relative names (no trailing dot) get `origin` (wire form)
/// appended; "@" is the origin; an empty origin makes every name absolute. Backslash escapes
/// (\. and \DDD) as in RFC 1035 §5.1. InvalidArgument naming the rule broken (empty label,
/// label over 63 bytes, name over 255 bytes, bad escape).
Result<std::string> name_from_text(std::string_view text, std::string_view origin = {});
/// Wire form to absolute presentation text with the trailing dot ("www.example.com.", root ".").
/// Bytes outside [A-Za-z0-9-_*] and '.' inside a label are escaped.
std::string name_to_text(std::string_view wire);
/// Appends byte c as a master-file \DDD escape (three decimal digits).
void append_ddd_escape(std::string& out, uint8_t c);
/// The same without the trailing dot ("www.example.com", root ""): the API's form.
std::string name_to_api(std::string_view wire);
/// ASCII lower-case copy (the lookup key).
std::string name_lower(std::string_view wire);
/// Number of labels, not counting the root ("www.example.com" → 3).
int name_labels(std::string_view wire);
/// The name with its first label removed (the root stays the root).
std::string_view name_parent(std::string_view wire);
/// True when `name` equals `ancestor` or lies below it (case-insensitive).
bool name_is_within(std::string_view name, std::string_view ancestor);
/// Case-insensitive equality.
bool name_equal(std::string_view a, std::string_view b);
/// Checks a wire name: labels well-formed, ends in the root, ≤ 255 bytes. Returns its length.
Result<size_t> name_check(std::string_view wire);

}  // namespace berth::dns
