// SPDX-License-Identifier: Apache-2.0
// A data directory written by the previous release opens in this one: tests/data/upgrade/ keeps
// one per shipped schema (README.md there says how each was made), and each must start, serve
// its image, sign its users in and pass fsck.
#include <gtest/gtest.h>

#include "integration/registry_client.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// What tests/data/upgrade/main-0657134.tar.gz holds (made by berthd at commit 0657134).
constexpr const char* kFixture = "main-0657134.tar.gz";
constexpr const char* kManifest =
    "sha256:c20f808dbf33648d73a8d5bf9722ce1f87868add172287c535ee33e60cfec5af";
constexpr const char* kConfig =
    "sha256:d4999b1e9a64c665bf592abd7c200554d9a86eafe2eb70a4000f109dbabe0b36";
constexpr const char* kLayer =
    "sha256:3a627f17a9101cb6b5d7d4405812bd7ccc91e5c89b041136c4f05cdeca10ed5d";
// User ci: may pull repository/fixture/* (a test fixture's key, never used anywhere else).
constexpr const char* kCiKey = "BKLUK7AICDPGL7FXYLGU";
constexpr const char* kCiSecret = "y8XOMiufYTN2zLwzC5SGV4VmH43Z9Af3mlhP8PyQ";

TEST(UpgradeTest, PreviousReleaseDataDirOpensWithEverythingInIt) {
  TempDir work;
  std::string data = work / "data";
  auto x = run("mkdir -p " + data + " && tar -xzf " + std::string(BERTH_SOURCE_DIR) +
               "/tests/data/upgrade/" + kFixture + " -C " + data);
  ASSERT_EQ(x.code, 0) << x.all();
  {
    BerthdProcess p(data);
    p.start();  // the fixture's admin.credentials still sign in
    RegistryClient admin(p.port(), p.admin().basic_header());
    auto m = admin.get("/v2/fixture/app/manifests/v1", {{"Accept", kOciManifestType}});
    ASSERT_EQ(m.status, 200) << m.describe();
    EXPECT_EQ(sha256_digest(m.body), kManifest);
    for (const char* d : {kConfig, kLayer}) {
      auto b = admin.get(std::string("/v2/fixture/app/blobs/") + d);
      EXPECT_EQ(b.status, 200) << b.describe();
      EXPECT_EQ(sha256_digest(b.body), d);
    }

    // The user, its key and its policy: pull allowed, push denied.
    RegistryClient ci(p.port(), "Basic " + base64(std::string(kCiKey) + ":" + kCiSecret));
    auto pull = ci.get("/v2/fixture/app/manifests/v1", {{"Accept", kOciManifestType}});
    EXPECT_EQ(pull.status, 200) << pull.describe();
    auto denied = ci.push_blob("fixture/app", "ci may not push");
    EXPECT_EQ(denied.status, 403) << denied.describe();

    // A push into the upgraded store works as on a new one.
    auto pushed = admin.push_blob("fixture/app", "pushed after the upgrade");
    EXPECT_EQ(pushed.status, 201) << pushed.describe();

    // The service spec and the build project (with its git remote) came along.
    auto svc = p.cli("service show web");
    EXPECT_EQ(svc.code, 0) << svc.all();
    EXPECT_NE(svc.out.find("fixture/app:v1"), std::string::npos) << svc.out;
    auto proj = p.cli("build project ls");
    EXPECT_EQ(proj.code, 0) << proj.all();
    EXPECT_NE(proj.out.find("site"), std::string::npos) << proj.out;
    EXPECT_EQ(p.terminate(), 0);
  }
  auto fsck = run(bin("berthd") + " fsck --data " + data);
  EXPECT_EQ(fsck.code, 0) << fsck.all();

  // Offline, the upgraded directory backs up and restores whole, git remote included.
  auto b = run(bin("berthd") + " backup --data " + data + " --to " + (work / "up.tar"));
  ASSERT_EQ(b.code, 0) << b.all();
  auto r = run(bin("berthd") + " restore --from " + (work / "up.tar") + " --data " +
               (work / "restored"));
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(run("test -f " + (work / "restored/git/site.git/HEAD")).code, 0);
  fsck = run(bin("berthd") + " fsck --data " + (work / "restored"));
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

}  // namespace
}  // namespace berth::test
