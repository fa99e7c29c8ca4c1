// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: objects, JSON documents by kind and name (custom domains, certificates,
// berth's CA and ACME account).
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Status SqliteMetadataStore::put_object(const ObjectRow& o, bool create) {
  std::lock_guard lock(mu_);
  // An update keeps the first write's created_at.
  Stmt st(db_, create ? "INSERT INTO objects(kind, name, document, created_at, updated_at) "
                        "VALUES(?,?,?,?,?)"
                      : "INSERT INTO objects(kind, name, document, created_at, updated_at) "
                        "VALUES(?,?,?,?,?) ON CONFLICT(kind, name) DO UPDATE SET "
                        "document = excluded.document, updated_at = excluded.updated_at");
  rows::bind_object(st, o);
  auto r = st.step();
  if (!r && r.error().code() == Errc::Conflict) {
    return Error(Errc::AlreadyExists, o.kind + " " + o.name + " already exists");
  }
  return r ? ok() : Status(r.error());
}

Result<ObjectRow> SqliteMetadataStore::get_object(const std::string& kind,
                                                  const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kObjectColumns +
                   " FROM objects WHERE kind = ? AND name = ?");
  st.bind(1, kind).bind(2, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, kind + " " + name + " does not exist");
  }
  return rows::read_object(st);
}

Result<std::vector<ObjectRow>> SqliteMetadataStore::list_objects(const std::string& kind) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kObjectColumns +
                   " FROM objects WHERE kind = ? ORDER BY name");
  st.bind(1, kind);
  return st.read_all(rows::read_object);
}

Status SqliteMetadataStore::delete_object(const std::string& kind, const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM objects WHERE kind = ? AND name = ?");
  st.bind(1, kind).bind(2, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, kind + " " + name + " does not exist");
  }
  return ok();
}

}  // namespace berth::store
