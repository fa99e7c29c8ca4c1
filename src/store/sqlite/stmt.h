// SPDX-License-Identifier: Apache-2.0
// Private to the store. Stmt: a prepared SQLite statement with typed binds and columns, and
// the JSON encoding of glob lists kept in a TEXT column.
#pragma once

#include <sqlite3.h>

#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace berth::store {

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
      err_ = sqlite3_errmsg(db);
    }
  }
  ~Stmt() { sqlite3_finalize(st_); }
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
  std::string text(int col) {
    auto* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t i64(int col) { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::string err_;
};

inline std::string globs_to_json(const std::vector<std::string>& g) { return Json(g).dump(); }
inline std::vector<std::string> globs_from_json(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  std::vector<std::string> out;
  if (j.is_array()) {
    for (auto& e : j) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}

}  // namespace berth::store
