// SPDX-License-Identifier: Apache-2.0
// Maintenance: upload expiry (idle sessions, and starts that failed half-way), garbage
// collection of unreferenced blobs and orphan files, and the offline fsck.
#include <algorithm>
#include <unordered_set>

#include "registry/registry_impl.h"

namespace berth::registry {

awaitable<int64_t> Registry::Impl::expire_uploads() {
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
    // What crashed commits left in the backing store (S3: multipart uploads nothing will
    // complete). Degraded, not fatal: the next sweep tries again.
    if (auto partial = blobs.expire_partial(opts.upload_ttl); !partial) {
      log->warn("expiring partial uploads failed storage={} error={}", blobs.driver(),
                partial.error().message());
    } else if (*partial > 0) {
      log->info("partial uploads expired storage={} count={}", blobs.driver(), *partial);
      removed += *partial;
    }
    if (removed > 0) {
      log->info("uploads expired count={}", removed);
    }
    return removed;
  };
  co_return co_await run_blocking(pool, std::move(sweep_uploads));
}

Result<GcReport> Registry::Impl::gc_blocking() {
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
      // The row is gone, so the blob is invisible; content that failed to go is an orphan
      // the sweep below removes next time.
      if (auto s = blobs.remove_blob(d->hex); !s) {
        log->warn("blob removal failed digest={} error={}", digest, s.error().message());
      }
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
  BERTH_ASSIGN_OR_RETURN(auto files, blobs.list_blobs());
  for (const auto& f : files) {
    if (known_hex.count(f.name) || f.mtime >= cutoff) {
      continue;
    }
    std::lock_guard lock(stripe(f.name));
    if (store.blob_size("sha256:" + f.name).has_value()) {
      continue;  // committed meanwhile
    }
    if (auto s = blobs.remove_blob(f.name); !s) {
      log->warn("orphan blob removal failed hex={} error={}", f.name, s.error().message());
      continue;
    }
    rep.orphan_files_deleted++;
    rep.bytes_freed += f.size;
  }
  return rep;
}

Result<FsckReport> Registry::fsck(const std::string& data_dir, store::MetadataStore& store) {
  auto blobs = storage::make_fs_blob_storage(data_dir, false);
  return fsck(*blobs, store);
}

Result<FsckReport> Registry::fsck(storage::BlobStorage& blobs, store::MetadataStore& store) {
  FsckReport rep;
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
    if (auto stored = blobs.blob_size(d->hex); stored && *stored != size) {
      rep.problems.push_back("blob " + digest + " is " + std::to_string(*stored) +
                             " bytes, recorded as " + std::to_string(size));
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto files, blobs.list_blobs());
  for (const auto& f : files) {
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
