// SPDX-License-Identifier: Apache-2.0
// Online snapshots of the SQLite store, for `berthd backup`. Blocking; no locks of berthd's.
// (Its own header rather than store.h: only the backup needs it.)
#pragma once

#include <string>

#include "common/result.h"

namespace berth::store {

/// Copies the SQLite database at src_path into a new file dest_path with SQLite's online backup
/// API, from a read-only connection of its own: the rows as of one moment, while another process
/// (a serving berthd) keeps writing. dest_path ends up one self-contained file (no WAL).
/// Unavailable when src_path cannot be read, NoSpace on a full disk.
Status snapshot_sqlite(const std::string& src_path, const std::string& dest_path);

/// Checkpoints a database that open_sqlite() has used and leaves it one file (rollback journal),
/// so that it can be copied alone. Call with no other connection open.
Status sqlite_to_single_file(const std::string& path);

}  // namespace berth::store
