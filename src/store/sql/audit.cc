// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: the audit log.
#include "store/sql/sql_store.h"

namespace berth::store::sql {

Status SqlMetadataStore::append_audit(const std::vector<AuditEvent>& events) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    for (const auto& e : events) {
      Stmt st(c,
              "INSERT INTO audit(time, principal, action, resource, allowed, source) "
              "VALUES(?,?,?,?,?,?)");
      rows::bind_audit_event(st, e);
      BERTH_TRY(st.run());
    }
    return tx.commit();
  });
}

Result<std::vector<AuditEvent>> SqlMetadataStore::list_audit(int64_t since,
                                                             const std::string& principal,
                                                             int limit) {
  return with_conn([&](Conn& c) -> Result<std::vector<AuditEvent>> {
    Stmt st(c, std::string("SELECT ") + rows::kAuditColumns + " FROM audit " +
                   "WHERE time >= ? AND (? = '' OR principal = ?) ORDER BY id DESC LIMIT ?");
    st.bind(1, since).bind(2, principal).bind(3, principal).bind(4, limit_rows(limit));
    return st.read_all(rows::read_audit_event);
  });
}

}  // namespace berth::store::sql
