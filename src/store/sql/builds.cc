// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: build projects and builds.
#include "store/sql/sql_store.h"

namespace berth::store::sql {

namespace {

std::string build_select() {
  return std::string("SELECT ") + rows::kBuildColumns + " FROM builds ";
}

}  // namespace

Status SqlMetadataStore::create_build_project(const BuildProjectRecord& p) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "INSERT INTO build_projects(name, spec, webhook_secret, created_at, updated_at) "
            "VALUES(?,?,?,?,?)");
    rows::bind_build_project(st, p);
    auto r = st.step();
    if (!r && r.error().code() == Errc::Conflict) {
      return Error(Errc::AlreadyExists, "build project " + p.name + " already exists");
    }
    return r ? ok() : Status(r.error());
  });
}

Result<BuildProjectRecord> SqlMetadataStore::get_build_project(const std::string& name) {
  return with_conn([&](Conn& c) -> Result<BuildProjectRecord> {
    Stmt st(c, std::string("SELECT ") + rows::kBuildProjectColumns + " FROM build_projects " +
                   "WHERE name = ?");
    st.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "build project " + name + " does not exist");
    }
    return rows::read_build_project(st);
  });
}

Result<std::vector<BuildProjectRecord>> SqlMetadataStore::list_build_projects() {
  return with_conn([&](Conn& c) -> Result<std::vector<BuildProjectRecord>> {
    Stmt st(c, std::string("SELECT ") + rows::kBuildProjectColumns + " FROM build_projects " +
                   "ORDER BY name");
    return st.read_all(rows::read_build_project);
  });
}

Status SqlMetadataStore::update_build_project(const BuildProjectRecord& p) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "UPDATE build_projects SET spec = ?, webhook_secret = ?, updated_at = ? "
            "WHERE name = ?");
    st.bind(1, p.spec).bind(2, p.webhook_secret).bind(3, p.updated_at).bind(4, p.name);
    return st.run_or(Error(Errc::NotFound, "build project " + p.name + " does not exist"));
  });
}

Status SqlMetadataStore::delete_build_project(const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    Stmt builds(c, "DELETE FROM builds WHERE project = ?");
    builds.bind(1, name);
    BERTH_TRY(builds.run());
    Stmt st(c, "DELETE FROM build_projects WHERE name = ?");
    st.bind(1, name);
    BERTH_TRY(st.run_or(Error(Errc::NotFound, "build project " + name + " does not exist")));
    return tx.commit();
  });
}

Result<int64_t> SqlMetadataStore::add_build(const BuildRecord& b) {
  return with_conn([&](Conn& c) -> Result<int64_t> {
    Stmt st(c,
            "INSERT INTO builds(project, status, phase, reason, commit_id, branch, trigger, "
            "source, image, tags, digest, phase_ms, steps, created_at, started_at, "
            "finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    rows::bind_build(st, b);
    auto s = st.step();
    if (!s) {
      if (s.error().code() == Errc::Conflict) {
        return Error(Errc::NotFound, "build project " + b.project + " does not exist");
      }
      return s.error();
    }
    int64_t id = st.i64(0);
    BERTH_TRY(st.finish());
    return id;
  });
}

Status SqlMetadataStore::update_build(const BuildRecord& b) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c,
            "UPDATE builds SET status = ?, phase = ?, reason = ?, commit_id = ?, branch = ?, "
            "source = ?, image = ?, tags = ?, digest = ?, phase_ms = ?, steps = ?, "
            "started_at = ?, finished_at = ? WHERE id = ?");
    st.bind(1, b.status)
        .bind(2, b.phase)
        .bind(3, b.reason)
        .bind(4, b.commit_id)
        .bind(5, b.branch)
        .bind(6, b.source)
        .bind(7, b.image)
        .bind(8, rows::globs_to_json(b.tags))
        .bind(9, b.digest)
        .bind(10, b.phase_ms)
        .bind(11, b.steps)
        .bind(12, b.started_at)
        .bind(13, b.finished_at)
        .bind(14, b.id);
    return st.run_or(Error(Errc::NotFound, "build " + std::to_string(b.id) + " does not exist"));
  });
}

Result<BuildRecord> SqlMetadataStore::get_build(int64_t id) {
  return with_conn([&](Conn& c) -> Result<BuildRecord> {
    Stmt st(c, (build_select() + "WHERE id = ?").c_str());
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "build " + std::to_string(id) + " does not exist");
    }
    return rows::read_build(st);
  });
}

Result<std::vector<BuildRecord>> SqlMetadataStore::list_builds(const std::string& project,
                                                               int limit) {
  return with_conn([&](Conn& c) -> Result<std::vector<BuildRecord>> {
    Stmt st(c, (build_select() + "WHERE (? = '' OR project = ?) ORDER BY id DESC LIMIT ?").c_str());
    st.bind(1, project).bind(2, project).bind(3, limit_rows(limit));
    return st.read_all(rows::read_build);
  });
}

Result<std::vector<BuildRecord>> SqlMetadataStore::list_builds_by_status(
    const std::string& status) {
  return with_conn([&](Conn& c) -> Result<std::vector<BuildRecord>> {
    Stmt st(c, (build_select() + "WHERE status = ? ORDER BY id").c_str());
    st.bind(1, status);
    return st.read_all(rows::read_build);
  });
}

}  // namespace berth::store::sql
