// SPDX-License-Identifier: Apache-2.0
// A PostgreSQL server for tests, and the store engines the store's conformance tests run
// against. The server is Debian's PostgreSQL (initdb and postgres from
// /usr/lib/postgresql/N/bin), a child of the test process that dies with it, in a temp dir (a copy
// of one initdb per build tree), on a free 127.0.0.1 port, with fsync off; as root it runs as
// `nobody` (initdb refuses root). Each test gets a fresh database. When the server cannot be
// started here, tests skip naming the reason: they never pass without having run.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"
#include "support/harness.h"

namespace berth::test {

struct SharedPostgres;

class PostgresServer {
 public:
  /// initdb and start; running() tells whether it worked, error() why not.
  PostgresServer();
  /// Attaches to the server a ctest run shares (support/shared_servers.h): databases only;
  /// stop(), start(), pause() and require_passwords() are test failures on it. Drops the
  /// databases it made when destroyed.
  explicit PostgresServer(const SharedPostgres& s);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// The server the tests of a ctest run share, or when there is none this process's own,
  /// started at first use; nullptr when it cannot run here (shared_error() says why).
  static PostgresServer* shared();
  static const std::string& shared_error();

  bool running() const { return running_; }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  /// Its temp dir (data/, server.log); empty when attached.
  const std::string& dir() const { return dir_; }
  /// The server's programs: /usr/lib/postgresql/N/bin.
  const std::string& bin() const { return bin_; }

  /// A new, empty database; returns its DSN. Empty (and a test failure) when it fails.
  std::string create_database();
  std::string dsn(const std::string& dbname) const;
  /// psql -c sql in dbname as the superuser ("berth").
  CmdResult psql(const std::string& dbname, const std::string& sql) const;

  /// From now on, connections over TCP as any role but the superuser ("berth") must give
  /// their password (scram-sha-256), as on a production server; the superuser keeps trust so
  /// the harness can still create roles and databases. Reloads the server's configuration.
  bool require_passwords();
  /// A fast shutdown (connections are cut), and a start on the same port and data.
  bool stop();
  bool start();
  /// SIGSTOP the postmaster and every process it forked (backends included): a hung server
  /// that keeps its connections and answers nothing, until resume() sends them SIGCONT. The
  /// destructor resumes a paused server before stopping it. A test killed while its server is
  /// paused leaves it stopped: a stopped process does not act on its death signal.
  bool pause();
  void resume();

 private:
  std::string as_owner() const;  // "runuser -u nobody -- " as root, else ""
  bool refuse_shared(const char* what) const;

  std::unique_ptr<TempDir> own_dir_;  // none when attached
  std::string dir_;
  std::string bin_;
  pid_t postmaster_ = -1;    // a child of this process; it gets SIGQUIT if this one dies
  std::vector<int> paused_;  // pids
  uint16_t port_ = 0;
  bool running_ = false;
  std::string error_;
  std::vector<std::string> databases_;  // made by create_database()
  bool attached_ = false;
};

/// The engines of the store's conformance suite.
enum class StoreEngine { Sqlite, Postgres };

std::string store_engine_name(StoreEngine e);

/// INSTANTIATE_TEST_SUITE_P's name generator: ".../Sqlite", ".../Postgres".
struct StoreEngineName {
  std::string operator()(const ::testing::TestParamInfo<StoreEngine>& p) const {
    return store_engine_name(p.param);
  }
};

/// Where one test's store lives: SQLite in memory (or in a file when it must outlive a
/// reopen), or a fresh database on the shared PostgreSQL server. open() opens it, again and
/// again for reopen tests.
class StoreHome {
 public:
  explicit StoreHome(StoreEngine e, bool persistent = false);
  /// "" when usable; otherwise why not (the test should GTEST_SKIP with it).
  const std::string& skip_reason() const { return skip_; }
  Result<store::MetadataStorePtr> open() const;
  const std::string& dsn() const { return dsn_; }

 private:
  StoreEngine engine_;
  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::string dsn_;
  std::string skip_;
};

}  // namespace berth::test
