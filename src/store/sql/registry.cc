// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: repositories, blobs and their links, manifests, tags, referrers, and
// what garbage collection and fsck read.
#include <map>

#include "store/sql/sql_store.h"

namespace berth::store::sql {

Result<Repository> SqlMetadataStore::create_repository(const Repository& repo) {
  return with_conn([&](Conn& c) -> Result<Repository> {
    Stmt st(c,
            "INSERT INTO repositories(name, immutable_tags, mutable_globs, created_at) "
            "VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING RETURNING id");
    rows::bind_repository(st, repo);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::AlreadyExists, "repository " + repo.name + " already exists");
    }
    Repository out = repo;
    out.id = st.i64(0);
    BERTH_TRY(st.finish());
    return out;
  });
}

Result<Repository> SqlMetadataStore::get_repository(const std::string& name) {
  return with_conn([&](Conn& c) -> Result<Repository> { return get_repository_in(c, name, ""); });
}

Result<Repository> SqlMetadataStore::get_repository_in(Conn& c, const std::string& name,
                                                       const char* lock) {
  Stmt st(c, std::string("SELECT ") + rows::kRepositoryColumns + " FROM repositories " +
                 "WHERE name = ?" + lock);
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "repository " + name + " does not exist");
  }
  return rows::read_repository(st);
}

Result<std::vector<Repository>> SqlMetadataStore::list_repositories(const std::string& last,
                                                                    int n) {
  return with_conn([&](Conn& c) -> Result<std::vector<Repository>> {
    Stmt st(c, std::string("SELECT ") + rows::kRepositoryColumns + " FROM repositories " +
                   "WHERE name > ? ORDER BY name LIMIT ?");
    st.bind(1, last).bind(2, limit_rows(n));
    return st.read_all(rows::read_repository);
  });
}

Status SqlMetadataStore::delete_repository(const std::string& name) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    BERTH_ASSIGN_OR_RETURN(auto repo, get_repository_in(c, name, c.dialect().for_update));
    // Children first: tags and refs cascade from manifests; links and manifests from the repo.
    Stmt st(c, "DELETE FROM repositories WHERE id = ?");
    st.bind(1, repo.id);
    BERTH_TRY(st.run());
    return tx.commit();
  });
}

Status SqlMetadataStore::link_blob(int64_t repo_id, const std::string& digest, int64_t size,
                                   int64_t now) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    Stmt b(c,
           "INSERT INTO blobs(digest, size, linked_at) VALUES(?,?,?) "
           "ON CONFLICT(digest) DO UPDATE SET linked_at = CASE WHEN excluded.linked_at > "
           "blobs.linked_at THEN excluded.linked_at ELSE blobs.linked_at END");
    b.bind(1, digest).bind(2, size).bind(3, now);
    BERTH_TRY(b.run());
    Stmt l(c,
           "INSERT INTO repo_blobs(repo_id, digest, linked_at) VALUES(?,?,?) "
           "ON CONFLICT(repo_id, digest) DO UPDATE SET linked_at = CASE WHEN excluded.linked_at > "
           "repo_blobs.linked_at THEN excluded.linked_at ELSE repo_blobs.linked_at END");
    l.bind(1, repo_id).bind(2, digest).bind(3, now);
    BERTH_TRY(l.run());
    return tx.commit();
  });
}

Result<int64_t> SqlMetadataStore::linked_blob_size(int64_t repo_id, const std::string& digest) {
  return with_conn([&](Conn& c) -> Result<int64_t> {
    Stmt st(c,
            "SELECT b.size FROM repo_blobs l JOIN blobs b ON b.digest = l.digest "
            "WHERE l.repo_id = ? AND l.digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "blob " + digest + " unknown to repository");
    }
    return st.i64(0);
  });
}

Result<int64_t> SqlMetadataStore::blob_size(const std::string& digest) {
  return with_conn([&](Conn& c) -> Result<int64_t> {
    Stmt st(c, "SELECT size FROM blobs WHERE digest = ?");
    st.bind(1, digest);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "blob " + digest + " unknown");
    }
    return st.i64(0);
  });
}

Status SqlMetadataStore::unlink_blob(int64_t repo_id, const std::string& digest) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    return st.run_or(Error(Errc::NotFound, "blob " + digest + " unknown to repository"));
  });
}

Result<PutManifestResult> SqlMetadataStore::put_manifest(const Repository& repo,
                                                         const ManifestRecord& m,
                                                         const std::string& tag,
                                                         bool tag_immutable) {
  return with_conn([&](Conn& c) -> Result<PutManifestResult> {
    Tx tx(c);
    BERTH_TRY(tx.began());
    const Dialect& sql = c.dialect();
    // The repository's row lock serializes the manifest puts of one repository across nodes:
    // the tag read below is still the tag when it is moved (an immutable tag stays so).
    {
      Stmt st(c, std::string("SELECT 1 FROM repositories WHERE id = ?") + sql.for_update);
      st.bind(1, repo.id);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        return Error(Errc::NotFound, "repository " + repo.name + " does not exist");
      }
    }
    for (const auto& d : m.partial ? std::vector<std::string>{} : m.blob_refs) {
      // A share lock on the blob: gc (forget_blob_if_unreferenced) locks it for update before
      // it looks for references, so it either sees this manifest's or removes the blob first.
      Stmt st(c, std::string("SELECT 1 FROM repo_blobs l JOIN blobs b ON b.digest = l.digest "
                             "WHERE l.repo_id = ? AND l.digest = ?") +
                     sql.for_share);
      st.bind(1, repo.id).bind(2, d);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        return Error(Errc::FailedPrecondition, "blob " + d + " is not in repository " + repo.name);
      }
    }
    for (const auto& d : m.partial ? std::vector<std::string>{} : m.manifest_refs) {
      Stmt st(c, "SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?");
      st.bind(1, repo.id).bind(2, d);
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        return Error(Errc::FailedPrecondition,
                     "manifest " + d + " is not in repository " + repo.name);
      }
    }
    PutManifestResult res;
    if (!tag.empty()) {
      Stmt st(c, "SELECT digest FROM tags WHERE repo_id = ? AND name = ?");
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
      Stmt st(c,
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
      res.created = c.changes() > 0;
    }
    if (res.created) {
      auto add_refs = [&](const std::vector<std::string>& refs, int64_t kind) -> Status {
        for (const auto& d : refs) {
          Stmt st(c,
                  "INSERT INTO manifest_refs(repo_id, manifest_digest, child, kind) "
                  "VALUES(?,?,?,?) ON CONFLICT DO NOTHING");
          st.bind(1, repo.id).bind(2, m.digest).bind(3, d).bind(4, kind);
          BERTH_TRY(st.run());
        }
        return ok();
      };
      BERTH_TRY(add_refs(m.blob_refs, 0));
      BERTH_TRY(add_refs(m.manifest_refs, 1));
    }
    if (!tag.empty() && res.previous_tag_digest != m.digest) {
      Stmt st(c,
              "INSERT INTO tags(repo_id, name, digest, updated_at) VALUES(?,?,?,?) "
              "ON CONFLICT(repo_id, name) DO UPDATE SET digest = excluded.digest, "
              "updated_at = excluded.updated_at");
      st.bind(1, repo.id).bind(2, tag).bind(3, m.digest).bind(4, m.pushed_at);
      BERTH_TRY(st.run());
    }
    BERTH_TRY(tx.commit());
    return res;
  });
}

Result<ManifestRecord> SqlMetadataStore::get_manifest(int64_t repo_id,
                                                      const std::string& reference) {
  return with_conn([&](Conn& c) -> Result<ManifestRecord> {
    bool by_digest = reference.find(':') != std::string::npos;
    std::string sql =
        by_digest
            ? std::string("SELECT ") + rows::kManifestColumns +
                  " FROM manifests WHERE repo_id = ? AND digest = ?"
            : "SELECT m.digest, m.media_type, m.content, m.size, m.artifact_type, m.subject, "
              "m.annotations, m.platform, m.total_size, m.pushed_at FROM tags t JOIN manifests "
              "m ON m.repo_id = t.repo_id AND m.digest = t.digest "
              "WHERE t.repo_id = ? AND t.name = ?";
    Stmt st(c, sql);
    st.bind(1, repo_id).bind(2, reference);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "manifest " + reference + " unknown");
    }
    return rows::read_manifest(st);
  });
}

Status SqlMetadataStore::delete_manifest(int64_t repo_id, const std::string& digest) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    Stmt st(c, "DELETE FROM manifests WHERE repo_id = ? AND digest = ?");
    st.bind(1, repo_id).bind(2, digest);
    BERTH_TRY(st.run_or(Error(Errc::NotFound, "manifest " + digest + " unknown")));
    return tx.commit();
  });
}

Status SqlMetadataStore::delete_tag(int64_t repo_id, const std::string& tag) {
  return with_conn([&](Conn& c) -> Status {
    Stmt st(c, "DELETE FROM tags WHERE repo_id = ? AND name = ?");
    st.bind(1, repo_id).bind(2, tag);
    return st.run_or(Error(Errc::NotFound, "tag " + tag + " unknown"));
  });
}

Result<std::vector<std::string>> SqlMetadataStore::list_tags(int64_t repo_id,
                                                             const std::string& last, int n) {
  return with_conn([&](Conn& c) -> Result<std::vector<std::string>> {
    Stmt st(c, "SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?");
    st.bind(1, repo_id).bind(2, last).bind(3, limit_rows(n));
    return st.read_all(first_text);
  });
}

Result<std::vector<Referrer>> SqlMetadataStore::referrers(int64_t repo_id,
                                                          const std::string& subject) {
  return with_conn([&](Conn& c) -> Result<std::vector<Referrer>> {
    Stmt st(c, std::string("SELECT ") + rows::kReferrerColumns + " FROM manifests " +
                   "WHERE repo_id = ? AND subject = ? ORDER BY pushed_at, digest");
    st.bind(1, repo_id).bind(2, subject);
    return st.read_all(rows::read_referrer);
  });
}

Result<std::vector<ImageSummary>> SqlMetadataStore::list_images(int64_t repo_id) {
  return with_conn([&](Conn& c) -> Result<std::vector<ImageSummary>> {
    // Manifests, then their tags (sorted by digest, name), in one read transaction; joined
    // here rather than with SQLite's group_concat or PostgreSQL's string_agg.
    Tx tx(c, Tx::Kind::Read);
    BERTH_TRY(tx.began());
    Stmt st(c,
            "SELECT m.digest, m.media_type, m.artifact_type, m.total_size, m.platform, "
            "m.pushed_at FROM manifests m WHERE m.repo_id = ? ORDER BY m.pushed_at DESC, "
            "m.digest");
    st.bind(1, repo_id);
    std::vector<ImageSummary> out;
    std::map<std::string, size_t> by_digest;
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
      by_digest.emplace(s.digest, out.size());
      out.push_back(std::move(s));
    }
    Stmt tags(c, "SELECT digest, name FROM tags WHERE repo_id = ? ORDER BY digest, name");
    tags.bind(1, repo_id);
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, tags.step());
      if (!row) {
        break;
      }
      if (auto it = by_digest.find(tags.text(0)); it != by_digest.end()) {
        out[it->second].tags.push_back(tags.text(1));
      }
    }
    BERTH_TRY(tx.commit());
    return out;
  });
}

Result<std::vector<std::string>> SqlMetadataStore::unreferenced_blobs(int64_t linked_before) {
  return with_conn([&](Conn& c) -> Result<std::vector<std::string>> {
    Stmt st(c,
            "SELECT digest FROM blobs b WHERE b.linked_at < ? AND NOT EXISTS (SELECT 1 FROM "
            "manifest_refs r WHERE r.child = b.digest AND r.kind = 0)");
    st.bind(1, linked_before);
    return st.read_all(first_text);
  });
}

Result<bool> SqlMetadataStore::forget_blob_if_unreferenced(const std::string& digest,
                                                           int64_t linked_before) {
  return with_conn([&](Conn& c) -> Result<bool> {
    Tx tx(c);
    // Lock the blob first (put_manifest takes a share lock on the blobs it references), then
    // look for references: a manifest committed meanwhile is seen, one not yet committed waits.
    Stmt lock(c,
              std::string("SELECT linked_at FROM blobs WHERE digest = ?") + c.dialect().for_update);
    lock.bind(1, digest);
    BERTH_ASSIGN_OR_RETURN(bool found, lock.step());
    if (!found) {
      return false;
    }
    Stmt chk(c,
             "SELECT 1 FROM blobs b WHERE b.digest = ? AND b.linked_at < ? AND NOT EXISTS "
             "(SELECT 1 FROM manifest_refs r WHERE r.child = b.digest AND r.kind = 0)");
    chk.bind(1, digest).bind(2, linked_before);
    BERTH_ASSIGN_OR_RETURN(bool row, chk.step());
    if (!row) {
      return false;
    }
    Stmt l(c, "DELETE FROM repo_blobs WHERE digest = ?");
    l.bind(1, digest);
    BERTH_TRY(l.run());
    Stmt b(c, "DELETE FROM blobs WHERE digest = ?");
    b.bind(1, digest);
    BERTH_TRY(b.run());
    BERTH_TRY(tx.commit());
    return true;
  });
}

Result<std::vector<std::pair<std::string, int64_t>>> SqlMetadataStore::all_blobs() {
  return with_conn([&](Conn& c) -> Result<std::vector<std::pair<std::string, int64_t>>> {
    Stmt st(c, "SELECT digest, size FROM blobs ORDER BY digest");
    std::vector<std::pair<std::string, int64_t>> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) {
        break;
      }
      out.emplace_back(st.text(0), st.i64(1));
    }
    return out;
  });
}

Result<std::vector<MetadataStore::StoredManifest>> SqlMetadataStore::all_manifests() {
  return with_conn([&](Conn& c) -> Result<std::vector<MetadataStore::StoredManifest>> {
    Stmt st(c,
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
  });
}

}  // namespace berth::store::sql
