// SPDX-License-Identifier: Apache-2.0
// Dockerfile variable substitution ($VAR, ${VAR:-word}, ...) of words and instructions. See
// dockerfile.h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/dockerfile_internal.h"

namespace berth::builder {

using namespace detail;

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

}  // namespace

Result<std::string> detail::expand_impl(std::string_view word, const VarLookup& lookup, char escape,
                                        bool syntax_only) {
  Expander e(word, lookup, escape, syntax_only);
  Expander::Out out;
  bool found = false;
  BERTH_TRY(e.lex(out, false, found));
  return std::move(out.cur);
}

namespace {

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

}  // namespace berth::builder
