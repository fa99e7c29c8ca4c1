// SPDX-License-Identifier: Apache-2.0
// `berthd migrate`: an embedded install (a data directory with berth.db and blobs in files)
// copied to the metadata store and blob storage a config names (PostgreSQL, S3, another data
// directory). docs/scale-out.md has the user's side. Blocking, single-threaded; progress on
// stderr, the summary on stdout.
#pragma once

#include <string>

#include "config/config.h"

namespace berth::daemon {

struct MigrateOptions {
  /// Replace key files (and git/build-log files) in the target data directory that differ
  /// from the source's, rather than refuse.
  bool force = false;
  /// Check everything (locks, schema versions, the target store empty, every blob's digest)
  /// and copy nothing (opening the stores may still upgrade the source's schema and create the
  /// target's empty tables, as berthd's start would).
  bool dry_run = false;
  /// The --to-config path, named in the closing hint (`berthd fsck --config FILE`).
  std::string config_file;
};

/// `berthd migrate --from DIR --to-config FILE`: copies DIR's rows (every table, one
/// transaction of the target store), its blobs (each re-hashed while copied) and, when the
/// target's data directory is another one, the files that stay there (secrets.key, token.key,
/// admin.credentials, git/, build/logs/); then checks row counts per table and that every blob
/// the target store names is in the target storage with its size. Refuses while a berthd holds
/// DIR, when the target store is not empty, and on a blob that does not match its digest (the
/// target is then left as it was). Exit code 0 done, 1 copied but the checks found problems
/// (printed as `PROBLEM ...` lines), 2 refused or failed.
int run_migrate(const std::string& from_dir, const config::Config& target,
                const MigrateOptions& opts);

}  // namespace berth::daemon
