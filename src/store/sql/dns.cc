// SPDX-License-Identifier: Apache-2.0
// SqlMetadataStore: DNS zones (a row per zone with its serial and settings, a row per record
// set, written under a serial check) and DNS objects (TSIG keys, health checks).
#include "store/sql/sql_store.h"

namespace berth::store::sql {

namespace {

constexpr const char* kSetColumns = "name, type, set_identifier, document";

DnsRecordSetRow read_set(rows::Row& r) {
  return DnsRecordSetRow{r.text(0), r.text(1), r.text(2), r.text(3)};
}

}  // namespace

Result<DnsZoneRow> SqlMetadataStore::get_dns_zone(const std::string& name) {
  return with_conn([&](Conn& c) -> Result<DnsZoneRow> {
    Stmt st(c, std::string("SELECT ") + rows::kDnsZoneColumns + " FROM dns_zones WHERE name = ?");
    st.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) {
      return Error(Errc::NotFound, "zone " + name + " does not exist");
    }
    DnsZoneRow z = rows::read_dns_zone(st);
    Stmt sets(c, std::string("SELECT ") + kSetColumns +
                     " FROM dns_record_sets WHERE zone = ? ORDER BY name, type, set_identifier");
    sets.bind(1, name);
    BERTH_ASSIGN_OR_RETURN(z.record_sets, sets.read_all(read_set));
    return z;
  });
}

Result<std::vector<DnsZoneRow>> SqlMetadataStore::list_dns_zones() {
  return with_conn([&](Conn& c) -> Result<std::vector<DnsZoneRow>> {
    // One read transaction, so the zones and their sets are one state of the store.
    Tx tx(c, Tx::Kind::Read);
    BERTH_TRY(tx.began());
    auto read = [&]() -> Result<std::vector<DnsZoneRow>> {
      Stmt st(c, std::string("SELECT ") + rows::kDnsZoneColumns + " FROM dns_zones ORDER BY name");
      BERTH_ASSIGN_OR_RETURN(auto zones, st.read_all(rows::read_dns_zone));
      Stmt sets(c, std::string("SELECT zone, ") + kSetColumns +
                       " FROM dns_record_sets ORDER BY zone, name, type, set_identifier");
      size_t z = 0;
      while (true) {
        BERTH_ASSIGN_OR_RETURN(bool row, sets.step());
        if (!row) {
          break;
        }
        std::string zone = sets.text(0);
        while (z < zones.size() && zones[z].name < zone) {
          ++z;
        }
        if (z < zones.size() && zones[z].name == zone) {
          zones[z].record_sets.push_back(
              DnsRecordSetRow{sets.text(1), sets.text(2), sets.text(3), sets.text(4)});
        }
      }
      return zones;
    };
    BERTH_ASSIGN_OR_RETURN(auto zones, read());
    BERTH_TRY(tx.commit());
    return zones;
  });
}

namespace {

// Puts sets (insert or replace) and removes others, by key, in the caller's transaction.
Status write_sets(Conn& db, const std::string& zone, const std::vector<DnsRecordSetRow>& put,
                  const std::vector<DnsRecordSetRow>& removed) {
  if (!removed.empty()) {
    Stmt del(db,
             "DELETE FROM dns_record_sets WHERE zone = ? AND name = ? AND type = ? AND "
             "set_identifier = ?");
    for (const auto& s : removed) {
      del.reset().bind(1, zone).bind(2, s.name).bind(3, s.type).bind(4, s.set_identifier);
      BERTH_TRY(del.run());
    }
  }
  if (!put.empty()) {
    Stmt ins(db,
             "INSERT INTO dns_record_sets(zone, name, type, set_identifier, document) "
             "VALUES(?,?,?,?,?) ON CONFLICT(zone, name, type, set_identifier) DO UPDATE SET "
             "document = excluded.document");
    for (const auto& s : put) {
      ins.reset().bind(1, zone).bind(2, s.name).bind(3, s.type).bind(4, s.set_identifier);
      ins.bind(5, s.document);
      BERTH_TRY(ins.run());
    }
  }
  return ok();
}

}  // namespace

Status SqlMetadataStore::write_dns_zones(const std::vector<DnsZoneWrite>& writes) {
  return with_conn([&](Conn& c) -> Status {
    Tx tx(c);
    for (const auto& w : writes) {
      const auto& z = w.row;
      switch (w.op) {
        case DnsZoneWrite::Op::Create: {
          Stmt st(c,
                  "INSERT INTO dns_zones(name, serial, document, created_at, updated_at) "
                  "VALUES(?,?,?,?,?)");
          rows::bind_dns_zone(st, z);
          auto r = st.step();
          if (!r && r.error().code() == Errc::Conflict) {
            return Error(Errc::AlreadyExists, "zone " + z.name + " already exists");
          }
          BERTH_TRY(r);
          // Leftovers of a zone removed by hand would otherwise join the new one.
          Stmt clear(c, "DELETE FROM dns_record_sets WHERE zone = ?");
          clear.bind(1, z.name);
          BERTH_TRY(clear.run());
          BERTH_TRY(write_sets(c, z.name, z.record_sets, {}));
          break;
        }
        case DnsZoneWrite::Op::Update: {
          Stmt st(c,
                  "UPDATE dns_zones SET serial = ?, document = ?, updated_at = ? "
                  "WHERE name = ? AND serial = ?");
          st.bind(1, z.serial).bind(2, z.document).bind(3, z.updated_at).bind(4, z.name);
          st.bind(5, w.expected_serial);
          BERTH_TRY(st.run_or(
              Error(Errc::Conflict, "zone " + z.name +
                                        " changed while this change was prepared (serial is "
                                        "no longer " +
                                        std::to_string(w.expected_serial) + "): retry")));
          BERTH_TRY(write_sets(c, z.name, z.record_sets, w.removed_sets));
          break;
        }
        case DnsZoneWrite::Op::Remove: {
          Stmt st(c, "DELETE FROM dns_zones WHERE name = ?");
          st.bind(1, z.name);
          BERTH_TRY(st.run_or(Error(Errc::NotFound, "zone " + z.name + " does not exist")));
          Stmt sets(c, "DELETE FROM dns_record_sets WHERE zone = ?");
          sets.bind(1, z.name);
          BERTH_TRY(sets.run());
          break;
        }
      }
    }
    return tx.commit();
  });
}

}  // namespace berth::store::sql
