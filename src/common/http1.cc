// SPDX-License-Identifier: Apache-2.0
#include "common/http1.h"

#include <vector>

#include "common/ascii.h"

namespace berth::http1 {

namespace {

// Appends the comma-separated codings of one Transfer-Encoding value, without parameters
// (";q=..." is not allowed on codings in a request, but is not ours to police).
void split_codings(std::string_view v, std::vector<std::string_view>& out) {
  while (true) {
    auto comma = v.find(',');
    std::string_view item = ascii::trim(v.substr(0, comma));
    auto semi = item.find(';');
    item = ascii::trim(item.substr(0, semi));
    out.push_back(item);
    if (comma == std::string_view::npos) {
      break;
    }
    v.remove_prefix(comma + 1);
  }
}

}  // namespace

std::optional<FramingError> check_request_head(std::string_view head, size_t max_fields) {
  std::vector<std::string_view> codings;
  bool saw_te = false;
  size_t fields = 0;
  auto eol = head.find('\n');
  if (eol == std::string_view::npos) {
    return std::nullopt;  // no field lines
  }
  head.remove_prefix(eol + 1);  // the request line
  while (!head.empty()) {
    eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      break;  // end of the head
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return FramingError{400, "obsolete line folding (obs-fold) in a header field"};
    }
    if (max_fields != 0 && ++fields > max_fields) {
      return FramingError{431, "more than " + std::to_string(max_fields) + " header fields"};
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;  // the parser refuses it
    }
    if (ascii::iequals(line.substr(0, colon), "transfer-encoding")) {
      saw_te = true;
      split_codings(line.substr(colon + 1), codings);
    }
  }
  if (!saw_te) {
    return std::nullopt;
  }
  std::erase_if(codings, [](std::string_view c) { return c.empty(); });
  if (codings.empty()) {
    return FramingError{400, "empty Transfer-Encoding"};
  }
  for (size_t i = 0; i < codings.size(); ++i) {
    if (ascii::iequals(codings[i], "chunked")) {
      if (i + 1 != codings.size()) {
        return FramingError{400, "Transfer-Encoding: chunked must be the last coding"};
      }
    }
  }
  for (auto c : codings) {
    if (!ascii::iequals(c, "chunked")) {
      return FramingError{
          501, "unsupported transfer coding '" + std::string(c) + "' (only chunked is supported)"};
    }
  }
  return std::nullopt;
}

bool plausible_head_bytes(std::string_view bytes) {
  for (unsigned char c : bytes) {
    if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace berth::http1
