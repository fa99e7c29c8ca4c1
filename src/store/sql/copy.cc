// SPDX-License-Identifier: Apache-2.0
// copy_rows() and non_empty_tables() (store/copy.h): a whole database copied table by table,
// column by column, through the engine-neutral Conn. What is engine-specific, reading the
// catalog and moving id sequences, is the Dialect's (columns_sql, references_sql,
// sync_serial).
#include "store/copy.h"

#include <algorithm>
#include <map>

#include "store/sql/sql_store.h"

namespace berth::store {

namespace {

using sql::Conn;
using sql::Stmt;

// Tables an engine keeps for itself, not the schema's: PostgreSQL's record of schema versions
// (PgConn::lock_schema). They are neither copied nor counted.
bool is_engine_table(const std::string& t) { return t == "schema_version"; }

enum class Kind { Integer, Text, Blob };

struct Column {
  std::string name;
  Kind kind = Kind::Text;
  bool serial = false;  // an id column a sequence fills (PostgreSQL's BIGSERIAL)
};

struct Table {
  std::string name;
  std::vector<Column> columns;
};

// The catalog's type names: SQLite's declared types (lowered), PostgreSQL's format_type().
Kind kind_of(const std::string& type) {
  if (type.find("int") != std::string::npos) {
    return Kind::Integer;
  }
  if (type == "blob" || type == "bytea") {
    return Kind::Blob;
  }
  return Kind::Text;
}

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

Result<std::vector<Table>> tables_of(Conn& c) {
  Stmt st(c, c.dialect().columns_sql);
  std::vector<Table> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      break;
    }
    std::string table = st.text(0);
    if (is_engine_table(table)) {
      continue;
    }
    if (out.empty() || out.back().name != table) {
      out.push_back(Table{table, {}});
    }
    std::string serial = st.text(3);
    out.back().columns.push_back(Column{st.text(1), kind_of(st.text(2)),
                                        serial == "1" || serial == "t" || serial == "true"});
  }
  return out;
}

using References = std::vector<std::pair<std::string, std::string>>;

Result<References> references_of(Conn& c) {
  Stmt st(c, c.dialect().references_sql);
  References out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      break;
    }
    out.emplace_back(st.text(0), st.text(1));
  }
  return out;
}

// The order that inserts a referenced table's rows before those referencing them: creation
// order, with a table moved after every table its foreign keys name (the order of creation
// alone is not enough: SQLite's way of changing a table re-creates it, after its dependents).
// A cycle, which the schema has none of, keeps creation order (the insert then says which).
std::vector<Table> in_dependency_order(std::vector<Table> tables, const References& refs) {
  std::vector<Table> out;
  // Still in `tables`: not placed yet.
  auto waiting = [&tables](const std::string& name) {
    return std::any_of(tables.begin(), tables.end(),
                       [&name](const Table& t) { return t.name == name; });
  };
  auto ready = [&](const Table& t) {
    return std::none_of(refs.begin(), refs.end(), [&](const auto& r) {
      return r.first == t.name && r.second != t.name && waiting(r.second);
    });
  };
  while (!tables.empty()) {
    auto it = std::find_if(tables.begin(), tables.end(), ready);
    if (it == tables.end()) {
      it = tables.begin();
    }
    out.push_back(std::move(*it));
    tables.erase(it);
  }
  return out;
}

Result<int64_t> count_rows(Conn& c, const std::string& table) {
  Stmt st(c, "SELECT COUNT(*) FROM " + quoted(table));
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  return row ? st.i64(0) : int64_t{0};
}

Result<sql::SqlMetadataStore*> sql_store(MetadataStore& st) {
  auto* s = dynamic_cast<sql::SqlMetadataStore*>(&st);
  if (s == nullptr) {
    return Error(Errc::Internal, "not an SQL metadata store");
  }
  return s;
}

std::string replace_all(std::string s, const std::string& token, const std::string& value) {
  for (size_t at = s.find(token); at != std::string::npos; at = s.find(token, at + value.size())) {
    s.replace(at, token.size(), value);
  }
  return s;
}

// The target must have every table and column of the source (the same schema version makes
// it so; a hand-edited database would not be).
Status check_columns(const std::vector<Table>& from, const std::vector<Table>& to,
                     const std::string& target) {
  std::map<std::string, const Table*> by_name;
  for (const auto& t : to) {
    by_name[t.name] = &t;
  }
  for (const auto& t : from) {
    auto it = by_name.find(t.name);
    if (it == by_name.end()) {
      return Error(Errc::FailedPrecondition,
                   target + " has no table " + t.name + ": its schema differs from the source's");
    }
    for (const auto& c : t.columns) {
      bool found = false;
      for (const auto& tc : it->second->columns) {
        found = found || tc.name == c.name;
      }
      if (!found) {
        return Error(Errc::FailedPrecondition, target + " has no column " + t.name + "." + c.name +
                                                   ": its schema differs from the source's");
      }
    }
  }
  return ok();
}

// Copies one table's rows; returns how many.
Result<int64_t> copy_table(Conn& s, Conn& d, const Table& t, const CopyProgress& progress) {
  std::string names;
  std::string marks;
  for (const auto& c : t.columns) {
    names += (names.empty() ? "" : ", ") + quoted(c.name);
    marks += marks.empty() ? "?" : ", ?";
  }
  Stmt sel(s, "SELECT " + names + " FROM " + quoted(t.name));
  Stmt ins(d, "INSERT INTO " + quoted(t.name) + "(" + names + ") VALUES(" + marks + ")");
  int64_t n = 0;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, sel.step());
    if (!row) {
      break;
    }
    ins.reset();
    for (size_t i = 0; i < t.columns.size(); ++i) {
      int col = static_cast<int>(i);
      switch (t.columns[i].kind) {
        case Kind::Integer:
          ins.bind(col + 1, sel.i64(col));
          break;
        case Kind::Text:
          ins.bind(col + 1, sel.text(col));
          break;
        case Kind::Blob:
          ins.bind_blob(col + 1, sel.text(col));
          break;
      }
    }
    if (auto r = ins.run(); !r) {
      return std::move(r).error().with_context("row " + std::to_string(n + 1));
    }
    if (++n % 1000 == 0 && progress) {
      progress(t.name, n);
    }
  }
  if (progress) {
    progress(t.name, n);
  }
  return n;
}

}  // namespace

Result<std::vector<std::string>> non_empty_tables(MetadataStore& st) {
  BERTH_ASSIGN_OR_RETURN(auto* s, sql_store(st));
  BERTH_ASSIGN_OR_RETURN(auto lease, s->pool().acquire());
  Conn& c = lease.conn();
  BERTH_ASSIGN_OR_RETURN(auto tables, tables_of(c));
  std::vector<std::string> out;
  for (const auto& t : tables) {
    BERTH_ASSIGN_OR_RETURN(int64_t n, count_rows(c, t.name));
    if (n > 0) {
      out.push_back(t.name + " (" + std::to_string(n) + (n == 1 ? " row)" : " rows)"));
    }
  }
  return out;
}

Result<std::vector<TableCount>> copy_rows(MetadataStore& from, MetadataStore& to,
                                          const CopyProgress& progress) {
  BERTH_ASSIGN_OR_RETURN(auto* src, sql_store(from));
  BERTH_ASSIGN_OR_RETURN(auto* dst, sql_store(to));
  BERTH_ASSIGN_OR_RETURN(auto src_lease, src->pool().acquire());
  BERTH_ASSIGN_OR_RETURN(auto dst_lease, dst->pool().acquire());
  Conn& s = src_lease.conn();
  Conn& d = dst_lease.conn();

  BERTH_ASSIGN_OR_RETURN(int src_version, s.schema_version());
  BERTH_ASSIGN_OR_RETURN(int dst_version, d.schema_version());
  if (src_version != dst_version) {
    return Error(Errc::FailedPrecondition,
                 s.describe() + " is at schema version " + std::to_string(src_version) + ", " +
                     d.describe() + " at " + std::to_string(dst_version) +
                     "; open both with the same berthd (it migrates them) before copying");
  }
  BERTH_ASSIGN_OR_RETURN(auto tables, tables_of(s));
  BERTH_ASSIGN_OR_RETURN(auto target_tables, tables_of(d));
  BERTH_TRY(check_columns(tables, target_tables, d.describe()));
  // Both sides' foreign keys: the same schema has the same ones, and the target's are the
  // ones its inserts must satisfy.
  BERTH_ASSIGN_OR_RETURN(auto refs, references_of(s));
  BERTH_ASSIGN_OR_RETURN(auto target_refs, references_of(d));
  refs.insert(refs.end(), target_refs.begin(), target_refs.end());
  tables = in_dependency_order(std::move(tables), refs);

  // The source's rows as of one moment; the target's all or none.
  sql::Tx read(s, sql::Tx::Kind::Read);
  BERTH_TRY(read.began());
  sql::Tx write(d);
  BERTH_TRY(write.began());
  std::vector<TableCount> counts;
  for (const auto& t : tables) {
    auto n = copy_table(s, d, t, progress);
    if (!n) {
      return std::move(n).error().with_context("copy table " + t.name + " into " + d.describe());
    }
    counts.push_back(TableCount{t.name, 0, *n});
  }
  if (std::string sync = d.dialect().sync_serial; !sync.empty()) {
    for (const auto& t : target_tables) {
      for (const auto& c : t.columns) {
        if (c.serial) {
          Stmt st(d, replace_all(replace_all(sync, "{table}", t.name), "{column}", c.name));
          if (auto r = st.finish(); !r) {
            return std::move(r).error().with_context("id sequence of " + t.name + "." + c.name);
          }
        }
      }
    }
  }
  BERTH_TRY(write.commit());
  BERTH_TRY(read.commit());

  // What each side holds now, counted again rather than trusted.
  for (auto& tc : counts) {
    BERTH_ASSIGN_OR_RETURN(tc.source, count_rows(s, tc.table));
    BERTH_ASSIGN_OR_RETURN(tc.target, count_rows(d, tc.table));
  }
  return counts;
}

}  // namespace berth::store
