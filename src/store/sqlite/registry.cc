// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: repositories, blobs and their links, manifests, tags, referrers, and
// what garbage collection and fsck read.
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Result<Repository> SqliteMetadataStore::create_repository(const Repository& repo) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO repositories(name, immutable_tags, mutable_globs, created_at) "
          "VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING");
  rows::bind_repository(st, repo);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::AlreadyExists, "repository " + repo.name + " already exists");
  }
  Repository out = repo;
  out.id = sqlite3_last_insert_rowid(db_);
  return out;
}

Result<Repository> SqliteMetadataStore::get_repository(const std::string& name) {
  std::lock_guard lock(mu_);
  return get_repository_locked(name);
}

Result<Repository> SqliteMetadataStore::get_repository_locked(const std::string& name) {
  Stmt st(db_, std::string("SELECT ") + rows::kRepositoryColumns + " FROM repositories " +
                   "WHERE name = ?");
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "repository " + name + " does not exist");
  }
  return rows::read_repository(st);
}

Result<std::vector<Repository>> SqliteMetadataStore::list_repositories(const std::string& last,
                                                                       int n) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kRepositoryColumns + " FROM repositories " +
                   "WHERE name > ? ORDER BY name LIMIT ?");
  st.bind(1, last).bind(2, int64_t{n < 0 ? -1 : n});
  return st.read_all(rows::read_repository);
}

Status SqliteMetadataStore::delete_repository(const std::string& name) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  BERTH_ASSIGN_OR_RETURN(auto repo, get_repository_locked(name));
  // Children first: tags and refs cascade from manifests; links and manifests from the repo.
  Stmt st(db_, "DELETE FROM repositories WHERE id = ?");
  st.bind(1, repo.id);
  BERTH_TRY(st.run());
  return tx.commit();
}

Status SqliteMetadataStore::link_blob(int64_t repo_id, const std::string& digest, int64_t size,
                                      int64_t now) {
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

Result<int64_t> SqliteMetadataStore::linked_blob_size(int64_t repo_id, const std::string& digest) {
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

Result<int64_t> SqliteMetadataStore::blob_size(const std::string& digest) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT size FROM blobs WHERE digest = ?");
  st.bind(1, digest);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "blob " + digest + " unknown");
  }
  return st.i64(0);
}

Status SqliteMetadataStore::unlink_blob(int64_t repo_id, const std::string& digest) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?");
  st.bind(1, repo_id).bind(2, digest);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "blob " + digest + " unknown to repository");
  }
  return ok();
}

Result<PutManifestResult> SqliteMetadataStore::put_manifest(const Repository& repo,
                                                            const ManifestRecord& m,
                                                            const std::string& tag,
                                                            bool tag_immutable) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  if (!tx.began()) {
    return Error(Errc::Unavailable, "sqlite: could not begin a transaction");
  }
  for (const auto& d : m.partial ? std::vector<std::string>{} : m.blob_refs) {
    Stmt st(db_, "SELECT 1 FROM repo_blobs WHERE repo_id = ? AND digest = ?");
    st.bind(1, repo.id).bind(2, d);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::FailedPrecondition, "blob " + d + " is not in repository " + repo.name);
    }
  }
  for (const auto& d : m.partial ? std::vector<std::string>{} : m.manifest_refs) {
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

Result<ManifestRecord> SqliteMetadataStore::get_manifest(int64_t repo_id,
                                                         const std::string& reference) {
  std::lock_guard lock(mu_);
  bool by_digest = reference.find(':') != std::string::npos;
  std::string sql =
      by_digest ? std::string("SELECT ") + rows::kManifestColumns +
                      " FROM manifests WHERE repo_id = ? AND digest = ?"
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
  return rows::read_manifest(st);
}

Status SqliteMetadataStore::delete_manifest(int64_t repo_id, const std::string& digest) {
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

Status SqliteMetadataStore::delete_tag(int64_t repo_id, const std::string& tag) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM tags WHERE repo_id = ? AND name = ?");
  st.bind(1, repo_id).bind(2, tag);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, "tag " + tag + " unknown");
  }
  return ok();
}

Result<std::vector<std::string>> SqliteMetadataStore::list_tags(int64_t repo_id,
                                                                const std::string& last, int n) {
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

Result<std::vector<Referrer>> SqliteMetadataStore::referrers(int64_t repo_id,
                                                             const std::string& subject) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kReferrerColumns + " FROM manifests " +
                   "WHERE repo_id = ? AND subject = ? ORDER BY pushed_at, digest");
  st.bind(1, repo_id).bind(2, subject);
  return st.read_all(rows::read_referrer);
}

Result<std::vector<ImageSummary>> SqliteMetadataStore::list_images(int64_t repo_id) {
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

Result<std::vector<std::string>> SqliteMetadataStore::unreferenced_blobs(int64_t linked_before) {
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

Result<bool> SqliteMetadataStore::forget_blob_if_unreferenced(const std::string& digest,
                                                              int64_t linked_before) {
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

Result<std::vector<std::pair<std::string, int64_t>>> SqliteMetadataStore::all_blobs() {
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

Result<std::vector<MetadataStore::StoredManifest>> SqliteMetadataStore::all_manifests() {
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

}  // namespace berth::store
