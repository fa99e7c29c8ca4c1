// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the end-to-end tests: hashing files, reading response headers,
// random payloads and the berth CLI against a berthd child process.
#pragma once

#include <cctype>
#include <cstdint>
#include <random>
#include <string>

#include "support/harness.h"

namespace berth::test {

inline std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.pop_back();
  }
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) {
    ++i;
  }
  return s.substr(i);
}

inline std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

/// Hex SHA-256 of a file ("" when it cannot be read).
inline std::string sha256_file(const std::string& path) {
  auto r = run("sha256sum '" + path + "'");
  return r.code == 0 && r.out.size() >= 64 ? r.out.substr(0, 64) : "";
}

/// Value of a header in `curl -i`/`curl -I` output (case-insensitive name), "" when absent.
inline std::string header_value(const std::string& response, const std::string& name) {
  std::string want = lower(name) + ":";
  size_t pos = 0;
  while (pos < response.size()) {
    size_t eol = response.find('\n', pos);
    std::string line = response.substr(pos, eol == std::string::npos ? eol : eol - pos);
    if (lower(line).rfind(want, 0) == 0) {
      return trim(line.substr(want.size()));
    }
    if (eol == std::string::npos) {
      break;
    }
    pos = eol + 1;
  }
  return "";
}

/// HTTP status code of the first status line in `curl -i` output (0 when none).
inline int status_code(const std::string& response) {
  if (response.rfind("HTTP/", 0) != 0) {
    return 0;
  }
  size_t sp = response.find(' ');
  return sp == std::string::npos ? 0 : std::atoi(response.c_str() + sp + 1);
}

/// Deterministic incompressible bytes.
inline std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) {
      s[i + j] = static_cast<char>((v >> (8 * j)) & 0xff);
    }
  }
  return s;
}

/// Digest of the first manifest in an OCI layout's index.json.
inline std::string layout_digest(const std::string& layout) {
  return trim(run("jq -r '.manifests[0].digest' " + layout + "/index.json").out);
}

/// The berth CLI against a berthd child process, as admin.
inline CmdResult berth_cli(const BerthdProcess& p, const std::string& args) { return p.cli(args); }

}  // namespace berth::test
