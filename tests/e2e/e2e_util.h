// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the end-to-end tests: hashing files, reading response headers,
// random payloads and the berth CLI against a berthd child process.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

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

/// berthd as `make run` starts it: from dir, `build/bin/berthd --data ./var --listen ADDR`. The
/// router's and DNS server's addresses come from the environment (BERTH_ROUTER_LISTEN,
/// BERTH_DNS_LISTEN), so the command line stays the Makefile's.
class MakeRunBerthd {
 public:
  MakeRunBerthd(std::string dir, uint16_t port, uint16_t router_port, uint16_t tls_port,
                uint16_t dns_port)
      : dir_(std::move(dir)),
        port_(port),
        router_port_(router_port),
        tls_port_(tls_port),
        dns_port_(dns_port) {}
  ~MakeRunBerthd() { stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(dir_ + "/berthd.log"); }

  // Starts it and waits for /healthz; "" or why it did not come up.
  std::string start() {
    SpawnOptions opts;
    opts.death_signal = SIGTERM;  // it stops the service instances on the way out
    opts.env = {"BERTH_ROUTER_LISTEN=127.0.0.1:" + std::to_string(router_port_),
                "BERTH_ROUTER_TLS_LISTEN=127.0.0.1:" + std::to_string(tls_port_),
                "BERTH_DNS_LISTEN=127.0.0.1:" + std::to_string(dns_port_)};
    // From the checkout, with the relative ./var that `make run` passes.
    pid_ = spawn_server({"/bin/bash", "-c",
                         "cd '" + dir_ + "' && exec build/bin/berthd --data ./var --listen " +
                             "127.0.0.1:" + std::to_string(port_)},
                        dir_ + "/berthd.log", opts);
    std::string why = wait_started(
        pid_, "berthd", [&] { return run("curl -sf " + url() + "/healthz").code == 0; },
        std::chrono::seconds(30), std::chrono::milliseconds(100));
    return why.empty() ? why : why + ": " + log();
  }
  // SIGTERM (it stops the service instances) and wait.
  void stop() { stop_child(pid_, std::chrono::minutes(5)); }

 private:
  std::string dir_;
  uint16_t port_, router_port_, tls_port_, dns_port_;
  pid_t pid_ = -1;
};

/// True when services can run here (root, runc, skopeo, umoci, curl); else false and why.
inline bool can_run_services(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root (runc, overlayfs, namespaces)";
    return false;
  }
  for (const char* t : {"runc", "skopeo", "umoci", "curl"}) {
    if (!have(t)) {
      *why = std::string(t) + " is not installed";
      return false;
    }
  }
  return true;
}

/// `count` distinct free loopback ports.
inline std::vector<uint16_t> free_ports(size_t count) {
  std::vector<uint16_t> out;
  while (out.size() < count) {
    uint16_t p = free_port();
    if (std::find(out.begin(), out.end(), p) == out.end()) {
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace berth::test
