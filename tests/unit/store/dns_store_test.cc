// SPDX-License-Identifier: Apache-2.0
// The SQLite store's DNS zones: a row per zone and per record set, a batch writing only its
// sets under the serial check, and the schema versions: migration 1 moving the sets out of
// the zone documents b526c8c wrote, migration 2 moving TSIG keys and health checks into
// objects, and a database newer than the binary refused.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "store/store.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

// Runs SQL on a database file with SQLite itself (not the store), as an older or newer
// release would have.
void raw_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  std::string err = msg != nullptr ? msg : "";
  sqlite3_free(msg);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << err;
}

int64_t raw_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

TEST(DnsStoreTest, MigrationOneMovesEverySetOutOfTheZoneDocument) {
  test::TempDir dir;
  std::string path = dir / "berth.db";
  // The dns_zones table and a document as b526c8c wrote them (user_version 0).
  raw_sql(path,
          "CREATE TABLE dns_zones(name TEXT PRIMARY KEY, serial INTEGER NOT NULL, document TEXT "
          "NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;"
          "INSERT INTO dns_zones VALUES('example.com', 9, '{\"record_sets\":["
          "{\"Name\":\"example.com.\",\"Type\":\"SOA\",\"TTL\":900,\"ResourceRecords\":[{\"Value\":"
          "\"ns1.example.com. hostmaster.example.com. 9 3600 900 1209600 300\"}]},"
          "{\"Name\":\"Lb.example.com.\",\"Type\":\"a\",\"TTL\":60,\"ResourceRecords\":[{\"Value\":"
          "\"192.0.2.1\"}],\"SetIdentifier\":\"eu\",\"Weight\":10}],"
          "\"allow_transfer\":[\"192.0.2.53\"],\"also_notify\":[]}', 1, 2);");
  {
    auto s = open_sqlite(path);
    ASSERT_TRUE(s) << s.error().message();
    auto z = (*s)->get_dns_zone("example.com");
    ASSERT_TRUE(z) << z.error().message();
    EXPECT_EQ(z->serial, 9);
    EXPECT_EQ(z->document.find("record_sets"), std::string::npos) << z->document;
    EXPECT_NE(z->document.find("192.0.2.53"), std::string::npos) << z->document;
    ASSERT_EQ(z->record_sets.size(), 2u);
    EXPECT_EQ(z->record_sets[0].name, "example.com");
    EXPECT_EQ(z->record_sets[0].type, "SOA");
    EXPECT_EQ(z->record_sets[1].name, "lb.example.com");  // keys are lower-case, types upper
    EXPECT_EQ(z->record_sets[1].type, "A");
    EXPECT_EQ(z->record_sets[1].set_identifier, "eu");
    EXPECT_NE(z->record_sets[1].document.find("\"Weight\":10"), std::string::npos);
  }
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), 2);
  // Opening again runs nothing twice.
  auto again = open_sqlite(path);
  ASSERT_TRUE(again) << again.error().message();
  auto z = (*again)->get_dns_zone("example.com");
  ASSERT_TRUE(z);
  EXPECT_EQ(z->record_sets.size(), 2u);
}

TEST(DnsStoreTest, ANewerSchemaIsRefusedNamingBothVersions) {
  test::TempDir dir;
  std::string path = dir / "berth.db";
  raw_sql(path, "PRAGMA user_version = 7;");
  auto s = open_sqlite(path);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("schema version 7"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("(2)"), std::string::npos) << s.error().message();
}

TEST(DnsStoreTest, MigrationTwoMovesTsigKeysAndHealthChecksToObjects) {
  test::TempDir dir;
  std::string path = dir / "berth.db";
  // dns_objects as c69d6d0 wrote it, at user_version 1.
  raw_sql(path,
          "CREATE TABLE dns_objects(kind TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT "
          "NULL, created_at INTEGER NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID;"
          "INSERT INTO dns_objects VALUES('tsig', 'acme', '{\"secret\":\"v1:x\"}', 11);"
          "INSERT INTO dns_objects VALUES('healthcheck', 'hc-1', '{\"type\":\"TCP\"}', 12);"
          "PRAGMA user_version = 1;");
  {
    auto s = open_sqlite(path);
    ASSERT_TRUE(s) << s.error().message();
    auto keys = (*s)->list_objects("tsig");
    ASSERT_TRUE(keys) << keys.error().message();
    ASSERT_EQ(keys->size(), 1u);
    EXPECT_EQ((*keys)[0].name, "acme");
    EXPECT_EQ((*keys)[0].document, "{\"secret\":\"v1:x\"}");
    EXPECT_EQ((*keys)[0].created_at, 11);
    auto checks = (*s)->list_objects("healthcheck");
    ASSERT_TRUE(checks) << checks.error().message();
    ASSERT_EQ(checks->size(), 1u);
    EXPECT_EQ((*checks)[0].name, "hc-1");
  }
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), 2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'dns_objects'"), 0);
}

class DnsStoreEngineTest : public ::testing::TestWithParam<test::StoreEngine> {};

TEST_P(DnsStoreEngineTest, ABatchWritesOnlyItsSetsUnderTheSerial) {
  test::StoreHome home(GetParam());
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  auto s = home.open();
  ASSERT_TRUE(s) << s.error().message();
  MetadataStore& st = **s;
  DnsZoneRow z{"example.com", 1, "{}", 10, 10, {}};
  z.record_sets = {{"example.com", "SOA", "", "soa1"},
                   {"a.example.com", "A", "", "a1"},
                   {"b.example.com", "A", "", "b1"}};
  ASSERT_TRUE(st.write_dns_zones({{DnsZoneWrite::Op::Create, z, 0, {}}}));

  DnsZoneWrite w{DnsZoneWrite::Op::Update, DnsZoneRow{"example.com", 2, "{}", 0, 11, {}}, 1, {}};
  w.row.record_sets = {{"example.com", "SOA", "", "soa2"}, {"c.example.com", "A", "", "c2"}};
  w.removed_sets = {{"a.example.com", "A", "", ""}};
  ASSERT_TRUE(st.write_dns_zones({w}));
  auto got = st.get_dns_zone("example.com");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->serial, 2);
  std::vector<std::string> docs;
  for (const auto& r : got->record_sets) {
    docs.push_back(r.name + "=" + r.document);
  }
  EXPECT_EQ(docs,
            (std::vector<std::string>{"b.example.com=b1", "c.example.com=c2", "example.com=soa2"}));

  // A batch computed from serial 1 lost the race: nothing of it lands.
  DnsZoneWrite late{DnsZoneWrite::Op::Update, DnsZoneRow{"example.com", 2, "{}", 0, 12, {}}, 1, {}};
  late.row.record_sets = {{"d.example.com", "A", "", "d"}};
  late.removed_sets = {{"b.example.com", "A", "", ""}};
  auto r = st.write_dns_zones({late});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  auto same = st.get_dns_zone("example.com");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->record_sets.size(), 3u);

  // Removing the zone removes its sets; a zone made again under the name starts empty.
  ASSERT_TRUE(st.write_dns_zones(
      {{DnsZoneWrite::Op::Remove, DnsZoneRow{"example.com", 0, "", 0, 0, {}}, 0, {}}}));
  ASSERT_TRUE(st.write_dns_zones(
      {{DnsZoneWrite::Op::Create, DnsZoneRow{"example.com", 1, "{}", 1, 1, {}}, 0, {}}}));
  auto fresh = st.list_dns_zones();
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->size(), 1u);
  EXPECT_TRUE((*fresh)[0].record_sets.empty());
}

INSTANTIATE_TEST_SUITE_P(Engines, DnsStoreEngineTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
