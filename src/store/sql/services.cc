// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: services, their revisions, and deployments.
#include "store/sql/sql_store.h"

namespace berth::store::sql {

namespace {

// Deployments with their revision's digest.
std::string deployment_select() {
  return std::string("SELECT ") + rows::kDeploymentColumns +
         " FROM deployments d "
         "LEFT JOIN revisions r ON r.service = d.service AND r.number = d.revision ";
}

}  // namespace

Status SqlMetadataStore::create_service(const ServiceRecord& s) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "INSERT INTO services(name, spec, paused, revision, created_at, updated_at) "
            "VALUES(?,?,?,?,?,?)");
    rows::bind_service(st, s);
    auto r = st.step();
    if (!r && r.error().code() == Errc::Conflict) {
      return Error(Errc::AlreadyExists, "service " + s.name + " already exists");
    }
    return r ? ok() : Status(r.error());
  });
}

Result<ServiceRecord> SqlMetadataStore::get_service(const std::string& name) {
  return with_conn([&](Conn& c) -> Result<ServiceRecord> {
    Stmt st(c,
            std::string("SELECT ") + rows::kServiceColumns + " FROM services " + "WHERE name = ?");
    st.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "service " + name + " does not exist");
    }
    return rows::read_service(st);
  });
}

Result<std::vector<ServiceRecord>> SqlMetadataStore::list_services() {
  return with_conn([&](Conn& c) -> Result<std::vector<ServiceRecord>> {
    Stmt st(c,
            std::string("SELECT ") + rows::kServiceColumns + " FROM services " + "ORDER BY name");
    return st.read_all(rows::read_service);
  });
}

Status SqlMetadataStore::update_service(const ServiceRecord& s) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "UPDATE services SET spec = ?, paused = ?, revision = ?, updated_at = ? "
            "WHERE name = ?");
    st.bind(1, s.spec).bind(2, int64_t{s.paused}).bind(3, s.revision).bind(4, s.updated_at);
    st.bind(5, s.name);
    return st.run_or(Error(Errc::NotFound, "service " + s.name + " does not exist"));
  });
}

Status SqlMetadataStore::delete_service(const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM services WHERE name = ?");
    st.bind(1, name);
    return st.run_or(Error(Errc::NotFound, "service " + name + " does not exist"));
  });
}

Result<int64_t> SqlMetadataStore::add_revision(const RevisionRecord& r) {
  return with_conn([&](Conn& c) -> Result<int64_t> {
    Tx tx(c);
    BERTH_TRY(tx.began());
    // The service's row lock keeps two nodes from numbering the same revision.
    Stmt svc(c, std::string("SELECT 1 FROM services WHERE name = ?") + c.dialect().for_update);
    svc.bind(1, r.service);
    BERTH_ASSIGN_OR_RETURN(bool exists, svc.step());
    if (!exists) {
      return Error(Errc::NotFound, "service " + r.service + " does not exist");
    }
    Stmt max(c, "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE service = ?");
    max.bind(1, r.service);
    BERTH_ASSIGN_OR_RETURN(bool row, max.step());
    int64_t number = (row ? max.i64(0) : 0) + 1;
    Stmt st(c,
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
  });
}

Result<RevisionRecord> SqlMetadataStore::get_revision(const std::string& service, int64_t number) {
  return with_conn([&](Conn& c) -> Result<RevisionRecord> {
    Stmt st(c, std::string("SELECT ") + rows::kRevisionColumns + " FROM revisions " +
                   "WHERE service = ? AND number = ?");
    st.bind(1, service).bind(2, number);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound,
                   "service " + service + " has no revision " + std::to_string(number));
    }
    return rows::read_revision(st);
  });
}

Result<int64_t> SqlMetadataStore::add_deployment(const DeploymentRecord& d) {
  return with_conn([&](Conn& c) -> Result<int64_t> {
    Stmt st(c,
            "INSERT INTO deployments(service, revision, status, reason, trigger, created_at, "
            "started_at, finished_at) VALUES(?,?,?,?,?,?,?,?) RETURNING id");
    rows::bind_deployment(st, d);
    auto s = st.step();
    if (!s) {
      if (s.error().code() == Errc::Conflict) {
        return Error(Errc::NotFound, "service " + d.service + " does not exist");
      }
      return s.error();
    }
    int64_t id = st.i64(0);
    BERTH_TRY(st.finish());
    return id;
  });
}

Status SqlMetadataStore::update_deployment(const DeploymentRecord& d) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "UPDATE deployments SET status = ?, reason = ?, started_at = ?, finished_at = ? "
            "WHERE id = ?");
    st.bind(1, d.status).bind(2, d.reason).bind(3, d.started_at).bind(4, d.finished_at);
    st.bind(5, d.id);
    return st.run_or(
        Error(Errc::NotFound, "deployment " + std::to_string(d.id) + " does not exist"));
  });
}

Result<DeploymentRecord> SqlMetadataStore::get_deployment(int64_t id) {
  return with_conn([&](Conn& c) -> Result<DeploymentRecord> {
    Stmt st(c, (deployment_select() + "WHERE d.id = ?").c_str());
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "deployment " + std::to_string(id) + " does not exist");
    }
    return rows::read_deployment(st);
  });
}

Result<std::vector<DeploymentRecord>> SqlMetadataStore::list_deployments(const std::string& service,
                                                                         int limit) {
  return with_conn([&](Conn& c) -> Result<std::vector<DeploymentRecord>> {
    Stmt st(c, (deployment_select() + "WHERE (? = '' OR d.service = ?) ORDER BY d.id DESC LIMIT ?")
                   .c_str());
    st.bind(1, service).bind(2, service).bind(3, limit_rows(limit));
    return st.read_all(rows::read_deployment);
  });
}

}  // namespace berth::store::sql
