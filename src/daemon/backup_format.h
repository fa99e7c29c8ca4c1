// SPDX-License-Identifier: Apache-2.0
// The layout of a berth backup archive, shared by `berthd backup` and `berthd restore`.
//
// A POSIX tar (pax), uncompressed (layers are compressed already), entries in this order:
//   berth-backup.json            {"format":1,"created_at":UNIX,"source":DIR}: first, always
//   blobs/sha256/<2 hex>/<64 hex> every blob the snapshot's rows name
//   secrets.key token.key admin.credentials   when present
//   git/...                      bare repositories behind berth's git remote (refs before objects)
//   build/logs/<id>.log          build logs
//   berth.db                     the SQLite snapshot: last, so a truncated archive has none
#pragma once

#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

namespace berth::daemon::backup_format {

/// strerror(e) as a string, for the messages of failed file operations.
inline std::string errno_text(int e) { return std::strerror(e); }

/// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

inline constexpr int kFormat = 1;
inline constexpr const char* kHeaderName = "berth-backup.json";
inline constexpr const char* kDbName = "berth.db";
inline constexpr const char* kBlobPrefix = "blobs/sha256/";
/// Single files copied as they are, when present.
inline constexpr const char* kKeyFiles[] = {"secrets.key", "token.key", "admin.credentials"};
/// Directory trees copied whole, when present.
inline constexpr const char* kTrees[] = {"git", "build/logs"};

inline bool is_hex64(std::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

/// "blobs/sha256/ab/ab..." -> the 64 hex digits; "" when name is not a blob path.
inline std::string blob_hex(std::string_view name) {
  std::string_view p = kBlobPrefix;
  if (name.substr(0, p.size()) != p) {
    return "";
  }
  name.remove_prefix(p.size());
  if (name.size() != 2 + 1 + 64 || name[2] != '/') {
    return "";
  }
  std::string_view hex = name.substr(3);
  if (!is_hex64(hex) || hex.substr(0, 2) != name.substr(0, 2)) {
    return "";
  }
  return std::string(hex);
}

inline std::string blob_path(const std::string& hex) {
  return std::string(kBlobPrefix) + hex.substr(0, 2) + "/" + hex;
}

/// A relative path with no empty, "." or ".." component: it cannot climb out of the data dir.
inline bool is_safe_relative(std::string_view p) {
  if (p.empty() || p.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) {
      end = p.size();
    }
    std::string_view c = p.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") {
      return false;
    }
    start = end + 1;
  }
  return true;
}

/// Whether a restore may write this (safe) path: the header aside, exactly what backup writes.
inline bool is_allowed(const std::string& p) {
  if (p == kDbName || !blob_hex(p).empty()) {
    return true;
  }
  for (const char* k : kKeyFiles) {
    if (p == k) {
      return true;
    }
  }
  for (const char* t : kTrees) {
    std::string tree = t;
    if (p == tree || p.rfind(tree + "/", 0) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace berth::daemon::backup_format
