// SPDX-License-Identifier: Apache-2.0
// BIND master files (RFC 1035 §5) in and out. parse_zone_file lexes the text into entries
// (one per logical line: parentheses join physical lines, comments dropped), then turns each
// entry into a directive or a record, groups records into sets and validates the zone.
// export_zone_file writes the canonical form: $ORIGIN, $TTL, the SOA, then every set in
// canonical order in fixed columns, so that export → import → export is byte-identical.
//
// berth's extensions, both ignored or refused by other servers:
//  - ALIAS records: "www 60 IN ALIAS target.example.com." and "@ 60 IN ALIAS service:web";
//  - routing policy in a trailing comment: "www 60 IN A 192.0.2.1 ; berth: set=eu weight=10
//    health=hc1" (also failover=PRIMARY|SECONDARY and multivalue; zonefile_policy.cc). Other
//    comments are ignored.
// Pure: no I/O; $INCLUDE is refused.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/ascii.h"
#include "dns/dns.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/zonefile_internal.h"

namespace berth::dns {

using ascii::upper;
namespace {

using zonefile::parse_berth_comment;
using zonefile::Policy;
using zonefile::policy_comment;

constexpr uint32_t kMaxTtl = 2147483647;  // RFC 2181 §8
constexpr uint32_t kDefaultExportTtl = 300;
constexpr std::string_view kBerthTag = "berth:";
constexpr std::string_view kServicePrefix = "service:";
// Export columns: owner, TTL, class, type; wider fields push the line right by one space.
constexpr size_t kOwnerWidth = 23, kTtlWidth = 7, kTypeWidth = 6;

Error line_error(int line, std::string_view what) {
  return make_error(Errc::InvalidArgument, fmt::format("line {}: {}", line, what));
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool is_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7f;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Input echoed in an error message: at most 80 bytes of it.
std::string shorten(std::string_view s) {
  return s.size() <= 80 ? std::string(s) : std::string(s.substr(0, 77)) + "...";
}

// ---- Lexing -------------------------------------------------------------------------------

struct Token {
  std::string text;  // as written: quotes and backslash escapes kept
  bool quoted = false;
};

// One logical line: a directive or a record, possibly spanning lines inside parentheses.
struct Entry {
  std::vector<Token> tokens;
  int line = 0;              // where it starts
  bool blank_owner = false;  // the first line starts with a blank: the previous owner
  std::string berth;         // text after "; berth:", if such a comment was in it
  int berth_line = 0;
};

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<std::vector<Entry>> run() {
    bool line_start = true;
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (line_start) {
        line_start = false;
        if (depth_ == 0) {
          cur_ = Entry{};
          cur_.line = line_;
          cur_.blank_owner = c == ' ' || c == '\t';
        }
      }
      if (c == '\n') {
        ++line_;
        ++i_;
        line_start = true;
        if (depth_ == 0) {
          finish();
        }
      } else if (is_blank(c)) {
        ++i_;
      } else if (c == ';') {
        BERTH_TRY(comment());
      } else if (c == '(') {
        if (depth_ > 0) {
          return line_error(line_, "'(' inside parentheses (they do not nest)");
        }
        depth_ = 1;
        paren_line_ = line_;
        ++i_;
      } else if (c == ')') {
        if (depth_ == 0) {
          return line_error(line_, "')' without an opening '('");
        }
        depth_ = 0;
        ++i_;
      } else if (c == '"') {
        BERTH_TRY(token(true));
      } else {
        BERTH_TRY(token(false));
      }
    }
    if (depth_ > 0) {
      return line_error(paren_line_, "'(' is never closed");
    }
    finish();
    return std::move(out_);
  }

  /// The last line that has text (the "no SOA" error points there).
  int last_line() const { return text_.ends_with('\n') && line_ > 1 ? line_ - 1 : line_; }

 private:
  void finish() {
    if (!cur_.tokens.empty() || !cur_.berth.empty()) {
      out_.push_back(std::move(cur_));
    }
    cur_ = Entry{};
  }

  Error control_error() const {
    return line_error(
        line_, fmt::format("control character 0x{:02x}", static_cast<unsigned char>(text_[i_])));
  }

  Status comment() {
    size_t end = text_.find('\n', i_);
    if (end == std::string_view::npos) {
      end = text_.size();
    }
    std::string_view body = text_.substr(i_ + 1, end - i_ - 1);
    i_ = end;
    while (!body.empty() && is_blank(body.front())) {
      body.remove_prefix(1);
    }
    if (body.substr(0, kBerthTag.size()) != kBerthTag) {
      return ok();  // an ordinary comment
    }
    if (!cur_.berth.empty() || cur_.berth_line != 0) {
      return line_error(
          line_, fmt::format("a second \"; berth:\" comment in the record of line {}", cur_.line));
    }
    body.remove_prefix(kBerthTag.size());
    while (!body.empty() && is_blank(body.back())) {
      body.remove_suffix(1);
    }
    cur_.berth = std::string(body);
    cur_.berth_line = line_;
    if (cur_.berth.empty()) {
      return line_error(line_, "empty \"; berth:\" comment");
    }
    return ok();
  }

  // A quoted string or a bare word, kept as written (quotes and escapes are the value
  // parsers' business); the lexer only needs to know where it ends.
  Status token(bool quoted) {
    size_t start = i_;
    i_ += quoted ? 1 : 0;
    while (true) {
      if (i_ >= text_.size() || text_[i_] == '\n') {
        if (quoted) {
          return line_error(line_, "quoted string not closed on its line");
        }
        break;
      }
      char c = text_[i_];
      if (quoted ? c == '"' : (is_blank(c) || c == ';' || c == '(' || c == ')' || c == '"')) {
        i_ += quoted ? 1 : 0;
        break;
      }
      if (c == '\\') {
        if (i_ + 1 >= text_.size() || text_[i_ + 1] == '\n') {
          return line_error(line_, "'\\' at the end of a line");
        }
        c = text_[++i_];
      }
      if (is_control(c)) {
        return control_error();
      }
      ++i_;
    }
    cur_.tokens.push_back(Token{std::string(text_.substr(start, i_ - start)), quoted});
    return ok();
  }

  std::string_view text_;
  size_t i_ = 0;
  int line_ = 1;
  int depth_ = 0;
  int paren_line_ = 0;
  Entry cur_;
  std::vector<Entry> out_;
};

// ---- Values -------------------------------------------------------------------------------

/// "3600", "1h30m", "2d", "1w" (units s m h d w, any case). Errors have no line prefix.
Result<uint32_t> parse_ttl(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::InvalidArgument, fmt::format("bad TTL \"{}\": {}", s, why));
  };
  if (s.empty() || !is_digit(s.front())) {
    return bad("not a number");
  }
  uint64_t total = 0;
  size_t i = 0;
  bool units = false;
  while (i < s.size()) {
    uint64_t n = 0;
    size_t start = i;
    while (i < s.size() && is_digit(s[i])) {
      n = n * 10 + static_cast<uint64_t>(s[i] - '0');
      if (n > kMaxTtl) {
        return bad("over 2147483647 seconds");
      }
      ++i;
    }
    if (i == start) {
      return bad("a unit without a number");
    }
    uint64_t mult = 1;
    if (i < s.size()) {
      constexpr std::string_view kUnits = "smhdw";
      constexpr uint64_t kSeconds[] = {1, 60, 3600, 86400, 604800};
      size_t u = kUnits.find(static_cast<char>(s[i] | 0x20));
      if (u == std::string_view::npos) {
        return bad(fmt::format("unknown unit '{}' (s, m, h, d, w)", s[i]));
      }
      mult = kSeconds[u];
      units = true;
      ++i;
    } else if (units) {
      return bad("a number without a unit after one with a unit");
    }
    total += n * mult;
    if (total > kMaxTtl) {
      return bad("over 2147483647 seconds");
    }
  }
  return static_cast<uint32_t>(total);
}

/// A number in SOA presentation rdata counted from its end: 0 is the minimum, 4 the serial.
std::optional<uint32_t> soa_field(std::string_view text, int from_end) {
  for (int k = 0; k <= from_end; ++k) {
    size_t sp = text.rfind(' ');
    std::string_view word = sp == std::string_view::npos ? text : text.substr(sp + 1);
    if (k == from_end) {
      uint32_t v = 0;
      auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
      if (ec != std::errc() || end != word.data() + word.size()) {
        return std::nullopt;
      }
      return v;
    }
    if (sp == std::string_view::npos) {
      return std::nullopt;
    }
    text = text.substr(0, sp);
  }
  return std::nullopt;
}

// ---- Parsing ------------------------------------------------------------------------------

struct Building {
  RecordSet set;
  int line = 0;  // its first record
};

class Parser {
 public:
  Parser(std::string apex, int last_line) : apex_(std::move(apex)), last_line_(last_line) {
    origin_ = apex_;
  }

  Status entry(const Entry& e) {
    if (!e.blank_owner && !e.tokens.empty() && !e.tokens[0].quoted &&
        e.tokens[0].text.starts_with('$')) {
      if (!e.berth.empty()) {
        return line_error(e.berth_line, "a \"; berth:\" comment belongs on a record line");
      }
      return directive(e);
    }
    if (e.tokens.empty()) {
      return line_error(e.berth_line, "a \"; berth:\" comment belongs on a record line");
    }
    return record(e);
  }

  Result<ZoneData> finish() {
    if (soa_line_ == 0) {
      return line_error(last_line_,
                        fmt::format("no SOA record at the zone apex {}", name_to_text(apex_)));
    }
    ZoneData z;
    z.name = name_to_api(apex_);
    for (auto& b : sets_) {
      if (b.set.type == "SOA") {
        z.serial = soa_field(b.set.values.front(), 4).value_or(z.serial);
      }
      z.sets.push_back(b.set);
    }
    z.sets.sort();
    Status v = validate_zone(z);
    if (!v) {
      return line_error(line_of(v.error().message()), v.error().message());
    }
    return z;
  }

 private:
  Status directive(const Entry& e) {
    const std::string d = upper(e.tokens[0].text);
    if (d == "$INCLUDE") {
      return line_error(e.line, "$INCLUDE is not supported: paste the included file in its place");
    }
    if (d != "$ORIGIN" && d != "$TTL") {
      return line_error(e.line, fmt::format("unknown directive {} ($ORIGIN and $TTL are "
                                            "supported)",
                                            e.tokens[0].text));
    }
    if (e.tokens.size() != 2) {
      return line_error(e.line, fmt::format("{} takes one argument", d));
    }
    const Token& arg = e.tokens[1];
    if (d == "$TTL") {
      auto ttl = parse_ttl(arg.text);
      if (!ttl) {
        return line_error(e.line, ttl.error().message());
      }
      default_ttl_ = *ttl;
      return ok();
    }
    auto o = arg.quoted ? Result<std::string>(make_error(Errc::InvalidArgument, "quoted"))
                        : name_from_text(arg.text, origin_);
    if (!o) {
      return line_error(e.line,
                        fmt::format("bad $ORIGIN \"{}\": {}", arg.text, o.error().message()));
    }
    origin_ = name_lower(*o);
    return ok();
  }

  Status record(const Entry& e) {
    size_t i = 0;
    const int line = e.line;
    // Owner.
    if (e.blank_owner) {
      if (!owner_) {
        return line_error(line, "a record starting with a blank has no previous owner");
      }
    } else {
      const Token& t = e.tokens[i++];
      auto o = t.quoted        ? Result<std::string>(make_error(Errc::InvalidArgument, "quoted"))
               : t.text == "@" ? Result<std::string>(origin_)
                               : name_from_text(t.text, origin_);
      if (!o) {
        return line_error(line,
                          fmt::format("bad owner name \"{}\": {}", t.text, o.error().message()));
      }
      owner_ = name_lower(*o);
    }
    if (!name_is_within(*owner_, apex_)) {
      return line_error(line, fmt::format("{} is outside the zone {}", name_to_text(*owner_),
                                          name_to_text(apex_)));
    }
    // TTL and class, in either order.
    std::optional<uint32_t> ttl;
    bool klass = false;
    while (i < e.tokens.size() && !e.tokens[i].quoted) {
      const std::string& t = e.tokens[i].text;
      if (is_digit(t.front())) {
        if (ttl) {
          return line_error(line, fmt::format("a second TTL \"{}\"", t));
        }
        auto r = parse_ttl(t);
        if (!r) {
          return line_error(line, r.error().message());
        }
        ttl = *r;
      } else {
        std::string u = upper(t);
        if (u == "IN" || u == "CLASS1") {
          if (klass) {
            return line_error(line, "class IN given twice");
          }
          klass = true;
        } else if (u == "CH" || u == "HS" || u == "CS" || u == "NONE" || u == "ANY" ||
                   (u.starts_with("CLASS") && u.size() > 5 && is_digit(u[5]))) {
          return line_error(line, fmt::format("class {} is not supported (only IN)", t));
        } else {
          break;
        }
      }
      ++i;
    }
    if (i >= e.tokens.size()) {
      return line_error(line, "the record has no type");
    }
    const Token& tt = e.tokens[i++];
    auto type = tt.quoted ? Result<uint16_t>(make_error(Errc::InvalidArgument, "quoted"))
                          : type_from_text(tt.text);
    if (!type) {
      return line_error(line, fmt::format("unknown type \"{}\"", tt.text));
    }
    if (!type_supported(*type)) {
      return line_error(
          line, fmt::format("type {} is not supported in berth zones", type_to_text(*type)));
    }
    if (!ttl) {
      if (default_ttl_) {
        ttl = default_ttl_;
      } else if (last_ttl_) {
        ttl = last_ttl_;
      } else {
        return line_error(line, "no TTL: give one on the record or a $TTL line before it");
      }
    }
    last_ttl_ = ttl;
    Policy policy;
    if (!e.berth.empty()) {
      BERTH_ASSIGN_OR_RETURN(policy, parse_berth_comment(e.berth, e.berth_line));
    }
    // Data.
    std::string rdata_text;
    for (size_t k = i; k < e.tokens.size(); ++k) {
      if (!rdata_text.empty()) {
        rdata_text += ' ';
      }
      rdata_text += e.tokens[k].text;
    }
    const std::string tname = type_to_text(*type);
    if (rdata_text.empty()) {
      return line_error(line, fmt::format("the {} record has no data", tname));
    }
    std::string value, alias_service, alias_name;
    if (*type == type::ALIAS) {
      if (e.tokens.size() - i != 1 || e.tokens[i].quoted) {
        return line_error(line, "ALIAS takes one target: a name or service:<name>");
      }
      const std::string& t = e.tokens[i].text;
      if (t.starts_with(kServicePrefix)) {
        alias_service = t.substr(kServicePrefix.size());
        if (alias_service.empty()) {
          return line_error(line, "ALIAS service: needs a service name");
        }
      } else {
        auto n = t == "@" ? Result<std::string>(origin_) : name_from_text(t, origin_);
        if (!n) {
          return line_error(line,
                            fmt::format("bad ALIAS target \"{}\": {}", t, n.error().message()));
        }
        alias_name = name_to_api(name_lower(*n));
      }
    } else {
      auto wire = rdata_from_text(*type, rdata_text, origin_);
      auto text = wire ? rdata_to_text(*type, *wire) : Result<std::string>(wire.error());
      if (!text) {
        return line_error(line, fmt::format("bad {} data \"{}\": {}", tname, shorten(rdata_text),
                                            text.error().message()));
      }
      value = std::move(*text);
    }
    if (*type == type::SOA) {
      if (!name_equal(*owner_, apex_)) {
        return line_error(line, fmt::format("SOA at {}: it belongs at the zone apex {}",
                                            name_to_text(*owner_), name_to_text(apex_)));
      }
      if (soa_line_ != 0) {
        return line_error(line,
                          fmt::format("a second SOA record (the first is on line {})", soa_line_));
      }
      soa_line_ = line;
    }
    return add(line, *type, *ttl, policy, !e.berth.empty(), std::move(value),
               std::move(alias_service), std::move(alias_name));
  }

  Status add(int line, uint16_t type, uint32_t ttl, const Policy& p, bool has_policy,
             std::string value, std::string alias_service, std::string alias_name) {
    auto key = std::make_tuple(*owner_, type, p.set.value_or(""));
    auto [it, fresh] = index_.try_emplace(key, sets_.size());
    if (fresh) {
      Building b;
      b.line = line;
      b.set.name = name_to_api(*owner_);
      b.set.type = type_to_text(type);
      b.set.ttl = ttl;
      b.set.set_identifier = p.set.value_or("");
      b.set.weight = p.weight;
      b.set.failover = p.failover.value_or("");
      b.set.multivalue = p.multivalue;
      b.set.health_check = p.health.value_or("");
      b.set.alias_service = std::move(alias_service);
      b.set.alias_name = std::move(alias_name);
      if (type != type::ALIAS) {
        b.set.values.push_back(std::move(value));
      }
      sets_.push_back(std::move(b));
      return ok();
    }
    Building& b = sets_[it->second];
    RecordSet& s = b.set;
    const std::string what =
        fmt::format("{} {}{}", name_to_text(*owner_), s.type,
                    s.set_identifier.empty() ? "" : " set=" + s.set_identifier);
    if (s.ttl != ttl) {
      return line_error(line, fmt::format("TTL {} differs from the TTL {} of {} (line {}): a "
                                          "record set has one TTL",
                                          ttl, s.ttl, what, b.line));
    }
    if (has_policy) {
      bool same = (!p.weight || p.weight == s.weight) &&
                  (!p.failover || *p.failover == s.failover) && (!p.multivalue || s.multivalue) &&
                  (!p.health || *p.health == s.health_check);
      if (!same) {
        return line_error(line, fmt::format("the routing policy differs from that of {} (line {})",
                                            what, b.line));
      }
    }
    if (type == type::ALIAS) {
      return line_error(line,
                        fmt::format("{} already has its one ALIAS target (line {})", what, b.line));
    }
    if (std::find(s.values.begin(), s.values.end(), value) == s.values.end()) {
      s.values.push_back(std::move(value));  // duplicates are dropped (RFC 2181 §5)
    }
    return ok();
  }

  // validate_zone's error names the record: find it to give the error a line.
  int line_of(std::string_view msg) const {
    int line = soa_line_;
    size_t best = 0;
    for (const auto& b : sets_) {
      if (msg.starts_with(b.set.name + " " + b.set.type + ":")) {
        return b.line;
      }
      const std::string& n = b.set.name;
      if (n.size() > best && msg.find(n) != std::string_view::npos) {
        best = n.size();
        line = b.line;
      }
    }
    return line;
  }

  std::string apex_;    // wire, lower-case
  std::string origin_;  // wire, lower-case
  int last_line_ = 1;
  std::optional<std::string> owner_;
  std::optional<uint32_t> default_ttl_, last_ttl_;
  int soa_line_ = 0;
  std::vector<Building> sets_;
  std::map<std::tuple<std::string, uint16_t, std::string>, size_t> index_;
};

// ---- Export -------------------------------------------------------------------------------

/// An ALIAS's name target, absolute ("lb.example.com" → "lb.example.com."). A name that
/// itself starts with "service:" gets its ':' escaped so that it reads back as a name.
std::string alias_target_text(std::string_view api) {
  auto wire = name_from_text(api);
  std::string text =
      wire ? name_to_text(*wire) : std::string(api).append(api.ends_with('.') ? "" : ".");
  if (text.starts_with(kServicePrefix)) {
    text.replace(kServicePrefix.size() - 1, 1, "\\058");
  }
  return text;
}

std::string relative_owner(std::string_view api, std::string_view apex) {
  auto wire = name_from_text(api);
  if (!wire) {
    return std::string(api);
  }
  if (name_equal(*wire, apex)) {
    return "@";
  }
  if (!name_is_within(*wire, apex)) {
    return name_to_text(*wire);
  }
  std::string prefix = wire->substr(0, wire->size() - apex.size());
  prefix.push_back('\0');
  std::string text = name_to_text(prefix);
  text.pop_back();  // the trailing dot: relative to $ORIGIN
  return text;
}

void write_line(std::string& out, const std::string& owner, uint32_t ttl, const std::string& type,
                const std::string& value, const std::string& comment) {
  out += fmt::format("{:<{}} {:<{}} IN {:<{}} {}{}\n", owner, kOwnerWidth, ttl, kTtlWidth, type,
                     kTypeWidth, value, comment);
}

}  // namespace

Result<ZoneData> parse_zone_file(std::string_view text, std::string_view zone) {
  auto apex = name_from_text(zone);
  if (!apex) {
    return make_error(Errc::InvalidArgument,
                      fmt::format("bad zone name \"{}\": {}", zone, apex.error().message()));
  }
  Lexer lexer(text);
  BERTH_ASSIGN_OR_RETURN(auto entries, lexer.run());
  Parser parser(name_lower(*apex), lexer.last_line());
  for (const auto& e : entries) {
    BERTH_TRY(parser.entry(e));
  }
  return parser.finish();
}

std::string export_zone_file(const ZoneData& z) {
  std::string apex = name_lower(name_from_text(z.name).value_or(std::string(1, '\0')));
  RecordSets sorted = z.sets;
  sorted.sort();
  std::vector<RecordSet> sets(sorted.begin(), sorted.end());
  // The SOA goes first, as every master file starts with it.
  std::stable_partition(sets.begin(), sets.end(), [&](const RecordSet& s) {
    auto w = name_from_text(s.name);
    return s.type == "SOA" && w && name_equal(*w, apex);
  });
  uint32_t default_ttl = kDefaultExportTtl;
  if (!sets.empty() && sets.front().type == "SOA" && !sets.front().values.empty()) {
    default_ttl = std::min(soa_field(sets.front().values.front(), 0).value_or(300), kMaxTtl);
  }
  std::string out = fmt::format("$ORIGIN {}\n$TTL {}\n", name_to_text(apex), default_ttl);
  for (const auto& s : sets) {
    std::string owner = relative_owner(s.name, apex);
    std::string comment = policy_comment(s);
    if (s.type == "ALIAS") {
      std::string target = !s.alias_service.empty() ? std::string(kServicePrefix) + s.alias_service
                                                    : alias_target_text(s.alias_name);
      write_line(out, owner, s.ttl, s.type, target, comment);
      continue;
    }
    for (const auto& v : s.values) {
      write_line(out, owner, s.ttl, s.type, v, comment);
    }
  }
  return out;
}

}  // namespace berth::dns
