// SPDX-License-Identifier: Apache-2.0
// Private to the store. The small connection interface the engine-neutral store (sql_store.h)
// runs over, and what differs between the SQL engines (Dialect). An engine (sqlite/,
// postgres/) implements Conn and Cursor; everything else (the SQL, the transactions, the row
// mapping) is written once in store/sql/.
//
// SQL handed to Conn uses `?` placeholders, numbered from 1 in order of appearance; an engine
// that numbers them itself (PostgreSQL's $1..$n) rewrites them. Prefer SQL both engines accept
// (ON CONFLICT ... DO UPDATE/NOTHING, RETURNING, CASE); a difference goes in Dialect.
//
// A Conn is used by one thread at a time: the pool (ConnPool) hands it out for one store
// operation (a Lease) and takes it back after.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/rows.h"

namespace berth::store::sql {

/// What the engines do differently, in one place. The schema DDL (schema.cc) is written once
/// with these names for its column types; the store's SQL reads the lock clauses from here.
struct Dialect {
  const char* name;  // "sqlite", "postgres": for messages
  // Column types in the DDL.
  const char* integer;        // INTEGER | BIGINT
  const char* text;           // TEXT | TEXT COLLATE "C" (bytewise order, as SQLite's BINARY)
  const char* blob;           // BLOB | BYTEA
  const char* rowid_pk;       // INTEGER PRIMARY KEY | BIGSERIAL PRIMARY KEY
  const char* autoinc_pk;     // INTEGER PRIMARY KEY AUTOINCREMENT | BIGSERIAL PRIMARY KEY
  const char* without_rowid;  // " WITHOUT ROWID" | ""
  // Row locks a read in a write transaction takes so that no other node changes what it read
  // before the transaction ends. SQLite's BEGIN IMMEDIATE already serializes every writer.
  const char* for_update;  // "" | " FOR UPDATE"
  const char* for_share;   // "" | " FOR SHARE"
  /// Migrations numbered up to this one are history of another engine: a database of this
  /// engine is created by the baseline schema already past them.
  int baseline_version;
  // For copying a whole store (copy.cc). Every column of every table, tables in the order they
  // were created: (table, column, type, serial).
  const char* columns_sql;
  /// Every foreign key's tables: (table, the table it references).
  const char* references_sql;
  /// Moves an id column's sequence past the ids a copy inserted ({table}, {column}); "" when
  /// explicit ids need nothing (SQLite's AUTOINCREMENT follows them itself).
  const char* sync_serial;
};

/// One statement's execution: parameters by 1-based index, result columns by 0-based index.
class Cursor : public rows::Row, public rows::Params {
 public:
  /// Runs the statement if it has not run yet and moves to the next row: true on a row, false
  /// when there is none. Errc::Conflict for a constraint violation, Unavailable when the
  /// database is busy or the connection was lost, NoSpace on a full disk, Internal otherwise.
  virtual Result<bool> step() = 0;
  /// Ready to run again with new parameters.
  virtual void reset() = 0;
};

class Conn {
 public:
  virtual ~Conn() = default;
  virtual const Dialect& dialect() const = 0;
  /// A statement with `?` placeholders. Errors (bad SQL) show at the first step().
  virtual std::unique_ptr<Cursor> prepare(const std::string& sql) = 0;
  /// Runs one or more statements without parameters.
  virtual Status exec(const std::string& sql) = 0;
  /// Rows the last INSERT, UPDATE or DELETE run on this connection changed.
  virtual int64_t changes() = 0;
  /// A transaction that will write: SQLite takes the write lock now (BEGIN IMMEDIATE); a
  /// PostgreSQL transaction locks the rows it reads with Dialect::for_update.
  virtual Status begin_write() = 0;
  /// A transaction for a consistent read of several statements.
  virtual Status begin_read() = 0;

  // Schema versions (migrations.cc). lock_schema runs inside the migration's transaction and
  // keeps every other process out of the migration until it ends.
  virtual Status lock_schema() = 0;
  /// 0 for a database without a version yet.
  virtual Result<int> schema_version() = 0;
  virtual Status set_schema_version(int version) = 0;
  /// "metadata store /var/lib/berth/berth.db", "metadata store postgres db=berth host=...":
  /// names the database in messages (never a password).
  virtual std::string describe() const = 0;
};

/// A row's first column as text (Stmt::read_all(first_text): a list of names or digests).
inline std::string first_text(rows::Row& r) { return r.text(0); }

/// A prepared statement on a Conn: typed binds, stepping, reading; the rows::Row and
/// rows::Params the shared row mapping reads and binds.
class Stmt final : public rows::Row, public rows::Params {
 public:
  Stmt(Conn& c, const std::string& sql) : conn_(c), cur_(c.prepare(sql)) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    cur_->set_text(i, s);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& s) {
    cur_->set_blob(i, s);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    cur_->set_i64(i, v);
    return *this;
  }
  /// Ready to run again with new binds (a statement prepared once for many rows).
  Stmt& reset() {
    cur_->reset();
    return *this;
  }
  Result<bool> step() { return cur_->step(); }
  Status run() {
    auto r = step();
    if (!r) {
      return r.error();
    }
    return ok();
  }
  /// Runs a write that must change a row; `unchanged` is the answer when it changed none (a
  /// missing row: NotFound; an insert that did nothing: AlreadyExists).
  Status run_or(Error unchanged) {
    BERTH_TRY(run());
    if (conn_.changes() == 0) {
      return unchanged;
    }
    return ok();
  }
  /// Steps past the remaining rows. A write with RETURNING outside a transaction must end so:
  /// SQLite commits it only when the statement runs to its end, and a commit that fails there
  /// (a full disk) must not go unseen.
  Status finish() {
    while (true) {
      auto r = step();
      if (!r) {
        return r.error();
      }
      if (!*r) {
        return ok();
      }
    }
  }
  std::string text(int col) override { return cur_->text(col); }
  int64_t i64(int col) override { return cur_->i64(col); }
  void set_text(int i, const std::string& s) override { cur_->set_text(i, s); }
  void set_blob(int i, const std::string& s) override { cur_->set_blob(i, s); }
  void set_i64(int i, int64_t v) override { cur_->set_i64(i, v); }

  /// Steps through every row, mapping each with read.
  template <class T>
  Result<std::vector<T>> read_all(T (*read)(rows::Row&)) {
    std::vector<T> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, step());
      if (!row) {
        break;
      }
      out.push_back(read(*this));
    }
    return out;
  }

 private:
  Conn& conn_;
  std::unique_ptr<Cursor> cur_;
};

/// A transaction that rolls back unless committed.
class Tx {
 public:
  enum class Kind { Write, Read };
  explicit Tx(Conn& c, Kind kind = Kind::Write) : c_(c) {
    begun_ = kind == Kind::Write ? c_.begin_write() : c_.begin_read();
  }
  ~Tx() {
    if (begun_ && !done_) {
      (void)c_.exec("ROLLBACK");
    }
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  /// Why BEGIN failed (the first statement would fail the same way).
  const Status& began() const { return begun_; }
  Status commit() {
    if (!begun_) {
      return begun_.error();
    }
    done_ = true;
    return c_.exec("COMMIT");
  }

 private:
  Conn& c_;
  Status begun_;
  bool done_ = false;
};

/// One connection for one store operation, given back to its pool when the lease ends.
class Lease {
 public:
  Lease(Conn& c, std::function<void()> release) : c_(&c), release_(std::move(release)) {}
  Lease(Lease&& o) noexcept : c_(o.c_), release_(std::move(o.release_)) { o.release_ = nullptr; }
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (release_) {
      release_();
    }
  }
  Conn& conn() { return *c_; }

 private:
  Conn* c_;
  std::function<void()> release_;
};

/// What may follow an operation that failed.
enum class Retry {
  No,
  /// The connection was lost before anything of the operation reached the database: once
  /// more, on another connection.
  Reconnect,
  /// The database rolled the transaction back for a conflict with another one (a deadlock, a
  /// serialization failure): running it again is how such a conflict ends, a few times, after
  /// a short pause.
  Conflict,
};

/// Where the store gets its connections: SQLite's one connection behind a mutex, or a
/// PostgreSQL pool. Thread-safe.
class ConnPool {
 public:
  virtual ~ConnPool() = default;
  /// A connection, waiting a bounded time for one; Unavailable when the database is away.
  virtual Result<Lease> acquire() = 0;
  /// Whether op, which failed with `err` on `c`, may run again (see Retry).
  virtual Retry retry(Conn& c, const Error& err) = 0;
};

/// "LIMIT ?" for n rows, n < 0 meaning all (SQLite reads LIMIT -1 so; PostgreSQL refuses it).
inline int64_t limit_rows(int64_t n) { return n < 0 ? INT64_MAX : n; }

}  // namespace berth::store::sql
