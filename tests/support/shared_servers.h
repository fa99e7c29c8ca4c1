// SPDX-License-Identifier: Apache-2.0
// The servers one ctest run shares between its test processes. Starting Ceph (monitor, OSD,
// radosgw) takes about 1.6 s and PostgreSQL about 0.8 s; ctest runs each test in a process of
// its own, and some 200 tests use one or both, so a cluster per process was a fifth of the
// suite's time. ctest's fixture `test_servers` starts them once (berth_test_servers up FILE,
// before the first test that needs them) and stops them after the last one (berth_test_servers
// down FILE); every discovered test gets BERTH_TEST_SERVERS=FILE in its environment.
//
// A test attaches to them through RgwServer::shared() and PostgresServer::shared(): each test
// has its own bucket and database, so tests never see each other's data. A test that stops or
// pauses a server starts its own instead (RgwServer::use_own(), `PostgresServer server;`).
// Without the variable (a test binary run by hand), or when the fixture could not start a
// server, each process starts its own as before.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace berth::test {

struct SharedRgw {
  uint16_t port = 0;
  std::string access_key;
  std::string secret_key;
  std::string region;
  std::string dir;  // the cluster's directory (conf, logs)
};

struct SharedPostgres {
  uint16_t port = 0;
  std::string bin;  // /usr/lib/postgresql/N/bin
};

/// What the fixture started, read once from $BERTH_TEST_SERVERS; nullopt for a server it did
/// not start (or with no fixture at all).
const std::optional<SharedRgw>& shared_rgw();
const std::optional<SharedPostgres>& shared_postgres();

/// The file's format, one server per line: "rgw PORT ACCESS SECRET REGION DIR",
/// "postgres PORT BIN", "holder PID"; a server that failed: "error NAME WHY...".
std::string format_servers_line(const SharedRgw& r);
std::string format_servers_line(const SharedPostgres& p);

}  // namespace berth::test
