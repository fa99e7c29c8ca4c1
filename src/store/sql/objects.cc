// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: objects, JSON documents by kind and name (custom domains, certificates,
// berth's CA and ACME account).
#include "store/sql/sql_store.h"

namespace berth::store::sql {

Status SqlMetadataStore::put_object(const ObjectRow& o, bool create) {
  return with_conn([&](Conn& c) -> Status {
    // An update keeps the first write's created_at.
    Stmt st(c, create ? "INSERT INTO objects(kind, name, document, created_at, updated_at) "
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
  });
}

Result<ObjectRow> SqlMetadataStore::get_object(const std::string& kind, const std::string& name) {
  return with_conn([&](Conn& c) -> Result<ObjectRow> {
    Stmt st(c, std::string("SELECT ") + rows::kObjectColumns +
                   " FROM objects WHERE kind = ? AND name = ?");
    st.bind(1, kind).bind(2, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, kind + " " + name + " does not exist");
    }
    return rows::read_object(st);
  });
}

Result<std::vector<ObjectRow>> SqlMetadataStore::list_objects(const std::string& kind) {
  return with_conn([&](Conn& c) -> Result<std::vector<ObjectRow>> {
    Stmt st(c, std::string("SELECT ") + rows::kObjectColumns +
                   " FROM objects WHERE kind = ? ORDER BY name");
    st.bind(1, kind);
    return st.read_all(rows::read_object);
  });
}

Status SqlMetadataStore::delete_object(const std::string& kind, const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM objects WHERE kind = ? AND name = ?");
    st.bind(1, kind).bind(2, name);
    return st.run_or(Error(Errc::NotFound, kind + " " + name + " does not exist"));
  });
}

}  // namespace berth::store::sql
