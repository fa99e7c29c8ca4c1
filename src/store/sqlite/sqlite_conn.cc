// SPDX-License-Identifier: Apache-2.0
// The SQLite engine: one connection in WAL mode behind a mutex (SQLite has one writer anyway),
// as the Conn and ConnPool the engine-neutral store (store/sql/) runs over. Callers are on the
// blocking pool, so the mutex never blocks an I/O thread. What is SQLite's own: statements on
// sqlite3_stmt, BEGIN IMMEDIATE, PRAGMA user_version, and its error codes mapped to Errc.
#include <sqlite3.h>

#include <mutex>
#include <unordered_map>

#include "common/log.h"
#include "store/sql/sql_store.h"

namespace berth::store {

namespace {

using sql::Conn;
using sql::Cursor;

const sql::Dialect kSqlite{
    .name = "sqlite",
    .integer = "INTEGER",
    .text = "TEXT",
    .blob = "BLOB",
    .rowid_pk = "INTEGER PRIMARY KEY",
    .autoinc_pk = "INTEGER PRIMARY KEY AUTOINCREMENT",
    .without_rowid = " WITHOUT ROWID",
    .for_update = "",
    .for_share = "",
    .baseline_version = 0,
    .columns_sql =
        "SELECT m.name, p.name, lower(p.type), p.pk = 1 AND lower(p.type) = 'integer' "
        "FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' "
        "AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY m.rowid, p.cid",
    .references_sql =
        "SELECT m.name, f.\"table\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f "
        "WHERE m.type = 'table'",
    .sync_serial = "",
};

// SQLITE_BUSY outlasting the busy timeout: another process holds the write lock; a retry
// later may well succeed, so it is Unavailable (503), not Internal.
Errc errc_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return Errc::Conflict;
    case SQLITE_FULL:
      return Errc::NoSpace;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::Unavailable;
    default:
      return Errc::Internal;
  }
}

// A statement, either the connection's cached one for its SQL (`busy` marks it taken until
// the cursor is done with it) or one of its own.
class SqliteCursor final : public Cursor {
 public:
  SqliteCursor(sqlite3* db, sqlite3_stmt* st, bool* busy, std::string err)
      : db_(db), st_(st), busy_(busy), err_(std::move(err)) {}
  ~SqliteCursor() override {
    if (busy_ == nullptr) {
      sqlite3_finalize(st_);
      return;
    }
    // Back to the cache, reset: a stepped statement would hold its read transaction open.
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    *busy_ = false;
  }
  SqliteCursor(const SqliteCursor&) = delete;
  SqliteCursor& operator=(const SqliteCursor&) = delete;

  void set_text(int i, const std::string& s) override {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void set_blob(int i, const std::string& s) override {
    sqlite3_bind_blob(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void set_i64(int i, int64_t v) override { sqlite3_bind_int64(st_, i, v); }
  void reset() override {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Result<bool> step() override {
    if (!err_.empty()) {
      return Error(Errc::Internal, "sqlite prepare: " + err_);
    }
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return Error(errc_of(rc), std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  std::string text(int col) override {
    auto* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t i64(int col) override { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  bool* busy_ = nullptr;
  std::string err_;
};

class SqliteConn final : public Conn, public sql::ConnPool {
 public:
  SqliteConn(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConn() override {
    for (auto& [sql, c] : stmts_) {
      sqlite3_finalize(c.st);
    }
    sqlite3_close(db_);
  }
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

  // ---- Conn ----
  const sql::Dialect& dialect() const override { return kSqlite; }
  // Statements are compiled once per SQL text and kept: compiling was ~6% of berthd's CPU
  // in a pull of small blobs. Only the store's own SQL comes here, so the set is small; past
  // kMaxCached (SQL built with a varying shape), statements are compiled per use as before.
  std::unique_ptr<Cursor> prepare(const std::string& sql) override {
    auto it = stmts_.find(sql);
    if (it != stmts_.end() && !it->second.busy) {
      it->second.busy = true;
      return std::make_unique<SqliteCursor>(db_, it->second.st, &it->second.busy, "");
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) !=
        SQLITE_OK) {
      sqlite3_finalize(st);
      return std::make_unique<SqliteCursor>(db_, nullptr, nullptr, sqlite3_errmsg(db_));
    }
    if (it == stmts_.end() && stmts_.size() < kMaxCached) {
      auto& c = stmts_.emplace(sql, Cached{st, true}).first->second;
      return std::make_unique<SqliteCursor>(db_, st, &c.busy, "");
    }
    return std::make_unique<SqliteCursor>(db_, st, nullptr, "");  // in use: one of its own
  }
  Status exec(const std::string& sql) override {
    char* msg = nullptr;
    if (int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg); rc != SQLITE_OK) {
      std::string m = msg ? msg : "unknown";
      sqlite3_free(msg);
      // A COMMIT in WAL mode is where the frames are written: a full disk shows up here.
      return Error(errc_of(rc) == Errc::Conflict ? Errc::Internal : errc_of(rc),
                   std::string("sqlite: ") + m);
    }
    return ok();
  }
  int64_t changes() override { return sqlite3_changes(db_); }
  Status begin_write() override { return exec("BEGIN IMMEDIATE"); }
  Status begin_read() override { return exec("BEGIN"); }
  // BEGIN IMMEDIATE took the database's write lock: no other process migrates meanwhile.
  Status lock_schema() override { return ok(); }
  Result<int> schema_version() override {
    sql::Stmt st(*this, "PRAGMA user_version");
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    return row ? static_cast<int>(st.i64(0)) : 0;
  }
  Status set_schema_version(int version) override {
    return exec(fmt::format("PRAGMA user_version = {}", version));
  }
  std::string describe() const override { return "metadata store " + path_; }

  // ---- ConnPool: this one connection, one operation at a time ----
  Result<sql::Lease> acquire() override {
    mu_.lock();
    return sql::Lease(*this, [this] { mu_.unlock(); });
  }
  // One connection, and SQLite serializes writers itself: nothing to retry.
  sql::Retry retry(Conn& /*c*/, const Error& /*err*/) override { return sql::Retry::No; }

 private:
  static constexpr size_t kMaxCached = 512;
  struct Cached {
    sqlite3_stmt* st;
    bool busy;
  };

  sqlite3* db_;
  std::string path_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> stmts_;  // node-based: `busy` stays put
};

// The pool handed to the store owns the connection.
class OwnedPool final : public sql::ConnPool {
 public:
  explicit OwnedPool(std::unique_ptr<SqliteConn> c) : c_(std::move(c)) {}
  Result<sql::Lease> acquire() override { return c_->acquire(); }
  sql::Retry retry(Conn& c, const Error& err) override { return c_->retry(c, err); }

 private:
  std::unique_ptr<SqliteConn> c_;
};

}  // namespace

Result<MetadataStorePtr> open_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return sql::unavailable_store(
        Error(Errc::Unavailable, "open metadata store " + path + ": " + msg));
  }
  sqlite3_busy_timeout(db, 5000);
  auto conn = std::make_unique<SqliteConn>(db, path);
  // WAL + synchronous=NORMAL: a killed process loses nothing that was committed (the OS holds
  // the WAL); only a power loss may drop the last transactions, never corrupt the database.
  BERTH_TRY(
      conn->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                 "PRAGMA foreign_keys=ON;"));
  auto store =
      std::make_unique<sql::SqlMetadataStore>(std::make_unique<OwnedPool>(std::move(conn)));
  if (auto m = store->migrate(); !m) {
    return sql::unavailable_store(std::move(m).error());
  }
  return MetadataStorePtr(std::move(store));
}

}  // namespace berth::store
