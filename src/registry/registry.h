// SPDX-License-Identifier: Apache-2.0
// The OCI registry: the Distribution API (/v2/) over a blob store and the metadata store, and
// the repository/image operations the control API exposes. Knows nothing of deploys: it
// publishes ImagePushed on the event bus and stops there.
//
// All public coroutines may be called from any I/O thread; blocking work goes to the pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/async.h"
#include "common/events.h"
#include "common/result.h"
#include "http/http.h"
#include "iam/iam.h"
#include "registry/lifecycle.h"
#include "storage/blob_storage.h"
#include "store/store.h"

namespace berth {
class SecretBox;
}

namespace berth::registry {

struct Options {
  std::string data_dir;  // uploads/ (and, on fs, blobs/) live here
  /// Where blob content lives; unset: the fs driver on data_dir.
  storage::BlobStoragePtr blob_storage;
  /// Blob GETs answer 307 to blob_storage's presigned URL (S3) instead of sending the bytes.
  bool redirect_pulls = false;
  bool auto_create_repositories = false;
  bool fsync = true;
  std::chrono::seconds upload_ttl{24 * 3600};
  std::chrono::seconds gc_grace{3600};
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  bool require_auth = false;       // anonymous refusals become 401 Bearer challenges
  iam::AuditLog* audit = nullptr;  // records pushes, deletes and denials when set
  /// Seals upstream credentials at rest; without it upstreams cannot have credentials.
  std::shared_ptr<SecretBox> secrets;
  /// Each step of a request to an upstream (connect, handshake, every read) at most this long.
  std::chrono::seconds upstream_timeout{30};
  /// Blobs fetched from upstreams at the same time; more wait in a queue for a slot.
  int max_upstream_fetches = 16;
  // Digests something outside the registry uses (service revisions, running builds): lifecycle
  // rules never expire them. Called on a worker thread; unset = none; "*" = could not tell,
  // protect everything.
  std::function<std::vector<std::string>()> pinned_digests;
  /// Whether a reference's host part ("registry.example.com", "10.0.0.5:5000") names this
  /// berth, so that "HOST/web/app" means the local web/app. Loopback hosts (localhost,
  /// 127.0.0.0/8, [::1], any port) always do; unset: only they.
  std::function<bool(const std::string& host)> is_own_host;
};

/// An upstream registry berth pulls through (docs/registry.md, "Pull-through cache").
struct UpstreamSpec {
  std::string name;      // "dockerhub": [a-z0-9-], at most 63
  std::string url;       // "https://registry-1.docker.io" (http:// allowed, for a local mirror)
  std::string prefix;    // "docker.io": upstream repository R appears in berth as docker.io/R
  std::string username;  // with password: HTTP Basic, or the credentials for its token endpoint
  std::string password;  // sealed at rest, never shown
  std::string ca_file;   // PEM bundle to trust instead of the system's CAs
  std::chrono::seconds ttl{6 * 3600};  // how long a tag looked up upstream stays fresh
  bool is_default = false;             // unqualified names ("busybox:stable") resolve through it
};

struct UpstreamView {
  UpstreamSpec spec;  // password always empty
  bool has_password = false;
  int64_t created_at = 0;
};

/// What `berth registry upstream test` reports: one authenticated request to /v2/.
struct UpstreamCheck {
  bool ok = false;
  std::string auth;  // "anonymous", "basic" or "bearer": what the upstream asked for
  unsigned status = 0;
  int64_t millis = 0;
  std::string message;
};

/// A destination berth copies pushes to (docs/registry.md, "Replication").
struct ReplicationSpec {
  std::string name;                // "to-backup"
  std::string url;                 // the destination registry's origin
  std::vector<std::string> repos;  // globs of repository names ("web/*")
  std::string username;            // with password: as for an upstream
  std::string password;            // sealed at rest, never shown
  std::string ca_file;
  bool deletes = false;  // also delete there what is deleted here (by digest)
};

struct ReplicationStatus {
  ReplicationSpec spec;  // password always empty
  bool has_password = false;
  int64_t created_at = 0;
  int64_t pending = 0;          // pushes (and deletes) not replicated yet
  int64_t lag_seconds = 0;      // age of the oldest of them
  int64_t replicated = 0;       // since berthd started
  int64_t last_success_at = 0;  // 0: none since berthd started
  std::string last_error;       // the newest failure, verbatim ("" after a success)
  int64_t last_error_at = 0;
  std::vector<std::string> next;  // the first pending items ("web/app:v1 sha256:...")
};

/// An image made local by pull_image().
struct PulledImage {
  std::string repository;  // "docker.io/library/busybox"
  std::string digest;      // what the reference named: an index or an image manifest
};

struct GcReport {
  int64_t blobs_deleted = 0;
  int64_t bytes_freed = 0;
  int64_t orphan_files_deleted = 0;
  int64_t uploads_removed = 0;
};

struct FsckReport {
  int64_t blobs_checked = 0;
  int64_t manifests_checked = 0;
  std::vector<std::string> problems;  // one human sentence each
};

/// What a caller asked for a repository at creation.
struct RepositorySpec {
  std::string name;
  bool immutable_tags = false;
  std::vector<std::string> mutable_tag_globs;
};

/// A blob that exists as a local file (a layer or config a build wrote).
struct LocalBlob {
  std::string digest;  // "sha256:<hex>" of the file's bytes
  std::string path;    // the file; it is copied (hard-linked when possible), never moved
  int64_t size = 0;
  std::string media_type;
};

/// An image built inside berth, to be stored as if it had been pushed.
struct LocalImage {
  std::string repository;         // "web/app"
  std::vector<std::string> tags;  // stored in order; at least one
  std::vector<LocalBlob> blobs;   // the config and every layer the manifest references
  std::string manifest;           // the manifest's bytes
  std::string media_type;         // "application/vnd.oci.image.manifest.v1+json"
};

class Registry {
 public:
  Registry(Options opts, store::MetadataStore& store, BlockingPool& pool,
           iam::AuthorizerPtr authorizer, EventBus& bus);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Creates blobs/ and uploads/ under the data dir and loads upstreams and replication rules.
  Status init();

  /// Serves one /v2/ request, errors in the OCI JSON error format.
  awaitable<void> handle(http::Exchange& ex);

  // Operations behind the control API. Each authorizes ctx.principal first.
  awaitable<Result<store::Repository>> create_repository(http::RequestContext ctx,
                                                         RepositorySpec spec);
  awaitable<Result<std::vector<store::Repository>>> list_repositories(http::RequestContext ctx);
  awaitable<Status> delete_repository(http::RequestContext ctx, std::string name);
  awaitable<Result<std::vector<store::ImageSummary>>> list_images(http::RequestContext ctx,
                                                                  std::string repo);
  /// reference: "TAG" removes the tag; "sha256:..." removes the manifest and its tags.
  awaitable<Status> delete_image(http::RequestContext ctx, std::string repo, std::string reference);
  awaitable<Result<GcReport>> gc(http::RequestContext ctx);

  /// The local file holding a stored blob ("sha256:..."), for the runtime's layer cache.
  /// NotFound when the registry does not have it.
  Result<std::string> blob_file(const std::string& digest) const;
  /// The blob storage's own metrics in Prometheus text ("" when it has none).
  std::string metrics_text() const;

  /// Stores a LocalImage as `principal` ("role/builder-web", or "system:build" for berth's own
  /// rights), as a push of each tag would: checks registry:Push on the repository first
  /// (PermissionDenied "AccessDenied: role builder-web may not registry:Push on repository
  /// web/app", nothing stored), creates the repository when auto-create is on (NotFound
  /// naming it otherwise), verifies each blob's digest and size while copying it into the
  /// blob store, stores the manifest under every tag (immutable tags are refused as for a
  /// push) and publishes ImagePushed for each tag. Returns the manifest digest. Blocking:
  /// call from a worker thread.
  Result<std::string> push_local(const std::string& principal, const LocalImage& image);

  // ---- pull-through upstreams (upstreams.cc, pull_through.cc) -------------------------------
  // Blocking, each authorizing ctx.principal first (registry:*Upstream on upstream/NAME).
  Result<UpstreamView> create_upstream(const http::RequestContext& ctx, UpstreamSpec spec);
  Result<std::vector<UpstreamView>> list_upstreams(const http::RequestContext& ctx);
  Result<UpstreamView> get_upstream(const http::RequestContext& ctx, const std::string& name);
  Status delete_upstream(const http::RequestContext& ctx, const std::string& name);
  Result<UpstreamCheck> test_upstream(const http::RequestContext& ctx, const std::string& name);

  /// The repository a user's image reference means, the way docker reads it: berth's own host
  /// is dropped ("127.0.0.1:5000/web/app" -> "web/app"), an upstream's prefix is kept
  /// ("docker.io/busybox" -> "docker.io/library/busybox"), and a name that is not a local
  /// repository resolves through the default upstream ("busybox:stable" ->
  /// "docker.io/library/busybox:stable", library/ added to one-component names). Another
  /// registry's host stays ("ghcr.io/org/app": not local, and not pulled through unless an
  /// upstream has that prefix). Unchanged when nothing applies.
  std::string qualify(const std::string& reference);

  /// Whether the repository is under an upstream's prefix (filled by pulling through).
  bool pulls_through(const std::string& repository);

  /// Makes repository:reference local, fetching through its upstream what is not cached: the
  /// manifest, for an index the child for `platform` ("linux/amd64"), and every blob of that
  /// image. Checks registry:Pull (and registry:PullThrough for what is fetched) for principal
  /// ("system:build" skips the checks). A repository outside every upstream must already hold
  /// the reference. Blocking: call from a worker thread.
  Result<PulledImage> pull_image(const std::string& principal, const std::string& repository,
                                 const std::string& reference, const std::string& platform);

  // ---- replication (replication.cc) ---------------------------------------------------------
  // Blocking, authorizing registry:*Replication on replication/NAME.
  Result<ReplicationStatus> create_replication(const http::RequestContext& ctx,
                                               ReplicationSpec spec);
  Result<std::vector<ReplicationStatus>> list_replications(const http::RequestContext& ctx);
  Result<ReplicationStatus> get_replication(const http::RequestContext& ctx,
                                            const std::string& name);
  Status delete_replication(const http::RequestContext& ctx, const std::string& name);
  /// Starts the replication worker: every push to a repository a rule matches is queued (in
  /// the store, so a restart loses nothing) and copied in order per repository, with retries.
  void start_replication();

  /// Removes upload sessions idle longer than the TTL. Called periodically by the daemon.
  awaitable<int64_t> expire_uploads();

  /// Offline consistency check of a data dir: re-hashes every blob and manifest.
  static Result<FsckReport> fsck(const std::string& data_dir, store::MetadataStore& store);
  /// The same on any blob storage.
  static Result<FsckReport> fsck(storage::BlobStorage& blobs, store::MetadataStore& store);

  // ---- lifecycle rules (lifecycle.cc)
  // ECR-shaped rules per repository (lifecycle.h), stored as object kind "lifecycle" named
  // after the repository. Each authorizes registry:{Put,Get,Delete,Preview}LifecyclePolicy on
  // repository/NAME; NotFound for an unknown repository or (get, delete, preview) no rules.

  /// Validates and stores (replacing) the rules; InvalidArgument naming the field, nothing
  /// stored.
  awaitable<Status> put_lifecycle(http::RequestContext ctx, std::string repo, std::string json);
  /// The stored rules' JSON.
  awaitable<Result<std::string>> get_lifecycle(http::RequestContext ctx, std::string repo);
  awaitable<Status> delete_lifecycle(http::RequestContext ctx, std::string repo);
  /// What apply_lifecycle() would do to the repository now, changing nothing.
  awaitable<Result<LifecyclePreview>> preview_lifecycle(http::RequestContext ctx, std::string repo);
  /// Applies every repository's rules (the daemon's maintenance tick): deletes the manifests
  /// (and their tags) they expire; gc frees the blobs later. Returns how many were expired.
  awaitable<int64_t> apply_lifecycle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::registry
