// SPDX-License-Identifier: Apache-2.0
// The metadata store: every piece of registry state that is not blob content (repositories,
// per-repository blob links, manifests and what they reference, tags), IAM, services and
// deployments, build projects and builds. One interface, two SQL engines sharing their SQL
// and row mapping (store/sql/): SQLite (the default; ":memory:" for tests) and PostgreSQL
// (several berthd nodes on one database).
//
// Thread-safe. Blocking: call only through run_blocking() on request paths. Multi-row changes
// (a manifest with its references and its tag) are one transaction: all or nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace berth::store {

struct Repository {
  int64_t id = 0;
  std::string name;
  bool immutable_tags = false;
  std::vector<std::string> mutable_tag_globs;  // tags that stay mutable in an immutable repo
  int64_t created_at = 0;                      // unix seconds
};

/// A manifest as stored: its bytes and what the registry derived from them.
struct ManifestRecord {
  std::string digest;
  std::string media_type;
  std::string content;  // raw bytes, exactly as pushed
  int64_t size = 0;
  std::string artifact_type;
  std::string subject;                 // digest of the subject, "" when none
  std::string annotations_json;        // "" when none
  std::string platform;                // "linux/amd64"; for an index, comma-separated children's
  int64_t total_size = 0;              // manifest + config + layers (image) or + children (index)
  std::vector<std::string> blob_refs;  // config and layer digests
  std::vector<std::string> manifest_refs;  // child manifest digests (index)
  int64_t pushed_at = 0;
  /// Pulled through from an upstream: its blobs and child manifests arrive when first asked
  /// for, so put_manifest does not require them to be present yet.
  bool partial = false;
};

struct ImageSummary {
  std::string digest;
  std::string media_type;
  std::string artifact_type;
  std::vector<std::string> tags;
  int64_t size = 0;
  std::string platform;
  int64_t pushed_at = 0;
};

struct Referrer {
  std::string digest;
  std::string media_type;
  int64_t size = 0;
  std::string artifact_type;
  std::string annotations_json;
};

// ---- IAM records ----------------------------------------------------------------------------

/// A user (person, CI) or a role (assumed by services and builds).
struct Principal {
  std::string kind;  // "user" or "role"
  std::string name;
  int64_t created_at = 0;
};

struct AccessKey {
  std::string id;           // "BK" + 18 characters, public
  std::string user;         // owner
  std::string secret_hash;  // hex SHA-256 of the secret; the secret itself is never stored
  bool active = true;
  int64_t created_at = 0;
};

/// A named policy document attached to a principal ("user"/"role" + name).
struct AttachedPolicy {
  std::string kind;
  std::string principal;
  std::string name;
  std::string document;  // JSON, validated before it is stored
  int64_t updated_at = 0;
};

/// One audit record: a state-changing request or a denial.
struct AuditEvent {
  int64_t time = 0;  // unix seconds
  std::string principal;
  std::string action;
  std::string resource;
  bool allowed = false;
  std::string source;  // client address
};

// ---- Services (deploy) ----------------------------------------------------------------------

/// A service: its desired configuration and the revision serving now.
struct ServiceRecord {
  std::string name;
  std::string spec;  // JSON, owned by deploy (secret values encrypted)
  bool paused = false;
  int64_t revision = 0;  // the revision that last deployed successfully; 0 = none yet
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

/// An immutable revision: a pinned image and the whole configuration it runs with.
struct RevisionRecord {
  std::string service;
  int64_t number = 0;  // 1, 2, ... per service
  std::string digest;  // pinned image manifest digest
  std::string spec;    // JSON, as ServiceRecord::spec
  int64_t created_at = 0;
};

struct DeploymentRecord {
  int64_t id = 0;
  std::string service;
  int64_t revision = 0;
  std::string status;  // QUEUED IN_PROGRESS SUCCEEDED FAILED SUPERSEDED
  std::string reason;
  std::string trigger;  // "create", "push web/app:latest", "deploy", "update", "rollback"
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  std::string digest;  // the revision's, filled on reads
};

// ---- Builds ---------------------------------------------------------------------------------

/// A build project: its configuration, owned by the build service.
struct BuildProjectRecord {
  std::string name;
  std::string spec;            // JSON, owned by build (secret values sealed)
  std::string webhook_secret;  // sealed
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

/// One build of a project.
struct BuildRecord {
  int64_t id = 0;
  std::string project;
  std::string status;  // QUEUED IN_PROGRESS SUCCEEDED FAILED STOPPED
  std::string phase;   // SOURCE BUILD PUSH ("" before it starts)
  std::string reason;
  std::string commit_id;  // "" until resolved
  std::string branch;
  std::string trigger;
  std::string source;  // the URL fetched (credentials masked)
  std::string image;   // "web/app:latest"
  std::vector<std::string> tags;
  std::string digest;    // the pushed manifest's digest
  std::string phase_ms;  // JSON object, owned by build ("" = none)
  std::string steps;     // JSON array, owned by build ("" = none)
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
};

/// What happened to the tag when a manifest was put.
// ---- DNS (dns) ------------------------------------------------------------------------------

/// One record set of a hosted zone, keyed by (name, type, set_identifier) within the zone:
/// name "www.example.com" (lower-case, no trailing dot), type "A", set_identifier "" unless a
/// routing policy names it; document: the set in Route 53's JSON shape (dns::RecordSet).
struct DnsRecordSetRow {
  std::string name;
  std::string type;
  std::string set_identifier;
  std::string document;  // empty in DnsZoneWrite::removed_sets
};

/// A hosted zone: a row with its serial and settings (document: JSON of allow_transfer and
/// also_notify) and one row per record set, so that a change batch writes only the sets it
/// touched, under one conditional update of the serial, and a reader never sees half of one.
struct DnsZoneRow {
  std::string name;  // "example.com"
  int64_t serial = 0;
  std::string document;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  /// Read: every set of the zone, sorted by (name, type, set_identifier) bytewise. Create:
  /// every set. Update: the sets to insert or replace.
  std::vector<DnsRecordSetRow> record_sets;
};

/// One write of write_dns_zones. Create: AlreadyExists when the zone exists. Update: only
/// while the stored serial is still expected_serial (Conflict otherwise: another change won);
/// it sets serial, document and updated_at, removes removed_sets (by key) and then puts
/// row.record_sets. Remove: NotFound when absent; the zone's sets go with it.
struct DnsZoneWrite {
  enum class Op { Create, Update, Remove } op = Op::Update;
  DnsZoneRow row;
  int64_t expected_serial = 0;
  std::vector<DnsRecordSetRow> removed_sets;
};

/// DNS objects that are not zones (TSIG keys, health checks): JSON documents by kind and name.
// ---- Objects (domains, certificates, TSIG keys, health checks) -----------------------------

/// A JSON document by kind and name, for subsystems that never query inside their rows
/// (custom domains, certificates, berth's CA and ACME account, TSIG keys, DNS health checks):
/// one table and one mapping serve them all, and the (kind, name) key keeps a name unique
/// within its kind.
struct ObjectRow {
  std::string kind;  // "domain", "certificate", "tls", "tsig", "healthcheck"
  std::string name;
  std::string document;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct PutManifestResult {
  bool created = true;  // false when the same digest was already there
  std::string previous_tag_digest;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Repositories. create: AlreadyExists. get/remove: NotFound.
  virtual Result<Repository> create_repository(const Repository& repo) = 0;
  virtual Result<Repository> get_repository(const std::string& name) = 0;
  /// Names sorted; those after `last`, at most n (n < 0: all).
  virtual Result<std::vector<Repository>> list_repositories(const std::string& last, int n) = 0;
  /// Removes the repository, its tags, manifests and blob links (blob files go at gc).
  virtual Status delete_repository(const std::string& name) = 0;

  // Blobs. Content lives in the blob store; here are sizes, links and link times.
  /// Records that repo may read digest (upload, mount); refreshes the link time used by gc.
  virtual Status link_blob(int64_t repo_id, const std::string& digest, int64_t size,
                           int64_t now) = 0;
  /// Size of a blob linked into repo; NotFound otherwise.
  virtual Result<int64_t> linked_blob_size(int64_t repo_id, const std::string& digest) = 0;
  /// Size of a blob known anywhere; NotFound otherwise.
  virtual Result<int64_t> blob_size(const std::string& digest) = 0;
  /// Removes repo's link; NotFound when there was none.
  virtual Status unlink_blob(int64_t repo_id, const std::string& digest) = 0;

  // Manifests and tags.
  /// Stores the manifest (and its tag, if any) in one transaction after checking (unless
  /// m.partial) that every referenced blob is linked into the repo and every child manifest
  /// exists in it (FailedPrecondition naming the first missing one) and, when tag_immutable,
  /// that the tag does not already point at another digest (PermissionDenied naming the tag).
  virtual Result<PutManifestResult> put_manifest(const Repository& repo, const ManifestRecord& m,
                                                 const std::string& tag, bool tag_immutable) = 0;
  /// By tag or digest; NotFound when absent.
  virtual Result<ManifestRecord> get_manifest(int64_t repo_id, const std::string& reference) = 0;
  /// Deletes the manifest and every tag pointing at it; NotFound when absent.
  virtual Status delete_manifest(int64_t repo_id, const std::string& digest) = 0;
  /// Deletes one tag; NotFound when absent.
  virtual Status delete_tag(int64_t repo_id, const std::string& tag) = 0;
  virtual Result<std::vector<std::string>> list_tags(int64_t repo_id, const std::string& last,
                                                     int n) = 0;
  virtual Result<std::vector<Referrer>> referrers(int64_t repo_id, const std::string& subject) = 0;
  virtual Result<std::vector<ImageSummary>> list_images(int64_t repo_id) = 0;

  // Garbage collection and fsck.
  /// Blobs no manifest references whose newest link time is older than `linked_before`. A blob
  /// whose links were all removed still waits out the grace period: a mount may be racing gc.
  virtual Result<std::vector<std::string>> unreferenced_blobs(int64_t linked_before) = 0;
  /// Forgets the blob (rows and links) if it is still unreferenced and old; true if it did.
  virtual Result<bool> forget_blob_if_unreferenced(const std::string& digest,
                                                   int64_t linked_before) = 0;
  /// Every blob digest with its recorded size.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> all_blobs() = 0;
  /// Every manifest (repo name, digest, bytes), for fsck.
  struct StoredManifest {
    std::string repository;
    std::string digest;
    std::string content;
  };
  virtual Result<std::vector<StoredManifest>> all_manifests() = 0;

  // IAM. create_principal: AlreadyExists; delete_principal: NotFound (removes its keys and
  // policies too). Keys: create_key needs an existing user (NotFound).
  virtual Status create_principal(const Principal& p) = 0;
  virtual Result<std::vector<Principal>> list_principals(const std::string& kind) = 0;
  virtual Status delete_principal(const std::string& kind, const std::string& name) = 0;
  virtual Status create_key(const AccessKey& key) = 0;
  virtual Result<AccessKey> get_key(const std::string& id) = 0;
  virtual Result<std::vector<AccessKey>> list_keys(const std::string& user) = 0;
  virtual Status set_key_active(const std::string& id, bool active) = 0;
  virtual Status delete_key(const std::string& id) = 0;
  /// Creates or replaces; NotFound when the principal does not exist.
  virtual Status put_policy(const AttachedPolicy& p) = 0;
  /// Every attached policy ("" kind = all), ordered by kind, principal, name.
  virtual Result<std::vector<AttachedPolicy>> list_policies(const std::string& kind,
                                                            const std::string& principal) = 0;
  virtual Status delete_policy(const std::string& kind, const std::string& principal,
                               const std::string& name) = 0;
  /// A repository's resource policy ("" = none); NotFound for an unknown repository.
  virtual Status set_repository_policy(const std::string& repo, const std::string& document) = 0;
  virtual Result<std::string> get_repository_policy(const std::string& repo) = 0;

  // Services, revisions, deployments. create_service: AlreadyExists; others NotFound.
  virtual Status create_service(const ServiceRecord& s) = 0;
  virtual Result<ServiceRecord> get_service(const std::string& name) = 0;
  virtual Result<std::vector<ServiceRecord>> list_services() = 0;
  /// Replaces spec, paused, revision and updated_at.
  virtual Status update_service(const ServiceRecord& s) = 0;
  /// Removes the service with its revisions and deployments.
  virtual Status delete_service(const std::string& name) = 0;
  /// Stores a revision numbered one past the service's newest; returns the number.
  virtual Result<int64_t> add_revision(const RevisionRecord& r) = 0;
  virtual Result<RevisionRecord> get_revision(const std::string& service, int64_t number) = 0;
  /// Stores a deployment; returns its id.
  virtual Result<int64_t> add_deployment(const DeploymentRecord& d) = 0;
  /// Replaces status, reason, started_at and finished_at.
  virtual Status update_deployment(const DeploymentRecord& d) = 0;
  virtual Result<DeploymentRecord> get_deployment(int64_t id) = 0;
  /// Newest first ("" service = all services), at most limit.
  virtual Result<std::vector<DeploymentRecord>> list_deployments(const std::string& service,
                                                                 int limit) = 0;

  // Build projects and builds. create_build_project: AlreadyExists; others NotFound.
  virtual Status create_build_project(const BuildProjectRecord& p) = 0;
  virtual Result<BuildProjectRecord> get_build_project(const std::string& name) = 0;
  /// Sorted by name.
  virtual Result<std::vector<BuildProjectRecord>> list_build_projects() = 0;
  /// Replaces spec, webhook_secret and updated_at.
  virtual Status update_build_project(const BuildProjectRecord& p) = 0;
  /// Removes the project and all its builds (one transaction).
  virtual Status delete_build_project(const std::string& name) = 0;
  /// Stores a build (id assigned, the given one ignored); NotFound for an unknown project.
  virtual Result<int64_t> add_build(const BuildRecord& b) = 0;
  /// Replaces everything but id, project, trigger and created_at.
  virtual Status update_build(const BuildRecord& b) = 0;
  virtual Result<BuildRecord> get_build(int64_t id) = 0;
  /// Newest first ("" project = all projects), at most limit (limit < 0: all).
  virtual Result<std::vector<BuildRecord>> list_builds(const std::string& project, int limit) = 0;
  /// Builds with this status, oldest first (the queue order).
  virtual Result<std::vector<BuildRecord>> list_builds_by_status(const std::string& status) = 0;

  // DNS. Zones change only through write_dns_zones: several writes (a sub-zone and the
  // delegation in its parent) commit together or not at all.
  virtual Result<DnsZoneRow> get_dns_zone(const std::string& name) = 0;
  /// Sorted by name.
  virtual Result<std::vector<DnsZoneRow>> list_dns_zones() = 0;
  virtual Status write_dns_zones(const std::vector<DnsZoneWrite>& writes) = 0;

  // Objects. create: AlreadyExists when (kind, name) is present; otherwise inserts or replaces
  // (created_at kept from the first write).
  virtual Status put_object(const ObjectRow& o, bool create) = 0;
  virtual Result<ObjectRow> get_object(const std::string& kind, const std::string& name) = 0;
  /// Sorted by name.
  virtual Result<std::vector<ObjectRow>> list_objects(const std::string& kind) = 0;
  virtual Status delete_object(const std::string& kind, const std::string& name) = 0;

  // Audit log: appended in batches, read newest first.
  virtual Status append_audit(const std::vector<AuditEvent>& events) = 0;
  /// Events at or after `since` ("" principal = all), newest first, at most limit.
  virtual Result<std::vector<AuditEvent>> list_audit(int64_t since, const std::string& principal,
                                                     int limit) = 0;
};

using MetadataStorePtr = std::unique_ptr<MetadataStore>;

/// Opens (creating if needed) the SQLite store at path (":memory:" for tests).
Result<MetadataStorePtr> open_sqlite(const std::string& path);

struct PostgresOptions {
  std::string dsn;       // libpq connection string: "host=127.0.0.1 port=5432 dbname=berth ..."
  std::string password;  // "" = the DSN's, PGPASSWORD or ~/.pgpass (libpq's own lookup)
  int max_connections = 16;
  /// How long an operation retries connecting while the server is away before it fails with
  /// Unavailable; also how long one connection attempt may wait for a server that accepted
  /// the TCP connection and does not answer (a connect_timeout in the DSN overrides that).
  std::chrono::milliseconds connect_wait{3000};
  /// How long one statement may wait for the server's answer (store.postgres.query_timeout).
  /// Past it the connection is dropped (the server rolls back its open transaction) and the
  /// operation fails with Unavailable naming the timeout.
  std::chrono::milliseconds query_timeout{30000};
};

/// Opens the PostgreSQL store: connects (Unavailable when the server cannot be reached, or does
/// not answer, within connect_wait), then brings the schema up to date under an advisory lock
/// (several nodes may start at once). FailedPrecondition, naming both versions, for a database a
/// newer berthd wrote. Operations keep working across server restarts: while the server is away
/// they fail with Unavailable, and the next after it is back reconnects.
Result<MetadataStorePtr> open_postgres(const PostgresOptions& options);

}  // namespace berth::store
