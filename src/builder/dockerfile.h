// SPDX-License-Identifier: Apache-2.0
// Dockerfile parsing, variable substitution, ARG/ENV scoping and .dockerignore matching.
//
// Everything here is pure: no file system, clock or network. The caller reads the Dockerfile
// and .dockerignore and passes their text in; the builder executes the parsed plan. Every
// error is InvalidArgument with a message that starts "<file>:<line>: " (the first line of
// the instruction), e.g. "Dockerfile:7: unknown instruction FORM (did you mean FROM?)".
// docs/build.md ("Dockerfile support") lists what is supported and what is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace berth::builder {

enum class InstructionKind {
  From,
  Run,
  Cmd,
  Entrypoint,
  Env,
  Arg,
  Label,
  Expose,
  Copy,
  Add,
  Workdir,
  User,
  Volume,
  StopSignal,
  Healthcheck,
  Shell,
  Onbuild,
  Maintainer,
};

/// Upper-case keyword: "FROM", "STOPSIGNAL".
const char* instruction_name(InstructionKind kind);

/// A "--name=value" (value set) or "--name" (no value) flag written before the arguments.
struct Flag {
  std::string name;  // without the dashes
  std::optional<std::string> value;
};

/// The shell of shell-form commands until a SHELL instruction changes it: {"/bin/sh", "-c"}.
inline std::vector<std::string> default_shell() { return {"/bin/sh", "-c"}; }

/// RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK CMD: exec form (a JSON array) or shell form.
struct Command {
  bool exec_form = false;
  std::vector<std::string> exec;  // exec form: the decoded JSON strings
  std::string shell;              // shell form: the text as written (continuations joined)

  /// The argv to run: exec, or shell + {shell text}. `shell` is the stage's SHELL
  /// (default {"/bin/sh", "-c"}).
  std::vector<std::string> argv(const std::vector<std::string>& shell_prefix) const;
};

/// ENV and LABEL pairs. Values are raw (quotes and escapes still in place) until expanded.
struct KeyValue {
  std::string key;
  std::string value;
};
struct KeyValues {
  std::vector<KeyValue> items;
  bool legacy = false;  // "ENV KEY value with spaces" (one pair, no '=')
};

/// One name of an ARG instruction: "ARG name" or "ARG name=default".
struct ArgDecl {
  std::string name;
  std::optional<std::string> default_value;  // raw until expanded
};
struct ArgDecls {
  std::vector<ArgDecl> items;
};

/// EXPOSE and VOLUME items (raw until expanded).
struct Words {
  std::vector<std::string> items;
  bool json_form = false;
};

/// WORKDIR, USER, STOPSIGNAL, MAINTAINER: the whole argument text (raw until expanded).
struct Text {
  std::string value;
};

/// FROM [--platform=P] image [AS name].
struct FromSpec {
  std::string image;     // raw: may use ARGs declared before the first FROM
  std::string name;      // stage name, lower-cased; empty when there is no AS
  std::string platform;  // raw --platform value; empty when absent
};

/// COPY and ADD.
struct CopySpec {
  std::vector<std::string> sources;  // raw; at least one
  std::string destination;           // raw
  bool json_form = false;
  std::optional<std::string> from;    // COPY only; never expanded (a stage name/index or image)
  std::optional<std::string> chown;   // user[:group], expanded
  std::optional<std::string> chmod;   // octal, expanded
  std::vector<std::string> excludes;  // --exclude patterns (.dockerignore syntax), expanded
  bool link = false;                  // accepted; has no effect on the result (warned)
};

/// HEALTHCHECK NONE, or HEALTHCHECK [options] CMD command. Durations in nanoseconds, as the
/// image config stores them; 0 = not given (inherit the default).
struct Healthcheck {
  bool none = false;
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
  Command command;

  /// The image config "Test" array: {"NONE"}, {"CMD", args...} or {"CMD-SHELL", text}.
  std::vector<std::string> test() const;
};

/// ONBUILD trigger: stored in the image config as written, run when the image is a base.
struct OnBuild {
  InstructionKind trigger_kind = InstructionKind::Run;
  std::string trigger;  // "RUN make" (the trigger instruction's text)
};

using Payload = std::variant<std::monostate, FromSpec, Command, KeyValues, ArgDecls, Words,
                             CopySpec, Healthcheck, Text, OnBuild>;

/// One instruction. Payload by kind:
///   FROM: FromSpec; RUN CMD ENTRYPOINT SHELL: Command; ENV LABEL: KeyValues; ARG: ArgDecls;
///   EXPOSE VOLUME: Words; COPY ADD: CopySpec; HEALTHCHECK: Healthcheck;
///   WORKDIR USER STOPSIGNAL MAINTAINER: Text; ONBUILD: OnBuild.
struct Instruction {
  InstructionKind kind = InstructionKind::Run;
  int line = 0;             // first line of the instruction (1-based)
  int end_line = 0;         // last line (after continuations)
  std::string text;         // logical line: continuations joined, comments dropped, trimmed
  std::string source;       // the original lines line..end_line, '\n'-joined, as written
  std::vector<Flag> flags;  // as written, in order
  std::string args;         // argument text after the flags
  Payload payload;

  template <class T>
  const T& as() const {
    return std::get<T>(payload);
  }
  template <class T>
  T& as() {
    return std::get<T>(payload);
  }
  /// The value of a flag ("--network=none" -> "none"); nullopt when absent.
  std::optional<std::string> flag(std::string_view name) const;
};

/// One build stage: its FROM and the instructions after it.
struct Stage {
  size_t index = 0;
  std::string name;  // lower-cased AS name, or empty
  Instruction from;  // payload FromSpec
  std::vector<Instruction> instructions;
};

struct Directives {
  char escape = '\\';
  std::string syntax;  // recorded, ignored (no frontend images)
  std::string check;   // recorded, ignored
};

struct Warning {
  int line = 0;
  std::string message;  // "Dockerfile:3: ..." like errors
};

struct Dockerfile {
  std::string file_name = "Dockerfile";
  Directives directives;
  std::vector<Instruction> global_args;  // ARG instructions before the first FROM
  std::vector<Stage> stages;             // at least one
  std::vector<Warning> warnings;

  /// The stage named (case-insensitive) or numbered `target`; the last stage when empty.
  /// NotFound "no build stage named X" otherwise.
  Result<size_t> find_stage(std::string_view target) const;
};

struct ParseOptions {
  std::string file_name = "Dockerfile";  // used as the prefix of every message
};

/// Parses a whole Dockerfile. Checks everything that does not depend on variable values:
/// instruction names, flags, argument counts, JSON arrays, stage names, COPY --from
/// references to stages, literal ports, durations, signals, and the syntax of substitutions
/// (quotes, ${...}) in the instructions that get them. InvalidArgument on the first error.
Result<Dockerfile> parse_dockerfile(std::string_view text, const ParseOptions& options = {});

/// Parses one logical instruction (an ONBUILD trigger taken from a base image's config).
Result<Instruction> parse_instruction(std::string_view text, int line = 1, char escape = '\\',
                                      const std::string& file_name = "Dockerfile");

// ---- Variable substitution -------------------------------------------------------------

/// Looks a variable up; nullopt when it is not set (set-but-empty is "").
using VarLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// Docker's word processing: $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word},
/// ${VAR+word}, ${VAR:?message}, ${VAR?message}; quotes are removed ('...' is literal,
/// "..." expands variables); the escape character makes the next character literal
/// (inside "..." only before ", $ and the escape character itself). Unset variables expand
/// to "". Errors (InvalidArgument, no line prefix): unterminated quote or ${, bad modifier.
Result<std::string> expand_word(std::string_view word, const VarLookup& lookup, char escape = '\\');

/// The same, then splits the result into words at unquoted white space (also white space
/// that came from an unquoted variable's value). Used for EXPOSE.
Result<std::vector<std::string>> expand_words(std::string_view text, const VarLookup& lookup,
                                              char escape = '\\');

/// True for the instructions Docker substitutes variables in: ADD COPY ENV EXPOSE FROM LABEL
/// STOPSIGNAL USER VOLUME WORKDIR and ARG defaults (ONBUILD: the trigger, when it runs).
/// RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and MAINTAINER are never substituted: in shell
/// form the shell expands variables itself, at run time.
bool substitutes_variables(InstructionKind kind);

/// A copy of `instruction` with variables substituted where Docker does (see above), from
/// `lookup` (for ENV: every pair sees the environment from before the instruction).
/// Re-checks what depends on values: ports, empty WORKDIR/VOLUME/USER, ADD URLs.
/// Errors carry "<file>:<line>: ".
Result<Instruction> expand_instruction(const Instruction& instruction, const VarLookup& lookup,
                                       char escape = '\\',
                                       const std::string& file_name = "Dockerfile");

/// A stage's FROM with image and --platform substituted from the global ARG scope.
Result<FromSpec> expand_from(const Stage& stage, const VarLookup& global_lookup, char escape = '\\',
                             const std::string& file_name = "Dockerfile");

// ---- ARG / ENV scoping --------------------------------------------------------------------

/// Build args that every Dockerfile may use without declaring them (and that stay out of the
/// image history): HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY, each also
/// lower-case.
bool is_predefined_arg(std::string_view name);

/// The automatic platform ARGs of the global scope (TARGETPLATFORM, TARGETOS, TARGETARCH,
/// TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT). A stage sees them only
/// after "ARG TARGETARCH" etc.
std::map<std::string, std::string> platform_args(
    std::string_view target_os, std::string_view target_arch, std::string_view target_variant,
    std::string_view build_os, std::string_view build_arch, std::string_view build_variant);

/// --build-arg values (and automatic args): name -> value.
using BuildArgs = std::map<std::string, std::string>;

/// Variables during a build, with Docker's scoping:
///  - ARGs before the first FROM (global scope) are visible only in FROM lines (image and
///    --platform), together with the automatic platform args;
///  - in a stage, an ARG is visible from its declaration on; "ARG X" without a default takes
///    the global X's value; a build arg (--build-arg X=v) overrides any default;
///  - ENV overrides an ARG of the same name; ENV persists into the image, ARG does not;
///  - predefined proxy args are visible when given as build args, declared or not.
/// Feed it expanded instructions (expand_instruction with lookup()).
class BuildVars {
 public:
  explicit BuildVars(std::map<std::string, std::string> build_args,
                     std::map<std::string, std::string> automatic_args = {});

  /// An ARG before the first FROM (already expanded with global_lookup()).
  void declare_global(const ArgDecl& arg);
  /// Lookup for FROM lines: global ARGs and automatic args.
  VarLookup global_lookup() const;

  /// Starts a stage whose base image has `image_env` (ordered KEY, value).
  void begin_stage(std::vector<KeyValue> image_env = {});
  /// An ARG inside the stage (already expanded).
  void declare_arg(const ArgDecl& arg);
  /// An ENV pair (already expanded); replaces an earlier value in place.
  void set_env(const std::string& key, const std::string& value);

  /// Stage lookup: ENV first, then the stage's declared ARGs, then predefined proxy args.
  VarLookup lookup() const;
  /// The persisted environment, in order of first definition.
  const std::vector<KeyValue>& env() const { return env_; }
  /// The environment of a RUN: declared ARGs with values and given proxy args, overridden
  /// by ENV. "KEY=value" strings, ENV order first, then the ARGs by name.
  std::vector<std::string> run_env() const;

 private:
  std::optional<std::string> find(std::string_view name) const;

  std::map<std::string, std::string> build_args_;
  std::map<std::string, std::string> automatic_;
  std::map<std::string, std::optional<std::string>> global_;
  std::map<std::string, std::optional<std::string>> stage_args_;
  std::vector<KeyValue> env_;
};

/// Build args that no ARG in the Dockerfile declares (Docker warns "were not consumed");
/// predefined proxy args and SOURCE_DATE_EPOCH (read by the builder itself) never count.
std::set<std::string> unused_build_args(const Dockerfile& dockerfile,
                                        const std::map<std::string, std::string>& build_args);

// ---- Stage references -------------------------------------------------------------------

/// What FROM or COPY --from names: an earlier stage, "scratch", or an image reference.
struct StageRef {
  std::optional<size_t> stage;
  bool scratch = false;
  std::string image;  // when neither stage nor scratch
};

/// Resolves a FROM base (after expansion) for stage `current`: a name of an earlier stage,
/// "scratch", or else an image.
StageRef resolve_base(const Dockerfile& dockerfile, size_t current, std::string_view base);

/// Resolves COPY --from=`from` in stage `current`: a stage index (must be earlier), the name
/// of an earlier stage, or else an image. InvalidArgument for an index that is not earlier,
/// or a name of this stage or a later one.
Result<StageRef> resolve_copy_from(const Dockerfile& dockerfile, size_t current,
                                   std::string_view from);

// ---- Values checked after expansion -------------------------------------------------------

/// EXPOSE item: "80", "80/tcp", "53/udp", "8000-8010/tcp" (tcp, udp, sctp; any case).
struct PortSpec {
  uint16_t first = 0;
  uint16_t last = 0;
  std::string protocol;  // lower-case
  /// "80/tcp" or "8000-8010/tcp".
  std::string str() const;
};
Result<PortSpec> parse_port(std::string_view text);

/// Go duration syntax ("30s", "1m30s", "1.5h", "250ms", "0"): nanoseconds.
Result<int64_t> parse_duration(std::string_view text);

/// A STOPSIGNAL value: a number 1..64, or a name with or without SIG (SIGTERM, term, RTMIN+3).
/// Returns the normalised form ("SIGTERM", "9").
Result<std::string> parse_signal(std::string_view text);

/// True for an ADD source that is fetched rather than read from the context (http(s)://,
/// git@, git://, ssh://). berth refuses those.
bool is_remote_source(std::string_view source);

// ---- .dockerignore ------------------------------------------------------------------------

/// Go filepath.Match on '/'-separated paths: '*' and '?' do not match '/', [a-z] and [^a-z]
/// classes, '\' escapes. With double_star, a "**" matches any number of whole path segments
/// (zero included). Used for COPY source globs (double_star = false).
/// InvalidArgument for a malformed pattern.
Result<bool> path_match(std::string_view pattern, std::string_view path, bool double_star = false);

struct CompiledPattern;  // private to dockerignore.cc

/// The rules of a .dockerignore. Paths are relative to the context root, '/'-separated.
class DockerIgnore {
 public:
  struct Rule {
    std::string pattern;     // cleaned: no leading '/', no '.' or '..' segments where avoidable
    bool exception = false;  // written with '!'
    int line = 0;
  };

  /// Parses the file: one pattern a line; lines starting with '#' are comments; blank lines
  /// are skipped; surrounding white space is trimmed; a leading '!' makes an exception;
  /// patterns are cleaned like Go's filepath.Clean and lose a leading '/'.
  /// InvalidArgument ".dockerignore:3: bad pattern ..." for a malformed pattern.
  static Result<DockerIgnore> parse(std::string_view text,
                                    const std::string& file_name = ".dockerignore");
  /// From patterns already split (e.g. COPY --exclude); line numbers are 1-based positions.
  static Result<DockerIgnore> from_patterns(const std::vector<std::string>& patterns);

  /// True when the last rule that matches `path` or one of its parent directories is not an
  /// exception. `path` is cleaned first ("./a//b" = "a/b"); "" and "." are never excluded.
  bool excluded(std::string_view path) const;

  /// True when some exception could re-include a path strictly below directory `dir`, so a
  /// walker must descend into `dir` even though excluded(dir) holds.
  bool may_reinclude_below(std::string_view dir) const;

  const std::vector<Rule>& rules() const { return rules_; }
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<Rule> rules_;
  std::vector<std::shared_ptr<const CompiledPattern>> compiled_;  // one per rule
};

/// Go filepath.Clean for '/'-separated relative paths, with a leading '/' dropped:
/// "./a//b/../c/" -> "a/c"; "" -> ".".
std::string clean_path(std::string_view path);

}  // namespace berth::builder
