// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: services, their revisions, and deployments.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

namespace {

// Deployments with their revision's digest.
std::string deployment_select() {
  return std::string("SELECT ") + rows::kDeploymentColumns +
         " FROM deployments d "
         "LEFT JOIN revisions r ON r.service = d.service AND r.number = d.revision ";
}

}  // namespace

Status SqliteMetadataStore::create_service(const ServiceRecord& s) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO services(name, spec, paused, revision, created_at, updated_at) "
          "VALUES(?,?,?,?,?,?)");
  rows::bind_service(st, s);
  auto r = st.step();
  if (!r && r.error().code() == Errc::Conflict) {
    return Error(Errc::AlreadyExists, "service " + s.name + " already exists");
  }
  return r ? ok() : Status(r.error());
}

Result<ServiceRecord> SqliteMetadataStore::get_service(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          std::string("SELECT ") + rows::kServiceColumns + " FROM services " + "WHERE name = ?");
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "service " + name + " does not exist");
  }
  return rows::read_service(st);
}

Result<std::vector<ServiceRecord>> SqliteMetadataStore::list_services() {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          std::string("SELECT ") + rows::kServiceColumns + " FROM services " + "ORDER BY name");
  return st.read_all(rows::read_service);
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
  Stmt st(db_, std::string("SELECT ") + rows::kRevisionColumns + " FROM revisions " +
                   "WHERE service = ? AND number = ?");
  st.bind(1, service).bind(2, number);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound,
                 "service " + service + " has no revision " + std::to_string(number));
  }
  return rows::read_revision(st);
}

Result<int64_t> SqliteMetadataStore::add_deployment(const DeploymentRecord& d) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO deployments(service, revision, status, reason, trigger, created_at, "
          "started_at, finished_at) VALUES(?,?,?,?,?,?,?,?)");
  rows::bind_deployment(st, d);
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

Result<DeploymentRecord> SqliteMetadataStore::get_deployment(int64_t id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (deployment_select() + "WHERE d.id = ?").c_str());
  st.bind(1, id);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "deployment " + std::to_string(id) + " does not exist");
  }
  return rows::read_deployment(st);
}

Result<std::vector<DeploymentRecord>> SqliteMetadataStore::list_deployments(
    const std::string& service, int limit) {
  std::lock_guard lock(mu_);
  Stmt st(
      db_,
      (deployment_select() + "WHERE (? = '' OR d.service = ?) ORDER BY d.id DESC LIMIT ?").c_str());
  st.bind(1, service).bind(2, service).bind(3, int64_t{limit});
  return st.read_all(rows::read_deployment);
}

}  // namespace berth::store
