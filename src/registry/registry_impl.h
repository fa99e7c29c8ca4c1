// SPDX-License-Identifier: Apache-2.0
// Private to src/registry: Registry::Impl, shared by the files that implement it.
//   registry.cc   helpers, dispatch, the catalog, the control-API operations
//   manifests.cc  manifests, tags and push_local
//   referrers.cc  the referrers API
//   uploads.cc    blobs and upload sessions
//   gc.cc         upload expiry, garbage collection, fsck
//   upstreams.cc  upstream registries as configuration, and qualify()
//   upstream.cc   talking to an upstream (authentication, redirects)
//   pull_through.cc  filling repositories under an upstream's prefix from it
//   blob_fetch.cc    blobs arriving into a growing local file, sent to clients as they land
//                    (pull-through, and cold reads from S3)
//   replication.cc   copying pushes to other registries
//   lifecycle.cc     lifecycle rules as configuration, preview and apply (the maintenance tick)
//   lifecycle_rules.cc  parsing ECR-shaped rules and deciding what they expire
// Decisions about visibility live in the metadata store (one transaction each); bytes live in
// storage::BlobStorage (fs or S3). Read-mostly lookups (repositories, manifests, blob links) are
// cached in memory and invalidated on every write.
#pragma once

#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "oci/oci.h"
#include "registry/blob_fetch.h"
#include "registry/oci_errors.h"
#include "registry/registry.h"
#include "registry/upstream.h"
#include "storage/blob_storage.h"

namespace berth::registry {

// Parses the n query parameter: absent -> -1 (all); invalid -> nullopt.
inline std::optional<int> parse_n(const std::optional<std::string>& s) {
  if (!s) {
    return -1;
  }
  if (s->empty() || s->size() > 9) {
    return std::nullopt;
  }
  for (char c : *s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
  }
  return std::stoi(*s);
}

namespace detail {

inline int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

struct Upload {
  std::string id;
  std::string repo;
  int64_t repo_id = 0;
  int fd = -1;
  uint64_t size = 0;
  std::optional<Sha256> hash;  // nullopt after a restart: recomputed from the file at commit
  int64_t updated = 0;
  bool busy = false;  // guarded by the sessions mutex

  ~Upload() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};
using UploadPtr = std::shared_ptr<Upload>;

struct CachedManifest {
  std::string digest;
  std::string media_type;
  std::string content;
  std::string subject;
};
using CachedManifestPtr = std::shared_ptr<const CachedManifest>;

inline http::Response base_response(unsigned status) {
  http::Response r;
  r.status = status;
  r.header("Docker-Distribution-API-Version", "registry/2.0");
  return r;
}

}  // namespace detail

using detail::base_response;
using detail::CachedManifest;
using detail::CachedManifestPtr;
using detail::now_unix;
using detail::Upload;
using detail::UploadPtr;

struct Registry::Impl {
  Impl(Options o, store::MetadataStore& s, BlockingPool& p, iam::AuthorizerPtr a, EventBus& b)
      : opts(std::move(o)),
        store(s),
        pool(p),
        authz(std::move(a)),
        bus(b),
        blob_storage(opts.blob_storage ? opts.blob_storage
                                       : storage::make_fs_blob_storage(opts.data_dir, opts.fsync)),
        blobs(*blob_storage) {}
  ~Impl() {
    stop_replication();
    stop_fetches();
  }

  Options opts;
  store::MetadataStore& store;
  BlockingPool& pool;
  iam::AuthorizerPtr authz;
  EventBus& bus;
  storage::BlobStoragePtr blob_storage;
  storage::BlobStorage& blobs;
  std::shared_ptr<spdlog::logger> log = log::get("registry");

  std::mutex sessions_mu;
  std::unordered_map<std::string, UploadPtr> sessions;

  // Caches. Each guarded by cache_mu; entries are immutable values.
  std::shared_mutex cache_mu;
  std::unordered_map<std::string, std::shared_ptr<const store::Repository>> repo_cache;
  std::unordered_map<std::string, CachedManifestPtr> manifest_cache;  // "repo\nref"
  std::unordered_map<std::string, int64_t> link_cache;                // "repoid\ndigest"

  // Serializes a blob's commit against gc deleting the same digest.
  std::array<std::mutex, 64> stripes;
  std::mutex& stripe(const std::string& hex) {
    return stripes[std::hash<std::string>{}(hex) % stripes.size()];
  }

  // ---- helpers ---------------------------------------------------------------------------

  Status authorize(const http::RequestContext& ctx, const std::string& action,
                   const std::string& resource);

  // "registry:Push" on "repository/web/app" -> "repository:web/app:push" ("" if no token
  // scope covers the action).
  static std::string token_scope(const std::string& action, const std::string& resource);

  // The Docker token challenge: where to get a token, and for what.
  http::Response challenge(const http::Exchange& ex, const std::string& message);

  void invalidate_repo(const std::string& name);

  void forget_repo(const std::string& name);

  // Repository by name, NotFound with the message users need.
  awaitable<Result<std::shared_ptr<const store::Repository>>> find_repo(std::string name);

  // The one sentence for a push into a repository that does not exist (and may not be
  // auto-created).
  static Error repository_missing(const std::string& name);

  // Blocking: creates a repository on first push (auto_create_repositories). An AlreadyExists
  // from a racing creator is success.
  Status auto_create_repository(const std::string& name);

  // For writes: creates the repository when the config allows it.
  awaitable<Result<std::shared_ptr<const store::Repository>>> repo_for_push(std::string name);

  awaitable<Result<int64_t>> linked_size(int64_t repo_id, std::string digest);

  // Not coroutines, and no aggregate arguments: GCC 12 mis-copies aggregates (and lambdas)
  // that appear in a co_await expression. Callers pass an enum and a string.
  awaitable<void> fail(http::Exchange& ex, Oci code, std::string message);
  awaitable<void> fail_error(http::Exchange& ex, const Error& e, Oci not_found = Oci::NameUnknown);

  // A full disk needs an operator: one error line naming ENOSPC and the data dir (the
  // client only hears 507 and kInsufficientStorageMessage).
  void note_no_space(const Error& e, const std::string& doing);

  // One answer for a digest the registry cannot use, malformed or of an algorithm it does not
  // support: 400 DIGEST_INVALID, as the distribution spec asks for both.
  awaitable<void> fail_digest(http::Exchange& ex, const Error& e);

  // Blocking: a (small) blob's bytes, e.g. an image config.
  Result<std::string> read_blob(const std::string& hex);

  // ---- dispatch ---------------------------------------------------------------------------

  awaitable<void> handle(http::Exchange& ex);

  awaitable<void> method_not_allowed(http::Exchange& ex);

  // Authorizes and resolves the repository for a read; sends the error itself on failure.
  awaitable<std::shared_ptr<const store::Repository>> repo_for_read(http::Exchange& ex,
                                                                    std::string name,
                                                                    std::string action);
  // registry:Delete on the repository, then the repository (which must exist).
  awaitable<std::shared_ptr<const store::Repository>> repo_for_delete(http::Exchange& ex,
                                                                      std::string name);
  // The same for registry:Pull about one digest, which must parse first.
  awaitable<std::shared_ptr<const store::Repository>> repo_for_digest(http::Exchange& ex,
                                                                      std::string name,
                                                                      std::string digest);

  awaitable<std::shared_ptr<const store::Repository>> repo_for_write(http::Exchange& ex,
                                                                     std::string name);

  // ---- catalog and tags ------------------------------------------------------------------

  awaitable<void> catalog(http::Exchange& ex);

  awaitable<void> list_tags(http::Exchange& ex, std::string name);

  // ---- manifests -------------------------------------------------------------------------

  awaitable<Result<CachedManifestPtr>> lookup_manifest(const store::Repository& repo,
                                                       std::string reference);

  awaitable<void> get_manifest(http::Exchange& ex, std::string name, std::string reference);

  // ---- what is recorded for a manifest (the /v2/ handler and push_local) -----------------

  // The image config to read the platform from: its hex, or "" for an index, an artifact or
  // a config too big to bother.
  static std::string platform_config_hex(const oci::Manifest& m);

  // The row stored for a manifest. config_bytes: the blob platform_config_hex() names, when
  // it could be read.
  static store::ManifestRecord manifest_record(const oci::Manifest& parsed,
                                               const oci::Digest& digest, std::string body,
                                               const std::optional<std::string>& config_bytes);

  // A descriptor of a manifest, by the field that holds it ("layers[2]").
  struct DescribedRef {
    std::string field;
    std::string digest;
    int64_t size = 0;
  };

  // What a manifest references and must exist with that size: config and layers of an
  // image, manifests of an index (a subject may be pushed later, so it is not included).
  static std::vector<DescribedRef> described_refs(const oci::Manifest& m);

  static std::string size_mismatch(const DescribedRef& r, int64_t actual);

  // Whether a push may not move `tag` once set: the repository's tags are immutable and no
  // mutable glob exempts it.
  static bool tag_is_immutable(const store::Repository& repo, const std::string& tag);

  awaitable<void> put_manifest(http::Exchange& ex, std::string name, std::string reference);

  awaitable<void> delete_manifest(http::Exchange& ex, std::string name, std::string reference);

  awaitable<void> referrers(http::Exchange& ex, std::string name, std::string digest);

  // ---- blobs -----------------------------------------------------------------------------

  awaitable<void> get_blob(http::Exchange& ex, std::string name, std::string digest);
  // A blob of this registry's own (no upstream involved).
  awaitable<void> get_local_blob(http::Exchange& ex, std::string name, std::string digest);
  // Not a coroutine: the answer to a blob the storage could not read (NotFound: missing from
  // it, an error line; otherwise 503, a warning).
  awaitable<void> fail_unreadable(http::Exchange& ex, const std::string& name,
                                  const std::string& digest, const Error& e);

  awaitable<void> delete_blob(http::Exchange& ex, std::string name, std::string digest);

  // ---- uploads ---------------------------------------------------------------------------

  http::Response upload_accepted(const std::string& name, const Upload& up, unsigned status);

  // Finds a session (reopening it from disk after a restart) and marks it busy.
  awaitable<Result<UploadPtr>> claim_upload(std::string name, std::string id);
  // registry:Push on the repository, then claim_upload; sends the error itself and returns
  // null on failure.
  awaitable<UploadPtr> claim_for_push(http::Exchange& ex, std::string name, std::string id);

  void release(const UploadPtr& up);

  void drop(const UploadPtr& up);

  // Streams the request body onto the end of the upload. Two buffers: while one is written
  // and hashed on the pool, the next is read from the socket. On a broken body the bytes that
  // did arrive stay (a client may resume from the reported Range).
  Status append_chunk(const UploadPtr& up, const char* data, size_t len);

  std::shared_ptr<BlockingJob<Status>> start_append(asio::any_io_executor ex, UploadPtr up,
                                                    std::shared_ptr<char[]> buf, size_t len);

  awaitable<Status> receive(http::Exchange& ex, UploadPtr up);

  awaitable<void> start_upload(http::Exchange& ex, std::string name);

  awaitable<void> upload_error(http::Exchange& ex, const Error& e);

  awaitable<void> upload_status(http::Exchange& ex, std::string name, std::string id);

  awaitable<void> patch_upload(http::Exchange& ex, std::string name, std::string id);

  awaitable<void> put_upload(http::Exchange& ex, std::string name, std::string id);

  // Receives the final body, checks the digest and makes the blob visible, or drops the
  // session: a failed finish never leaves anything behind.
  awaitable<void> finish_upload(http::Exchange& ex, std::string name, UploadPtr up,
                                std::string digest_text);

  awaitable<void> cancel_upload(http::Exchange& ex, std::string name, std::string id);

  // Blocking, under the digest's stripe: links a blob file just renamed into place. When the
  // row cannot be written (a full disk), a file no row knows is removed at once rather than
  // left for gc.
  Status link_committed(int64_t repo_id, const std::string& digest, const std::string& hex,
                        int64_t size);

  // ---- maintenance -----------------------------------------------------------------------

  awaitable<int64_t> expire_uploads();

  Result<GcReport> gc_blocking();

  // ---- upstreams (upstreams.cc) ----------------------------------------------------------

  std::shared_mutex up_mu;
  std::vector<UpstreamPtr> upstreams;

  Result<UpstreamPtr> make_upstream(UpstreamSpec spec, int64_t created_at);
  // Credentials of a remote registry (an upstream or a replication destination), what:
  // "upstream"/"replication". check_credentials: before sealing a new one; open_password: the
  // stored (sealed) password, "" when none.
  Status check_credentials(const std::string& username, const std::string& password,
                           const std::string& what) const;
  Result<std::string> open_password(const Json& doc) const;
  Status load_upstreams();
  // The upstream whose prefix the repository is under; nullptr when none.
  UpstreamPtr upstream_for(const std::string& repository);
  Result<UpstreamPtr> find_upstream(const std::string& name);

  // ---- pull-through (pull_through.cc) ----------------------------------------------------

  std::mutex fetch_mu;
  std::unordered_map<std::string, BlobFetchPtr> fetches;  // by hex, while running
  // Runs fetches (from upstreams, and cold reads from blob storage), at most
  // opts.max_upstream_fetches at once; the rest queue. Created at first use, under fetch_mu.
  std::unique_ptr<asio::thread_pool> fetch_pool;
  asio::thread_pool& fetch_threads();
  std::atomic<bool> stopping{false};
  std::mutex fresh_mu;
  std::unordered_map<std::string, int64_t> tag_checked;  // "repo\ntag" -> when looked up

  bool tag_fresh(const std::string& name, const std::string& tag, std::chrono::seconds ttl);
  void mark_fresh(const std::string& name, const std::string& tag);
  // Blocking: the repository, created when it is not there yet (a mirror needs no push).
  Result<std::shared_ptr<const store::Repository>> mirror_repo(const std::string& name);
  // Blocking: from the cache or the store; nullptr when absent.
  CachedManifestPtr local_manifest(const std::string& name, const std::string& reference);
  // Blocking: GET from the upstream, verify, store (partial), mark the tag fresh.
  Result<CachedManifestPtr> fetch_manifest(const UpstreamPtr& up, const std::string& name,
                                           const std::string& reference);
  // Blocking: the manifest as the cache should answer it: local when fresh, looked up again
  // when its TTL passed (stale set, and the local one returned, when the upstream fails),
  // fetched when absent (ctx, when set, must be allowed registry:PullThrough).
  Result<CachedManifestPtr> manifest_through(const UpstreamPtr& up, const std::string& name,
                                             const std::string& reference,
                                             const http::RequestContext* ctx, std::string* stale);
  // Blocking: null when the blob is linked into the repository (now); else the fetch to wait
  // for or stream from (started, or joined when one runs).
  Result<BlobFetchPtr> blob_through(const UpstreamPtr& up, const std::string& name,
                                    const oci::Digest& digest, const http::RequestContext* ctx);
  // On its own thread: the transfer, verification and commit of one blob.
  void run_fetch(UpstreamPtr up, std::string name, int64_t repo_id, BlobFetchPtr f, int wfd);
  // Stops running fetches (their next piece) and waits for their threads.
  void stop_fetches();

  awaitable<void> fail_upstream(http::Exchange& ex, const Error& e, Oci not_found);
  awaitable<void> get_manifest_through(http::Exchange& ex, UpstreamPtr up, std::string name,
                                       std::string reference);
  awaitable<void> get_blob_through(http::Exchange& ex, UpstreamPtr up, std::string name,
                                   std::string digest);

  // ---- blobs arriving into a growing local file (blob_fetch.cc) ----------------------------

  // Sends a blob while its fetch writes it; head: the response head to send (null: the
  // pull-through's). An error when the fetch failed before anything was sent (the caller
  // answers); once the head is out, a failure cuts the body short and the connection closes.
  awaitable<Status> stream_fetch(http::Exchange& ex, BlobFetchPtr f,
                                 std::shared_ptr<http::Response> head);
  // Until every byte of the fetch is in and verified; its failure otherwise.
  awaitable<Status> wait_fetch(BlobFetchPtr f);

  // Cold reads: blobs in remote blob storage being copied into their local copy, by hex.
  std::unordered_map<std::string, BlobFetchPtr> cold_reads;  // under fetch_mu
  struct LocalRead {
    int fd = -1;              // the blob's local file, to send from (the caller closes it)
    BlobFetchPtr fetch;       // or the transfer making it, to stream from
    bool range_only = false;  // fetch holds only the range asked for, not the whole blob
  };
  // Blocking: the blob's local file when there is one (always on fs); else the transfer that
  // copies it from blob storage (started on a fetch thread, or joined when one runs). size:
  // the blob's size as the store records it. With a range [from, from + length) and no copy
  // under way, just those bytes, from one ranged read of blob storage (range_only).
  Result<LocalRead> open_or_fetch(const std::string& name, const std::string& hex, int64_t size,
                                  std::optional<std::pair<uint64_t, uint64_t>> range);
  // On a fetch thread: the transfer, verification and keeping of one local copy.
  void run_cold_read(BlobFetchPtr f, storage::LocalCopy copy);
  // On a fetch thread: a range alone, into f's file (not hashed: a range cannot be).
  void run_range_read(BlobFetchPtr f, int wfd, uint64_t from, uint64_t length);
  // A transient upload of repo for f's bytes: sets f.upload_id and f.read_fd, returns the fd
  // to write them with.
  Result<int> open_fetch_file(BlobFetch& f, const std::string& repo);

  // ---- replication (replication.cc) -------------------------------------------------------

  std::mutex repl_mu;
  std::condition_variable repl_cv;
  std::vector<std::shared_ptr<ReplicationRule>> replications;
  bool repl_wake = false;  // a task was queued: the worker looks now, not at its next tick
  int64_t repl_seq = 0;    // the newest task's sequence number
  std::thread repl_thread;

  Result<UpstreamPtr> make_destination(const ReplicationSpec& spec, int64_t created_at);
  Status load_replications();
  std::shared_ptr<ReplicationRule> find_replication(const std::string& name);
  Result<ReplicationStatus> replication_status(const ReplicationRule& r);
  // Queues a push (or, deleted, a deletion) for every rule that matches it, in the store,
  // before the caller acknowledges it: a crash or stop right after loses nothing. Blocking.
  void note_change(const std::string& repo, const std::string& tag, const std::string& digest,
                   bool deleted);
  // Deletes a manifest (a digest reference, already checked) or a tag, and queues the deletion
  // for the replication rules with --deletes. Blocking.
  Status delete_reference(const std::string& repo, int64_t repo_id, const std::string& reference);
  void replication_loop();
  // A task as stored, and its parsed document.
  struct QueuedTask {
    store::ObjectRow row;
    Json doc;
  };
  // One rule's tasks (oldest first): each due one tried, in order per repository.
  void replication_pass(std::vector<QueuedTask> rows);
  void stop_replication();
  Status replicate(ReplicationRule& r, const Json& task);
  Status push_to(ReplicationRule& r, const store::Repository& repo, const std::string& digest,
                 const std::string& reference);

  // ---- push_local ------------------------------------------------------------------------

  // Blocking (a worker thread, never an I/O thread): everything a push of each tag does, from
  // local files. Nothing is stored unless every check passes: authorization, the manifest,
  // the tags, and every new blob's bytes are verified before the first commit.
  Result<std::string> push_local(const std::string& principal, const LocalImage& image);
};

}  // namespace berth::registry
