// SPDX-License-Identifier: Apache-2.0
// Dockerfile parsing of a whole file: parser directives, line continuations, comments and
// stages, one logical line at a time through parse_logical(). See dockerfile.h.
#include "builder/dockerfile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "builder/dockerfile_internal.h"

namespace berth::builder {

using namespace detail;

namespace {

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

}  // namespace berth::builder
