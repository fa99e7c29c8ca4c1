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
    rows::bind_audit_event(st, e);
    BERTH_TRY(st.run());
  }
  return tx.commit();
}

Result<std::vector<AuditEvent>> SqliteMetadataStore::list_audit(int64_t since,
                                                                const std::string& principal,
                                                                int limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kAuditColumns + " FROM audit " +
                   "WHERE time >= ? AND (? = '' OR principal = ?) ORDER BY id DESC LIMIT ?");
  st.bind(1, since).bind(2, principal).bind(3, principal).bind(4, int64_t{limit});
  return st.read_all(rows::read_audit_event);
}

}  // namespace berth::store
