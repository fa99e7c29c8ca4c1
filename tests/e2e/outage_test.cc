// SPDX-License-Identifier: Apache-2.0
// Outages: a client pushes images in a loop to a berthd on PostgreSQL and S3 (RGW) while one
// of the two goes away for kOutage and comes back. While it is away, every request that fails
// is answered promptly with 503 UNAVAILABLE whose message says what is away without where it
// is (no host, port or bucket; no hang, no 500, no other error); every push that was acknowledged
// stays pullable and intact; pushes succeed again once it is back, from the same berthd process;
// fsck is clean; and what the outage cut short in the bucket (multipart uploads, uploads/ objects)
// is gone after the upload TTL.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"
#include "integration/registry_client.h"
#include "registry/oci_errors.h"
#include "support/berthd_home.h"
#include "support/harness.h"
#include "support/postgres.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

using Clock = std::chrono::steady_clock;

// How long the dependency stays away: the 10 s of issue 17. That is well past the store's
// reconnect wait (about 3 s), so requests made during it must give up and say so rather than
// ride it out.
constexpr auto kOutage = std::chrono::seconds(10);
// The longest any request may take to be answered, during the outage too. berthd waits about
// 3 s for a PostgreSQL that may be restarting, once per outage; longer means a client waited
// on a dependency that was not coming back in time (a hang, which would last the outage's
// 10 s) instead of getting a clear error. 8 s leaves a loaded runner room above those 3 s.
constexpr auto kMaxAnswer = std::chrono::seconds(8);
// A failed push is retried after this (as clients back off), so that the outage is not a busy
// loop of thousands of requests.
constexpr auto kRetryPause = std::chrono::milliseconds(100);
// Short, so that the test can see what the outage cut short expire; much longer than a commit.
constexpr auto kUploadTtl = std::chrono::seconds(3);
// Each pushed layer: over S3's 5 MiB smallest part, so every commit is a multipart upload.
constexpr size_t kLayerBytes = 6u << 20;

// One request of the loop.
struct Step {
  std::string what;  // "PUT /v2/..."
  Clock::time_point start;
  Clock::time_point end;
  int status = 0;
  int expected = 0;
  std::string code;     // OCI error code
  std::string message;  // OCI error message
  bool failed() const { return status != expected; }
  std::string describe() const {
    return what + " -> " + std::to_string(status) + " " + code + ": " + message + " (" +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count()) +
           " ms)";
  }
};

struct Pushed {
  std::string tag;
  std::string manifest;
  std::vector<std::string> blobs;  // config and layer bytes
  Clock::time_point start;
};

// Pushes image after image (a fresh config and 6 MiB layer each: blob POST with the config,
// layer POST + PUT, manifest PUT) until stopped; a push ends at its first failed request.
class PushLoop {
 public:
  PushLoop(uint16_t port, std::string auth) : client_(port, std::move(auth)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~PushLoop() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // Acknowledged pushes that began at or after `since`.
  size_t acknowledged_since(Clock::time_point since) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& p : pushed_) {
      n += p.start >= since ? 1 : 0;
    }
    return n;
  }
  // (after stop())
  const std::vector<Step>& steps() const { return steps_; }
  const std::vector<Pushed>& pushed() const { return pushed_; }

 private:
  bool step(const std::string& method, const std::string& target, const std::string& body,
            const Headers& headers, int expected, HttpResponse& res) {
    Step s;
    s.what = method + " " + target.substr(0, target.find('?'));
    s.expected = expected;
    s.start = Clock::now();
    res = client_.request(method, target, body, headers);
    s.end = Clock::now();
    s.status = res.status;
    s.code = res.oci_code();
    s.message = res.oci_message();
    std::lock_guard lock(mu_);
    steps_.push_back(s);
    return !s.failed();
  }

  void loop() {
    for (int n = 0; !stop_; ++n) {
      if (n > 0 && (steps_.empty() || steps_.back().failed())) {
        std::this_thread::sleep_for(kRetryPause);
      }
      Pushed p;
      p.tag = "p";
      p.tag += std::to_string(n);
      p.start = Clock::now();
      std::string config = image_config("amd64", p.tag);
      std::string layer = random_bytes(kLayerBytes, static_cast<uint64_t>(n) + 1);
      HttpResponse res;
      if (!step("POST", "/v2/web/app/blobs/uploads/?digest=" + sha256_digest(config), config,
                {{"Content-Type", "application/octet-stream"}}, 201, res)) {
        continue;
      }
      if (!step("POST", "/v2/web/app/blobs/uploads/", "", {}, 202, res)) {
        continue;
      }
      if (!step("PUT", with_digest(res.header("Location"), sha256_digest(layer)), layer,
                {{"Content-Type", "application/octet-stream"}}, 201, res)) {
        continue;
      }
      p.manifest = image_manifest(config, {layer});
      if (!step("PUT", "/v2/web/app/manifests/" + p.tag, p.manifest,
                {{"Content-Type", kOciManifestType}}, 201, res)) {
        continue;
      }
      p.blobs = {std::move(config), std::move(layer)};
      std::lock_guard lock(mu_);
      pushed_.push_back(std::move(p));
    }
  }

  RegistryClient client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Step> steps_;
  std::vector<Pushed> pushed_;
  std::thread thread_;
};

// What goes away, and how it comes back.
struct Outage {
  std::string cause;                 // for messages: "postgres", "s3"
  std::string message;               // what a 503 tells the client
  std::vector<std::string> secrets;  // what a 503 must not tell it: host, port, bucket
  std::function<void()> stop;        // (returns when it is away)
  std::function<bool()> start;
  bool cuts_a_multipart_upload = false;  // stop() lands in the middle of one
};

size_t multipart_uploads(const BerthdHome& home) {
  auto u = home.s3()->list_multipart_uploads("");
  EXPECT_TRUE(u) << u.error().message();
  return u ? u->size() : 0;
}

size_t temporary_objects(const BerthdHome& home) {
  auto o = home.s3()->list_objects("uploads/");
  EXPECT_TRUE(o) << o.error().message();
  return o ? o->size() : 0;
}

// The whole scenario, with `outage` in the middle.
void push_through_outage(const BerthdHome& home, const Outage& outage) {
  home.write_config(kUploadTtl);
  BerthdProcess p(home.data_dir(), home.berthd_args());
  ASSERT_NO_FATAL_FAILURE(p.start());
  const pid_t pid = p.pid();
  ASSERT_EQ(berth_cli(p, "repo create web/app").code, 0);

  PushLoop loop(p.port(), p.admin().basic_header());
  auto wait_for = [&loop](Clock::time_point since, size_t n) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (loop.acknowledged_since(since) < n && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return loop.acknowledged_since(since) >= n;
  };
  const auto began = Clock::now();
  ASSERT_TRUE(wait_for(began, 2)) << "pushes fail before any outage";
  const auto down = Clock::now();
  outage.stop();
  std::this_thread::sleep_for(kOutage);
  ASSERT_TRUE(outage.start()) << "cannot bring " << outage.cause << " back";
  const auto up = Clock::now();
  size_t multipart_after = multipart_uploads(home);
  if (outage.cuts_a_multipart_upload) {
    // Otherwise the check that it expires proves nothing.
    EXPECT_GT(multipart_after, 0u) << "the outage left no multipart upload behind";
  }
  // Back: pushes work again without restarting berthd.
  bool recovered = wait_for(up, 3);
  loop.stop();
  EXPECT_TRUE(recovered) << "pushes did not work again after " << outage.cause << " came back";
  EXPECT_TRUE(p.alive()) << read_file(p.log_path());
  EXPECT_EQ(p.pid(), pid);

  // While it was away: clear errors, promptly.
  int failed_during = 0;
  int shown = 0;
  for (const auto& s : loop.steps()) {
    EXPECT_TRUE(s.end - s.start <= kMaxAnswer) << "slow answer: " << s.describe();
    if (!s.failed()) {
      continue;
    }
    if (s.start >= down && s.end <= up) {
      ++failed_during;
    }
    bool clear = s.status == 503 && s.code == "UNAVAILABLE" && s.message == outage.message;
    EXPECT_TRUE(clear) << "not a clear 503 saying \"" << outage.message << "\": " << s.describe();
    for (const auto& secret : outage.secrets) {
      EXPECT_EQ(s.message.find(secret), std::string::npos)
          << "a 503 tells the client " << secret << ": " << s.describe();
    }
    if (shown++ < 3) {
      std::printf("[          ] %s\n", s.describe().c_str());
    }
  }
  EXPECT_GE(failed_during, 2) << "the outage went unnoticed";
  std::printf(
      "[          ] %zu requests, %d failed during the %lld s outage, %zu pushes "
      "acknowledged, %zu multipart uploads when %s came back\n",
      loop.steps().size(), failed_during, static_cast<long long>(kOutage.count()),
      loop.pushed().size(), multipart_after, outage.cause.c_str());

  // Nothing acknowledged is lost or corrupt.
  RegistryClient c(p.port(), p.admin().basic_header());
  for (const auto& pushed : loop.pushed()) {
    auto m = c.get("/v2/web/app/manifests/" + pushed.tag);
    EXPECT_EQ(m.status, 200) << pushed.tag << ": " << m.describe();
    EXPECT_EQ(m.body, pushed.manifest) << pushed.tag;
    for (const auto& b : pushed.blobs) {
      auto got = c.get("/v2/web/app/blobs/" + sha256_digest(b));
      EXPECT_EQ(got.status, 200) << pushed.tag << ": " << got.describe();
      EXPECT_TRUE(got.body == b) << pushed.tag << ": blob " << sha256_digest(b) << " comes back as "
                                 << sha256_digest(got.body);
    }
  }

  // What the outage cut short expires.
  auto deadline = Clock::now() + kUploadTtl + std::chrono::seconds(10);
  while (Clock::now() < deadline && multipart_uploads(home) + temporary_objects(home) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(multipart_uploads(home), 0u) << "multipart uploads outlived the upload TTL";
  EXPECT_EQ(temporary_objects(home), 0u) << "uploads/ objects outlived the upload TTL";
  EXPECT_EQ(p.terminate(), 0) << read_file(p.log_path());
  if (::testing::Test::HasFailure()) {
    std::printf("berthd's log without its 2xx request lines:\n%s\n",
                run("grep -v ' 20[12] ' " + p.log_path() + " | tail -150").out.c_str());
  }
  auto fsck = home.fsck();
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  EXPECT_NE(fsck.out.find(": 0 problem(s)"), std::string::npos) << fsck.all();
}

TEST(OutageTest, PostgresAwayForTenSeconds) {
  if (PostgresServer::shared() == nullptr) {
    GTEST_SKIP() << "PostgreSQL cannot run here: " << PostgresServer::shared_error();
  }
  PostgresServer server;  // its own: this test stops it
  ASSERT_TRUE(server.running()) << server.error();
  BerthdHome home(StateBackend::PostgresS3, &server);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  push_through_outage(home, {"postgres",
                             registry::kStoreUnavailableMessage,
                             {"127.0.0.1", std::to_string(server.port())},
                             [&server] { EXPECT_TRUE(server.stop()); },
                             [&server] { return server.start(); }});
}

TEST(OutageTest, S3AwayForTenSeconds) {
  RgwServer::use_own();  // it stops radosgw: not the cluster the run shares
  BerthdHome home(StateBackend::PostgresS3);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  auto* rgw = RgwServer::shared();
  auto stop = [&home, rgw] {
    // In the middle of a commit's multipart upload if one comes along: berthd cannot abort
    // it, and the upload TTL must clean it up.
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (multipart_uploads(home) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    rgw->stop();
  };
  push_through_outage(home,
                      {"s3",
                       registry::kBlobStorageUnavailableMessage,
                       {"127.0.0.1", std::to_string(rgw->port()), home.s3()->options().bucket},
                       stop,
                       [rgw] { return rgw->start(); },
                       true});
}

}  // namespace
}  // namespace berth::test
