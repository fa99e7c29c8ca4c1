// SPDX-License-Identifier: Apache-2.0
// PgConn: statements over libpq. Every statement runs with PQexecParams (the extended
// protocol: parameters never spliced into SQL), text and integers as text with their types
// named (TEXT, INT8), blobs as binary BYTEA; results come back as text, BYTEA in hex.
#include "store/postgres/pg_conn.h"

#include <cstdlib>
#include <vector>

#include "common/ascii.h"
#include "common/log.h"

namespace berth::store::pg {

namespace {

// Type OIDs (server/catalog/pg_type_d.h, stable across releases).
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;

// The advisory lock migrations take: "berth" in ASCII, one key for every berth database.
constexpr int64_t kSchemaLockKey = 0x6265727468;

const sql::Dialect kPostgres{
    .name = "postgres",
    .integer = "BIGINT",
    .text = "TEXT COLLATE \"C\"",
    .blob = "BYTEA",
    .rowid_pk = "BIGSERIAL PRIMARY KEY",
    .autoinc_pk = "BIGSERIAL PRIMARY KEY",
    .without_rowid = "",
    .for_update = " FOR UPDATE",
    .for_share = " FOR SHARE",
    .baseline_version = 1,
    // Creation order: the tables' oids grow as they are created.
    .columns_sql =
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
        "COALESCE(pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT "
        "NULL, false) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.oid, a.attnum",
    .references_sql =
        "SELECT a.relname, b.relname FROM pg_constraint c JOIN pg_class a ON a.oid = c.conrelid "
        "JOIN pg_class b ON b.oid = c.confrelid WHERE c.contype = 'f' "
        "AND c.connamespace = current_schema()::regnamespace",
    .sync_serial =
        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
        "COALESCE(MAX(\"{column}\"), 0) + 1, false) FROM \"{table}\"",
};

// SQLSTATE classes (PostgreSQL manual, appendix A) to berth's codes.
Errc errc_of(const std::string& state) {
  if (state.rfind("23", 0) == 0) {
    return Errc::Conflict;  // integrity constraint violation: unique, foreign key, not null
  }
  if (state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "53300") {
    return Errc::Unavailable;  // connection lost, server shutting down or starting, no slots
  }
  if (state == "40001" || state == "40P01") {
    return Errc::Unavailable;  // serialization failure, deadlock: a retry may well succeed
  }
  if (state == "53100") {
    return Errc::NoSpace;
  }
  return Errc::Internal;
}

std::string trimmed(const char* msg) {
  std::string m = msg ? msg : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) {
    m.pop_back();
  }
  return m.empty() ? "unknown error" : m;
}

// BYTEA's text output (bytea_output = hex, the default since 9.0): "\x" then two hex digits a
// byte.
std::string unhex_bytea(const char* p, int n) {
  if (n < 2 || p[0] != '\\' || p[1] != 'x') {
    return std::string(p, static_cast<size_t>(n));
  }
  std::string out;
  out.reserve(static_cast<size_t>(n - 2) / 2);
  for (int i = 2; i + 1 < n; i += 2) {
    out.push_back(static_cast<char>(ascii::hex_digit(p[i]) << 4 | ascii::hex_digit(p[i + 1])));
  }
  return out;
}

class PgCursor final : public sql::Cursor {
 public:
  PgCursor(PgConn& c, std::string sql) : c_(c), sql_(number_placeholders(sql)) {}
  ~PgCursor() override { PQclear(res_); }
  PgCursor(const PgCursor&) = delete;
  PgCursor& operator=(const PgCursor&) = delete;

  void set_text(int i, const std::string& s) override { set(i, kTextOid, s, 0); }
  void set_blob(int i, const std::string& s) override { set(i, kByteaOid, s, 1); }
  void set_i64(int i, int64_t v) override { set(i, kInt8Oid, std::to_string(v), 0); }
  void reset() override {
    PQclear(res_);
    res_ = nullptr;
    row_ = -1;
    params_.clear();
  }
  Result<bool> step() override {
    if (res_ == nullptr) {
      std::vector<Oid> types(params_.size(), kTextOid);
      std::vector<const char*> values(params_.size(), nullptr);
      std::vector<int> lengths(params_.size(), 0);
      std::vector<int> formats(params_.size(), 0);
      for (size_t i = 0; i < params_.size(); ++i) {
        if (params_[i].set) {
          types[i] = params_[i].type;
          values[i] = params_[i].value.c_str();
          lengths[i] = static_cast<int>(params_[i].value.size());
          formats[i] = params_[i].format;
        }
      }
      BERTH_ASSIGN_OR_RETURN(res_, c_.run(sql_, static_cast<int>(params_.size()), types.data(),
                                          values.data(), lengths.data(), formats.data()));
    }
    ++row_;
    return row_ < PQntuples(res_);
  }
  std::string text(int col) override {
    if (res_ == nullptr || PQgetisnull(res_, row_, col)) {
      return {};
    }
    const char* p = PQgetvalue(res_, row_, col);
    int n = PQgetlength(res_, row_, col);
    if (PQftype(res_, col) == kByteaOid) {
      return unhex_bytea(p, n);
    }
    return std::string(p, static_cast<size_t>(n));
  }
  int64_t i64(int col) override {
    if (res_ == nullptr || PQgetisnull(res_, row_, col)) {
      return 0;
    }
    return std::strtoll(PQgetvalue(res_, row_, col), nullptr, 10);
  }

 private:
  struct Param {
    bool set = false;
    Oid type = kTextOid;
    std::string value;
    int format = 0;
  };
  void set(int i, Oid type, std::string value, int format) {
    if (i < 1) {
      return;
    }
    if (params_.size() < static_cast<size_t>(i)) {
      params_.resize(static_cast<size_t>(i));
    }
    params_[static_cast<size_t>(i - 1)] = Param{true, type, std::move(value), format};
  }

  PgConn& c_;
  std::string sql_;
  std::vector<Param> params_;
  PGresult* res_ = nullptr;
  int row_ = -1;
};

}  // namespace

const sql::Dialect& dialect() { return kPostgres; }

std::string number_placeholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;  // inside '...' or "..."
  for (char ch : sql) {
    if (quote != 0) {
      if (ch == quote) {
        quote = 0;  // a doubled quote closes and reopens: same result
      }
      out.push_back(ch);
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      out.push_back(ch);
    } else if (ch == '?') {
      out.push_back('$');
      out.append(std::to_string(++n));
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::unique_ptr<sql::Cursor> PgConn::prepare(const std::string& sql) {
  return std::make_unique<PgCursor>(*this, sql);
}

Result<PGresult*> PgConn::check(PGresult* res) {
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    const char* n = PQcmdTuples(res);
    changes_ = (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
    ++ran_;
    return res;
  }
  std::string state;
  std::string msg;
  if (res) {
    const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    state = s ? s : "";
    msg = trimmed(PQresultErrorMessage(res));
  } else {
    msg = trimmed(PQerrorMessage(pg_));
  }
  PQclear(res);
  bool lost = PQstatus(pg_) != CONNECTION_OK;
  Errc code = lost ? Errc::Unavailable : errc_of(state);
  if (lost && ran_ == 0) {
    lost_first_ = true;
  }
  ++ran_;
  return Error(code, "postgres: " + msg + (state.empty() ? "" : " (SQLSTATE " + state + ")"));
}

Result<PGresult*> PgConn::run(const std::string& sql, int n, const Oid* types,
                              const char* const* values, const int* lengths, const int* formats) {
  return check(PQexecParams(pg_, sql.c_str(), n, types, values, lengths, formats, 0));
}

Status PgConn::exec(const std::string& sql) {
  // The simple protocol: several statements in one string (the schema).
  BERTH_ASSIGN_OR_RETURN(PGresult * res, check(PQexec(pg_, sql.c_str())));
  PQclear(res);
  return ok();
}

Status PgConn::lock_schema() {
  // Held to the end of the migration's transaction; a second node starting now waits here and
  // then finds the schema current.
  BERTH_TRY(exec("SELECT pg_advisory_xact_lock(" + std::to_string(kSchemaLockKey) + ")"));
  return exec(
      "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL, "
      "applied_at BIGINT NOT NULL)");
}

Result<int> PgConn::schema_version() {
  sql::Stmt exists(*this, "SELECT to_regclass('schema_version') IS NOT NULL");
  BERTH_ASSIGN_OR_RETURN(bool row, exists.step());
  if (!row || exists.text(0) != "t") {
    return 0;
  }
  sql::Stmt st(*this, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
  BERTH_ASSIGN_OR_RETURN(row, st.step());
  return row ? static_cast<int>(st.i64(0)) : 0;
}

Status PgConn::set_schema_version(int version) {
  // One row per migration run: the history of the database's upgrades.
  sql::Stmt st(*this,
               "INSERT INTO schema_version(version, applied_at) "
               "VALUES(?, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))");
  st.bind(1, int64_t{version});
  return st.run();
}

}  // namespace berth::store::pg
