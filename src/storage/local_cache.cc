// SPDX-License-Identifier: Apache-2.0
#include "storage/local_cache.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "storage/fs_blob_storage.h"

namespace berth::storage {

Status LocalCache::init() {
  BERTH_TRY(fs::make_dirs(dir_));
  std::error_code ec;
  auto now_wall = static_cast<int64_t>(std::time(nullptr));
  auto now = Clock::now();
  std::lock_guard lock(mu_);
  entries_.clear();
  bytes_ = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.find(".part") != std::string::npos) {
      std::error_code rm;
      std::filesystem::remove(e.path(), rm);  // a copy a crash left half-written is of no use
      continue;
    }
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    // What was modified longest ago counts as used longest ago.
    auto age = std::chrono::seconds(std::max<int64_t>(0, now_wall - st.st_mtime));
    Entry en{static_cast<uint64_t>(st.st_size), now - age, false};
    bytes_ += en.size;
    entries_.emplace(std::move(name), en);
  }
  if (ec) {
    return fs::errno_error("list", dir_);
  }
  prune_locked();
  return ok();
}

void LocalCache::added(const std::string& hex, uint64_t size) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(hex);
  if (!inserted) {
    bytes_ -= it->second.size;
  }
  it->second = {size, Clock::now(), true};
  bytes_ += size;
  prune_locked();
}

bool LocalCache::usable(const std::string& hex, bool count) {
  bool ok = find_checked(hex);
  if (count) {
    std::lock_guard lock(mu_);
    ++(ok ? hits_ : misses_);
  }
  return ok;
}

void LocalCache::prune() {
  std::lock_guard lock(mu_);
  prune_locked();
}

bool LocalCache::find_checked(const std::string& hex) {
  std::unique_lock lock(mu_);
  while (true) {
    auto it = entries_.find(hex);
    if (it == entries_.end()) {
      return false;
    }
    // Someone may have deleted copies to free the disk: forgotten, so they are fetched again.
    struct stat st {};
    if (::stat(path(hex).c_str(), &st) != 0 ||
        static_cast<uint64_t>(st.st_size) != it->second.size) {
      forget_locked(hex);
      return false;
    }
    it->second.last_use = Clock::now();
    if (it->second.checked) {
      return true;
    }
    if (!it->second.checking) {
      break;
    }
    checked_cv_.wait(lock);  // another reader is hashing it: its answer is ours
  }
  entries_[hex].checking = true;
  lock.unlock();
  auto h = hash_path(path(hex));  // without the lock: a big copy takes a while
  lock.lock();
  ++hashed_;
  checked_cv_.notify_all();
  auto it = entries_.find(hex);
  if (it == entries_.end()) {
    return false;  // removed meanwhile
  }
  it->second.checking = false;
  if (it->second.checked || (h && *h == hex)) {  // (checked: replaced by a new copy meanwhile)
    it->second.checked = true;
    return true;
  }
  forget_locked(hex);
  ++torn_;
  return false;
}

void LocalCache::remove(const std::string& hex) {
  std::lock_guard lock(mu_);
  forget_locked(hex);
}

void LocalCache::forget_locked(const std::string& hex) {
  ::unlink(path(hex).c_str());
  if (auto it = entries_.find(hex); it != entries_.end()) {
    bytes_ -= it->second.size;
    entries_.erase(it);
  }
}

uint64_t LocalCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::string LocalCache::describe() const {
  std::lock_guard lock(mu_);
  return "local_copies=" + std::to_string(entries_.size()) +
         " local_bytes=" + std::to_string(bytes_) +
         " cache_size=" + std::to_string(opts_.max_bytes) +
         " cache_min_free_percent=" + std::to_string(opts_.min_free_percent) +
         " cache_pushed=" + (opts_.keep_pushed ? "true" : "false");
}

std::string LocalCache::metrics_text() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto add = [&out](const char* name, const char* type, const char* help, uint64_t v) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    out.append(name).append(" ").append(std::to_string(v)).append("\n");
  };
  add("berth_blob_cache_bytes", "gauge",
      "Bytes the local copies of S3 blobs take (DATA/cache/blobs).", bytes_);
  add("berth_blob_cache_limit_bytes", "gauge", "storage.s3.cache_size (0: no limit).",
      opts_.max_bytes);
  add("berth_blob_cache_copies", "gauge", "Local copies of S3 blobs.", entries_.size());
  add("berth_blob_cache_hits_total", "counter", "Reads that found a usable local copy.", hits_);
  add("berth_blob_cache_misses_total", "counter", "Reads that found no usable local copy.",
      misses_);
  add("berth_blob_cache_pruned_total", "counter", "Local copies deleted to stay under the limit.",
      pruned_);
  add("berth_blob_cache_hashed_total", "counter",
      "Local copies from before a restart hashed before their first use.", hashed_);
  add("berth_blob_cache_torn_total", "counter",
      "Local copies from before a restart that did not hash right, deleted.", torn_);
  return out;
}

// How much less the copies must take to leave min_free_percent of the disk free (0: nothing).
uint64_t LocalCache::disk_shortfall() const {
  struct statvfs v {};
  if (opts_.min_free_percent == 0 || ::statvfs(dir_.c_str(), &v) != 0) {
    return 0;
  }
  uint64_t total = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  uint64_t want = total / 100 * opts_.min_free_percent;
  return avail < want ? want - avail : 0;
}

void LocalCache::prune_locked() {
  // Past the limit: down to 90% of it, so that a full cache does not prune on every copy.
  uint64_t target = UINT64_MAX;
  if (opts_.max_bytes != 0 && bytes_ > opts_.max_bytes) {
    target = opts_.max_bytes / 10 * 9;
  }
  if (uint64_t short_by = disk_shortfall(); short_by > 0) {
    target = std::min(target, bytes_ > short_by ? bytes_ - short_by : 0);
  }
  if (bytes_ <= target) {
    return;
  }
  auto protect_from = Clock::now() - opts_.min_age;
  std::vector<std::pair<Clock::time_point, std::string>> old;
  for (const auto& [hex, e] : entries_) {
    if (e.last_use <= protect_from) {
      old.emplace_back(e.last_use, hex);
    }
  }
  std::sort(old.begin(), old.end());
  for (const auto& [when, hex] : old) {
    if (bytes_ <= target) {
      break;
    }
    forget_locked(hex);
    ++pruned_;
  }
}

}  // namespace berth::storage
