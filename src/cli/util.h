// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the CLI's command files: exit codes, error printing, JSON fields,
// sizes, times, and the option shapes every command uses.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace berth::cli {

// Exit codes by error class (documented in docs/cli.md).
inline int exit_code(Errc c) {
  switch (c) {
    case Errc::InvalidArgument:
      return 2;
    case Errc::NotFound:
      return 3;
    case Errc::AlreadyExists:
    case Errc::Conflict:
      return 4;
    case Errc::Unauthenticated:
    case Errc::PermissionDenied:
      return 5;
    case Errc::Unavailable:
      return 6;
    default:
      return 1;
  }
}

/// Prints `berth: MESSAGE` on stderr and returns the error's exit code.
inline int fail(const berth::Error& e) {
  if (e.code() == Errc::Unauthenticated) {
    std::fprintf(stderr,
                 "berth: not authenticated: run berth login, or set BERTH_ACCESS_KEY_ID and "
                 "BERTH_SECRET_ACCESS_KEY\n");
  } else {
    std::fprintf(stderr, "berth: %s\n", e.message().c_str());
  }
  return exit_code(e.code());
}

/// Prints a JSON answer (pretty) on stdout; returns 0.
inline int print_json(const Json& j) {
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

/// An answer's string or number field ("" or 0 when missing or of another type).
inline std::string str(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
}
inline int64_t num(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<int64_t>() : 0;
}

/// The command's --json flag (every command has one: docs/cli.md).
inline CLI::Option* add_json_flag(CLI::App* c, bool& json,
                                  const std::string& what = "print the answer as JSON") {
  return c->add_flag("--json", json, what);
}

/// A repeatable option taking one value per flag (`--env A=1 --env B=2`), shown in help as
/// `--env KEY=VALUE` rather than CLI11's `TEXT ...`, which suggests several values after one
/// flag.
inline CLI::Option* add_repeatable(CLI::App* c, const std::string& name,
                                   std::vector<std::string>& into, const std::string& type,
                                   const std::string& what) {
  return c->add_option(name, into, what)
      ->type_name(type)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

/// KEY=VALUE arguments as a JSON object; InvalidArgument naming flag otherwise.
inline Result<Json> kv_object(const std::vector<std::string>& kvs, const std::string& flag) {
  Json out = Json::object();
  for (const auto& kv : kvs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Errc::InvalidArgument, flag + " expects KEY=VALUE, got '" + kv + "'");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

inline std::string human_size(int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

inline std::string when(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&tt));
  return buf;
}

}  // namespace berth::cli
