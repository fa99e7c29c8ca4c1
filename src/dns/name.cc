// SPDX-License-Identifier: Apache-2.0
// Domain names: presentation text ⇄ wire form (RFC 1035 §3.1, §5.1), case-insensitive
// comparison and the small label walks the zone and answer code needs.
#include "dns/name.h"

#include <cstdint>

#include "common/ascii.h"

namespace berth::dns {

void append_ddd_escape(std::string& out, uint8_t c) {
  out += '\\';
  out += static_cast<char>('0' + c / 100);
  out += static_cast<char>('0' + (c / 10) % 10);
  out += static_cast<char>('0' + c % 10);
}

namespace {

Error name_error(std::string_view text, const std::string& why) {
  return make_error(Errc::InvalidArgument,
                    "name \"" + std::string(text.substr(0, 300)) + "\": " + why);
}

// Appends one label's bytes in presentation form, escaped the way dig prints names: the
// characters with a meaning in master files as \c, bytes outside printable ASCII as \DDD.
void label_to_text(std::string_view label, std::string& out) {
  for (char ch : label) {
    auto c = static_cast<uint8_t>(ch);
    switch (c) {
      case '.':
      case ';':
      case '\\':
      case '"':
      case '(':
      case ')':
      case '@':
      case '$':
        out += '\\';
        out += ch;
        continue;
      default:
        break;
    }
    if (c <= 0x20 || c >= 0x7f) {
      append_ddd_escape(out, c);
    } else {
      out += ch;
    }
  }
}

std::string to_text(std::string_view wire, bool trailing_dot) {
  std::string out;
  size_t i = 0;
  while (i < wire.size()) {
    auto len = static_cast<uint8_t>(wire[i]);
    if (len == 0 || len > kMaxLabelBytes || i + 1 + len > wire.size()) {
      break;
    }
    label_to_text(wire.substr(i + 1, len), out);
    out += '.';
    i += 1 + len;
  }
  if (out.empty()) {
    return trailing_dot ? "." : "";
  }
  if (!trailing_dot) {
    out.pop_back();
  }
  return out;
}

}  // namespace

Result<std::string> name_from_text(std::string_view text, std::string_view origin) {
  if (text.empty()) {
    return name_error(text, "empty name");
  }
  if (text == "@") {
    if (origin.empty()) {
      return std::string(1, '\0');
    }
    return std::string(origin);
  }
  if (text == ".") {
    return std::string(1, '\0');
  }
  std::string wire;
  std::string label;
  bool absolute = false;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '.') {
      if (label.empty()) {
        return name_error(text, "empty label");
      }
      wire += static_cast<char>(label.size());
      wire += label;
      label.clear();
      ++i;
      if (i == text.size()) {
        absolute = true;
      }
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) {
        return name_error(text, "bad escape: backslash at the end");
      }
      char n = text[i + 1];
      if (n >= '0' && n <= '9') {
        if (i + 3 >= text.size()) {
          return name_error(text, "bad escape: \\DDD needs three digits");
        }
        int v = 0;
        for (size_t k = 1; k <= 3; ++k) {
          char d = text[i + k];
          if (d < '0' || d > '9') {
            return name_error(text, "bad escape: \\DDD needs three digits");
          }
          v = v * 10 + (d - '0');
        }
        if (v > 255) {
          return name_error(text, "bad escape: \\DDD over 255");
        }
        label += static_cast<char>(v);
        i += 4;
      } else {
        label += n;
        i += 2;
      }
    } else {
      label += c;
      ++i;
    }
    if (label.size() > kMaxLabelBytes) {
      return name_error(text, "label over 63 bytes");
    }
    if (wire.size() + label.size() + 1 > kMaxNameBytes) {
      return name_error(text, "name over 255 bytes");
    }
  }
  if (!label.empty()) {
    wire += static_cast<char>(label.size());
    wire += label;
  }
  if (absolute || origin.empty()) {
    wire += '\0';
  } else {
    wire += origin;
  }
  if (wire.size() > kMaxNameBytes) {
    return name_error(text, "name over 255 bytes");
  }
  return wire;
}

std::string name_to_text(std::string_view wire) { return to_text(wire, true); }

std::string name_to_api(std::string_view wire) { return to_text(wire, false); }

std::string name_lower(std::string_view wire) {
  std::string out(wire);
  for (char& c : out) {
    c = ascii::lower(c);  // length bytes are ≤ 63, below 'A': lowering the whole string is safe
  }
  return out;
}

int name_labels(std::string_view wire) {
  int n = 0;
  size_t i = 0;
  while (i < wire.size() && wire[i] != '\0') {
    i += 1 + static_cast<uint8_t>(wire[i]);
    ++n;
  }
  return n;
}

std::string_view name_parent(std::string_view wire) {
  if (wire.empty() || wire[0] == '\0') {
    return wire;
  }
  size_t skip = 1 + static_cast<uint8_t>(wire[0]);
  if (skip >= wire.size()) {
    return wire.substr(wire.size() - 1);  // malformed: keep a view on the last byte
  }
  return wire.substr(skip);
}

bool name_is_within(std::string_view name, std::string_view ancestor) {
  if (ancestor.size() > name.size()) {
    return false;
  }
  size_t i = 0;
  while (name.size() - i > ancestor.size()) {
    if (name[i] == '\0') {
      return false;
    }
    i += 1 + static_cast<uint8_t>(name[i]);
    if (i > name.size()) {
      return false;  // malformed
    }
  }
  return name.size() - i == ancestor.size() && ascii::iequals(name.substr(i), ancestor);
}

bool name_equal(std::string_view a, std::string_view b) { return ascii::iequals(a, b); }

Result<size_t> name_check(std::string_view wire) {
  size_t i = 0;
  while (true) {
    if (i >= wire.size()) {
      return make_error(Errc::InvalidArgument, "name: missing the root label");
    }
    auto len = static_cast<uint8_t>(wire[i]);
    if (len == 0) {
      break;
    }
    if (len > kMaxLabelBytes) {
      return make_error(Errc::InvalidArgument, "name: label over 63 bytes");
    }
    i += 1 + len;
    if (i + 1 > kMaxNameBytes) {
      return make_error(Errc::InvalidArgument, "name: over 255 bytes");
    }
  }
  return i + 1;
}

}  // namespace berth::dns
