// SPDX-License-Identifier: Apache-2.0
#include "builder/service_buildspec.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "builder/service_project.h"

namespace berth::builder {

namespace {

Error bad_spec(const std::string& field, const std::string& why) {
  return Error(Errc::InvalidArgument, cat("buildspec.yml: ", field, ": ", why));
}

bool valid_var_name(const std::string& k) {
  if (k.empty() || (k[0] >= '0' && k[0] <= '9')) {
    return false;
  }
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

constexpr const char* kPhases[] = {"install", "pre_build", "build", "post_build"};

Status parse_env(const YAML::Node& env, Buildspec& out) {
  if (env.IsNull()) {
    return ok();
  }
  if (!env.IsMap()) {
    return bad_spec("env", "expected a mapping with variables");
  }
  for (const auto& kv : env) {
    std::string key = kv.first.as<std::string>();
    if (key != "variables") {
      return bad_spec(cat("env.", key), "not supported (berth reads env.variables only)");
    }
    if (kv.second.IsNull()) {
      continue;
    }
    if (!kv.second.IsMap()) {
      return bad_spec("env.variables", "expected a mapping of NAME: value");
    }
    for (const auto& var : kv.second) {
      std::string name = var.first.as<std::string>();
      if (!valid_var_name(name)) {
        return bad_spec("env.variables", cat("'", name, "' is not a valid variable name"));
      }
      if (!var.second.IsScalar() && !var.second.IsNull()) {
        return bad_spec(cat("env.variables.", name), "expected a single value");
      }
      out.variables.emplace_back(name, var.second.IsNull() ? "" : var.second.as<std::string>());
    }
  }
  return ok();
}

Status parse_phases(const YAML::Node& phases, Buildspec& out) {
  if (phases.IsNull()) {
    return ok();
  }
  if (!phases.IsMap()) {
    return bad_spec("phases", "expected a mapping of install, pre_build, build, post_build");
  }
  std::set<std::string> known(std::begin(kPhases), std::end(kPhases));
  for (const auto& kv : phases) {
    std::string name = kv.first.as<std::string>();
    if (known.count(name) == 0) {
      return bad_spec(cat("phases.", name),
                      "unknown phase (expected install, pre_build, build or post_build)");
    }
  }
  for (const char* name : kPhases) {
    YAML::Node phase = phases[name];
    if (!phase || phase.IsNull()) {
      continue;
    }
    std::string field = cat("phases.", name);
    if (!phase.IsMap()) {
      return bad_spec(field, "expected a mapping with commands");
    }
    BuildspecPhase p;
    p.name = name;
    for (const auto& kv : phase) {
      std::string key = kv.first.as<std::string>();
      if (key != "commands") {
        return bad_spec(cat(field, ".", key), "not supported (berth runs commands only)");
      }
      const YAML::Node& cmds = kv.second;
      if (cmds.IsNull()) {
        continue;
      }
      if (!cmds.IsSequence()) {
        return bad_spec(cat(field, ".commands"), "expected a list of strings");
      }
      for (const auto& c : cmds) {
        if (!c.IsScalar()) {
          return bad_spec(cat(field, ".commands"), "expected a list of strings");
        }
        std::string command = c.as<std::string>();
        if (command.find_first_not_of(" \t\r\n") == std::string::npos) {
          return bad_spec(cat(field, ".commands"), "a command is empty");
        }
        p.commands.push_back(std::move(command));
      }
    }
    if (!p.commands.empty()) {
      out.phases.push_back(std::move(p));
    }
  }
  return ok();
}

}  // namespace

Result<Buildspec> parse_buildspec(const std::string& text) {
  Buildspec out;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      return Error(Errc::InvalidArgument, "buildspec.yml: expected a mapping at the top level");
    }
    YAML::Node version = root["version"];
    if (!version) {
      return bad_spec("version", "required (0.2)");
    }
    if (!version.IsScalar() || version.as<std::string>() != "0.2") {
      return bad_spec("version",
                      cat("expected 0.2, got ",
                          version.IsScalar() ? version.as<std::string>() : std::string("a list")));
    }
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      if (key == "version") {
        continue;
      }
      if (key == "env") {
        BERTH_TRY(parse_env(kv.second, out));
      } else if (key == "phases") {
        BERTH_TRY(parse_phases(kv.second, out));
      } else {
        return bad_spec(key, "not supported by berth (supported: version, env.variables, phases)");
      }
    }
  } catch (const YAML::Exception& e) {
    return Error(Errc::InvalidArgument, cat("buildspec.yml: ", e.what()));
  }
  return out;
}

}  // namespace berth::builder
