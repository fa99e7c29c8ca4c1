// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: build projects and builds.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

namespace {

std::string build_select() {
  return std::string("SELECT ") + rows::kBuildColumns + " FROM builds ";
}

}  // namespace

Status SqliteMetadataStore::create_build_project(const BuildProjectRecord& p) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO build_projects(name, spec, webhook_secret, created_at, updated_at) "
          "VALUES(?,?,?,?,?)");
  rows::bind_build_project(st, p);
  auto r = st.step();
  if (!r && r.error().code() == Errc::Conflict) {
    return Error(Errc::AlreadyExists, "build project " + p.name + " already exists");
  }
  return r ? ok() : Status(r.error());
}

Result<BuildProjectRecord> SqliteMetadataStore::get_build_project(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kBuildProjectColumns + " FROM build_projects " +
                   "WHERE name = ?");
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "build project " + name + " does not exist");
  }
  return rows::read_build_project(st);
}

Result<std::vector<BuildProjectRecord>> SqliteMetadataStore::list_build_projects() {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kBuildProjectColumns + " FROM build_projects " +
                   "ORDER BY name");
  return st.read_all(rows::read_build_project);
}

Status SqliteMetadataStore::update_build_project(const BuildProjectRecord& p) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "UPDATE build_projects SET spec = ?, webhook_secret = ?, updated_at = ? "
          "WHERE name = ?");
  st.bind(1, p.spec).bind(2, p.webhook_secret).bind(3, p.updated_at).bind(4, p.name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "build project " + p.name + " does not exist");
  }
  return ok();
}

Status SqliteMetadataStore::delete_build_project(const std::string& name) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  Stmt builds(db_, "DELETE FROM builds WHERE project = ?");
  builds.bind(1, name);
  BERTH_TRY(builds.run());
  Stmt st(db_, "DELETE FROM build_projects WHERE name = ?");
  st.bind(1, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "build project " + name + " does not exist");
  }
  return tx.commit();
}

Result<int64_t> SqliteMetadataStore::add_build(const BuildRecord& b) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO builds(project, status, phase, reason, commit_id, branch, trigger, "
          "source, image, tags, digest, phase_ms, steps, created_at, started_at, "
          "finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  rows::bind_build(st, b);
  auto s = st.step();
  if (!s) {
    if (s.error().code() == Errc::Conflict) {
      return Error(Errc::NotFound, "build project " + b.project + " does not exist");
    }
    return s.error();
  }
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status SqliteMetadataStore::update_build(const BuildRecord& b) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
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
      .bind(8, globs_to_json(b.tags))
      .bind(9, b.digest)
      .bind(10, b.phase_ms)
      .bind(11, b.steps)
      .bind(12, b.started_at)
      .bind(13, b.finished_at)
      .bind(14, b.id);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "build " + std::to_string(b.id) + " does not exist");
  }
  return ok();
}

Result<BuildRecord> SqliteMetadataStore::get_build(int64_t id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (build_select() + "WHERE id = ?").c_str());
  st.bind(1, id);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "build " + std::to_string(id) + " does not exist");
  }
  return rows::read_build(st);
}

Result<std::vector<BuildRecord>> SqliteMetadataStore::list_builds(const std::string& project,
                                                                  int limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (build_select() + "WHERE (? = '' OR project = ?) ORDER BY id DESC LIMIT ?").c_str());
  st.bind(1, project).bind(2, project).bind(3, int64_t{limit});
  return st.read_all(rows::read_build);
}

Result<std::vector<BuildRecord>> SqliteMetadataStore::list_builds_by_status(
    const std::string& status) {
  std::lock_guard lock(mu_);
  Stmt st(db_, (build_select() + "WHERE status = ? ORDER BY id").c_str());
  st.bind(1, status);
  return st.read_all(rows::read_build);
}

}  // namespace berth::store
