// SPDX-License-Identifier: Apache-2.0
// `berthd backup` and `berthd restore`: one tar file holding what a data directory needs to be
// whole (docs/operations.md has the list). Backup works while a berthd serves the directory
// (it never takes DATA/berthd.lock); restore refuses a directory a berthd holds.
//
// Blocking, single-threaded; progress goes to stderr at most once a second.
#pragma once

#include <string>

#include "common/result.h"

namespace berth::daemon {

/// `berthd backup --data DIR --to FILE`: an online snapshot of DIR written to FILE (through a
/// temp file beside it, renamed when complete). Exit code 0 done, 1 written but with problems
/// (printed as `PROBLEM ...` lines: a referenced blob missing or of the wrong size in DIR),
/// 2 nothing written.
int run_backup(const std::string& data_dir, const std::string& to_file);

/// `berthd restore --from FILE --data DIR [--force]`: puts a backup into DIR, which must be
/// empty or absent unless force (then the backup's files replace those in DIR). Every blob's
/// SHA-256 is checked against its name while it is written. Exit code 0 done, 1 restored but
/// the store names blobs the backup lacks, 2 refused or failed (DIR may be partly written).
int run_restore(const std::string& from_file, const std::string& data_dir, bool force);

/// Takes DATA/berthd.lock the way berthd and fsck do (an exclusive flock, the file created when
/// missing), for a tool that must have the directory to itself (restore, migrate): the fd to
/// keep open meanwhile. FailedPrecondition when a berthd (or another such tool) holds it.
Result<int> lock_data_dir_for_tool(const std::string& data_dir);

}  // namespace berth::daemon
