// SPDX-License-Identifier: Apache-2.0
// Dockerfiles from a build's git checkout: parse_dockerfile, then what the executor does with
// the result before it runs anything: FROM expansion in the global scope, expand_instruction
// for every instruction (variable substitution, value checks), COPY --from resolution, stage
// lookup, unused build args. Also the value parsers (ports, durations, signals, words) and
// parse_instruction (ONBUILD triggers come from a base image's config, i.e. from outside).
#include <map>
#include <optional>
#include <string>

#include "builder/dockerfile.h"
#include "fuzz.h"

namespace {

std::optional<std::string> lookup(std::string_view name) {
  if (name == "UNSET") {
    return std::nullopt;
  }
  if (name == "EMPTY") {
    return std::string();
  }
  return "v-" + std::string(name) + " x";
}

}  // namespace

BERTH_FUZZ_TARGET(dockerfile) {
  using namespace berth::builder;
  berth::fuzz::quiet_logs();
  std::string_view text = berth::fuzz::as_view(data, size);
  const VarLookup vars = lookup;

  if (auto df = parse_dockerfile(text)) {
    BERTH_FUZZ_CHECK(!df->stages.empty());
    char esc = df->directives.escape;
    for (const auto& stage : df->stages) {
      if (auto from = expand_from(stage, vars, esc)) {
        (void)resolve_base(*df, stage.index, from->image);
      }
      for (const auto& ins : stage.instructions) {
        auto expanded = expand_instruction(ins, vars, esc);
        if (ins.kind == InstructionKind::Copy && expanded) {
          const auto& copy = expanded->as<CopySpec>();
          if (copy.from) {
            (void)resolve_copy_from(*df, stage.index, *copy.from);
          }
        }
      }
    }
    (void)df->find_stage("");
    (void)df->find_stage("0");
    (void)df->find_stage("build");
    (void)unused_build_args(*df, {{"A", "1"}, {"HTTP_PROXY", "x"}});
  }

  std::string_view rest;
  std::string_view line = berth::fuzz::first_line(text, rest);
  if (auto ins = parse_instruction(line)) {
    (void)expand_instruction(*ins, vars);
  }
  (void)expand_word(line, vars);
  (void)expand_words(line, vars);
  if (auto p = parse_port(line)) {
    BERTH_FUZZ_CHECK(p->first <= p->last);
  }
  (void)parse_duration(line);
  (void)parse_signal(line);
  (void)is_remote_source(line);
  return 0;
}
