// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: schema versions. The version a database is at is kept by the engine
// (Conn::schema_version: SQLite's PRAGMA user_version, PostgreSQL's schema_version table);
// 0 is the baseline schema of commit 0657134, which schema.cc still creates. Each numbered
// migration below moves it one step, and every step a database is missing runs when the store
// opens, in order, in one transaction, under the engine's schema lock (Conn::lock_schema:
// BEGIN IMMEDIATE's write lock, a PostgreSQL advisory lock), so that of several nodes starting
// at once one migrates and the others find it done. A released migration is never edited: a fix
// is the next migration (docs/architecture.md, "Schema and upgrades"). Migrations up to the
// dialect's baseline_version predate that engine and never run on it.
#include <cctype>

#include "common/json.h"
#include "common/log.h"
#include "store/sql/sql_store.h"

namespace berth::store::sql {

namespace {

// 1: DNS zones as one row per record set. Up to b526c8c a zone's sets lived inside its
// dns_zones.document ({"record_sets":[...], "allow_transfer":[...], "also_notify":[...]}), so
// every change rewrote the whole zone. Each set moves to dns_record_sets (created by kSchema)
// under its key, and the zone's document keeps only its settings. A document that is not JSON
// is left as it was (and stays unserved, as it was before: the DNS service logs it).
Status migrate_dns_record_sets(Conn& db) {
  Stmt zones(db, "SELECT name, document FROM dns_zones ORDER BY name");
  struct Doc {
    std::string name, document;
  };
  std::vector<Doc> docs;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, zones.step());
    if (!row) {
      break;
    }
    docs.push_back({zones.text(0), zones.text(1)});
  }
  Stmt ins(db,
           "INSERT INTO dns_record_sets(zone, name, type, set_identifier, document) "
           "VALUES(?,?,?,?,?) ON CONFLICT(zone, name, type, set_identifier) DO UPDATE SET "
           "document = excluded.document");
  Stmt upd(db, "UPDATE dns_zones SET document = ? WHERE name = ?");
  for (const auto& d : docs) {
    auto j = parse_json(d.document, "zone document");
    if (!j || !j->is_object()) {
      log::get("store")->error(
          "migration 1: zone {}: stored document is not a JSON object; left "
          "as it is",
          d.name);
      continue;
    }
    Json settings = Json::object();
    settings["allow_transfer"] = j->value("allow_transfer", Json::array());
    settings["also_notify"] = j->value("also_notify", Json::array());
    if (auto sets = j->find("record_sets"); sets != j->end() && sets->is_array()) {
      for (const auto& set : *sets) {
        if (!set.is_object() || !set.value("Name", Json()).is_string() ||
            !set.value("Type", Json()).is_string()) {
          return Error(Errc::DataLoss, "migration 1: zone " + d.name +
                                           ": a record set without Name or Type: " + set.dump());
        }
        std::string name = set["Name"].get<std::string>();
        if (name.size() > 1 && name.back() == '.') {
          name.pop_back();
        }
        for (char& c : name) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        std::string type = set["Type"].get<std::string>();
        for (char& c : type) {
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        std::string id = set.value("SetIdentifier", Json("")).is_string()
                             ? set.value("SetIdentifier", std::string())
                             : std::string();
        ins.reset().bind(1, d.name).bind(2, name).bind(3, type).bind(4, id).bind(5, set.dump());
        BERTH_TRY(ins.run());
      }
    }
    upd.reset().bind(1, settings.dump()).bind(2, d.name);
    BERTH_TRY(upd.run());
  }
  return ok();
}

// 2: TSIG keys and health checks join the other JSON documents in objects. Up to c69d6d0 they
// had a table of their own, dns_objects, of the same shape less updated_at. The table is
// created first when missing (a new database never had it), so one statement list serves both.
// (WHERE true: SQLite would read the ON of an upsert after a bare FROM as a join constraint.)
Status migrate_dns_objects(Conn& db) {
  return db.exec(
      "CREATE TABLE IF NOT EXISTS dns_objects(kind TEXT NOT NULL, name TEXT NOT NULL, "
      "document TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY(kind, name));"
      "INSERT INTO objects(kind, name, document, created_at, updated_at) "
      "SELECT kind, name, document, created_at, created_at FROM dns_objects WHERE true "
      "ON CONFLICT(kind, name) DO NOTHING;"
      "DROP TABLE dns_objects;");
}

struct Migration {
  int version;  // the user_version it leaves the database at
  const char* what;
  Status (*run)(Conn& db);
};

const Migration kMigrations[] = {
    {1, "DNS zones: one row per record set", migrate_dns_record_sets},
    {2, "TSIG keys and health checks move to objects", migrate_dns_objects},
};

constexpr int kSchemaVersion = 2;

}  // namespace

Status SqlMetadataStore::migrate() {
  BERTH_ASSIGN_OR_RETURN(auto lease, pool_->acquire());
  Conn& c = lease.conn();
  auto too_new = [&](int version) {
    return Error(Errc::FailedPrecondition,
                 c.describe() + " is at schema version " + std::to_string(version) +
                     ", newer than this berthd knows (" + std::to_string(kSchemaVersion) +
                     "): it was written by a later release; run that release or restore a backup");
  };
  // Most starts find the schema current: no write lock for them.
  BERTH_ASSIGN_OR_RETURN(int version, c.schema_version());
  if (version > kSchemaVersion) {
    return too_new(version);
  }
  if (version == kSchemaVersion) {
    return c.exec(schema_ddl(c.dialect()));
  }
  Tx tx(c);
  BERTH_TRY(tx.began());
  BERTH_TRY(c.lock_schema());
  // Read the version again under the lock: another process may have migrated first.
  BERTH_ASSIGN_OR_RETURN(version, c.schema_version());
  if (version > kSchemaVersion) {
    return too_new(version);
  }
  if (version == kSchemaVersion) {
    return tx.commit();
  }
  BERTH_TRY(c.exec(schema_ddl(c.dialect())));
  for (const auto& m : kMigrations) {
    if (m.version <= version || m.version <= c.dialect().baseline_version) {
      continue;
    }
    auto s = m.run(c);
    if (!s) {
      return s.error().with_context(fmt::format("schema migration {} ({})", m.version, m.what));
    }
    log::get("store")->info("schema migrated to={} what=\"{}\"", m.version, m.what);
  }
  BERTH_TRY(c.set_schema_version(kSchemaVersion));
  return tx.commit();
}

}  // namespace berth::store::sql
