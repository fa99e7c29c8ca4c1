// SPDX-License-Identifier: Apache-2.0
// Repositories (explicit creation, auto-create, immutable tags), garbage collection and the
// berth CLI against an in-process berthd, checked through both the CLI and /v2/.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "integration/registry_client.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

std::string blob_file(const TestDaemon& d, const std::string& digest) {
  std::string hex = digest.substr(digest.find(':') + 1);
  return d.data_dir() + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
}

bool exists(const std::string& path) { return run("test -e " + path).code == 0; }

// Waits (the only sleep in these tests) until the wall clock is past second `t`: gc compares
// whole seconds, so a blob linked at second t is collectable only from second t+1.
void wait_past_second(std::time_t t) {
  while (std::time(nullptr) <= t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---- repositories ------------------------------------------------------------------------

TEST(RepositoryTest, PushToMissingRepositoryNamesTheFix) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  const std::string want =
      "repository web/missing does not exist; create it with: berth repo create web/missing";
  auto up = c.request("POST", "/v2/web/missing/blobs/uploads/");
  EXPECT_EQ(up.status, 404) << up.describe();
  EXPECT_EQ(up.oci_code(), "NAME_UNKNOWN");
  EXPECT_EQ(up.oci_message(), want);
  auto mono = c.push_blob("web/missing", "bytes");
  EXPECT_EQ(mono.status, 404) << mono.describe();
  EXPECT_EQ(mono.oci_message(), want);
  auto man =
      c.put_manifest("web/missing", "v1", image_manifest(image_config(), {}), kOciManifestType);
  EXPECT_EQ(man.status, 404) << man.describe();
  EXPECT_EQ(man.oci_code(), "NAME_UNKNOWN");
  EXPECT_EQ(man.oci_message(), want);
  // Reads say the repository is unknown too.
  for (const std::string& path :
       {std::string("/v2/web/missing/manifests/v1"), std::string("/v2/web/missing/tags/list"),
        "/v2/web/missing/blobs/" + sha256_digest("bytes")}) {
    auto r = c.get(path);
    EXPECT_EQ(r.status, 404) << path << "\n" << r.describe();
    EXPECT_EQ(r.oci_code(), "NAME_UNKNOWN") << path;
  }
  // Nothing was created implicitly.
  EXPECT_EQ(c.get("/v2/_catalog").json()["repositories"], Json::array());
  EXPECT_EQ(run("ls -A " + d.data_dir() + "/uploads").out, "");
}

TEST(RepositoryTest, AutoCreateRepositoriesLetsThePushThrough) {
  TestDaemon d([](config::Config& cfg) { cfg.registry.auto_create_repositories = true; });
  RegistryClient c(d.port(), d.admin().basic_header());
  std::string m = push_image(c, "team/new", "v1", image_config(), {"auto layer"});
  auto g = c.get("/v2/team/new/manifests/v1");
  EXPECT_EQ(g.status, 200) << g.describe();
  EXPECT_EQ(g.body, m);
  EXPECT_EQ(c.get("/v2/_catalog").json()["repositories"], Json::array({"team/new"}));
  auto ls = d.cli("repo ls --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(jq(ls.out, "[.repositories[].name]"), "[\"team/new\"]");
  // Reads never create anything.
  EXPECT_EQ(c.get("/v2/team/ghost/tags/list").status, 404);
  EXPECT_EQ(c.get("/v2/_catalog").json()["repositories"], Json::array({"team/new"}));
}

TEST(RepositoryTest, ImmutableTagsRefuseToMove) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  auto cr =
      d.cli("repo create web/app --immutable-tags --mutable-tags latest --mutable-tags 'dev-*'");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_NE(cr.out.find("immutable"), std::string::npos) << cr.out;

  std::string layer = "immutable layer";
  std::string m1 = push_image(c, "web/app", "v1", image_config("amd64", "1"), {layer});
  std::string c2 = image_config("amd64", "2");
  ASSERT_EQ(c.push_blob("web/app", c2).status, 201);
  std::string m2 = image_manifest(c2, {layer});

  auto move = c.put_manifest("web/app", "v1", m2, kOciManifestType);
  EXPECT_EQ(move.status, 403) << move.describe();
  EXPECT_EQ(move.oci_code(), "DENIED");
  EXPECT_NE(move.oci_message().find("v1"), std::string::npos) << move.oci_message();
  auto g = c.get("/v2/web/app/manifests/v1");
  EXPECT_EQ(g.header("Docker-Content-Digest"), sha256_digest(m1));
  EXPECT_EQ(g.body, m1);

  // Same digest again: fine. New tags and pushes by digest: fine.
  EXPECT_EQ(c.put_manifest("web/app", "v1", m1, kOciManifestType).status, 201);
  EXPECT_EQ(c.put_manifest("web/app", "v2", m2, kOciManifestType).status, 201);
  EXPECT_EQ(c.put_manifest("web/app", sha256_digest(m2), m2, kOciManifestType).status, 201);

  // Mutable globs move.
  for (const std::string& tag : {std::string("latest"), std::string("dev-1")}) {
    EXPECT_EQ(c.put_manifest("web/app", tag, m1, kOciManifestType).status, 201) << tag;
    EXPECT_EQ(c.put_manifest("web/app", tag, m2, kOciManifestType).status, 201) << tag;
    EXPECT_EQ(c.get("/v2/web/app/manifests/" + tag).header("Docker-Content-Digest"),
              sha256_digest(m2))
        << tag;
  }
  // A tag that merely contains a glob's prefix is still immutable.
  EXPECT_EQ(c.put_manifest("web/app", "dev", m1, kOciManifestType).status, 201);
  EXPECT_EQ(c.put_manifest("web/app", "dev", m2, kOciManifestType).status, 403);

  auto ls = d.cli("repo ls");
  EXPECT_NE(ls.out.find("immutable"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("latest"), std::string::npos) << ls.out;
  auto js = d.cli("repo ls --json");
  EXPECT_EQ(jq(js.out, ".repositories[0].immutable_tags"), "true");
  EXPECT_EQ(jq(js.out, ".repositories[0].mutable_tags"), "[\"latest\",\"dev-*\"]");

  // A mutable repository moves tags freely.
  ASSERT_EQ(d.cli("repo create web/free").code, 0);
  push_image(c, "web/free", "v1", image_config("amd64", "1"), {layer});
  ASSERT_EQ(c.push_blob("web/free", c2).status, 201);
  EXPECT_EQ(c.put_manifest("web/free", "v1", m2, kOciManifestType).status, 201);
  EXPECT_EQ(c.get("/v2/web/free/manifests/v1").header("Docker-Content-Digest"), sha256_digest(m2));

  // --mutable-tags needs --immutable-tags.
  auto bad = d.cli("repo create web/odd --mutable-tags latest");
  EXPECT_NE(bad.code, 0);
  EXPECT_FALSE(bad.all().empty());
}

// ---- garbage collection ------------------------------------------------------------------

// On every deployment: which blobs are unreferenced is the store's question (SQLite or
// PostgreSQL), where their bytes go the blob storage's (DATA/blobs or a bucket).
class GcOnEveryBackend : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    d_ = std::make_unique<TestDaemon>([this](config::Config& c) {
      home_.apply(c);
      c.registry.gc_grace = std::chrono::seconds(0);
    });
  }
  // Where the backend keeps blobs: 200 when the blob's bytes are there, 404 when not.
  int stored(const std::string& content) const {
    return home_.blob_status(d_->data_dir(), sha256_digest(content).substr(7));
  }

  BlobHome home_{GetParam()};
  std::unique_ptr<TestDaemon> d_;
};

TEST_P(GcOnEveryBackend, CollectsUnreferencedBlobsPastTheGracePeriod) {
  TestDaemon& d = *d_;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string config = image_config();
  std::string layer = "referenced layer";
  std::string loose = "nobody references this blob";
  push_image(c, "web/app", "v1", config, {layer});
  ASSERT_EQ(c.push_blob("web/app", loose).status, 201);
  ASSERT_EQ(stored(loose), 200);
  wait_past_second(std::time(nullptr));

  auto gc = d.cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".blobs_deleted"), "1") << gc.out;
  EXPECT_EQ(jq(gc.out, ".bytes_freed"), std::to_string(loose.size())) << gc.out;
  EXPECT_EQ(jq(gc.out, ".orphan_files_deleted"), "0");
  EXPECT_EQ(jq(gc.out, ".uploads_removed"), "0");

  EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest(loose)).status, 404);
  EXPECT_EQ(stored(loose), 404);
  for (const auto& kept : {config, layer}) {
    EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest(kept)).status, 200);
    EXPECT_EQ(stored(kept), 200);
  }
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 200);

  // A collected blob can be pushed again.
  ASSERT_EQ(c.push_blob("web/app", loose).status, 201);
  EXPECT_EQ(c.get("/v2/web/app/blobs/" + sha256_digest(loose)).body, loose);

  // Once the manifest goes, its blobs go at the next gc.
  std::string m = image_manifest(config, {layer});
  ASSERT_EQ(c.del("/v2/web/app/manifests/" + sha256_digest(m)).status, 202);
  wait_past_second(std::time(nullptr));
  auto gc2 = d.cli("gc --json");
  ASSERT_EQ(gc2.code, 0) << gc2.all();
  EXPECT_EQ(jq(gc2.out, ".blobs_deleted"), "3") << gc2.out;
  for (const auto& gone : {config, layer, loose}) {
    EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest(gone)).status, 404);
    EXPECT_EQ(stored(gone), 404);
  }
}

TEST_P(GcOnEveryBackend, SharedBlobStaysWhileAnyRepositoryReferencesIt) {
  TestDaemon& d = *d_;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/a").code, 0);
  ASSERT_EQ(d.cli("repo create web/b").code, 0);
  std::string config = image_config();
  std::string layer = "shared layer";
  push_image(c, "web/a", "v1", config, {layer});
  // web/b only links the layer (no manifest there).
  ASSERT_EQ(
      c.request("POST", "/v2/web/b/blobs/uploads/?mount=" + sha256_digest(layer) + "&from=web/a")
          .status,
      201);
  wait_past_second(std::time(nullptr));
  auto gc = d.cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".blobs_deleted"), "0") << gc.out;
  EXPECT_EQ(c.get("/v2/web/a/blobs/" + sha256_digest(layer)).body, layer);
  EXPECT_EQ(c.get("/v2/web/b/blobs/" + sha256_digest(layer)).body, layer);
  EXPECT_EQ(stored(layer), 200);
}

INSTANTIATE_TEST_SUITE_P(Backends, GcOnEveryBackend, all_registry_backends(), BlobBackendName());

TEST(GcTest, DefaultGraceKeepsRecentBlobs) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string loose = "recent and unreferenced";
  ASSERT_EQ(c.push_blob("web/app", loose).status, 201);
  auto gc = d.cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".blobs_deleted"), "0") << gc.out;
  EXPECT_EQ(jq(gc.out, ".bytes_freed"), "0") << gc.out;
  EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest(loose)).status, 200);
  EXPECT_TRUE(exists(blob_file(d, sha256_digest(loose))));
  auto text = d.cli("gc");
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("deleted 0 blob(s)"), std::string::npos) << text.out;
}

TEST(GcTest, RemovesOldOrphanFilesOnly) {
  TestDaemon d;
  std::string old_orphan = blob_file(d, sha256_digest("old orphan"));
  std::string new_orphan = blob_file(d, sha256_digest("new orphan"));
  write_file(old_orphan, "old orphan");
  write_file(new_orphan, "new orphan");
  ASSERT_EQ(run("touch -d '3 hours ago' " + old_orphan).code, 0);
  auto gc = d.cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".orphan_files_deleted"), "1") << gc.out;
  EXPECT_FALSE(exists(old_orphan));
  EXPECT_TRUE(exists(new_orphan));
}

// ---- CLI ---------------------------------------------------------------------------------

TEST(CliTest, RepoCreateLsRm) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  auto cr = d.cli("repo create web/app");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(cr.out, "created repository web/app\n");
  auto dup = d.cli("repo create web/app");
  EXPECT_NE(dup.code, 0);
  EXPECT_NE(dup.err.find("web/app already exists"), std::string::npos) << dup.all();
  EXPECT_EQ(dup.out, "");

  auto js = d.cli("repo create web/other --json");
  ASSERT_EQ(js.code, 0) << js.all();
  EXPECT_EQ(jq(js.out, ".name"), "\"web/other\"");
  EXPECT_EQ(jq(js.out, ".immutable_tags"), "false");
  EXPECT_EQ(jq(js.out, ".created_at | type"), "\"number\"");

  auto ls = d.cli("repo ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("NAME", 0), 0u) << ls.out;
  EXPECT_NE(ls.out.find("web/app"), std::string::npos);
  EXPECT_NE(ls.out.find("web/other"), std::string::npos);
  EXPECT_NE(ls.out.find("mutable"), std::string::npos);
  auto lsj = d.cli("repo ls --json");
  ASSERT_EQ(lsj.code, 0) << lsj.all();
  EXPECT_EQ(jq(lsj.out, "[.repositories[].name]"), "[\"web/app\",\"web/other\"]");
  EXPECT_EQ(
      jq(lsj.out,
         "[.repositories[] | has(\"immutable_tags\", \"mutable_tags\", \"created_at\")] | all"),
      "true");

  // Removing a repository removes its tags: a re-created one starts empty.
  push_image(c, "web/app", "v1", image_config(), {"layer"});
  auto rm = d.cli("repo rm web/app");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(rm.out, "deleted repository web/app\n");
  auto tags = c.get("/v2/web/app/tags/list");
  EXPECT_EQ(tags.status, 404) << tags.describe();
  EXPECT_EQ(tags.oci_code(), "NAME_UNKNOWN");
  EXPECT_EQ(jq(d.cli("repo ls --json").out, "[.repositories[].name]"), "[\"web/other\"]");
  auto again = d.cli("repo rm web/app");
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("web/app does not exist"), std::string::npos) << again.all();
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array());
}

TEST(CliTest, ImageLsShowsDigestTagsSizePlatform) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string layer = "image layer bytes";
  std::string amd_cfg = image_config("amd64");
  std::string amd = push_image(c, "web/app", "v1", amd_cfg, {layer});
  ASSERT_EQ(c.put_manifest("web/app", "latest", amd, kOciManifestType).status, 201);
  std::string arm_cfg = image_config("arm64");
  ASSERT_EQ(c.push_blob("web/app", arm_cfg).status, 201);
  std::string arm = image_manifest(arm_cfg, {layer});
  ASSERT_EQ(c.put_manifest("web/app", sha256_digest(arm), arm, kOciManifestType).status, 201);

  auto ls = d.cli("image ls web/app");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.substr(0, ls.out.find('\n')).find("DIGEST"), 0u) << ls.out;
  for (const char* col : {"TAGS", "SIZE", "PLATFORM"}) {
    EXPECT_NE(ls.out.substr(0, ls.out.find('\n')).find(col), std::string::npos) << col;
  }
  auto line_of = [&](const std::string& digest) {
    auto at = ls.out.find(digest);
    return at == std::string::npos ? std::string() : ls.out.substr(at, ls.out.find('\n', at) - at);
  };
  std::string amd_line = line_of(sha256_digest(amd));
  EXPECT_NE(amd_line.find("latest,v1"), std::string::npos) << ls.out;
  EXPECT_NE(amd_line.find("linux/amd64"), std::string::npos) << ls.out;
  std::string arm_line = line_of(sha256_digest(arm));
  EXPECT_NE(arm_line.find("<none>"), std::string::npos) << ls.out;
  EXPECT_NE(arm_line.find("linux/arm64"), std::string::npos) << ls.out;

  auto js = d.cli("image ls web/app --json");
  ASSERT_EQ(js.code, 0) << js.all();
  EXPECT_EQ(jq(js.out, ".images | length"), "2");
  std::string sel = ".images[] | select(.digest == \"" + sha256_digest(amd) + "\")";
  EXPECT_EQ(jq(js.out, sel + " | .tags"), "[\"latest\",\"v1\"]");
  EXPECT_EQ(jq(js.out, sel + " | .platform"), "\"linux/amd64\"");
  EXPECT_EQ(jq(js.out, sel + " | .media_type"), std::string("\"") + kOciManifestType + "\"");
  EXPECT_EQ(jq(js.out, sel + " | .size"),
            std::to_string(amd.size() + amd_cfg.size() + layer.size()));
  EXPECT_EQ(jq(js.out, sel + " | .pushed_at | type"), "\"number\"");
  std::string sel_arm = ".images[] | select(.digest == \"" + sha256_digest(arm) + "\")";
  EXPECT_EQ(jq(js.out, sel_arm + " | .tags"), "[]");

  // An index lists its platforms.
  Json idx = Json::object();
  idx["schemaVersion"] = 2;
  idx["mediaType"] = kOciIndexType;
  Json d1 = descriptor(kOciManifestType, amd);
  d1["platform"] = Json{{"os", "linux"}, {"architecture", "amd64"}};
  Json d2 = descriptor(kOciManifestType, arm);
  d2["platform"] = Json{{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
  idx["manifests"] = Json::array({d1, d2});
  std::string index = idx.dump();
  ASSERT_EQ(c.put_manifest("web/app", "multi", index, kOciIndexType).status, 201);
  auto js2 = d.cli("image ls web/app --json");
  std::string sel_idx = ".images[] | select(.digest == \"" + sha256_digest(index) + "\")";
  EXPECT_EQ(jq(js2.out, sel_idx + " | .platform"), "\"linux/amd64,linux/arm64/v8\"");
  EXPECT_EQ(jq(js2.out, sel_idx + " | .tags"), "[\"multi\"]");

  auto missing = d.cli("image ls web/nope");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("web/nope does not exist"), std::string::npos) << missing.all();
}

TEST(CliTest, ImageRmByTagAndDigest) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string m = push_image(c, "web/app", "v1", image_config(), {"rm layer"});
  ASSERT_EQ(c.put_manifest("web/app", "v2", m, kOciManifestType).status, 201);

  auto rm = d.cli("image rm web/app:v1");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(rm.out, "removed web/app:v1\n");
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v2").status, 200);
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array({"v2"}));

  auto rm2 = d.cli("image rm web/app@" + sha256_digest(m));
  ASSERT_EQ(rm2.code, 0) << rm2.all();
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(m)).status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v2").status, 404);
  EXPECT_EQ(jq(d.cli("image ls web/app --json").out, ".images | length"), "0");

  auto gone = d.cli("image rm web/app:v1");
  EXPECT_NE(gone.code, 0);
  EXPECT_NE(gone.err.find("v1"), std::string::npos) << gone.all();
  auto bad = d.cli("image rm justaname");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("must be REPO:TAG or REPO@DIGEST"), std::string::npos) << bad.all();
  auto bad_digest = d.cli("image rm web/app@sha256:nothex");
  EXPECT_NE(bad_digest.code, 0);
  EXPECT_FALSE(bad_digest.err.empty());
  auto bad_tag = d.cli("image rm web/app:-x");
  EXPECT_NE(bad_tag.code, 0);
  EXPECT_NE(bad_tag.err.find("invalid tag"), std::string::npos) << bad_tag.all();
}

TEST(CliTest, BerthServerEnvironmentVariable) {
  TestDaemon d;
  ASSERT_EQ(d.cli("repo create web/env").code, 0);
  auto r =
      run("BERTH_SERVER=" + d.url() + " " + d.admin().env() + bin("berth") + " repo ls --json");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(jq(r.out, "[.repositories[].name]"), "[\"web/env\"]");
  // --server wins over the environment.
  auto both = run("BERTH_SERVER=http://127.0.0.1:1 " + d.admin().env() + bin("berth") +
                  " --server " + d.url() + " repo ls --json");
  EXPECT_EQ(both.code, 0) << both.all();
  // Nothing listening: a clear failure, not a hang or a crash.
  auto down = run("BERTH_SERVER=http://127.0.0.1:" + std::to_string(free_port()) + " " +
                  d.admin().env() + bin("berth") + " repo ls");
  EXPECT_NE(down.code, 0);
  EXPECT_LT(down.code, 128) << "killed by a signal";
  EXPECT_NE(down.err.find("berth: "), std::string::npos) << down.all();
}

}  // namespace
}  // namespace berth::test
