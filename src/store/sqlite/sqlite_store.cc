// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: opening the database, its schema, and exec. The store's other methods
// are in registry.cc, iam.cc, services.cc, builds.cc, audit.cc and dns.cc; schema versions in
// migrations.cc.
#include "store/sqlite/sqlite_store.h"

#include "common/log.h"

namespace berth::store {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS repositories(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  immutable_tags INTEGER NOT NULL DEFAULT 0,
  mutable_globs TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs(
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  linked_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_blobs(
  repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest TEXT NOT NULL,
  linked_at INTEGER NOT NULL,
  PRIMARY KEY(repo_id, digest)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests(
  repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  content BLOB NOT NULL,
  size INTEGER NOT NULL,
  artifact_type TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  annotations TEXT NOT NULL DEFAULT '',
  platform TEXT NOT NULL DEFAULT '',
  total_size INTEGER NOT NULL DEFAULT 0,
  pushed_at INTEGER NOT NULL,
  PRIMARY KEY(repo_id, digest));
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(repo_id, subject);
CREATE TABLE IF NOT EXISTS manifest_refs(
  repo_id INTEGER NOT NULL,
  manifest_digest TEXT NOT NULL,
  child TEXT NOT NULL,
  kind INTEGER NOT NULL,  -- 0 blob, 1 manifest
  PRIMARY KEY(repo_id, manifest_digest, kind, child),
  FOREIGN KEY(repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs(child, kind);
CREATE TABLE IF NOT EXISTS tags(
  repo_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(repo_id, name),
  FOREIGN KEY(repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_digest ON tags(repo_id, digest);
CREATE TABLE IF NOT EXISTS principals(
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys(
  id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS access_keys_user ON access_keys(user_name);
CREATE TABLE IF NOT EXISTS policies(
  kind TEXT NOT NULL,
  principal TEXT NOT NULL,
  name TEXT NOT NULL,
  document TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(kind, principal, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  principal TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  allowed INTEGER NOT NULL,
  source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE TABLE IF NOT EXISTS repository_policies(
  repo_id INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
  document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services(
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  revision INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revisions(
  service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  digest TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(service, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deployments(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
  revision INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  trigger TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS deployments_service ON deployments(service, id);
CREATE TABLE IF NOT EXISTS build_projects(
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  webhook_secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS builds(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project TEXT NOT NULL REFERENCES build_projects(name) ON DELETE CASCADE,
  status TEXT NOT NULL,
  phase TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  commit_id TEXT NOT NULL DEFAULT '',
  branch TEXT NOT NULL DEFAULT '',
  trigger TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  image TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]',
  digest TEXT NOT NULL DEFAULT '',
  phase_ms TEXT NOT NULL DEFAULT '',
  steps TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS builds_project ON builds(project, id);
CREATE INDEX IF NOT EXISTS builds_status ON builds(status);
CREATE TABLE IF NOT EXISTS dns_zones(
  name TEXT PRIMARY KEY,
  serial INTEGER NOT NULL,
  document TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dns_record_sets(
  zone TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  set_identifier TEXT NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY(zone, name, type, set_identifier)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dns_objects(
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  document TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects(
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  document TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(kind, name)) WITHOUT ROWID;
)sql";

}  // namespace

Status SqliteMetadataStore::exec(const char* sql) {
  char* msg = nullptr;
  if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
    std::string m = msg ? msg : "unknown";
    sqlite3_free(msg);
    // A COMMIT in WAL mode is where the frames are written: a full disk shows up here.
    return Error(rc == SQLITE_FULL ? Errc::NoSpace : Errc::Internal, std::string("sqlite: ") + m);
  }
  return ok();
}

Result<MetadataStorePtr> open_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error(Errc::Unavailable, "open metadata store " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteMetadataStore>(db);
  // WAL + synchronous=NORMAL: a killed process loses nothing that was committed (the OS holds
  // the WAL); only a power loss may drop the last transactions, never corrupt the database.
  BERTH_TRY(
      store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                  "PRAGMA foreign_keys=ON;"));
  BERTH_TRY(store->migrate(path, kSchema));
  return MetadataStorePtr(std::move(store));
}

}  // namespace berth::store
