// SPDX-License-Identifier: Apache-2.0
// Dockerfile ARG/ENV scoping: predefined and platform args, BuildVars. See dockerfile.h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "builder/dockerfile.h"

namespace berth::builder {

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

}  // namespace berth::builder
