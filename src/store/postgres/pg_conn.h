// SPDX-License-Identifier: Apache-2.0
// Private to the store. The PostgreSQL engine over libpq: PgConn is one connection as the
// sql::Conn the engine-neutral store runs over (`?` placeholders rewritten to $1..$n, typed
// parameters, SQLSTATEs mapped to Errc); PgPool (pg_pool.cc) leases up to max_connections of
// them and reconnects, with a bounded wait, after the server went away.
#pragma once

#include <libpq-fe.h>

#include <string>

#include "store/sql/conn.h"

namespace berth::store::pg {

/// The dialect: BIGINT, TEXT COLLATE "C" (bytewise order, as SQLite), BYTEA, BIGSERIAL, row
/// locks, and a baseline schema already at version 1 (migration 1 is SQLite history).
const sql::Dialect& dialect();

/// "?" placeholders outside quoted literals and identifiers become $1, $2, ...
std::string number_placeholders(const std::string& sql);

class PgConn final : public sql::Conn {
 public:
  /// Takes ownership of a connected PGconn.
  PgConn(PGconn* pg, std::string describe) : pg_(pg), describe_(std::move(describe)) {}
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
  }
  /// The connection is gone (or stuck in a transaction): close it rather than reuse it.
  bool unusable() const {
    return PQstatus(pg_) != CONNECTION_OK || PQtransactionStatus(pg_) != PQTRANS_IDLE;
  }
  /// The lease's first statement found the connection lost: it never ran.
  bool lost_before_work() const { return lost_first_; }

  /// Runs sql with parameters (types and formats per parameter); the result or the error,
  /// mapped. Counts changes and notes a lost connection.
  Result<PGresult*> run(const std::string& sql, int n, const Oid* types, const char* const* values,
                        const int* lengths, const int* formats);

 private:
  Result<PGresult*> check(PGresult* res);

  PGconn* pg_;
  std::string describe_;
  int64_t changes_ = 0;
  int ran_ = 0;
  bool lost_first_ = false;
};

}  // namespace berth::store::pg
