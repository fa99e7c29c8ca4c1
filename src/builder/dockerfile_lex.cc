// SPDX-License-Identifier: Apache-2.0
// Dockerfile lexing: text helpers, JSON-array arguments, words and leading flags. See
// dockerfile_internal.h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/dockerfile_internal.h"

namespace berth::builder::detail {

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

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

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

Error error_at(const std::string& file, int line, std::string_view message) {
  std::string m = file;
  m += ':';
  m += std::to_string(line);
  m += ": ";
  m += message;
  return Error(Errc::InvalidArgument, std::move(m));
}

// ---- JSON arrays of strings ---------------------------------------------------------------

namespace {

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

}  // namespace

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

}  // namespace berth::builder::detail
