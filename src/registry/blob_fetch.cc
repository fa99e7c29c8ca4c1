// SPDX-License-Identifier: Apache-2.0
// Blobs arriving into a growing local file (blob_fetch.h): the transfer (fill_fetch), sending
// one to clients while it grows (stream_fetch, wait_fetch), and the cold read of a blob whose
// bytes are only in remote blob storage (S3), which fills the blob's local copy that way.
#include "registry/blob_fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/sha256.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

// Sent in pieces of at most this much, so a fast fetch does not hold one client's sendfile.
constexpr size_t kFetchSendPiece = 4 * 1024 * 1024;
// Should a wake-up be lost, a waiting request looks again after this long.
constexpr auto kFetchPollFallback = std::chrono::milliseconds(100);
// Readers are woken when at least this much more is in the file, not for every piece: with
// libcurl's default 16 KiB pieces that had been 12,000 locks and wake-ups for a 200 MB image.
constexpr size_t kFetchPublishBytes = 1024 * 1024;
// A piece this big goes to the file as it is; smaller ones (a slow socket, a chunked body) are
// gathered to kFetchGatherBytes first, so that a write(2) moves that much. Gathering every
// piece (into 1 MiB) had been 11% of berthd's CPU in a cold pull-through of a 200 MB image, the
// copy and its page faults.
constexpr size_t kFetchDirectBytes = 64 * 1024;
constexpr size_t kFetchGatherBytes = 256 * 1024;

Status write_fetch_piece(int fd, const char* data, size_t len, const std::string& digest) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Error(errno == ENOSPC ? Errc::NoSpace : Errc::Internal,
                   "writing blob " + digest + " locally: " + std::strerror(errno));
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return ok();
}

}  // namespace

void BlobFetch::changed() {
  cv.notify_all();
  for (auto& w : waiters) {
    if (auto t = w.lock()) {
      // Posted to the timer's own I/O thread, which runs nothing else meanwhile: the waiter
      // is suspended in async_wait by the time this runs.
      asio::post(t->get_executor(), [t] { t->cancel(); });
    }
  }
  waiters.clear();
}

void BlobFetch::finish(std::optional<Error> why) {
  std::lock_guard lock(mu);
  failure = std::move(why);
  done = true;
  head_known = true;
  changed();
}

BlobFetch::~BlobFetch() {
  if (read_fd >= 0) {
    ::close(read_fd);
  }
}

Status fill_fetch(BlobFetch& f, int wfd,
                  const std::function<Status(const storage::ByteSink&)>& source,
                  const std::string& from, const std::atomic<bool>& stop) {
  Sha256 hash;
  uint64_t written = 0;    // in the file
  uint64_t published = 0;  // announced to the readers
  std::string pending;     // received and hashed, gathered for the file
  auto write = [&](const char* data, size_t len) -> Status {
    BERTH_TRY(write_fetch_piece(wfd, data, len, f.digest));
    written += len;
    return ok();
  };
  auto flush = [&]() -> Status {
    BERTH_TRY(write(pending.data(), pending.size()));
    pending.clear();
    return ok();
  };
  auto publish = [&] {
    published = written;
    std::lock_guard lock(f.mu);
    f.written = written;
    f.head_known = true;
    f.changed();
  };
  storage::ByteSink sink = [&](const char* data, size_t len) -> Status {
    if (stop.load()) {
      return Error(Errc::Cancelled, "berthd is stopping");
    }
    int64_t total = -1;
    {
      std::lock_guard lock(f.mu);
      total = f.total;
    }
    if (total >= 0 && written + pending.size() + len > static_cast<uint64_t>(total)) {
      return Error(Errc::Unavailable, from + " sent more than the " + std::to_string(total) +
                                          " bytes of blob " + f.digest + ": refused");
    }
    hash.update(data, len);
    // Small pieces of a big blob are gathered into fewer writes; a big piece, or any piece of
    // a blob no bigger than one gathering, is written as it comes (copying a small blob into
    // a fresh buffer cost more than its one or two writes: 6% of berthd's CPU in a cold pull
    // of 50 x 32 KB blobs, mostly page faults).
    if (len >= kFetchDirectBytes ||
        (total >= 0 && total <= static_cast<int64_t>(kFetchGatherBytes))) {
      BERTH_TRY(flush());  // what was gathered goes first
      BERTH_TRY(write(data, len));
    } else {
      if (pending.capacity() < kFetchGatherBytes) {
        pending.reserve(kFetchGatherBytes);  // once, not a copy per doubling
      }
      pending.append(data, len);
      if (pending.size() >= kFetchGatherBytes) {
        BERTH_TRY(flush());
      }
    }
    if (written - published >= kFetchPublishBytes) {
      publish();
    }
    return ok();
  };
  BERTH_TRY(source(sink));
  BERTH_TRY(flush());
  if (written > published || published == 0) {
    publish();
  }
  int64_t total = -1;
  {
    std::lock_guard lock(f.mu);
    total = f.total;
  }
  if (hash.hex() != f.hex || (total >= 0 && static_cast<uint64_t>(total) != written)) {
    return Error(Errc::Unavailable, from + " sent " + std::to_string(written) + " bytes for blob " +
                                        f.digest + " that hash to sha256:" + hash.hex() +
                                        ": refused");
  }
  // Clients being sent it may finish now: the bytes are all there and verified. Keeping the
  // file (fsync, rename, a row) is the caller's business.
  std::lock_guard lock(f.mu);
  f.verified = true;
  f.changed();
  return ok();
}

asio::thread_pool& Registry::Impl::fetch_threads() {
  if (!fetch_pool) {
    fetch_pool = std::make_unique<asio::thread_pool>(
        static_cast<size_t>(std::max(1, opts.max_upstream_fetches)));
  }
  return *fetch_pool;
}

Result<Registry::Impl::LocalRead> Registry::Impl::open_or_fetch(
    const std::string& name, const std::string& hex, int64_t size,
    std::optional<std::pair<uint64_t, uint64_t>> range) {
  LocalRead out;
  // The common case, and the only one on fs: the bytes are here.
  auto fd = blobs.open_local(hex);
  if (fd || fd.error().code() != Errc::NotFound) {
    BERTH_ASSIGN_OR_RETURN(out.fd, std::move(fd));
    return out;
  }
  std::unique_lock lock(fetch_mu);
  if (auto it = cold_reads.find(hex); it != cold_reads.end()) {
    out.fetch = it->second;  // someone is copying it now: share their transfer
    return out;
  }
  if (stopping.load()) {
    return Error(Errc::Unavailable, "berthd is stopping");
  }
  BERTH_ASSIGN_OR_RETURN(auto copy, blobs.start_local_copy(hex));
  if (!copy) {
    lock.unlock();  // a local driver, or a copy that was completed meanwhile
    BERTH_ASSIGN_OR_RETURN(out.fd, blobs.open_blob(hex));
    return out;
  }
  auto f = std::make_shared<BlobFetch>();
  f->digest = "sha256:" + hex;
  f->hex = hex;
  if (range) {
    // A range alone (a client resuming a pull): fetched on its own, and no copy made of it.
    lock.unlock();
    (void)blobs.end_local_copy(hex, *copy, false);
    auto [from, length] = *range;
    f->total = static_cast<int64_t>(length);
    BERTH_ASSIGN_OR_RETURN(int wfd, open_fetch_file(*f, name));
    asio::post(fetch_threads(),
               [this, f, wfd, from, length] { run_range_read(f, wfd, from, length); });
    out.fetch = std::move(f);
    out.range_only = true;
    return out;
  }
  f->total = size;  // from the store: more bytes than that are refused as they come
  f->read_fd = ::open(copy->part.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->read_fd < 0) {
    Error e = Error(Errc::Internal, "cannot read back " + copy->part + ": " + std::strerror(errno));
    (void)blobs.end_local_copy(hex, *copy, false);
    return e;
  }
  cold_reads[hex] = f;
  storage::LocalCopy c = std::move(*copy);
  asio::post(fetch_threads(), [this, f, c] { run_cold_read(f, c); });
  out.fetch = std::move(f);
  return out;
}

void Registry::Impl::run_cold_read(BlobFetchPtr f, storage::LocalCopy copy) {
  auto source = [this, &f](const storage::ByteSink& sink) {
    return blobs.read_stored(f->hex, sink);
  };
  std::string from = std::string("blob storage (") + blobs.driver() + ")";
  Status s = fill_fetch(*f, copy.fd, source, from, stopping);
  Status kept = blobs.end_local_copy(f->hex, copy, s.has_value());
  if (!s) {
    log->warn("blob copy from storage failed digest={} storage={} error={}", f->digest,
              blobs.driver(), s.error().message());
  } else if (!kept) {
    // The clients got their verified bytes; only the copy is lost (the next read fetches it).
    note_no_space(kept.error(), "local copy of blob " + f->digest);
    log->warn("keeping the local copy failed digest={} error={}", f->digest,
              kept.error().message());
  } else {
    log->debug("blob copied from storage digest={} bytes={}", f->digest, f->written);
  }
  {
    std::lock_guard lock(fetch_mu);
    cold_reads.erase(f->hex);
  }
  f->finish(s ? std::optional<Error>() : std::optional<Error>(s.error()));
}

Result<int> Registry::Impl::open_fetch_file(BlobFetch& f, const std::string& repo) {
  f.upload_id = fs::random_uuid() + std::string(storage::kTransientUpload);
  BERTH_ASSIGN_OR_RETURN(int wfd, blobs.create_upload(f.upload_id, repo));
  f.read_fd = ::open(blobs.upload_data_path(f.upload_id).c_str(), O_RDONLY | O_CLOEXEC);
  if (f.read_fd < 0) {
    ::close(wfd);
    blobs.remove_upload(f.upload_id);
    return Error(Errc::Internal, "cannot read back upload " + f.upload_id);
  }
  return wfd;
}

void Registry::Impl::run_range_read(BlobFetchPtr f, int wfd, uint64_t from, uint64_t length) {
  uint64_t got = 0, published = 0;
  auto sink = [&](const char* data, size_t len) -> Status {
    if (stopping.load()) {
      return Error(Errc::Cancelled, "berthd is stopping");
    }
    if (got + len > length) {
      return Error(Errc::Unavailable,
                   "blob storage sent more than the range asked of " + f->digest);
    }
    BERTH_TRY(write_fetch_piece(wfd, data, len, f->digest));
    got += len;
    if (published == 0 || got - published >= kFetchPublishBytes || got == length) {
      std::lock_guard lock(f->mu);
      f->written = got;
      f->head_known = true;
      f->changed();
      published = got;
    }
    return ok();
  };
  Status s = blobs.read_stored_range(f->hex, from, length, sink);
  if (s && got != length) {
    s = Error(Errc::Unavailable, "blob storage sent " + std::to_string(got) + " of the " +
                                     std::to_string(length) + " bytes asked of " + f->digest);
  }
  ::close(wfd);
  blobs.remove_upload(f->upload_id);  // the readers keep the file open
  if (!s) {
    log->warn("blob range from storage failed digest={} storage={} error={}", f->digest,
              blobs.driver(), s.error().message());
  }
  {
    std::lock_guard lock(f->mu);
    f->written = got;
    f->verified = s.has_value();  // a range cannot be hashed: every byte asked for came
  }
  f->finish(s ? std::optional<Error>() : std::optional<Error>(s.error()));
}

awaitable<Status> Registry::Impl::wait_fetch(BlobFetchPtr f) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  beast::error_code ec;
  while (true) {
    {
      std::lock_guard lock(f->mu);
      if (f->verified || (f->done && !f->failure)) {
        co_return ok();
      }
      if (f->done) {
        co_return *f->failure;
      }
      timer->expires_after(kFetchPollFallback);
      f->waiters.push_back(timer);
    }
    co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

awaitable<Status> Registry::Impl::stream_fetch(http::Exchange& ex, BlobFetchPtr f,
                                               std::shared_ptr<http::Response> head) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  // With f->mu held: have the fetch's next change (or the fallback, should a wake-up be lost)
  // end the next wait. (No lambdas are passed into co_await expressions: GCC 12.)
  auto arm = [&] {
    timer->expires_after(kFetchPollFallback);
    f->waiters.push_back(timer);
  };
  beast::error_code ec;
  // The source's answer first: its length goes in our head.
  bool is_head = ex.method() == bhttp::verb::head;
  while (true) {
    {
      std::lock_guard lock(f->mu);
      if (f->head_known && (f->total >= 0 || f->done || !is_head)) {
        break;
      }
      arm();
    }
    co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
  }
  int64_t total = -1;
  std::optional<Error> failure;
  {
    std::lock_guard lock(f->mu);
    total = f->total;
    failure = f->verified ? std::nullopt : f->failure;
    if ((f->done || f->verified) && !failure) {
      total = static_cast<int64_t>(f->written);
    }
  }
  if (failure) {
    co_return *failure;  // nothing sent yet: the caller answers
  }
  http::Response res;
  if (head) {
    res = std::move(*head);
  } else {
    res = base_response(200);
    res.header("Content-Type", "application/octet-stream");
    res.header("Docker-Content-Digest", f->digest);
    res.header("ETag", "\"" + f->digest + "\"");
  }
  if (is_head) {
    res.content_length = static_cast<uint64_t>(std::max<int64_t>(total, 0));
    res.head_only = true;
    co_await ex.send(std::move(res));
    co_return ok();
  }
  if (total >= 0) {
    res.content_length = static_cast<uint64_t>(total);
  }
  if (!co_await ex.send_head(std::move(res))) {
    co_return ok();
  }
  uint64_t sent = 0;
  while (true) {
    uint64_t limit = 0;
    bool complete = false;
    {
      std::lock_guard lock(f->mu);
      complete = f->verified || (f->done && !f->failure);
      failure = complete ? std::nullopt : f->failure;
      limit = f->written;
      // A sized body is complete with its last byte: that one waits for the digest to check.
      if (!complete && total > 0 && limit >= static_cast<uint64_t>(total)) {
        limit = static_cast<uint64_t>(total) - 1;
      }
      if (!failure && !complete && sent >= limit) {
        arm();
      }
    }
    if (failure) {
      co_return ok();  // the body stops short and the connection closes: the client sees it
    }
    if (sent < limit) {
      uint64_t n = std::min<uint64_t>(limit - sent, kFetchSendPiece);
      if (total >= 0) {
        // Sized: the file's pages go to the socket without a copy through berth.
        if (!co_await ex.write_file(f->read_fd, sent, n)) {
          co_return ok();
        }
      } else {
        std::string piece(n, '\0');
        ssize_t got = ::pread(f->read_fd, piece.data(), piece.size(), static_cast<off_t>(sent));
        if (got <= 0) {
          co_return ok();
        }
        piece.resize(static_cast<size_t>(got));
        n = static_cast<uint64_t>(got);
        if (!co_await ex.write_chunk(std::move(piece))) {
          co_return ok();
        }
      }
      sent += n;
      continue;
    }
    if (complete) {
      break;
    }
    co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
  }
  co_await ex.end_body();
  co_return ok();
}

}  // namespace berth::registry
