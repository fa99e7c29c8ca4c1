// SPDX-License-Identifier: Apache-2.0
// NSD (NLnet Labs' authoritative server, Debian's nsd 4.6) as a test peer: a private config,
// zones and state files in a temp dir, run unprivileged in the foreground (`nsd -d -c FILE`)
// on 127.0.0.1 and a free port, stopped (SIGTERM, then SIGKILL) on destruction. Used for
// differential tests of berth's answers and as a secondary pulling berth's zones.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/harness.h"

namespace berth::test {

class Nsd {
 public:
  Nsd();
  ~Nsd();
  Nsd(const Nsd&) = delete;
  Nsd& operator=(const Nsd&) = delete;

  /// True when the nsd binary is installed (tests GTEST_SKIP otherwise).
  static bool available();

  /// A zone NSD loads from a file: `zone_file` is a BIND master file. Call before start().
  void add_primary(const std::string& zone, const std::string& zone_file);
  /// A zone NSD transfers from 127.0.0.1@primary_port (AXFR/IXFR, no TSIG) and refreshes
  /// when that primary sends it a NOTIFY. Call before start().
  void add_secondary(const std::string& zone, uint16_t primary_port);

  /// Writes nsd.conf, starts nsd and waits (up to 15 s) until it answers a query. False,
  /// with the reason and NSD's log in *why, when it does not.
  bool start(std::string* why);
  /// SIGTERM and wait (SIGKILL after 5 s). Safe to call twice.
  void stop();

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  /// What NSD has logged so far (for failure messages).
  std::string log() const;
  /// "dig @127.0.0.1 -p PORT" plus args; the result of run().
  CmdResult dig(const std::string& args) const;

 private:
  std::string config() const;

  struct Zone {
    std::string name;
    bool secondary = false;
    uint16_t primary_port = 0;
  };
  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::vector<Zone> zones_;
};

}  // namespace berth::test
