// SPDX-License-Identifier: Apache-2.0
// `berthd backup` while pushes go on, then `berthd restore` into a new data dir: berthd starts
// on it, every image the backup holds pulls byte for byte, and fsck is clean. And a restore
// refuses a damaged archive and a non-empty directory.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "integration/registry_client.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// Layers unique per (tag, i), big enough that copying them takes a moment.
std::string layer(const std::string& tag, int i, size_t bytes) {
  std::string s = "layer " + tag + " " + std::to_string(i) + "\n";
  uint32_t x = static_cast<uint32_t>(std::hash<std::string>{}(s));
  s.reserve(bytes);
  while (s.size() < bytes) {
    x = x * 1664525u + 1013904223u;
    s.push_back(static_cast<char>(x >> 24));
  }
  return s;
}

// Pushes an image; returns its manifest digest, or "" when any request failed.
std::string push(const RegistryClient& c, const std::string& repo, const std::string& tag,
                 size_t layer_bytes) {
  std::string config = image_config("amd64", tag);
  std::vector<std::string> layers = {layer(tag, 0, layer_bytes), layer(tag, 1, 1000)};
  if (c.push_blob(repo, config).status != 201) {
    return "";
  }
  for (const auto& l : layers) {
    if (c.push_blob(repo, l).status != 201) {
      return "";
    }
  }
  std::string m = image_manifest(config, layers);
  if (c.put_manifest(repo, tag, m, kOciManifestType).status != 201) {
    return "";
  }
  return sha256_digest(m);
}

// Pulls repo:tag and every blob it names; "" when all of it came back with the right digests.
std::string pull_and_verify(const RegistryClient& c, const std::string& repo,
                            const std::string& tag) {
  auto m = c.get("/v2/" + repo + "/manifests/" + tag, {{"Accept", kOciManifestType}});
  if (m.status != 200) {
    return repo + ":" + tag + ": manifest " + m.describe();
  }
  Json j = m.json();
  std::vector<std::string> digests = {j["config"]["digest"].get<std::string>()};
  for (auto& l : j["layers"]) {
    digests.push_back(l["digest"].get<std::string>());
  }
  for (const auto& d : digests) {
    auto b = c.get("/v2/" + repo + "/blobs/" + d);
    if (b.status != 200 || sha256_digest(b.body) != d) {
      return repo + ":" + tag + ": blob " + d + " " + b.describe();
    }
  }
  return "";
}

TEST(BackupTest, OnlineBackupDuringPushesRestoresWhole) {
  TempDir work;
  std::string restored = work / "restored";
  std::string file = work / "backup.tar";
  std::map<std::string, std::string> before;  // tag -> digest, pushed before the backup
  {
    TestDaemon d;
    const std::string& src = d.data_dir();
    ASSERT_EQ(d.cli("repo create bk/app").code, 0);
    RegistryClient c(d.port(), d.admin().basic_header());
    for (int i = 0; i < 12; ++i) {
      std::string tag = "before-" + std::to_string(i);
      before[tag] = push(c, "bk/app", tag, 1 << 20);
      ASSERT_FALSE(before[tag].empty()) << tag;
    }

    // A pusher runs from before the backup starts until after it ends.
    std::atomic<bool> stop{false};
    std::atomic<int> pushed{0};
    std::atomic<int> failed{0};
    std::thread pusher([&] {
      for (int i = 0; !stop; ++i) {
        if (push(c, "bk/app", "during-" + std::to_string(i), 256 << 10).empty()) {
          failed++;
        }
        pushed++;
      }
    });
    while (pushed < 2) {
      std::this_thread::yield();
    }
    int at_start = pushed;
    auto b = run(bin("berthd") + " backup --data " + src + " --to " + file);
    int at_end = pushed;
    while (pushed < at_end + 2) {
      std::this_thread::yield();
    }
    stop = true;
    pusher.join();
    ASSERT_EQ(b.code, 0) << b.all();
    EXPECT_EQ(failed, 0);
    EXPECT_NE(b.err.find("berthd backup: wrote"), std::string::npos) << b.err;
    std::printf("backup ran while %d pushes completed\n", at_end - at_start);
  }

  // The temp files beside the backup are gone: only the finished file is there.
  EXPECT_EQ(run("ls " + work.path()).out, "backup.tar\n");
  auto r = run(bin("berthd") + " restore --from " + file + " --data " + restored);
  ASSERT_EQ(r.code, 0) << r.all();
  // The snapshot holds no lock file, uploads or caches: only what a data dir needs.
  EXPECT_FALSE(std::ifstream(restored + "/berth.db-wal").good());
  EXPECT_TRUE(std::ifstream(restored + "/token.key").good());
  EXPECT_TRUE(std::ifstream(restored + "/secrets.key").good());

  // A second restore into the same (now full) directory is refused.
  auto again = run(bin("berthd") + " restore --from " + file + " --data " + restored);
  EXPECT_EQ(again.code, 2) << again.all();
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;

  {
    BerthdProcess p(restored);
    p.start();  // the restored admin.credentials sign in: the keys came along
    RegistryClient c(p.port(), p.admin().basic_header());
    // Every tag the restored registry lists pulls whole (an image pushed during the backup
    // is there entirely or not at all), and every image pushed before it is there.
    auto tags = c.get("/v2/bk/app/tags/list");
    ASSERT_EQ(tags.status, 200) << tags.describe();
    std::set<std::string> listed;
    Json list = tags.json();  // (a range-for over tags.json()["tags"] would dangle)
    ASSERT_TRUE(list["tags"].is_array()) << tags.describe();
    for (auto& t : list["tags"]) {
      listed.insert(t.get<std::string>());
    }
    for (const auto& [tag, digest] : before) {
      EXPECT_TRUE(listed.count(tag)) << tag;
      auto h = c.head("/v2/bk/app/manifests/" + tag, {{"Accept", kOciManifestType}});
      EXPECT_EQ(h.header("Docker-Content-Digest"), digest) << tag;
    }
    for (const auto& tag : listed) {
      EXPECT_EQ(pull_and_verify(c, "bk/app", tag), "");
    }
    EXPECT_EQ(p.terminate(), 0);
  }
  auto fsck = run(bin("berthd") + " fsck --data " + restored);
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

TEST(BackupTest, RestoreRefusesADamagedBlob) {
  TempDir work;
  std::string file = work / "backup.tar";
  const std::string marker = "this layer will be damaged in the archive";
  {
    TestDaemon d;
    ASSERT_EQ(d.cli("repo create bk/app").code, 0);
    RegistryClient c(d.port(), d.admin().basic_header());
    std::string config = image_config("amd64", "damage");
    push_image(c, "bk/app", "v1", config, {marker});
    // Online: the daemon still runs.
    auto b = run(bin("berthd") + " backup --data " + d.data_dir() + " --to " + file);
    ASSERT_EQ(b.code, 0) << b.all();
  }
  std::string bytes = read_file(file);
  size_t at = bytes.find(marker);
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'T';
  write_file(file, bytes);
  auto r = run(bin("berthd") + " restore --from " + file + " --data " + (work / "restored"));
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("does not match its digest"), std::string::npos) << r.err;

  // Not a backup at all.
  write_file(work / "not.tar", "hello");
  r = run(bin("berthd") + " restore --from " + (work / "not.tar") + " --data " + (work / "x"));
  EXPECT_EQ(r.code, 2) << r.all();
}

}  // namespace
}  // namespace berth::test
