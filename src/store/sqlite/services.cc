// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: services, their revisions, and deployments.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Status SqliteMetadataStore::create_service(const ServiceRecord& s) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO services(name, spec, paused, revision, created_at, updated_at) "
          "VALUES(?,?,?,?,?,?)");
  st.bind(1, s.name)
      .bind(2, s.spec)
      .bind(3, int64_t{s.paused})
      .bind(4, s.revision)
      .bind(5, s.created_at)
      .bind(6, s.updated_at);
  auto r = st.step();
  if (!r && r.error().code() == Errc::Conflict) {
    return Error(Errc::AlreadyExists, "service " + s.name + " already exists");
  }
  return r ? ok() : Status(r.error());
}

ServiceRecord SqliteMetadataStore::read_service(Stmt& st) {
  return ServiceRecord{st.text(0), st.text(1), st.i64(2) != 0, st.i64(3), st.i64(4), st.i64(5)};
}

Result<ServiceRecord> SqliteMetadataStore::get_service(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "SELECT name, spec, paused, revision, created_at, updated_at FROM services "
          "WHERE name = ?");
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return read_service(st);
}

Result<std::vector<ServiceRecord>> SqliteMetadataStore::list_services() {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "SELECT name, spec, paused, revision, created_at, updated_at FROM services "
          "ORDER BY name");
  std::vector<ServiceRecord> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      break;
    }
    out.push_back(read_service(st));
  }
  return out;
}

Status SqliteMetadataStore::update_service(const ServiceRecord& s) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "UPDATE services SET spec = ?, paused = ?, revision = ?, updated_at = ? "
          "WHERE name = ?");
  st.bind(1, s.spec).bind(2, int64_t{s.paused}).bind(3, s.revision).bind(4, s.updated_at);
  st.bind(5, s.name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "service " + s.name + " does not exist");
  }
  return ok();
}

Status SqliteMetadataStore::delete_service(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM services WHERE name = ?");
  st.bind(1, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return ok();
}

Result<int64_t> SqliteMetadataStore::add_revision(const RevisionRecord& r) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  Stmt max(db_, "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE service = ?");
  max.bind(1, r.service);
  BERTH_ASSIGN_OR_RETURN(bool row, max.step());
  int64_t number = (row ? max.i64(0) : 0) + 1;
  Stmt st(db_,
          "INSERT INTO revisions(service, number, digest, spec, created_at) VALUES(?,?,?,?,?)");
  st.bind(1, r.service).bind(2, number).bind(3, r.digest).bind(4, r.spec).bind(5, r.created_at);
  auto s = st.step();
  if (!s) {
    if (s.error().code() == Errc::Conflict) {
      return Error(Errc::NotFound, "service " + r.service + " does not exist");
    }
    return s.error();
  }
  BERTH_TRY(tx.commit());
  return number;
}

Result<RevisionRecord> SqliteMetadataStore::get_revision(const std::string& service,
                                                         int64_t number) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "SELECT service, number, digest, spec, created_at FROM revisions "
          "WHERE service = ? AND number = ?");
  st.bind(1, service).bind(2, number);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound,
                 "service " + service + " has no revision " + std::to_string(number));
  }
  return RevisionRecord{st.text(0), st.i64(1), st.text(2), st.text(3), st.i64(4)};
}

Result<int64_t> SqliteMetadataStore::add_deployment(const DeploymentRecord& d) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO deployments(service, revision, status, reason, trigger, created_at, "
          "started_at, finished_at) VALUES(?,?,?,?,?,?,?,?)");
  st.bind(1, d.service)
      .bind(2, d.revision)
      .bind(3, d.status)
      .bind(4, d.reason)
      .bind(5, d.trigger)
      .bind(6, d.created_at)
      .bind(7, d.started_at)
      .bind(8, d.finished_at);
  auto s = st.step();
  if (!s) {
    if (s.error().code() == Errc::Conflict) {
      return Error(Errc::NotFound, "service " + d.service + " does not exist");
    }
    return s.error();
  }
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status SqliteMetadataStore::update_deployment(const DeploymentRecord& d) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "UPDATE deployments SET status = ?, reason = ?, started_at = ?, finished_at = ? "
          "WHERE id = ?");
  st.bind(1, d.status).bind(2, d.reason).bind(3, d.started_at).bind(4, d.finished_at);
  st.bind(5, d.id);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "deployment " + std::to_string(d.id) + " does not exist");
  }
  return ok();
}

DeploymentRecord SqliteMetadataStore::read_deployment(Stmt& st) {
  return DeploymentRecord{st.i64(0),  st.text(1), st.i64(2), st.text(3), st.text(4),
                          st.text(5), st.i64(6),  st.i64(7), st.i64(8),  st.text(9)};
}

Result<DeploymentRecord> SqliteMetadataStore::get_deployment(int64_t id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (std::string(kDeploymentColumns) + "WHERE d.id = ?").c_str());
  st.bind(1, id);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "deployment " + std::to_string(id) + " does not exist");
  }
  return read_deployment(st);
}

Result<std::vector<DeploymentRecord>> SqliteMetadataStore::list_deployments(
    const std::string& service, int limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (std::string(kDeploymentColumns) +
                "WHERE (? = '' OR d.service = ?) ORDER BY d.id DESC LIMIT ?")
                   .c_str());
  st.bind(1, service).bind(2, service).bind(3, int64_t{limit});
  std::vector<DeploymentRecord> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      break;
    }
    out.push_back(read_deployment(st));
  }
  return out;
}

}  // namespace berth::store
