// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: IAM principals, access keys, attached policies, repository policies.
#include "store/sql/sql_store.h"

namespace berth::store::sql {

Result<bool> SqlMetadataStore::principal_exists(Conn& c, const std::string& kind,
                                                const std::string& name) {
  // Share-locked: a key or policy written for it is not orphaned by a concurrent delete.
  Stmt st(c, std::string("SELECT 1 FROM principals WHERE kind = ? AND name = ?") +
                 c.dialect().for_share);
  st.bind(1, kind).bind(2, name);
  return st.step();
}

Status SqlMetadataStore::create_principal(const Principal& p) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "INSERT INTO principals(kind, name, created_at) VALUES(?,?,?) "
            "ON CONFLICT(kind, name) DO NOTHING");
    rows::bind_principal(st, p);
    return st.run_or(Error(Errc::AlreadyExists, p.kind + " " + p.name + " already exists"));
  });
}

Result<std::vector<Principal>> SqlMetadataStore::list_principals(const std::string& kind) {
  return with_conn([&](Conn& c) -> Result<std::vector<Principal>> {
    Stmt st(c, std::string("SELECT ") + rows::kPrincipalColumns +
                   " FROM principals WHERE kind = ? ORDER BY name");
    st.bind(1, kind);
    return st.read_all(rows::read_principal);
  });
}

Status SqlMetadataStore::delete_principal(const std::string& kind, const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    Stmt st(c, "DELETE FROM principals WHERE kind = ? AND name = ?");
    st.bind(1, kind).bind(2, name);
    BERTH_TRY(st.run_or(Error(Errc::NotFound, kind + " " + name + " does not exist")));
    Stmt pol(c, "DELETE FROM policies WHERE kind = ? AND principal = ?");
    pol.bind(1, kind).bind(2, name);
    BERTH_TRY(pol.run());
    if (kind == "user") {
      Stmt keys(c, "DELETE FROM access_keys WHERE user_name = ?");
      keys.bind(1, name);
      BERTH_TRY(keys.run());
    }
    return tx.commit();
  });
}

Status SqlMetadataStore::create_key(const AccessKey& key) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists(c, "user", key.user));
    if (!exists) {
      return Error(Errc::NotFound, "user " + key.user + " does not exist");
    }
    Stmt st(c,
            "INSERT INTO access_keys(id, user_name, secret_hash, active, created_at) "
            "VALUES(?,?,?,?,?)");
    rows::bind_access_key(st, key);
    BERTH_TRY(st.run());
    return tx.commit();
  });
}

Result<AccessKey> SqlMetadataStore::get_key(const std::string& id) {
  return with_conn([&](Conn& c) -> Result<AccessKey> {
    Stmt st(c, std::string("SELECT ") + rows::kAccessKeyColumns + " FROM access_keys WHERE id = ?");
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "access key " + id + " does not exist");
    }
    return rows::read_access_key(st);
  });
}

Result<std::vector<AccessKey>> SqlMetadataStore::list_keys(const std::string& user) {
  return with_conn([&](Conn& c) -> Result<std::vector<AccessKey>> {
    BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists(c, "user", user));
    if (!exists) {
      return Error(Errc::NotFound, "user " + user + " does not exist");
    }
    Stmt st(c, std::string("SELECT ") + rows::kAccessKeyColumns + " FROM access_keys " +
                   "WHERE user_name = ? ORDER BY created_at, id");
    st.bind(1, user);
    return st.read_all(rows::read_access_key);
  });
}

Status SqlMetadataStore::set_key_active(const std::string& id, bool active) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "UPDATE access_keys SET active = ? WHERE id = ?");
    st.bind(1, int64_t{active}).bind(2, id);
    return st.run_or(Error(Errc::NotFound, "access key " + id + " does not exist"));
  });
}

Status SqlMetadataStore::delete_key(const std::string& id) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM access_keys WHERE id = ?");
    st.bind(1, id);
    return st.run_or(Error(Errc::NotFound, "access key " + id + " does not exist"));
  });
}

Status SqlMetadataStore::put_policy(const AttachedPolicy& p) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists(c, p.kind, p.principal));
    if (!exists) {
      return Error(Errc::NotFound, p.kind + " " + p.principal + " does not exist");
    }
    Stmt st(c,
            "INSERT INTO policies(kind, principal, name, document, updated_at) VALUES(?,?,?,?,?) "
            "ON CONFLICT(kind, principal, name) DO UPDATE SET document = excluded.document, "
            "updated_at = excluded.updated_at");
    rows::bind_policy(st, p);
    BERTH_TRY(st.run());
    return tx.commit();
  });
}

Result<std::vector<AttachedPolicy>> SqlMetadataStore::list_policies(const std::string& kind,
                                                                    const std::string& principal) {
  return with_conn([&](Conn& c) -> Result<std::vector<AttachedPolicy>> {
    Stmt st(c, std::string("SELECT ") + rows::kPolicyColumns + " FROM policies " +
                   "WHERE (? = '' OR kind = ?) AND (? = '' OR principal = ?) "
                   "ORDER BY kind, principal, name");
    st.bind(1, kind).bind(2, kind).bind(3, principal).bind(4, principal);
    return st.read_all(rows::read_policy);
  });
}

Status SqlMetadataStore::delete_policy(const std::string& kind, const std::string& principal,
                                       const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM policies WHERE kind = ? AND principal = ? AND name = ?");
    st.bind(1, kind).bind(2, principal).bind(3, name);
    return st.run_or(
        Error(Errc::NotFound, "policy " + name + " is not attached to " + kind + " " + principal));
  });
}

Status SqlMetadataStore::set_repository_policy(const std::string& repo,
                                               const std::string& document) {
  return with_conn([&](Conn& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto r, get_repository_in(c, repo, ""));
    if (document.empty()) {
      Stmt st(c, "DELETE FROM repository_policies WHERE repo_id = ?");
      st.bind(1, r.id);
      return st.run();
    }
    Stmt st(c,
            "INSERT INTO repository_policies(repo_id, document) VALUES(?,?) "
            "ON CONFLICT(repo_id) DO UPDATE SET document = excluded.document");
    st.bind(1, r.id).bind(2, document);
    return st.run();
  });
}

Result<std::string> SqlMetadataStore::get_repository_policy(const std::string& repo) {
  return with_conn([&](Conn& c) -> Result<std::string> {
    BERTH_ASSIGN_OR_RETURN(auto r, get_repository_in(c, repo, ""));
    Stmt st(c, "SELECT document FROM repository_policies WHERE repo_id = ?");
    st.bind(1, r.id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    return row ? st.text(0) : std::string();
  });
}

}  // namespace berth::store::sql
