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
#include "store/store.h"

namespace berth::registry {

struct Options {
  std::string data_dir;  // blobs/ and uploads/ live here
  bool auto_create_repositories = false;
  bool fsync = true;
  std::chrono::seconds upload_ttl{24 * 3600};
  std::chrono::seconds gc_grace{3600};
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  bool require_auth = false;       // anonymous refusals become 401 Bearer challenges
  iam::AuditLog* audit = nullptr;  // records pushes, deletes and denials when set
  // Digests something outside the registry uses (service revisions, running builds): lifecycle
  // rules never expire them. Called on a worker thread; unset = none; "*" = could not tell,
  // protect everything.
  std::function<std::vector<std::string>()> pinned_digests;
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

  /// Creates blobs/ and uploads/ under the data dir.
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

  /// Stores a LocalImage as `principal` ("role/builder-web", or "system:build" for berth's own
  /// rights), as a push of each tag would: checks registry:Push on the repository first
  /// (PermissionDenied "AccessDenied: role builder-web may not registry:Push on repository
  /// web/app", nothing stored), creates the repository when auto-create is on (NotFound
  /// naming it otherwise), verifies each blob's digest and size while copying it into the
  /// blob store, stores the manifest under every tag (immutable tags are refused as for a
  /// push) and publishes ImagePushed for each tag. Returns the manifest digest. Blocking:
  /// call from a worker thread.
  Result<std::string> push_local(const std::string& principal, const LocalImage& image);

  /// Removes upload sessions idle longer than the TTL. Called periodically by the daemon.
  awaitable<int64_t> expire_uploads();

  /// Offline consistency check of a data dir: re-hashes every blob and manifest.
  static Result<FsckReport> fsck(const std::string& data_dir, store::MetadataStore& store);

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
