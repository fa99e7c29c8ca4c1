// SPDX-License-Identifier: Apache-2.0
// What only the PostgreSQL engine has: schema migrations under an advisory lock when several
// nodes start at once, a database newer than the binary refused, losing the server and
// getting it back, and two nodes writing one database without read-modify-write races. (The
// store's behaviour itself is the conformance suite's, run on both engines.)
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "store/store.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

#define SKIP_WITHOUT_POSTGRES()                                                             \
  if (test::PostgresServer::shared() == nullptr) {                                          \
    GTEST_SKIP() << "PostgreSQL cannot run here: " << test::PostgresServer::shared_error(); \
  }

// A TCP listener on 127.0.0.1 that completes connections and then answers nothing (the
// kernel accepts them into the backlog): a hung or stopped server, a black-holed network.
// With `handshake`, it accepts each connection and plays PostgreSQL's startup exchange
// (AuthenticationOk, BackendKeyData, ReadyForQuery) and then answers no statement: a server
// that hangs after the connection was made.
class SilentPgListener {
 public:
  explicit SilentPgListener(bool handshake) {
    fd_ = test::listen_loopback(port_);
    EXPECT_GE(fd_, 0);
    if (handshake) {
      thread_ = std::thread([this] { serve(); });
    }
  }
  ~SilentPgListener() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    for (int c : conns_) {
      ::close(c);
    }
    ::close(fd_);
  }
  SilentPgListener(const SilentPgListener&) = delete;
  SilentPgListener& operator=(const SilentPgListener&) = delete;

  std::string dsn() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) +
           " dbname=berth user=berth sslmode=disable gssencmode=disable";
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      conns_.push_back(c);
      // The startup packet: its length (4 bytes, big-endian, itself included), then the rest.
      unsigned char head[4];
      if (::recv(c, head, 4, MSG_WAITALL) != 4) {
        continue;
      }
      size_t len = (size_t{head[0]} << 24) | (size_t{head[1]} << 16) | (size_t{head[2]} << 8) |
                   size_t{head[3]};
      std::string rest(len > 4 ? len - 4 : 0, '\0');
      if (!rest.empty() && ::recv(c, rest.data(), rest.size(), MSG_WAITALL) < 0) {
        continue;
      }
      static const char kAnswer[] = {'R', 0, 0, 0, 8,  0,  0, 0, 0,  // AuthenticationOk
                                     'K', 0, 0, 0, 12, 0,  0, 0, 42, 0, 0, 0, 7,  // BackendKeyData
                                     'Z', 0, 0, 0, 5,  'I'};  // ReadyForQuery, idle
      EXPECT_EQ(::send(c, kAnswer, sizeof kAnswer, MSG_NOSIGNAL),
                static_cast<ssize_t>(sizeof kAnswer));
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<int> conns_;
};

std::string dbname_of(const std::string& dsn) {
  auto at = dsn.find("dbname=");
  auto end = dsn.find(' ', at);
  return dsn.substr(at + 7, end - at - 7);
}

TEST(PostgresStoreTest, NodesStartingAtOnceMigrateOnce) {
  SKIP_WITHOUT_POSTGRES();
  auto* server = test::PostgresServer::shared();
  std::string dsn = server->create_database();
  ASSERT_FALSE(dsn.empty());
  constexpr int kNodes = 4;
  std::vector<std::string> errors(kNodes);
  std::vector<std::thread> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.emplace_back([&, i] {
      auto s = open_postgres(PostgresOptions{dsn, "", 2});
      errors[i] = s ? "" : s.error().message();
    });
  }
  for (auto& t : nodes) {
    t.join();
  }
  for (const auto& e : errors) {
    EXPECT_EQ(e, "");
  }
  // One migration ran: one row in the version history, at the version this binary knows.
  auto rows = server->psql(dbname_of(dsn), "SELECT count(*), max(version) FROM schema_version");
  ASSERT_EQ(rows.code, 0) << rows.all();
  EXPECT_EQ(rows.out, "1|2\n");
}

TEST(PostgresStoreTest, ANewerSchemaIsRefusedNamingBothVersions) {
  SKIP_WITHOUT_POSTGRES();
  auto* server = test::PostgresServer::shared();
  std::string dsn = server->create_database();
  ASSERT_TRUE(open_postgres(PostgresOptions{dsn, "", 1}));
  auto r = server->psql(dbname_of(dsn), "INSERT INTO schema_version VALUES(7, 0)");
  ASSERT_EQ(r.code, 0) << r.all();
  auto s = open_postgres(PostgresOptions{dsn, "", 1});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::FailedPrecondition);
  EXPECT_NE(s.error().message().find("schema version 7"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("(2)"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("postgres"), std::string::npos) << s.error().message();
}

TEST(PostgresStoreTest, AnUnreachableServerIsUnavailable) {
  PostgresOptions o{
      "host=127.0.0.1 port=" + std::to_string(test::free_port()) + " dbname=berth user=berth", "",
      1, std::chrono::milliseconds(300)};
  auto s = open_postgres(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::Unavailable) << s.error().message();
}

// Generous: the bound must hold on a loaded machine; a hang is what fails it.
constexpr auto kSilentServerBound = std::chrono::seconds(15);

// A server that accepts the TCP connection and never answers: opening the store gives up
// after connect_wait with Unavailable instead of waiting forever.
TEST(PostgresStoreTest, AServerThatNeverAnswersTheConnectionIsUnavailable) {
  using Clock = std::chrono::steady_clock;
  SilentPgListener silent(false);
  PostgresOptions o{silent.dsn(), "", 1, std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(1000)};
  auto t0 = Clock::now();
  auto s = open_postgres(o);
  auto took = Clock::now() - t0;
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::Unavailable) << s.error().message();
  EXPECT_NE(s.error().message().find("timeout"), std::string::npos) << s.error().message();
  EXPECT_LT(took, kSilentServerBound);
}

// A server that completes the connection and then answers no statement: the first statement
// gives up after query_timeout, and the error names that setting.
TEST(PostgresStoreTest, AServerThatNeverAnswersAStatementIsUnavailable) {
  using Clock = std::chrono::steady_clock;
  SilentPgListener silent(true);
  PostgresOptions o{silent.dsn(), "", 1, std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(1000)};
  auto t0 = Clock::now();
  auto s = open_postgres(o);
  auto took = Clock::now() - t0;
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::Unavailable) << s.error().message();
  EXPECT_NE(s.error().message().find("store.postgres.query_timeout (1 s)"), std::string::npos)
      << s.error().message();
  EXPECT_GE(took, std::chrono::milliseconds(900)) << "gave up before query_timeout";
  EXPECT_LT(took, kSilentServerBound);
}

// The real server hangs (SIGSTOP) under a running store: operations fail with Unavailable
// within a bounded time, a write cut short is not committed, and once the server runs again
// the same store object works, with no restart.
TEST(PostgresStoreTest, AStoppedServerTimesOutAndTheSameStoreWorksAfterIt) {
  SKIP_WITHOUT_POSTGRES();
  using Clock = std::chrono::steady_clock;
  test::PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.running()) << server.error();
  PostgresOptions o{server.create_database(), "", 2, std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(1000)};
  auto opened = open_postgres(o);
  ASSERT_TRUE(opened) << opened.error().message();
  MetadataStore& st = **opened;
  ASSERT_TRUE(st.create_repository(Repository{0, "web/app", false, {}, 1}));

  // Reads in a loop (for at most a minute), and the server stops in the middle of one.
  Clock::duration took{};
  Error failed(Errc::Ok, "no read failed");
  std::thread reader([&] {
    for (auto end = Clock::now() + std::chrono::minutes(1); Clock::now() < end;) {
      auto t = Clock::now();
      auto read = st.get_repository("web/app");
      if (!read) {
        took = Clock::now() - t;
        failed = read.error();
        return;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  bool paused = server.pause();
  reader.join();
  ASSERT_TRUE(paused);
  EXPECT_EQ(failed.code(), Errc::Unavailable) << failed.message();
  EXPECT_NE(failed.message().find("query_timeout"), std::string::npos) << failed.message();
  EXPECT_LT(took, kSilentServerBound);
  auto t0 = Clock::now();
  auto write = st.create_repository(Repository{0, "web/api", false, {}, 2});
  took = Clock::now() - t0;
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), Errc::Unavailable) << write.error().message();
  EXPECT_LT(took, kSilentServerBound);

  server.resume();
  auto up = st.get_repository("web/app");
  ASSERT_TRUE(up) << up.error().message();
  EXPECT_EQ(up->name, "web/app");
  auto cut = st.get_repository("web/api");
  ASSERT_FALSE(cut) << "a write that timed out was committed";
  EXPECT_EQ(cut.error().code(), Errc::NotFound) << cut.error().message();
  ASSERT_TRUE(st.create_repository(Repository{0, "web/api", false, {}, 2}));
}

// The server goes away under a running store: operations fail with Unavailable (never a
// half-written state), and succeed again once it is back, on new connections.
TEST(PostgresStoreTest, LosingTheServerIsUnavailableUntilItIsBack) {
  SKIP_WITHOUT_POSTGRES();
  test::PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.running()) << server.error();
  std::string dsn = server.create_database();
  auto opened = open_postgres(PostgresOptions{dsn, "", 4, std::chrono::milliseconds(500)});
  ASSERT_TRUE(opened) << opened.error().message();
  MetadataStore& st = **opened;
  ASSERT_TRUE(st.create_repository(Repository{0, "web/app", false, {}, 1}));
  // Several pooled connections, all of which the restart will cut.
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] { EXPECT_TRUE(st.list_repositories("", -1)); });
  }
  for (auto& t : readers) {
    t.join();
  }

  ASSERT_TRUE(server.stop());
  auto down = st.get_repository("web/app");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), Errc::Unavailable) << down.error().message();
  auto write = st.create_repository(Repository{0, "web/api", false, {}, 2});
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), Errc::Unavailable) << write.error().message();

  ASSERT_TRUE(server.start()) << server.error();
  auto up = st.get_repository("web/app");
  ASSERT_TRUE(up) << up.error().message();
  EXPECT_EQ(up->name, "web/app");
  ASSERT_TRUE(st.create_repository(Repository{0, "web/api", false, {}, 2}));
  auto all = st.list_repositories("", -1);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2u);
}

// A server that stays away: the first operation waits connect_wait for it, the ones after
// fail at once (each tries one connection) instead of waiting again, so that a request that
// needs two operations, or many requests, are not held for connect_wait each. The first
// operation after the server is back reconnects.
TEST(PostgresStoreTest, AServerThatStaysAwayFailsFastAfterOneWait) {
  SKIP_WITHOUT_POSTGRES();
  using Clock = std::chrono::steady_clock;
  // Long enough for the restart at the end (a server start on a loaded 2-core runner).
  constexpr auto kWait = std::chrono::milliseconds(6000);
  test::PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.running()) << server.error();
  auto opened = open_postgres(PostgresOptions{server.create_database(), "", 4, kWait});
  ASSERT_TRUE(opened) << opened.error().message();
  MetadataStore& st = **opened;
  ASSERT_TRUE(st.create_repository(Repository{0, "web/app", false, {}, 1}));

  ASSERT_TRUE(server.stop());
  auto t0 = Clock::now();
  auto first = st.get_repository("web/app");
  auto waited = Clock::now() - t0;
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code(), Errc::Unavailable) << first.error().message();
  EXPECT_GE(waited, kWait / 2) << "a server that may be restarting is not waited for";
  for (int i = 0; i < 3; ++i) {
    t0 = Clock::now();
    auto again = st.get_repository("web/app");
    auto took = Clock::now() - t0;
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), Errc::Unavailable) << again.error().message();
    EXPECT_LT(took, kWait / 4) << "operation " << i + 2 << " waited again for a server known away";
  }

  ASSERT_TRUE(server.start()) << server.error();
  auto up = st.get_repository("web/app");
  ASSERT_TRUE(up) << up.error().message();
  // Back to riding out a restart: a short one is waited for again.
  ASSERT_TRUE(server.stop());
  std::thread restart([&server] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(server.start()) << server.error();
  });
  auto during = st.get_repository("web/app");
  restart.join();
  EXPECT_TRUE(during) << during.error().message();
}

// PostgreSQL rolls back a transaction that lost a conflict with another (a deadlock, SQLSTATE
// 40P01; a serialization failure, 40001). berth runs it again, up to kConflictRuns times in
// all, and only then reports Unavailable, having written nothing; any other error is final at
// once. The errors are raised by a trigger that fails the first N inserts into a table; the
// count is a sequence, which a rollback does not undo, so it also tells how many runs there
// were.
TEST(PostgresStoreTest, ATransactionRolledBackForAConflictRunsAgain) {
  SKIP_WITHOUT_POSTGRES();
  auto* server = test::PostgresServer::shared();
  std::string dsn = server->create_database();
  auto opened = open_postgres(PostgresOptions{dsn, "", 2});
  ASSERT_TRUE(opened) << opened.error().message();
  MetadataStore& st = **opened;
  std::string db = dbname_of(dsn);
  constexpr int kRuns = 5;  // store/sql/sql_store.h's kConflictRuns, as docs/storage.md says
  auto inject = [&](const std::string& table, const std::string& state, int n) {
    std::string fn =
        "CREATE OR REPLACE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS "
        "'BEGIN IF nextval(''conflicts'') <= " +
        std::to_string(n) + " THEN RAISE EXCEPTION ''injected'' USING ERRCODE = ''" + state +
        "''; END IF; RETURN NEW; END';";
    std::string sql =
        "DROP TRIGGER IF EXISTS conflict ON repositories; "
        "DROP TRIGGER IF EXISTS conflict ON revisions; "
        "DROP SEQUENCE IF EXISTS conflicts; CREATE SEQUENCE conflicts; " +
        fn + " CREATE TRIGGER conflict BEFORE INSERT ON " + table +
        " FOR EACH ROW EXECUTE FUNCTION conflict()";
    auto r = server->psql(db, sql);
    ASSERT_EQ(r.code, 0) << r.all();
  };
  auto runs = [&] {
    auto r = server->psql(db, "SELECT last_value FROM conflicts");
    return test::trimmed(r.out);
  };

  // One statement (an insert of its own).
  inject("repositories", "40P01", 2);
  auto a = st.create_repository(Repository{0, "web/a", false, {}, 1});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(runs(), "3");

  // A transaction of several statements (a row lock, a read, the insert).
  ASSERT_TRUE(st.create_service(ServiceRecord{"web", "{}", false, 0, 1, 1}));
  inject("revisions", "40001", kRuns - 1);
  auto rev = st.add_revision(RevisionRecord{"web", 0, "sha256:x", "{}", 1});
  ASSERT_TRUE(rev) << rev.error().message();
  EXPECT_EQ(*rev, 1);
  EXPECT_EQ(runs(), std::to_string(kRuns));

  // Conflicts every time: Unavailable after kRuns runs, and nothing written.
  inject("repositories", "40001", 1000);
  auto c = st.create_repository(Repository{0, "web/c", false, {}, 1});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::Unavailable) << c.error().message();
  EXPECT_NE(c.error().message().find("SQLSTATE 40001"), std::string::npos) << c.error().message();
  EXPECT_EQ(runs(), std::to_string(kRuns));
  auto none = st.get_repository("web/c");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::NotFound);

  // Another error that is also Unavailable (the server cannot take connections now, 57P03)
  // is not a conflict: one run.
  inject("repositories", "57P03", 1000);
  auto d = st.create_repository(Repository{0, "web/d", false, {}, 1});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::Unavailable) << d.error().message();
  EXPECT_EQ(runs(), "1");
}

// Two nodes on one database number a service's revisions and deployments without gaps or
// duplicates, and only one of them creates a repository.
TEST(PostgresStoreTest, TwoNodesDoNotRaceOnReadModifyWrite) {
  SKIP_WITHOUT_POSTGRES();
  std::string dsn = test::PostgresServer::shared()->create_database();
  auto a = open_postgres(PostgresOptions{dsn, "", 4});
  auto b = open_postgres(PostgresOptions{dsn, "", 4});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->create_service(ServiceRecord{"web", "{}", false, 0, 1, 1}));
  constexpr int kEach = 10;
  std::vector<int64_t> numbers;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    MetadataStore* node = t % 2 ? a->get() : b->get();
    threads.emplace_back([&, node] {
      for (int i = 0; i < kEach; ++i) {
        auto n = node->add_revision(RevisionRecord{"web", 0, "sha256:x", "{}", 1});
        ASSERT_TRUE(n) << n.error().message();
        std::lock_guard lock(mu);
        numbers.push_back(*n);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::sort(numbers.begin(), numbers.end());
  ASSERT_EQ(numbers.size(), 4u * kEach);
  for (size_t i = 0; i < numbers.size(); ++i) {
    EXPECT_EQ(numbers[i], static_cast<int64_t>(i + 1));
  }
  auto first = (*a)->create_repository(Repository{0, "shared", false, {}, 1});
  auto second = (*b)->create_repository(Repository{0, "shared", false, {}, 1});
  ASSERT_TRUE(first);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::AlreadyExists);
}

}  // namespace
}  // namespace berth::store
