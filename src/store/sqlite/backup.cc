// SPDX-License-Identifier: Apache-2.0
// Online snapshots of the SQLite store (`berthd backup`): SQLite's backup API copies every page
// of the database as of one read transaction, from a read-only connection of its own, while a
// serving berthd keeps writing through its connection (WAL: readers never block the writer).
#include "store/backup.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace berth::store {

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close(db); }
};

Status open_db(Db& d, const std::string& path, int flags) {
  if (sqlite3_open_v2(path.c_str(), &d.db, flags, nullptr) != SQLITE_OK) {
    return Error(Errc::Unavailable,
                 "open " + path + ": " + (d.db ? sqlite3_errmsg(d.db) : "out of memory"));
  }
  sqlite3_busy_timeout(d.db, 5000);
  return ok();
}

// A rollback-journal database is one file: what a backup archive carries. berthd turns WAL
// back on when it opens the restored file.
Status to_single_file(sqlite3* db, const std::string& path) {
  char* msg = nullptr;
  if (sqlite3_exec(db, "PRAGMA journal_mode=DELETE;", nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown";
    sqlite3_free(msg);
    return Error(Errc::Internal, "sqlite " + path + ": journal_mode=DELETE: " + m);
  }
  return ok();
}

}  // namespace

Status snapshot_sqlite(const std::string& src_path, const std::string& dest_path) {
  Db src;
  Db dst;
  // Read-only: the snapshot must never write to the live database (nor need berthd's lock).
  BERTH_TRY(open_db(src, src_path, SQLITE_OPEN_READONLY));
  BERTH_TRY(open_db(dst, dest_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3_backup* b = sqlite3_backup_init(dst.db, "main", src.db, "main");
  if (b == nullptr) {
    return Error(Errc::Internal, "sqlite backup " + src_path + ": " + sqlite3_errmsg(dst.db));
  }
  // All pages in one step: one read transaction, so one consistent moment. Stepping in pieces
  // would restart whenever berthd commits in between, and never finish under steady pushes.
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return Error(rc == SQLITE_FULL ? Errc::NoSpace : Errc::Unavailable,
                 "sqlite backup " + src_path + " -> " + dest_path + ": " + sqlite3_errstr(rc));
  }
  return to_single_file(dst.db, dest_path);
}

Status sqlite_to_single_file(const std::string& path) {
  Db d;
  BERTH_TRY(open_db(d, path, SQLITE_OPEN_READWRITE));
  return to_single_file(d.db, path);
}

}  // namespace berth::store
