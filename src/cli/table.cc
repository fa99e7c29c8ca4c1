// SPDX-License-Identifier: Apache-2.0
#include "cli/table.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "cli/util.h"

namespace berth::cli {

namespace {

// Columns a cell takes on a terminal: UTF-8 characters, not bytes ("→" is three bytes).
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;  // not a continuation byte
  }));
}

}  // namespace

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], width(r[i]));
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(w[i] - width(r[i]) + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

void print_items(const Json& items, const std::vector<Column>& columns) {
  std::vector<std::vector<std::string>> rows;
  rows.emplace_back();
  for (const auto& c : columns) {
    rows.back().push_back(c.header);
  }
  if (items.is_array()) {
    for (const auto& item : items) {
      rows.emplace_back();
      for (const auto& c : columns) {
        rows.back().push_back(c.cell(item));
      }
    }
  }
  print_table(rows);
}

int print_list(const Result<Json>& answer, const std::string& key, bool json,
               const std::vector<Column>& columns) {
  if (!answer) {
    return fail(answer.error());
  }
  if (json) {
    return print_json(*answer);
  }
  print_items(answer->contains(key) ? (*answer)[key] : Json::array(), columns);
  return 0;
}

Column field(std::string header, std::string key) {
  return Column{std::move(header), [key = std::move(key)](const Json& x) {
                  std::string v = str(x, key.c_str());
                  return v.empty() ? std::string("-") : v;
                }};
}

}  // namespace berth::cli
