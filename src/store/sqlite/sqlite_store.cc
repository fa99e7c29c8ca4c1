// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: one connection in WAL mode behind a mutex. Callers are on the blocking
// pool, so the mutex never blocks an I/O thread.
#include <sqlite3.h>

#include <mutex>

#include "common/json.h"
#include "common/log.h"
#include "store/store.h"

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
)sql";

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
      err_ = sqlite3_errmsg(db);
    }
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& s) {
    sqlite3_bind_blob(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  /// SQLITE_ROW -> true, SQLITE_DONE -> false, else error.
  Result<bool> step() {
    if (!err_.empty()) {
      return Error(Errc::Internal, "sqlite prepare: " + err_);
    }
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    Errc code = rc == SQLITE_CONSTRAINT ? Errc::Conflict
                : (rc == SQLITE_FULL)   ? Errc::NoSpace
                                        : Errc::Internal;
    return Error(code, std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  Status run() {
    auto r = step();
    if (!r) {
      return r.error();
    }
    return ok();
  }
  std::string text(int col) {
    auto* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t i64(int col) { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::string err_;
};

std::string globs_to_json(const std::vector<std::string>& g) { return Json(g).dump(); }
std::vector<std::string> globs_from_json(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  std::vector<std::string> out;
  if (j.is_array()) {
    for (auto& e : j) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(sqlite3* db) : db_(db) {}
  ~SqliteMetadataStore() override { sqlite3_close(db_); }

  Status exec(const char* sql) {
    char* msg = nullptr;
    if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
      std::string m = msg ? msg : "unknown";
      sqlite3_free(msg);
      // A COMMIT in WAL mode is where the frames are written: a full disk shows up here.
      return Error(rc == SQLITE_FULL ? Errc::NoSpace : Errc::Internal, std::string("sqlite: ") + m);
    }
    return ok();
  }

  // A write transaction that rolls back unless committed.
  class Tx {
   public:
    explicit Tx(SqliteMetadataStore& s) : s_(s) { began_ = s_.exec("BEGIN IMMEDIATE").has_value(); }
    ~Tx() {
      if (began_ && !done_) {
        (void)s_.exec("ROLLBACK");
      }
    }
    Status commit() {
      if (!began_) {
        return Error(Errc::Unavailable, "sqlite: could not begin a transaction");
      }
      done_ = true;
      return s_.exec("COMMIT");
    }
    bool began() const { return began_; }

   private:
    SqliteMetadataStore& s_;
    bool began_ = false;
    bool done_ = false;
  };

  Result<Repository> read_repo(Stmt& st) {
    Repository r;
    r.id = st.i64(0);
    r.name = st.text(1);
    r.immutable_tags = st.i64(2) != 0;
    r.mutable_tag_globs = globs_from_json(st.text(3));
    r.created_at = st.i64(4);
    return r;
  }

  Result<Repository> create_repository(const Repository& repo) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "INSERT INTO repositories(name, immutable_tags, mutable_globs, created_at) "
            "VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING");
    st.bind(1, repo.name)
        .bind(2, int64_t{repo.immutable_tags})
        .bind(3, globs_to_json(repo.mutable_tag_globs))
        .bind(4, repo.created_at);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::AlreadyExists, "repository " + repo.name + " already exists");
    }
    Repository out = repo;
    out.id = sqlite3_last_insert_rowid(db_);
    return out;
  }

  Result<Repository> get_repository(const std::string& name) override {
    std::lock_guard lock(mu_);
    return get_repository_locked(name);
  }

  Result<Repository> get_repository_locked(const std::string& name) {
    Stmt st(db_,
            "SELECT id, name, immutable_tags, mutable_globs, created_at FROM repositories "
            "WHERE name = ?");
    st.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "repository " + name + " does not exist");
    }
    return read_repo(st);
  }

  Result<std::vector<Repository>> list_repositories(const std::string& last, int n) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT id, name, immutable_tags, mutable_globs, created_at FROM repositories "
            "WHERE name > ? ORDER BY name LIMIT ?");
    st.bind(1, last).bind(2, int64_t{n < 0 ? -1 : n});
    std::vector<Repository> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(*read_repo(st));
    }
    return out;
  }

  Status delete_repository(const std::string& name) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    BERTH_ASSIGN_OR_RETURN(auto repo, get_repository_locked(name));
    // Children first: tags and refs cascade from manifests; links and manifests from the repo.
    Stmt st(db_, "DELETE FROM repositories WHERE id = ?");
    st.bind(1, repo.id);
    BERTH_TRY(st.run());
    return tx.commit();
  }

  Status link_blob(int64_t repo_id, const std::string& digest, int64_t size, int64_t now) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt b(db_,
           "INSERT INTO blobs(digest, size, linked_at) VALUES(?,?,?) "
           "ON CONFLICT(digest) DO UPDATE SET linked_at = MAX(linked_at, excluded.linked_at)");
    b.bind(1, digest).bind(2, size).bind(3, now);
    BERTH_TRY(b.run());
    Stmt l(db_,
           "INSERT INTO repo_blobs(repo_id, digest, linked_at) VALUES(?,?,?) "
           "ON CONFLICT(repo_id, digest) DO UPDATE SET linked_at = MAX(linked_at, "
           "excluded.linked_at)");
    l.bind(1, repo_id).bind(2, digest).bind(3, now);
    BERTH_TRY(l.run());
    return tx.commit();
  }

  Result<int64_t> linked_blob_size(int64_t repo_id, const std::string& digest) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT b.size FROM repo_blobs l JOIN blobs b ON b.digest = l.digest "
            "WHERE l.repo_id = ? AND l.digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "blob " + digest + " unknown to repository");
    }
    return st.i64(0);
  }

  Result<int64_t> blob_size(const std::string& digest) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT size FROM blobs WHERE digest = ?");
    st.bind(1, digest);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "blob " + digest + " unknown");
    }
    return st.i64(0);
  }

  Status unlink_blob(int64_t repo_id, const std::string& digest) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "blob " + digest + " unknown to repository");
    }
    return ok();
  }

  Result<PutManifestResult> put_manifest(const Repository& repo, const ManifestRecord& m,
                                         const std::string& tag, bool tag_immutable) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    if (!tx.began()) {
      return Error(Errc::Unavailable, "sqlite: could not begin a transaction");
    }
    for (const auto& d : m.blob_refs) {
      Stmt st(db_, "SELECT 1 FROM repo_blobs WHERE repo_id = ? AND digest = ?");
      st.bind(1, repo.id).bind(2, d);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        return Error(Errc::FailedPrecondition, "blob " + d + " is not in repository " + repo.name);
      }
    }
    for (const auto& d : m.manifest_refs) {
      Stmt st(db_, "SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?");
      st.bind(1, repo.id).bind(2, d);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        return Error(Errc::FailedPrecondition,
                     "manifest " + d + " is not in repository " + repo.name);
      }
    }
    PutManifestResult res;
    if (!tag.empty()) {
      Stmt st(db_, "SELECT digest FROM tags WHERE repo_id = ? AND name = ?");
      st.bind(1, repo.id).bind(2, tag);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (row) {
        res.previous_tag_digest = st.text(0);
      }
      if (tag_immutable && row && res.previous_tag_digest != m.digest) {
        return Error(Errc::PermissionDenied, "tag " + tag + " is immutable in repository " +
                                                 repo.name +
                                                 " and already "
                                                 "points at " +
                                                 res.previous_tag_digest);
      }
    }
    {
      Stmt st(db_,
              "INSERT INTO manifests(repo_id, digest, media_type, content, size, artifact_type, "
              "subject, annotations, platform, total_size, pushed_at) "
              "VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(repo_id, digest) DO NOTHING");
      st.bind(1, repo.id)
          .bind(2, m.digest)
          .bind(3, m.media_type)
          .bind_blob(4, m.content)
          .bind(5, m.size)
          .bind(6, m.artifact_type)
          .bind(7, m.subject)
          .bind(8, m.annotations_json)
          .bind(9, m.platform)
          .bind(10, m.total_size)
          .bind(11, m.pushed_at);
      BERTH_TRY(st.run());
      res.created = sqlite3_changes(db_) > 0;
    }
    if (res.created) {
      auto add_refs = [&](const std::vector<std::string>& refs, int64_t kind) -> Status {
        for (const auto& d : refs) {
          Stmt st(db_,
                  "INSERT OR IGNORE INTO manifest_refs(repo_id, manifest_digest, child, kind) "
                  "VALUES(?,?,?,?)");
          st.bind(1, repo.id).bind(2, m.digest).bind(3, d).bind(4, kind);
          BERTH_TRY(st.run());
        }
        return ok();
      };
      BERTH_TRY(add_refs(m.blob_refs, 0));
      BERTH_TRY(add_refs(m.manifest_refs, 1));
    }
    if (!tag.empty() && res.previous_tag_digest != m.digest) {
      Stmt st(db_,
              "INSERT INTO tags(repo_id, name, digest, updated_at) VALUES(?,?,?,?) "
              "ON CONFLICT(repo_id, name) DO UPDATE SET digest = excluded.digest, "
              "updated_at = excluded.updated_at");
      st.bind(1, repo.id).bind(2, tag).bind(3, m.digest).bind(4, m.pushed_at);
      BERTH_TRY(st.run());
    }
    BERTH_TRY(tx.commit());
    return res;
  }

  Result<ManifestRecord> get_manifest(int64_t repo_id, const std::string& reference) override {
    std::lock_guard lock(mu_);
    bool by_digest = reference.find(':') != std::string::npos;
    const char* sql =
        by_digest
            ? "SELECT digest, media_type, content, size, artifact_type, subject, annotations, "
              "platform, total_size, pushed_at FROM manifests WHERE repo_id = ? AND digest = ?"
            : "SELECT m.digest, m.media_type, m.content, m.size, m.artifact_type, m.subject, "
              "m.annotations, m.platform, m.total_size, m.pushed_at FROM tags t JOIN manifests "
              "m ON m.repo_id = t.repo_id AND m.digest = t.digest "
              "WHERE t.repo_id = ? AND t.name = ?";
    Stmt st(db_, sql);
    st.bind(1, repo_id).bind(2, reference);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "manifest " + reference + " unknown");
    }
    ManifestRecord m;
    m.digest = st.text(0);
    m.media_type = st.text(1);
    m.content = st.text(2);
    m.size = st.i64(3);
    m.artifact_type = st.text(4);
    m.subject = st.text(5);
    m.annotations_json = st.text(6);
    m.platform = st.text(7);
    m.total_size = st.i64(8);
    m.pushed_at = st.i64(9);
    return m;
  }

  Status delete_manifest(int64_t repo_id, const std::string& digest) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt st(db_, "DELETE FROM manifests WHERE repo_id = ? AND digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "manifest " + digest + " unknown");
    }
    return tx.commit();
  }

  Status delete_tag(int64_t repo_id, const std::string& tag) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "DELETE FROM tags WHERE repo_id = ? AND name = ?");
    st.bind(1, repo_id).bind(2, tag);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "tag " + tag + " unknown");
    }
    return ok();
  }

  Result<std::vector<std::string>> list_tags(int64_t repo_id, const std::string& last,
                                             int n) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?");
    st.bind(1, repo_id).bind(2, last).bind(3, int64_t{n < 0 ? -1 : n});
    std::vector<std::string> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(st.text(0));
    }
    return out;
  }

  Result<std::vector<Referrer>> referrers(int64_t repo_id, const std::string& subject) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests "
            "WHERE repo_id = ? AND subject = ? ORDER BY pushed_at, digest");
    st.bind(1, repo_id).bind(2, subject);
    std::vector<Referrer> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(Referrer{st.text(0), st.text(1), st.i64(2), st.text(3), st.text(4)});
    }
    return out;
  }

  Result<std::vector<ImageSummary>> list_images(int64_t repo_id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT m.digest, m.media_type, m.artifact_type, m.total_size, m.platform, "
            "m.pushed_at, (SELECT group_concat(name, ',') FROM (SELECT name FROM tags t "
            "WHERE t.repo_id = m.repo_id AND t.digest = m.digest ORDER BY name)) "
            "FROM manifests m WHERE m.repo_id = ? ORDER BY m.pushed_at DESC, m.digest");
    st.bind(1, repo_id);
    std::vector<ImageSummary> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      ImageSummary s;
      s.digest = st.text(0);
      s.media_type = st.text(1);
      s.artifact_type = st.text(2);
      s.size = st.i64(3);
      s.platform = st.text(4);
      s.pushed_at = st.i64(5);
      std::string tags = st.text(6);
      size_t start = 0;
      while (!tags.empty() && start <= tags.size()) {
        size_t comma = tags.find(',', start);
        s.tags.push_back(tags.substr(start, comma - start));
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<std::vector<std::string>> unreferenced_blobs(int64_t linked_before) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT digest FROM blobs b WHERE b.linked_at < ? AND NOT EXISTS (SELECT 1 FROM "
            "manifest_refs r WHERE r.child = b.digest AND r.kind = 0)");
    st.bind(1, linked_before);
    std::vector<std::string> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(st.text(0));
    }
    return out;
  }

  Result<bool> forget_blob_if_unreferenced(const std::string& digest,
                                           int64_t linked_before) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt chk(db_,
             "SELECT 1 FROM blobs b WHERE b.digest = ? AND b.linked_at < ? AND NOT EXISTS "
             "(SELECT 1 FROM manifest_refs r WHERE r.child = b.digest AND r.kind = 0)");
    chk.bind(1, digest).bind(2, linked_before);
    BERTH_ASSIGN_OR_RETURN(bool row, chk.step());
    if (!row) {
      return false;
    }
    Stmt l(db_, "DELETE FROM repo_blobs WHERE digest = ?");
    l.bind(1, digest);
    BERTH_TRY(l.run());
    Stmt b(db_, "DELETE FROM blobs WHERE digest = ?");
    b.bind(1, digest);
    BERTH_TRY(b.run());
    BERTH_TRY(tx.commit());
    return true;
  }

  Result<std::vector<std::pair<std::string, int64_t>>> all_blobs() override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT digest, size FROM blobs ORDER BY digest");
    std::vector<std::pair<std::string, int64_t>> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.emplace_back(st.text(0), st.i64(1));
    }
    return out;
  }

  Result<std::vector<StoredManifest>> all_manifests() override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT r.name, m.digest, m.content FROM manifests m JOIN repositories r "
            "ON r.id = m.repo_id ORDER BY r.name, m.digest");
    std::vector<StoredManifest> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(StoredManifest{st.text(0), st.text(1), st.text(2)});
    }
    return out;
  }

  // ---- IAM --------------------------------------------------------------------------------

  Result<bool> principal_exists(const std::string& kind, const std::string& name) {
    Stmt st(db_, "SELECT 1 FROM principals WHERE kind = ? AND name = ?");
    st.bind(1, kind).bind(2, name);
    return st.step();
  }

  Status create_principal(const Principal& p) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "INSERT INTO principals(kind, name, created_at) VALUES(?,?,?) "
            "ON CONFLICT(kind, name) DO NOTHING");
    st.bind(1, p.kind).bind(2, p.name).bind(3, p.created_at);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::AlreadyExists, p.kind + " " + p.name + " already exists");
    }
    return ok();
  }

  Result<std::vector<Principal>> list_principals(const std::string& kind) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT kind, name, created_at FROM principals WHERE kind = ? ORDER BY name");
    st.bind(1, kind);
    std::vector<Principal> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(Principal{st.text(0), st.text(1), st.i64(2)});
    }
    return out;
  }

  Status delete_principal(const std::string& kind, const std::string& name) override {
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

  Status create_key(const AccessKey& key) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists("user", key.user));
    if (!exists) {
      return Error(Errc::NotFound, "user " + key.user + " does not exist");
    }
    Stmt st(db_,
            "INSERT INTO access_keys(id, user_name, secret_hash, active, created_at) "
            "VALUES(?,?,?,?,?)");
    st.bind(1, key.id)
        .bind(2, key.user)
        .bind(3, key.secret_hash)
        .bind(4, int64_t{key.active})
        .bind(5, key.created_at);
    BERTH_TRY(st.run());
    return tx.commit();
  }

  AccessKey read_key(Stmt& st) {
    return AccessKey{st.text(0), st.text(1), st.text(2), st.i64(3) != 0, st.i64(4)};
  }

  Result<AccessKey> get_key(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT id, user_name, secret_hash, active, created_at FROM access_keys WHERE id = ?");
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "access key " + id + " does not exist");
    }
    return read_key(st);
  }

  Result<std::vector<AccessKey>> list_keys(const std::string& user) override {
    std::lock_guard lock(mu_);
    BERTH_ASSIGN_OR_RETURN(bool exists, principal_exists("user", user));
    if (!exists) {
      return Error(Errc::NotFound, "user " + user + " does not exist");
    }
    Stmt st(db_,
            "SELECT id, user_name, secret_hash, active, created_at FROM access_keys "
            "WHERE user_name = ? ORDER BY created_at, id");
    st.bind(1, user);
    std::vector<AccessKey> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(read_key(st));
    }
    return out;
  }

  Status set_key_active(const std::string& id, bool active) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "UPDATE access_keys SET active = ? WHERE id = ?");
    st.bind(1, int64_t{active}).bind(2, id);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "access key " + id + " does not exist");
    }
    return ok();
  }

  Status delete_key(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "DELETE FROM access_keys WHERE id = ?");
    st.bind(1, id);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "access key " + id + " does not exist");
    }
    return ok();
  }

  Status put_policy(const AttachedPolicy& p) override {
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
    st.bind(1, p.kind)
        .bind(2, p.principal)
        .bind(3, p.name)
        .bind(4, p.document)
        .bind(5, p.updated_at);
    BERTH_TRY(st.run());
    return tx.commit();
  }

  Result<std::vector<AttachedPolicy>> list_policies(const std::string& kind,
                                                    const std::string& principal) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT kind, principal, name, document, updated_at FROM policies "
            "WHERE (? = '' OR kind = ?) AND (? = '' OR principal = ?) "
            "ORDER BY kind, principal, name");
    st.bind(1, kind).bind(2, kind).bind(3, principal).bind(4, principal);
    std::vector<AttachedPolicy> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(AttachedPolicy{st.text(0), st.text(1), st.text(2), st.text(3), st.i64(4)});
    }
    return out;
  }

  Status delete_policy(const std::string& kind, const std::string& principal,
                       const std::string& name) override {
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

  Status set_repository_policy(const std::string& repo, const std::string& document) override {
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

  Result<std::string> get_repository_policy(const std::string& repo) override {
    std::lock_guard lock(mu_);
    BERTH_ASSIGN_OR_RETURN(auto r, get_repository_locked(repo));
    Stmt st(db_, "SELECT document FROM repository_policies WHERE repo_id = ?");
    st.bind(1, r.id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    return row ? st.text(0) : std::string();
  }

  // ---- Services ----

  Status create_service(const ServiceRecord& s) override {
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

  static ServiceRecord read_service(Stmt& st) {
    return ServiceRecord{st.text(0), st.text(1), st.i64(2) != 0, st.i64(3), st.i64(4), st.i64(5)};
  }

  Result<ServiceRecord> get_service(const std::string& name) override {
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

  Result<std::vector<ServiceRecord>> list_services() override {
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

  Status update_service(const ServiceRecord& s) override {
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

  Status delete_service(const std::string& name) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "DELETE FROM services WHERE name = ?");
    st.bind(1, name);
    BERTH_TRY(st.run());
    if (sqlite3_changes(db_) == 0) {
      return Error(Errc::NotFound, "service " + name + " does not exist");
    }
    return ok();
  }

  Result<int64_t> add_revision(const RevisionRecord& r) override {
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

  Result<RevisionRecord> get_revision(const std::string& service, int64_t number) override {
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

  Result<int64_t> add_deployment(const DeploymentRecord& d) override {
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

  Status update_deployment(const DeploymentRecord& d) override {
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

  static constexpr const char* kDeploymentColumns =
      "SELECT d.id, d.service, d.revision, d.status, d.reason, d.trigger, d.created_at, "
      "d.started_at, d.finished_at, COALESCE(r.digest, '') FROM deployments d "
      "LEFT JOIN revisions r ON r.service = d.service AND r.number = d.revision ";

  static DeploymentRecord read_deployment(Stmt& st) {
    return DeploymentRecord{st.i64(0),  st.text(1), st.i64(2), st.text(3), st.text(4),
                            st.text(5), st.i64(6),  st.i64(7), st.i64(8),  st.text(9)};
  }

  Result<DeploymentRecord> get_deployment(int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, (std::string(kDeploymentColumns) + "WHERE d.id = ?").c_str());
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "deployment " + std::to_string(id) + " does not exist");
    }
    return read_deployment(st);
  }

  Result<std::vector<DeploymentRecord>> list_deployments(const std::string& service,
                                                         int limit) override {
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

  // ---- Build projects and builds ----

  Status create_build_project(const BuildProjectRecord& p) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "INSERT INTO build_projects(name, spec, webhook_secret, created_at, updated_at) "
            "VALUES(?,?,?,?,?)");
    st.bind(1, p.name).bind(2, p.spec).bind(3, p.webhook_secret).bind(4, p.created_at);
    st.bind(5, p.updated_at);
    auto r = st.step();
    if (!r && r.error().code() == Errc::Conflict) {
      return Error(Errc::AlreadyExists, "build project " + p.name + " already exists");
    }
    return r ? ok() : Status(r.error());
  }

  static BuildProjectRecord read_build_project(Stmt& st) {
    return BuildProjectRecord{st.text(0), st.text(1), st.text(2), st.i64(3), st.i64(4)};
  }

  Result<BuildProjectRecord> get_build_project(const std::string& name) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT name, spec, webhook_secret, created_at, updated_at FROM build_projects "
            "WHERE name = ?");
    st.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "build project " + name + " does not exist");
    }
    return read_build_project(st);
  }

  Result<std::vector<BuildProjectRecord>> list_build_projects() override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT name, spec, webhook_secret, created_at, updated_at FROM build_projects "
            "ORDER BY name");
    std::vector<BuildProjectRecord> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(read_build_project(st));
    }
    return out;
  }

  Status update_build_project(const BuildProjectRecord& p) override {
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

  Status delete_build_project(const std::string& name) override {
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

  Result<int64_t> add_build(const BuildRecord& b) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "INSERT INTO builds(project, status, phase, reason, commit_id, branch, trigger, "
            "source, image, tags, digest, phase_ms, steps, created_at, started_at, "
            "finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    st.bind(1, b.project)
        .bind(2, b.status)
        .bind(3, b.phase)
        .bind(4, b.reason)
        .bind(5, b.commit_id)
        .bind(6, b.branch)
        .bind(7, b.trigger)
        .bind(8, b.source)
        .bind(9, b.image)
        .bind(10, globs_to_json(b.tags))
        .bind(11, b.digest)
        .bind(12, b.phase_ms)
        .bind(13, b.steps)
        .bind(14, b.created_at)
        .bind(15, b.started_at)
        .bind(16, b.finished_at);
    auto s = st.step();
    if (!s) {
      if (s.error().code() == Errc::Conflict) {
        return Error(Errc::NotFound, "build project " + b.project + " does not exist");
      }
      return s.error();
    }
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  Status update_build(const BuildRecord& b) override {
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

  static constexpr const char* kBuildColumns =
      "SELECT id, project, status, phase, reason, commit_id, branch, trigger, source, image, "
      "tags, digest, phase_ms, steps, created_at, started_at, finished_at FROM builds ";

  static BuildRecord read_build(Stmt& st) {
    BuildRecord b;
    b.id = st.i64(0);
    b.project = st.text(1);
    b.status = st.text(2);
    b.phase = st.text(3);
    b.reason = st.text(4);
    b.commit_id = st.text(5);
    b.branch = st.text(6);
    b.trigger = st.text(7);
    b.source = st.text(8);
    b.image = st.text(9);
    b.tags = globs_from_json(st.text(10));
    b.digest = st.text(11);
    b.phase_ms = st.text(12);
    b.steps = st.text(13);
    b.created_at = st.i64(14);
    b.started_at = st.i64(15);
    b.finished_at = st.i64(16);
    return b;
  }

  Result<std::vector<BuildRecord>> read_builds(Stmt& st) {
    std::vector<BuildRecord> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.push_back(read_build(st));
    }
    return out;
  }

  Result<BuildRecord> get_build(int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, (std::string(kBuildColumns) + "WHERE id = ?").c_str());
    st.bind(1, id);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "build " + std::to_string(id) + " does not exist");
    }
    return read_build(st);
  }

  Result<std::vector<BuildRecord>> list_builds(const std::string& project, int limit) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            (std::string(kBuildColumns) + "WHERE (? = '' OR project = ?) ORDER BY id DESC LIMIT ?")
                .c_str());
    st.bind(1, project).bind(2, project).bind(3, int64_t{limit});
    return read_builds(st);
  }

  Result<std::vector<BuildRecord>> list_builds_by_status(const std::string& status) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, (std::string(kBuildColumns) + "WHERE status = ? ORDER BY id").c_str());
    st.bind(1, status);
    return read_builds(st);
  }

  Status append_audit(const std::vector<AuditEvent>& events) override {
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

  Result<std::vector<AuditEvent>> list_audit(int64_t since, const std::string& principal,
                                             int limit) override {
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

 private:
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace

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
  BERTH_TRY(store->exec(kSchema));
  return MetadataStorePtr(std::move(store));
}

}  // namespace berth::store
