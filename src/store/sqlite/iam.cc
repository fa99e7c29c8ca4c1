// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: IAM principals, access keys, attached policies, repository policies.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Result<bool> SqliteMetadataStore::principal_exists(const std::string& kind,
                                                   const std::string& name) {
  Stmt st(db_, "SELECT 1 FROM principals WHERE kind = ? AND name = ?");
  st.bind(1, kind).bind(2, name);
  return st.step();
}

Status SqliteMetadataStore::create_principal(const Principal& p) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO principals(kind, name, created_at) VALUES(?,?,?) "
          "ON CONFLICT(kind, name) DO NOTHING");
  rows::bind_principal(st, p);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::AlreadyExists, p.kind + " " + p.name + " already exists");
  }
  return ok();
}

Result<std::vector<Principal>> SqliteMetadataStore::list_principals(const std::string& kind) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kPrincipalColumns +
                   " FROM principals WHERE kind = ? ORDER BY name");
  st.bind(1, kind);
  return st.read_all(rows::read_principal);
}

Status SqliteMetadataStore::delete_principal(const std::string& kind, const std::string& name) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  Stmt st(db_, "DELETE FROM principals WHERE kind = ? AND name = ?");
  st.bind(1, kind).bind(2, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, kind + " " + name + " does not exist");
  }
  Stmt pol(db_, "DELETE FROM policies WHERE kind = ? AND principal = ?");
  pol.bind(1, kind).bind(2, name);
  BERTH_TRY(pol.run());
  if (kind == "user") {
    Stmt keys(db_, "DELETE FROM access_keys WHERE user_name = ?");
    keys.bind(1, name);
    BERTH_TRY(keys.run());
  }
  return tx.commit();
}

Status SqliteMetadataStore::create_key(const AccessKey& key) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists("user", key.user));
  if (!exists) {
    return Error(Errc::NotFound, "user " + key.user + " does not exist");
  }
  Stmt st(db_,
          "INSERT INTO access_keys(id, user_name, secret_hash, active, created_at) "
          "VALUES(?,?,?,?,?)");
  rows::bind_access_key(st, key);
  BERTH_TRY(st.run());
  return tx.commit();
}

Result<AccessKey> SqliteMetadataStore::get_key(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kAccessKeyColumns + " FROM access_keys WHERE id = ?");
  st.bind(1, id);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "access key " + id + " does not exist");
  }
  return rows::read_access_key(st);
}

Result<std::vector<AccessKey>> SqliteMetadataStore::list_keys(const std::string& user) {
  std::lock_guard lock(mu_);
  BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists("user", user));
  if (!exists) {
    return Error(Errc::NotFound, "user " + user + " does not exist");
  }
  Stmt st(db_, std::string("SELECT ") + rows::kAccessKeyColumns + " FROM access_keys " +
                   "WHERE user_name = ? ORDER BY created_at, id");
  st.bind(1, user);
  return st.read_all(rows::read_access_key);
}

Status SqliteMetadataStore::set_key_active(const std::string& id, bool active) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "UPDATE access_keys SET active = ? WHERE id = ?");
  st.bind(1, int64_t{active}).bind(2, id);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "access key " + id + " does not exist");
  }
  return ok();
}

Status SqliteMetadataStore::delete_key(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM access_keys WHERE id = ?");
  st.bind(1, id);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "access key " + id + " does not exist");
  }
  return ok();
}

Status SqliteMetadataStore::put_policy(const AttachedPolicy& p) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists(p.kind, p.principal));
  if (!exists) {
    return Error(Errc::NotFound, p.kind + " " + p.principal + " does not exist");
  }
  Stmt st(db_,
          "INSERT INTO policies(kind, principal, name, document, updated_at) VALUES(?,?,?,?,?) "
          "ON CONFLICT(kind, principal, name) DO UPDATE SET document = excluded.document, "
          "updated_at = excluded.updated_at");
  rows::bind_policy(st, p);
  BERTH_TRY(st.run());
  return tx.commit();
}

Result<std::vector<AttachedPolicy>> SqliteMetadataStore::list_policies(
    const std::string& kind, const std::string& principal) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kPolicyColumns + " FROM policies " +
                   "WHERE (? = '' OR kind = ?) AND (? = '' OR principal = ?) "
                   "ORDER BY kind, principal, name");
  st.bind(1, kind).bind(2, kind).bind(3, principal).bind(4, principal);
  return st.read_all(rows::read_policy);
}

Status SqliteMetadataStore::delete_policy(const std::string& kind, const std::string& principal,
                                          const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM policies WHERE kind = ? AND principal = ? AND name = ?");
  st.bind(1, kind).bind(2, principal).bind(3, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound,
                 "policy " + name + " is not attached to " + kind + " " + principal);
  }
  return ok();
}

Status SqliteMetadataStore::set_repository_policy(const std::string& repo,
                                                  const std::string& document) {
  std::lock_guard lock(mu_);
  BERTH_ASSIGN_OR_RETURN(auto r, get_repository_locked(repo));
  if (document.empty()) {
    Stmt st(db_, "DELETE FROM repository_policies WHERE repo_id = ?");
    st.bind(1, r.id);
    return st.run();
  }
  Stmt st(db_,
          "INSERT INTO repository_policies(repo_id, document) VALUES(?,?) "
          "ON CONFLICT(repo_id) DO UPDATE SET document = excluded.document");
  st.bind(1, r.id).bind(2, document);
  return st.run();
}

Result<std::string> SqliteMetadataStore::get_repository_policy(const std::string& repo) {
  std::lock_guard lock(mu_);
  BERTH_ASSIGN_OR_RETURN(auto r, get_repository_locked(repo));
  Stmt st(db_, "SELECT document FROM repository_policies WHERE repo_id = ?");
  st.bind(1, r.id);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  return row ? st.text(0) : std::string();
}

}  // namespace berth::store
