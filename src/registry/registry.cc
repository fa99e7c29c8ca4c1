// SPDX-License-Identifier: Apache-2.0
// The /v2/ handlers' common ground (authorization, caches, errors, dispatch), catalog and tags,
// and the repository operations behind the control API. See registry_impl.h for the others.
#include "registry/registry.h"

#include <algorithm>

#include "common/fs.h"
#include "common/json.h"
#include "common/url.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

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

}  // namespace

Status Registry::Impl::authorize(const http::RequestContext& ctx, const std::string& action,
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
std::string Registry::Impl::token_scope(const std::string& action, const std::string& resource) {
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
http::Response Registry::Impl::challenge(const http::Exchange& ex, const std::string& message) {
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

void Registry::Impl::invalidate_repo(const std::string& name) {
  std::unique_lock lock(cache_mu);
  std::string prefix = name + "\n";
  for (auto it = manifest_cache.begin(); it != manifest_cache.end();) {
    it = it->first.rfind(prefix, 0) == 0 ? manifest_cache.erase(it) : std::next(it);
  }
}

void Registry::Impl::forget_repo(const std::string& name) {
  invalidate_repo(name);
  std::unique_lock lock(cache_mu);
  repo_cache.erase(name);
  link_cache.clear();
}

// Repository by name, NotFound with the message users need.
awaitable<Result<std::shared_ptr<const store::Repository>>> Registry::Impl::find_repo(
    std::string name) {
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
Error Registry::Impl::repository_missing(const std::string& name) {
  return Error(Errc::NotFound,
               "repository " + name + " does not exist; create it with: berth repo create " + name);
}

// Blocking: creates a repository on first push (auto_create_repositories). An AlreadyExists
// from a racing creator is success.
Status Registry::Impl::auto_create_repository(const std::string& name) {
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
awaitable<Result<std::shared_ptr<const store::Repository>>> Registry::Impl::repo_for_push(
    std::string name) {
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

awaitable<Result<int64_t>> Registry::Impl::linked_size(int64_t repo_id, std::string digest) {
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
awaitable<void> Registry::Impl::fail(http::Exchange& ex, Oci code, std::string message) {
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

awaitable<void> Registry::Impl::fail_error(http::Exchange& ex, const Error& e, Oci not_found) {
  note_no_space(e, ex.method_string() + " " + ex.path());
  if (backend_unavailable_message(e) != nullptr) {
    // The metadata store or S3 away: from_error tells the client only that much; the host,
    // port, bucket and key the error names go to the log.
    log->warn("request failed: backend unavailable id={} path={} error={}", ex.context().request_id,
              ex.path(), e.message());
  }
  OciFailure f = from_error(e, not_found);
  return fail(ex, f.code, std::move(f.message));
}

// A full disk needs an operator: one error line naming ENOSPC and the data dir (the
// client only hears 507 and kInsufficientStorageMessage).
void Registry::Impl::note_no_space(const Error& e, const std::string& doing) {
  if (e.code() == Errc::NoSpace) {
    log->error("storage full (ENOSPC): free space in data_dir={} while={} error={}", opts.data_dir,
               doing, e.message());
  }
}

// One answer for a digest the registry cannot use, malformed or of an algorithm it does not
// support: 400 DIGEST_INVALID, as the distribution spec asks for both.
awaitable<void> Registry::Impl::fail_digest(http::Exchange& ex, const Error& e) {
  return fail(ex, Oci::DigestInvalid, e.message());
}

awaitable<void> Registry::Impl::handle(http::Exchange& ex) {
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

awaitable<void> Registry::Impl::method_not_allowed(http::Exchange& ex) {
  auto res = oci_error_response(
      {Oci::Unsupported, ex.method_string() + " is not supported on " + ex.path(), {}});
  res.status = 405;
  co_await ex.send(std::move(res));
}

// Authorizes and resolves the repository for a read; sends the error itself on failure.
awaitable<std::shared_ptr<const store::Repository>> Registry::Impl::repo_for_read(
    http::Exchange& ex, std::string name, std::string action) {
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

awaitable<std::shared_ptr<const store::Repository>> Registry::Impl::repo_for_delete(
    http::Exchange& ex, std::string name) {
  if (auto s = authorize(ex.context(), "registry:Delete", "repository/" + name); !s) {
    co_await fail(ex, Oci::Denied, s.error().message());
    co_return nullptr;
  }
  auto repo = co_await find_repo(name);
  if (!repo) {
    co_await fail_error(ex, repo.error());
    co_return nullptr;
  }
  co_return *repo;
}

awaitable<std::shared_ptr<const store::Repository>> Registry::Impl::repo_for_digest(
    http::Exchange& ex, std::string name, std::string digest) {
  if (auto d = oci::Digest::parse(digest); !d) {
    co_await fail_digest(ex, d.error());
    co_return nullptr;
  }
  co_return co_await repo_for_read(ex, std::move(name), "registry:Pull");
}

awaitable<std::shared_ptr<const store::Repository>> Registry::Impl::repo_for_write(
    http::Exchange& ex, std::string name) {
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

awaitable<void> Registry::Impl::catalog(http::Exchange& ex) {
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

Registry::Registry(Options opts, store::MetadataStore& store, BlockingPool& pool,
                   iam::AuthorizerPtr authorizer, EventBus& bus)
    : impl_(std::make_unique<Impl>(std::move(opts), store, pool, std::move(authorizer), bus)) {}

Registry::~Registry() = default;

Result<std::string> Registry::blob_file(const std::string& digest) const {
  auto d = oci::Digest::parse(digest);
  if (!d) {
    return d.error();
  }
  auto path = impl_->blobs.local_file(d->hex);
  if (!path && path.error().code() == Errc::NotFound) {
    return Error(Errc::NotFound, "blob " + digest + " is not in the registry");
  }
  return path;
}

std::string Registry::metrics_text() const { return impl_->blobs.metrics_text(); }

Result<std::string> Registry::Impl::read_blob(const std::string& hex) {
  BERTH_ASSIGN_OR_RETURN(std::string path, blobs.local_file(hex));
  return fs::read_file(path);
}

Status Registry::init() {
  BERTH_TRY(impl_->blobs.init());
  BERTH_TRY(impl_->load_upstreams());
  return impl_->load_replications();
}

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
  auto delete_repo = [impl, name]() -> Status {
    // Its manifests, for the replication rules with --deletes.
    std::vector<store::ImageSummary> images;
    if (auto rec = impl->store.get_repository(name); rec) {
      if (auto listed = impl->store.list_images(rec->id); listed) {
        images = std::move(*listed);
      }
    }
    BERTH_TRY(impl->store.delete_repository(name));
    for (const auto& image : images) {
      impl->note_change(name, "", image.digest, true);
    }
    // Its lifecycle rules go with it: a new repository of the same name starts without them.
    if (auto s = impl->store.delete_object("lifecycle", name);
        !s && s.error().code() != Errc::NotFound) {
      impl->log->warn("lifecycle rules of deleted repository kept repo={} error={}", name,
                      s.error().message());
    }
    return ok();
  };
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
  if (oci::is_digest_reference(reference)) {
    if (auto d = oci::Digest::parse(reference); !d) {
      // Malformed or of another algorithm: a bad argument either way, as on /v2/.
      co_return Error(Errc::InvalidArgument, d.error().message());
    }
  } else {
    BERTH_CO_TRY(oci::validate_tag(reference));
  }
  auto delete_job = [impl, repo, id, reference] {
    return impl->delete_reference(repo, id, reference);
  };
  Status s = co_await run_blocking(impl->pool, std::move(delete_job));
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

}  // namespace berth::registry
