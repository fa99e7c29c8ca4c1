// SPDX-License-Identifier: Apache-2.0
// Dockerfile parser, variable substitution and ARG/ENV scoping. See dockerfile.h.
#include "builder/dockerfile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace berth::builder {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  return s;
}

std::string_view trim(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return out;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// Splits at runs of white space (no quote handling), as Docker does for FROM, EXPOSE, COPY.
std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) {
      ++i;
    }
    size_t start = i;
    while (i < s.size() && !is_space(s[i])) {
      ++i;
    }
    if (i > start) {
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// "<file>:<line>: <message>".
Error error_at(const std::string& file, int line, std::string_view message) {
  std::string m = file;
  m += ':';
  m += std::to_string(line);
  m += ": ";
  m += message;
  return Error(Errc::InvalidArgument, std::move(m));
}

struct KindName {
  InstructionKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {InstructionKind::From, "FROM"},
    {InstructionKind::Run, "RUN"},
    {InstructionKind::Cmd, "CMD"},
    {InstructionKind::Entrypoint, "ENTRYPOINT"},
    {InstructionKind::Env, "ENV"},
    {InstructionKind::Arg, "ARG"},
    {InstructionKind::Label, "LABEL"},
    {InstructionKind::Expose, "EXPOSE"},
    {InstructionKind::Copy, "COPY"},
    {InstructionKind::Add, "ADD"},
    {InstructionKind::Workdir, "WORKDIR"},
    {InstructionKind::User, "USER"},
    {InstructionKind::Volume, "VOLUME"},
    {InstructionKind::StopSignal, "STOPSIGNAL"},
    {InstructionKind::Healthcheck, "HEALTHCHECK"},
    {InstructionKind::Shell, "SHELL"},
    {InstructionKind::Onbuild, "ONBUILD"},
    {InstructionKind::Maintainer, "MAINTAINER"},
};

std::optional<InstructionKind> kind_from_name(std::string_view word) {
  std::string up = upper(word);
  for (const auto& k : kKinds) {
    if (up == k.name) {
      return k.kind;
    }
  }
  return std::nullopt;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1);
  std::vector<size_t> cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// ---- JSON arrays of strings ---------------------------------------------------------------

enum class JsonOutcome { NotArray, Ok, Bad };

struct JsonArray {
  JsonOutcome outcome = JsonOutcome::NotArray;
  std::vector<std::string> items;
  std::string error;          // when Bad
  bool unterminated = false;  // Bad because the text ended inside the array
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> hex4(std::string_view s, size_t pos) {
  if (pos + 4 > s.size()) {
    return std::nullopt;
  }
  uint32_t v = 0;
  for (size_t i = pos; i < pos + 4; ++i) {
    char c = s[i];
    v <<= 4;
    if (is_digit(c)) {
      v |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
  }
  return v;
}

JsonArray parse_json_array(std::string_view s) {
  JsonArray r;
  s = trim(s);
  if (s.empty() || s[0] != '[') {
    return r;
  }
  auto bad = [&r](std::string msg, bool unterminated = false) {
    r.outcome = JsonOutcome::Bad;
    r.error = std::move(msg);
    r.unterminated = unterminated;
    r.items.clear();
    return r;
  };
  size_t i = 1;
  auto skip_ws = [&] {
    while (i < s.size() && is_space(s[i])) {
      ++i;
    }
  };
  skip_ws();
  bool expect_value = false;  // after a comma
  if (i < s.size() && s[i] == ']') {
    ++i;
  } else {
    while (true) {
      skip_ws();
      if (i >= s.size()) {
        return bad("unterminated JSON array", true);
      }
      if (s[i] != '"') {
        if (s[i] == ']' && expect_value) {
          return bad("invalid JSON array: trailing comma");
        }
        return bad("invalid JSON array: it must contain only strings");
      }
      ++i;
      std::string item;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i];
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (static_cast<unsigned char>(c) < 0x20) {
          return bad("invalid JSON array: control character in a string");
        }
        if (c != '\\') {
          item += c;
          ++i;
          continue;
        }
        if (i + 1 >= s.size()) {
          break;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            item += e;
            break;
          case 'b':
            item += '\b';
            break;
          case 'f':
            item += '\f';
            break;
          case 'n':
            item += '\n';
            break;
          case 'r':
            item += '\r';
            break;
          case 't':
            item += '\t';
            break;
          case 'u': {
            auto cp = hex4(s, i);
            if (!cp) {
              return bad("invalid JSON array: bad \\u escape");
            }
            i += 4;
            uint32_t code = *cp;
            if (code >= 0xD800 && code < 0xDC00 && i + 6 <= s.size() && s[i] == '\\' &&
                s[i + 1] == 'u') {
              auto lo = hex4(s, i + 2);
              if (lo && *lo >= 0xDC00 && *lo < 0xE000) {
                code = 0x10000 + ((code - 0xD800) << 10) + (*lo - 0xDC00);
                i += 6;
              }
            }
            append_utf8(item, code);
            break;
          }
          default:
            return bad("invalid JSON array: bad escape in a string");
        }
      }
      if (!closed) {
        return bad("unterminated JSON array", true);
      }
      r.items.push_back(std::move(item));
      skip_ws();
      if (i >= s.size()) {
        return bad("unterminated JSON array", true);
      }
      if (s[i] == ',') {
        ++i;
        expect_value = true;
        continue;
      }
      if (s[i] == ']') {
        ++i;
        break;
      }
      return bad("invalid JSON array: expected ',' or ']'");
    }
  }
  skip_ws();
  if (i != s.size()) {
    return bad("invalid JSON array: unexpected text after ']'");
  }
  r.outcome = JsonOutcome::Ok;
  return r;
}

// Docker falls back to shell form whenever the text is not a valid JSON array. We do the
// same, except when the text was clearly meant as JSON (it starts with `["`, or it ended
// inside an array of strings): running that through /bin/sh would only fail later, obscurely.
Result<std::optional<std::vector<std::string>>> maybe_json(std::string_view args) {
  JsonArray j = parse_json_array(args);
  if (j.outcome == JsonOutcome::Ok) {
    return std::optional<std::vector<std::string>>(std::move(j.items));
  }
  if (j.outcome == JsonOutcome::Bad) {
    std::string_view t = trim(args);
    bool meant_json = t.size() >= 2 && t[0] == '[' && t[1] == '"';
    if (j.unterminated) {
      std::string_view inner = trim_left(t.substr(1));
      meant_json = meant_json || inner.empty() || inner[0] == '"';
    }
    if (meant_json) {
      return Error(Errc::InvalidArgument, j.error);
    }
  }
  return std::optional<std::vector<std::string>>();
}

// ---- words and flags --------------------------------------------------------------------

// Docker's quote-aware word splitter for ENV, LABEL and ARG: quotes and escapes stay in the
// words (substitution removes them later); an unterminated quote is an error here.
Result<std::vector<std::string>> parse_words(std::string_view s, char escape) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == 0) {
      if (is_space(c)) {
        if (in_word) {
          words.push_back(std::move(word));
          word.clear();
          in_word = false;
        }
        continue;
      }
      in_word = true;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == escape) {
        if (i + 1 == s.size()) {
          continue;
        }
        word += c;
        c = s[++i];
      }
      word += c;
      continue;
    }
    if (c == quote) {
      quote = 0;
    } else if (c == escape && quote != '\'') {
      if (i + 1 == s.size()) {
        continue;
      }
      word += c;
      c = s[++i];
    }
    word += c;
  }
  if (quote != 0) {
    return Error(Errc::InvalidArgument,
                 quote == '"' ? "unterminated double quote" : "unterminated single quote");
  }
  if (in_word) {
    words.push_back(std::move(word));
  }
  return words;
}

struct FlagSplit {
  std::vector<Flag> flags;
  std::string rest;
};

// Leading "--name[=value]" words; quotes in them are removed, the escape char escapes.
FlagSplit extract_flags(std::string_view args, char escape) {
  FlagSplit out;
  size_t i = 0;
  while (true) {
    while (i < args.size() && is_space(args[i])) {
      ++i;
    }
    if (args.substr(i, 2) != "--") {
      break;
    }
    std::string word;
    char quote = 0;
    while (i < args.size()) {
      char c = args[i];
      if (quote == 0 && is_space(c)) {
        break;
      }
      ++i;
      if (quote != 0 && c == quote) {
        quote = 0;
        continue;
      }
      if (quote == 0 && (c == '"' || c == '\'')) {
        quote = c;
        continue;
      }
      if (c == escape && quote != '\'') {
        if (i == args.size()) {
          continue;
        }
        c = args[i++];
      }
      word += c;
    }
    if (word == "--") {
      break;
    }
    Flag f;
    std::string body = word.substr(2);
    size_t eq = body.find('=');
    if (eq == std::string::npos) {
      f.name = body;
    } else {
      f.name = body.substr(0, eq);
      f.value = body.substr(eq + 1);
    }
    out.flags.push_back(std::move(f));
  }
  out.rest = std::string(trim(args.substr(std::min(i, args.size()))));
  return out;
}

// True when a shell-form command or a COPY source uses a heredoc ("<<EOF", "<<-'EOF'").
bool has_heredoc(std::string_view s) {
  char quote = 0;
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    if (c != '<' || s[i + 1] != '<' || (i > 0 && s[i - 1] == '<')) {
      continue;
    }
    size_t j = i + 2;
    if (j < s.size() && s[j] == '-') {
      ++j;
    }
    if (j < s.size() && (s[j] == '"' || s[j] == '\'')) {
      ++j;
    }
    if (j < s.size() && (std::isalpha(static_cast<unsigned char>(s[j])) || s[j] == '_')) {
      return true;
    }
    ++i;
  }
  return false;
}

bool has_var(std::string_view s) { return s.find('$') != std::string_view::npos; }

// ---- one instruction ----------------------------------------------------------------------

struct Ctx {
  const std::string& file;
  int line;
  char escape;
  std::vector<Warning>* warnings;

  Error fail(std::string_view message) const { return error_at(file, line, message); }
  void warn(std::string_view message) const {
    if (warnings != nullptr) {
      warnings->push_back(Warning{line, error_at(file, line, message).message()});
    }
  }
};

enum class FlagType { String, Bool, Repeated, Refused };
struct FlagRule {
  const char* name;
  FlagType type;
  const char* refusal = nullptr;
};

Status check_flags(const Instruction& ins, const std::vector<FlagRule>& rules, const Ctx& ctx) {
  std::set<std::string> seen;
  const char* kw = instruction_name(ins.kind);
  for (const Flag& f : ins.flags) {
    const FlagRule* rule = nullptr;
    for (const auto& r : rules) {
      if (f.name == r.name) {
        rule = &r;
      }
    }
    std::string dashed = "--";
    dashed += f.name;
    if (rule == nullptr) {
      std::string m = "unknown flag ";
      m += dashed;
      m += " for ";
      m += kw;
      return ctx.fail(m);
    }
    std::string m = kw;
    m += ' ';
    m += dashed;
    if (rule->type == FlagType::Refused) {
      m += rule->refusal;
      return ctx.fail(m);
    }
    if (rule->type != FlagType::Repeated && !seen.insert(f.name).second) {
      m += " is given twice";
      return ctx.fail(m);
    }
    if (rule->type == FlagType::Bool) {
      if (f.value && *f.value != "true" && *f.value != "false") {
        m += " takes true or false, not ";
        m += quoted(*f.value);
        return ctx.fail(m);
      }
    } else if (!f.value || f.value->empty()) {
      m += " requires a value";
      return ctx.fail(m);
    }
  }
  return ok();
}

bool bool_flag(const Instruction& ins, std::string_view name) {
  for (const Flag& f : ins.flags) {
    if (f.name == name) {
      return !f.value || *f.value == "true";
    }
  }
  return false;
}

Result<Command> parse_command(std::string_view args, InstructionKind kind, const Ctx& ctx) {
  Command cmd;
  if (trim(args).empty()) {
    std::string m = instruction_name(kind);
    m += " requires at least one argument";
    return ctx.fail(m);
  }
  auto j = maybe_json(args);
  if (!j) {
    return ctx.fail(j.error().message());
  }
  if (j->has_value()) {
    cmd.exec_form = true;
    cmd.exec = std::move(**j);
  } else {
    cmd.shell = std::string(trim(args));
    if (kind == InstructionKind::Run && has_heredoc(cmd.shell)) {
      return ctx.fail(
          "heredocs (<<EOF) are not supported; put the script in a file and COPY it, or use "
          "printf in the RUN command");
    }
  }
  return cmd;
}

Status check_chmod(std::string_view v, const Ctx& ctx, const char* kw) {
  if (has_var(v)) {
    return ok();
  }
  bool octal = (v.size() == 3 || v.size() == 4) &&
               std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal) {
    std::string m = kw;
    m += " --chmod=";
    m += v;
    m += ": use an octal mode such as 755 or 0644";
    return ctx.fail(m);
  }
  return ok();
}

Status parse_key_values(Instruction& ins, const Ctx& ctx) {
  const char* kw = instruction_name(ins.kind);
  auto words = parse_words(ins.args, ctx.escape);
  if (!words) {
    std::string m = words.error().message();
    m += " in ";
    m += kw;
    return ctx.fail(m);
  }
  KeyValues kv;
  if (words->empty()) {
    std::string m = kw;
    m += " requires at least one argument";
    return ctx.fail(m);
  }
  if ((*words)[0].find('=') == std::string::npos) {
    // Legacy "KEY value with spaces": the key is the first word, the value all the rest.
    std::string_view a = ins.args;
    size_t sp = 0;
    while (sp < a.size() && !is_space(a[sp])) {
      ++sp;
    }
    std::string_view value = trim(a.substr(sp));
    if (value.empty()) {
      std::string m = kw;
      m += " must have two arguments (";
      m += kw;
      m += " key=value)";
      return ctx.fail(m);
    }
    kv.legacy = true;
    kv.items.push_back(KeyValue{std::string(a.substr(0, sp)), std::string(value)});
    std::string w = "legacy \"";
    w += kw;
    w += " key value\" form; prefer ";
    w += kw;
    w += " key=value";
    ctx.warn(w);
  } else {
    for (const std::string& word : *words) {
      size_t eq = word.find('=');
      if (eq == std::string::npos) {
        std::string m = "syntax error: no '=' in ";
        m += quoted(word);
        m += "; ";
        m += kw;
        m += " takes key=value pairs";
        return ctx.fail(m);
      }
      kv.items.push_back(KeyValue{word.substr(0, eq), word.substr(eq + 1)});
    }
  }
  for (const auto& item : kv.items) {
    if (item.key.empty()) {
      std::string m = kw;
      m += " names can not be blank";
      return ctx.fail(m);
    }
  }
  ins.payload = std::move(kv);
  return ok();
}

bool valid_stage_name(std::string_view name) {
  if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

Result<std::vector<std::string>> list_args(const Instruction& ins, bool& json_form,
                                           const Ctx& ctx) {
  auto j = maybe_json(ins.args);
  if (!j) {
    return ctx.fail(j.error().message());
  }
  if (j->has_value()) {
    json_form = true;
    return std::move(**j);
  }
  json_form = false;
  return split_ws(ins.args);
}

Status parse_copy(Instruction& ins, const Ctx& ctx) {
  bool is_add = ins.kind == InstructionKind::Add;
  const char* kw = instruction_name(ins.kind);
  std::vector<FlagRule> rules = {
      {"chown", FlagType::String},
      {"chmod", FlagType::String},
      {"link", FlagType::Bool},
      {"exclude", FlagType::Repeated},
      {"parents", FlagType::Refused, " is not supported; copy each directory explicitly"},
  };
  if (is_add) {
    rules.push_back({"checksum", FlagType::Refused,
                     " is not supported: it only applies to URLs, which berth does not fetch"});
    rules.push_back({"keep-git-dir", FlagType::Refused,
                     " is not supported: berth does not ADD git repositories"});
    rules.push_back({"from", FlagType::Refused, " is not supported; use COPY --from"});
  } else {
    rules.push_back({"from", FlagType::String});
  }
  BERTH_TRY(check_flags(ins, rules, ctx));
  CopySpec spec;
  for (const Flag& f : ins.flags) {
    if (f.name == "from") {
      spec.from = f.value;
    } else if (f.name == "chown") {
      spec.chown = f.value;
    } else if (f.name == "chmod") {
      spec.chmod = f.value;
      BERTH_TRY(check_chmod(*f.value, ctx, kw));
    } else if (f.name == "exclude") {
      spec.excludes.push_back(*f.value);
    }
  }
  spec.link = bool_flag(ins, "link");
  if (spec.link) {
    std::string w = kw;
    w += " --link is accepted but has no effect: berth writes each step as its own layer";
    ctx.warn(w);
  }
  BERTH_ASSIGN_OR_RETURN(auto items, list_args(ins, spec.json_form, ctx));
  if (!spec.json_form) {
    for (const auto& item : items) {
      if (item.rfind("<<", 0) == 0) {
        std::string m = kw;
        m += " with a heredoc (<<EOF) is not supported; commit the file to the repository";
        return ctx.fail(m);
      }
    }
  }
  if (items.size() < 2) {
    std::string m = kw;
    m += " requires at least two arguments (";
    m += kw;
    m += " source... destination)";
    return ctx.fail(m);
  }
  spec.destination = items.back();
  items.pop_back();
  spec.sources = std::move(items);
  if (is_add) {
    for (const auto& src : spec.sources) {
      if (is_remote_source(src)) {
        return ctx.fail(
            "ADD from a URL is not supported; download the file in a RUN step or commit it to "
            "the repository");
      }
    }
  }
  ins.payload = std::move(spec);
  return ok();
}

Status check_duration_flag(const Flag& f, int64_t& out, const Ctx& ctx) {
  auto d = parse_duration(*f.value);
  std::string m = "HEALTHCHECK --";
  m += f.name;
  m += '=';
  m += *f.value;
  if (!d) {
    m += ": ";
    m += d.error().message();
    return ctx.fail(m);
  }
  if (*d < 0) {
    m += ": cannot be negative";
    return ctx.fail(m);
  }
  if (*d != 0 && *d < 1000000) {
    m += ": cannot be less than 1ms";
    return ctx.fail(m);
  }
  out = *d;
  return ok();
}

Status parse_healthcheck(Instruction& ins, const Ctx& ctx) {
  BERTH_TRY(check_flags(ins,
                        {{"interval", FlagType::String},
                         {"timeout", FlagType::String},
                         {"start-period", FlagType::String},
                         {"start-interval", FlagType::String},
                         {"retries", FlagType::String}},
                        ctx));
  Healthcheck hc;
  std::string_view a = ins.args;
  size_t sp = 0;
  while (sp < a.size() && !is_space(a[sp])) {
    ++sp;
  }
  std::string type = upper(a.substr(0, sp));
  std::string_view rest = trim(a.substr(sp));
  if (type == "NONE") {
    if (!rest.empty() || !ins.flags.empty()) {
      return ctx.fail("HEALTHCHECK NONE takes no arguments");
    }
    hc.none = true;
    ins.payload = std::move(hc);
    return ok();
  }
  if (type != "CMD") {
    if (type.empty()) {
      return ctx.fail("HEALTHCHECK requires NONE or CMD followed by a command");
    }
    std::string m = "unknown type ";
    m += type;
    m += " in HEALTHCHECK (try CMD)";
    return ctx.fail(m);
  }
  if (rest.empty()) {
    return ctx.fail("HEALTHCHECK CMD requires a command");
  }
  for (const Flag& f : ins.flags) {
    if (f.name == "interval") {
      BERTH_TRY(check_duration_flag(f, hc.interval_ns, ctx));
    } else if (f.name == "timeout") {
      BERTH_TRY(check_duration_flag(f, hc.timeout_ns, ctx));
    } else if (f.name == "start-period") {
      BERTH_TRY(check_duration_flag(f, hc.start_period_ns, ctx));
    } else if (f.name == "start-interval") {
      BERTH_TRY(check_duration_flag(f, hc.start_interval_ns, ctx));
    } else if (f.name == "retries") {
      std::string_view v = *f.value;
      bool neg = !v.empty() && v[0] == '-';
      std::string_view digits = neg ? v.substr(1) : v;
      if (!all_digits(digits) || digits.size() > 9) {
        std::string m = "HEALTHCHECK --retries=";
        m += v;
        m += ": not an integer";
        return ctx.fail(m);
      }
      if (neg) {
        std::string m = "HEALTHCHECK --retries=";
        m += v;
        m += ": cannot be negative";
        return ctx.fail(m);
      }
      hc.retries = std::stoi(std::string(digits));
    }
  }
  BERTH_ASSIGN_OR_RETURN(hc.command, parse_command(rest, InstructionKind::Healthcheck, ctx));
  ins.payload = std::move(hc);
  return ok();
}

Status parse_text(Instruction& ins, const Ctx& ctx) {
  BERTH_TRY(check_flags(ins, {}, ctx));
  if (ins.args.empty()) {
    std::string m = instruction_name(ins.kind);
    m += " requires exactly one argument";
    return ctx.fail(m);
  }
  if (ins.kind == InstructionKind::StopSignal && !has_var(ins.args)) {
    auto sig = parse_signal(ins.args);
    if (!sig) {
      std::string m = "STOPSIGNAL ";
      m += sig.error().message();
      return ctx.fail(m);
    }
  }
  if (ins.kind == InstructionKind::Maintainer) {
    ctx.warn("MAINTAINER is deprecated; use LABEL maintainer=...");
  }
  ins.payload = Text{ins.args};
  return ok();
}

Status parse_payload(Instruction& ins, const Ctx& ctx) {
  const char* kw = instruction_name(ins.kind);
  switch (ins.kind) {
    case InstructionKind::From: {
      BERTH_TRY(check_flags(ins, {{"platform", FlagType::String}}, ctx));
      FromSpec spec;
      if (auto p = ins.flag("platform")) {
        spec.platform = *p;
      }
      auto words = split_ws(ins.args);
      if (words.size() == 3 && lower(words[1]) == "as") {
        if (!valid_stage_name(words[2])) {
          std::string m = "invalid stage name ";
          m += quoted(words[2]);
          m += ": it must start with a letter and contain only letters, digits, '-', '_', '.'";
          return ctx.fail(m);
        }
        spec.name = lower(words[2]);
      } else if (words.size() != 1) {
        return ctx.fail("FROM requires either one or three arguments (FROM image [AS name])");
      }
      spec.image = words[0];
      ins.payload = std::move(spec);
      return ok();
    }
    case InstructionKind::Run: {
      BERTH_TRY(check_flags(
          ins,
          {{"network", FlagType::String},
           {"mount", FlagType::Refused,
            " is not supported; COPY what the step needs (cache and secret mounts are not "
            "available)"},
           {"security", FlagType::Refused, " is not supported"}},
          ctx));
      if (auto n = ins.flag("network"); n && *n != "default" && *n != "none") {
        std::string m = "RUN --network=";
        m += *n;
        m += ": only default and none are supported";
        return ctx.fail(m);
      }
      BERTH_ASSIGN_OR_RETURN(Command cmd, parse_command(ins.args, ins.kind, ctx));
      ins.payload = std::move(cmd);
      return ok();
    }
    case InstructionKind::Cmd:
    case InstructionKind::Entrypoint: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      BERTH_ASSIGN_OR_RETURN(Command cmd, parse_command(ins.args, ins.kind, ctx));
      ins.payload = std::move(cmd);
      return ok();
    }
    case InstructionKind::Shell: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      JsonArray j = parse_json_array(ins.args);
      if (j.outcome == JsonOutcome::Bad && j.unterminated) {
        return ctx.fail(j.error);
      }
      if (j.outcome != JsonOutcome::Ok) {
        return ctx.fail(
            "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", "
            "\"parameters\"]");
      }
      if (j.items.empty()) {
        return ctx.fail("SHELL requires at least one argument");
      }
      Command cmd;
      cmd.exec_form = true;
      cmd.exec = std::move(j.items);
      ins.payload = std::move(cmd);
      return ok();
    }
    case InstructionKind::Env:
    case InstructionKind::Label:
      BERTH_TRY(check_flags(ins, {}, ctx));
      return parse_key_values(ins, ctx);
    case InstructionKind::Arg: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      auto words = parse_words(ins.args, ctx.escape);
      if (!words) {
        std::string m = words.error().message();
        m += " in ARG";
        return ctx.fail(m);
      }
      if (words->empty()) {
        return ctx.fail("ARG requires at least one argument");
      }
      ArgDecls decls;
      for (const std::string& w : *words) {
        ArgDecl d;
        size_t eq = w.find('=');
        d.name = w.substr(0, eq);
        if (eq != std::string::npos) {
          d.default_value = w.substr(eq + 1);
        }
        if (d.name.empty()) {
          return ctx.fail("ARG names can not be blank");
        }
        decls.items.push_back(std::move(d));
      }
      ins.payload = std::move(decls);
      return ok();
    }
    case InstructionKind::Expose: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      Words w;
      w.items = split_ws(ins.args);
      if (w.items.empty()) {
        return ctx.fail("EXPOSE requires at least one argument");
      }
      for (const auto& item : w.items) {
        if (!has_var(item)) {
          auto p = parse_port(item);
          if (!p) {
            std::string m = "EXPOSE ";
            m += p.error().message();
            return ctx.fail(m);
          }
        }
      }
      ins.payload = std::move(w);
      return ok();
    }
    case InstructionKind::Volume: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      Words w;
      BERTH_ASSIGN_OR_RETURN(w.items, list_args(ins, w.json_form, ctx));
      if (w.items.empty()) {
        return ctx.fail("VOLUME requires at least one argument");
      }
      for (const auto& item : w.items) {
        if (trim(item).empty()) {
          return ctx.fail("VOLUME specified can not be an empty string");
        }
      }
      ins.payload = std::move(w);
      return ok();
    }
    case InstructionKind::Copy:
    case InstructionKind::Add:
      return parse_copy(ins, ctx);
    case InstructionKind::Healthcheck:
      return parse_healthcheck(ins, ctx);
    case InstructionKind::Workdir:
    case InstructionKind::User:
    case InstructionKind::StopSignal:
    case InstructionKind::Maintainer:
      return parse_text(ins, ctx);
    case InstructionKind::Onbuild: {
      BERTH_TRY(check_flags(ins, {}, ctx));
      if (ins.args.empty()) {
        return ctx.fail("ONBUILD requires at least one argument");
      }
      std::string_view a = ins.args;
      size_t sp = 0;
      while (sp < a.size() && !is_space(a[sp])) {
        ++sp;
      }
      std::string trig = upper(a.substr(0, sp));
      if (trig == "ONBUILD") {
        return ctx.fail("ONBUILD ONBUILD isn't allowed");
      }
      if (trig == "FROM" || trig == "MAINTAINER") {
        std::string m = trig;
        m += " isn't allowed as an ONBUILD trigger";
        return ctx.fail(m);
      }
      auto inner = parse_instruction(ins.args, ctx.line, ctx.escape, ctx.file);
      if (!inner) {
        return std::move(inner).error();
      }
      ins.payload = OnBuild{inner->kind, ins.args};
      return ok();
    }
  }
  std::string m = "unhandled instruction ";
  m += kw;
  return ctx.fail(m);
}

Result<std::string> expand_impl(std::string_view word, const VarLookup& lookup, char escape,
                                bool syntax_only);

// Substitution syntax (quotes, ${...}) is checked when parsing, so a typo fails with its line
// before the build starts; values are substituted later, by the builder.
Status check_substitution_syntax(const Instruction& ins, const Ctx& ctx) {
  std::vector<const std::string*> fields;
  switch (ins.kind) {
    case InstructionKind::From:
      fields = {&ins.as<FromSpec>().image, &ins.as<FromSpec>().platform};
      break;
    case InstructionKind::Env:
    case InstructionKind::Label:
      for (const KeyValue& kv : ins.as<KeyValues>().items) {
        fields.push_back(&kv.key);
        fields.push_back(&kv.value);
      }
      break;
    case InstructionKind::Arg:
      for (const ArgDecl& d : ins.as<ArgDecls>().items) {
        if (d.default_value) {
          fields.push_back(&*d.default_value);
        }
      }
      break;
    case InstructionKind::Expose:
    case InstructionKind::Volume:
      for (const std::string& w : ins.as<Words>().items) {
        fields.push_back(&w);
      }
      break;
    case InstructionKind::Copy:
    case InstructionKind::Add: {
      const CopySpec& c = ins.as<CopySpec>();
      for (const std::string& src : c.sources) {
        fields.push_back(&src);
      }
      fields.push_back(&c.destination);
      if (c.chown) {
        fields.push_back(&*c.chown);
      }
      if (c.chmod) {
        fields.push_back(&*c.chmod);
      }
      for (const std::string& ex : c.excludes) {
        fields.push_back(&ex);
      }
      break;
    }
    case InstructionKind::Workdir:
    case InstructionKind::User:
    case InstructionKind::StopSignal:
      fields.push_back(&ins.as<Text>().value);
      break;
    default:
      break;
  }
  for (const std::string* f : fields) {
    auto r = expand_impl(*f, VarLookup(), ctx.escape, true);
    if (!r) {
      std::string m = instruction_name(ins.kind);
      m += ": ";
      m += r.error().message();
      return ctx.fail(m);
    }
  }
  return ok();
}

Result<Instruction> parse_logical(std::string_view logical, int line, int end_line,
                                  std::string source, char escape, const std::string& file,
                                  std::vector<Warning>* warnings) {
  Ctx ctx{file, line, escape, warnings};
  std::string_view t = trim(logical);
  size_t sp = 0;
  while (sp < t.size() && !is_space(t[sp])) {
    ++sp;
  }
  std::string_view word = t.substr(0, sp);
  auto kind = kind_from_name(word);
  if (!kind) {
    std::string m = "unknown instruction ";
    m += upper(word);
    std::string best;
    size_t best_d = 3;
    for (const auto& k : kKinds) {
      size_t d = edit_distance(upper(word), k.name);
      if (d < best_d) {
        best_d = d;
        best = k.name;
      }
    }
    if (!best.empty()) {
      m += " (did you mean ";
      m += best;
      m += "?)";
    }
    return ctx.fail(m);
  }
  Instruction ins;
  ins.kind = *kind;
  ins.line = line;
  ins.end_line = end_line;
  ins.text = std::string(t);
  ins.source = std::move(source);
  FlagSplit fs = extract_flags(t.substr(sp), escape);
  ins.flags = std::move(fs.flags);
  ins.args = std::move(fs.rest);
  BERTH_TRY(parse_payload(ins, ctx));
  BERTH_TRY(check_substitution_syntax(ins, ctx));
  return ins;
}

// ---- whole file -------------------------------------------------------------------------

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    text.remove_prefix(3);
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size()) {
        lines.push_back(text.substr(start));
      }
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  for (auto& l : lines) {
    if (!l.empty() && l.back() == '\r') {
      l.remove_suffix(1);
    }
  }
  return lines;
}

// A parser directive line: "# name = value". Returns {name lower-cased, value}.
std::optional<std::pair<std::string, std::string>> directive(std::string_view line) {
  std::string_view t = trim_left(line);
  if (t.empty() || t[0] != '#') {
    return std::nullopt;
  }
  t = trim_left(t.substr(1));
  size_t i = 0;
  if (t.empty() || !std::isalpha(static_cast<unsigned char>(t[0]))) {
    return std::nullopt;
  }
  while (i < t.size() && std::isalnum(static_cast<unsigned char>(t[i]))) {
    ++i;
  }
  std::string name = lower(t.substr(0, i));
  t = trim_left(t.substr(i));
  if (t.empty() || t[0] != '=') {
    return std::nullopt;
  }
  std::string_view value = trim(t.substr(1));
  if (value.empty()) {
    return std::nullopt;
  }
  return std::make_pair(name, std::string(value));
}

// Removes a trailing escape character (and white space after it): {content, continues}.
std::pair<std::string_view, bool> strip_continuation(std::string_view line, char escape) {
  std::string_view t = line;
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) {
    t.remove_suffix(1);
  }
  if (!t.empty() && t.back() == escape) {
    t.remove_suffix(1);
    return {t, true};
  }
  return {line, false};
}

bool is_comment(std::string_view line) {
  std::string_view t = trim_left(line);
  return !t.empty() && t[0] == '#';
}

}  // namespace

const char* instruction_name(InstructionKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) {
      return k.name;
    }
  }
  return "?";
}

std::vector<std::string> Command::argv(const std::vector<std::string>& shell_prefix) const {
  if (exec_form) {
    return exec;
  }
  std::vector<std::string> out = shell_prefix;
  out.push_back(shell);
  return out;
}

std::vector<std::string> Healthcheck::test() const {
  if (none) {
    return {"NONE"};
  }
  if (command.exec_form) {
    std::vector<std::string> out = {"CMD"};
    out.insert(out.end(), command.exec.begin(), command.exec.end());
    return out;
  }
  return {"CMD-SHELL", command.shell};
}

std::optional<std::string> Instruction::flag(std::string_view name) const {
  for (const Flag& f : flags) {
    if (f.name == name) {
      return f.value.value_or("");
    }
  }
  return std::nullopt;
}

Result<size_t> Dockerfile::find_stage(std::string_view target) const {
  if (target.empty()) {
    return stages.size() - 1;
  }
  std::string name = lower(target);
  for (const Stage& s : stages) {
    if (s.name == name) {
      return s.index;
    }
  }
  if (all_digits(target) && target.size() < 6 && std::stoul(std::string(target)) < stages.size()) {
    return static_cast<size_t>(std::stoul(std::string(target)));
  }
  std::string m = "no build stage named ";
  m += target;
  return Error(Errc::NotFound, std::move(m));
}

Result<Instruction> parse_instruction(std::string_view text, int line, char escape,
                                      const std::string& file_name) {
  if (trim(text).empty()) {
    return error_at(file_name, line, "empty instruction");
  }
  return parse_logical(text, line, line, std::string(text), escape, file_name, nullptr);
}

Result<Dockerfile> parse_dockerfile(std::string_view text, const ParseOptions& options) {
  Dockerfile df;
  df.file_name = options.file_name;
  const std::string& file = df.file_name;
  std::vector<std::string_view> lines = split_lines(text);

  // Parser directives: only at the very top, before any blank line, comment or instruction.
  std::set<std::string> seen;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto d = directive(lines[i]);
    if (!d || (d->first != "escape" && d->first != "syntax" && d->first != "check")) {
      break;
    }
    int line = static_cast<int>(i) + 1;
    if (!seen.insert(d->first).second) {
      std::string m = "only one ";
      m += d->first;
      m += " parser directive can be used";
      return error_at(file, line, m);
    }
    if (d->first == "escape") {
      if (d->second != "\\" && d->second != "`") {
        std::string m = "invalid escape character ";
        m += quoted(d->second);
        m += ": it must be \\ or `";
        return error_at(file, line, m);
      }
      df.directives.escape = d->second[0];
    } else if (d->first == "syntax") {
      df.directives.syntax = d->second;
    } else {
      df.directives.check = d->second;
    }
  }
  const char escape = df.directives.escape;

  size_t i = 0;
  while (i < lines.size()) {
    std::string_view first = lines[i];
    if (trim(first).empty() || is_comment(first)) {
      ++i;
      continue;
    }
    const int start_line = static_cast<int>(i) + 1;
    int last_line = start_line;
    auto [content, continues] = strip_continuation(trim_left(first), escape);
    std::string logical(content);
    ++i;
    while (continues && i < lines.size()) {
      std::string_view l = lines[i];
      ++i;
      if (is_comment(l)) {
        continue;
      }
      if (trim(l).empty()) {
        df.warnings.push_back(
            Warning{static_cast<int>(i),
                    error_at(file, static_cast<int>(i),
                             "empty continuation line (it ends the instruction in future Docker "
                             "releases)")
                        .message()});
        continue;
      }
      auto [more, again] = strip_continuation(l, escape);
      logical += more;
      continues = again;
      last_line = static_cast<int>(i);
    }
    if (trim(logical).empty()) {
      continue;
    }
    std::string source;
    for (int n = start_line; n <= last_line; ++n) {
      if (n > start_line) {
        source += '\n';
      }
      source += lines[static_cast<size_t>(n - 1)];
    }
    BERTH_ASSIGN_OR_RETURN(Instruction ins,
                           parse_logical(logical, start_line, last_line, std::move(source), escape,
                                         file, &df.warnings));
    if (ins.kind == InstructionKind::From) {
      Stage st;
      st.index = df.stages.size();
      st.name = ins.as<FromSpec>().name;
      for (const Stage& prev : df.stages) {
        if (!st.name.empty() && prev.name == st.name) {
          std::string m = "duplicate stage name ";
          m += st.name;
          m += " (first defined on line ";
          m += std::to_string(prev.from.line);
          m += ')';
          return error_at(file, ins.line, m);
        }
      }
      st.from = std::move(ins);
      df.stages.push_back(std::move(st));
      continue;
    }
    if (df.stages.empty()) {
      if (ins.kind == InstructionKind::Arg) {
        df.global_args.push_back(std::move(ins));
        continue;
      }
      std::string m = instruction_name(ins.kind);
      m += " before the first FROM: only ARG may come before FROM";
      return error_at(file, ins.line, m);
    }
    df.stages.back().instructions.push_back(std::move(ins));
  }
  if (df.stages.empty()) {
    return error_at(file, 1, "no FROM instruction");
  }

  // COPY --from must name an earlier stage (or an image); CMD twice is worth a warning.
  for (const Stage& st : df.stages) {
    int cmd_line = 0;
    int entry_line = 0;
    for (const Instruction& ins : st.instructions) {
      if (ins.kind == InstructionKind::Copy) {
        const auto& spec = ins.as<CopySpec>();
        if (spec.from && !has_var(*spec.from)) {
          auto r = resolve_copy_from(df, st.index, *spec.from);
          if (!r) {
            return error_at(file, ins.line, r.error().message());
          }
        }
      }
      int* seen_line = ins.kind == InstructionKind::Cmd          ? &cmd_line
                       : ins.kind == InstructionKind::Entrypoint ? &entry_line
                                                                 : nullptr;
      if (seen_line != nullptr) {
        if (*seen_line != 0) {
          std::string m = "more than one ";
          m += instruction_name(ins.kind);
          m += " in a stage; only the last one (this one) takes effect";
          df.warnings.push_back(Warning{ins.line, error_at(file, ins.line, m).message()});
        }
        *seen_line = ins.line;
      }
    }
  }
  return df;
}

// ---- substitution -----------------------------------------------------------------------

namespace {

class Expander {
 public:
  Expander(std::string_view s, const VarLookup& lookup, char escape, bool syntax_only)
      : s_(s), lookup_(lookup), escape_(escape), syntax_only_(syntax_only) {}

  struct Out {
    bool split = false;
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;

    void raw(std::string_view v) {
      cur += v;
      in_word = true;
    }
    void raw(char c) {
      cur += c;
      in_word = true;
    }
    // Unquoted text: white space separates words when splitting.
    void text(std::string_view v) {
      for (char c : v) {
        if (split && is_space(c)) {
          flush();
        } else {
          cur += c;
          in_word = true;
        }
      }
    }
    void flush() {
      if (in_word) {
        words.push_back(std::move(cur));
      }
      cur.clear();
      in_word = false;
    }
  };

  // Processes until the end, or (stop_at_brace) until an unmatched '}', which is consumed.
  Status lex(Out& out, bool stop_at_brace, bool& found_brace) {
    found_brace = false;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (stop_at_brace && c == '}') {
        ++pos_;
        found_brace = true;
        return ok();
      }
      if (c == '\'') {
        size_t end = s_.find('\'', pos_ + 1);
        if (end == std::string_view::npos) {
          return Error(Errc::InvalidArgument, "unterminated single quote");
        }
        out.raw(s_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
      } else if (c == '"') {
        ++pos_;
        out.in_word = true;
        BERTH_TRY(double_quoted(out));
      } else if (c == '$') {
        BERTH_ASSIGN_OR_RETURN(std::string v, dollar());
        out.text(v);
      } else if (c == escape_) {
        if (pos_ + 1 < s_.size()) {
          out.raw(s_[pos_ + 1]);
        }
        pos_ += 2;
      } else {
        out.text(std::string_view(&s_[pos_], 1));
        ++pos_;
      }
    }
    return ok();
  }

  size_t pos() const { return pos_; }

 private:
  Status double_quoted(Out& out) {
    while (true) {
      if (pos_ >= s_.size()) {
        return Error(Errc::InvalidArgument, "unterminated double quote");
      }
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return ok();
      }
      if (c == '$') {
        BERTH_ASSIGN_OR_RETURN(std::string v, dollar());
        out.raw(v);
      } else if (c == escape_ && pos_ + 1 < s_.size() &&
                 (s_[pos_ + 1] == '"' || s_[pos_ + 1] == '$' || s_[pos_ + 1] == escape_)) {
        out.raw(s_[pos_ + 1]);
        pos_ += 2;
      } else {
        out.raw(c);
        ++pos_;
      }
    }
  }

  std::string name() {
    size_t start = pos_;
    if (pos_ < s_.size() && is_digit(s_[pos_])) {
      while (pos_ < s_.size() && is_digit(s_[pos_])) {
        ++pos_;
      }
      return std::string(s_.substr(start, pos_ - start));
    }
    if (pos_ < s_.size() && std::string_view("*#@!?-$").find(s_[pos_]) != std::string::npos) {
      ++pos_;
      return std::string(s_.substr(start, 1));
    }
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (!(std::isalnum(c) || c == '_' || c >= 0x80)) {
        break;
      }
      ++pos_;
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  std::optional<std::string> get(const std::string& n) const {
    if (!lookup_) {
      return std::nullopt;
    }
    return lookup_(n);
  }

  // At '$'.
  Result<std::string> dollar() {
    ++pos_;
    if (pos_ >= s_.size()) {
      return std::string("$");
    }
    if (s_[pos_] != '{') {
      std::string n = name();
      if (n.empty()) {
        return std::string("$");
      }
      return get(n).value_or("");
    }
    ++pos_;
    std::string n = name();
    if (pos_ >= s_.size()) {
      return Error(Errc::InvalidArgument, "missing '}' after ${");
    }
    if (n.empty()) {
      return Error(Errc::InvalidArgument, "bad substitution: ${ needs a variable name");
    }
    char c = s_[pos_++];
    if (c == '}') {
      return get(n).value_or("");
    }
    bool colon = false;
    if (c == ':') {
      colon = true;
      if (pos_ >= s_.size()) {
        return Error(Errc::InvalidArgument, "missing '}' after ${");
      }
      c = s_[pos_++];
    }
    if (c != '-' && c != '+' && c != '?') {
      std::string m = "unsupported modifier (";
      if (colon) {
        m += ':';
      }
      m += c;
      m += ") in substitution ${";
      m += n;
      m += "...}: use :-, -, :+, +, :? or ?";
      return Error(Errc::InvalidArgument, std::move(m));
    }
    Out word;
    bool found = false;
    BERTH_TRY(lex(word, true, found));
    if (!found) {
      return Error(Errc::InvalidArgument, "missing '}' after ${");
    }
    std::optional<std::string> v = get(n);
    bool present = colon ? (v && !v->empty()) : v.has_value();
    switch (c) {
      case '-':
        return present ? *v : word.cur;
      case '+':
        return present ? word.cur : std::string();
      default:
        if (present) {
          return *v;
        }
        if (syntax_only_) {
          return std::string();
        }
        std::string m = n;
        m += ": ";
        m += word.cur.empty() ? (colon ? "parameter is unset or empty" : "parameter is unset")
                              : word.cur;
        return Error(Errc::InvalidArgument, std::move(m));
    }
  }

  std::string_view s_;
  const VarLookup& lookup_;
  char escape_;
  bool syntax_only_;
  size_t pos_ = 0;
};

Result<std::string> expand_impl(std::string_view word, const VarLookup& lookup, char escape,
                                bool syntax_only) {
  Expander e(word, lookup, escape, syntax_only);
  Expander::Out out;
  bool found = false;
  BERTH_TRY(e.lex(out, false, found));
  return std::move(out.cur);
}

Status expand_into(std::string& value, const VarLookup& lookup, char escape, const Ctx& ctx,
                   std::string_view what) {
  auto r = expand_impl(value, lookup, escape, false);
  if (!r) {
    std::string m(what);
    m += ": ";
    m += r.error().message();
    return ctx.fail(m);
  }
  value = std::move(*r);
  return ok();
}

}  // namespace

Result<std::string> expand_word(std::string_view word, const VarLookup& lookup, char escape) {
  return expand_impl(word, lookup, escape, false);
}

Result<std::vector<std::string>> expand_words(std::string_view text, const VarLookup& lookup,
                                              char escape) {
  Expander e(text, lookup, escape, false);
  Expander::Out out;
  out.split = true;
  bool found = false;
  BERTH_TRY(e.lex(out, false, found));
  out.flush();
  return std::move(out.words);
}

bool substitutes_variables(InstructionKind kind) {
  switch (kind) {
    case InstructionKind::Add:
    case InstructionKind::Copy:
    case InstructionKind::Env:
    case InstructionKind::Expose:
    case InstructionKind::From:
    case InstructionKind::Label:
    case InstructionKind::StopSignal:
    case InstructionKind::User:
    case InstructionKind::Volume:
    case InstructionKind::Workdir:
    case InstructionKind::Arg:
      return true;
    default:
      return false;
  }
}

Result<Instruction> expand_instruction(const Instruction& instruction, const VarLookup& lookup,
                                       char escape, const std::string& file_name) {
  Instruction ins = instruction;
  Ctx ctx{file_name, ins.line, escape, nullptr};
  const char* kw = instruction_name(ins.kind);
  switch (ins.kind) {
    case InstructionKind::Env:
    case InstructionKind::Label: {
      // Every pair sees the variables from before the instruction (lookup is not updated).
      for (KeyValue& kv : ins.as<KeyValues>().items) {
        BERTH_TRY(expand_into(kv.key, lookup, escape, ctx, kw));
        BERTH_TRY(expand_into(kv.value, lookup, escape, ctx, kw));
        if (kv.key.empty()) {
          std::string m = kw;
          m += " names can not be blank";
          return ctx.fail(m);
        }
      }
      break;
    }
    case InstructionKind::Arg:
      for (ArgDecl& d : ins.as<ArgDecls>().items) {
        if (d.default_value) {
          BERTH_TRY(expand_into(*d.default_value, lookup, escape, ctx, "ARG"));
        }
      }
      break;
    case InstructionKind::Expose: {
      Words& w = ins.as<Words>();
      std::vector<std::string> ports;
      for (const std::string& item : w.items) {
        auto r = expand_words(item, lookup, escape);
        if (!r) {
          std::string m = "EXPOSE: ";
          m += r.error().message();
          return ctx.fail(m);
        }
        for (const std::string& p : *r) {
          auto spec = parse_port(p);
          if (!spec) {
            std::string m = "EXPOSE ";
            m += spec.error().message();
            return ctx.fail(m);
          }
          ports.push_back(spec->str());
        }
      }
      w.items = std::move(ports);
      break;
    }
    case InstructionKind::Volume:
      for (std::string& item : ins.as<Words>().items) {
        BERTH_TRY(expand_into(item, lookup, escape, ctx, kw));
        if (trim(item).empty()) {
          return ctx.fail("VOLUME specified can not be an empty string");
        }
      }
      break;
    case InstructionKind::Copy:
    case InstructionKind::Add: {
      CopySpec& spec = ins.as<CopySpec>();
      for (std::string& src : spec.sources) {
        BERTH_TRY(expand_into(src, lookup, escape, ctx, kw));
        if (ins.kind == InstructionKind::Add && is_remote_source(src)) {
          return ctx.fail(
              "ADD from a URL is not supported; download the file in a RUN step or commit it "
              "to the repository");
        }
      }
      BERTH_TRY(expand_into(spec.destination, lookup, escape, ctx, kw));
      if (spec.destination.empty()) {
        std::string m = kw;
        m += " destination is empty after substitution";
        return ctx.fail(m);
      }
      if (spec.chown) {
        BERTH_TRY(expand_into(*spec.chown, lookup, escape, ctx, kw));
      }
      if (spec.chmod) {
        BERTH_TRY(expand_into(*spec.chmod, lookup, escape, ctx, kw));
        BERTH_TRY(check_chmod(*spec.chmod, ctx, kw));
      }
      for (std::string& ex : spec.excludes) {
        BERTH_TRY(expand_into(ex, lookup, escape, ctx, kw));
      }
      break;
    }
    case InstructionKind::Workdir:
    case InstructionKind::User:
    case InstructionKind::StopSignal: {
      std::string& v = ins.as<Text>().value;
      BERTH_TRY(expand_into(v, lookup, escape, ctx, kw));
      if (v.empty()) {
        std::string m = kw;
        m += " is empty after substitution";
        return ctx.fail(m);
      }
      if (ins.kind == InstructionKind::StopSignal) {
        auto sig = parse_signal(v);
        if (!sig) {
          std::string m = "STOPSIGNAL ";
          m += sig.error().message();
          return ctx.fail(m);
        }
        v = *sig;
      }
      break;
    }
    default:
      break;
  }
  return ins;
}

Result<FromSpec> expand_from(const Stage& stage, const VarLookup& global_lookup, char escape,
                             const std::string& file_name) {
  FromSpec spec = stage.from.as<FromSpec>();
  Ctx ctx{file_name, stage.from.line, escape, nullptr};
  BERTH_TRY(expand_into(spec.image, global_lookup, escape, ctx, "FROM"));
  if (spec.image.empty()) {
    return ctx.fail("FROM: the base image name is empty after substitution");
  }
  if (!spec.platform.empty()) {
    BERTH_TRY(expand_into(spec.platform, global_lookup, escape, ctx, "FROM --platform"));
  }
  return spec;
}

// ---- ARG / ENV scoping --------------------------------------------------------------------

namespace {
constexpr const char* kProxyArgs[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                      "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                      "ALL_PROXY",  "all_proxy"};
}  // namespace

bool is_predefined_arg(std::string_view name) {
  return std::find(std::begin(kProxyArgs), std::end(kProxyArgs), name) != std::end(kProxyArgs);
}

std::map<std::string, std::string> platform_args(
    std::string_view target_os, std::string_view target_arch, std::string_view target_variant,
    std::string_view build_os, std::string_view build_arch, std::string_view build_variant) {
  auto platform = [](std::string_view os, std::string_view arch, std::string_view variant) {
    std::string p(os);
    p += '/';
    p += arch;
    if (!variant.empty()) {
      p += '/';
      p += variant;
    }
    return p;
  };
  return {
      {"TARGETPLATFORM", platform(target_os, target_arch, target_variant)},
      {"TARGETOS", std::string(target_os)},
      {"TARGETARCH", std::string(target_arch)},
      {"TARGETVARIANT", std::string(target_variant)},
      {"BUILDPLATFORM", platform(build_os, build_arch, build_variant)},
      {"BUILDOS", std::string(build_os)},
      {"BUILDARCH", std::string(build_arch)},
      {"BUILDVARIANT", std::string(build_variant)},
  };
}

BuildVars::BuildVars(std::map<std::string, std::string> build_args,
                     std::map<std::string, std::string> automatic_args)
    : build_args_(std::move(build_args)), automatic_(std::move(automatic_args)) {}

void BuildVars::declare_global(const ArgDecl& arg) {
  std::optional<std::string> v;
  if (auto it = build_args_.find(arg.name); it != build_args_.end()) {
    v = it->second;
  } else if (arg.default_value) {
    v = arg.default_value;
  } else if (auto a = automatic_.find(arg.name); a != automatic_.end()) {
    v = a->second;
  }
  global_[arg.name] = std::move(v);
}

VarLookup BuildVars::global_lookup() const {
  return [this](std::string_view name) -> std::optional<std::string> {
    if (auto it = global_.find(std::string(name)); it != global_.end()) {
      return it->second;
    }
    if (auto it = automatic_.find(std::string(name)); it != automatic_.end()) {
      return it->second;
    }
    return std::nullopt;
  };
}

void BuildVars::begin_stage(std::vector<KeyValue> image_env) {
  stage_args_.clear();
  env_ = std::move(image_env);
}

void BuildVars::declare_arg(const ArgDecl& arg) {
  std::optional<std::string> v;
  if (auto it = build_args_.find(arg.name); it != build_args_.end()) {
    v = it->second;
  } else if (arg.default_value) {
    v = arg.default_value;
  } else if (auto g = global_.find(arg.name); g != global_.end() && g->second) {
    v = g->second;
  } else if (auto a = automatic_.find(arg.name); a != automatic_.end()) {
    v = a->second;
  }
  stage_args_[arg.name] = std::move(v);
}

void BuildVars::set_env(const std::string& key, const std::string& value) {
  for (KeyValue& kv : env_) {
    if (kv.key == key) {
      kv.value = value;
      return;
    }
  }
  env_.push_back(KeyValue{key, value});
}

std::optional<std::string> BuildVars::find(std::string_view name) const {
  for (const KeyValue& kv : env_) {
    if (kv.key == name) {
      return kv.value;
    }
  }
  if (auto it = stage_args_.find(std::string(name)); it != stage_args_.end() && it->second) {
    return it->second;
  }
  if (is_predefined_arg(name)) {
    if (auto it = build_args_.find(std::string(name)); it != build_args_.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

VarLookup BuildVars::lookup() const {
  return [this](std::string_view name) { return find(name); };
}

std::vector<std::string> BuildVars::run_env() const {
  std::vector<std::string> out;
  std::set<std::string> keys;
  for (const KeyValue& kv : env_) {
    std::string e = kv.key;
    e += '=';
    e += kv.value;
    out.push_back(std::move(e));
    keys.insert(kv.key);
  }
  std::map<std::string, std::string> args;
  for (const auto& [k, v] : stage_args_) {
    if (v) {
      args[k] = *v;
    }
  }
  for (const auto& [k, v] : build_args_) {
    if (is_predefined_arg(k) && !args.count(k)) {
      args[k] = v;
    }
  }
  for (const auto& [k, v] : args) {
    if (!keys.count(k)) {
      std::string e = k;
      e += '=';
      e += v;
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::set<std::string> unused_build_args(const Dockerfile& dockerfile,
                                        const std::map<std::string, std::string>& build_args) {
  std::set<std::string> declared;
  auto collect = [&declared](const Instruction& ins) {
    if (ins.kind == InstructionKind::Arg) {
      for (const ArgDecl& d : ins.as<ArgDecls>().items) {
        declared.insert(d.name);
      }
    }
  };
  for (const Instruction& ins : dockerfile.global_args) {
    collect(ins);
  }
  for (const Stage& st : dockerfile.stages) {
    for (const Instruction& ins : st.instructions) {
      collect(ins);
    }
  }
  std::set<std::string> unused;
  for (const auto& [k, v] : build_args) {
    if (!declared.count(k) && !is_predefined_arg(k) && k != "SOURCE_DATE_EPOCH") {
      unused.insert(k);
    }
  }
  return unused;
}

// ---- stage references ---------------------------------------------------------------------

StageRef resolve_base(const Dockerfile& dockerfile, size_t current, std::string_view base) {
  StageRef ref;
  std::string name = lower(base);
  for (size_t j = 0; j < current && j < dockerfile.stages.size(); ++j) {
    if (!dockerfile.stages[j].name.empty() && dockerfile.stages[j].name == name) {
      ref.stage = j;
      return ref;
    }
  }
  if (name == "scratch") {
    ref.scratch = true;
    return ref;
  }
  ref.image = std::string(base);
  return ref;
}

Result<StageRef> resolve_copy_from(const Dockerfile& dockerfile, size_t current,
                                   std::string_view from) {
  StageRef ref;
  std::string prefix = "COPY --from=";
  prefix += from;
  prefix += ": ";
  if (all_digits(from)) {
    size_t idx = from.size() < 6 ? std::stoul(std::string(from)) : SIZE_MAX;
    if (idx >= current) {
      std::string m = prefix;
      m += "stage ";
      m += from;
      m += current == 0 ? " does not come before this one (this is the first stage)"
                        : " does not come before this one (earlier stages are 0 to ";
      if (current != 0) {
        m += std::to_string(current - 1);
        m += ')';
      }
      return Error(Errc::InvalidArgument, std::move(m));
    }
    ref.stage = idx;
    return ref;
  }
  std::string name = lower(from);
  for (size_t j = 0; j < dockerfile.stages.size(); ++j) {
    if (dockerfile.stages[j].name.empty() || dockerfile.stages[j].name != name) {
      continue;
    }
    if (j < current) {
      ref.stage = j;
      return ref;
    }
    std::string m = prefix;
    if (j == current) {
      m += "a stage cannot copy from itself";
    } else {
      m += "stage ";
      m += name;
      m += " is defined later; copy only from earlier stages";
    }
    return Error(Errc::InvalidArgument, std::move(m));
  }
  ref.image = std::string(from);
  return ref;
}

// ---- values ---------------------------------------------------------------------------

std::string PortSpec::str() const {
  std::string s = std::to_string(first);
  if (last != first) {
    s += '-';
    s += std::to_string(last);
  }
  s += '/';
  s += protocol;
  return s;
}

Result<PortSpec> parse_port(std::string_view text) {
  PortSpec p;
  std::string_view t = text;
  size_t slash = t.find('/');
  p.protocol = "tcp";
  if (slash != std::string_view::npos) {
    p.protocol = lower(t.substr(slash + 1));
    t = t.substr(0, slash);
    if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp") {
      std::string m = quoted(text);
      m += ": protocol must be tcp, udp or sctp";
      return Error(Errc::InvalidArgument, std::move(m));
    }
  }
  auto number = [](std::string_view s) -> std::optional<uint16_t> {
    if (!all_digits(s) || s.size() > 5) {
      return std::nullopt;
    }
    unsigned long v = std::stoul(std::string(s));
    if (v < 1 || v > 65535) {
      return std::nullopt;
    }
    return static_cast<uint16_t>(v);
  };
  size_t dash = t.find('-');
  auto a = number(t.substr(0, dash));
  auto b = dash == std::string_view::npos ? a : number(t.substr(dash + 1));
  if (!a || !b || *b < *a) {
    std::string m = quoted(text);
    m += ": not a port (1-65535), a range such as 8000-8010, with an optional /tcp or /udp";
    return Error(Errc::InvalidArgument, std::move(m));
  }
  p.first = *a;
  p.last = *b;
  return p;
}

Result<int64_t> parse_duration(std::string_view text) {
  std::string_view s = text;
  auto bad = [&text] {
    std::string m = "invalid duration ";
    m += quoted(text);
    m += " (use e.g. 30s, 1m30s, 500ms)";
    return Error(Errc::InvalidArgument, std::move(m));
  };
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    return int64_t{0};
  }
  if (s.empty()) {
    return bad();
  }
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && is_digit(s[i])) {
      ++i;
    }
    size_t int_len = i;
    size_t frac_len = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && is_digit(s[i])) {
        ++i;
        ++frac_len;
      }
    }
    if (int_len == 0 && frac_len == 0) {
      return bad();
    }
    std::string digits = "0";
    digits += s.substr(0, i);
    long double number = std::stold(digits);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !is_digit(s[u]) && s[u] != '.') {
      ++u;
    }
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return bad();
    }
    total += number * scale;
  }
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return bad();
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return neg ? -ns : ns;
}

Result<std::string> parse_signal(std::string_view text) {
  std::string_view t = trim(text);
  auto bad = [&text] {
    std::string m = "invalid signal ";
    m += quoted(text);
    m += " (use a name such as SIGTERM or a number)";
    return Error(Errc::InvalidArgument, std::move(m));
  };
  if (all_digits(t)) {
    if (t.size() > 2 || std::stoi(std::string(t)) < 1 || std::stoi(std::string(t)) > 64) {
      return bad();
    }
    return std::to_string(std::stoi(std::string(t)));
  }
  std::string up = upper(t);
  if (up.rfind("SIG", 0) == 0) {
    up = up.substr(3);
  }
  static constexpr const char* kNames[] = {
      "ABRT", "ALRM",   "BUS",  "CHLD",   "CLD",   "CONT", "FPE",  "HUP",   "ILL",
      "INT",  "IO",     "IOT",  "KILL",   "PIPE",  "POLL", "PROF", "PWR",   "QUIT",
      "SEGV", "STKFLT", "STOP", "SYS",    "TERM",  "TRAP", "TSTP", "TTIN",  "TTOU",
      "URG",  "USR1",   "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};
  bool known = std::find(std::begin(kNames), std::end(kNames), up) != std::end(kNames);
  if (!known) {
    for (const char* base : {"RTMIN+", "RTMAX-"}) {
      std::string_view b = base;
      if (up.size() > b.size() && up.compare(0, b.size(), b) == 0) {
        std::string_view n = std::string_view(up).substr(b.size());
        known = all_digits(n) && n.size() <= 2 && std::stoi(std::string(n)) >= 1 &&
                std::stoi(std::string(n)) <= 15;
      }
    }
  }
  if (!known) {
    return bad();
  }
  std::string out = "SIG";
  out += up;
  return out;
}

bool is_remote_source(std::string_view source) {
  return starts_with_ci(source, "http://") || starts_with_ci(source, "https://") ||
         starts_with_ci(source, "git://") || starts_with_ci(source, "ssh://") ||
         starts_with_ci(source, "git@");
}

}  // namespace berth::builder
