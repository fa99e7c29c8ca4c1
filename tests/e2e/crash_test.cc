// SPDX-License-Identifier: Apache-2.0
// Crash safety: berthd is SIGKILLed at several moments while skopeo pushes run against it, and
// restarted on the same state, on SQLite and files and on PostgreSQL and S3. Every push skopeo
// reported done stays pullable, no blob the registry serves (or keeps in its storage) fails
// its digest, what the killed pushes left behind (spools; on S3 multipart uploads) is gone
// after the upload TTL, and fsck is clean. Also: SIGTERM shuts down cleanly, and fsck notices
// a flipped byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "e2e/e2e_util.h"
#include "support/berthd_home.h"
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

// Every blob the registry serves hashes to its digest, and so does every blob in the storage
// (files under DATA, or the bucket's objects).
void expect_blobs_intact(const BerthdProcess& p, const BerthdHome& home,
                         const std::deque<Image>& images, const TempDir& work) {
  int served = 0;
  std::string tmp = work / "blob";
  std::set<std::string> seen;
  for (const auto& img : images) {
    for (const auto& e : stdfs::directory_iterator(img.layout + "/blobs/sha256")) {
      std::string hex = e.path().filename().string();
      if (!seen.insert(hex).second) {
        continue;  // (the busybox layer is in every image)
      }
      auto r = run("curl -s" + p.curl_auth() + "-o " + tmp + " -w '%{http_code}' " + p.url() +
                   "/v2/web/app/blobs/sha256:" + hex);
      if (r.out == "200") {
        ++served;
        EXPECT_EQ(Sha256::hex_of(read_file(tmp)), hex)
            << "registry serves a blob that fails its digest";
      } else {
        EXPECT_EQ(r.out, "404") << hex;
      }
    }
  }
  EXPECT_GT(served, 0);
  auto storage = home.blobs().open(home.data_dir());
  ASSERT_NE(storage, nullptr);
  auto stored = storage->list_blobs();
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_FALSE(stored->empty());
  for (const auto& b : *stored) {
    auto h = storage->hash_blob(b.name);
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_EQ(*h, b.name) << "torn blob in " << storage->driver() << " storage";
  }
}

// Multipart uploads in progress in the bucket (0 on Embedded).
size_t multipart_uploads(const BerthdHome& home) {
  if (home.s3() == nullptr) {
    return 0;
  }
  auto u = home.s3()->list_multipart_uploads("");
  EXPECT_TRUE(u) << u.error().message();
  return u ? u->size() : 0;
}

// Objects under uploads/ in the bucket: commits that never finished (0 on Embedded).
size_t temporary_objects(const BerthdHome& home) {
  if (home.s3() == nullptr) {
    return 0;
  }
  auto o = home.s3()->list_objects("uploads/");
  EXPECT_TRUE(o) << o.error().message();
  return o ? o->size() : 0;
}

size_t upload_spools(const BerthdHome& home) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = stdfs::directory_iterator(home.data_dir() + "/uploads", ec);
       !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
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

// The upload TTL of the last start, after all the kills: what the killed pushes left behind
// (spools under DATA/uploads, and on S3 multipart uploads and uploads/ objects) is older than
// this by then and must all be gone one expiry sweep later (sweeps run every TTL/4, at least
// every second).
constexpr auto kFinalUploadTtl = std::chrono::seconds(2);

// The same kills on both deployments: SQLite and files, or PostgreSQL and S3.
class CrashPushTest : public ::testing::TestWithParam<StateBackend> {};

INSTANTIATE_TEST_SUITE_P(Backends, CrashPushTest,
                         ::testing::Values(StateBackend::Embedded, StateBackend::PostgresS3),
                         StateBackendName());

TEST_P(CrashPushTest, KilledDuringPushesLosesNothingAcknowledged) {
  BerthdHome home(GetParam());
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  const bool on_s3 = home.s3() != nullptr;
  TempDir work;
  // When to SIGKILL in each round: after a delay, as soon as that many pushes succeeded (so
  // the kill lands while the others are still uploading, however fast the machine is), or, on
  // S3, as soon as a commit's multipart upload is under way (so that one is left orphaned).
  struct Kill {
    int delay_ms;
    int after_ok;
    bool mid_multipart = false;
    std::string what() const {
      if (mid_multipart) {
        return "during a multipart upload";
      }
      return delay_ms >= 0 ? "after " + std::to_string(delay_ms) + " ms"
                           : "after " + std::to_string(after_ok) + " pushes";
    }
  };
  const std::vector<Kill> kills =
      on_s3 ? std::vector<Kill>{{50, 0}, {-1, 0, true}, {-1, 1}, {-1, 0, true}, {-1, 4}}
            : std::vector<Kill>{{50, 0}, {300, 0}, {-1, 1}, {-1, 2}, {-1, 4}};
  // Each round pushes the plain busybox image again (layers already there after the first
  // success) and three fresh images with 1, 2 and 6 MiB of random data (new layers to upload;
  // on S3 the 6 MiB one is committed as a multipart upload, the others with one PUT).
  constexpr size_t kRandomMiB[] = {1, 2, 6};
  std::deque<Image> images(1 + std::size(kRandomMiB) * kills.size());
  std::vector<std::vector<const Image*>> rounds(kills.size());
  {
    // (built two at a time: umoci and gzip take most of this test's time otherwise)
    std::vector<std::function<void()>> builds;
    builds.emplace_back([&] { images[0] = make_image(work / "base", 0, 0); });
    for (size_t round = 0; round < kills.size(); ++round) {
      rounds[round].push_back(&images[0]);
      for (size_t k = 0; k < std::size(kRandomMiB); ++k) {
        size_t mib = kRandomMiB[k];
        std::string name = "img";
        name += std::to_string(round);
        name += '-';
        name += std::to_string(mib);
        Image* img = &images[1 + std::size(kRandomMiB) * round + k];
        rounds[round].push_back(img);
        builds.emplace_back([img, name, mib, round, &work] {
          *img = make_image(work / name, mib, round * 100 + mib);
        });
      }
    }
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < builds.size(); i = next++) {
        builds[i]();
      }
    };
    std::thread other(worker);
    worker();
    other.join();
  }
  ASSERT_FALSE(HasFailure());

  BerthdProcess p(home.data_dir(), home.berthd_args());
  ASSERT_NO_FATAL_FAILURE(p.start());
  auto created = berth_cli(p, "repo create web/app");
  ASSERT_EQ(created.code, 0) << created.all();

  const auto began = Clock::now();
  std::vector<Push> acknowledged;
  int failed = 0;
  size_t orphaned_multipart = 0;
  for (size_t round = 0; round < kills.size(); ++round) {
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(p.start());
    }
    const auto& imgs = rounds[round];
    const size_t multipart_before = multipart_uploads(home);
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
    const Kill& kill = kills[round];
    if (kill.mid_multipart) {
      while (multipart_uploads(home) <= multipart_before && done_count.load() < pushes.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    } else if (kill.delay_ms >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kill.delay_ms));
    } else {
      while (ok_count.load() < kill.after_ok && done_count.load() < pushes.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    p.kill9();
    for (auto& t : threads) {
      t.join();
    }
    if (kill.after_ok == static_cast<int>(pushes.size())) {
      for (const auto& push : pushes) {
        EXPECT_EQ(push.result.code, 0) << "push without a kill failed: " << push.result.all();
      }
    }
    // Restart on the same state: what skopeo saw succeed must be there.
    size_t spools = upload_spools(home);
    size_t multipart = multipart_uploads(home);
    orphaned_multipart += multipart - std::min(multipart, multipart_before);
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
    std::printf(
        "[          ] kill %s: %d/%zu pushes done, %zu upload spools, %zu multipart uploads "
        "(%.1f s)\n",
        kill.what().c_str(), ok, pushes.size(), spools, multipart,
        std::chrono::duration<double>(Clock::now() - began).count());
    p.kill9();
  }
  EXPECT_GE(acknowledged.size(), rounds.back().size());
  std::printf(
      "[          ] %zu pushes acknowledged, %d cut off by SIGKILL, %zu multipart uploads "
      "orphaned (%.1f s)\n",
      acknowledged.size(), failed, orphaned_multipart,
      std::chrono::duration<double>(Clock::now() - began).count());
  if (on_s3) {
    // Otherwise the check below that none remain proves nothing.
    EXPECT_GT(orphaned_multipart, 0u) << "no kill left a multipart upload behind";
  }

  // Once more after all the kills, with a short upload TTL: everything acknowledged is there,
  // only intact blobs, and what the kills left behind is expired.
  home.write_config(kFinalUploadTtl);
  ASSERT_NO_FATAL_FAILURE(p.start());
  for (const auto& push : acknowledged) {
    expect_pullable(p, push, work);
  }
  expect_blobs_intact(p, home, images, work);
  auto deadline = Clock::now() + kFinalUploadTtl + std::chrono::seconds(10);
  while (Clock::now() < deadline &&
         upload_spools(home) + multipart_uploads(home) + temporary_objects(home) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(upload_spools(home), 0u) << "upload spools outlived the upload TTL";
  EXPECT_EQ(multipart_uploads(home), 0u) << "multipart uploads outlived the upload TTL";
  EXPECT_EQ(temporary_objects(home), 0u) << "uploads/ objects outlived the upload TTL";
  EXPECT_EQ(p.terminate(), 0) << read_file(p.log_path());

  auto fsck = home.fsck();
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
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(8))
      << "not the 10 s grace: nothing was in flight";
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
