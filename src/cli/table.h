// SPDX-License-Identifier: Apache-2.0
// The one table printer of the CLI: columns padded to their widest cell, two spaces apart,
// and the list commands' shared "call, then JSON or table" path.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace berth::cli {

/// One column of a list: its header and how a row's cell is made from a list item.
struct Column {
  std::string header;
  std::function<std::string(const Json&)> cell;
};

/// Prints rows (the first is usually the header) as aligned columns on stdout.
void print_table(const std::vector<std::vector<std::string>>& rows);

/// Prints the items of a JSON array as a table with these columns.
void print_items(const Json& items, const std::vector<Column>& columns);

/// A list command's output: the API's error (exit code), the API's object as it came with
/// --json (docs/cli.md: the CLI's JSON is the API's), or the items under `key` as a table.
int print_list(const Result<Json>& answer, const std::string& key, bool json,
               const std::vector<Column>& columns);

/// A column showing the string field `key` of each item ("-" when empty).
Column field(std::string header, std::string key);

}  // namespace berth::cli
