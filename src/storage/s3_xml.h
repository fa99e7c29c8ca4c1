// SPDX-License-Identifier: Apache-2.0
// Private to src/storage: the XML of S3's answers as a small tree, parsed with expat. Element
// names lose their namespace prefix ("s3:Key" and "Key" are both "Key"); text is the
// concatenated character data of an element (entities decoded). Parsing is bounded: a body
// over kMaxS3XmlBytes or nested deeper than 32 elements is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::storage {

inline constexpr size_t kMaxS3XmlBytes = 16u << 20;

struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  /// The first child named `name`, or nullptr.
  const XmlNode* child(std::string_view child_name) const;
  /// The text of the first child named `name`, or "".
  std::string child_text(std::string_view child_name) const;
};

/// The document's root element; InvalidArgument when the body is not well-formed XML.
Result<XmlNode> parse_xml(std::string_view body);

/// "2026-12-06T08:50:00.312Z" -> unix seconds; 0 when malformed.
int64_t parse_iso8601(const std::string& s);

}  // namespace berth::storage
