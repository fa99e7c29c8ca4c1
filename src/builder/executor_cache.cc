// SPDX-License-Identifier: Apache-2.0
// The layer cache: lookup, store, and the cached layer step every layer goes through.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/executor_internal.h"
#include "builder/git.h"
#include "builder/layer.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"
#include "oci/oci.h"

namespace berth::builder::executor_detail {

// ---- the layer cache ----------------------------------------------------------------------

Result<std::optional<CacheEntry>> Build::cache_lookup(const std::string& key) {
  std::string path = join_path(opts_.root, "cache/" + key + ".json");
  auto text = fs::read_file(path);
  if (!text) {
    return std::optional<CacheEntry>();
  }
  auto j = parse_json(*text, "cache entry");
  if (!j || !j->is_object()) {
    return std::optional<CacheEntry>();
  }
  CacheEntry e;
  e.digest = j->value("digest", "");
  e.diff_id = j->value("diff_id", "");
  e.size = j->value("size", int64_t{0});
  e.empty = j->value("empty", false);
  if (!e.empty) {
    struct stat st {};
    if (e.digest.empty() || ::stat(blob_path(e.digest).c_str(), &st) != 0 || st.st_size != e.size) {
      return std::optional<CacheEntry>();  // the blob is gone: rebuild the step
    }
  }
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // last use, for prune_cache
  return std::optional<CacheEntry>(e);
}

Status Build::cache_store(const std::string& key, const CacheEntry& e) {
  Json j = Json::object();
  j["digest"] = e.digest;
  j["diff_id"] = e.diff_id;
  j["size"] = e.size;
  j["empty"] = e.empty;
  return fs::write_atomic(join_path(opts_.root, "cache/" + key + ".json"), j.dump());
}

Status Build::layer_step(StageState& st, const std::string& key_material, const MakeLayer& make,
                         const std::string& created_by) {
  Sha256 h;
  hash_field(h, kCacheVersion);
  hash_field(h, platform_.str());
  hash_field(h, st.base);
  for (const std::string& d : st.diff_ids) {
    hash_field(h, d);
  }
  hash_field(h, key_material);
  std::string key = h.hex();

  ++out_.layer_steps;
  std::optional<CacheEntry> hit;
  if (!in_.no_cache) {
    BERTH_ASSIGN_OR_RETURN(hit, cache_lookup(key));
  }
  CacheEntry entry;
  if (hit) {
    entry = *hit;
    log(" ---> Using cache");
    ++out_.cached_steps;
    if (current_ != nullptr) {
      current_->cached = true;
    }
  } else {
    std::string out_path = join_path(tmp_, "layer-" + std::to_string(++tmp_seq_) + ".tar.gz");
    BERTH_ASSIGN_OR_RETURN(LayerBlob blob, make(out_path));
    entry.empty = blob.empty;
    if (!blob.empty) {
      entry.digest = blob.digest;
      entry.diff_id = blob.diff_id;
      entry.size = static_cast<int64_t>(blob.size);
      std::string final_path = blob_path(blob.digest);
      if (::rename(out_path.c_str(), final_path.c_str()) != 0) {
        return errno_error("rename " + out_path);
      }
      BERTH_TRY(fs::fsync_path(join_path(opts_.root, "blobs")));
    }
    // The blob is in place before the entry that names it.
    BERTH_TRY(cache_store(key, entry));
  }
  if (entry.empty) {
    log(" ---> (no changes)");
    add_history(st, created_by, true);
    return ok();
  }
  std::string path = blob_path(entry.digest);
  if (opts_.preparer == nullptr) {
    return make_error(Errc::FailedPrecondition, "the build has no layer cache (preparer)");
  }
  BERTH_ASSIGN_OR_RETURN(std::string dir, opts_.preparer->unpack_layer(entry.digest, path));
  st.layer_dirs.push_back(std::move(dir));
  st.diff_ids.push_back(entry.diff_id);
  st.blobs.push_back(registry::LocalBlob{entry.digest, path, entry.size, kLayerMediaType});
  add_history(st, created_by, false);
  log(" ---> " + hex_of_digest(entry.digest).substr(0, 12));
  return ok();
}

}  // namespace berth::builder::executor_detail
