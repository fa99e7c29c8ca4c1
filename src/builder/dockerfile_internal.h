// SPDX-License-Identifier: Apache-2.0
// Private to the builder module: what the Dockerfile parser's files (dockerfile*.cc) share —
// text helpers, the lexer of JSON arrays, words and flags, the per-instruction context, and the
// entry points one file calls in another. Pure functions: no I/O, no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/dockerfile.h"
#include "common/ascii.h"
#include "common/result.h"

namespace berth::builder::detail {

using ascii::lower;
using ascii::upper;

// ---- text -----------------------------------------------------------------------------------

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool all_digits(std::string_view s);
std::string_view trim_left(std::string_view s);
std::string_view trim(std::string_view s);
bool starts_with_ci(std::string_view s, std::string_view prefix);
/// Splits at runs of white space (no quote handling), as Docker does for FROM, EXPOSE, COPY.
std::vector<std::string> split_ws(std::string_view s);
std::string quoted(std::string_view s);
/// "<file>:<line>: <message>" as an InvalidArgument error.
Error error_at(const std::string& file, int line, std::string_view message);

// ---- lexing (dockerfile_lex.cc) -------------------------------------------------------------

enum class JsonOutcome { NotArray, Ok, Bad };

struct JsonArray {
  JsonOutcome outcome = JsonOutcome::NotArray;
  std::vector<std::string> items;
  std::string error;          // when Bad
  bool unterminated = false;  // Bad because the text ended inside the array
};

JsonArray parse_json_array(std::string_view s);
Result<std::optional<std::vector<std::string>>> maybe_json(std::string_view args);
Result<std::vector<std::string>> parse_words(std::string_view s, char escape);

struct FlagSplit {
  std::vector<Flag> flags;
  std::string rest;
};

/// Leading "--name[=value]" words; quotes in them are removed, the escape char escapes.
FlagSplit extract_flags(std::string_view args, char escape);
bool has_heredoc(std::string_view s);
bool has_var(std::string_view s);

// ---- one instruction (dockerfile_instruction.cc) --------------------------------------------

/// Where an instruction came from, for its errors and warnings.
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

Status check_chmod(std::string_view v, const Ctx& ctx, const char* kw);
/// Parses one logical line (continuations joined) into an Instruction.
Result<Instruction> parse_logical(std::string_view logical, int line, int end_line,
                                  std::string source, char escape, const std::string& file,
                                  std::vector<Warning>* warnings);

// ---- substitution (dockerfile_expand.cc) ----------------------------------------------------

/// Substitutes variables in one word; syntax_only checks the syntax and substitutes nothing.
Result<std::string> expand_impl(std::string_view word, const VarLookup& lookup, char escape,
                                bool syntax_only);

}  // namespace berth::builder::detail
