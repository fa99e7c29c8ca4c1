// SPDX-License-Identifier: Apache-2.0
// Private to the store. SqlMetadataStore: the metadata store written once for every SQL
// engine, over the connection interface of conn.h; an engine (sqlite/, postgres/) gives it a
// ConnPool. Each operation leases one connection for its whole run (with_conn); a write of
// several rows is one transaction (Tx). Its methods live in one file per area: registry.cc,
// iam.cc, services.cc, builds.cc, audit.cc, dns.cc, objects.cc; schema.cc (the DDL) and
// migrations.cc (schema versions).
#pragma once

#include <memory>
#include <utility>

#include "store/sql/conn.h"
#include "store/store.h"

namespace berth::store::sql {

/// An error from the database: when it is Unavailable (the database away), marked as the
/// metadata store's, so that clients hear only that the store is away (common/result.h).
inline Error unavailable_store(Error e) {
  if (e.code() != Errc::Unavailable) {
    return e;
  }
  return std::move(e).with_origin(ErrorOrigin::MetadataStore);
}

/// How many times an operation runs when the database keeps rolling it back for conflicts.
inline constexpr int kConflictRuns = 5;
/// Sleeps before the n-th run again after a conflict: a random pause (so that the two sides of
/// a deadlock do not meet again), between half of 5 ms * 2^(n-1) and all of it (retry.cc).
void pause_after_conflict(int n);

/// The baseline schema (CREATE ... IF NOT EXISTS), in the dialect's column types.
std::string schema_ddl(const Dialect& d);

class SqlMetadataStore final : public MetadataStore {
 public:
  explicit SqlMetadataStore(std::unique_ptr<ConnPool> pool) : pool_(std::move(pool)) {}

  /// Brings the schema up to date (migrations.cc): refuses a database whose version is newer
  /// than this binary knows (FailedPrecondition naming both versions), creates the baseline
  /// schema, then runs the numbered migrations past the database's version, in order, in one
  /// transaction under the engine's schema lock (several nodes may start at once).
  Status migrate();
  /// The connections, for operations on the whole database (copy.cc).
  ConnPool& pool() { return *pool_; }

  Result<Repository> create_repository(const Repository& repo) override;
  Result<Repository> get_repository(const std::string& name) override;
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
  Status put_object(const ObjectRow& o, bool create) override;
  Result<ObjectRow> get_object(const std::string& kind, const std::string& name) override;
  Result<std::vector<ObjectRow>> list_objects(const std::string& kind) override;
  Status delete_object(const std::string& kind, const std::string& name) override;

  Status append_audit(const std::vector<AuditEvent>& events) override;
  Result<std::vector<AuditEvent>> list_audit(int64_t since, const std::string& principal,
                                             int limit) override;

 private:
  /// Runs op with a leased connection. A connection found lost before op reached the
  /// database (a pooled one the server dropped while idle) is replaced and op runs once more;
  /// a transaction the database rolled back for a conflict with another runs again, up to
  /// kConflictRuns times in all, after a growing random pause (pause_after_conflict); otherwise
  /// op's result, Unavailable when the database is away.
  template <class F>
  auto with_conn(F&& op) -> decltype(op(std::declval<Conn&>())) {
    using R = decltype(op(std::declval<Conn&>()));
    int reconnects = 0;
    int conflicts = 0;
    Retry next = Retry::No;
    while (true) {
      {
        auto lease = pool_->acquire();
        if (!lease) {
          return R(unavailable_store(std::move(lease).error()));
        }
        R r = op(lease->conn());
        if (r) {
          return r;
        }
        next = pool_->retry(lease->conn(), r.error());
        bool again = (next == Retry::Reconnect && reconnects++ == 0) ||
                     (next == Retry::Conflict && ++conflicts < kConflictRuns);
        if (!again) {
          return R(unavailable_store(std::move(r).error()));
        }
      }  // the connection goes back to the pool before the pause
      if (next == Retry::Conflict) {
        pause_after_conflict(conflicts);
      }
    }
  }

  // Reads for the methods, on the caller's connection (and transaction). lock: a
  // Dialect::for_update/for_share clause, or "".
  Result<Repository> get_repository_in(Conn& c, const std::string& name, const char* lock);
  Result<bool> principal_exists(Conn& c, const std::string& kind, const std::string& name);

  std::unique_ptr<ConnPool> pool_;
};

}  // namespace berth::store::sql
