// SPDX-License-Identifier: Apache-2.0
// berthd on PostgreSQL (store.driver: postgres): a push and a pull through the whole daemon,
// the database going away and coming back under a running berthd, `berthd fsck --config`, and
// `berthd backup` refusing a PostgreSQL store. Skipped, saying why, where no PostgreSQL
// server can run.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "integration/registry_client.h"
#include "registry/oci_errors.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::test {
namespace {

// ctest kills a test that overruns its timeout with SIGKILL: no destructor runs, and a
// PostgreSQL the test started must not outlive it (pg_ctl's daemonized server did).
TEST(PostgresHarnessTest, TheServerStopsWhenItsTestProcessIsKilled) {
  if (PostgresServer::shared() == nullptr) {
    GTEST_SKIP() << "PostgreSQL cannot run here: " << PostgresServer::shared_error();
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    PostgresServer server;
    std::string said = server.running() ? std::to_string(server.port()) + " " + server.dir()
                                        : "error " + server.error();
    said += "\n";
    (void)!::write(fds[1], said.data(), said.size());
    ::pause();  // until killed
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string said;
  char c = 0;
  pollfd pfd{fds[0], POLLIN, 0};
  while (::poll(&pfd, 1, 60'000) == 1 && ::read(fds[0], &c, 1) == 1 && c != '\n') {
    said += c;
  }
  ::close(fds[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_FALSE(said.empty() || said.rfind("error ", 0) == 0) << said;
  uint16_t port = static_cast<uint16_t>(std::stoi(said));
  std::string dir = said.substr(said.find(' ') + 1);
  bool gone = eventually(
      [&] {
        int fd = connect_loopback(port, std::chrono::seconds(1));
        if (fd >= 0) {
          ::close(fd);
        }
        return fd < 0;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(gone) << "PostgreSQL still listens on " << port << " after its test was killed";
  if (gone) {
    run("rm -rf '" + dir + "'");  // the killed process's temp dir
  }
}

TEST(StorePostgresTest, BerthdServesFromPostgresAndRidesOutARestart) {
  if (PostgresServer::shared() == nullptr) {
    GTEST_SKIP() << "PostgreSQL cannot run here: " << PostgresServer::shared_error();
  }
  PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.running()) << server.error();
  std::string dsn = server.create_database();
  TestDaemon d([&](config::Config& c) {
    c.store.driver = "postgres";
    c.store.postgres.dsn = dsn;
    c.store.postgres.max_connections = 4;
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  auto cr = d.cli("repo create web/app");
  ASSERT_EQ(cr.code, 0) << cr.all();
  std::string m = push_image(c, "web/app", "v1", image_config(), {"a layer on postgres"});
  auto got = c.get("/v2/web/app/manifests/v1");
  ASSERT_EQ(got.status, 200) << got.describe();
  EXPECT_EQ(got.body, m);
  // The rows are in PostgreSQL, not in a berth.db.
  EXPECT_NE(run("test -e " + d.data_dir() + "/berth.db").code, 0);
  auto rows =
      server.psql(dsn.substr(dsn.find("dbname=") + 7, dsn.find(" user") - dsn.find("dbname=") - 7),
                  "SELECT name FROM tags");
  EXPECT_EQ(rows.out, "v1\n") << rows.all();

  ASSERT_TRUE(server.stop());
  auto down = d.cli("repo ls");
  EXPECT_NE(down.code, 0) << down.all();
  auto api =
      run("curl -s -w ' %{http_code}' " + d.admin().curl_auth() + d.url() + "/api/v1/repositories");
  // 503 saying the metadata store is away, without where it is (that goes to the log).
  const std::string port = std::to_string(server.port());
  EXPECT_NE(api.out.find(" 503"), std::string::npos) << api.all();
  EXPECT_NE(api.out.find(registry::kStoreUnavailableMessage), std::string::npos) << api.all();
  EXPECT_EQ(api.out.find(port), std::string::npos) << api.all();
  EXPECT_EQ(api.out.find("127.0.0.1"), std::string::npos) << api.all();
  auto put = c.request("PUT", "/v2/web/app/manifests/v2", m, {{"Content-Type", kOciManifestType}});
  EXPECT_EQ(put.status, 503) << put.describe();
  EXPECT_EQ(put.oci_code(), "UNAVAILABLE") << put.describe();
  EXPECT_EQ(put.oci_message(), registry::kStoreUnavailableMessage) << put.describe();
  EXPECT_EQ(put.body.find(port), std::string::npos) << put.describe();

  ASSERT_TRUE(server.start()) << server.error();
  auto again = c.get("/v2/web/app/manifests/v1");
  EXPECT_EQ(again.status, 200) << again.describe();
  EXPECT_EQ(again.body, m);
  auto ls = d.cli("repo ls");
  EXPECT_EQ(ls.code, 0) << ls.all();
  EXPECT_NE(ls.out.find("web/app"), std::string::npos) << ls.out;

  // fsck reads the same store through the config; backup points to pg_dump.
  TempDir cfgdir;
  write_file(cfgdir / "berthd.yaml", "version: 1\ndata: " + d.data_dir() +
                                         "\nstore:\n  driver: postgres\n  postgres:\n    dsn: \"" +
                                         dsn + "\"\n");
  auto fsck = run(bin("berthd") + " fsck --force --config " + (cfgdir / "berthd.yaml"));
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  EXPECT_NE(fsck.out.find("1 manifests"), std::string::npos) << fsck.all();
  auto backup = run(bin("berthd") + " backup --config " + (cfgdir / "berthd.yaml") + " --to " +
                    (cfgdir / "b.tar"));
  EXPECT_EQ(backup.code, 2) << backup.all();
  EXPECT_NE(backup.err.find("pg_dump"), std::string::npos) << backup.all();
}

// A server that checks passwords, as production ones do: berthd's role logs in with the
// password from store.postgres.password_file (which wins over one in the DSN), or libpq's
// PGPASSWORD; a wrong or missing password is refused with PostgreSQL's own words.
TEST(StorePostgresTest, APasswordFromAFileOrTheEnvironmentLogsIn) {
  if (PostgresServer::shared() == nullptr) {
    GTEST_SKIP() << "PostgreSQL cannot run here: " << PostgresServer::shared_error();
  }
  PostgresServer server;  // its own: this test changes how it authenticates
  ASSERT_TRUE(server.running()) << server.error();
  ASSERT_TRUE(server.require_passwords()) << server.error();
  auto made = server.psql("postgres", "CREATE ROLE app LOGIN PASSWORD 'open sesame'");
  ASSERT_EQ(made.code, 0) << made.all();
  made = server.psql("postgres", "CREATE DATABASE appdb OWNER app");
  ASSERT_EQ(made.code, 0) << made.all();
  const std::string dsn =
      "host=127.0.0.1 port=" + std::to_string(server.port()) + " dbname=appdb user=app";
  TempDir t;
  write_file(t / "pw", "open sesame\n");  // as `echo` writes it
  auto fsck = [&](const std::string& conn, const std::string& password_file,
                  const std::string& env = "") {
    std::string yaml = "version: 1\ndata: " + t / "data" +
                       "\nstore:\n  driver: postgres\n  postgres:\n    dsn: \"" + conn + "\"\n";
    if (!password_file.empty()) {
      yaml += "    password_file: " + password_file + "\n";
    }
    write_file(t / "berthd.yaml", yaml);
    return run("mkdir -p " + t / "data" + " && env -u PGPASSWORD " + env + " " + bin("berthd") +
               " fsck --force --config " + t / "berthd.yaml");
  };
  auto none = fsck(dsn, "");
  EXPECT_NE(none.code, 0) << none.all();
  EXPECT_TRUE(has(none.all(), "password")) << none.all();
  auto wrong = fsck(dsn + " password=guess", "");
  EXPECT_NE(wrong.code, 0) << wrong.all();
  EXPECT_TRUE(has(wrong.all(), "password authentication failed for user \"app\"")) << wrong.all();
  EXPECT_FALSE(has(wrong.all(), "guess")) << "the password is never printed: " << wrong.all();
  auto file = fsck(dsn + " password=guess", t / "pw");
  EXPECT_EQ(file.code, 0) << file.all();
  auto env = fsck(dsn, "", "PGPASSWORD='open sesame'");
  EXPECT_EQ(env.code, 0) << env.all();

  // The whole daemon on that role.
  TestDaemon d([&](config::Config& c) {
    c.store.driver = "postgres";
    c.store.postgres.dsn = dsn;
    c.store.postgres.password_file = t / "pw";
    c.store.postgres.max_connections = 2;
  });
  auto cr = d.cli("repo create web/app");
  EXPECT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(server.psql("appdb", "SELECT name FROM repositories").out, "web/app\n");
}

}  // namespace
}  // namespace berth::test
