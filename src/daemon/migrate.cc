// SPDX-License-Identifier: Apache-2.0
// `berthd migrate --from DIR --to-config FILE`: an embedded install (DIR/berth.db, blobs in
// DIR/blobs) copied to the metadata store and blob storage FILE names (PostgreSQL and/or S3,
// or another data directory). In this order, so that the target's rows never name a blob it
// lacks:
//   1. checks: no berthd holds DIR (or the target data dir), both stores at this berthd's
//      schema version (an older source is migrated first, as `berthd` would), the target store
//      empty, no key file in the target data dir that differs from DIR's;
//   2. blobs: every blob the source rows name, re-hashed while it is copied (stage_file +
//      commit_upload: a blob only becomes one after its bytes were checked);
//   3. the files that stay in the data dir (backup_format.h's list), when the target's differs;
//   4. the rows, every table, in one transaction of the target store (store/copy.h);
//   5. verification: row counts per table, every blob the target store names present in the
//      target storage with its size.
// A failure in 2-4 removes what this run wrote (blobs, files; the rows' transaction rolls
// back), so the target is left as it was found. Blocking, single-threaded; progress on stderr
// at most once a second, the summary on stdout.
#include "daemon/migrate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/fs.h"
#include "common/sha256.h"
#include "config/config.h"
#include "daemon/backup.h"
#include "daemon/backup_format.h"
#include "daemon/daemon.h"
#include "storage/blob_storage.h"
#include "store/copy.h"
#include "store/store.h"

namespace berth::daemon {

namespace {

namespace bf = backup_format;
namespace stdfs = std::filesystem;
using bf::Fd;

int fail_migrate(const std::string& msg) {
  std::fprintf(stderr, "berthd migrate: %s\n", msg.c_str());
  return 2;
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

bool same_dir(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  return stdfs::weakly_canonical(a, ec1) == stdfs::weakly_canonical(b, ec2);
}

// At most one line a second, so that a long copy shows it is alive.
class Ticker {
 public:
  bool due() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) {
      return false;
    }
    last_ = now;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

struct Target {
  std::string from;  // the source data dir, absolute
  config::Config cfg;
  bool rows = true;   // the target store is not the source's berth.db
  bool blobs = true;  // the target storage is not the source's DATA/blobs
  bool files = true;  // the target data dir is not the source's
  bool force = false;
  bool dry_run = false;
  std::string config_file;  // for the closing hint

  std::string describe() const {
    std::string s = cfg.store.driver == "postgres" ? "PostgreSQL" : "SQLite " + cfg.data_dir;
    s += cfg.storage.driver == "s3"
             ? ", blobs in S3 bucket " + cfg.storage.s3.bucket + " at " + cfg.storage.s3.endpoint
             : ", blobs in " + cfg.data_dir + "/blobs";
    return s + ", data directory " + cfg.data_dir;
  }
};

// What this run wrote, removed again when it fails.
struct Written {
  storage::BlobStorage* blobs = nullptr;
  std::vector<std::string> blob_hexes;  // committed by this run
  std::vector<std::string> files;       // absolute paths created or replaced
  std::vector<std::string> replaced;    // of those, the ones --force replaced: kept as .old
  int64_t blobs_present = 0;            // already in the target storage
  int64_t blob_bytes = 0;

  void undo() {
    for (const auto& hex : blob_hexes) {
      if (auto s = blobs->remove_blob(hex); !s) {
        std::fprintf(stderr, "berthd migrate: could not remove blob sha256:%s again: %s\n",
                     hex.c_str(), s.error().message().c_str());
      }
    }
    for (const auto& f : files) {
      ::unlink(f.c_str());
    }
    for (const auto& f : replaced) {
      ::rename((f + kOld).c_str(), f.c_str());
    }
  }
  /// The run succeeded: what --force replaced goes for good.
  void done() {
    for (const auto& f : replaced) {
      ::unlink((f + kOld).c_str());
    }
  }
  static constexpr const char* kOld = ".migrate-old";
};

// ---- blobs ------------------------------------------------------------------------------

Error mismatch(const std::string& digest, const std::string& detail, const std::string& from) {
  return Error(Errc::DataLoss, "blob " + digest + " does not match its digest (" + detail +
                                   "): the source is damaged (run berthd fsck --data " + from +
                                   ")");
}

// Every blob the source's rows name into dst (nullptr: the target storage is the source's
// own, so only re-hash them). Stops at the first blob that is missing or does not hash to its
// name.
Status copy_blobs(store::MetadataStore& src_store, storage::BlobStorage& src,
                  storage::BlobStorage* dst, const Target& t, Written& w) {
  BERTH_ASSIGN_OR_RETURN(auto all, src_store.all_blobs());
  int64_t total = 0;
  for (const auto& b : all) {
    total += b.second;
  }
  int64_t done = 0;
  int64_t done_bytes = 0;
  Ticker tick;
  auto progress = [&] {
    std::fprintf(stderr, "berthd migrate: blobs %lld/%zu, %.1f/%.1f MiB\n",
                 static_cast<long long>(done), all.size(), mib(done_bytes), mib(total));
  };
  for (const auto& [digest, size] : all) {
    std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : "";
    if (!bf::is_hex64(hex)) {
      return Error(Errc::DataLoss,
                   "the source store names a blob '" + digest + "' that is not a sha256 digest");
    }
    std::string path = t.from + "/" + storage::blob_key(hex);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return Error(Errc::DataLoss, "blob " + digest + " is in the source store but not in " +
                                       t.from + "/blobs (run berthd fsck --data " + t.from + ")");
    }
    if (st.st_size != size) {
      return mismatch(digest,
                      path + " is " + std::to_string(st.st_size) + " bytes, the store says " +
                          std::to_string(size),
                      t.from);
    }
    bool present = false;
    if (dst != nullptr && !t.dry_run) {
      auto have = dst->blob_size(hex);
      present = have && *have == size;
    }
    if (dst == nullptr || t.dry_run || present) {
      // Nothing to write (or already there, from an earlier run): the source must still hold
      // what its name says, and so must the target.
      BERTH_ASSIGN_OR_RETURN(std::string h, src.hash_blob(hex));
      if (h != hex) {
        return mismatch(digest, path + " hashes to sha256:" + h, t.from);
      }
      if (present) {
        BERTH_ASSIGN_OR_RETURN(std::string th, dst->hash_blob(hex));
        if (th != hex) {
          return Error(Errc::DataLoss, "blob " + digest + " is already in the target storage " +
                                           "but hashes to sha256:" + th +
                                           " there: remove it from the target and run migrate "
                                           "again");
        }
      }
      w.blobs_present += present ? 1 : 0;
    } else {
      std::string id = "migrate-" + fs::random_hex(8);
      auto staged = dst->stage_file(id, path, hex, size);
      if (!staged) {
        if (staged.error().code() == Errc::InvalidArgument) {
          return mismatch(digest, staged.error().message(), t.from);
        }
        return std::move(staged).error().with_context("blob " + digest);
      }
      if (auto c = dst->commit_upload(id, hex); !c) {
        dst->remove_upload(id);
        return std::move(c).error().with_context("blob " + digest);
      }
      w.blob_hexes.push_back(hex);
      w.blob_bytes += size;
    }
    done++;
    done_bytes += size;
    if (tick.due()) {
      progress();
    }
  }
  progress();
  return ok();
}

// ---- files that stay in the data dir ------------------------------------------------------

// The relative paths of what backup copies besides blobs and berth.db: the key files, and
// every regular file of the git and build-log trees.
Status list_tree(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  struct stat st {};
  if (::lstat((root + "/" + rel).c_str(), &st) != 0) {
    return ok();
  }
  if (S_ISREG(st.st_mode)) {
    out.push_back(rel);
    return ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return ok();  // symlinks and special files: git and the build write none
  }
  BERTH_ASSIGN_OR_RETURN(auto names, fs::list_dir(root + "/" + rel));
  for (const auto& n : names) {
    BERTH_TRY(list_tree(root, rel + "/" + n, out));
  }
  return ok();
}

Result<std::vector<std::string>> data_files(const std::string& from) {
  std::vector<std::string> out;
  for (const char* k : bf::kKeyFiles) {
    BERTH_TRY(list_tree(from, k, out));
  }
  for (const char* tree : bf::kTrees) {
    BERTH_TRY(list_tree(from, tree, out));
  }
  return out;
}

// Whether two files hold the same bytes (false when b is absent).
Result<bool> same_content(const std::string& a, const std::string& b) {
  Fd fa{::open(a.c_str(), O_RDONLY | O_CLOEXEC)};
  Fd fb{::open(b.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fa.fd < 0) {
    return fs::errno_error("open", a);
  }
  if (fb.fd < 0) {
    return false;
  }
  std::vector<char> ba(1 << 16);
  std::vector<char> bb(1 << 16);
  while (true) {
    ssize_t na = ::read(fa.fd, ba.data(), ba.size());
    ssize_t nb = ::read(fb.fd, bb.data(), ba.size());
    if (na < 0 || nb < 0) {
      return fs::errno_error("read", na < 0 ? a : b);
    }
    if (na != nb || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) {
      return false;
    }
    if (na == 0) {
      return true;
    }
  }
}

// Copies a file through a temp file beside dst (fsynced, renamed), keeping its mode.
Status copy_file(const std::string& src, const std::string& dst) {
  BERTH_TRY(fs::make_dirs(stdfs::path(dst).parent_path()));
  Fd in{::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  struct stat st {};
  if (in.fd < 0 || ::fstat(in.fd, &st) != 0) {
    return fs::errno_error("open", src);
  }
  std::string tmp = dst + ".migrate-tmp";
  Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                st.st_mode & 0777)};
  if (out.fd < 0) {
    return fs::errno_error("create", tmp);
  }
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(in.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      ::unlink(tmp.c_str());
      return fs::errno_error("read", src);
    }
    if (n == 0) {
      break;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t m = ::write(out.fd, buf.data() + off, static_cast<size_t>(n - off));
      if (m < 0 && errno == EINTR) {
        continue;
      }
      if (m < 0) {
        Error e = fs::errno_error("write", tmp);
        ::unlink(tmp.c_str());
        return e;
      }
      off += m;
    }
  }
  ::fchmod(out.fd, st.st_mode & 0777);
  if (::fsync(out.fd) != 0 || ::rename(tmp.c_str(), dst.c_str()) != 0) {
    Error e = fs::errno_error("write", dst);
    ::unlink(tmp.c_str());
    return e;
  }
  return ok();
}

// ---- the run -------------------------------------------------------------------------------

struct Opened {
  store::MetadataStorePtr source;
  store::MetadataStorePtr target;  // null when the rows stay where they are
  storage::BlobStoragePtr source_blobs;
  storage::BlobStoragePtr target_blobs;  // null when the blobs stay where they are
  std::vector<std::string> files;        // relative, to copy into the target data dir
};

// Step 1: every check that can refuse, before anything is written.
Status prepare(const Target& t, Opened& o) {
  BERTH_ASSIGN_OR_RETURN(o.source, store::open_sqlite(t.from + "/" + bf::kDbName));
  o.source_blobs = storage::make_fs_blob_storage(t.from, false);
  // First what refuses without side effects: the target's key files.
  if (t.files) {
    BERTH_ASSIGN_OR_RETURN(o.files, data_files(t.from));
    std::vector<std::string> differ;
    for (const auto& rel : o.files) {
      std::string dst = t.cfg.data_dir + "/" + rel;
      BERTH_ASSIGN_OR_RETURN(bool same, same_content(t.from + "/" + rel, dst));
      if (!same && ::access(dst.c_str(), F_OK) == 0) {
        differ.push_back(rel);
      }
    }
    if (!differ.empty() && !t.force) {
      std::string list;
      for (size_t i = 0; i < differ.size() && i < 5; ++i) {
        list += (i == 0 ? "" : ", ") + differ[i];
      }
      return Error(Errc::FailedPrecondition,
                   "the target data directory " + t.cfg.data_dir + " already has " + list +
                       (differ.size() > 5 ? " and more" : "") + ", different from " + t.from +
                       "'s; pass --force to replace them with the source's (secrets.key and "
                       "token.key must be the source's for its rows to stay readable)");
    }
  }
  // A dry run creates no SQLite file where there is none (it would be empty anyway).
  bool no_target_db = t.cfg.store.driver != "postgres" &&
                      ::access((t.cfg.data_dir + "/" + bf::kDbName).c_str(), F_OK) != 0;
  if (t.rows && !(t.dry_run && no_target_db)) {
    auto target = open_store(t.cfg);
    if (!target) {
      return std::move(target).error().with_context("the target metadata store");
    }
    o.target = std::move(*target);
    BERTH_ASSIGN_OR_RETURN(auto used, store::non_empty_tables(*o.target));
    if (!used.empty()) {
      std::string list;
      for (const auto& u : used) {
        list += (list.empty() ? "" : ", ") + u;
      }
      return Error(Errc::FailedPrecondition,
                   "the target metadata store (" +
                       (t.cfg.store.driver == "postgres" ? std::string("store.driver: postgres")
                                                         : t.cfg.data_dir + "/" + bf::kDbName) +
                       ") is not empty: " + list +
                       "; migrate copies into an empty store only (create a new database, or "
                       "drop and re-create this one)");
    }
  }
  if (t.blobs) {
    BERTH_ASSIGN_OR_RETURN(o.target_blobs, open_blob_storage(t.cfg));
    if (!t.dry_run) {
      if (auto s = o.target_blobs->init(); !s) {
        return std::move(s).error().with_context("the target blob storage");
      }
    }
  }
  return ok();
}

// Step 5: what the target holds now.
std::vector<std::string> verify(const Target& t, const Opened& o,
                                const std::vector<store::TableCount>& counts) {
  std::vector<std::string> problems;
  for (const auto& c : counts) {
    if (c.source != c.target) {
      problems.push_back("table " + c.table + ": " + std::to_string(c.source) +
                         " rows in the source, " + std::to_string(c.target) + " in the target");
    }
  }
  store::MetadataStore& st = o.target ? *o.target : *o.source;
  storage::BlobStorage& blobs = o.target_blobs ? *o.target_blobs : *o.source_blobs;
  auto all = st.all_blobs();
  if (!all) {
    problems.push_back("cannot list the target store's blobs: " + all.error().message());
    return problems;
  }
  for (const auto& [digest, size] : *all) {
    auto have = blobs.blob_size(digest.substr(digest.find(':') + 1));
    if (!have) {
      problems.push_back("blob " + digest + " is in the target store but not in its storage: " +
                         have.error().message());
    } else if (*have != size) {
      problems.push_back("blob " + digest + " is " + std::to_string(*have) +
                         " bytes in the target storage, the store says " + std::to_string(size));
    }
  }
  // Every manifest row still hashes to its digest (rows are copied as they are).
  if (auto manifests = st.all_manifests(); !manifests) {
    problems.push_back("cannot list the target store's manifests: " + manifests.error().message());
  } else {
    for (const auto& m : *manifests) {
      std::string got = "sha256:" + Sha256::hex_of(m.content);
      if (got != m.digest) {
        problems.push_back("manifest " + m.repository + "@" + m.digest +
                           " in the target store hashes to " + got);
      }
    }
  }
  for (const auto& rel : o.files) {
    auto same = same_content(t.from + "/" + rel, t.cfg.data_dir + "/" + rel);
    if (!same || !*same) {
      problems.push_back(rel + " in " + t.cfg.data_dir + " differs from the source's");
    }
  }
  return problems;
}

int migrate(const Target& t) {
  std::fprintf(stderr, "berthd migrate: %s -> %s%s\n", t.from.c_str(), t.describe().c_str(),
               t.dry_run ? " (dry run: checks only)" : "");
  Opened o;
  if (auto s = prepare(t, o); !s) {
    return fail_migrate(s.error().message());
  }
  Written w;
  w.blobs = o.target_blobs.get();
  auto undo = [&](const Error& e) {
    w.undo();
    return fail_migrate(e.message() + (t.dry_run ? "" : "; the target is left as it was"));
  };

  // Step 2: blobs, checked.
  if (auto s =
          copy_blobs(*o.source, *o.source_blobs, t.dry_run ? nullptr : o.target_blobs.get(), t, w);
      !s) {
    return undo(s.error());
  }
  if (t.dry_run) {
    std::printf(
        "dry run: every blob of %s matches its digest; the target store is empty; "
        "nothing was written\n",
        t.from.c_str());
    return 0;
  }

  // Step 3: keys, git repositories, build logs.
  for (const auto& rel : o.files) {
    std::string dst = t.cfg.data_dir + "/" + rel;
    auto same = same_content(t.from + "/" + rel, dst);
    if (same && *same) {
      continue;
    }
    if (::access(dst.c_str(), F_OK) == 0) {
      // --force: kept aside until the run succeeded, so a failure can put it back.
      if (::rename(dst.c_str(), (dst + Written::kOld).c_str()) != 0) {
        return undo(fs::errno_error("rename", dst));
      }
      w.replaced.push_back(dst);
    }
    w.files.push_back(dst);
    if (auto s = copy_file(t.from + "/" + rel, dst); !s) {
      return undo(s.error());
    }
  }

  // Step 4: the rows, all or none.
  std::vector<store::TableCount> counts;
  if (t.rows) {
    Ticker tick;
    auto progress = [&tick](const std::string& table, int64_t rows) {
      if (tick.due()) {
        std::fprintf(stderr, "berthd migrate: rows: %s %lld\n", table.c_str(),
                     static_cast<long long>(rows));
      }
    };
    auto copied = store::copy_rows(*o.source, *o.target, progress);
    if (!copied) {
      return undo(copied.error());
    }
    counts = std::move(*copied);
  }

  w.done();

  // Step 5.
  auto problems = verify(t, o, counts);
  int64_t rows = 0;
  for (const auto& c : counts) {
    std::printf("table %-20s %lld row%s\n", c.table.c_str(), static_cast<long long>(c.target),
                c.target == 1 ? "" : "s");
    rows += c.target;
  }
  for (const auto& p : problems) {
    std::printf("PROBLEM %s\n", p.c_str());
  }
  std::printf(
      "migrated %s -> %s: %lld rows in %zu tables, %zu blobs copied (%.1f MiB), %lld "
      "already there, %zu files; %zu problem(s)\n",
      t.from.c_str(), t.describe().c_str(), static_cast<long long>(rows), counts.size(),
      w.blob_hexes.size(), mib(w.blob_bytes), static_cast<long long>(w.blobs_present),
      w.files.size(), problems.size());
  if (problems.empty()) {
    std::fprintf(stderr,
                 "berthd migrate: done; check it with `berthd fsck --config %s`, then start "
                 "`berthd --config %s`. %s is left as it was.\n",
                 t.config_file.c_str(), t.config_file.c_str(), t.from.c_str());
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace

int run_migrate(const std::string& from_dir, const config::Config& target,
                const MigrateOptions& opts) {
  Target t;
  config::Config src;
  src.data_dir = from_dir;
  t.cfg = target;
  if (auto s = config::make_paths_absolute(src); !s) {
    return fail_migrate(s.error().message());
  }
  if (auto s = config::make_paths_absolute(t.cfg); !s) {
    return fail_migrate(s.error().message());
  }
  t.from = src.data_dir;
  t.force = opts.force;
  t.dry_run = opts.dry_run;
  t.config_file = opts.config_file.empty() ? "FILE" : opts.config_file;
  if (::access((t.from + "/" + bf::kDbName).c_str(), R_OK) != 0) {
    return fail_migrate(t.from + " has no berth.db; is it a berth data directory?");
  }
  bool same_data = same_dir(t.cfg.data_dir, t.from);
  t.rows = !(same_data && t.cfg.store.driver != "postgres");
  t.blobs = !(same_data && t.cfg.storage.driver != "s3");
  t.files = !same_data;
  if (!t.rows && !t.blobs) {
    return fail_migrate("the target config names " + t.from +
                        "'s own store and blobs: nothing to migrate (set store.driver: postgres, "
                        "storage.driver: s3 or another data directory)");
  }

  // Offline only: a serving berthd writes rows and blobs while they are copied.
  auto l = lock_data_dir_for_tool(t.from);
  if (!l) {
    return fail_migrate(l.error().message() + "; stop it first: migrate copies a stopped install");
  }
  Fd source_lock{*l};
  std::string target_db = t.cfg.data_dir + "/" + bf::kDbName;
  bool created_dir = t.files && !t.dry_run && !stdfs::exists(t.cfg.data_dir);
  bool created_db = t.rows && t.cfg.store.driver != "postgres" && !stdfs::exists(target_db);
  Fd target_lock;
  if (t.files && !t.dry_run) {
    if (auto s = fs::make_dirs(t.cfg.data_dir); !s) {
      return fail_migrate(s.error().message());
    }
    auto tl = lock_data_dir_for_tool(t.cfg.data_dir);
    if (!tl) {
      return fail_migrate("target " + tl.error().message());
    }
    target_lock.fd = *tl;
  }
  int rc = migrate(t);
  // A refused or failed run leaves no directory or SQLite file it created behind (the store is
  // closed by now).
  std::error_code ec;
  if (rc == 2 && created_dir) {
    stdfs::remove_all(t.cfg.data_dir, ec);
  } else if (rc == 2 && created_db) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      stdfs::remove(target_db + suffix, ec);
    }
  }
  return rc;
}

}  // namespace berth::daemon
