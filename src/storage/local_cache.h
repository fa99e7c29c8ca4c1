// SPDX-License-Identifier: Apache-2.0
// Private to src/storage: the index of the S3 driver's local copies, DATA/cache/blobs/<hex>,
// and the limit on the disk they take (LocalCacheOptions, blob_storage.h).
//
// Copies are not fsynced: a crash of the machine could leave one torn under its name. So a copy
// is trusted only by the process that renamed it into place (added()); one found at start is
// hashed the first time a reader asks for it (usable()), and removed when it does not match,
// which costs a read of the file where an fsync of every copy would cost a disk write on every
// fetch and push.
//
// Every reader that takes a copy goes through usable(), which marks it used. When the copies add up
// to more than max_bytes, the least recently used go until they take 90% of it, and when the disk
// has less than min_free_percent of it free, until it has (or no copy is left); never those used
// in the last min_age: a reader that was handed a path (local_file()) opens it within that time,
// and one that has it open keeps reading after the unlink. So the limit is soft by what min_age
// protects. At start the copies on disk are indexed oldest modification first, and pruned to the
// limit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "storage/blob_storage.h"

namespace berth::storage {

class LocalCache {
 public:
  LocalCache(std::string dir, LocalCacheOptions opts) : dir_(std::move(dir)), opts_(opts) {}

  /// Makes the directory, removes part files a crash left, indexes the copies, prunes.
  Status init();
  const LocalCacheOptions& options() const { return opts_; }
  std::string path(const std::string& hex) const { return dir_ + "/" + hex; }
  /// Whether a copy of `size` bytes may be kept at all (never one bigger than the limit).
  bool fits(uint64_t size) const { return opts_.max_bytes == 0 || size <= opts_.max_bytes; }

  /// A copy of `size` bytes, checked to hash to hex, was renamed into place (again: its size
  /// is replaced). Prunes.
  void added(const std::string& hex, uint64_t size);
  /// Whether there is a copy a reader may take (one found at start is hashed first, and
  /// removed when it does not match); it becomes the most recently used. May read the whole
  /// file: call from the blocking pool.
  bool usable(const std::string& hex, bool count = true);  // count: in hits/misses
  /// Deletes the least recently used copies past the limit (the maintenance tick: a burst of
  /// copies that min_age protected may have left the cache over it).
  void prune();
  /// Removes the copy, if any.
  void remove(const std::string& hex);
  /// The bytes the indexed copies take.
  uint64_t bytes() const;
  /// Prometheus text: size, limit, copies, and counts of hits, misses, prunes, torn copies.
  std::string metrics_text() const;
  /// For berthd's start line: copies=N bytes=B cache_size=L cache_min_free_percent=P.
  std::string describe() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    uint64_t size = 0;
    Clock::time_point last_use;
    bool checked = false;   // renamed into place by this process, or hashed since it started
    bool checking = false;  // a reader is hashing it now (others wait for its answer)
  };
  void forget_locked(const std::string& hex);
  uint64_t disk_shortfall() const;
  bool find_checked(const std::string& hex);
  void prune_locked();

  std::string dir_;
  LocalCacheOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable checked_cv_;              // a hash of a copy from before the start ended
  std::unordered_map<std::string, Entry> entries_;  // by hex
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0, pruned_ = 0, torn_ = 0, hashed_ = 0;
};

}  // namespace berth::storage
