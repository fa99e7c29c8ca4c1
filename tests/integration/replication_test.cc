// SPDX-License-Identifier: Apache-2.0
// Replication to real destinations: Debian's docker-registry (CNCF distribution) and a second
// berthd (token flow with push scope), through an outage of the destination and a restart of
// berthd. Images are pushed with skopeo and compared by digest at both ends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/asio.h"
#include "daemon/daemon.h"
#include "registry/registry.h"
#include "support/blob_backend.h"
#include "support/distribution.h"
#include "support/harness.h"

namespace berth::test {
namespace {

class Replication : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Distribution::available()) {
      GTEST_SKIP() << "docker-registry, htpasswd or openssl is not installed";
    }
    for (const char* t : {"skopeo", "umoci", "curl", "jq"}) {
      if (!have(t)) {
        GTEST_SKIP() << t << " is not installed";
      }
    }
    layout_ = work_ / "layout";
    ASSERT_EQ(make_busybox_layout(layout_, "v1"), "");
    ASSERT_EQ(make_busybox_layout(layout_, "v2", {{"etc/v2", "two\n"}}), "");
  }

  // The bucket test on one backend (S3, or PostgreSQL + S3).
  void replicates_from_the_bucket(BlobBackend backend);

  // Pushes layout:tag to SERVER/web/app:tag with creds.
  void push(const std::string& host, const std::string& creds, const std::string& tag,
            const std::string& repo = "web/app") {
    auto r =
        run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + creds + "' oci:" + layout_ +
            ":" + tag + " docker://" + host + "/" + repo + ":" + tag + " 2>&1");
    ASSERT_EQ(r.code, 0) << r.all();
  }
  // `berth registry replication create RULE --to HUB --repos 'web/*' FLAGS` on d, with hub's
  // admin key (its secret on stdin).
  static CmdResult replicate_to(const TestDaemon& d, const std::string& rule, const TestDaemon& hub,
                                const std::string& flags = "") {
    return run("echo '" + hub.admin_secret() + "' | " + d.admin().env() + bin("berth") +
               " --server " + d.url() + " registry replication create " + rule + " --to " +
               hub.url() + " --repos 'web/*' " + flags + " --username " + hub.admin_key_id() +
               " --password-stdin");
  }
  // The manifest digest at REF ("" when it cannot be read).
  static std::string digest(const std::string& ref, const std::string& flags) {
    auto r = run("skopeo inspect --raw " + flags + " docker://" + ref + " 2>/dev/null | sha256sum");
    std::string hex = r.out.substr(0, 64);
    return hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" ? "" : hex;
  }
  // Waits (up to `secs`) until ref has digest `want`.
  static bool arrives(const std::string& ref, const std::string& flags, const std::string& want,
                      int secs = 60) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
    while (std::chrono::steady_clock::now() < deadline) {
      if (digest(ref, flags) == want) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  TempDir work_;
  std::string layout_;
};

TEST_F(Replication, PushesReachDistributionAndASecondBerthdThroughAnOutage) {
  TestDaemon d;
  TestDaemon hub;
  Distribution dist({});
  std::string why;
  ASSERT_TRUE(dist.start(&why)) << why;
  ASSERT_EQ(hub.cli("repo create web/app").code, 0);
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  ASSERT_EQ(d.cli("repo create other/app").code, 0);
  auto r = d.cli("registry replication create to-dist --to " + dist.url() +
                 " --repos 'web/*' --deletes");
  ASSERT_EQ(r.code, 0) << r.all();
  r = replicate_to(d, "to-hub", hub);
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("(password set)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(hub.admin_secret()), std::string::npos);

  push(d.host(), d.creds(), "v1");
  push(d.host(), d.creds(), "v1", "other/app");
  std::string here = "--tls-verify=false --creds '" + d.creds() + "'";
  std::string v1 = digest(d.host() + "/web/app:v1", here);
  ASSERT_EQ(v1.size(), 64u);
  EXPECT_TRUE(arrives(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags(), v1))
      << d.cli("registry replication status to-dist").all();
  std::string at_hub = "--tls-verify=false --creds '" + hub.creds() + "'";
  EXPECT_TRUE(arrives(hub.host() + "/web/app:v1", at_hub, v1))
      << d.cli("registry replication status to-hub").all();
  // A repository no rule matches stays here.
  EXPECT_EQ(digest(dist.host() + "/other/app:v1", dist.skopeo_inspect_flags()), "");

  // The destination is down during a push: the change waits, with the error shown.
  dist.stop();
  push(d.host(), d.creds(), "v2");
  std::string v2 = digest(d.host() + "/web/app:v2", here);
  ASSERT_EQ(v2.size(), 64u);
  EXPECT_TRUE(arrives(hub.host() + "/web/app:v2", at_hub, v2));
  std::string status;
  for (int i = 0; i < 100; ++i) {
    status = d.cli("registry replication status to-dist --json").out;
    if (!unquote(jq(status, ".last_error")).empty()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(jq(status, ".pending"), "1") << status;
  EXPECT_NE(jq(status, ".last_error").find("destination to-dist"), std::string::npos) << status;
  EXPECT_NE(jq(status, ".next[0]").find("web/app:v2"), std::string::npos) << status;
  auto text = d.cli("registry replication status to-dist");
  EXPECT_NE(text.out.find("pending      1"), std::string::npos) << text.out;

  ASSERT_TRUE(dist.start(&why)) << why;
  EXPECT_TRUE(arrives(dist.host() + "/web/app:v2", dist.skopeo_inspect_flags(), v2, 90))
      << d.cli("registry replication status to-dist").all();
  EXPECT_EQ(digest(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags()), v1);
  auto ls = d.cli("registry replication ls --json");
  EXPECT_EQ(jq(ls.out, "[.replications[].pending] | add"), "0") << ls.out;

  // --deletes: a manifest deleted here is deleted there (to-hub does not delete).
  ASSERT_EQ(d.cli("image rm web/app@sha256:" + v1).code, 0);
  bool gone = false;
  for (int i = 0; i < 150 && !gone; ++i) {
    gone = digest(dist.host() + "/web/app@sha256:" + v1, dist.skopeo_inspect_flags()).empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(gone) << d.cli("registry replication status to-dist").all();
  EXPECT_EQ(digest(hub.host() + "/web/app:v1", at_hub), v1);

  // A lifecycle expiry is a delete too: v1 pushed again is the newest, v2 expires here and,
  // with --deletes, at the destination.
  push(d.host(), d.creds(), "v1");
  ASSERT_TRUE(arrives(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags(), v1));
  write_file(work_ / "rules.json", R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
    "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]})");
  ASSERT_EQ(d.cli("repo lifecycle put web/app --file " + (work_ / "rules.json")).code, 0);
  asio::io_context ioc;
  int64_t expired = -1;
  asio::co_spawn(ioc, d.daemon().registry().apply_lifecycle(),
                 [&](std::exception_ptr, int64_t n) { expired = n; });
  ioc.run();
  ASSERT_EQ(expired, 1);
  gone = false;
  for (int i = 0; i < 150 && !gone; ++i) {
    gone = digest(dist.host() + "/web/app@sha256:" + v2, dist.skopeo_inspect_flags()).empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(gone) << d.cli("registry replication status to-dist").all();
  EXPECT_EQ(digest(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags()), v1);

  // Removing the repository deletes its manifests there too.
  ASSERT_EQ(d.cli("repo rm web/app").code, 0);
  gone = false;
  for (int i = 0; i < 150 && !gone; ++i) {
    gone = digest(dist.host() + "/web/app@sha256:" + v1, dist.skopeo_inspect_flags()).empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(gone) << d.cli("registry replication status to-dist").all();
}

// Untagging is a delete too: with --deletes the tag goes at a destination that deletes tags
// (a second berthd), its manifest stays; a destination that cannot delete tags alone (CNCF
// distribution) keeps the tag, and the changes after it are not held up.
TEST_F(Replication, UntaggingReachesDestinationsThatDeleteTags) {
  TestDaemon d;
  TestDaemon hub;
  Distribution dist({});
  std::string why;
  ASSERT_TRUE(dist.start(&why)) << why;
  ASSERT_EQ(hub.cli("repo create web/app").code, 0);
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  auto r = replicate_to(d, "to-hub", hub, "--deletes");
  ASSERT_EQ(r.code, 0) << r.all();
  r = d.cli("registry replication create to-dist --to " + dist.url() +
            " --repos 'web/*' --deletes");
  ASSERT_EQ(r.code, 0) << r.all();

  push(d.host(), d.creds(), "v1");
  std::string v1 =
      digest(d.host() + "/web/app:v1", "--tls-verify=false --creds '" + d.creds() + "'");
  ASSERT_EQ(v1.size(), 64u);
  std::string at_hub = "--tls-verify=false --creds '" + hub.creds() + "'";
  ASSERT_TRUE(arrives(hub.host() + "/web/app:v1", at_hub, v1));
  ASSERT_TRUE(arrives(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags(), v1));

  ASSERT_EQ(d.cli("image rm web/app:v1").code, 0);  // the tag only
  bool untagged = false;
  for (int i = 0; i < 150 && !untagged; ++i) {
    untagged = digest(hub.host() + "/web/app:v1", at_hub).empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(untagged) << d.cli("registry replication status to-hub").all();
  EXPECT_EQ(digest(hub.host() + "/web/app@sha256:" + v1, at_hub), v1);  // the manifest stays

  // distribution keeps the tag; the next push still arrives there, nothing is left pending.
  push(d.host(), d.creds(), "v2");
  std::string v2 =
      digest(d.host() + "/web/app:v2", "--tls-verify=false --creds '" + d.creds() + "'");
  EXPECT_TRUE(arrives(dist.host() + "/web/app:v2", dist.skopeo_inspect_flags(), v2))
      << d.cli("registry replication status to-dist").all();
  EXPECT_EQ(digest(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags()), v1);
  auto status = d.cli("registry replication status to-dist --json");
  EXPECT_EQ(jq(status.out, ".pending"), "0") << status.out;
}

TEST_F(Replication, PendingChangesSurviveARestart) {
  TempDir data;
  BerthdProcess b(data.path());
  b.start();
  Distribution dist({});
  ASSERT_EQ(b.cli("repo create web/app").code, 0);
  // The destination is not up yet: the rule is kept, the push queued.
  auto r = b.cli("registry replication create to-dist --to " + dist.url() + " --repos 'web/*'");
  ASSERT_EQ(r.code, 0) << r.all();
  push(b.host(), b.creds(), "v1");
  // Killed the moment the push was answered: the change was stored before the answer.
  b.kill9();
  b.start();
  std::string v1 =
      digest(b.host() + "/web/app:v1", "--tls-verify=false --creds '" + b.creds() + "'");
  ASSERT_EQ(v1.size(), 64u);
  std::string status;
  for (int i = 0; i < 100; ++i) {
    status = b.cli("registry replication status to-dist --json").out;
    if (!unquote(jq(status, ".last_error")).empty()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(jq(status, ".pending"), "1") << status;
  EXPECT_EQ(b.terminate(), 0);
  // After a restart the destination's last error is still shown, from the task.
  b.start();
  status = b.cli("registry replication status to-dist --json").out;
  EXPECT_FALSE(unquote(jq(status, ".last_error")).empty()) << status;
  EXPECT_EQ(b.terminate(), 0);
  std::string why;
  ASSERT_TRUE(dist.start(&why)) << why;
  b.start();
  EXPECT_TRUE(arrives(dist.host() + "/web/app:v1", dist.skopeo_inspect_flags(), v1, 90))
      << b.cli("registry replication status to-dist").all();
}

// A destination that takes connections and never answers holds up only its own rule: the
// other rule's copy arrives while the first waits out its timeout.
TEST_F(Replication, ADestinationThatHangsHoldsUpOnlyItsOwnRule) {
  uint16_t silent_port = 0;
  int silent = listen_loopback(silent_port, 64);  // never accepts: connects, then silence
  ASSERT_GE(silent, 0);
  TestDaemon d([](config::Config& c) { c.registry.upstream_timeout = std::chrono::seconds(120); });
  TestDaemon hub;
  ASSERT_EQ(hub.cli("repo create web/app").code, 0);
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  auto r = d.cli("registry replication create a-silent --to http://127.0.0.1:" +
                 std::to_string(silent_port) + " --repos 'web/*'");
  ASSERT_EQ(r.code, 0) << r.all();
  r = replicate_to(d, "b-hub", hub);
  ASSERT_EQ(r.code, 0) << r.all();
  push(d.host(), d.creds(), "v1");
  std::string v1 =
      digest(d.host() + "/web/app:v1", "--tls-verify=false --creds '" + d.creds() + "'");
  ASSERT_EQ(v1.size(), 64u);
  EXPECT_TRUE(arrives(hub.host() + "/web/app:v1",
                      "--tls-verify=false --creds '" + hub.creds() + "'", v1, 60))
      << d.cli("registry replication status b-hub").all();
  auto a = d.cli("registry replication status a-silent --json");
  EXPECT_EQ(jq(a.out, ".pending"), "1") << a.out;
  ::close(silent);
}

// With blobs in S3 (and no local copy, as on a node that did not take the push), replication
// reads them from the bucket; on the scale-out deployment its rules and queue are PostgreSQL's.
void Replication::replicates_from_the_bucket(BlobBackend backend) {
  BlobHome home(backend);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  TestDaemon d([&](config::Config& c) {
    home.apply(c);
    c.storage.s3.cache_pushed = false;
  });
  TestDaemon hub;
  ASSERT_EQ(hub.cli("repo create web/app").code, 0);
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  auto r = replicate_to(d, "to-hub", hub);
  ASSERT_EQ(r.code, 0) << r.all();
  push(d.host(), d.creds(), "v1");
  std::string v1 =
      digest(d.host() + "/web/app:v1", "--tls-verify=false --creds '" + d.creds() + "'");
  ASSERT_EQ(v1.size(), 64u);
  std::string at_hub = "--tls-verify=false --creds '" + hub.creds() + "'";
  EXPECT_TRUE(arrives(hub.host() + "/web/app:v1", at_hub, v1))
      << d.cli("registry replication status to-hub").all();
  // Whole: the image copies out of the destination.
  auto out = run("skopeo copy -q --src-tls-verify=false --src-creds '" + hub.creds() +
                 "' docker://" + hub.host() + "/web/app:v1 oci:" + (work_ / "out") + ":x 2>&1");
  EXPECT_EQ(out.code, 0) << out.all();
}

TEST_F(Replication, BlobsInS3AreReplicated) { replicates_from_the_bucket(BlobBackend::S3); }

TEST_F(Replication, BlobsInS3AreReplicatedWithPostgres) {
  replicates_from_the_bucket(BlobBackend::PostgresS3);
}

TEST_F(Replication, BadRulesAreRefusedNamingTheProblem) {
  TestDaemon d;
  struct Case {
    std::string args;
    std::string says;
  };
  const Case cases[] = {
      {"Bad --to http://127.0.0.1:1 --repos 'web/*'", "replication name"},
      {"x --to ftp://h --repos 'web/*'", "must start with https:// or http://"},
      {"x --to http://127.0.0.1:1/path --repos 'web/*'", "not a path"},
      {"x --to http://127.0.0.1:1 --repos ''", "not a repository glob"},
      {"x --to http://127.0.0.1:1", "--repos"},
  };
  for (const auto& c : cases) {
    auto r = d.cli("registry replication create " + c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.all();
  }
  EXPECT_EQ(jq(d.cli("registry replication ls --json").out, ".replications | length"), "0");
  EXPECT_NE(d.cli("registry replication status nope").code, 0);
  EXPECT_NE(d.cli("registry replication rm nope").code, 0);
}

}  // namespace
}  // namespace berth::test
