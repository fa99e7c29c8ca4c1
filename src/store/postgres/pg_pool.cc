// SPDX-License-Identifier: Apache-2.0
// PgPool: up to max_connections PostgreSQL connections, each leased to one store operation at
// a time, and open_postgres. A connection that was lost (the server restarted or went away)
// is closed when its lease ends, with every idle one (they went the same way); the next lease
// connects anew, retrying for a bounded time (once the server stayed away that long, one try
// per lease), and until the server is back the store answers Unavailable, which the API turns
// into 503. A statement the server leaves unanswered for query_timeout drops its connection
// the same way (pg_conn.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "store/postgres/pg_conn.h"
#include "store/sql/sql_store.h"

namespace berth::store {

namespace {

using Clock = std::chrono::steady_clock;

void ignore_notice(void* /*arg*/, const char* /*message*/) {
  // "relation already exists, skipping" and the like: the schema's IF NOT EXISTS at each start.
}

// How long one connection attempt may take: the DSN's connect_timeout when it sets one (in
// seconds, at least 2, as libpq reads it), else connect_wait (at least 100 ms). libpq itself
// applies connect_timeout only in its blocking connect, which berthd does not use.
std::chrono::milliseconds attempt_budget(const PostgresOptions& o) {
  auto budget = std::max(o.connect_wait, std::chrono::milliseconds(100));
  PQconninfoOption* opts = PQconninfoParse(o.dsn.c_str(), nullptr);
  for (auto* opt = opts; opt != nullptr && opt->keyword != nullptr; ++opt) {
    if (std::string(opt->keyword) == "connect_timeout" && opt->val != nullptr && *opt->val) {
      int seconds = std::atoi(opt->val);
      if (seconds > 0) {
        budget = std::chrono::seconds(std::max(seconds, 2));
      }
    }
  }
  PQconninfoFree(opts);
  return budget;
}

class PgPool final : public sql::ConnPool {
 public:
  explicit PgPool(PostgresOptions o) : o_(std::move(o)), attempt_(attempt_budget(o_)) {}
  ~PgPool() override = default;

  Result<sql::Lease> acquire() override {
    std::unique_ptr<pg::PgConn> conn;
    {
      std::unique_lock lock(mu_);
      auto deadline = Clock::now() + o_.connect_wait + std::chrono::seconds(10);
      while (idle_.empty() && open_ >= o_.max_connections) {
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          return Error(Errc::Unavailable, "postgres: all " + std::to_string(o_.max_connections) +
                                              " connections stayed busy");
        }
      }
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_;  // counted while it is being connected, so that the limit holds
      }
    }
    if (conn == nullptr) {
      auto c = connect();
      if (!c) {
        std::lock_guard lock(mu_);
        --open_;
        cv_.notify_one();
        return std::move(c).error();
      }
      conn = std::move(*c);
    }
    conn->start_lease();
    pg::PgConn* raw = conn.release();
    return sql::Lease(*raw, [this, raw] { release(raw); });
  }

  sql::Retry retry(sql::Conn& c, const Error& err) override {
    auto& pg = static_cast<pg::PgConn&>(c);
    if (err.code() != Errc::Unavailable) {
      return sql::Retry::No;
    }
    if (pg.lost_before_work()) {
      return sql::Retry::Reconnect;
    }
    return pg.conflicted() ? sql::Retry::Conflict : sql::Retry::No;
  }

  /// Connects, retrying while the server refuses or is starting, up to connect_wait; once a
  /// connect gave up, later ones try once until one succeeds. Each try is itself bounded (by
  /// connect_wait, or the DSN's connect_timeout): a server that accepts the connection and
  /// never answers does not hold the caller.
  Result<std::unique_ptr<pg::PgConn>> connect() {
    // A server that stayed away for a whole connect_wait is down, not restarting: waiting
    // again for each operation would hold every request (and a blocking-pool thread) for
    // connect_wait, twice for a request that makes two store calls.
    auto deadline = Clock::now() + (away_ ? std::chrono::milliseconds(0) : o_.connect_wait);
    auto pause = std::chrono::milliseconds(50);
    while (true) {
      // The password (from a file) after the DSN, so that it wins over one in the DSN.
      std::vector<const char*> keys{"dbname", "application_name"};
      std::vector<const char*> values{o_.dsn.c_str(), "berthd"};
      if (!o_.password.empty()) {
        keys.push_back("password");
        values.push_back(o_.password.c_str());
      }
      keys.push_back(nullptr);
      values.push_back(nullptr);
      auto pg = pg::connect_until(keys.data(), values.data(), Clock::now() + attempt_);
      if (pg) {
        PQsetNoticeProcessor(*pg, ignore_notice, nullptr);
        std::string where = std::string("metadata store postgres db=") + PQdb(*pg) +
                            " host=" + PQhost(*pg) + " port=" + PQport(*pg);
        if (away_.exchange(false)) {
          log::get("store")->info("postgres reachable again {}", where);
        }
        return std::make_unique<pg::PgConn>(*pg, std::move(where), o_.query_timeout);
      }
      const std::string& msg = pg.error().message();
      if (Clock::now() + pause > deadline) {
        if (!away_.exchange(true)) {
          log::get("store")->warn(
              "postgres unreachable; operations fail at once until it is back error={}", msg);
        }
        return Error(Errc::Unavailable, "postgres: cannot connect: " + msg);
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
  }

 private:
  void release(pg::PgConn* raw) {
    std::unique_ptr<pg::PgConn> conn(raw);
    std::vector<std::unique_ptr<pg::PgConn>> closed;  // closed after the lock is let go
    std::lock_guard lock(mu_);
    if (conn->unusable()) {
      // Lost, or dropped after a timeout: the idle ones most likely went the same way (a
      // restart, a hung server); close them all now rather than let each of them fail an
      // operation first, each after a whole query_timeout when the server hangs.
      open_ -= 1 + static_cast<int>(idle_.size());
      closed = std::move(idle_);
      idle_.clear();
      bool timed_out = conn->timed_out();
      closed.push_back(std::move(conn));
      if (!timed_out) {  // (a timeout said so already, naming it)
        log::get("store")->warn("postgres connection lost; reconnecting at the next operation");
      }
    } else {
      idle_.push_back(std::move(conn));
    }
    cv_.notify_all();
  }

  PostgresOptions o_;
  std::chrono::milliseconds attempt_;  // one connection attempt's budget
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pg::PgConn>> idle_;
  int open_ = 0;                   // leased + idle + connecting
  std::atomic<bool> away_{false};  // the last connect gave up
};

}  // namespace

Result<MetadataStorePtr> open_postgres(const PostgresOptions& options) {
  if (options.dsn.empty()) {
    return Error(Errc::InvalidArgument, "postgres: no DSN (store.postgres.dsn)");
  }
  if (options.max_connections < 1) {
    return Error(Errc::InvalidArgument, "postgres: max_connections must be at least 1");
  }
  if (options.query_timeout <= std::chrono::milliseconds(0)) {
    return Error(Errc::InvalidArgument, "postgres: query_timeout must be positive");
  }
  auto store = std::make_unique<sql::SqlMetadataStore>(std::make_unique<PgPool>(options));
  if (auto m = store->migrate(); !m) {
    return sql::unavailable_store(std::move(m).error());
  }
  return MetadataStorePtr(std::move(store));
}

}  // namespace berth::store
