// SPDX-License-Identifier: Apache-2.0
// Copying a whole metadata store into another, for `berthd migrate` (an embedded SQLite store
// into PostgreSQL, or into another SQLite file). Generic over the schema: the tables and their
// columns are read from the databases' own catalogs, so a table or column a later migration
// adds is copied without a change here. Blocking; no other process may write to either store
// meanwhile (the caller holds the data directory's lock).
// (Its own header rather than store.h: only the migration needs it.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace berth::store {

/// One table's rows in the source and in the target.
struct TableCount {
  std::string table;
  int64_t source = 0;
  int64_t target = 0;
};

/// Called while rows are copied: the table and how many of its rows are in so far.
using CopyProgress = std::function<void(const std::string& table, int64_t rows)>;

/// The schema's tables of `st` that hold rows, as "repositories (3 rows)" (empty: none). The
/// engine's own bookkeeping (PostgreSQL's schema_version) does not count.
Result<std::vector<std::string>> non_empty_tables(MetadataStore& st);

/// Copies every row of every table of `from` into `to`, column by column, in one transaction
/// of `to` (a failure leaves `to` as it was), then counts each table's rows on both sides.
/// Both stores must be open (so both at this berthd's schema version: FailedPrecondition
/// otherwise, naming both) and `to` should be empty (non_empty_tables()). A table goes after
/// the tables its foreign keys name (else in the order the source created them); id sequences
/// (PostgreSQL) are moved past the copied ids.
/// FailedPrecondition when a table or column of the source is missing in the target;
/// the engines' errors otherwise (Conflict for a row the target refuses), with the table.
Result<std::vector<TableCount>> copy_rows(MetadataStore& from, MetadataStore& to,
                                          const CopyProgress& progress);

}  // namespace berth::store
