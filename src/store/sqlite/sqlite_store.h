// SPDX-License-Identifier: Apache-2.0
// Private to the store. SqliteMetadataStore: one connection in WAL mode behind a mutex.
// Callers are on the blocking pool, so the mutex never blocks an I/O thread. Its methods live
// in one file per area: sqlite_store.cc (open, schema, exec), registry.cc, iam.cc,
// services.cc, builds.cc, audit.cc, dns.cc, objects.cc; migrations.cc (schema versions).
#pragma once

#include <sqlite3.h>

#include <mutex>

#include "store/sqlite/stmt.h"
#include "store/store.h"

namespace berth::store {

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(sqlite3* db) : db_(db) {}
  ~SqliteMetadataStore() override { sqlite3_close(db_); }

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

  Status exec(const char* sql);
  /// Brings the schema up to date (migrations.cc): refuses a database whose PRAGMA
  /// user_version is newer than this binary knows (FailedPrecondition naming both versions),
  /// runs `baseline` (CREATE ... IF NOT EXISTS statements), then the numbered migrations past
  /// the database's version, in order, in one transaction. `path` is for messages.
  Status migrate(const std::string& path, const char* baseline);

  Result<Repository> create_repository(const Repository& repo) override;
  Result<Repository> get_repository(const std::string& name) override;
  Result<Repository> get_repository_locked(const std::string& name);
  Result<std::vector<Repository>> list_repositories(const std::string& last, int n) override;
  Status delete_repository(const std::string& name) override;
  Status link_blob(int64_t repo_id, const std::string& digest, int64_t size, int64_t now) override;
  Result<int64_t> linked_blob_size(int64_t repo_id, const std::string& digest) override;
  Result<int64_t> blob_size(const std::string& digest) override;
  Status unlink_blob(int64_t repo_id, const std::string& digest) override;
  Result<PutManifestResult> put_manifest(const Repository& repo, const ManifestRecord& m,
                                         const std::string& tag, bool tag_immutable) override;
  Result<ManifestRecord> get_manifest(int64_t repo_id, const std::string& reference) override;
  Status delete_manifest(int64_t repo_id, const std::string& digest) override;
  Status delete_tag(int64_t repo_id, const std::string& tag) override;
  Result<std::vector<std::string>> list_tags(int64_t repo_id, const std::string& last,
                                             int n) override;
  Result<std::vector<Referrer>> referrers(int64_t repo_id, const std::string& subject) override;
  Result<std::vector<ImageSummary>> list_images(int64_t repo_id) override;
  Result<std::vector<std::string>> unreferenced_blobs(int64_t linked_before) override;
  Result<bool> forget_blob_if_unreferenced(const std::string& digest,
                                           int64_t linked_before) override;
  Result<std::vector<std::pair<std::string, int64_t>>> all_blobs() override;
  Result<std::vector<StoredManifest>> all_manifests() override;

  // ---- IAM --------------------------------------------------------------------------------

  Result<bool> principal_exists(const std::string& kind, const std::string& name);
  Status create_principal(const Principal& p) override;
  Result<std::vector<Principal>> list_principals(const std::string& kind) override;
  Status delete_principal(const std::string& kind, const std::string& name) override;
  Status create_key(const AccessKey& key) override;
  Result<AccessKey> get_key(const std::string& id) override;
  Result<std::vector<AccessKey>> list_keys(const std::string& user) override;
  Status set_key_active(const std::string& id, bool active) override;
  Status delete_key(const std::string& id) override;
  Status put_policy(const AttachedPolicy& p) override;
  Result<std::vector<AttachedPolicy>> list_policies(const std::string& kind,
                                                    const std::string& principal) override;
  Status delete_policy(const std::string& kind, const std::string& principal,
                       const std::string& name) override;
  Status set_repository_policy(const std::string& repo, const std::string& document) override;
  Result<std::string> get_repository_policy(const std::string& repo) override;

  // ---- Services ----
  Status create_service(const ServiceRecord& s) override;
  Result<ServiceRecord> get_service(const std::string& name) override;
  Result<std::vector<ServiceRecord>> list_services() override;
  Status update_service(const ServiceRecord& s) override;
  Status delete_service(const std::string& name) override;
  Result<int64_t> add_revision(const RevisionRecord& r) override;
  Result<RevisionRecord> get_revision(const std::string& service, int64_t number) override;
  Result<int64_t> add_deployment(const DeploymentRecord& d) override;
  Status update_deployment(const DeploymentRecord& d) override;
  Result<DeploymentRecord> get_deployment(int64_t id) override;
  Result<std::vector<DeploymentRecord>> list_deployments(const std::string& service,
                                                         int limit) override;

  // ---- Build projects and builds ----

  Status create_build_project(const BuildProjectRecord& p) override;
  Result<BuildProjectRecord> get_build_project(const std::string& name) override;
  Result<std::vector<BuildProjectRecord>> list_build_projects() override;
  Status update_build_project(const BuildProjectRecord& p) override;
  Status delete_build_project(const std::string& name) override;
  Result<int64_t> add_build(const BuildRecord& b) override;
  Status update_build(const BuildRecord& b) override;
  Result<BuildRecord> get_build(int64_t id) override;
  Result<std::vector<BuildRecord>> list_builds(const std::string& project, int limit) override;
  Result<std::vector<BuildRecord>> list_builds_by_status(const std::string& status) override;

  Result<DnsZoneRow> get_dns_zone(const std::string& name) override;
  Result<std::vector<DnsZoneRow>> list_dns_zones() override;
  Status write_dns_zones(const std::vector<DnsZoneWrite>& writes) override;
  Status put_dns_object(const DnsObjectRow& o, bool create) override;
  Result<std::vector<DnsObjectRow>> list_dns_objects(const std::string& kind) override;
  Status delete_dns_object(const std::string& kind, const std::string& name) override;
  Status put_object(const ObjectRow& o, bool create) override;
  Result<ObjectRow> get_object(const std::string& kind, const std::string& name) override;
  Result<std::vector<ObjectRow>> list_objects(const std::string& kind) override;
  Status delete_object(const std::string& kind, const std::string& name) override;

  Status append_audit(const std::vector<AuditEvent>& events) override;
  Result<std::vector<AuditEvent>> list_audit(int64_t since, const std::string& principal,
                                             int limit) override;

 private:
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace berth::store
