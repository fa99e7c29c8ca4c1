// SPDX-License-Identifier: Apache-2.0
// Crash safety: berthd is SIGKILLed at several moments while skopeo pushes run against it, and
// restarted on the same data directory. Every push skopeo reported done stays pullable, no blob
// the registry serves (or keeps on disk) fails its digest, and fsck is clean. Also: SIGTERM
// shuts down cleanly, and fsck notices a flipped byte.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Image {
  std::string layout;  // OCI layout dir, tag v1
  std::string digest;  // manifest digest
};

struct Push {
  const Image* image = nullptr;
  std::string tag;
  CmdResult result;
};

std::string push_cmd(const BerthdProcess& p, const Image& img, const std::string& tag) {
  return "timeout 60 skopeo copy --retry-times 0 --dest-tls-verify=false --dest-creds " +
         p.creds() + " oci:" + img.layout + ":v1 docker://" + p.host() + "/web/app:" + tag;
}

// Pulls web/app:tag back into a fresh layout and checks it is the image that was pushed.
void expect_pullable(const BerthdProcess& p, const Push& push, const TempDir& work) {
  std::string back = work / ("back-" + push.tag);
  auto pull = run("timeout 60 skopeo copy --src-tls-verify=false --src-creds " + p.creds() +
                  " docker://" + p.host() + "/web/app:" + push.tag + " oci:" + back + ":v1");
  ASSERT_EQ(pull.code, 0) << "acknowledged push " << push.tag << " is not pullable:\n"
                          << pull.all();
  EXPECT_EQ(layout_digest(back), push.image->digest) << push.tag;
  // Every blob that came back hashes to its name.
  for (const auto& e : stdfs::directory_iterator(back + "/blobs/sha256")) {
    EXPECT_EQ(sha256_file(e.path().string()), e.path().filename().string()) << push.tag;
  }
}

// Every blob file on disk, and every blob the registry serves, hashes to its digest.
void expect_blobs_intact(const BerthdProcess& p, const std::string& data_dir,
                         const std::deque<Image>& images, const TempDir& work) {
  int on_disk = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(data_dir + "/blobs/sha256")) {
    if (e.is_regular_file()) {
      ++on_disk;
      EXPECT_EQ(sha256_file(e.path().string()), e.path().filename().string())
          << "torn blob file " << e.path();
    }
  }
  EXPECT_GT(on_disk, 0);
  int served = 0;
  std::string tmp = work / "blob";
  for (const auto& img : images) {
    for (const auto& e : stdfs::directory_iterator(img.layout + "/blobs/sha256")) {
      std::string hex = e.path().filename().string();
      auto r = run("curl -s" + p.curl_auth() + "-o " + tmp + " -w '%{http_code}' " + p.url() +
                   "/v2/web/app/blobs/sha256:" + hex);
      if (r.out == "200") {
        ++served;
        EXPECT_EQ(sha256_file(tmp), hex) << "registry serves a blob that fails its digest";
      } else {
        EXPECT_EQ(r.out, "404") << hex;
      }
    }
  }
  EXPECT_GT(served, 0);
}

// Builds an image: busybox plus, when random_mib > 0, that many MiB of random data.
Image make_image(const std::string& layout, size_t random_mib, uint64_t seed) {
  Image img;
  img.layout = layout;
  std::vector<std::pair<std::string, std::string>> extra;
  if (random_mib > 0) {
    extra.emplace_back("data/blob.bin", random_bytes(random_mib * 1024 * 1024, seed));
  }
  std::string err = make_busybox_layout(layout, "v1", extra);
  EXPECT_EQ(err, "") << layout;
  img.digest = layout_digest(layout);
  EXPECT_EQ(img.digest.rfind("sha256:", 0), 0u) << img.digest;
  return img;
}

TEST(CrashTest, KilledDuringPushesLosesNothingAcknowledged) {
  TempDir work;
  // When to SIGKILL in each round: after a delay, or as soon as that many pushes succeeded
  // (so the kill lands while the others are still uploading, however fast the machine is).
  struct Kill {
    int delay_ms;
    int after_ok;
    std::string what() const {
      return delay_ms >= 0 ? "after " + std::to_string(delay_ms) + " ms"
                           : "after " + std::to_string(after_ok) + " pushes";
    }
  };
  const std::vector<Kill> kills = {{50, 0}, {300, 0}, {-1, 1}, {-1, 2}, {-1, 4}};
  // Each round pushes the plain busybox image again (layers already there after the first
  // success) and three fresh images with 1, 2 and 4 MiB of random data (new layers to upload).
  std::deque<Image> images;
  images.push_back(make_image(work / "base", 0, 0));
  std::vector<std::vector<const Image*>> rounds(kills.size());
  for (size_t round = 0; round < kills.size(); ++round) {
    rounds[round].push_back(&images.front());
    for (size_t mib : {1, 2, 4}) {
      std::string name = "img";
      name += std::to_string(round);
      name += '-';
      name += std::to_string(mib);
      images.push_back(make_image(work / name, mib, round * 100 + mib));
      rounds[round].push_back(&images.back());
    }
  }
  ASSERT_FALSE(HasFailure());

  TempDir data;
  BerthdProcess p(data.path());
  ASSERT_NO_FATAL_FAILURE(p.start());
  auto created = berth_cli(p, "repo create web/app");
  ASSERT_EQ(created.code, 0) << created.all();

  std::vector<Push> acknowledged;
  int failed = 0;
  for (size_t round = 0; round < kills.size(); ++round) {
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(p.start());
    }
    const auto& imgs = rounds[round];
    std::vector<Push> pushes(imgs.size());
    std::vector<std::thread> threads;
    std::atomic<int> ok_count{0};
    std::atomic<size_t> done_count{0};
    for (size_t i = 0; i < imgs.size(); ++i) {
      pushes[i].image = imgs[i];
      // (built by appending: GCC 12 warns falsely on "r" + std::to_string(...))
      std::string tag = "r";
      tag += std::to_string(round);
      tag += '-';
      tag += std::to_string(i);
      pushes[i].tag = tag;
      threads.emplace_back([&, i] {
        pushes[i].result = run(push_cmd(p, *imgs[i], pushes[i].tag));
        if (pushes[i].result.code == 0) {
          ++ok_count;
        }
        ++done_count;
      });
    }
    if (kills[round].delay_ms >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kills[round].delay_ms));
    } else {
      while (ok_count.load() < kills[round].after_ok && done_count.load() < pushes.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    p.kill9();
    for (auto& t : threads) {
      t.join();
    }
    if (kills[round].after_ok == static_cast<int>(pushes.size())) {
      for (const auto& push : pushes) {
        EXPECT_EQ(push.result.code, 0) << "push without a kill failed: " << push.result.all();
      }
    }
    // Restart on the same data dir: what skopeo saw succeed must be there.
    size_t open_uploads = 0;
    std::error_code ec;
    for (auto it = stdfs::directory_iterator(data / "uploads", ec);
         !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
      ++open_uploads;
    }
    ASSERT_NO_FATAL_FAILURE(p.start());
    int ok = 0;
    for (const auto& push : pushes) {
      if (push.result.code == 0) {
        ++ok;
        acknowledged.push_back(push);
        expect_pullable(p, push, work);
      } else {
        ++failed;
      }
    }
    std::printf("[          ] kill %s: %d/%zu pushes done, %zu upload dirs on disk\n",
                kills[round].what().c_str(), ok, pushes.size(), open_uploads);
    p.kill9();
  }
  EXPECT_GE(acknowledged.size(), rounds.back().size());
  std::printf("[          ] %zu pushes acknowledged, %d cut off by SIGKILL\n", acknowledged.size(),
              failed);

  // Once more after all the kills: everything acknowledged, and only intact blobs.
  ASSERT_NO_FATAL_FAILURE(p.start());
  for (const auto& push : acknowledged) {
    expect_pullable(p, push, work);
  }
  expect_blobs_intact(p, data.path(), images, work);
  EXPECT_EQ(p.terminate(), 0) << read_file(p.log_path());

  auto fsck = run(bin("berthd") + " fsck --data " + data.path());
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  EXPECT_NE(fsck.out.find(": 0 problem(s)"), std::string::npos) << fsck.all();
}

TEST(CrashTest, SigtermShutsDownCleanly) {
  TempDir work, data;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1"), "");
  BerthdProcess p(data.path());
  ASSERT_NO_FATAL_FAILURE(p.start());
  ASSERT_EQ(berth_cli(p, "repo create web/app").code, 0);
  auto push = run("skopeo copy --dest-tls-verify=false --dest-creds " + p.creds() +
                  " oci:" + layout + ":v1 docker://" + p.host() + "/web/app:v1");
  ASSERT_EQ(push.code, 0) << push.all();
  auto t0 = Clock::now();
  EXPECT_EQ(p.terminate(), 0) << read_file(p.log_path());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(read_file(p.log_path()).find("berthd stopped"), std::string::npos)
      << read_file(p.log_path());
  // A clean stop leaves a clean data dir, and a restart serves the image.
  auto fsck = run(bin("berthd") + " fsck --data " + data.path());
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  ASSERT_NO_FATAL_FAILURE(p.start());
  auto pull = run("skopeo copy --src-tls-verify=false --src-creds " + p.creds() + " docker://" +
                  p.host() + "/web/app:v1 oci:" + work / "back" + ":v1");
  EXPECT_EQ(pull.code, 0) << pull.all();
  EXPECT_EQ(p.terminate(), 0);
}

TEST(CrashTest, FsckNamesACorruptedBlob) {
  TempDir work, data;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1", {{"data/x.bin", random_bytes(256 * 1024, 7)}}), "");
  BerthdProcess p(data.path());
  ASSERT_NO_FATAL_FAILURE(p.start());
  ASSERT_EQ(berth_cli(p, "repo create web/app").code, 0);
  auto push = run("skopeo copy --dest-tls-verify=false --dest-creds " + p.creds() +
                  " oci:" + layout + ":v1 docker://" + p.host() + "/web/app:v1");
  ASSERT_EQ(push.code, 0) << push.all();
  ASSERT_EQ(p.terminate(), 0);

  auto clean = run(bin("berthd") + " fsck --data " + data.path());
  ASSERT_EQ(clean.code, 0) << clean.all();

  // Flip one byte in the middle of the largest blob (the layer).
  std::string victim;
  uintmax_t biggest = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(data.path() + "/blobs/sha256")) {
    if (e.is_regular_file() && e.file_size() > biggest) {
      biggest = e.file_size();
      victim = e.path().string();
    }
  }
  ASSERT_FALSE(victim.empty());
  std::string hex = stdfs::path(victim).filename().string();
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << victim;
    auto at = static_cast<std::streamoff>(biggest / 2);
    f.seekg(at);
    char c = 0;
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x01));
  }
  ASSERT_NE(sha256_file(victim), hex);

  auto fsck = run(bin("berthd") + " fsck --data " + data.path());
  EXPECT_EQ(fsck.code, 1) << fsck.all();
  EXPECT_NE(fsck.all().find("sha256:" + hex), std::string::npos) << fsck.all();
  EXPECT_EQ(fsck.all().find(": 0 problem(s)"), std::string::npos) << fsck.all();
}

}  // namespace
}  // namespace berth::test
