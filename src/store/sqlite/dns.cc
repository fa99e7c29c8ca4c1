// SPDX-License-Identifier: Apache-2.0
// SqliteMetadataStore: DNS zones (one JSON document per zone, written under a serial check)
// and DNS objects (TSIG keys, health checks).
#include "store/sqlite/sqlite_store.h"

namespace berth::store {

Result<DnsZoneRow> SqliteMetadataStore::get_dns_zone(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kDnsZoneColumns + " FROM dns_zones WHERE name = ?");
  st.bind(1, name);
  BERTH_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    return Error(Errc::NotFound, "zone " + name + " does not exist");
  }
  return rows::read_dns_zone(st);
}

Result<std::vector<DnsZoneRow>> SqliteMetadataStore::list_dns_zones() {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kDnsZoneColumns + " FROM dns_zones ORDER BY name");
  return st.read_all(rows::read_dns_zone);
}

Status SqliteMetadataStore::write_dns_zones(const std::vector<DnsZoneWrite>& writes) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  for (const auto& w : writes) {
    const auto& z = w.row;
    switch (w.op) {
      case DnsZoneWrite::Op::Create: {
        Stmt st(db_,
                "INSERT INTO dns_zones(name, serial, document, created_at, updated_at) "
                "VALUES(?,?,?,?,?)");
        rows::bind_dns_zone(st, z);
        auto r = st.step();
        if (!r && r.error().code() == Errc::Conflict) {
          return Error(Errc::AlreadyExists, "zone " + z.name + " already exists");
        }
        BERTH_TRY(r);
        break;
      }
      case DnsZoneWrite::Op::Update: {
        Stmt st(db_,
                "UPDATE dns_zones SET serial = ?, document = ?, updated_at = ? "
                "WHERE name = ? AND serial = ?");
        st.bind(1, z.serial).bind(2, z.document).bind(3, z.updated_at).bind(4, z.name);
        st.bind(5, w.expected_serial);
        BERTH_TRY(st.run());
        if (sqlite3_changes(db_) == 0) {
          return Error(Errc::Conflict, "zone " + z.name +
                                           " changed while this change was prepared (serial is "
                                           "no longer " +
                                           std::to_string(w.expected_serial) + "): retry");
        }
        break;
      }
      case DnsZoneWrite::Op::Remove: {
        Stmt st(db_, "DELETE FROM dns_zones WHERE name = ?");
        st.bind(1, z.name);
        BERTH_TRY(st.run());
        if (sqlite3_changes(db_) == 0) {
          return Error(Errc::NotFound, "zone " + z.name + " does not exist");
        }
        break;
      }
    }
  }
  return tx.commit();
}

Status SqliteMetadataStore::put_dns_object(const DnsObjectRow& o, bool create) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string(create ? "INSERT" : "INSERT OR REPLACE") +
                   " INTO dns_objects(kind, name, document, created_at) VALUES(?,?,?,?)");
  rows::bind_dns_object(st, o);
  auto r = st.step();
  if (!r && r.error().code() == Errc::Conflict) {
    return Error(Errc::AlreadyExists, o.kind + " " + o.name + " already exists");
  }
  return r ? ok() : Status(r.error());
}

Result<std::vector<DnsObjectRow>> SqliteMetadataStore::list_dns_objects(const std::string& kind) {
  std::lock_guard lock(mu_);
  Stmt st(db_, std::string("SELECT ") + rows::kDnsObjectColumns +
                   " FROM dns_objects WHERE kind = ? ORDER BY name");
  st.bind(1, kind);
  return st.read_all(rows::read_dns_object);
}

Status SqliteMetadataStore::delete_dns_object(const std::string& kind, const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM dns_objects WHERE kind = ? AND name = ?");
  st.bind(1, kind).bind(2, name);
  BERTH_TRY(st.run());
  if (sqlite3_changes(db_) == 0) {
    return Error(Errc::NotFound, kind + " " + name + " does not exist");
  }
  return ok();
}

}  // namespace berth::store
