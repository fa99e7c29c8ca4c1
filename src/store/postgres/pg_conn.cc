// SPDX-License-Identifier: Apache-2.0
// PgConn: statements over libpq. Every statement runs with PQsendQueryParams (the extended
// protocol: parameters never spliced into SQL), text and integers as text with their types
// named (TEXT, INT8), blobs as binary BYTEA; results come back as text, BYTEA in hex. The
// connection is non-blocking and every wait for the server polls its socket until a deadline
// (pg_conn.h).
#include "store/postgres/pg_conn.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/ascii.h"
#include "common/bounded_call.h"
#include "common/log.h"

namespace berth::store::pg {

namespace {

using PgClock = std::chrono::steady_clock;

// Cancel requests still waiting for a server that does not answer (a stopped one answers
// nothing until it runs again): a few at most, so that a long outage does not pile up threads.
std::atomic<int> pg_cancels_in_flight{0};
constexpr int kMaxPgCancelsInFlight = 4;

// Waits until fd is ready for `events` (or has an error, which libpq then reads): 1; 0 once
// the deadline has passed; -1 when poll itself fails (errno).
int wait_pg_socket(int fd, short events, Deadline deadline) {
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - PgClock::now()).count();
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX)));
    if (n > 0) {
      return 1;
    }
    if (n == 0) {
      if (PgClock::now() >= deadline) {
        return 0;
      }
      continue;
    }
    if (errno != EINTR) {
      return -1;
    }
  }
}

// PQcancel opens a new connection to the server and waits for it to close it: on a server that
// does not answer it waits as long as the server is away, so it runs on a thread of its own.
void cancel_pg_in_background(PGcancel* cancel) {
  if (cancel == nullptr) {
    return;
  }
  if (pg_cancels_in_flight.fetch_add(1) >= kMaxPgCancelsInFlight) {
    pg_cancels_in_flight.fetch_sub(1);
    PQfreeCancel(cancel);
    return;
  }
  try {
    std::thread([cancel] {
      char why[256];
      (void)PQcancel(cancel, why, sizeof why);
      PQfreeCancel(cancel);
      pg_cancels_in_flight.fetch_sub(1);
    }).detach();
  } catch (const std::system_error&) {
    pg_cancels_in_flight.fetch_sub(1);
    PQfreeCancel(cancel);
  }
}

std::string pg_duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) {
    return std::to_string(d.count() / 1000) + " s";
  }
  return std::to_string(d.count()) + " ms";
}

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

namespace {

// connect_until's work, bounded by `deadline` except where libpq resolves host names.
Result<PGconn*> connect_polling(const char* const* keys, const char* const* values,
                                Deadline deadline) {
  PGconn* pg = PQconnectStartParams(keys, values, 1);
  if (pg == nullptr) {
    return Error(Errc::Unavailable, "out of memory");
  }
  // As the libpq manual's loop: start as if PQconnectPoll had asked for writing.
  PostgresPollingStatusType st =
      PQstatus(pg) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    int fd = PQsocket(pg);
    if (fd < 0) {
      st = PGRES_POLLING_FAILED;
      break;
    }
    int w = wait_pg_socket(fd, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
    if (w <= 0) {
      std::string why =
          w == 0 ? "no answer in time (timeout expired)" : std::string(std::strerror(errno));
      std::string at = std::string("connection to server at \"") + (PQhost(pg) ? PQhost(pg) : "") +
                       "\", port " + (PQport(pg) ? PQport(pg) : "") + " failed: " + why;
      PQfinish(pg);
      return Error(Errc::Unavailable, at);
    }
    st = PQconnectPoll(pg);
  }
  if (st == PGRES_POLLING_FAILED) {
    std::string msg = trimmed(PQerrorMessage(pg));
    PQfinish(pg);
    return Error(Errc::Unavailable, msg);
  }
  // Statements are sent without blocking too (PgConn::finish flushes them with a deadline).
  if (PQsetnonblocking(pg, 1) != 0) {
    std::string msg = trimmed(PQerrorMessage(pg));
    PQfinish(pg);
    return Error(Errc::Unavailable, "cannot make the connection non-blocking: " + msg);
  }
  return pg;
}

// How long past the deadline a connect may run before the caller stops waiting for it: polls
// end at the deadline by themselves, so only a host name lookup still running gets here.
constexpr auto kLookupGrace = std::chrono::milliseconds(100);

}  // namespace

Result<PGconn*> connect_until(const char* const* keys, const char* const* values,
                              Deadline deadline) {
  // libpq looks host names up with a blocking getaddrinfo (in PQconnectStartParams, and in
  // PQconnectPoll for each further host of a multi-host DSN) that no deadline reaches: a DNS
  // server that does not answer would hold this thread, and the request behind it, for the
  // resolver's own timeouts. So the connect runs on a thread of its own, on copies of the
  // parameters, and is let go at the deadline.
  std::vector<std::string> k, v;
  for (size_t i = 0; keys[i] != nullptr; ++i) {
    k.emplace_back(keys[i]);
    v.emplace_back(values[i] != nullptr ? values[i] : "");
  }
  auto run = [k = std::move(k), v = std::move(v), deadline] {
    std::vector<const char*> kp, vp;
    for (size_t i = 0; i < k.size(); ++i) {
      kp.push_back(k[i].c_str());
      vp.push_back(v[i].c_str());
    }
    kp.push_back(nullptr);
    vp.push_back(nullptr);
    return connect_polling(kp.data(), vp.data(), deadline);
  };
  auto late = [](Result<PGconn*> r) {
    if (r) {
      PQfinish(*r);
    }
  };
  auto r = bounded_call<Result<PGconn*>>(std::move(run), late, deadline + kLookupGrace);
  if (!r) {
    return Error(Errc::Unavailable,
                 "no answer in time while looking up the server's host name (timeout expired)");
  }
  return std::move(*r);
}

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
  // What the latest failure was, not whether any was: an operation retried for a conflict
  // must have failed because of it.
  conflicted_ = !lost && (state == "40001" || state == "40P01");
  ++ran_;
  return Error(code, "postgres: " + msg + (state.empty() ? "" : " (SQLSTATE " + state + ")"));
}

Result<PGresult*> PgConn::run(const std::string& sql, int n, const Oid* types,
                              const char* const* values, const int* lengths, const int* formats) {
  if (pg_ == nullptr) {
    return Error(Errc::Unavailable, "postgres: the connection was dropped after a timeout");
  }
  if (PQsendQueryParams(pg_, sql.c_str(), n, types, values, lengths, formats, 0) == 0) {
    return check(nullptr);
  }
  return finish();
}

Status PgConn::exec(const std::string& sql) {
  if (pg_ == nullptr) {
    return Error(Errc::Unavailable, "postgres: the connection was dropped after a timeout");
  }
  // The simple protocol: several statements in one string (the schema).
  if (PQsendQuery(pg_, sql.c_str()) == 0) {
    return check(nullptr).error();
  }
  BERTH_ASSIGN_OR_RETURN(PGresult * res, finish());
  PQclear(res);
  return ok();
}

Result<PGresult*> PgConn::finish() {
  const Deadline deadline = PgClock::now() + query_timeout_;
  // Send what the non-blocking send left in libpq's buffer, reading meanwhile (a server may
  // answer before it has read everything).
  while (true) {
    int f = PQflush(pg_);
    if (f <= 0) {
      break;  // sent, or failed: the results below report a lost connection
    }
    int w = wait_pg_socket(PQsocket(pg_), POLLIN | POLLOUT, deadline);
    if (w == 0) {
      return give_up();
    }
    if (w < 0) {
      return drop_lost(std::string("poll: ") + std::strerror(errno));
    }
    if (PQconsumeInput(pg_) == 0) {
      break;
    }
  }
  // Every result of the statement(s), keeping the last (PQexec's answer: an error stops the
  // rest of a multi-statement string, so an error is the last).
  PGresult* last = nullptr;
  while (true) {
    // PQgetResult blocks while libpq is busy, unless the connection is already closed (then
    // it answers with the error at once).
    while (PQisBusy(pg_) && PQsocket(pg_) >= 0) {
      int w = wait_pg_socket(PQsocket(pg_), POLLIN, deadline);
      if (w <= 0) {
        PQclear(last);
        return w == 0 ? give_up() : drop_lost(std::string("poll: ") + std::strerror(errno));
      }
      if (PQconsumeInput(pg_) == 0 && PQsocket(pg_) >= 0) {
        PQclear(last);
        return drop_lost(trimmed(PQerrorMessage(pg_)));
      }
    }
    PGresult* res = PQgetResult(pg_);
    if (res == nullptr) {
      break;
    }
    PQclear(last);
    last = res;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
        PQstatus(pg_) == CONNECTION_BAD) {
      break;
    }
  }
  return check(last);
}

Error PgConn::give_up() {
  timed_out_ = true;
  conflicted_ = false;
  ++ran_;
  PGcancel* cancel = PQgetCancel(pg_);
  // Closed before the cancel is sent: the server, when it reads again, finds the connection
  // gone and rolls back whatever transaction it had open; nothing of it is committed.
  PQfinish(pg_);
  pg_ = nullptr;
  cancel_pg_in_background(cancel);
  std::string msg = "postgres: no answer within store.postgres.query_timeout (" +
                    pg_duration_text(query_timeout_) + ") from " + describe_ +
                    ": the connection was dropped";
  log::get("store")->warn("postgres query timed out timeout_ms={} {}; connection dropped",
                          query_timeout_.count(), describe_);
  return Error(Errc::Unavailable, msg);
}

Error PgConn::drop_lost(const std::string& why) {
  ++ran_;
  PQfinish(pg_);
  pg_ = nullptr;
  return Error(Errc::Unavailable, "postgres: connection lost: " + why);
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
