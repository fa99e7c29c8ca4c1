// SPDX-License-Identifier: Apache-2.0
// Manifests and tags: GET/PUT/DELETE by tag or digest, the checks a manifest must pass, what is
// recorded for it, the tag list, and push_local (an image built inside berth stored as a push
// would).
#include <sys/stat.h>

#include <algorithm>

#include "common/fs.h"
#include "common/json.h"
#include "common/url.h"
#include "registry/registry_impl.h"

namespace berth::registry {

awaitable<Result<CachedManifestPtr>> Registry::Impl::lookup_manifest(const store::Repository& repo,
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

awaitable<void> Registry::Impl::get_manifest(http::Exchange& ex, std::string name,
                                             std::string reference) {
  if (oci::is_digest_reference(reference)) {
    auto d = oci::Digest::parse(reference);
    if (!d) {
      co_return co_await fail_digest(ex, d.error());
    }
  } else if (auto t = oci::validate_tag(reference); !t) {
    // Neither a tag nor a digest names nothing: 404, as distribution answers.
    co_return co_await fail(
        ex, Oci::ManifestUnknown,
        "manifest " + reference + " unknown to repository " + name + ": " + t.error().message());
  }
  if (auto up = upstream_for(name)) {
    co_return co_await get_manifest_through(ex, std::move(up), name, reference);
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

// The image config to read the platform from: its hex, or "" for an index, an artifact or
// a config too big to bother.
std::string Registry::Impl::platform_config_hex(const oci::Manifest& m) {
  if (m.is_index() || !m.config || m.config->size >= (1 << 20) || !m.artifact_type.empty()) {
    return "";
  }
  return m.config->digest.hex;
}

// The row stored for a manifest. config_bytes: the blob platform_config_hex() names, when
// it could be read.
store::ManifestRecord Registry::Impl::manifest_record(
    const oci::Manifest& parsed, const oci::Digest& digest, std::string body,
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

// What a manifest references and must exist with that size: config and layers of an
// image, manifests of an index (a subject may be pushed later, so it is not included).
std::vector<Registry::Impl::DescribedRef> Registry::Impl::described_refs(const oci::Manifest& m) {
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

std::string Registry::Impl::size_mismatch(const DescribedRef& r, int64_t actual) {
  return r.field + ".size: " + std::to_string(r.size) + " does not match " + r.digest +
         ", which is " + std::to_string(actual) + " bytes";
}

// Whether a push may not move `tag` once set: the repository's tags are immutable and no
// mutable glob exempts it.
bool Registry::Impl::tag_is_immutable(const store::Repository& repo, const std::string& tag) {
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

awaitable<void> Registry::Impl::put_manifest(http::Exchange& ex, std::string name,
                                             std::string reference) {
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
    auto read_config = [this, config_hex] { return read_blob(config_hex); };
    auto bytes = co_await run_blocking(pool, std::move(read_config));
    if (bytes) {
      config_bytes = std::move(*bytes);
    }
  }
  store::ManifestRecord rec = manifest_record(*parsed, digest, std::move(*body), config_bytes);
  bool immutable = !tag.empty() && tag_is_immutable(*repo, tag);
  auto repo_copy = *repo;
  auto store_manifest = [this, repo_copy, rec, tag, immutable]() -> Status {
    BERTH_TRY(store.put_manifest(repo_copy, rec, tag, immutable));
    note_change(repo_copy.name, tag, rec.digest, false);  // replication, before the 201
    return ok();
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

awaitable<void> Registry::Impl::delete_manifest(http::Exchange& ex, std::string name,
                                                std::string reference) {
  auto repo = co_await repo_for_delete(ex, name);
  if (!repo) {
    co_return;
  }
  int64_t id = repo->id;
  if (oci::is_digest_reference(reference)) {
    if (auto d = oci::Digest::parse(reference); !d) {
      co_return co_await fail_digest(ex, d.error());
    }
  } else if (auto t = oci::validate_tag(reference); !t) {
    co_return co_await fail(ex, Oci::TagInvalid, t.error().message());
  }
  auto delete_job = [this, name, id, reference] { return delete_reference(name, id, reference); };
  Status s = co_await run_blocking(pool, std::move(delete_job));
  if (!s) {
    co_return co_await fail_error(ex, s.error(), Oci::ManifestUnknown);
  }
  invalidate_repo(name);
  log->info("manifest deleted repo={} ref={}", name, reference);
  co_await ex.send(base_response(202));
}

awaitable<void> Registry::Impl::list_tags(http::Exchange& ex, std::string name) {
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

// Blocking (a worker thread, never an I/O thread): everything a push of each tag does, from
// local files. Nothing is stored unless every check passes: authorization, the manifest,
// the tags, and every new blob's bytes are verified before the first commit.
Result<std::string> Registry::Impl::push_local(const std::string& principal,
                                               const LocalImage& image) {
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
        return Error(Errc::PermissionDenied, "tag " + tag + " is immutable in repository " + name +
                                                 " and already points at " + cur->digest);
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
    if (auto stored = blobs.blob_size(b.hex)) {
      if (*stored != lb.size) {
        drop_staged();
        return Error(Errc::InvalidArgument, "blob " + b.digest + " is " + std::to_string(*stored) +
                                                " bytes, not " + std::to_string(lb.size));
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
    } else if (!blobs.blob_size(b.hex)) {
      // Collected between the check and now (it had no manifest): rare, and a retry stores it.
      s = Error(Errc::Unavailable, "blob " + b.digest + " was garbage-collected meanwhile: retry");
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
    if (auto bytes = read_blob(hex)) {
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
    note_change(name, tag, rec.digest, false);
    log->info("manifest stored repo={} ref={} digest={} media_type={} bytes={} principal={}", name,
              tag, rec.digest, rec.media_type, rec.size, principal);
    // As a push does, tag by tag (EventBus is thread-safe; subscribers must not block).
    bus.publish(ImagePushed{name, tag, rec.digest, rec.media_type});
  }
  log->info("local push done repo={} digest={} tags={} blobs_linked={} blobs_copied={}", name,
            rec.digest, image.tags.size(), linked, copied);
  return rec.digest;
}

}  // namespace berth::registry
