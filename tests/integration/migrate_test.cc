// SPDX-License-Identifier: Apache-2.0
// `berthd migrate`: an embedded install (berthd as users run it: SQLite, blobs in files) moved to
// PostgreSQL + S3 (RGW). It refuses a source a berthd holds, stops at a damaged blob naming it
// and leaves the target empty, then copies the whole install; berthd on the target config
// serves the image byte for byte with the same users and keys, fsck is clean, and a second
// migrate refuses the now non-empty store. Skipped, saying why, where PostgreSQL or RGW cannot
// run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "integration/registry_client.h"
#include "storage/blob_storage.h"
#include "storage/s3.h"
#include "support/blob_backend.h"
#include "support/harness.h"
#include "support/postgres.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

// Bytes unique to `seed`, `n` long: a layer big enough for several progress lines' worth.
std::string layer_bytes(const std::string& seed, size_t n) {
  std::string s = seed + "\n";
  uint32_t x = static_cast<uint32_t>(std::hash<std::string>{}(seed));
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s.push_back(static_cast<char>(x >> 24));
  }
  return s;
}

std::string dbname_of(const std::string& dsn) {
  auto at = dsn.find("dbname=") + 7;
  return dsn.substr(at, dsn.find(' ', at) - at);
}

TEST(MigrateTest, EmbeddedInstallMovesToPostgresAndS3) {
  if (PostgresServer::shared() == nullptr) {
    GTEST_SKIP() << "PostgreSQL cannot run here: " << PostgresServer::shared_error();
  }
  BlobHome s3(BlobBackend::S3);
  if (!s3.skip_reason().empty()) {
    GTEST_SKIP() << s3.skip_reason();
  }
  auto* pg = PostgresServer::shared();
  TempDir work;
  const std::string src = work / "var";
  const std::string dst = work / "target";

  // 1. An embedded install with an image, a user with a key and a policy, a DNS zone.
  const std::string config = image_config("amd64", "migrate");
  // The big layer is over S3's 5 MiB part minimum: it goes to the bucket as a multipart upload.
  const std::vector<std::string> layers = {layer_bytes("big layer", 12 << 20),
                                           layer_bytes("small layer", 1000)};
  std::string manifest;
  std::string alice_key;
  std::string alice_secret;
  {
    BerthdProcess p(src);
    p.start();
    ASSERT_EQ(p.cli("repo create web/app").code, 0);
    RegistryClient c(p.port(), p.admin().basic_header());
    manifest = push_image(c, "web/app", "v1", config, layers);
    ASSERT_EQ(p.cli("iam user create alice").code, 0);
    auto key = p.cli("iam key create alice --json");
    ASSERT_EQ(key.code, 0) << key.all();
    alice_key = unquote(jq(key.out, ".access_key_id"));
    alice_secret = unquote(jq(key.out, ".secret_access_key"));
    write_file(work / "pull.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":["registry:Pull"],"Resource":["repository/web/*"]}]})");
    auto pol = p.cli("iam policy put --user alice pull --file " + (work / "pull.json"));
    ASSERT_EQ(pol.code, 0) << pol.all();
    auto zone = p.cli("dns zone create example.com");
    ASSERT_EQ(zone.code, 0) << zone.all();

    // Refused while this berthd holds the data directory.
    write_file(work / "unused.yaml",
               "version: 1\ndata: " + (work / "unused") + "\nstorage:\n  driver: fs\n");
    auto busy =
        run(bin("berthd") + " migrate --from " + src + " --to-config " + (work / "unused.yaml"));
    EXPECT_EQ(busy.code, 2) << busy.all();
    EXPECT_NE(busy.err.find("in use by a running berthd"), std::string::npos) << busy.err;
    EXPECT_EQ(p.terminate(), 0);
  }

  // 2. The target: a fresh PostgreSQL database, a fresh bucket, another data directory.
  std::string dsn = pg->create_database();
  ASSERT_FALSE(dsn.empty());
  config::Config s3cfg;
  s3.apply(s3cfg);
  const std::string yaml = work / "berthd.yaml";
  write_file(yaml, "version: 1\ndata: " + dst + "\nstore:\n  driver: postgres\n  postgres:\n" +
                       "    dsn: \"" + dsn + "\"\nstorage:\n  driver: s3\n  s3:\n" +
                       "    endpoint: " + s3cfg.storage.s3.endpoint + "\n    region: " +
                       s3cfg.storage.s3.region + "\n    bucket: " + s3cfg.storage.s3.bucket +
                       "\n    access_key_id_file: " + s3cfg.storage.s3.access_key_id_file +
                       "\n    secret_access_key_file: " + s3cfg.storage.s3.secret_access_key_file +
                       "\n    path_style: true\n");
  const std::string migrate = bin("berthd") + " migrate --to-config " + yaml + " --from ";
  storage::S3Client bucket(RgwServer::shared()->client_options(s3cfg.storage.s3.bucket));

  // 3. A copy of the install with one blob damaged (same size): migrate names the blob and
  // leaves the target empty, rows and bucket. Blobs go in digest order: the damaged one is the
  // last, so the others were in the bucket already and must have been removed again.
  const std::string bad = work / "bad";
  ASSERT_EQ(run("cp -a " + src + " " + bad).code, 0);
  const std::string victim =
      std::max({sha256_digest(config), sha256_digest(layers[0]), sha256_digest(layers[1])});
  const std::string victim_path = bad + "/" + storage::blob_key(victim.substr(7));
  std::string damaged = read_file(victim_path);
  ASSERT_FALSE(damaged.empty());
  damaged[damaged.size() / 2] ^= 0x5a;
  write_file(victim_path, damaged);
  auto refused = run(migrate + bad);
  EXPECT_EQ(refused.code, 2) << refused.all();
  EXPECT_NE(refused.err.find("blob " + victim + " does not match its digest"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("the target is left as it was"), std::string::npos) << refused.err;
  auto rows = pg->psql(dbname_of(dsn),
                       "SELECT (SELECT COUNT(*) FROM repositories) + (SELECT COUNT(*) FROM "
                       "principals) + (SELECT COUNT(*) FROM blobs) + (SELECT COUNT(*) FROM "
                       "dns_zones)");
  EXPECT_EQ(rows.out, "0\n") << rows.all();
  auto objects = bucket.list_objects("blobs/");
  ASSERT_TRUE(objects) << objects.error().message();
  EXPECT_TRUE(objects->empty()) << (*objects)[0].key;

  // 4. The real thing.
  auto done = run(migrate + src);
  ASSERT_EQ(done.code, 0) << done.all();
  EXPECT_NE(done.out.find("0 problem(s)"), std::string::npos) << done.out;
  EXPECT_NE(done.out.find("3 blobs copied"), std::string::npos) << done.out;
  EXPECT_NE(done.err.find("berthd migrate: blobs 3/3"), std::string::npos) << done.err;
  objects = bucket.list_objects("blobs/");
  ASSERT_TRUE(objects);
  EXPECT_EQ(objects->size(), 3u);
  EXPECT_EQ(read_file(dst + "/secrets.key"), read_file(src + "/secrets.key"));
  EXPECT_EQ(read_file(dst + "/token.key"), read_file(src + "/token.key"));
  // The blobs are in the bucket, not in the target's data directory.
  EXPECT_EQ(run("find " + dst + " -path '*sha256*' -type f").out, "");

  auto fsck = run(bin("berthd") + " fsck --config " + yaml);
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  EXPECT_NE(fsck.out.find("checked 3 blobs and 1 manifests: 0 problem(s)"), std::string::npos)
      << fsck.all();

  // Once is enough: the store is not empty any more, and migrate says what it found.
  auto again = run(migrate + src);
  EXPECT_EQ(again.code, 2) << again.all();
  EXPECT_NE(again.err.find("is not empty: repositories (1 row)"), std::string::npos) << again.err;

  // 5. berthd on the target serves what the embedded one held.
  BerthdProcess p(dst, {"--config", yaml});
  p.start();
  RegistryClient admin(p.port(), p.admin().basic_header());
  auto m = admin.get("/v2/web/app/manifests/v1", {{"Accept", kOciManifestType}});
  ASSERT_EQ(m.status, 200) << m.describe();
  EXPECT_EQ(m.body, manifest);
  AdminCredentials alice{alice_key, alice_secret};
  RegistryClient as_alice(p.port(), alice.basic_header());
  EXPECT_EQ(as_alice.get("/v2/web/app/blobs/" + sha256_digest(config)).body, config);
  for (const auto& l : layers) {
    auto b = as_alice.get("/v2/web/app/blobs/" + sha256_digest(l));
    ASSERT_EQ(b.status, 200) << b.describe();
    EXPECT_TRUE(b.body == l) << sha256_digest(l);
  }
  auto zones = p.cli("dns zone ls");
  EXPECT_NE(zones.out.find("example.com"), std::string::npos) << zones.all();
  // New rows get fresh ids past the copied ones (PostgreSQL's sequences moved along).
  auto second = p.cli("repo create web/two");
  EXPECT_EQ(second.code, 0) << second.all();
  push_image(admin, "web/two", "v1", image_config("amd64", "after"), {"a layer after"});
  EXPECT_EQ(p.terminate(), 0);
  // The source is left as it was: an embedded berthd could still start on it.
  EXPECT_EQ(run(bin("berthd") + " fsck --data " + src).code, 0);
}

// Without PostgreSQL or S3 (runs everywhere): to another data directory on SQLite and files.
// A dry run writes nothing; a target whose key file differs is refused unless --force.
TEST(MigrateTest, ToAnotherDataDirectoryDryRunAndKeyConflict) {
  TempDir work;
  const std::string src = work / "var";
  const std::string dst = work / "moved";
  const std::string config = image_config("amd64", "moved");
  const std::vector<std::string> layers = {"the only layer"};
  std::string manifest;
  {
    BerthdProcess p(src);
    p.start();
    ASSERT_EQ(p.cli("repo create web/app").code, 0);
    RegistryClient c(p.port(), p.admin().basic_header());
    manifest = push_image(c, "web/app", "v1", config, layers);
    EXPECT_EQ(p.terminate(), 0);
  }
  const std::string yaml = work / "moved.yaml";
  write_file(yaml, "version: 1\ndata: " + dst + "\n");
  const std::string migrate = bin("berthd") + " migrate --from " + src + " --to-config " + yaml;

  auto dry = run(migrate + " --dry-run");
  EXPECT_EQ(dry.code, 0) << dry.all();
  EXPECT_NE(dry.out.find("every blob of " + src + " matches its digest"), std::string::npos)
      << dry.all();
  EXPECT_NE(run("test -e " + dst).code, 0) << "a dry run wrote " << dst;

  write_file(dst + "/secrets.key", "another install's key");
  auto conflict = run(migrate);
  EXPECT_EQ(conflict.code, 2) << conflict.all();
  EXPECT_NE(conflict.err.find("already has secrets.key"), std::string::npos) << conflict.err;
  EXPECT_NE(run("test -e " + dst + "/berth.db").code, 0);

  // A blob already in the target (an earlier, interrupted run, say) is hashed there too: one
  // that does not match its name stops the migration, naming it.
  std::string hex = sha256_digest(layers[0]).substr(7);
  std::string planted = dst + "/" + storage::blob_key(hex);
  write_file(planted, std::string(layers[0].size(), 'x'));
  auto torn = run(migrate + " --force");
  EXPECT_NE(torn.code, 0) << torn.all();
  EXPECT_NE(torn.err.find("is already in the target storage but hashes to"), std::string::npos)
      << torn.all();
  ASSERT_EQ(::unlink(planted.c_str()), 0);

  auto forced = run(migrate + " --force");
  ASSERT_EQ(forced.code, 0) << forced.all();
  EXPECT_NE(forced.out.find("0 problem(s)"), std::string::npos) << forced.out;
  EXPECT_EQ(read_file(dst + "/secrets.key"), read_file(src + "/secrets.key"));
  auto fsck = run(bin("berthd") + " fsck --config " + yaml);
  EXPECT_EQ(fsck.code, 0) << fsck.all();

  BerthdProcess p(dst, {"--config", yaml});
  p.start();
  RegistryClient c(p.port(), p.admin().basic_header());
  auto m = c.get("/v2/web/app/manifests/v1", {{"Accept", kOciManifestType}});
  ASSERT_EQ(m.status, 200) << m.describe();
  EXPECT_EQ(m.body, manifest);
  EXPECT_EQ(c.get("/v2/web/app/blobs/" + sha256_digest(layers[0])).body, layers[0]);
  EXPECT_EQ(p.terminate(), 0);
}

// `berthd config check` reads a file as berthd would run with it: the environment over it.
TEST(MigrateTest, ConfigCheckTakesTheDsnFromTheEnvironment) {
  TempDir work;
  std::string cfg = work / "berthd.yaml";
  write_file(cfg, "store:\n  driver: postgres\n");
  auto without = run("env -u BERTH_STORE_POSTGRES_DSN " + bin("berthd") + " config check " + cfg);
  EXPECT_EQ(without.code, 2) << without.all();
  EXPECT_NE(without.err.find("store.postgres.dsn"), std::string::npos) << without.all();
  auto with = run("BERTH_STORE_POSTGRES_DSN='host=127.0.0.1 port=1 dbname=berth user=berth' " +
                  bin("berthd") + " config check " + cfg);
  EXPECT_EQ(with.code, 0) << with.all();
  EXPECT_NE(with.out.find(": ok"), std::string::npos) << with.out;
}

}  // namespace
}  // namespace berth::test
