// SPDX-License-Identifier: Apache-2.0
// Blobs (GET with ranges, DELETE) and upload sessions: start, mount, chunks, commit, cancel.
// An upload's bytes stream to uploads/<id>/data and are hashed on the way; a blob becomes
// visible only once its digest checked out and its row is written.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

// How long a redirected pull's presigned URL stays valid: long enough for a slow client to
// start (and, with Range, resume) the transfer.
constexpr std::chrono::seconds kPullRedirectTtl{20 * 60};

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

}  // namespace

awaitable<void> Registry::Impl::get_blob(http::Exchange& ex, std::string name, std::string digest) {
  if (auto d = oci::Digest::parse(digest); !d) {
    co_return co_await fail_digest(ex, d.error());
  }
  if (auto up = upstream_for(name)) {
    co_return co_await get_blob_through(ex, std::move(up), name, digest);
  }
  co_await get_local_blob(ex, name, digest);
}

awaitable<void> Registry::Impl::get_local_blob(http::Exchange& ex, std::string name,
                                               std::string digest) {
  auto repo = co_await repo_for_digest(ex, name, digest);
  if (!repo) {
    co_return;
  }
  const std::string hex = digest.substr(digest.find(':') + 1);  // repo_for_digest checked it
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
  if (opts.redirect_pulls) {
    // The client fetches the bytes from the blob storage itself (docker, skopeo and podman
    // follow a 307 for blobs, and send their Range there).
    auto url = blobs.presigned_url(hex, kPullRedirectTtl);
    if (url) {
      auto redirect = base_response(307);
      redirect.header("Location", *url);
      redirect.header("Docker-Content-Digest", digest);
      co_return co_await ex.send(std::move(redirect));
    }
    log->warn("pull redirect unavailable, sending the blob repo={} digest={} error={}", name,
              digest, url.error().message());
  }
  // Off the I/O thread: a local file opens at once; on S3 a blob without a local copy starts
  // (or joins) the transfer that makes one, and is sent from it as the bytes land; a range of
  // one (a client resuming a pull) is fetched alone, not after all the bytes before it.
  std::optional<std::pair<uint64_t, uint64_t>> bytes;
  if (ranged && length > 0) {
    bytes.emplace(from, length);
  }
  auto open = [this, name, hex, total, bytes] {
    return open_or_fetch(name, hex, static_cast<int64_t>(total), bytes);
  };
  auto rd = co_await run_blocking(pool, std::move(open));
  if (!rd) {
    co_return co_await fail_unreadable(ex, name, digest, rd.error());
  }
  if (rd->fetch && (!ranged || rd->range_only)) {
    auto head = std::make_shared<http::Response>(std::move(res));
    head->content_length = total;
    auto sent = co_await stream_fetch(ex, rd->fetch, head);
    if (!sent) {
      co_await fail_unreadable(ex, name, digest, sent.error());
    }
    co_return;
  }
  int fd = rd->fd;
  if (rd->fetch) {
    // A range of a blob still arriving: sent from the copy once all of it checked.
    auto waited = co_await wait_fetch(rd->fetch);
    if (!waited) {
      co_return co_await fail_unreadable(ex, name, digest, waited.error());
    }
    fd = rd->fetch->read_fd;  // the fetch's own: it closes it
  }
  co_await ex.send_file(std::move(res), fd, from, length);
  if (!rd->fetch) {
    ::close(fd);
  }
}

awaitable<void> Registry::Impl::fail_unreadable(http::Exchange& ex, const std::string& name,
                                                const std::string& digest, const Error& e) {
  if (e.code() != Errc::NotFound) {
    log->warn("blob unreadable repo={} digest={} storage={} error={}", name, digest, blobs.driver(),
              e.message());
    return fail(ex, Oci::Unavailable, "blob storage is unavailable right now: try again later");
  }
  log->error("blob file missing repo={} digest={} error={}", name, digest, e.message());
  return fail(ex, Oci::BlobUnknown, "blob " + digest + " is missing from storage");
}

awaitable<void> Registry::Impl::delete_blob(http::Exchange& ex, std::string name,
                                            std::string digest) {
  auto d = oci::Digest::parse(digest);
  if (!d) {
    co_return co_await fail_digest(ex, d.error());
  }
  auto repo = co_await repo_for_delete(ex, name);
  if (!repo) {
    co_return;
  }
  int64_t id = repo->id;
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

http::Response Registry::Impl::upload_accepted(const std::string& name, const Upload& up,
                                               unsigned status) {
  auto res = base_response(status);
  res.header("Location", "/v2/" + name + "/blobs/uploads/" + up.id);
  res.header("Docker-Upload-UUID", up.id);
  res.header("Range", "0-" + std::to_string(up.size == 0 ? 0 : up.size - 1));
  res.header("OCI-Chunk-Min-Length", "0");
  return res;
}

// Finds a session (reopening it from disk after a restart) and marks it busy.
awaitable<Result<UploadPtr>> Registry::Impl::claim_upload(std::string name, std::string id) {
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

void Registry::Impl::release(const UploadPtr& up) {
  std::lock_guard lock(sessions_mu);
  up->busy = false;
  up->updated = now_unix();
}

void Registry::Impl::drop(const UploadPtr& up) {
  {
    std::lock_guard lock(sessions_mu);
    sessions.erase(up->id);
  }
  blobs.remove_upload(up->id);
}

// Streams the request body onto the end of the upload. Two buffers: while one is written
// and hashed on the pool, the next is read from the socket. On a broken body the bytes that
// did arrive stay (a client may resume from the reported Range).
Status Registry::Impl::append_chunk(const UploadPtr& up, const char* data, size_t len) {
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
  blobs.upload_grew(up->id, up->size);  // S3: parts go out while the body streams
  return ok();
}

std::shared_ptr<BlockingJob<Status>> Registry::Impl::start_append(asio::any_io_executor ex,
                                                                  UploadPtr up,
                                                                  std::shared_ptr<char[]> buf,
                                                                  size_t len) {
  return BlockingJob<Status>::start(
      pool, std::move(ex), [this, up, buf, len] { return append_chunk(up, buf.get(), len); });
}

awaitable<Status> Registry::Impl::receive(http::Exchange& ex, UploadPtr up) {
  constexpr size_t kChunk = 1 << 20;
  auto executor = co_await asio::this_coro::executor;
  // Buffers as big as the body (when its length is known), at most kChunk, made when first
  // needed and never cleared: a 32 KB layer used to get two zeroed 1 MiB buffers, and clearing
  // them (memset and the page faults under it) was half of berthd's CPU in a push of small
  // layers.
  std::optional<uint64_t> length = ex.content_length();
  if (length && *length == 0) {
    co_return ok();
  }
  size_t size = length ? static_cast<size_t>(std::min<uint64_t>(*length, kChunk)) : kChunk;
  std::shared_ptr<char[]> bufs[2];
  std::shared_ptr<BlockingJob<Status>> pending;
  std::optional<Error> broken;
  uint64_t received = 0;
  for (int turn = 0;; turn ^= 1) {
    if (!bufs[turn]) {
      bufs[turn] = std::make_shared_for_overwrite<char[]>(size);
    }
    char* data = bufs[turn].get();
    size_t filled = 0;
    bool end = false;
    while (filled < size) {
      auto n = co_await ex.read_some(data + filled, size - filled);
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
    received += filled;
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
    if (end || (length && received >= *length)) {
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

awaitable<void> Registry::Impl::start_upload(http::Exchange& ex, std::string name) {
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

awaitable<void> Registry::Impl::upload_error(http::Exchange& ex, const Error& e) {
  if (e.code() == Errc::Conflict) {
    co_return co_await fail(ex, Oci::BlobUploadInvalid, e.message());
  }
  co_await fail_error(ex, e, Oci::BlobUploadUnknown);
}

awaitable<UploadPtr> Registry::Impl::claim_for_push(http::Exchange& ex, std::string name,
                                                    std::string id) {
  if (auto s = authorize(ex.context(), "registry:Push", "repository/" + name); !s) {
    co_await fail(ex, Oci::Denied, s.error().message());
    co_return nullptr;
  }
  auto up = co_await claim_upload(name, id);
  if (!up) {
    co_await upload_error(ex, up.error());
    co_return nullptr;
  }
  co_return *up;
}

awaitable<void> Registry::Impl::upload_status(http::Exchange& ex, std::string name,
                                              std::string id) {
  UploadPtr up = co_await claim_for_push(ex, name, id);
  if (!up) {
    co_return;
  }
  release(up);
  co_await ex.send(upload_accepted(name, *up, 204));
}

awaitable<void> Registry::Impl::patch_upload(http::Exchange& ex, std::string name, std::string id) {
  UploadPtr up = co_await claim_for_push(ex, name, id);
  if (!up) {
    co_return;
  }
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
    if (s.error().code() == Errc::NoSpace || s.error().origin() != ErrorOrigin::None) {
      // Not the client's fault: a full disk, or blob storage away. The session stays at its
      // last whole chunk, and a client may resume once space is freed or storage is back.
      co_return co_await fail_error(ex, s.error());
    }
    co_return co_await fail(ex, Oci::BlobUploadInvalid, s.error().message());
  }
  co_await ex.send(upload_accepted(name, *up, 202));
}

awaitable<void> Registry::Impl::put_upload(http::Exchange& ex, std::string name, std::string id) {
  UploadPtr claimed = co_await claim_for_push(ex, name, id);
  if (!claimed) {
    co_return;
  }
  auto digest = ex.query("digest");
  if (!digest) {
    release(claimed);
    co_return co_await fail(ex, Oci::DigestInvalid, "the digest query parameter is required");
  }
  co_await finish_upload(ex, name, claimed, *digest);
}

// Receives the final body, checks the digest and makes the blob visible, or drops the
// session: a failed finish never leaves anything behind.
awaitable<void> Registry::Impl::finish_upload(http::Exchange& ex, std::string name, UploadPtr up,
                                              std::string digest_text) {
  auto d = oci::Digest::parse(digest_text);
  if (!d) {
    drop(up);
    co_return co_await fail_digest(ex, d.error());
  }
  auto s = co_await receive(ex, up);
  if (!s) {
    drop(up);
    if (s.error().code() == Errc::NoSpace || s.error().origin() != ErrorOrigin::None) {
      co_return co_await fail_error(ex, s.error());  // not the client's fault
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

awaitable<void> Registry::Impl::cancel_upload(http::Exchange& ex, std::string name,
                                              std::string id) {
  UploadPtr up = co_await claim_for_push(ex, name, id);
  if (!up) {
    co_return;
  }
  drop(up);
  co_await ex.send(base_response(204));
}

// Blocking, under the digest's stripe: links a blob file just renamed into place. When the
// row cannot be written (a full disk), a file no row knows is removed at once rather than
// left for gc.
Status Registry::Impl::link_committed(int64_t repo_id, const std::string& digest,
                                      const std::string& hex, int64_t size) {
  Status s = store.link_blob(repo_id, digest, size, now_unix());
  if (!s) {
    auto known = store.blob_size(digest);
    if (!known && known.error().code() == Errc::NotFound) {
      (void)blobs.remove_blob(hex);  // if this fails too, gc removes the orphan later
    }
  }
  return s;
}

}  // namespace berth::registry
