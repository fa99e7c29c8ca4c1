// SPDX-License-Identifier: Apache-2.0
// One Dockerfile instruction: keyword, flags and arguments parsed into an Instruction.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/dockerfile_internal.h"
#include "common/ascii.h"

namespace berth::builder {

using namespace detail;

namespace {

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

// ---- one instruction ----------------------------------------------------------------------

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

}  // namespace

Status detail::check_chmod(std::string_view v, const Ctx& ctx, const char* kw) {
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

namespace {

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

}  // namespace

Result<Instruction> detail::parse_logical(std::string_view logical, int line, int end_line,
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
      size_t d = ascii::edit_distance(upper(word), k.name);
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

const char* instruction_name(InstructionKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) {
      return k.name;
    }
  }
  return "?";
}

}  // namespace berth::builder
