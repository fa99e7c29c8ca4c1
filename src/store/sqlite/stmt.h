// SPDX-License-Identifier: Apache-2.0
// Private to the store. Stmt: a prepared SQLite statement with typed binds and columns; it is
// the rows::Row and rows::Params the shared row mapping (store/rows.h) reads and binds.
#pragma once

#include <sqlite3.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "store/rows.h"

namespace berth::store {

class Stmt final : public rows::Row, public rows::Params {
 public:
  Stmt(sqlite3* db, const std::string& sql) : Stmt(db, sql.c_str()) {}
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
      err_ = sqlite3_errmsg(db);
    }
  }
  ~Stmt() override { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& s) {
    sqlite3_bind_blob(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  /// Ready to run again with new binds (a statement prepared once for many rows).
  Stmt& reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    return *this;
  }
  /// SQLITE_ROW -> true, SQLITE_DONE -> false, else error.
  Result<bool> step() {
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
    Errc code = rc == SQLITE_CONSTRAINT ? Errc::Conflict
                : (rc == SQLITE_FULL)   ? Errc::NoSpace
                                        : Errc::Internal;
    return Error(code, std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  Status run() {
    auto r = step();
    if (!r) {
      return r.error();
    }
    return ok();
  }
  std::string text(int col) override {
    auto* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t i64(int col) override { return sqlite3_column_int64(st_, col); }

  void set_text(int i, const std::string& s) override { bind(i, s); }
  void set_blob(int i, const std::string& s) override { bind_blob(i, s); }
  void set_i64(int i, int64_t v) override { bind(i, v); }

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
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::string err_;
};

using rows::globs_from_json;
using rows::globs_to_json;

}  // namespace berth::store
