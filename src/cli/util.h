// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the CLI's command files: exit codes, error printing, tables, times.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

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

inline void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(w[i] - r[i].size() + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace berth::cli
