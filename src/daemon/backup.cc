// SPDX-License-Identifier: Apache-2.0
// `berthd backup`: SQLite snapshot first, then the blobs its rows name, the keys and the git and
// build-log trees, all streamed into one tar. See backup_format.h for the archive's layout.
#include "daemon/backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <vector>

#include "common/fs.h"
#include "common/json.h"
#include "config/config.h"
#include "daemon/backup_format.h"
#include "store/backup.h"
#include "store/store.h"

namespace berth::daemon {

namespace {

namespace bf = backup_format;

constexpr size_t kChunk = 1 << 20;

// Progress on stderr for long backups, at most once a second, and a last line when done.
class Progress {
 public:
  Progress(int64_t blobs, int64_t bytes) : blobs_(blobs), bytes_(bytes) {}
  void add(int64_t bytes) {
    done_blobs_++;
    done_bytes_ += bytes;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ >= std::chrono::seconds(1)) {
      last_ = now;
      print();
    }
  }
  void print() const {
    std::fprintf(stderr, "berthd backup: blobs %lld/%lld, %.1f/%.1f MiB\n",
                 static_cast<long long>(done_blobs_), static_cast<long long>(blobs_),
                 static_cast<double>(done_bytes_) / (1 << 20),
                 static_cast<double>(bytes_) / (1 << 20));
  }

 private:
  int64_t blobs_;
  int64_t bytes_;
  int64_t done_blobs_ = 0;
  int64_t done_bytes_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

class TarWriter {
 public:
  TarWriter() : a_(archive_write_new()) {}
  ~TarWriter() { archive_write_free(a_); }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  Status open(int fd) {
    if (archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_open_fd(a_, fd) != ARCHIVE_OK) {
      return fail("open");
    }
    return ok();
  }
  Status close() {
    if (archive_write_close(a_) != ARCHIVE_OK) {
      return fail("close");
    }
    return ok();
  }
  Status add_bytes(const std::string& name, const std::string& bytes, int mode) {
    BERTH_TRY(header(name, AE_IFREG, static_cast<int64_t>(bytes.size()), mode, std::time(nullptr)));
    return write(bytes.data(), bytes.size(), name);
  }
  Status add_dir(const std::string& name, int mode, int64_t mtime) {
    return header(name, AE_IFDIR, 0, mode, mtime);
  }
  /// Copies the open file fd as name: exactly st.st_size bytes, so a file that grows meanwhile
  /// (a log) is cut at that size and one that shrinks is padded with zeros (and reported).
  Status add_file(const std::string& name, int fd, const struct stat& st, bool* short_read) {
    BERTH_TRY(
        header(name, AE_IFREG, st.st_size, static_cast<int>(st.st_mode & 07777), st.st_mtime));
    std::vector<char> buf(kChunk);
    int64_t left = st.st_size;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<int64_t>(left, kChunk));
      ssize_t n = ::read(fd, buf.data(), want);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return Error(Errc::Internal, "read " + name + ": " + backup_format::errno_text(errno));
      }
      if (n == 0) {
        *short_read = true;
        std::fill(buf.begin(), buf.end(), '\0');
        n = static_cast<ssize_t>(want);
      }
      BERTH_TRY(write(buf.data(), static_cast<size_t>(n), name));
      left -= n;
    }
    return ok();
  }

 private:
  Status header(const std::string& name, unsigned type, int64_t size, int mode, int64_t mtime) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, static_cast<mode_t>(mode & 07777));
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, mtime, 0);
    int rc = archive_write_header(a_, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) {
      return fail("header " + name);
    }
    return ok();
  }
  Status write(const char* p, size_t n, const std::string& name) {
    if (archive_write_data(a_, p, n) != static_cast<la_ssize_t>(n)) {
      return fail("write " + name);
    }
    return ok();
  }
  Status fail(const std::string& what) {
    int e = archive_errno(a_);
    const char* m = archive_error_string(a_);
    return Error(e == ENOSPC ? Errc::NoSpace : Errc::Internal,
                 "tar " + what + ": " + (m ? m : "unknown error"));
  }

  archive* a_;
};

struct Backup {
  std::string data;
  TarWriter tar;
  std::vector<std::string> problems;
  int64_t files = 0;

  // One file of the data dir, by its relative name; absent is fine (false).
  Result<bool> add_path(const std::string& rel) {
    std::string path = data + "/" + rel;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) {
        return false;
      }
      return Error(Errc::Internal, "open " + path + ": " + backup_format::errno_text(errno));
    }
    struct stat st {};
    ::fstat(fd, &st);
    bool short_read = false;
    Status s = tar.add_file(rel, fd, st, &short_read);
    ::close(fd);
    BERTH_TRY(s);
    if (short_read) {
      problems.push_back(rel + " shrank while it was copied; its end is zeros in the backup");
    }
    files++;
    return true;
  }

  // A directory tree, depth first; in each directory "objects" goes last, so that a git ref
  // copied earlier never names an object the copy lacks (git adds objects before moving refs).
  // Symlinks and special files are left out (git and the build write none).
  Status add_tree(const std::string& rel) {
    std::string path = data + "/" + rel;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return ok();
    }
    BERTH_TRY(tar.add_dir(rel, static_cast<int>(st.st_mode & 07777), st.st_mtime));
    auto names = fs::list_dir(path);
    if (!names) {
      return names.error().code() == Errc::NotFound ? ok() : Status(names.error());
    }
    std::stable_partition(names->begin(), names->end(),
                          [](const std::string& n) { return n != "objects"; });
    for (const auto& n : *names) {
      std::string child = rel + "/" + n;
      struct stat cst {};
      if (::lstat((data + "/" + child).c_str(), &cst) != 0) {
        continue;  // removed meanwhile (a temp file of a git push)
      }
      if (S_ISDIR(cst.st_mode)) {
        BERTH_TRY(add_tree(child));
      } else if (S_ISREG(cst.st_mode)) {
        BERTH_TRY(add_path(child));
      }
    }
    return ok();
  }
};

Json header_json(const std::string& data) {
  Json j = Json::object();
  j["format"] = bf::kFormat;
  j["created_at"] = static_cast<int64_t>(std::time(nullptr));
  j["source"] = data;
  return j;
}

struct RemoveOnExit {
  std::vector<std::string> paths;
  ~RemoveOnExit() {
    for (const auto& p : paths) {
      ::unlink(p.c_str());
    }
  }
};

Status backup(const std::string& data, const std::string& to, std::vector<std::string>& problems) {
  std::string suffix = ".tmp-" + fs::random_hex(4);
  std::string snap = to + suffix + ".db";
  std::string tmp = to + suffix;
  RemoveOnExit cleanup{{snap, snap + "-journal", snap + "-wal", snap + "-shm", tmp}};

  // 1. The rows, as of one moment.
  BERTH_TRY(store::snapshot_sqlite(data + "/" + bf::kDbName, snap));

  // 2. The blobs those rows name. A blob gc removed since the snapshot (its rows go first,
  // then the file) is dropped from the snapshot too, if nothing there references it.
  std::vector<std::pair<std::string, int64_t>> blobs;
  {
    BERTH_ASSIGN_OR_RETURN(auto st, store::open_sqlite(snap));
    BERTH_ASSIGN_OR_RETURN(auto all, st->all_blobs());
    for (auto& [digest, size] : all) {
      std::string hex = digest.substr(digest.find(':') + 1);
      struct stat bst {};
      if (::stat((data + "/" + bf::blob_path(hex)).c_str(), &bst) == 0) {
        blobs.emplace_back(hex, size);
        continue;
      }
      BERTH_ASSIGN_OR_RETURN(
          bool gone, st->forget_blob_if_unreferenced(digest, std::numeric_limits<int64_t>::max()));
      if (!gone) {
        problems.push_back("blob " + digest + " is referenced but missing from " + data +
                           "/blobs (run berthd fsck on the data directory)");
      }
    }
  }
  BERTH_TRY(store::sqlite_to_single_file(snap));
  int64_t total = 0;
  for (auto& b : blobs) {
    total += b.second;
  }

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(Errc::Internal, "create " + tmp + ": " + backup_format::errno_text(errno));
  }
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};
  Backup b{data, {}, {}, 0};
  BERTH_TRY(b.tar.open(fd));
  BERTH_TRY(b.tar.add_bytes(bf::kHeaderName, header_json(data).dump() + "\n", 0644));

  Progress progress(static_cast<int64_t>(blobs.size()), total);
  for (auto& [hex, size] : blobs) {
    std::string rel = bf::blob_path(hex);
    int bfd = ::open((data + "/" + rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat bst {};
    if (bfd < 0 || ::fstat(bfd, &bst) != 0 || bst.st_size != size) {
      problems.push_back("blob sha256:" + hex + (bfd < 0 ? " vanished" : " has the wrong size") +
                         " in " + data + "/blobs; left out (run berthd fsck)");
      if (bfd >= 0) {
        ::close(bfd);
      }
      continue;
    }
    bool short_read = false;
    Status s = b.tar.add_file(rel, bfd, bst, &short_read);
    ::close(bfd);
    BERTH_TRY(s);
    progress.add(size);
  }
  progress.print();

  // 3. Keys, the git remote's repositories, build logs; then the rows, last.
  for (const char* k : bf::kKeyFiles) {
    BERTH_TRY(b.add_path(k));
  }
  for (const char* t : bf::kTrees) {
    BERTH_TRY(b.add_tree(t));
  }
  int dfd = ::open(snap.c_str(), O_RDONLY | O_CLOEXEC);
  if (dfd < 0) {
    return Error(Errc::Internal, "open " + snap + ": " + backup_format::errno_text(errno));
  }
  struct stat dst {};
  ::fstat(dfd, &dst);
  dst.st_mode = S_IFREG | 0644;
  bool short_read = false;
  Status s = b.tar.add_file(bf::kDbName, dfd, dst, &short_read);
  ::close(dfd);
  BERTH_TRY(s);
  BERTH_TRY(b.tar.close());
  problems.insert(problems.end(), b.problems.begin(), b.problems.end());

  if (::fsync(fd) != 0) {
    return Error(errno == ENOSPC ? Errc::NoSpace : Errc::Internal,
                 "fsync " + tmp + ": " + backup_format::errno_text(errno));
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    return Error(Errc::Internal,
                 "rename " + tmp + " to " + to + ": " + backup_format::errno_text(errno));
  }
  cleanup.paths.pop_back();  // tmp is `to` now
  std::string dir = to.substr(0, to.rfind('/') + 1);
  BERTH_TRY(fs::fsync_path(dir.empty() ? "." : dir));
  std::fprintf(stderr,
               "berthd backup: wrote %s: %zu blobs (%.1f MiB), %lld other files, berth.db\n",
               to.c_str(), blobs.size(), static_cast<double>(total) / (1 << 20),
               static_cast<long long>(b.files));
  return ok();
}

}  // namespace

int run_backup(const std::string& data_dir, const std::string& to_file) {
  config::Config paths;
  paths.data_dir = data_dir;
  if (auto s = config::make_paths_absolute(paths); !s) {
    std::fprintf(stderr, "berthd backup: %s\n", s.error().message().c_str());
    return 2;
  }
  const std::string& data = paths.data_dir;
  if (::access((data + "/" + bf::kDbName).c_str(), R_OK) != 0) {
    std::fprintf(stderr, "berthd backup: %s has no berth.db; is it a berth data directory?\n",
                 data.c_str());
    return 2;
  }
  if (to_file.empty() || to_file.back() == '/') {
    std::fprintf(stderr, "berthd backup: --to must name a file\n");
    return 2;
  }
  // No lock: a serving berthd holds DATA/berthd.lock, and the snapshot needs none (SQLite's own
  // read transaction gives the rows; blobs are immutable once their rows exist).
  std::vector<std::string> problems;
  if (auto s = backup(data, to_file, problems); !s) {
    std::fprintf(stderr, "berthd backup: %s\n", s.error().message().c_str());
    return 2;
  }
  for (const auto& p : problems) {
    std::printf("PROBLEM %s\n", p.c_str());
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace berth::daemon
