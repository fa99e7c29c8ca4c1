// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: schema versions. PRAGMA user_version is the version a database is at
// (0: the baseline schema of commit 0657134, which kSchema in sqlite_store.cc still creates);
// each numbered migration below moves it one step, and every step a database is missing runs
// when the store opens, in order, in one transaction. A released migration is never edited:
// a fix is the next migration (docs/architecture.md, "Schema and upgrades").
#include <cctype>

#include "common/json.h"
#include "common/log.h"
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

namespace {

// 1: DNS zones as one row per record set. Up to b526c8c a zone's sets lived inside its
// dns_zones.document ({"record_sets":[...], "allow_transfer":[...], "also_notify":[...]}), so
// every change rewrote the whole zone. Each set moves to dns_record_sets (created by kSchema)
// under its key, and the zone's document keeps only its settings. A document that is not JSON
// is left as it was (and stays unserved, as it was before: the DNS service logs it).
Status migrate_dns_record_sets(sqlite3* db) {
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
           "INSERT OR REPLACE INTO dns_record_sets(zone, name, type, set_identifier, document) "
           "VALUES(?,?,?,?,?)");
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

struct Migration {
  int version;  // the user_version it leaves the database at
  const char* what;
  Status (*run)(sqlite3* db);
};

const Migration kMigrations[] = {
    {1, "DNS zones: one row per record set", migrate_dns_record_sets},
};

constexpr int kSchemaVersion = 1;

Result<int> user_version(sqlite3* db) {
  Stmt st(db, "PRAGMA user_version");
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  return row ? static_cast<int>(st.i64(0)) : 0;
}

}  // namespace

Status SqliteMetadataStore::migrate(const std::string& path, const char* baseline) {
  BERTH_ASSIGN_OR_RETURN(int version, user_version(db_));
  if (version > kSchemaVersion) {
    return Error(Errc::FailedPrecondition,
                 "metadata store " + path + " is at schema version " + std::to_string(version) +
                     ", newer than this berthd knows (" + std::to_string(kSchemaVersion) +
                     "): it was written by a later release; run that release or restore a backup");
  }
  BERTH_TRY(exec(baseline));
  if (version == kSchemaVersion) {
    return ok();
  }
  std::lock_guard lock(mu_);
  Tx tx(*this);
  // Read the version again inside the transaction: another process may have migrated first.
  BERTH_ASSIGN_OR_RETURN(version, user_version(db_));
  for (const auto& m : kMigrations) {
    if (m.version <= version) {
      continue;
    }
    auto s = m.run(db_);
    if (!s) {
      return s.error().with_context(fmt::format("schema migration {} ({})", m.version, m.what));
    }
    log::get("store")->info("schema migrated to={} what=\"{}\"", m.version, m.what);
  }
  BERTH_TRY(exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion).c_str()));
  return tx.commit();
}

}  // namespace berth::store
