// SPDX-License-Identifier: Apache-2.0
// .dockerignore rules and path globs: Go's filepath.Match semantics plus "**". See
// dockerfile.h.
#include <algorithm>
#include <memory>
#include <utility>

#include "builder/dockerfile.h"

namespace berth::builder {

// A compiled glob: a list of tokens matched with memoised backtracking, so any pattern runs in
// O(tokens x path^2) at worst.
struct CompiledPattern {
  enum class Kind {
    Literal,     // one character
    Star,        // '*': any run of characters except '/'
    One,         // '?': one character except '/'
    Class,       // [...]: one character except '/'
    DirsPrefix,  // "**/" (or "**" before more pattern): zero or more whole "dir/" segments
    Everything,  // "**" at the end: anything, '/' included
  };
  struct Token {
    Kind kind = Kind::Literal;
    char c = 0;
    bool negated = false;
    std::vector<std::pair<char, char>> ranges;
  };
  std::vector<Token> tokens;

  bool match(std::string_view path) const {
    std::vector<signed char> memo((tokens.size() + 1) * (path.size() + 1), -1);
    return match_at(0, 0, path, memo);
  }

 private:
  bool match_at(size_t ti, size_t si, std::string_view s, std::vector<signed char>& memo) const {
    signed char& m = memo[ti * (s.size() + 1) + si];
    if (m >= 0) {
      return m != 0;
    }
    bool r = false;
    if (ti == tokens.size()) {
      r = si == s.size();
    } else {
      const Token& t = tokens[ti];
      switch (t.kind) {
        case Kind::Literal:
          r = si < s.size() && s[si] == t.c && match_at(ti + 1, si + 1, s, memo);
          break;
        case Kind::One:
          r = si < s.size() && s[si] != '/' && match_at(ti + 1, si + 1, s, memo);
          break;
        case Kind::Class:
          r = si < s.size() && s[si] != '/' && in_class(t, s[si]) &&
              match_at(ti + 1, si + 1, s, memo);
          break;
        case Kind::Star:
          for (size_t k = si; k <= s.size(); ++k) {
            if (match_at(ti + 1, k, s, memo)) {
              r = true;
              break;
            }
            if (k < s.size() && s[k] == '/') {
              break;
            }
          }
          break;
        case Kind::DirsPrefix:
          r = match_at(ti + 1, si, s, memo);
          for (size_t k = si; !r && k < s.size(); ++k) {
            if (s[k] == '/') {
              r = match_at(ti + 1, k + 1, s, memo);
            }
          }
          break;
        case Kind::Everything:
          r = true;
          break;
      }
    }
    m = r ? 1 : 0;
    return r;
  }

  static bool in_class(const Token& t, char c) {
    bool hit = false;
    for (const auto& [lo, hi] : t.ranges) {
      if (c >= lo && c <= hi) {
        hit = true;
      }
    }
    return hit != t.negated;
  }
};

namespace {

Error bad_pattern(std::string_view pattern, std::string_view why) {
  std::string m = "bad pattern \"";
  m += pattern;
  m += "\": ";
  m += why;
  return Error(Errc::InvalidArgument, std::move(m));
}

Result<CompiledPattern> compile(std::string_view p, bool double_star) {
  using Kind = CompiledPattern::Kind;
  CompiledPattern out;
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    CompiledPattern::Token t;
    if (c == '*') {
      if (double_star && i + 1 < p.size() && p[i + 1] == '*') {
        i += 2;
        if (i < p.size() && p[i] == '/') {
          ++i;
        }
        t.kind = i == p.size() ? Kind::Everything : Kind::DirsPrefix;
      } else {
        t.kind = Kind::Star;
        ++i;
      }
    } else if (c == '?') {
      t.kind = Kind::One;
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= p.size()) {
        return bad_pattern(p, "it ends with an escape character");
      }
      t.c = p[i + 1];
      i += 2;
    } else if (c == '[') {
      t.kind = Kind::Class;
      ++i;
      if (i < p.size() && p[i] == '^') {
        t.negated = true;
        ++i;
      }
      bool closed = false;
      while (i < p.size()) {
        if (p[i] == ']' && !t.ranges.empty()) {
          closed = true;
          ++i;
          break;
        }
        char lo = p[i];
        if (lo == '\\') {
          if (i + 1 >= p.size()) {
            break;
          }
          lo = p[++i];
        }
        ++i;
        char hi = lo;
        if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
          hi = p[i + 1];
          i += 2;
          if (hi == '\\') {
            if (i >= p.size()) {
              break;
            }
            hi = p[i++];
          }
          if (hi < lo) {
            return bad_pattern(p, "a character range goes backwards");
          }
        }
        t.ranges.emplace_back(lo, hi);
      }
      if (!closed) {
        return bad_pattern(p, "unterminated [ character class");
      }
    } else {
      t.c = c;
      ++i;
    }
    out.tokens.push_back(std::move(t));
  }
  return out;
}

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string_view trim_ws(std::string_view s) {
  auto sp = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  };
  while (!s.empty() && sp(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && sp(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string clean_path(std::string_view path) {
  bool rooted = !path.empty() && path[0] == '/';
  std::vector<std::string_view> out;
  for (std::string_view seg : segments(path)) {
    if (seg.empty() || seg == ".") {
      continue;
    }
    if (seg == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.push_back(seg);
      }
      continue;
    }
    out.push_back(seg);
  }
  if (out.empty()) {
    return ".";
  }
  std::string s;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) {
      s += '/';
    }
    s += out[i];
  }
  return s;
}

Result<bool> path_match(std::string_view pattern, std::string_view path, bool double_star) {
  BERTH_ASSIGN_OR_RETURN(CompiledPattern c, compile(pattern, double_star));
  return c.match(path);
}

Result<DockerIgnore> DockerIgnore::from_patterns(const std::vector<std::string>& patterns) {
  DockerIgnore di;
  int line = 0;
  for (const std::string& raw : patterns) {
    ++line;
    std::string_view p = trim_ws(raw);
    Rule rule;
    rule.line = line;
    if (!p.empty() && p[0] == '!') {
      rule.exception = true;
      p = trim_ws(p.substr(1));
    }
    if (p.empty()) {
      continue;
    }
    rule.pattern = clean_path(p);
    auto compiled = compile(rule.pattern, true);
    if (!compiled) {
      return std::move(compiled).error();
    }
    di.compiled_.push_back(std::make_shared<const CompiledPattern>(std::move(*compiled)));
    di.rules_.push_back(std::move(rule));
  }
  return di;
}

Result<DockerIgnore> DockerIgnore::parse(std::string_view text, const std::string& file_name) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    text.remove_prefix(3);
  }
  std::vector<std::string> patterns;
  std::vector<int> lines;
  int line = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view l =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line;
    // Only a '#' in the first column starts a comment (as in Docker).
    if (!l.empty() && l[0] == '#') {
      continue;
    }
    if (trim_ws(l).empty()) {
      continue;
    }
    patterns.emplace_back(l);
    lines.push_back(line);
  }
  DockerIgnore di;
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto one = from_patterns({patterns[i]});
    if (!one) {
      std::string m = file_name;
      m += ':';
      m += std::to_string(lines[i]);
      m += ": ";
      m += one.error().message();
      return Error(Errc::InvalidArgument, std::move(m));
    }
    for (size_t r = 0; r < one->rules_.size(); ++r) {
      Rule rule = one->rules_[r];
      rule.line = lines[i];
      di.rules_.push_back(std::move(rule));
      di.compiled_.push_back(one->compiled_[r]);
    }
  }
  return di;
}

bool DockerIgnore::excluded(std::string_view path) const {
  std::string p = clean_path(path);
  if (p == "." || rules_.empty()) {
    return false;
  }
  // The path itself and each of its parent directories: a rule that matches a parent
  // matches everything below it.
  std::vector<std::string_view> candidates;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '/') {
      candidates.emplace_back(p.data(), i);
    }
  }
  candidates.emplace_back(p);
  bool excluded = false;
  for (size_t r = 0; r < rules_.size(); ++r) {
    bool hit = std::any_of(candidates.begin(), candidates.end(),
                           [&](std::string_view c) { return compiled_[r]->match(c); });
    if (hit) {
      excluded = !rules_[r].exception;
    }
  }
  return excluded;
}

bool DockerIgnore::may_reinclude_below(std::string_view dir) const {
  std::string d = clean_path(dir);
  std::vector<std::string_view> dsegs;
  if (d != ".") {
    dsegs = segments(d);
  }
  for (const Rule& rule : rules_) {
    if (!rule.exception) {
      continue;
    }
    std::vector<std::string_view> psegs = segments(rule.pattern);
    size_t i = 0;
    bool possible = true;
    for (; i < dsegs.size(); ++i) {
      if (i >= psegs.size()) {
        possible = false;  // the pattern stops at an ancestor of dir (or dir itself)
        break;
      }
      if (psegs[i].find("**") != std::string_view::npos) {
        break;  // "**" can reach anything below
      }
      auto m = path_match(psegs[i], dsegs[i]);
      if (!m || !*m) {
        possible = false;
        break;
      }
    }
    if (possible && (i < dsegs.size() || psegs.size() > dsegs.size())) {
      return true;
    }
  }
  return false;
}

}  // namespace berth::builder
