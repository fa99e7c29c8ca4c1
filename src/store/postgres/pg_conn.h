// SPDX-License-Identifier: Apache-2.0
// Private to the store. The PostgreSQL engine over libpq: PgConn is one connection as the
// sql::Conn the engine-neutral store runs over (`?` placeholders rewritten to $1..$n, typed
// parameters, SQLSTATEs mapped to Errc); PgPool (pg_pool.cc) leases up to max_connections of
// them and reconnects, with a bounded wait, after the server went away.
//
// Nothing here waits on the server without a deadline: libpq's blocking calls have none, so
// a server that accepts the connection and never answers (stopped, hung, black-holed) would
// hold the caller forever. Connecting (connect()) and every statement (PgConn::run, exec) use
// libpq's asynchronous API on a non-blocking connection and poll its socket until a deadline;
// a statement that misses it drops the connection (the server rolls its transaction back)
// and fails with Unavailable.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <string>

#include "store/sql/conn.h"

namespace berth::store::pg {

/// The dialect: BIGINT, TEXT COLLATE "C" (bytewise order, as SQLite), BYTEA, BIGSERIAL, row
/// locks, and a baseline schema already at version 1 (migration 1 is SQLite history).
const sql::Dialect& dialect();

/// "?" placeholders outside quoted literals and identifiers become $1, $2, ...
std::string number_placeholders(const std::string& sql);

using Deadline = std::chrono::steady_clock::time_point;

/// Connects without blocking past `deadline` (PQconnectStartParams + PQconnectPoll): the
/// connected PGconn, in non-blocking mode, or why not.
Result<PGconn*> connect_until(const char* const* keys, const char* const* values,
                              Deadline deadline);

class PgConn final : public sql::Conn {
 public:
  /// Takes ownership of a connected PGconn (non-blocking mode, as connect_until leaves it).
  /// Every statement must be answered within query_timeout.
  PgConn(PGconn* pg, std::string describe, std::chrono::milliseconds query_timeout)
      : pg_(pg), describe_(std::move(describe)), query_timeout_(query_timeout) {}
  ~PgConn() override { PQfinish(pg_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  const sql::Dialect& dialect() const override { return pg::dialect(); }
  std::unique_ptr<sql::Cursor> prepare(const std::string& sql) override;
  Status exec(const std::string& sql) override;
  int64_t changes() override { return changes_; }
  Status begin_write() override { return exec("BEGIN"); }
  // One snapshot for every statement of the read.
  Status begin_read() override { return exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }
  Status lock_schema() override;
  Result<int> schema_version() override;
  Status set_schema_version(int version) override;
  std::string describe() const override { return describe_; }

  // ---- for the pool ----
  /// A new lease begins: nothing of it has reached the database yet.
  void start_lease() {
    ran_ = 0;
    lost_first_ = false;
    conflicted_ = false;
  }
  /// The connection is gone, was dropped after a timeout, or is stuck in a transaction:
  /// close it rather than reuse it.
  bool unusable() const {
    return pg_ == nullptr || PQstatus(pg_) != CONNECTION_OK ||
           PQtransactionStatus(pg_) != PQTRANS_IDLE;
  }
  /// A statement found no answer within query_timeout (the server may be hung).
  bool timed_out() const { return timed_out_; }
  /// The lease's first statement found the connection lost: it never ran.
  bool lost_before_work() const { return lost_first_; }
  /// The lease's latest failure was a conflict with another transaction (SQLSTATE 40001
  /// serialization failure, 40P01 deadlock): the server rolled the transaction back.
  bool conflicted() const { return conflicted_; }

  /// Runs sql with parameters (types and formats per parameter); the result or the error,
  /// mapped. Counts changes and notes a lost connection. Unavailable, naming
  /// store.postgres.query_timeout, when the server does not answer in time.
  Result<PGresult*> run(const std::string& sql, int n, const Oid* types, const char* const* values,
                        const int* lengths, const int* formats);

 private:
  Result<PGresult*> check(PGresult* res);
  /// After a PQsend*: sends what libpq buffered and collects the results (the last one, as
  /// PQexec does), waiting at most query_timeout.
  Result<PGresult*> finish();
  /// Missed the deadline: asks the server to cancel the statement (in the background: a
  /// hung server would not answer that either), drops the connection, says so.
  Error give_up();
  /// The connection failed under us in a way libpq did not report as a result.
  Error drop_lost(const std::string& why);

  PGconn* pg_;  // nullptr once dropped after a timeout
  std::string describe_;
  std::chrono::milliseconds query_timeout_;
  bool timed_out_ = false;
  int64_t changes_ = 0;
  int ran_ = 0;
  bool lost_first_ = false;
  bool conflicted_ = false;
};

}  // namespace berth::store::pg
