// SPDX-License-Identifier: Apache-2.0
// The filesystem views COPY reads from, symlink resolution inside them, and ADD's archives.

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

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

bool is_opaque(const std::string& path) {
  char v[4];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') {
      return true;
    }
  }
  return false;
}

// Resolves path inside the view, following symlinks in every component (and the last one
// when follow_final). In a confined view a link or ".." that leaves the root is an error
// naming `what`.
Result<Resolved> resolve(const View& v, const std::string& path, bool follow_final,
                         const std::string& what) {
  std::deque<std::string> todo;
  for (std::string& c : split_components(path)) {
    todo.push_back(std::move(c));
  }
  std::vector<std::string> done;
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == "..") {
      if (done.empty()) {
        if (v.confined()) {
          return make_error(Errc::InvalidArgument,
                            what + ": the path leaves " + v.where() + " (..)");
        }
        continue;
      }
      done.pop_back();
      continue;
    }
    done.push_back(c);
    std::string rel = join_components(done);
    BERTH_ASSIGN_OR_RETURN(std::optional<Node> node, v.lstat(rel));
    if (!node) {
      for (std::string& rest : todo) {
        done.push_back(std::move(rest));
      }
      return Resolved{join_components(done), std::nullopt};
    }
    if (S_ISLNK(node->st.st_mode) && (!todo.empty() || follow_final)) {
      if (++hops > kMaxSymlinkHops) {
        return make_error(Errc::InvalidArgument, what + ": too many levels of symbolic links");
      }
      BERTH_ASSIGN_OR_RETURN(std::string target, read_link(node->host));
      if (!target.empty() && target[0] == '/') {
        if (v.confined()) {
          return make_error(Errc::InvalidArgument, what + ": symlink " + rel + " -> " + target +
                                                       " points outside " + v.where());
        }
        done.clear();
      } else {
        done.pop_back();
        // A relative target that climbs out of the root is refused in a confined view.
        if (v.confined()) {
          size_t depth = done.size();
          for (const std::string& t : split_components(target)) {
            if (t == "..") {
              if (depth == 0) {
                return make_error(
                    Errc::InvalidArgument,
                    what + ": symlink " + rel + " -> " + target + " points outside " + v.where());
              }
              --depth;
            } else {
              ++depth;
            }
          }
        }
      }
      std::vector<std::string> tc = split_components(target);
      todo.insert(todo.begin(), tc.begin(), tc.end());
      continue;
    }
    if (!todo.empty() && !S_ISDIR(node->st.st_mode)) {
      for (std::string& rest : todo) {
        done.push_back(std::move(rest));
      }
      return Resolved{join_components(done), std::nullopt};
    }
    if (todo.empty()) {
      return Resolved{rel, std::move(node)};
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::optional<Node> root, v.lstat(""));
  return Resolved{"", std::move(root)};
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// ---- archives (ADD) -----------------------------------------------------------------------

// A tar (plain, gzip, bzip2 or xz), recognised by its content as Docker does.
bool is_tar_archive(const std::string& path) {
  ArchiveReader r;
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return false;
  }
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(r.a, &e);
  return rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
}

// Rewrites an archive member path into dest (relative, no "..").
std::optional<std::string> member_path(const char* name, const std::string& dest) {
  if (name == nullptr) {
    return std::nullopt;
  }
  std::vector<std::string> parts = split_components(name);
  for (const std::string& p : parts) {
    if (p == "..") {
      return std::nullopt;
    }
  }
  if (parts.empty()) {
    return std::nullopt;
  }
  return join_path(dest, join_components(parts));
}

Status extract_archive(const std::string& path, const std::string& dest, const std::string& what) {
  ArchiveReader r;
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
  }
  archive* w = archive_write_disk_new();
  std::unique_ptr<archive, int (*)(archive*)> wguard(w, archive_write_free);
  archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                        ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR |
                                        ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                        ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  archive_write_disk_set_standard_lookup(w);
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK) {
      continue;  // device nodes do not come from a context
    }
    auto name = member_path(archive_entry_pathname(e), dest);
    if (!name) {
      std::string n = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
      if (split_components(n).empty()) {
        continue;  // "./" itself
      }
      return make_error(Errc::InvalidArgument, what + ": archive member " + n + " escapes");
    }
    archive_entry_copy_pathname(e, name->c_str());
    if (const char* hl = archive_entry_hardlink(e)) {
      auto target = member_path(hl, dest);
      if (!target) {
        return make_error(Errc::InvalidArgument,
                          what + ": archive hardlink " + std::string(hl) + " escapes");
      }
      archive_entry_copy_hardlink(e, target->c_str());
    }
    if (archive_write_header(w, e) != ARCHIVE_OK) {
      return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(w));
    }
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
      int d = archive_read_data_block(r.a, &buf, &size, &offset);
      if (d == ARCHIVE_EOF) {
        break;
      }
      if (d != ARCHIVE_OK && d != ARCHIVE_WARN) {
        return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
      }
      if (archive_write_data_block(w, buf, size, offset) != ARCHIVE_OK) {
        return make_error(Errc::Internal, what + ": " + archive_error_string(w));
      }
    }
    if (archive_write_finish_entry(w) != ARCHIVE_OK) {
      return make_error(Errc::Internal, what + ": " + archive_error_string(w));
    }
  }
  if (archive_write_close(w) != ARCHIVE_OK) {
    return make_error(Errc::Internal, what + ": " + archive_error_string(w));
  }
  return ok();
}

}  // namespace berth::builder::executor_detail
