// SPDX-License-Identifier: Apache-2.0
// Private to src/registry: a blob arriving into a growing local file that clients are sent
// from while it grows. One mechanism for two sources:
//   pull-through  bytes from an upstream registry into uploads/<id>/data, committed (renamed
//                 and linked) once their digest checks (pull_through.cc);
//   cold read     bytes of a blob in remote blob storage (S3) into the part file of its local
//                 copy, renamed into DATA/cache/blobs once their digest checks (blob_fetch.cc).
// One transfer per digest however many clients ask at once: each request joins the running
// fetch and streams from read_fd (Registry::Impl::stream_fetch). fill_fetch() runs the
// transfer on a fetch thread; the sending side never hands a client the last byte of a sized
// body before the digest checked, so a client never receives a complete wrong body: a failed
// fetch cuts its connection short instead.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/result.h"
#include "storage/blob_storage.h"

namespace berth::registry {

struct BlobFetch {
  std::string digest;
  std::string hex;
  std::string upload_id;  // pull-through: the transient upload (one file) the bytes go to
  int read_fd = -1;

  std::mutex mu;
  std::condition_variable cv;  // for blocking waiters (pull_image)
  bool head_known = false;     // the source answered (total set when it sent a length)
  int64_t total = -1;
  uint64_t written = 0;
  bool verified = false;         // every byte is in and the digest checked (commit may still run)
  bool done = false;             // committed, or failed
  std::optional<Error> failure;  // set with done when it failed
  // Streaming requests asleep until the next piece: woken on their own I/O thread.
  std::vector<std::weak_ptr<asio::steady_timer>> waiters;

  /// Call with mu held after a change: wakes every waiter.
  void changed();
  /// Ends the fetch (failure: nullopt when it succeeded) and wakes everyone; takes mu.
  void finish(std::optional<Error> failure);
  ~BlobFetch();
};
using BlobFetchPtr = std::shared_ptr<BlobFetch>;

/// Runs a transfer: source(sink) must call sink with the blob's bytes in order. fill_fetch
/// hashes each piece and writes it to wfd (not closed here): a piece of 64 KiB or more as it is,
/// smaller ones gathered to 256 KiB. It publishes the file's length to the readers every MiB and
/// at the end (written; head_known from the first on). A piece past f.total (when
/// known) or after stop is set fails the transfer before it is written. On success every byte is
/// in, hashes to f.hex and matches f.total, and verified is set; committing the file is the
/// caller's. from names the source in errors ("upstream hub (https://...)"). Blocking: call on a
/// fetch thread. Errors: the source's own, NoSpace/Internal for the local writes, Cancelled when
/// stopped, Unavailable for bytes that do not match.
Status fill_fetch(BlobFetch& f, int wfd,
                  const std::function<Status(const storage::ByteSink&)>& source,
                  const std::string& from, const std::atomic<bool>& stop);

}  // namespace berth::registry
