// SPDX-License-Identifier: Apache-2.0
#include "common/url.h"

#include <cctype>

namespace berth::url {

std::optional<std::string> decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      auto hexval = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      if (i + 2 >= in.size()) {
        return std::nullopt;
      }
      int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace berth::url

namespace berth::b64 {

namespace {
constexpr const char* kStd = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::optional<std::string> decode_with(std::string_view in, bool url) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == (url ? '-' : '+')) {
      v = 62;
    } else if (c == (url ? '_' : '/')) {
      v = 63;
    } else if (c == '=' && !url) {
      ++pad;
      continue;
    } else {
      return std::nullopt;
    }
    if (pad > 0) {
      return std::nullopt;  // data after padding
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (pad > 2 || bits >= 6) {
    return std::nullopt;
  }
  return out;
}

std::string encode_with(std::string_view in, bool url) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  const char* alphabet = kStd;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      char ch = alphabet[(acc >> bits) & 63];
      out.push_back(url && ch == '+' ? '-' : url && ch == '/' ? '_' : ch);
    }
  }
  if (bits > 0) {
    char ch = alphabet[(acc << (6 - bits)) & 63];
    out.push_back(url && ch == '+' ? '-' : url && ch == '/' ? '_' : ch);
  }
  if (!url) {
    while (out.size() % 4 != 0) {
      out.push_back('=');
    }
  }
  return out;
}
}  // namespace

std::string encode(std::string_view in) { return encode_with(in, false); }
std::optional<std::string> decode(std::string_view in) { return decode_with(in, false); }
std::string url_encode(std::string_view in) { return encode_with(in, true); }
std::optional<std::string> url_decode(std::string_view in) { return decode_with(in, true); }

}  // namespace berth::b64
