// SPDX-License-Identifier: Apache-2.0
// The pull-through cache: a repository under an upstream's prefix is filled from the upstream
// on first use. A manifest is fetched, its digest verified, and stored (partial: its blobs come
// when asked for); a tag is looked up again once its TTL has passed, and served stale, with a
// Warning header, when the upstream cannot answer. A blob is fetched once however many clients
// ask for it at once, and every one of them is sent the bytes as they arrive; it becomes a
// blob of the store only after its digest checked.
#include <fcntl.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// The upstream's own words: the first OCI error's code and message, or the start of the body.
std::string upstream_words(const http::ClientResponse& r) {
  auto j = Json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object()) {
    const auto& e = j["errors"][0];
    std::string code = e.value("code", std::string());
    std::string message = e.value("message", std::string());
    return code + (message.empty() ? "" : ": " + message);
  }
  return r.body.substr(0, 200);
}

// 404 -> NotFound, 429 -> ResourceExhausted, anything else -> Unavailable; each naming the
// upstream, what was asked and its status.
Error upstream_status_error(const Upstream& up, const http::ClientResponse& r,
                            const std::string& what) {
  std::string words = upstream_words(r);
  std::string text = up.describe() + " answered " + std::to_string(r.status) + " for " + what +
                     (words.empty() ? "" : " (" + words + ")");
  if (r.status == 404) {
    return Error(Errc::NotFound, text);
  }
  if (r.status == 429) {
    return Error(Errc::ResourceExhausted, text);
  }
  return Error(Errc::Unavailable, text);
}

bool platform_matches(const std::string& want, const oci::Platform& p) {
  // want: "os/arch[/variant]"
  size_t a = want.find('/');
  size_t b = want.find('/', a == std::string::npos ? a : a + 1);
  std::string os = want.substr(0, a);
  std::string arch =
      a == std::string::npos ? "" : want.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  std::string variant = b == std::string::npos ? "" : want.substr(b + 1);
  return p.os == os && p.architecture == arch &&
         (variant.empty() || p.variant.empty() || variant == p.variant);
}

std::string strip_params(std::string media_type) {
  size_t semi = media_type.find(';');
  if (semi != std::string::npos) {
    media_type.erase(semi);
  }
  while (!media_type.empty() && media_type.back() == ' ') {
    media_type.pop_back();
  }
  return media_type;
}

}  // namespace

bool Registry::Impl::tag_fresh(const std::string& name, const std::string& tag,
                               std::chrono::seconds ttl) {
  std::lock_guard lock(fresh_mu);
  auto it = tag_checked.find(name + "\n" + tag);
  return it != tag_checked.end() && now_unix() - it->second < ttl.count();
}

void Registry::Impl::mark_fresh(const std::string& name, const std::string& tag) {
  std::lock_guard lock(fresh_mu);
  if (tag_checked.size() > 100000) {
    tag_checked.clear();
  }
  tag_checked[name + "\n" + tag] = now_unix();
}

Result<std::shared_ptr<const store::Repository>> Registry::Impl::mirror_repo(
    const std::string& name) {
  auto repo = store.get_repository(name);
  if (!repo && repo.error().code() == Errc::NotFound) {
    BERTH_TRY(auto_create_repository(name));
    forget_repo(name);
    repo = store.get_repository(name);
  }
  if (!repo) {
    return repo.error();
  }
  return std::make_shared<const store::Repository>(std::move(*repo));
}

CachedManifestPtr Registry::Impl::local_manifest(const std::string& name,
                                                 const std::string& reference) {
  {
    std::shared_lock lock(cache_mu);
    auto it = manifest_cache.find(name + "\n" + reference);
    if (it != manifest_cache.end()) {
      return it->second;
    }
  }
  auto repo = store.get_repository(name);
  if (!repo) {
    return nullptr;
  }
  auto m = store.get_manifest(repo->id, reference);
  if (!m) {
    return nullptr;
  }
  return std::make_shared<const CachedManifest>(
      CachedManifest{m->digest, m->media_type, std::move(m->content), m->subject});
}

Result<CachedManifestPtr> Registry::Impl::fetch_manifest(const UpstreamPtr& up,
                                                         const std::string& name,
                                                         const std::string& reference) {
  std::string remote = remote_repository(up->spec(), name);
  std::string what =
      "manifest " + remote + (oci::is_digest_reference(reference) ? "@" : ":") + reference;
  http::ClientRequest req;
  req.headers.emplace_back("Accept", kManifestAccept);
  req.max_body = opts.max_manifest_bytes;
  BERTH_ASSIGN_OR_RETURN(auto r,
                         up->request(req, "/v2/" + remote + "/manifests/" + reference, remote));
  if (r.status != 200) {
    return upstream_status_error(*up, r, what);
  }
  auto digest = oci::Digest::sha256_of(r.body);
  std::string claimed = r.header("docker-content-digest");
  bool wrong = (oci::is_digest_reference(reference) && digest.str() != reference) ||
               (claimed.rfind("sha256:", 0) == 0 && claimed != digest.str());
  if (wrong) {
    return Error(Errc::Unavailable, up->describe() + " sent " + what + " whose content hashes to " +
                                        digest.str() + ": refused");
  }
  auto parsed = oci::parse_manifest(r.body, strip_params(r.header("content-type")));
  if (!parsed) {
    return Error(Errc::Unavailable,
                 up->describe() + " sent an unusable " + what + ": " + parsed.error().message());
  }
  BERTH_ASSIGN_OR_RETURN(auto repo, mirror_repo(name));
  auto rec = manifest_record(*parsed, digest, r.body, std::nullopt);
  rec.partial = true;
  std::string tag = oci::is_digest_reference(reference) ? "" : reference;
  BERTH_TRY(store.put_manifest(*repo, rec, tag, false));
  invalidate_repo(name);
  if (!tag.empty()) {
    mark_fresh(name, tag);
  }
  log->info("pulled through manifest repo={} reference={} digest={} upstream={}", name, reference,
            digest.str(), up->spec().name);
  return std::make_shared<const CachedManifest>(
      CachedManifest{digest.str(), rec.media_type, std::move(r.body), rec.subject});
}

Result<CachedManifestPtr> Registry::Impl::manifest_through(const UpstreamPtr& up,
                                                           const std::string& name,
                                                           const std::string& reference,
                                                           const http::RequestContext* ctx,
                                                           std::string* stale) {
  bool by_digest = oci::is_digest_reference(reference);
  CachedManifestPtr local = local_manifest(name, reference);
  if (local && (by_digest || tag_fresh(name, reference, up->spec().ttl))) {
    return local;
  }
  if (local) {
    // Look the tag up again: a HEAD is enough when it still names what is cached.
    std::string remote = remote_repository(up->spec(), name);
    http::ClientRequest head;
    head.method = "HEAD";
    head.headers.emplace_back("Accept", kManifestAccept);
    auto r = up->request(head, "/v2/" + remote + "/manifests/" + reference, remote);
    Result<CachedManifestPtr> fresh = local;
    if (!r) {
      fresh = r.error();
    } else if (r->status == 200 && r->header("docker-content-digest") == local->digest) {
      mark_fresh(name, reference);
    } else if (r->status == 200) {
      // The tag moved upstream. Fetching what it names now is a pull through; a caller allowed
      // only what is cached gets the cached image, marked stale.
      Status may = ctx != nullptr
                       ? authorize(*ctx, "registry:PullThrough", "repository/" + name)
                       : ok();
      fresh = may ? fetch_manifest(up, name, reference) : Result<CachedManifestPtr>(may.error());
    } else {
      fresh = upstream_status_error(*up, *r, "manifest " + remote + ":" + reference);
    }
    if (fresh) {
      return fresh;
    }
    // The cached tag is still an answer: serve it, and say it may be stale.
    log->warn("serving stale tag repo={} tag={} digest={}: {}", name, reference, local->digest,
              fresh.error().message());
    if (stale != nullptr) {
      *stale = fresh.error().message();
    }
    return local;
  }
  if (ctx != nullptr) {
    BERTH_TRY(authorize(*ctx, "registry:PullThrough", "repository/" + name));
  }
  return fetch_manifest(up, name, reference);
}

Result<BlobFetchPtr> Registry::Impl::blob_through(const UpstreamPtr& up, const std::string& name,
                                                  const oci::Digest& digest,
                                                  const http::RequestContext* ctx) {
  std::string dg = digest.str();
  if (auto cached = store.get_repository(name); cached && store.linked_blob_size(cached->id, dg)) {
    return BlobFetchPtr();
  }
  // Before anything is made: a caller allowed only what is cached creates no repository.
  if (ctx != nullptr) {
    BERTH_TRY(authorize(*ctx, "registry:PullThrough", "repository/" + name));
  }
  BERTH_ASSIGN_OR_RETURN(auto repo, mirror_repo(name));
  if (auto size = store.blob_size(dg); size) {
    // Already in berth under another repository: link it (as a cross-repository mount does).
    std::lock_guard lock(stripe(digest.hex));
    if (blobs.blob_size(digest.hex)) {
      BERTH_TRY(store.link_blob(repo->id, dg, *size, now_unix()));
      return BlobFetchPtr();
    }
  }
  std::lock_guard lock(fetch_mu);
  if (auto it = fetches.find(digest.hex); it != fetches.end()) {
    return it->second;  // someone is fetching it now: share their transfer
  }
  auto f = std::make_shared<BlobFetch>();
  f->digest = dg;
  f->hex = digest.hex;
  BERTH_ASSIGN_OR_RETURN(int wfd, open_fetch_file(*f, name));
  fetches[digest.hex] = f;
  int64_t repo_id = repo->id;
  asio::post(fetch_threads(),
             [this, up, name, repo_id, f, wfd] { run_fetch(up, name, repo_id, f, wfd); });
  return f;
}

void Registry::Impl::run_fetch(UpstreamPtr up, std::string name, int64_t repo_id, BlobFetchPtr f,
                               int wfd) {
  std::string remote = remote_repository(up->spec(), name);
  // The upstream's GET, its body handed to fill_fetch's sink piece by piece.
  auto source = [&](const storage::ByteSink& sink) -> Status {
    Status piece = ok();
    http::ClientRequest req;
    req.on_head = [&](const http::ClientResponse& r) {
      int64_t total = -1;
      std::string cl = r.header("content-length");
      if (!cl.empty() && cl.size() < 19 &&
          cl.find_first_not_of("0123456789") == std::string::npos) {
        total = std::stoll(cl);
      }
      std::lock_guard lock(f->mu);
      f->total = total;
      f->head_known = true;
      f->changed();
    };
    req.sink = [&](std::string_view data) {
      piece = sink(data.data(), data.size());
      return piece.has_value();
    };
    auto r = up->request(req, "/v2/" + remote + "/blobs/" + f->digest, remote);
    BERTH_TRY(piece);
    if (!r) {
      return r.error();
    }
    if (r->status != 200) {
      return upstream_status_error(*up, *r, "blob " + f->digest);
    }
    return ok();
  };
  Status s = stopping.load() ? Status(Error(Errc::Unavailable, "berthd is stopping"))
                             : fill_fetch(*f, wfd, source, up->describe(), stopping);
  ::close(wfd);
  uint64_t written = 0;
  if (s) {
    {
      std::lock_guard lock(f->mu);
      written = f->written;
    }
    // The clients may finish already (verified); the commit is the cache's business.
    std::lock_guard lock(stripe(f->hex));
    s = blobs.commit_upload(f->upload_id, f->hex);
    if (s) {
      s = link_committed(repo_id, f->digest, f->hex, static_cast<int64_t>(written));
    }
  }
  std::optional<Error> failure;
  if (!s) {
    failure = s.error();
    blobs.remove_upload(f->upload_id);
    note_no_space(*failure, "pull through blob " + f->digest);
    log->warn("pull-through blob failed repo={} digest={} error={}", name, f->digest,
              failure->message());
  } else {
    log->info("pulled through blob repo={} digest={} bytes={} upstream={}", name, f->digest,
              written, up->spec().name);
  }
  {
    std::lock_guard lock(fetch_mu);
    fetches.erase(f->hex);
  }
  f->finish(std::move(failure));
}

void Registry::Impl::stop_fetches() {
  stopping.store(true);  // running transfers stop at their next piece; queued ones fail at once
  std::unique_ptr<asio::thread_pool> running;
  {
    std::lock_guard lock(fetch_mu);
    running = std::move(fetch_pool);
  }
  if (running) {
    running->join();
  }
}

awaitable<void> Registry::Impl::fail_upstream(http::Exchange& ex, const Error& e, Oci not_found) {
  if (e.origin() != ErrorOrigin::None) {
    return fail_error(ex, e, not_found);  // berth's own store or storage, not the upstream
  }
  switch (e.code()) {
    case Errc::NotFound:
      return fail(ex, not_found, e.message());
    case Errc::PermissionDenied:
      return fail(ex, Oci::Denied, e.message());
    case Errc::ResourceExhausted:
      return fail(ex, Oci::TooManyRequests, e.message());
    case Errc::Unavailable:
    case Errc::Cancelled:
      return fail(ex, Oci::UpstreamFailed, e.message());
    default:
      return fail_error(ex, e, not_found);
  }
}

awaitable<void> Registry::Impl::get_manifest_through(http::Exchange& ex, UpstreamPtr up,
                                                     std::string name, std::string reference) {
  if (auto s = authorize(ex.context(), "registry:Pull", "repository/" + name); !s) {
    co_return co_await fail(ex, Oci::Denied, s.error().message());
  }
  auto stale = std::make_shared<std::string>();
  auto ctx = std::make_shared<http::RequestContext>(ex.context());
  auto job = [this, up, name, reference, ctx, stale] {
    return manifest_through(up, name, reference, ctx.get(), stale.get());
  };
  auto m = co_await run_blocking(pool, std::move(job));
  if (!m) {
    co_return co_await fail_upstream(ex, m.error(), Oci::ManifestUnknown);
  }
  const auto& cm = **m;
  auto res = base_response(200);
  res.header("Content-Type", cm.media_type);
  res.header("Docker-Content-Digest", cm.digest);
  res.header("ETag", "\"" + cm.digest + "\"");
  if (!stale->empty()) {
    res.header("Warning", "110 berth \"Response is Stale\"");
  }
  res.body = cm.content;
  co_await ex.send(std::move(res));
}

awaitable<void> Registry::Impl::get_blob_through(http::Exchange& ex, UpstreamPtr up,
                                                 std::string name, std::string digest) {
  auto d = oci::Digest::parse(digest);  // checked by get_blob
  if (auto s = authorize(ex.context(), "registry:Pull", "repository/" + name); !s) {
    co_return co_await fail(ex, Oci::Denied, s.error().message());
  }
  auto ctx = std::make_shared<http::RequestContext>(ex.context());
  oci::Digest dg = *d;
  auto job = [this, up, name, dg, ctx] { return blob_through(up, name, dg, ctx.get()); };
  auto f = co_await run_blocking(pool, std::move(job));
  if (!f) {
    co_return co_await fail_upstream(ex, f.error(), Oci::BlobUnknown);
  }
  if (!*f) {
    co_return co_await get_local_blob(ex, name, digest);  // linked now
  }
  std::shared_ptr<http::Response> head;  // the pull-through's own
  auto sent = co_await stream_fetch(ex, *f, head);
  if (!sent) {
    co_await fail_upstream(ex, sent.error(), Oci::BlobUnknown);
  }
}

bool Registry::pulls_through(const std::string& repository) {
  return impl_->upstream_for(repository) != nullptr;
}

Result<PulledImage> Registry::pull_image(const std::string& principal,
                                         const std::string& repository,
                                         const std::string& reference,
                                         const std::string& platform) {
  auto& d = *impl_;
  http::RequestContext ctx;
  ctx.principal = principal;
  ctx.authenticated = true;
  const http::RequestContext* who = principal == "system:build" ? nullptr : &ctx;
  if (who != nullptr) {
    BERTH_TRY(d.authorize(ctx, "registry:Pull", "repository/" + repository));
  }
  auto up = d.upstream_for(repository);
  if (!up) {
    auto m = d.local_manifest(repository, reference);
    if (!m) {
      return Error(Errc::NotFound,
                   "image " + repository + ":" + reference + " is not in berth's registry");
    }
    return PulledImage{repository, m->digest};
  }
  BERTH_ASSIGN_OR_RETURN(auto top, d.manifest_through(up, repository, reference, who, nullptr));
  BERTH_ASSIGN_OR_RETURN(auto parsed, oci::parse_manifest(top->content, top->media_type));
  if (parsed.is_index()) {
    const oci::Descriptor* pick = nullptr;
    for (const auto& c : parsed.manifests) {
      if (c.platform && platform_matches(platform, *c.platform)) {
        pick = &c;
        break;
      }
    }
    if (pick == nullptr) {
      return Error(Errc::FailedPrecondition,
                   "image " + repository + ":" + reference + " has no manifest for " + platform);
    }
    BERTH_ASSIGN_OR_RETURN(auto child,
                           d.manifest_through(up, repository, pick->digest.str(), who, nullptr));
    BERTH_ASSIGN_OR_RETURN(parsed, oci::parse_manifest(child->content, child->media_type));
  }
  std::vector<oci::Digest> wanted;
  if (parsed.config) {
    wanted.push_back(parsed.config->digest);
  }
  for (const auto& l : parsed.layers) {
    wanted.push_back(l.digest);
  }
  // Start every fetch, then wait for them all: layers arrive in parallel.
  std::vector<BlobFetchPtr> running;
  for (const auto& dg : wanted) {
    BERTH_ASSIGN_OR_RETURN(auto f, d.blob_through(up, repository, dg, who));
    if (f) {
      running.push_back(std::move(f));
    }
  }
  for (const auto& f : running) {
    std::unique_lock lock(f->mu);
    f->cv.wait(lock, [&] { return f->done; });
    if (f->failure) {
      return *f->failure;
    }
  }
  return PulledImage{repository, top->digest};
}

}  // namespace berth::registry
