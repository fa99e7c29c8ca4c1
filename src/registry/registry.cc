// SPDX-License-Identifier: Apache-2.0
// The /v2/ handlers and the repository operations. Decisions about visibility live in the
// metadata store (one transaction each); bytes live in FsBlobStore. Read-mostly lookups
// (repositories, manifests, blob links) are cached in memory and invalidated on every write.
#include "registry/registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/url.h"
#include "oci/oci.h"
#include "registry/blob_store.h"
#include "registry/oci_errors.h"

namespace berth::registry {

namespace {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

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

bool valid_upload_id(const std::string& id) {
  if (id.size() != 36) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) {
      return false;
    }
  }
  return true;
}

// Parsed /v2/ path.
struct Route {
  enum Kind { Base, Catalog, Tags, Manifest, Blob, UploadStart, UploadSession, Referrers, Bad };
  Kind kind = Bad;
  std::string name;
  std::string arg;  // reference, digest or upload id
};

Route parse_route(const std::string& path) {
  Route r;
  if (path == "/v2" || path == "/v2/") {
    r.kind = Route::Base;
    return r;
  }
  if (path.rfind("/v2/", 0) != 0) {
    return r;
  }
  std::string rest = path.substr(4);
  if (rest == "_catalog") {
    r.kind = Route::Catalog;
    return r;
  }
  std::vector<std::string> seg;
  size_t start = 0;
  while (true) {
    size_t slash = rest.find('/', start);
    seg.push_back(
        rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  auto join = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      s += (i ? "/" : "") + seg[i];
    }
    return s;
  };
  size_t n = seg.size();
  if (n >= 3 && seg[n - 2] == "tags" && seg[n - 1] == "list") {
    r.kind = Route::Tags;
    r.name = join(n - 2);
  } else if (n >= 3 && seg[n - 2] == "blobs" && seg[n - 1] == "uploads") {
    r.kind = Route::UploadStart;
    r.name = join(n - 2);
  } else if (n >= 4 && seg[n - 3] == "blobs" && seg[n - 2] == "uploads") {
    r.kind = seg[n - 1].empty() ? Route::UploadStart : Route::UploadSession;
    r.name = join(n - 3);
    r.arg = seg[n - 1];
  } else if (n >= 3 && seg[n - 2] == "manifests") {
    r.kind = Route::Manifest;
    r.name = join(n - 2);
    r.arg = seg[n - 1];
  } else if (n >= 3 && seg[n - 2] == "blobs") {
    r.kind = Route::Blob;
    r.name = join(n - 2);
    r.arg = seg[n - 1];
  } else if (n >= 3 && seg[n - 2] == "referrers") {
    r.kind = Route::Referrers;
    r.name = join(n - 2);
    r.arg = seg[n - 1];
  }
  return r;
}

http::Response base_response(unsigned status) {
  http::Response r;
  r.status = status;
  r.header("Docker-Distribution-API-Version", "registry/2.0");
  return r;
}

// Parses the n query parameter: absent -> -1 (all); invalid -> nullopt.
std::optional<int> parse_n(const std::optional<std::string>& s) {
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

}  // namespace

struct Registry::Impl {
  Impl(Options o, store::MetadataStore& s, BlockingPool& p, iam::AuthorizerPtr a, EventBus& b)
      : opts(std::move(o)),
        store(s),
        pool(p),
        authz(std::move(a)),
        bus(b),
        blobs(opts.data_dir, opts.fsync) {}

  Options opts;
  store::MetadataStore& store;
  BlockingPool& pool;
  iam::AuthorizerPtr authz;
  EventBus& bus;
  FsBlobStore blobs;
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
                   const std::string& resource) {
    iam::Request req{ctx.principal, action, resource};
    bool allowed = false;
    std::string scope = ctx.token_scoped ? token_scope(action, resource) : "";
    if (!scope.empty()) {
      // A registry token carries its grants: what the policies allowed when it was issued.
      allowed = std::find(ctx.grants.begin(), ctx.grants.end(), scope) != ctx.grants.end();
    } else {
      allowed = authz->authorize(req).has_value();
    }
    if (opts.audit != nullptr) {
      opts.audit->record(req, allowed, ctx.peer);
    }
    if (!allowed) {
      return Error(Errc::PermissionDenied, iam::denial_message(req));
    }
    return ok();
  }

  // "registry:Push" on "repository/web/app" -> "repository:web/app:push" ("" if no token
  // scope covers the action).
  static std::string token_scope(const std::string& action, const std::string& resource) {
    const std::string prefix = "repository/";
    if (action == "registry:ListRepositories") {
      return "registry:catalog:*";
    }
    if (resource.rfind(prefix, 0) != 0) {
      return "";
    }
    std::string name = resource.substr(prefix.size());
    if (action == "registry:Pull") {
      return "repository:" + name + ":pull";
    }
    if (action == "registry:Push") {
      return "repository:" + name + ":push";
    }
    if (action == "registry:Delete") {
      return "repository:" + name + ":delete";
    }
    return "";
  }

  // The Docker token challenge: where to get a token, and for what.
  http::Response challenge(const http::Exchange& ex, const std::string& message) {
    auto res = oci_error_response(OciFailure{Oci::Unauthorized, message, {}});
    std::string value = "Bearer realm=\"" + ex.context().base_url + "/v2/token\",service=\"berth\"";
    Route r = parse_route(ex.path());
    if (r.kind == Route::Catalog) {
      value += ",scope=\"registry:catalog:*\"";
    } else if (!r.name.empty()) {
      auto m = ex.method();
      std::string actions = (m == bhttp::verb::get || m == bhttp::verb::head) ? "pull"
                            : m == bhttp::verb::delete_                       ? "delete"
                                                                              : "pull,push";
      value += ",scope=\"repository:" + r.name + ":" + actions + "\"";
    }
    res.header("WWW-Authenticate", value);
    return res;
  }

  void invalidate_repo(const std::string& name) {
    std::unique_lock lock(cache_mu);
    std::string prefix = name + "\n";
    for (auto it = manifest_cache.begin(); it != manifest_cache.end();) {
      it = it->first.rfind(prefix, 0) == 0 ? manifest_cache.erase(it) : std::next(it);
    }
  }

  void forget_repo(const std::string& name) {
    invalidate_repo(name);
    std::unique_lock lock(cache_mu);
    repo_cache.erase(name);
    link_cache.clear();
  }

  // Repository by name, NotFound with the message users need.
  awaitable<Result<std::shared_ptr<const store::Repository>>> find_repo(std::string name) {
    {
      std::shared_lock lock(cache_mu);
      auto it = repo_cache.find(name);
      if (it != repo_cache.end()) {
        co_return it->second;
      }
    }
    auto get_repo = [this, name] { return store.get_repository(name); };
    auto r = co_await run_blocking(pool, std::move(get_repo));
    if (!r) {
      co_return r.error();
    }
    auto ptr = std::make_shared<const store::Repository>(std::move(*r));
    std::unique_lock lock(cache_mu);
    repo_cache[name] = ptr;
    co_return ptr;
  }

  // The one sentence for a push into a repository that does not exist (and may not be
  // auto-created).
  static Error repository_missing(const std::string& name) {
    return Error(Errc::NotFound, "repository " + name +
                                     " does not exist; create it with: berth repo create " + name);
  }

  // Blocking: creates a repository on first push (auto_create_repositories). An AlreadyExists
  // from a racing creator is success.
  Status auto_create_repository(const std::string& name) {
    store::Repository repo;
    repo.name = name;
    repo.created_at = now_unix();
    auto c = store.create_repository(repo);
    if (!c && c.error().code() != Errc::AlreadyExists) {
      return c.error();
    }
    log->info("repository auto-created repo={}", name);
    return ok();
  }

  // For writes: creates the repository when the config allows it.
  awaitable<Result<std::shared_ptr<const store::Repository>>> repo_for_push(std::string name) {
    auto r = co_await find_repo(name);
    if (r || r.error().code() != Errc::NotFound) {
      co_return r;
    }
    if (!opts.auto_create_repositories) {
      co_return repository_missing(name);
    }
    auto create_repo = [this, name] { return auto_create_repository(name); };
    auto c = co_await run_blocking(pool, std::move(create_repo));
    if (!c) {
      co_return c.error();
    }
    co_return co_await find_repo(name);
  }

  awaitable<Result<int64_t>> linked_size(int64_t repo_id, std::string digest) {
    std::string key = std::to_string(repo_id) + "\n" + digest;
    {
      std::shared_lock lock(cache_mu);
      auto it = link_cache.find(key);
      if (it != link_cache.end()) {
        co_return it->second;
      }
    }
    auto get_link = [this, repo_id, digest] { return store.linked_blob_size(repo_id, digest); };
    auto r = co_await run_blocking(pool, std::move(get_link));
    if (r) {
      std::unique_lock lock(cache_mu);
      if (link_cache.size() > 100000) {
        link_cache.clear();
      }
      link_cache[key] = *r;
    }
    co_return r;
  }

  // Not coroutines, and no aggregate arguments: GCC 12 mis-copies aggregates (and lambdas)
  // that appear in a co_await expression. Callers pass an enum and a string.
  awaitable<void> fail(http::Exchange& ex, Oci code, std::string message) {
    if (code == Oci::Denied && opts.require_auth && !ex.context().authenticated) {
      // Anonymous and refused: tell the client how to authenticate instead.
      return ex.send(challenge(ex, "authentication required: " + message));
    }
    if (code == Oci::Unknown) {
      log->error("request failed id={} path={} error={}", ex.context().request_id, ex.path(),
                 message);
    }
    return ex.send(oci_error_response(OciFailure{code, std::move(message), {}}));
  }
  awaitable<void> fail_error(http::Exchange& ex, const Error& e, Oci not_found = Oci::NameUnknown) {
    note_no_space(e, ex.method_string() + " " + ex.path());
    OciFailure f = from_error(e, not_found);
    return fail(ex, f.code, std::move(f.message));
  }

  // A full disk needs an operator: one error line naming ENOSPC and the data dir (the
  // client only hears 507 and kInsufficientStorageMessage).
  void note_no_space(const Error& e, const std::string& doing) {
    if (e.code() == Errc::NoSpace) {
      log->error("storage full (ENOSPC): free space in data_dir={} while={} error={}",
                 opts.data_dir, doing, e.message());
    }
  }

  // One answer for a digest the registry cannot use, malformed or of an algorithm it does not
  // support: 400 DIGEST_INVALID, as the distribution spec asks for both.
  awaitable<void> fail_digest(http::Exchange& ex, const Error& e) {
    return fail(ex, Oci::DigestInvalid, e.message());
  }

  // ---- dispatch ---------------------------------------------------------------------------

  awaitable<void> handle(http::Exchange& ex) {
    Route r = parse_route(ex.path());
    auto m = ex.method();
    using V = bhttp::verb;
    if (r.kind == Route::Bad) {
      co_return co_await fail(ex, Oci::NameInvalid, "unknown registry path " + ex.path());
    }
    if (r.kind == Route::Base) {
      if (opts.require_auth && !ex.context().authenticated) {
        co_return co_await ex.send(challenge(ex, "authentication required"));
      }
      auto res = base_response(200);
      res.header("Content-Type", "application/json");
      res.body = "{}";
      co_return co_await ex.send(std::move(res));
    }
    if (r.kind == Route::Catalog) {
      if (m != V::get) {
        co_return co_await method_not_allowed(ex);
      }
      co_return co_await catalog(ex);
    }
    if (auto s = oci::validate_repository_name(r.name); !s) {
      co_return co_await fail(ex, Oci::NameInvalid, s.error().message());
    }
    switch (r.kind) {
      case Route::Tags:
        if (m == V::get) {
          co_return co_await list_tags(ex, r.name);
        }
        break;
      case Route::Manifest:
        if (m == V::get || m == V::head) {
          co_return co_await get_manifest(ex, r.name, r.arg);
        }
        if (m == V::put) {
          co_return co_await put_manifest(ex, r.name, r.arg);
        }
        if (m == V::delete_) {
          co_return co_await delete_manifest(ex, r.name, r.arg);
        }
        break;
      case Route::Blob:
        if (m == V::get || m == V::head) {
          co_return co_await get_blob(ex, r.name, r.arg);
        }
        if (m == V::delete_) {
          co_return co_await delete_blob(ex, r.name, r.arg);
        }
        break;
      case Route::UploadStart:
        if (m == V::post) {
          co_return co_await start_upload(ex, r.name);
        }
        break;
      case Route::UploadSession:
        if (m == V::get) {
          co_return co_await upload_status(ex, r.name, r.arg);
        }
        if (m == V::patch) {
          co_return co_await patch_upload(ex, r.name, r.arg);
        }
        if (m == V::put) {
          co_return co_await put_upload(ex, r.name, r.arg);
        }
        if (m == V::delete_) {
          co_return co_await cancel_upload(ex, r.name, r.arg);
        }
        break;
      case Route::Referrers:
        if (m == V::get) {
          co_return co_await referrers(ex, r.name, r.arg);
        }
        break;
      default:
        break;
    }
    co_await method_not_allowed(ex);
  }

  awaitable<void> method_not_allowed(http::Exchange& ex) {
    auto res = oci_error_response(
        {Oci::Unsupported, ex.method_string() + " is not supported on " + ex.path(), {}});
    res.status = 405;
    co_await ex.send(std::move(res));
  }

  // Authorizes and resolves the repository for a read; sends the error itself on failure.
  awaitable<std::shared_ptr<const store::Repository>> repo_for_read(http::Exchange& ex,
                                                                    std::string name,
                                                                    std::string action) {
    if (auto s = authorize(ex.context(), action, "repository/" + name); !s) {
      co_await fail(ex, Oci::Denied, s.error().message());
      co_return nullptr;
    }
    auto repo = co_await find_repo(name);
    if (!repo) {
      if (repo.error().code() == Errc::NotFound) {
        co_await fail(ex, Oci::NameUnknown, "repository " + name + " does not exist");
      } else {
        co_await fail_error(ex, repo.error());
      }
      co_return nullptr;
    }
    co_return *repo;
  }

  awaitable<std::shared_ptr<const store::Repository>> repo_for_write(http::Exchange& ex,
                                                                     std::string name) {
    if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
      co_await fail(ex, Oci::Denied, s.error().message());
      co_return nullptr;
    }
    auto repo = co_await repo_for_push(name);
    if (!repo) {
      co_await fail_error(ex, repo.error());
      co_return nullptr;
    }
    co_return *repo;
  }

  // ---- catalog and tags ------------------------------------------------------------------

  awaitable<void> catalog(http::Exchange& ex) {
    if (auto s = authorize(ex.context(), "registry:ListRepositories", "repository/*"); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto n = parse_n(ex.query("n"));
    if (!n) {
      co_return co_await fail(ex, Oci::Unsupported, "n must be a non-negative integer");
    }
    std::string last = ex.query("last").value_or("");
    int limit = *n < 0 ? -1 : *n + 1;
    auto list_repos = [this, last, limit] { return store.list_repositories(last, limit); };
    auto repos = co_await run_blocking(pool, std::move(list_repos));
    if (!repos) {
      co_return co_await fail_error(ex, repos.error());
    }
    Json names = Json::array();
    bool more = *n >= 0 && static_cast<int>(repos->size()) > *n;
    for (size_t i = 0; i < repos->size() && (*n < 0 || static_cast<int>(i) < *n); ++i) {
      names.push_back((*repos)[i].name);
    }
    auto res = base_response(200);
    res.header("Content-Type", "application/json");
    if (more && !names.empty()) {
      res.header("Link", "</v2/_catalog?n=" + std::to_string(*n) + "&last=" +
                             url::encode(names.back().get<std::string>()) + ">; rel=\"next\"");
    }
    res.body = Json{{"repositories", names}}.dump();
    co_await ex.send(std::move(res));
  }

  awaitable<void> list_tags(http::Exchange& ex, std::string name) {
    auto repo = co_await repo_for_read(ex, name, "registry:Pull");
    if (!repo) {
      co_return;
    }
    auto n = parse_n(ex.query("n"));
    if (!n) {
      co_return co_await fail(ex, Oci::Unsupported, "n must be a non-negative integer");
    }
    std::string last = ex.query("last").value_or("");
    int limit = *n < 0 ? -1 : *n + 1;
    int64_t id = repo->id;
    auto list_tags_job = [this, id, last, limit] { return store.list_tags(id, last, limit); };
    auto tags = co_await run_blocking(pool, std::move(list_tags_job));
    if (!tags) {
      co_return co_await fail_error(ex, tags.error());
    }
    bool more = *n >= 0 && static_cast<int>(tags->size()) > *n;
    if (more) {
      tags->resize(static_cast<size_t>(*n));
    }
    auto res = base_response(200);
    res.header("Content-Type", "application/json");
    if (more && !tags->empty()) {
      res.header("Link", "</v2/" + name + "/tags/list?n=" + std::to_string(*n) +
                             "&last=" + url::encode(tags->back()) + ">; rel=\"next\"");
    }
    res.body = Json{{"name", name}, {"tags", *tags}}.dump();
    co_await ex.send(std::move(res));
  }

  // ---- manifests -------------------------------------------------------------------------

  awaitable<Result<CachedManifestPtr>> lookup_manifest(const store::Repository& repo,
                                                       std::string reference) {
    std::string key = repo.name + "\n" + reference;
    {
      std::shared_lock lock(cache_mu);
      auto it = manifest_cache.find(key);
      if (it != manifest_cache.end()) {
        co_return it->second;
      }
    }
    int64_t id = repo.id;
    auto get_manifest_job = [this, id, reference] { return store.get_manifest(id, reference); };
    auto m = co_await run_blocking(pool, std::move(get_manifest_job));
    if (!m) {
      co_return m.error();
    }
    auto c = std::make_shared<const CachedManifest>(
        CachedManifest{m->digest, m->media_type, std::move(m->content), m->subject});
    std::unique_lock lock(cache_mu);
    if (manifest_cache.size() > 50000) {
      manifest_cache.clear();
    }
    manifest_cache[key] = c;
    co_return c;
  }

  awaitable<void> get_manifest(http::Exchange& ex, std::string name, std::string reference) {
    if (oci::is_digest_reference(reference)) {
      auto d = oci::Digest::parse(reference);
      if (!d) {
        co_return co_await fail_digest(ex, d.error());
      }
    } else if (auto t = oci::validate_tag(reference); !t) {
      co_return co_await fail(ex, Oci::TagInvalid, t.error().message());
    }
    auto repo = co_await repo_for_read(ex, name, "registry:Pull");
    if (!repo) {
      co_return;
    }
    auto m = co_await lookup_manifest(*repo, reference);
    if (!m) {
      if (m.error().code() == Errc::NotFound) {
        co_return co_await fail(ex, Oci::ManifestUnknown,
                                "manifest " + reference + " unknown to repository " + name);
      }
      co_return co_await fail_error(ex, m.error());
    }
    const auto& cm = **m;
    auto res = base_response(200);
    res.header("Content-Type", cm.media_type);
    res.header("Docker-Content-Digest", cm.digest);
    res.header("ETag", "\"" + cm.digest + "\"");
    res.body = cm.content;
    co_await ex.send(std::move(res));
  }

  // ---- what is recorded for a manifest (the /v2/ handler and push_local) -----------------

  // The image config to read the platform from: its hex, or "" for an index, an artifact or
  // a config too big to bother.
  static std::string platform_config_hex(const oci::Manifest& m) {
    if (m.is_index() || !m.config || m.config->size >= (1 << 20) || !m.artifact_type.empty()) {
      return "";
    }
    return m.config->digest.hex;
  }

  // The row stored for a manifest. config_bytes: the blob platform_config_hex() names, when
  // it could be read.
  static store::ManifestRecord manifest_record(const oci::Manifest& parsed,
                                               const oci::Digest& digest, std::string body,
                                               const std::optional<std::string>& config_bytes) {
    store::ManifestRecord rec;
    rec.digest = digest.str();
    rec.media_type = parsed.media_type;
    rec.size = static_cast<int64_t>(body.size());
    rec.artifact_type = parsed.artifact_type;
    rec.subject = parsed.subject ? parsed.subject->digest.str() : "";
    rec.annotations_json = parsed.annotations_json;
    rec.pushed_at = now_unix();
    rec.total_size = rec.size;
    if (parsed.is_index()) {
      std::string platforms;
      for (const auto& d : parsed.manifests) {
        rec.manifest_refs.push_back(d.digest.str());
        rec.total_size += d.size;
        if (d.platform && !d.platform->str().empty()) {
          platforms += (platforms.empty() ? "" : ",") + d.platform->str();
        }
      }
      rec.platform = platforms;
    } else {
      rec.blob_refs.push_back(parsed.config->digest.str());
      rec.total_size += parsed.config->size;
      for (const auto& d : parsed.layers) {
        rec.blob_refs.push_back(d.digest.str());
        rec.total_size += d.size;
      }
      if (config_bytes) {
        if (auto p = oci::parse_config_platform(*config_bytes)) {
          rec.platform = p->str();
        }
      }
    }
    rec.content = std::move(body);
    return rec;
  }

  // A descriptor of a manifest, by the field that holds it ("layers[2]").
  struct DescribedRef {
    std::string field;
    std::string digest;
    int64_t size = 0;
  };

  // What a manifest references and must exist with that size: config and layers of an
  // image, manifests of an index (a subject may be pushed later, so it is not included).
  static std::vector<DescribedRef> described_refs(const oci::Manifest& m) {
    std::vector<DescribedRef> out;
    auto add = [&](std::string field, const oci::Descriptor& d) {
      out.push_back(DescribedRef{std::move(field), d.digest.str(), d.size});
    };
    if (m.config) {
      add("config", *m.config);
    }
    for (size_t i = 0; i < m.layers.size(); ++i) {
      add("layers[" + std::to_string(i) + "]", m.layers[i]);
    }
    for (size_t i = 0; i < m.manifests.size(); ++i) {
      add("manifests[" + std::to_string(i) + "]", m.manifests[i]);
    }
    return out;
  }

  static std::string size_mismatch(const DescribedRef& r, int64_t actual) {
    return r.field + ".size: " + std::to_string(r.size) + " does not match " + r.digest +
           ", which is " + std::to_string(actual) + " bytes";
  }

  // Whether a push may not move `tag` once set: the repository's tags are immutable and no
  // mutable glob exempts it.
  static bool tag_is_immutable(const store::Repository& repo, const std::string& tag) {
    if (!repo.immutable_tags) {
      return false;
    }
    for (const auto& g : repo.mutable_tag_globs) {
      if (oci::glob_match(g, tag)) {
        return false;
      }
    }
    return true;
  }

  awaitable<void> put_manifest(http::Exchange& ex, std::string name, std::string reference) {
    std::string tag;
    std::optional<oci::Digest> want;
    if (oci::is_digest_reference(reference)) {
      auto d = oci::Digest::parse(reference);
      if (!d) {
        co_return co_await fail_digest(ex, d.error());
      }
      want = *d;
    } else {
      if (auto t = oci::validate_tag(reference); !t) {
        co_return co_await fail(ex, Oci::TagInvalid, t.error().message());
      }
      tag = reference;
    }
    auto repo = co_await repo_for_write(ex, name);
    if (!repo) {
      co_return;
    }
    auto body = co_await ex.read_all(opts.max_manifest_bytes);
    if (!body) {
      if (body.error().code() == Errc::ResourceExhausted) {
        co_return co_await fail(
            ex, Oci::ManifestTooBig,
            "manifest exceeds the limit of " + std::to_string(opts.max_manifest_bytes) + " bytes");
      }
      co_return co_await fail(ex, Oci::ManifestInvalid, body.error().message());
    }
    oci::Digest digest = oci::Digest::sha256_of(*body);
    if (want && *want != digest) {
      co_return co_await fail(ex, Oci::DigestInvalid,
                              "manifest digest " + digest.str() + " does not match " + want->str());
    }
    auto parsed = oci::parse_manifest(*body, ex.header(bhttp::field::content_type));
    if (!parsed) {
      co_return co_await fail(
          ex, parsed.error().code() == Errc::Unsupported ? Oci::Unsupported : Oci::ManifestInvalid,
          parsed.error().message());
    }
    // The image spec: a descriptor's size is that of the content it names. Checked field by
    // field (the store's transaction checks presence again, atomically).
    std::vector<DescribedRef> refs = described_refs(*parsed);
    for (size_t i = 0; i < refs.size(); ++i) {
      Result<int64_t> actual = Error(Errc::NotFound, "");
      if (parsed->is_index()) {
        auto child = co_await lookup_manifest(*repo, refs[i].digest);
        if (child) {
          actual = static_cast<int64_t>((*child)->content.size());
        } else {
          actual = child.error();
        }
      } else {
        actual = co_await linked_size(repo->id, refs[i].digest);
      }
      if (!actual && actual.error().code() == Errc::NotFound) {
        co_return co_await fail(
            ex, Oci::ManifestBlobUnknown,
            refs[i].field + ": " + refs[i].digest + " is not in repository " + name);
      }
      if (!actual) {
        co_return co_await fail_error(ex, actual.error());
      }
      if (*actual != refs[i].size) {
        co_return co_await fail(ex, Oci::SizeInvalid, size_mismatch(refs[i], *actual));
      }
    }
    // The platform of an image comes from its config blob.
    std::optional<std::string> config_bytes;
    std::string config_hex = platform_config_hex(*parsed);
    if (!config_hex.empty()) {
      auto read_config = [this, config_hex] { return fs::read_file(blobs.blob_path(config_hex)); };
      auto bytes = co_await run_blocking(pool, std::move(read_config));
      if (bytes) {
        config_bytes = std::move(*bytes);
      }
    }
    store::ManifestRecord rec = manifest_record(*parsed, digest, std::move(*body), config_bytes);
    bool immutable = !tag.empty() && tag_is_immutable(*repo, tag);
    auto repo_copy = *repo;
    auto store_manifest = [this, repo_copy, rec, tag, immutable] {
      return store.put_manifest(repo_copy, rec, tag, immutable);
    };
    auto put = co_await run_blocking(pool, std::move(store_manifest));
    if (!put) {
      const auto& e = put.error();
      if (e.code() == Errc::FailedPrecondition) {
        co_return co_await fail(ex, Oci::ManifestBlobUnknown, e.message());
      }
      if (e.code() == Errc::PermissionDenied) {
        co_return co_await fail(ex, Oci::Denied, e.message());
      }
      co_return co_await fail_error(ex, e);
    }
    invalidate_repo(name);
    log->info("manifest stored repo={} ref={} digest={} media_type={} bytes={}", name, reference,
              rec.digest, rec.media_type, rec.size);
    bus.publish(ImagePushed{name, tag, rec.digest, rec.media_type});
    auto res = base_response(201);
    res.header("Location", "/v2/" + name + "/manifests/" + rec.digest);
    res.header("Docker-Content-Digest", rec.digest);
    if (!rec.subject.empty()) {
      res.header("OCI-Subject", rec.subject);
    }
    co_await ex.send(std::move(res));
  }

  awaitable<void> delete_manifest(http::Exchange& ex, std::string name, std::string reference) {
    if (auto s = authorize(ex.context(), "registry:Delete", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto repo = co_await find_repo(name);
    if (!repo) {
      co_return co_await fail(ex, Oci::NameUnknown, repo.error().message());
    }
    int64_t id = (*repo)->id;
    Status s;
    if (oci::is_digest_reference(reference)) {
      auto d = oci::Digest::parse(reference);
      if (!d) {
        co_return co_await fail_digest(ex, d.error());
      }
      auto delete_manifest_job = [this, id, reference] {
        return store.delete_manifest(id, reference);
      };
      s = co_await run_blocking(pool, std::move(delete_manifest_job));
    } else {
      if (auto t = oci::validate_tag(reference); !t) {
        co_return co_await fail(ex, Oci::TagInvalid, t.error().message());
      }
      auto delete_tag_job = [this, id, reference] { return store.delete_tag(id, reference); };
      s = co_await run_blocking(pool, std::move(delete_tag_job));
    }
    if (!s) {
      co_return co_await fail_error(ex, s.error(), Oci::ManifestUnknown);
    }
    invalidate_repo(name);
    log->info("manifest deleted repo={} ref={}", name, reference);
    co_await ex.send(base_response(202));
  }

  awaitable<void> referrers(http::Exchange& ex, std::string name, std::string digest) {
    auto d = oci::Digest::parse(digest);
    if (!d) {
      co_return co_await fail_digest(ex, d.error());
    }
    auto repo = co_await repo_for_read(ex, name, "registry:Pull");
    if (!repo) {
      co_return;
    }
    int64_t id = repo->id;
    auto list_referrers = [this, id, digest] { return store.referrers(id, digest); };
    auto refs = co_await run_blocking(pool, std::move(list_referrers));
    if (!refs) {
      co_return co_await fail_error(ex, refs.error());
    }
    auto filter = ex.query("artifactType");
    Json list = Json::array();
    for (const auto& r : *refs) {
      if (filter && r.artifact_type != *filter) {
        continue;
      }
      Json desc = {{"mediaType", r.media_type}, {"digest", r.digest}, {"size", r.size}};
      if (!r.artifact_type.empty()) {
        desc["artifactType"] = r.artifact_type;
      }
      if (!r.annotations_json.empty()) {
        desc["annotations"] = Json::parse(r.annotations_json, nullptr, false);
      }
      list.push_back(std::move(desc));
    }
    auto res = base_response(200);
    res.header("Content-Type", std::string(oci::kOciIndex));
    if (filter) {
      res.header("OCI-Filters-Applied", "artifactType");
    }
    res.body =
        Json{{"schemaVersion", 2}, {"mediaType", oci::kOciIndex}, {"manifests", list}}.dump();
    co_await ex.send(std::move(res));
  }

  // ---- blobs -----------------------------------------------------------------------------

  awaitable<void> get_blob(http::Exchange& ex, std::string name, std::string digest) {
    auto d = oci::Digest::parse(digest);
    if (!d) {
      co_return co_await fail_digest(ex, d.error());
    }
    auto repo = co_await repo_for_read(ex, name, "registry:Pull");
    if (!repo) {
      co_return;
    }
    auto size = co_await linked_size(repo->id, digest);
    if (!size) {
      co_return co_await fail_error(ex, size.error(), Oci::BlobUnknown);
    }
    uint64_t total = static_cast<uint64_t>(*size);
    uint64_t from = 0, to = total == 0 ? 0 : total - 1;
    bool ranged = false;
    std::string range = ex.header(bhttp::field::range);
    if (!range.empty()) {
      // bytes=START-END | bytes=START- | bytes=-SUFFIX (one range only)
      bool good = range.rfind("bytes=", 0) == 0 && range.find(',') == std::string::npos;
      std::string spec = good ? range.substr(6) : "";
      auto dash = spec.find('-');
      good = good && dash != std::string::npos;
      auto num = [](const std::string& s, uint64_t& out) {
        if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
          return false;
        }
        out = std::stoull(s);
        return true;
      };
      uint64_t a = 0, b = 0;
      std::string sa = good ? spec.substr(0, dash) : "", sb = good ? spec.substr(dash + 1) : "";
      if (good && sa.empty() && num(sb, b)) {  // suffix
        good = b > 0 && total > 0;
        from = total - std::min(b, total);
        to = total - 1;
      } else if (good && num(sa, a) && (sb.empty() || num(sb, b))) {
        from = a;
        to = sb.empty() ? total - 1 : std::min(b, total - 1);
        good = a < total && (sb.empty() || a <= b);
      } else {
        good = false;
      }
      if (!good) {
        auto res = oci_error_response({Oci::BlobUnknown,
                                       "range " + range + " is not satisfiable for a blob of " +
                                           std::to_string(total) + " bytes",
                                       {}});
        res.status = 416;
        res.header("Content-Range", "bytes */" + std::to_string(total));
        co_return co_await ex.send(std::move(res));
      }
      ranged = true;
    }
    auto res = base_response(ranged ? 206 : 200);
    res.header("Content-Type", "application/octet-stream");
    res.header("Docker-Content-Digest", digest);
    res.header("ETag", "\"" + digest + "\"");
    res.header("Accept-Ranges", "bytes");
    res.header("Cache-Control", "max-age=31536000");
    if (ranged) {
      res.header("Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(to) + "/" +
                                      std::to_string(total));
    }
    uint64_t length = total == 0 ? 0 : to - from + 1;
    if (ex.method() == bhttp::verb::head) {
      res.content_length = length;
      res.head_only = true;
      co_return co_await ex.send(std::move(res));
    }
    auto fd = blobs.open_blob(d->hex);
    if (!fd) {
      log->error("blob file missing repo={} digest={} error={}", name, digest,
                 fd.error().message());
      co_return co_await fail(ex, Oci::BlobUnknown, "blob " + digest + " is missing from storage");
    }
    co_await ex.send_file(std::move(res), *fd, from, length);
    ::close(*fd);
  }

  awaitable<void> delete_blob(http::Exchange& ex, std::string name, std::string digest) {
    auto d = oci::Digest::parse(digest);
    if (!d) {
      co_return co_await fail_digest(ex, d.error());
    }
    if (auto s = authorize(ex.context(), "registry:Delete", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto repo = co_await find_repo(name);
    if (!repo) {
      co_return co_await fail(ex, Oci::NameUnknown, repo.error().message());
    }
    int64_t id = (*repo)->id;
    auto unlink = [this, id, digest] { return store.unlink_blob(id, digest); };
    auto s = co_await run_blocking(pool, std::move(unlink));
    if (!s) {
      co_return co_await fail_error(ex, s.error(), Oci::BlobUnknown);
    }
    {
      std::unique_lock lock(cache_mu);
      link_cache.erase(std::to_string(id) + "\n" + digest);
    }
    co_await ex.send(base_response(202));
  }

  // ---- uploads ---------------------------------------------------------------------------

  http::Response upload_accepted(const std::string& name, const Upload& up, unsigned status) {
    auto res = base_response(status);
    res.header("Location", "/v2/" + name + "/blobs/uploads/" + up.id);
    res.header("Docker-Upload-UUID", up.id);
    res.header("Range", "0-" + std::to_string(up.size == 0 ? 0 : up.size - 1));
    res.header("OCI-Chunk-Min-Length", "0");
    return res;
  }

  // Finds a session (reopening it from disk after a restart) and marks it busy.
  awaitable<Result<UploadPtr>> claim_upload(std::string name, std::string id) {
    if (!valid_upload_id(id)) {
      co_return Error(Errc::NotFound, "upload " + id + " unknown");
    }
    {
      std::lock_guard lock(sessions_mu);
      auto it = sessions.find(id);
      if (it != sessions.end()) {
        if (it->second->repo != name) {
          co_return Error(Errc::NotFound, "upload " + id + " unknown to repository " + name);
        }
        if (it->second->busy) {
          co_return Error(Errc::Conflict, "upload " + id + " is busy with another request");
        }
        it->second->busy = true;
        co_return it->second;
      }
    }
    auto up = std::make_shared<Upload>();
    up->id = id;
    auto reopen = [this, up] { return blobs.reopen_upload(up->id, up->repo, up->size); };
    auto fd = co_await run_blocking(pool, std::move(reopen));
    if (!fd) {
      co_return Error(Errc::NotFound, "upload " + id + " unknown");
    }
    up->fd = *fd;
    if (up->repo != name) {
      co_return Error(Errc::NotFound, "upload " + id + " unknown to repository " + name);
    }
    auto repo = co_await find_repo(name);
    if (!repo) {
      co_return repo.error();
    }
    up->repo_id = (*repo)->id;
    up->updated = now_unix();
    up->busy = true;
    std::lock_guard lock(sessions_mu);
    auto [it, inserted] = sessions.emplace(id, up);
    if (!inserted) {
      co_return Error(Errc::Conflict, "upload " + id + " is busy with another request");
    }
    co_return up;
  }

  void release(const UploadPtr& up) {
    std::lock_guard lock(sessions_mu);
    up->busy = false;
    up->updated = now_unix();
  }

  void drop(const UploadPtr& up) {
    {
      std::lock_guard lock(sessions_mu);
      sessions.erase(up->id);
    }
    blobs.remove_upload(up->id);
  }

  // Streams the request body onto the end of the upload. Two buffers: while one is written
  // and hashed on the pool, the next is read from the socket. On a broken body the bytes that
  // did arrive stay (a client may resume from the reported Range).
  static Status append_chunk(const UploadPtr& up, const char* data, size_t len) {
    size_t off = 0;
    while (off < len) {
      ssize_t n = ::write(up->fd, data + off, len - off);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        int e = errno;
        // Drop the part of this chunk that did land, so the file stays what the session (its
        // size and running hash) says it is.
        (void)::ftruncate(up->fd, static_cast<off_t>(up->size));
        return Error(e == ENOSPC || e == EDQUOT ? Errc::NoSpace : Errc::Internal,
                     "write upload " + up->id + ": " + std::strerror(e));
      }
      off += static_cast<size_t>(n);
    }
    if (up->hash) {
      up->hash->update(data, len);
    }
    up->size += len;
    return ok();
  }

  std::shared_ptr<BlockingJob<Status>> start_append(asio::any_io_executor ex, UploadPtr up,
                                                    std::shared_ptr<std::vector<char>> buf,
                                                    size_t len) {
    return BlockingJob<Status>::start(
        pool, std::move(ex), [up, buf, len] { return append_chunk(up, buf->data(), len); });
  }

  awaitable<Status> receive(http::Exchange& ex, UploadPtr up) {
    constexpr size_t kChunk = 1 << 20;
    auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<std::vector<char>> bufs[2] = {std::make_shared<std::vector<char>>(kChunk),
                                                  std::make_shared<std::vector<char>>(kChunk)};
    std::shared_ptr<BlockingJob<Status>> pending;
    std::optional<Error> broken;
    for (int turn = 0;; turn ^= 1) {
      char* data = bufs[turn]->data();
      size_t filled = 0;
      bool end = false;
      while (filled < kChunk) {
        auto n = co_await ex.read_some(data + filled, kChunk - filled);
        if (!n) {
          // Keep what did arrive (a client resumes from the Range we report), then fail.
          broken = n.error();
          end = true;
          break;
        }
        if (*n == 0) {
          end = true;
          break;
        }
        filled += *n;
      }
      if (pending) {
        Status s = co_await pending->wait();
        pending.reset();
        if (!s) {
          co_return s;
        }
      }
      if (filled > 0) {
        pending = start_append(executor, up, bufs[turn], filled);
      }
      if (end) {
        break;
      }
    }
    if (pending) {
      Status s = co_await pending->wait();
      if (!s) {
        co_return s;
      }
    }
    if (broken) {
      co_return *broken;
    }
    co_return ok();
  }

  awaitable<void> start_upload(http::Exchange& ex, std::string name) {
    auto repo = co_await repo_for_write(ex, name);
    if (!repo) {
      co_return;
    }
    auto mount = ex.query("mount");
    auto from = ex.query("from");
    if (mount && from) {
      auto d = oci::Digest::parse(*mount);
      if (d) {
        bool may_read = authorize(ex.context(), "registry:Pull", "repository/" + *from).has_value();
        // (No co_await inside ?: — GCC 12 double-frees its temporaries.)
        Result<std::shared_ptr<const store::Repository>> src =
            Error(Errc::PermissionDenied, "denied");
        if (may_read) {
          src = co_await find_repo(*from);
        }
        if (src) {
          auto size = co_await linked_size((*src)->id, *mount);
          if (size) {
            int64_t id = repo->id, sz = *size;
            std::string dg = *mount;
            auto link_mounted = [this, id, dg, sz] {
              return store.link_blob(id, dg, sz, now_unix());
            };
            auto l = co_await run_blocking(pool, std::move(link_mounted));
            if (l) {
              log->info("blob mounted repo={} from={} digest={}", name, *from, dg);
              auto res = base_response(201);
              res.header("Location", "/v2/" + name + "/blobs/" + dg);
              res.header("Docker-Content-Digest", dg);
              co_return co_await ex.send(std::move(res));
            }
          }
        }
      }
      // Not mountable (unknown, unreadable or invalid): fall back to a normal upload.
    }
    auto up = std::make_shared<Upload>();
    up->id = fs::random_uuid();
    up->repo = name;
    up->repo_id = repo->id;
    up->hash.emplace();
    up->updated = now_unix();
    auto create_upload = [this, up] { return blobs.create_upload(up->id, up->repo); };
    auto fd = co_await run_blocking(pool, std::move(create_upload));
    if (!fd) {
      co_return co_await fail_error(ex, fd.error());
    }
    up->fd = *fd;
    auto digest = ex.query("digest");
    if (digest) {
      // Monolithic upload: the body is the whole blob.
      up->busy = true;
      {
        std::lock_guard lock(sessions_mu);
        sessions.emplace(up->id, up);
      }
      co_return co_await finish_upload(ex, name, up, *digest);
    }
    {
      std::lock_guard lock(sessions_mu);
      sessions.emplace(up->id, up);
    }
    co_await ex.send(upload_accepted(name, *up, 202));
  }

  awaitable<void> upload_error(http::Exchange& ex, const Error& e) {
    if (e.code() == Errc::Conflict) {
      co_return co_await fail(ex, Oci::BlobUploadInvalid, e.message());
    }
    co_await fail_error(ex, e, Oci::BlobUploadUnknown);
  }

  awaitable<void> upload_status(http::Exchange& ex, std::string name, std::string id) {
    if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto up = co_await claim_upload(name, id);
    if (!up) {
      co_return co_await upload_error(ex, up.error());
    }
    release(*up);
    co_await ex.send(upload_accepted(name, **up, 204));
  }

  awaitable<void> patch_upload(http::Exchange& ex, std::string name, std::string id) {
    if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto claimed = co_await claim_upload(name, id);
    if (!claimed) {
      co_return co_await upload_error(ex, claimed.error());
    }
    UploadPtr up = *claimed;
    std::string cr = ex.header(bhttp::field::content_range);
    if (!cr.empty()) {
      // "START-END" (optionally "bytes START-END"): START must be where the upload stands.
      std::string spec = cr.rfind("bytes ", 0) == 0 ? cr.substr(6) : cr;
      spec = spec.substr(0, spec.find('/'));
      auto dash = spec.find('-');
      uint64_t a = 0, b = 0;
      bool good = dash != std::string::npos && dash > 0 && dash + 1 < spec.size() &&
                  spec.find_first_not_of("0123456789-") == std::string::npos;
      if (good) {
        a = std::stoull(spec.substr(0, dash));
        b = std::stoull(spec.substr(dash + 1));
        good = b >= a;
      }
      auto cl = ex.content_length();
      if (!good || a != up->size || (cl && *cl != b - a + 1)) {
        release(up);
        auto res =
            oci_error_response({Oci::RangeInvalid,
                                "chunk range " + cr + " does not continue the upload at byte " +
                                    std::to_string(up->size),
                                {}});
        res.header("Location", "/v2/" + name + "/blobs/uploads/" + up->id);
        res.header("Range", "0-" + std::to_string(up->size == 0 ? 0 : up->size - 1));
        res.header("Docker-Upload-UUID", up->id);
        co_return co_await ex.send(std::move(res));
      }
    }
    auto s = co_await receive(ex, up);
    release(up);
    if (!s) {
      if (s.error().code() == Errc::NoSpace) {
        // The session stays at its last whole chunk: a client may resume once space is freed.
        co_return co_await fail_error(ex, s.error());
      }
      co_return co_await fail(ex, Oci::BlobUploadInvalid, s.error().message());
    }
    co_await ex.send(upload_accepted(name, *up, 202));
  }

  awaitable<void> put_upload(http::Exchange& ex, std::string name, std::string id) {
    if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto claimed = co_await claim_upload(name, id);
    if (!claimed) {
      co_return co_await upload_error(ex, claimed.error());
    }
    auto digest = ex.query("digest");
    if (!digest) {
      release(*claimed);
      co_return co_await fail(ex, Oci::DigestInvalid, "the digest query parameter is required");
    }
    co_await finish_upload(ex, name, *claimed, *digest);
  }

  // Receives the final body, checks the digest and makes the blob visible, or drops the
  // session: a failed finish never leaves anything behind.
  awaitable<void> finish_upload(http::Exchange& ex, std::string name, UploadPtr up,
                                std::string digest_text) {
    auto d = oci::Digest::parse(digest_text);
    if (!d) {
      drop(up);
      co_return co_await fail_digest(ex, d.error());
    }
    auto s = co_await receive(ex, up);
    if (!s) {
      drop(up);
      if (s.error().code() == Errc::NoSpace) {
        co_return co_await fail_error(ex, s.error());
      }
      co_return co_await fail(ex, Oci::BlobUploadInvalid,
                              "upload " + up->id + " failed: " + s.error().message());
    }
    std::string actual;
    if (up->hash) {
      actual = up->hash->hex();
    } else {
      auto rehash = [this, up] { return blobs.hash_upload(up->id); };
      auto h = co_await run_blocking(pool, std::move(rehash));
      if (!h) {
        drop(up);
        co_return co_await fail_error(ex, h.error());
      }
      actual = *h;
    }
    if (actual != d->hex) {
      drop(up);
      co_return co_await fail(ex, Oci::DigestInvalid,
                              "blob digest sha256:" + actual + " does not match " + digest_text +
                                  " (" + std::to_string(up->size) + " bytes)");
    }
    std::string hex = d->hex, dg = d->str();
    int64_t size = static_cast<int64_t>(up->size), repo_id = up->repo_id;
    {
      // Close before the rename so nothing can append to the committed file.
      ::close(up->fd);
      up->fd = -1;
    }
    auto commit = [this, up, hex, dg, size, repo_id]() -> Status {
      std::lock_guard lock(stripe(hex));
      BERTH_TRY(blobs.commit_upload(up->id, hex));
      return link_committed(repo_id, dg, hex, size);
    };
    auto c = co_await run_blocking(pool, std::move(commit));
    {
      std::lock_guard lock(sessions_mu);
      sessions.erase(up->id);
    }
    if (!c) {
      blobs.remove_upload(up->id);
      co_return co_await fail_error(ex, c.error());
    }
    log->info("blob committed repo={} digest={} bytes={}", name, dg, size);
    auto res = base_response(201);
    res.header("Location", "/v2/" + name + "/blobs/" + dg);
    res.header("Docker-Content-Digest", dg);
    co_await ex.send(std::move(res));
  }

  awaitable<void> cancel_upload(http::Exchange& ex, std::string name, std::string id) {
    if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
      co_return co_await fail(ex, Oci::Denied, s.error().message());
    }
    auto up = co_await claim_upload(name, id);
    if (!up) {
      co_return co_await upload_error(ex, up.error());
    }
    drop(*up);
    co_await ex.send(base_response(204));
  }

  // Blocking, under the digest's stripe: links a blob file just renamed into place. When the
  // row cannot be written (a full disk), a file no row knows is removed at once rather than
  // left for gc.
  Status link_committed(int64_t repo_id, const std::string& digest, const std::string& hex,
                        int64_t size) {
    Status s = store.link_blob(repo_id, digest, size, now_unix());
    if (!s) {
      auto known = store.blob_size(digest);
      if (!known && known.error().code() == Errc::NotFound) {
        blobs.remove_blob(hex);
      }
    }
    return s;
  }

  // ---- maintenance -----------------------------------------------------------------------

  awaitable<int64_t> expire_uploads() {
    int64_t cutoff = now_unix() - opts.upload_ttl.count();
    std::vector<std::string> stale;
    {
      std::lock_guard lock(sessions_mu);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (!it->second->busy && it->second->updated < cutoff) {
          stale.push_back(it->first);
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
    }
    auto sweep_uploads = [this, stale, cutoff]() -> int64_t {
      int64_t removed = 0;
      std::unordered_set<std::string> live;
      {
        std::lock_guard lock(sessions_mu);
        for (auto& [id, _] : sessions) {
          live.insert(id);
        }
      }
      for (const auto& e : blobs.list_uploads()) {
        bool is_stale = std::find(stale.begin(), stale.end(), e.name) != stale.end();
        if (is_stale || (!live.count(e.name) && e.mtime < cutoff)) {
          blobs.remove_upload(e.name);
          ++removed;
        } else if (!live.count(e.name) && !e.has_data && blobs.remove_upload_if_broken(e.name)) {
          ++removed;  // a start that failed half-way: nothing can ever resume it
        }
      }
      if (removed > 0) {
        log->info("uploads expired count={}", removed);
      }
      return removed;
    };
    co_return co_await run_blocking(pool, std::move(sweep_uploads));
  }

  Result<GcReport> gc_blocking() {
    GcReport rep;
    int64_t cutoff = now_unix() - opts.gc_grace.count();
    BERTH_ASSIGN_OR_RETURN(auto candidates, store.unreferenced_blobs(cutoff));
    for (const auto& digest : candidates) {
      auto d = oci::Digest::parse(digest);
      if (!d) {
        continue;
      }
      std::lock_guard lock(stripe(d->hex));
      auto size = store.blob_size(digest);
      BERTH_ASSIGN_OR_RETURN(bool forgot, store.forget_blob_if_unreferenced(digest, cutoff));
      if (forgot) {
        blobs.remove_blob(d->hex);
        rep.blobs_deleted++;
        rep.bytes_freed += size ? *size : 0;
      }
    }
    {
      std::unique_lock lock(cache_mu);
      link_cache.clear();
    }
    // Files with no row (a crash between rename and commit, or a forgotten blob whose unlink
    // failed) are invisible; remove them once they are older than the grace period.
    BERTH_ASSIGN_OR_RETURN(auto known, store.all_blobs());
    std::unordered_set<std::string> known_hex;
    for (auto& [dg, _] : known) {
      known_hex.insert(dg.substr(dg.find(':') + 1));
    }
    for (const auto& f : blobs.list_blobs()) {
      if (known_hex.count(f.name) || f.mtime >= cutoff) {
        continue;
      }
      std::lock_guard lock(stripe(f.name));
      if (store.blob_size("sha256:" + f.name).has_value()) {
        continue;  // committed meanwhile
      }
      blobs.remove_blob(f.name);
      rep.orphan_files_deleted++;
      rep.bytes_freed += f.size;
    }
    return rep;
  }

  // ---- push_local ------------------------------------------------------------------------

  // Blocking (a worker thread, never an I/O thread): everything a push of each tag does, from
  // local files. Nothing is stored unless every check passes: authorization, the manifest,
  // the tags, and every new blob's bytes are verified before the first commit.
  Result<std::string> push_local(const std::string& principal, const LocalImage& image) {
    const std::string& name = image.repository;
    BERTH_TRY(oci::validate_repository_name(name));
    iam::Request req{principal, "registry:Push", "repository/" + name};
    // "system:build" is berth itself (a build project without a role).
    bool allowed = principal == "system:build" || authz->authorize(req).has_value();
    if (opts.audit != nullptr) {
      opts.audit->record(req, allowed, "local");
    }
    if (!allowed) {
      // "role/builder-web" reads as "role builder-web" in what the build log shows.
      iam::Request shown = req;
      if (auto slash = shown.principal.find('/'); slash != std::string::npos) {
        shown.principal[slash] = ' ';
      }
      log->info("local push denied repo={} principal={}", name, principal);
      return Error(Errc::PermissionDenied, iam::denial_message(shown));
    }
    if (image.tags.empty()) {
      return Error(Errc::InvalidArgument, "push of " + name + ": no tag to store the image under");
    }
    for (const auto& tag : image.tags) {
      BERTH_TRY(oci::validate_tag(tag));
    }
    if (image.manifest.size() > opts.max_manifest_bytes) {
      return Error(Errc::InvalidArgument, "manifest exceeds the limit of " +
                                              std::to_string(opts.max_manifest_bytes) + " bytes");
    }
    oci::Digest digest = oci::Digest::sha256_of(image.manifest);
    BERTH_ASSIGN_OR_RETURN(oci::Manifest parsed,
                           oci::parse_manifest(image.manifest, image.media_type));

    auto repo = store.get_repository(name);
    bool create = false;
    if (!repo) {
      if (repo.error().code() != Errc::NotFound) {
        return repo.error();
      }
      if (!opts.auto_create_repositories) {
        return repository_missing(name);
      }
      create = true;
    } else {
      // Immutable tags: refuse before anything is stored (the store checks again).
      for (const auto& tag : image.tags) {
        if (!tag_is_immutable(*repo, tag)) {
          continue;
        }
        auto cur = store.get_manifest(repo->id, tag);
        if (cur && cur->digest != digest.str()) {
          return Error(Errc::PermissionDenied, "tag " + tag + " is immutable in repository " +
                                                   name + " and already points at " + cur->digest);
        }
      }
    }

    // Stage the blobs the store lacks (hard link or copy, verified), then commit them all.
    struct Blob {
      std::string digest, hex, upload;  // upload: "" when the store had the blob already
      int64_t size = 0;
    };
    std::vector<Blob> todo;
    auto drop_staged = [&] {
      for (const auto& b : todo) {
        if (!b.upload.empty()) {
          blobs.remove_upload(b.upload);
        }
      }
    };
    int linked = 0, copied = 0;
    for (const auto& lb : image.blobs) {
      auto d = oci::Digest::parse(lb.digest);
      if (!d) {
        drop_staged();
        return d.error().with_context("blob " + lb.digest);
      }
      if (std::any_of(todo.begin(), todo.end(), [&](const Blob& b) { return b.hex == d->hex; })) {
        continue;
      }
      Blob b{d->str(), d->hex, "", lb.size};
      struct stat st {};
      if (::stat(blobs.blob_path(b.hex).c_str(), &st) == 0) {
        if (st.st_size != lb.size) {
          drop_staged();
          return Error(Errc::InvalidArgument, "blob " + b.digest + " is " +
                                                  std::to_string(st.st_size) + " bytes, not " +
                                                  std::to_string(lb.size));
        }
      } else {
        b.upload = fs::random_uuid();
        auto staged = blobs.stage_file(b.upload, lb.path, b.hex, lb.size);
        if (!staged) {
          drop_staged();
          return staged.error().with_context("blob " + b.digest);
        }
        ++(*staged ? linked : copied);
      }
      todo.push_back(std::move(b));
    }

    if (create) {
      if (auto c = auto_create_repository(name); !c) {
        drop_staged();
        return c.error();
      }
      forget_repo(name);
      repo = store.get_repository(name);
      if (!repo) {
        drop_staged();
        return repo.error();
      }
    }
    for (size_t i = 0; i < todo.size(); ++i) {
      Blob& b = todo[i];
      std::lock_guard lock(stripe(b.hex));
      Status s;
      if (!b.upload.empty()) {
        s = blobs.commit_upload(b.upload, b.hex);
        if (s) {
          b.upload.clear();
        }
      } else if (::access(blobs.blob_path(b.hex).c_str(), F_OK) != 0) {
        // Collected between the check and now (it had no manifest): rare, and a retry stores it.
        s = Error(Errc::Unavailable,
                  "blob " + b.digest + " was garbage-collected meanwhile: retry");
      }
      if (s) {
        s = link_committed(repo->id, b.digest, b.hex, b.size);
      }
      if (!s) {
        for (size_t k = i; k < todo.size(); ++k) {
          if (!todo[k].upload.empty()) {
            blobs.remove_upload(todo[k].upload);
          }
        }
        return s.error().with_context("push of " + name);
      }
    }

    for (const auto& r : described_refs(parsed)) {
      if (parsed.is_index()) {
        continue;  // builds push images; an index's children are checked by the store
      }
      auto actual = store.blob_size(r.digest);
      if (actual && *actual != r.size) {
        return Error(Errc::InvalidArgument, "push of " + name + ": " + size_mismatch(r, *actual));
      }
    }

    std::optional<std::string> config_bytes;
    if (std::string hex = platform_config_hex(parsed); !hex.empty()) {
      if (auto bytes = fs::read_file(blobs.blob_path(hex))) {
        config_bytes = std::move(*bytes);
      }
    }
    store::ManifestRecord rec = manifest_record(parsed, digest, image.manifest, config_bytes);
    for (const auto& tag : image.tags) {
      auto put = store.put_manifest(*repo, rec, tag, tag_is_immutable(*repo, tag));
      invalidate_repo(name);
      if (!put) {
        return put.error().with_context("push of " + name + ":" + tag);
      }
      log->info("manifest stored repo={} ref={} digest={} media_type={} bytes={} principal={}",
                name, tag, rec.digest, rec.media_type, rec.size, principal);
      // As a push does, tag by tag (EventBus is thread-safe; subscribers must not block).
      bus.publish(ImagePushed{name, tag, rec.digest, rec.media_type});
    }
    log->info("local push done repo={} digest={} tags={} blobs_linked={} blobs_copied={}", name,
              rec.digest, image.tags.size(), linked, copied);
    return rec.digest;
  }
};

Registry::Registry(Options opts, store::MetadataStore& store, BlockingPool& pool,
                   iam::AuthorizerPtr authorizer, EventBus& bus)
    : impl_(std::make_unique<Impl>(std::move(opts), store, pool, std::move(authorizer), bus)) {}

Registry::~Registry() = default;

Result<std::string> Registry::blob_file(const std::string& digest) const {
  auto d = oci::Digest::parse(digest);
  if (!d) {
    return d.error();
  }
  std::string path = impl_->blobs.blob_path(d->hex);
  if (::access(path.c_str(), R_OK) != 0) {
    return Error(Errc::NotFound, "blob " + digest + " is not in the registry");
  }
  return path;
}

Status Registry::init() { return impl_->blobs.init(); }

Result<std::string> Registry::push_local(const std::string& principal, const LocalImage& image) {
  return impl_->push_local(principal, image);
}

awaitable<void> Registry::handle(http::Exchange& ex) { return impl_->handle(ex); }

awaitable<Result<store::Repository>> Registry::create_repository(http::RequestContext ctx,
                                                                 RepositorySpec spec) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:CreateRepository", "repository/" + spec.name));
  BERTH_CO_TRY(oci::validate_repository_name(spec.name));
  if (!spec.immutable_tags && !spec.mutable_tag_globs.empty()) {
    co_return Error(Errc::InvalidArgument, "mutable tag globs only apply with immutable tags");
  }
  for (const auto& g : spec.mutable_tag_globs) {
    if (g.empty() || g.size() > 128) {
      co_return Error(Errc::InvalidArgument, "invalid mutable tag glob '" + g + "'");
    }
  }
  store::Repository repo;
  repo.name = spec.name;
  repo.immutable_tags = spec.immutable_tags;
  repo.mutable_tag_globs = spec.mutable_tag_globs;
  repo.created_at = now_unix();
  auto* impl = impl_.get();
  auto create_repo = [impl, repo] { return impl->store.create_repository(repo); };
  auto r = co_await run_blocking(impl->pool, std::move(create_repo));
  if (!r) {
    impl->note_no_space(r.error(), "create repository " + spec.name);
  }
  if (r) {
    impl->forget_repo(spec.name);
    impl->log->info("repository created repo={} immutable_tags={} principal={}", spec.name,
                    spec.immutable_tags, ctx.principal);
  }
  co_return r;
}

awaitable<Result<std::vector<store::Repository>>> Registry::list_repositories(
    http::RequestContext ctx) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:ListRepositories", "repository/*"));
  auto* impl = impl_.get();
  auto list_repos = [impl] { return impl->store.list_repositories("", -1); };
  co_return co_await run_blocking(impl->pool, std::move(list_repos));
}

awaitable<Status> Registry::delete_repository(http::RequestContext ctx, std::string name) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:DeleteRepository", "repository/" + name));
  auto* impl = impl_.get();
  auto delete_repo = [impl, name] { return impl->store.delete_repository(name); };
  auto s = co_await run_blocking(impl->pool, std::move(delete_repo));
  if (!s) {
    impl->note_no_space(s.error(), "delete repository " + name);
  }
  impl->forget_repo(name);
  if (s) {
    impl->log->info("repository deleted repo={} principal={}", name, ctx.principal);
  }
  co_return s;
}

awaitable<Result<std::vector<store::ImageSummary>>> Registry::list_images(http::RequestContext ctx,
                                                                          std::string repo) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:DescribeImages", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto* impl = impl_.get();
  int64_t id = (*r)->id;
  auto list_images_job = [impl, id] { return impl->store.list_images(id); };
  co_return co_await run_blocking(impl->pool, std::move(list_images_job));
}

awaitable<Status> Registry::delete_image(http::RequestContext ctx, std::string repo,
                                         std::string reference) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:Delete", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto* impl = impl_.get();
  int64_t id = (*r)->id;
  Status s;
  if (oci::is_digest_reference(reference)) {
    if (auto d = oci::Digest::parse(reference); !d) {
      // Malformed or of another algorithm: a bad argument either way, as on /v2/.
      co_return Error(Errc::InvalidArgument, d.error().message());
    }
    auto delete_manifest_job = [impl, id, reference] {
      return impl->store.delete_manifest(id, reference);
    };
    s = co_await run_blocking(impl->pool, std::move(delete_manifest_job));
  } else {
    BERTH_CO_TRY(oci::validate_tag(reference));
    auto delete_tag_job = [impl, id, reference] { return impl->store.delete_tag(id, reference); };
    s = co_await run_blocking(impl->pool, std::move(delete_tag_job));
  }
  if (!s) {
    impl->note_no_space(s.error(), "delete image " + repo + ":" + reference);
  }
  impl->invalidate_repo(repo);
  co_return s;
}

awaitable<Result<GcReport>> Registry::gc(http::RequestContext ctx) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:GarbageCollect", "repository/*"));
  int64_t uploads = co_await impl_->expire_uploads();
  auto* impl = impl_.get();
  auto collect = [impl] { return impl->gc_blocking(); };
  auto r = co_await run_blocking(impl->pool, std::move(collect));
  if (r) {
    r->uploads_removed = uploads;
    impl->log->info("gc done blobs_deleted={} orphan_files={} bytes_freed={} uploads_removed={}",
                    r->blobs_deleted, r->orphan_files_deleted, r->bytes_freed, uploads);
  }
  co_return r;
}

awaitable<int64_t> Registry::expire_uploads() { return impl_->expire_uploads(); }

Result<FsckReport> Registry::fsck(const std::string& data_dir, store::MetadataStore& store) {
  FsckReport rep;
  FsBlobStore blobs(data_dir, false);
  BERTH_ASSIGN_OR_RETURN(auto known, store.all_blobs());
  std::unordered_set<std::string> known_hex;
  for (const auto& [digest, size] : known) {
    auto d = oci::Digest::parse(digest);
    if (!d) {
      rep.problems.push_back("blob row has an invalid digest: " + digest);
      continue;
    }
    known_hex.insert(d->hex);
    rep.blobs_checked++;
    auto h = blobs.hash_blob(d->hex);
    if (!h) {
      rep.problems.push_back("blob " + digest +
                             " is recorded but its file is unreadable: " + h.error().message());
      continue;
    }
    if (*h != d->hex) {
      rep.problems.push_back("blob " + digest + " content hashes to sha256:" + *h);
    }
    struct stat st {};
    if (::stat(blobs.blob_path(d->hex).c_str(), &st) == 0 && st.st_size != size) {
      rep.problems.push_back("blob " + digest + " is " + std::to_string(st.st_size) +
                             " bytes, recorded as " + std::to_string(size));
    }
  }
  for (const auto& f : blobs.list_blobs()) {
    if (!known_hex.count(f.name)) {
      auto h = blobs.hash_blob(f.name);
      if (h && *h != f.name) {
        rep.problems.push_back("unreferenced blob file " + f.name +
                               " content hashes to sha256:" + *h + " (gc will remove it)");
      }
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto manifests, store.all_manifests());
  for (const auto& m : manifests) {
    rep.manifests_checked++;
    auto d = oci::Digest::sha256_of(m.content);
    if (d.str() != m.digest) {
      rep.problems.push_back("manifest " + m.repository + "@" + m.digest + " content hashes to " +
                             d.str());
    }
  }
  return rep;
}

}  // namespace berth::registry
