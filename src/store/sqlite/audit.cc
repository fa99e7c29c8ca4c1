// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: the audit log.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Status SqliteMetadataStore::append_audit(const std::vector<AuditEvent>& events) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  for (const auto& e : events) {
    Stmt st(db_,
            "INSERT INTO audit(time, principal, action, resource, allowed, source) "
            "VALUES(?,?,?,?,?,?)");
    st.bind(1, e.time)
        .bind(2, e.principal)
        .bind(3, e.action)
        .bind(4, e.resource)
        .bind(5, int64_t{e.allowed})
        .bind(6, e.source);
    BERTH_TRY(st.run());
  }
  return tx.commit();
}

Result<std::vector<AuditEvent>> SqliteMetadataStore::list_audit(int64_t since,
                                                                const std::string& principal,
                                                                int limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "SELECT time, principal, action, resource, allowed, source FROM audit "
          "WHERE time >= ? AND (? = '' OR principal = ?) ORDER BY id DESC LIMIT ?");
  st.bind(1, since).bind(2, principal).bind(3, principal).bind(4, int64_t{limit});
  std::vector<AuditEvent> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      break;
    }
    out.push_back(
        AuditEvent{st.i64(0), st.text(1), st.text(2), st.text(3), st.i64(4) != 0, st.text(5)});
  }
  return out;
}

}  // namespace berth::store
