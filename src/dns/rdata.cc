// SPDX-License-Identifier: Apache-2.0
// Record data per type: presentation text ⇄ uncompressed wire form, printed the way dig
// prints it, plus the RFC 3597 generic form ("\# 4 C0000201") for every other type.
#include "dns/rdata.h"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

#include "common/ascii.h"
#include "dns/name.h"

namespace berth::dns {

namespace {

struct TypeName {
  uint16_t type;
  const char* text;
};

constexpr TypeName kTypeNames[] = {
    {type::A, "A"},
    {type::NS, "NS"},
    {type::CNAME, "CNAME"},
    {type::SOA, "SOA"},
    {type::PTR, "PTR"},
    {13, "HINFO"},
    {type::MX, "MX"},
    {type::TXT, "TXT"},
    {type::AAAA, "AAAA"},
    {type::SRV, "SRV"},
    {35, "NAPTR"},
    {39, "DNAME"},
    {type::OPT, "OPT"},
    {43, "DS"},
    {44, "SSHFP"},
    {46, "RRSIG"},
    {47, "NSEC"},
    {48, "DNSKEY"},
    {50, "NSEC3"},
    {52, "TLSA"},
    {64, "SVCB"},
    {65, "HTTPS"},
    {99, "SPF"},
    {type::TSIG, "TSIG"},
    {type::IXFR, "IXFR"},
    {type::AXFR, "AXFR"},
    {type::ANY, "ANY"},
    {type::CAA, "CAA"},
    {type::ALIAS, "ALIAS"},
};

Error bad_value(uint16_t t, std::string_view text, const std::string& why) {
  std::string shown(text.substr(0, 80));
  if (text.size() > 80) {
    shown += "...";
  }
  return make_error(Errc::InvalidArgument, type_to_text(t) + " \"" + shown + "\": " + why);
}

Error bad_wire(uint16_t t, const std::string& why) {
  return make_error(Errc::InvalidArgument, type_to_text(t) + " rdata: " + why);
}

void put32(std::string& out, uint32_t v) {
  put16(out, v >> 16);
  put16(out, v & 0xFFFF);
}

uint32_t get16(std::string_view s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 8) |
         static_cast<uint8_t>(s[at + 1]);
}

uint32_t get32(std::string_view s, size_t at) { return (get16(s, at) << 16) | get16(s, at + 2); }

// ---- Presentation tokens --------------------------------------------------------------------

struct Token {
  std::string_view raw;  // without the quotes; escapes left as written
  bool quoted = false;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Splits rdata text on blanks; "..." is one token (blanks and escaped quotes inside).
Result<std::vector<Token>> tokenize(uint16_t t, std::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  while (true) {
    while (i < text.size() && is_space(text[i])) {
      ++i;
    }
    if (i >= text.size()) {
      break;
    }
    if (text[i] == '"') {
      size_t start = ++i;
      while (i < text.size() && text[i] != '"') {
        i += text[i] == '\\' ? 2 : 1;
      }
      if (i >= text.size()) {
        return bad_value(t, text, "unterminated quoted string");
      }
      out.push_back({text.substr(start, i - start), true});
      ++i;
      continue;
    }
    size_t start = i;
    while (i < text.size() && !is_space(text[i]) && text[i] != '"') {
      i += text[i] == '\\' ? 2 : 1;
    }
    i = std::min(i, text.size());
    out.push_back({text.substr(start, i - start), false});
  }
  return out;
}

// A <character-string>'s bytes from its token: \DDD and \c escapes resolved.
Result<std::string> decode_string(uint16_t t, std::string_view all, std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
      continue;
    }
    if (i + 1 >= raw.size()) {
      return bad_value(t, all, "bad escape: backslash at the end");
    }
    char n = raw[i + 1];
    if (n >= '0' && n <= '9') {
      if (i + 3 >= raw.size()) {
        return bad_value(t, all, "bad escape: \\DDD needs three digits");
      }
      int v = 0;
      for (size_t k = 1; k <= 3; ++k) {
        char d = raw[i + k];
        if (d < '0' || d > '9') {
          return bad_value(t, all, "bad escape: \\DDD needs three digits");
        }
        v = v * 10 + (d - '0');
      }
      if (v > 255) {
        return bad_value(t, all, "bad escape: \\DDD over 255");
      }
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += n;
      i += 1;
    }
  }
  return out;
}

// A <character-string> quoted as dig prints it: '"' and '\' escaped, other bytes outside
// printable ASCII as \DDD.
void quote_string(std::string_view s, std::string& out) {
  out += '"';
  for (char ch : s) {
    auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      append_ddd_escape(out, c);
    } else {
      out += ch;
    }
  }
  out += '"';
}

bool parse_uint(std::string_view s, uint64_t max, uint64_t& v) {
  if (s.empty() || s.size() > 20) {
    return false;
  }
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > max) {
      return false;
    }
  }
  return true;
}

// An SOA timer: seconds, or BIND's units (1w2d3h4m5s, case-insensitive).
bool parse_duration(std::string_view s, uint32_t& v) {
  uint64_t n = 0;
  if (parse_uint(s, 0xFFFFFFFFu, n)) {
    v = static_cast<uint32_t>(n);
    return true;
  }
  uint64_t total = 0;
  uint64_t cur = 0;
  bool digits = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      cur = cur * 10 + static_cast<uint64_t>(c - '0');
      digits = true;
      if (cur > 0xFFFFFFFFu) {
        return false;
      }
      continue;
    }
    uint64_t mult = 0;
    switch (c | 0x20) {
      case 'w':
        mult = 604800;
        break;
      case 'd':
        mult = 86400;
        break;
      case 'h':
        mult = 3600;
        break;
      case 'm':
        mult = 60;
        break;
      case 's':
        mult = 1;
        break;
      default:
        return false;
    }
    if (!digits) {
      return false;
    }
    total += cur * mult;
    if (total > 0xFFFFFFFFu) {
      return false;
    }
    cur = 0;
    digits = false;
  }
  if (digits) {
    return false;  // a unit form must end in a unit
  }
  v = static_cast<uint32_t>(total);
  return true;
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// ---- Wire checks ----------------------------------------------------------------------------

// A name at `at` inside rdata; returns its end.
Result<size_t> check_name_at(uint16_t t, std::string_view rdata, size_t at) {
  if (at > rdata.size()) {
    return bad_wire(t, "truncated");
  }
  auto n = name_check(rdata.substr(at));
  if (!n) {
    return bad_wire(t, n.error().message());
  }
  return at + *n;
}

Status expect_end(uint16_t t, std::string_view rdata, size_t at) {
  if (at != rdata.size()) {
    return bad_wire(t, at < rdata.size() ? "trailing bytes" : "truncated");
  }
  return ok();
}

// The RFC 3597 form: "\# <length> <hex>..." (hex may be split by blanks).
Result<std::string> generic_from_text(uint16_t t, std::string_view text,
                                      const std::vector<Token>& tok) {
  uint64_t len = 0;
  if (tok.size() < 2 || !parse_uint(tok[1].raw, 65535, len)) {
    return bad_value(t, text, "\\# needs a length 0..65535");
  }
  std::string hex;
  for (size_t i = 2; i < tok.size(); ++i) {
    if (tok[i].quoted) {
      return bad_value(t, text, "\\# data must be hex");
    }
    hex += tok[i].raw;
  }
  if (hex.size() % 2 != 0) {
    return bad_value(t, text, "\\# data has an odd number of hex digits");
  }
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = ascii::hex_digit(hex[i]);
    int lo = ascii::hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return bad_value(t, text, "\\# data must be hex");
    }
    out += static_cast<char>(hi * 16 + lo);
  }
  if (out.size() != len) {
    return bad_value(t, text, "\\# length does not match the data");
  }
  auto st = rdata_check(t, out);
  if (!st) {
    return bad_value(t, text, st.error().message());
  }
  return out;
}

std::string generic_to_text(std::string_view rdata) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\\# " + std::to_string(rdata.size());
  if (!rdata.empty()) {
    out += ' ';
    for (char ch : rdata) {
      auto c = static_cast<uint8_t>(ch);
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

}  // namespace

std::string type_to_text(uint16_t t) {
  for (const auto& tn : kTypeNames) {
    if (tn.type == t) {
      return tn.text;
    }
  }
  return "TYPE" + std::to_string(t);
}

Result<uint16_t> type_from_text(std::string_view text) {
  for (const auto& tn : kTypeNames) {
    if (ascii::iequals(text, tn.text)) {
      return tn.type;
    }
  }
  uint64_t v = 0;
  if (text.size() > 4 && ascii::iequals(text.substr(0, 4), "TYPE") &&
      parse_uint(text.substr(4), 65535, v)) {
    return static_cast<uint16_t>(v);
  }
  return make_error(Errc::InvalidArgument,
                    "unknown record type \"" + std::string(text.substr(0, 40)) + "\"");
}

bool type_supported(uint16_t t) {
  switch (t) {
    case type::SOA:
    case type::NS:
    case type::A:
    case type::AAAA:
    case type::CNAME:
    case type::MX:
    case type::TXT:
    case type::SRV:
    case type::CAA:
    case type::PTR:
    case type::ALIAS:
      return true;
    default:
      return false;
  }
}

bool type_compresses(uint16_t t) {
  return t == type::NS || t == type::CNAME || t == type::SOA || t == type::MX || t == type::PTR;
}

Status rdata_check(uint16_t t, std::string_view rdata) {
  if (rdata.size() > 65535) {
    return bad_wire(t, "over 65535 bytes");
  }
  switch (t) {
    case type::A:
      return rdata.size() == 4 ? ok() : bad_wire(t, "must be 4 bytes");
    case type::AAAA:
      return rdata.size() == 16 ? ok() : bad_wire(t, "must be 16 bytes");
    case type::NS:
    case type::CNAME:
    case type::PTR:
    case type::ALIAS: {
      BERTH_ASSIGN_OR_RETURN(size_t end, check_name_at(t, rdata, 0));
      return expect_end(t, rdata, end);
    }
    case type::SOA: {
      BERTH_ASSIGN_OR_RETURN(size_t m, check_name_at(t, rdata, 0));
      BERTH_ASSIGN_OR_RETURN(size_t r, check_name_at(t, rdata, m));
      return expect_end(t, rdata, r + 20);
    }
    case type::MX: {
      BERTH_ASSIGN_OR_RETURN(size_t end, check_name_at(t, rdata, 2));
      return expect_end(t, rdata, end);
    }
    case type::SRV: {
      BERTH_ASSIGN_OR_RETURN(size_t end, check_name_at(t, rdata, 6));
      return expect_end(t, rdata, end);
    }
    case type::TXT: {
      if (rdata.empty()) {
        return bad_wire(t, "no strings");
      }
      size_t i = 0;
      while (i < rdata.size()) {
        i += 1 + static_cast<uint8_t>(rdata[i]);
      }
      return expect_end(t, rdata, i);
    }
    case type::CAA: {
      if (rdata.size() < 2) {
        return bad_wire(t, "truncated");
      }
      size_t tag_len = static_cast<uint8_t>(rdata[1]);
      if (tag_len == 0 || tag_len > 15 || 2 + tag_len > rdata.size()) {
        return bad_wire(t, "tag must be 1..15 bytes");
      }
      for (char c : rdata.substr(2, tag_len)) {
        if (!is_alnum(c)) {
          return bad_wire(t, "tag must be letters and digits");
        }
      }
      return ok();
    }
    default:
      return ok();
  }
}

Result<std::string> rdata_from_text(uint16_t t, std::string_view text, std::string_view origin) {
  BERTH_ASSIGN_OR_RETURN(auto tok, tokenize(t, text));
  if (tok.empty()) {
    return bad_value(t, text, "empty value");
  }
  if (!tok[0].quoted && tok[0].raw == "\\#") {
    return generic_from_text(t, text, tok);
  }
  auto want = [&](size_t n) -> Status {
    if (tok.size() != n) {
      return bad_value(t, text,
                       "expected " + std::to_string(n) + " field" + (n > 1 ? "s" : "") + ", got " +
                           std::to_string(tok.size()));
    }
    return ok();
  };
  auto name = [&](size_t i, std::string& out, const char* what) -> Status {
    auto n = name_from_text(tok[i].raw, origin);
    if (!n) {
      return bad_value(t, text, std::string(what) + ": " + n.error().message());
    }
    out += *n;
    return ok();
  };
  auto number = [&](size_t i, uint64_t max, const char* what, uint64_t& v) -> Status {
    if (tok[i].quoted || !parse_uint(tok[i].raw, max, v)) {
      return bad_value(t, text, std::string(what) + " must be a number 0.." + std::to_string(max));
    }
    return ok();
  };
  std::string out;
  switch (t) {
    case type::A:
    case type::AAAA: {
      BERTH_TRY(want(1));
      std::string addr(tok[0].raw);
      unsigned char buf[16];
      int af = t == type::A ? AF_INET : AF_INET6;
      if (tok[0].quoted || inet_pton(af, addr.c_str(), buf) != 1) {
        return bad_value(t, text, t == type::A ? "not an IPv4 address" : "not an IPv6 address");
      }
      out.assign(reinterpret_cast<const char*>(buf), t == type::A ? 4 : 16);
      return out;
    }
    case type::NS:
    case type::CNAME:
    case type::PTR:
    case type::ALIAS:
      BERTH_TRY(want(1));
      BERTH_TRY(name(0, out, "target"));
      return out;
    case type::SOA: {
      BERTH_TRY(want(7));
      BERTH_TRY(name(0, out, "mname"));
      BERTH_TRY(name(1, out, "rname"));
      uint64_t serial = 0;
      BERTH_TRY(number(2, 0xFFFFFFFFu, "serial", serial));
      put32(out, static_cast<uint32_t>(serial));
      static constexpr const char* kTimers[] = {"refresh", "retry", "expire", "minimum"};
      for (size_t i = 0; i < 4; ++i) {
        uint32_t v = 0;
        if (tok[3 + i].quoted || !parse_duration(tok[3 + i].raw, v)) {
          return bad_value(t, text, std::string(kTimers[i]) + " must be a number 0..4294967295");
        }
        put32(out, v);
      }
      return out;
    }
    case type::MX: {
      BERTH_TRY(want(2));
      uint64_t pref = 0;
      BERTH_TRY(number(0, 65535, "preference", pref));
      put16(out, static_cast<uint32_t>(pref));
      BERTH_TRY(name(1, out, "exchange"));
      return out;
    }
    case type::SRV: {
      BERTH_TRY(want(4));
      static constexpr const char* kFields[] = {"priority", "weight", "port"};
      for (size_t i = 0; i < 3; ++i) {
        uint64_t v = 0;
        BERTH_TRY(number(i, 65535, kFields[i], v));
        put16(out, static_cast<uint32_t>(v));
      }
      BERTH_TRY(name(3, out, "target"));
      return out;
    }
    case type::TXT: {
      for (const auto& k : tok) {
        BERTH_ASSIGN_OR_RETURN(auto s, decode_string(t, text, k.raw));
        if (s.size() > 255) {
          return bad_value(t, text, "TXT string over 255 bytes");
        }
        out += static_cast<char>(s.size());
        out += s;
      }
      return out;
    }
    case type::CAA: {
      BERTH_TRY(want(3));
      uint64_t flags = 0;
      BERTH_TRY(number(0, 255, "flags", flags));
      std::string_view tag = tok[1].raw;
      if (tok[1].quoted || tag.empty() || tag.size() > 15) {
        return bad_value(t, text, "tag must be 1..15 letters and digits");
      }
      for (char c : tag) {
        if (!is_alnum(c)) {
          return bad_value(t, text, "tag must be 1..15 letters and digits");
        }
      }
      BERTH_ASSIGN_OR_RETURN(auto value, decode_string(t, text, tok[2].raw));
      out += static_cast<char>(flags);
      out += static_cast<char>(tag.size());
      out += tag;
      out += value;
      if (out.size() > 65535) {
        return bad_value(t, text, "value too long");
      }
      return out;
    }
    default:
      return bad_value(t, text, "unsupported type: use the \\# <length> <hex> form");
  }
}

Result<std::string> rdata_to_text(uint16_t t, std::string_view rdata) {
  if (!type_supported(t)) {
    return generic_to_text(rdata);
  }
  BERTH_TRY(rdata_check(t, rdata));
  switch (t) {
    case type::A:
    case type::AAAA: {
      char buf[INET6_ADDRSTRLEN];
      int af = t == type::A ? AF_INET : AF_INET6;
      if (inet_ntop(af, rdata.data(), buf, sizeof buf) == nullptr) {
        return bad_wire(t, "unprintable address");
      }
      return std::string(buf);
    }
    case type::NS:
    case type::CNAME:
    case type::PTR:
    case type::ALIAS:
      return name_to_text(rdata);
    case type::SOA: {
      size_t m = *name_check(rdata);
      size_t r = m + *name_check(rdata.substr(m));
      std::string out =
          name_to_text(rdata.substr(0, m)) + " " + name_to_text(rdata.substr(m, r - m));
      for (size_t i = 0; i < 5; ++i) {
        out += ' ';
        out += std::to_string(get32(rdata, r + 4 * i));
      }
      return out;
    }
    case type::MX:
      return std::to_string(get16(rdata, 0)) + " " + name_to_text(rdata.substr(2));
    case type::SRV:
      return std::to_string(get16(rdata, 0)) + " " + std::to_string(get16(rdata, 2)) + " " +
             std::to_string(get16(rdata, 4)) + " " + name_to_text(rdata.substr(6));
    case type::TXT: {
      std::string out;
      size_t i = 0;
      while (i < rdata.size()) {
        size_t len = static_cast<uint8_t>(rdata[i]);
        if (!out.empty()) {
          out += ' ';
        }
        quote_string(rdata.substr(i + 1, len), out);
        i += 1 + len;
      }
      return out;
    }
    case type::CAA: {
      size_t tag_len = static_cast<uint8_t>(rdata[1]);
      std::string out = std::to_string(static_cast<uint8_t>(rdata[0])) + " ";
      out += rdata.substr(2, tag_len);
      out += ' ';
      quote_string(rdata.substr(2 + tag_len), out);
      return out;
    }
    default:
      return generic_to_text(rdata);
  }
}

}  // namespace berth::dns
