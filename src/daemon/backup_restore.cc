// SPDX-License-Identifier: Apache-2.0
// `berthd restore`: reads a backup archive into an empty data directory, checking every blob's
// SHA-256 against its name as it is written, then that every blob the restored store names is
// there with its recorded size.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"
#include "config/config.h"
#include "daemon/backup.h"
#include "daemon/backup_format.h"
#include "store/store.h"

namespace berth::daemon {

namespace {

namespace bf = backup_format;

using backup_format::Fd;

class TarReader {
 public:
  TarReader() : a_(archive_read_new()) {
    archive_read_support_format_tar(a_);
    archive_read_support_filter_all(a_);  // a backup gzip'ed or zstd'ed afterwards reads too
  }
  ~TarReader() { archive_read_free(a_); }
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  Status open(const std::string& path) {
    if (archive_read_open_filename(a_, path.c_str(), 1 << 20) != ARCHIVE_OK) {
      return fail("open " + path);
    }
    return ok();
  }
  /// The next entry, or nullptr at the end.
  Result<archive_entry*> next() {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a_, &e);
    if (rc == ARCHIVE_EOF) {
      return static_cast<archive_entry*>(nullptr);
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return fail("read");
    }
    return e;
  }
  /// Up to n bytes of the current entry's data; 0 at its end.
  Result<size_t> read(char* p, size_t n) {
    la_ssize_t got = archive_read_data(a_, p, n);
    if (got < 0) {
      return fail("read data");
    }
    return static_cast<size_t>(got);
  }
  int64_t position() { return archive_filter_bytes(a_, -1); }

 private:
  Error fail(const std::string& what) {
    const char* m = archive_error_string(a_);
    return Error(Errc::InvalidArgument, "backup archive: " + what + ": " + (m ? m : "unknown"));
  }
  archive* a_;
};

struct Restore {
  std::string data;
  TarReader tar;
  int64_t blobs = 0;
  int64_t blob_bytes = 0;
  int64_t files = 0;
  bool saw_db = false;
  int64_t archive_size = 0;
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();

  Result<std::string> read_small(size_t limit) {
    std::string out;
    std::vector<char> buf(64 * 1024);
    while (true) {
      BERTH_ASSIGN_OR_RETURN(size_t n, tar.read(buf.data(), buf.size()));
      if (n == 0) {
        return out;
      }
      out.append(buf.data(), n);
      if (out.size() > limit) {
        return Error(Errc::InvalidArgument, "backup archive: header entry too large");
      }
    }
  }

  // Writes the current entry to rel through a temp file (fsynced, renamed). For a blob,
  // hex is its name: the bytes must hash to it, or nothing is left behind.
  Status write_entry(const std::string& rel, int mode, const std::string& hex) {
    std::string path = data + "/" + rel;
    BERTH_TRY(fs::make_dirs(std::filesystem::path(path).parent_path()));
    std::string tmp = path + ".restore-tmp";
    Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)};
    if (out.fd < 0) {
      return Error(Errc::Internal, "create " + tmp + ": " + backup_format::errno_text(errno));
    }
    Sha256 h;
    std::vector<char> buf(1 << 20);
    int64_t size = 0;
    while (true) {
      auto n = tar.read(buf.data(), buf.size());
      if (!n) {
        ::unlink(tmp.c_str());
        return std::move(n).error().with_context(rel);
      }
      if (*n == 0) {
        break;
      }
      if (!hex.empty()) {
        h.update(buf.data(), *n);
      }
      for (size_t off = 0; off < *n;) {
        ssize_t w = ::write(out.fd, buf.data() + off, *n - off);
        if (w < 0 && errno == EINTR) {
          continue;
        }
        if (w < 0) {
          int e = errno;
          ::unlink(tmp.c_str());
          return Error(e == ENOSPC ? Errc::NoSpace : Errc::Internal,
                       "write " + tmp + ": " + backup_format::errno_text(e));
        }
        off += static_cast<size_t>(w);
      }
      size += static_cast<int64_t>(*n);
    }
    if (!hex.empty() && h.hex() != hex) {
      ::unlink(tmp.c_str());
      return Error(Errc::DataLoss, "backup archive: " + rel +
                                       " does not match its digest (sha256:" + h.hex() +
                                       "); the backup is damaged");
    }
    ::fchmod(out.fd, static_cast<mode_t>(mode));
    if (::fsync(out.fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return Error(e == ENOSPC ? Errc::NoSpace : Errc::Internal,
                   "write " + path + ": " + backup_format::errno_text(e));
    }
    if (!hex.empty()) {
      blobs++;
      blob_bytes += size;
    } else {
      files++;
    }
    return ok();
  }

  void progress(bool last) {
    auto now = std::chrono::steady_clock::now();
    if (!last && now - last_progress < std::chrono::seconds(1)) {
      return;
    }
    last_progress = now;
    std::fprintf(stderr, "berthd restore: %.1f/%.1f MiB read, %lld blobs\n",
                 static_cast<double>(tar.position()) / (1 << 20),
                 static_cast<double>(archive_size) / (1 << 20), static_cast<long long>(blobs));
  }

  Status run(const std::string& from) {
    BERTH_TRY(tar.open(from));
    bool first = true;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(archive_entry * e, tar.next());
      if (e == nullptr) {
        break;
      }
      std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
      while (!name.empty() && name.back() == '/') {
        name.pop_back();
      }
      if (first) {
        first = false;
        BERTH_TRY(check_header(name));
        continue;
      }
      if (!bf::is_safe_relative(name) || !bf::is_allowed(name) || name == bf::kHeaderName) {
        return Error(Errc::InvalidArgument,
                     "backup archive: entry '" + name + "' is not part of a berth backup");
      }
      if (saw_db) {
        return Error(Errc::InvalidArgument, "backup archive: entry '" + name + "' after berth.db");
      }
      auto type = archive_entry_filetype(e);
      int mode = static_cast<int>(archive_entry_perm(e) & 0777);
      if (type == AE_IFDIR) {
        BERTH_TRY(fs::make_dirs(data + "/" + name));
        ::chmod((data + "/" + name).c_str(), static_cast<mode_t>(mode | 0700));
        continue;
      }
      if (type != AE_IFREG) {
        return Error(Errc::InvalidArgument,
                     "backup archive: entry '" + name + "' is not a regular file or directory");
      }
      BERTH_TRY(write_entry(name, mode == 0 ? 0600 : mode, bf::blob_hex(name)));
      saw_db = saw_db || name == bf::kDbName;
      progress(false);
    }
    if (first) {
      return Error(Errc::InvalidArgument, "backup archive: " + from + " is empty");
    }
    if (!saw_db) {
      return Error(Errc::InvalidArgument,
                   "backup archive: it ends before berth.db (a truncated or unfinished backup)");
    }
    progress(true);
    return ok();
  }

  Status check_header(const std::string& name) {
    if (name != bf::kHeaderName) {
      return Error(Errc::InvalidArgument,
                   "not a berth backup: the first entry is '" + name + "', not " + bf::kHeaderName);
    }
    BERTH_ASSIGN_OR_RETURN(std::string text, read_small(64 * 1024));
    Json j = Json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("format") || !j["format"].is_number_integer()) {
      return Error(Errc::InvalidArgument,
                   std::string("not a berth backup: bad ") + bf::kHeaderName);
    }
    if (j["format"].get<int>() != bf::kFormat) {
      return Error(Errc::Unsupported, "backup format " + std::to_string(j["format"].get<int>()) +
                                          " is not one this berthd reads (" +
                                          std::to_string(bf::kFormat) + ")");
    }
    return ok();
  }
};

// Everything but a leftover lock file counts: restoring over data would mix two histories.
Result<bool> is_empty_dir(const std::string& dir) {
  auto names = fs::list_dir(dir);
  if (!names) {
    if (names.error().code() == Errc::NotFound) {
      return true;
    }
    return names.error();
  }
  for (const auto& n : *names) {
    if (n != "berthd.lock") {
      return false;
    }
  }
  return true;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "berthd restore: %s\n", msg.c_str());
  return 2;
}

}  // namespace

Result<int> lock_data_dir_for_tool(const std::string& data) {
  std::string path = data + "/berthd.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error(Errc::Internal, "cannot open " + path + ": " + backup_format::errno_text(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Error(Errc::FailedPrecondition,
                 "data directory " + data + " is in use by a running berthd (or berthd fsck)");
  }
  return fd;
}

int run_restore(const std::string& from_file, const std::string& data_dir, bool force) {
  config::Config paths;
  paths.data_dir = data_dir;
  if (auto s = config::make_paths_absolute(paths); !s) {
    return fail(s.error().message());
  }
  const std::string& data = paths.data_dir;
  struct stat fst {};
  if (::stat(from_file.c_str(), &fst) != 0) {
    return fail("cannot read " + from_file + ": " + backup_format::errno_text(errno));
  }
  auto empty = is_empty_dir(data);
  if (!empty) {
    return fail(empty.error().message());
  }
  if (!*empty && !force) {
    return fail(data + " is not empty; restore into an empty or new directory, or pass --force " +
                "to replace the files the backup holds");
  }
  if (auto s = fs::make_dirs(data); !s) {
    return fail(s.error().message());
  }
  // No berthd may start on a half-restored dir.
  auto l = lock_data_dir_for_tool(data);
  if (!l) {
    return fail(l.error().message());
  }
  Fd lock_fd{*l};
  // Over an old store (--force), its WAL would be replayed into the restored file.
  for (const char* f : {"berth.db", "berth.db-wal", "berth.db-shm", "berth.db-journal"}) {
    ::unlink((data + "/" + f).c_str());
  }
  Restore r{data, {}};
  r.archive_size = fst.st_size;
  if (auto s = r.run(from_file); !s) {
    return fail(s.error().message() + " (" + data +
                " is partly restored; empty it before retrying)");
  }

  // Every blob the restored rows name must have come with the backup.
  std::vector<std::string> problems;
  {
    auto st = store::open_sqlite(data + "/" + bf::kDbName);
    if (!st) {
      return fail(st.error().message());
    }
    auto all = (*st)->all_blobs();
    if (!all) {
      return fail(all.error().message());
    }
    for (auto& [digest, size] : *all) {
      std::string hex = digest.substr(digest.find(':') + 1);
      struct stat bst {};
      if (::stat((data + "/" + bf::blob_path(hex)).c_str(), &bst) != 0) {
        problems.push_back("blob " + digest + " is in the store but not in the backup");
      } else if (bst.st_size != size) {
        problems.push_back("blob " + digest + " is " + std::to_string(bst.st_size) +
                           " bytes, the store says " + std::to_string(size));
      }
    }
  }
  Fd dir{::open(data.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd >= 0) {
    ::syncfs(dir.fd);
  }
  for (const auto& p : problems) {
    std::printf("PROBLEM %s\n", p.c_str());
  }
  std::fprintf(stderr, "berthd restore: %s: %lld blobs (%.1f MiB) and %lld other files\n",
               data.c_str(), static_cast<long long>(r.blobs),
               static_cast<double>(r.blob_bytes) / (1 << 20), static_cast<long long>(r.files));
  return problems.empty() ? 0 : 1;
}

}  // namespace berth::daemon
