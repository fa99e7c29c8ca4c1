// SPDX-License-Identifier: Apache-2.0
// The RGW harness itself: the cluster answers S3 with the user it made, buckets are fresh,
// radosgw alone can be stopped and started again (the fault tests need that), and the buckets
// of a process that attached to a shared cluster go once it has ended.
#include <gtest/gtest.h>

#include "support/rgw.h"
#include "support/shared_servers.h"

namespace berth::test {
namespace {

class RgwHarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_ = RgwServer::shared();
    if (rgw_ == nullptr) {
      GTEST_SKIP() << "RGW cannot run here: " << RgwServer::shared_error();
    }
  }
  RgwServer* rgw_ = nullptr;
};

TEST_F(RgwHarnessTest, SignedRequestsWorkAndBucketsAreFresh) {
  std::string bucket = rgw_->create_bucket();
  ASSERT_FALSE(bucket.empty());
  std::string url = rgw_->endpoint() + "/" + bucket;
  auto put = run(rgw_->curl_s3() + "-w '%{http_code}' -X PUT --data-binary hello " + url + "/k");
  EXPECT_EQ(put.out, "200") << put.all();
  auto get = run(rgw_->curl_s3() + url + "/k");
  EXPECT_EQ(get.out, "hello");
  // Unsigned requests are refused: the user's key is what lets a request in.
  auto anon = run("curl -s -o /dev/null -w '%{http_code}' " + url + "/k");
  EXPECT_EQ(anon.out, "403");
  std::string other = rgw_->create_bucket();
  ASSERT_FALSE(other.empty());
  EXPECT_NE(other, bucket);
  auto list = run(rgw_->curl_s3() + rgw_->endpoint() + "/" + other + "?list-type=2");
  EXPECT_EQ(list.out.find("<Contents>"), std::string::npos) << list.out;
}

// Stops radosgw: on a cluster of its own, not the one the run shares.
class RgwHarnessOwnTest : private OwnRgw, public RgwHarnessTest {};

TEST_F(RgwHarnessOwnTest, RadosgwStopsAndStartsAlone) {
  std::string bucket = rgw_->create_bucket();
  ASSERT_FALSE(bucket.empty());
  std::string url = rgw_->endpoint() + "/" + bucket + "/k";
  auto put = run(rgw_->curl_s3() + "-w '%{http_code}' -X PUT --data-binary kept " + url);
  ASSERT_EQ(put.out, "200") << put.all();
  rgw_->stop();
  EXPECT_FALSE(rgw_->running());
  auto down = run(rgw_->curl_s3() + "-o /dev/null -w '%{http_code}' " + url);
  EXPECT_EQ(down.out, "000");
  ASSERT_TRUE(rgw_->start()) << rgw_->error();
  // The data lives in the OSD, which kept running.
  auto get = run(rgw_->curl_s3() + url);
  EXPECT_EQ(get.out, "kept");
}

// The holder of a run's cluster deletes the buckets of the tests that have ended, objects and
// all: here this process's own cluster plays the holder, and an attached RgwServer the test.
TEST_F(RgwHarnessOwnTest, TheBucketsOfAnEndedProcessAreDeleted) {
  std::string kept = rgw_->create_bucket();  // the holder's own: not in the list
  std::string made;
  {
    RgwServer attached(SharedRgw{rgw_->port(), rgw_->access_key(), rgw_->secret_key(),
                                 rgw_->region(), rgw_->dir()});
    made = attached.create_bucket();
    ASSERT_FALSE(made.empty());
    // Larger than radosgw's 4 MiB head: the rest is in tail objects, which a plain purge
    // hands to the garbage collector (hours) instead of deleting.
    TempDir tmp;
    ASSERT_EQ(run("head -c 6000000 /dev/urandom > " + tmp / "big").code, 0);
    auto put = run(attached.curl_s3() + "-w '%{http_code}' -X PUT --data-binary @" + tmp / "big" +
                   " " + attached.endpoint() + "/" + made + "/k");
    ASSERT_EQ(put.out, "200") << put.all();
  }  // as at the process's exit
  EXPECT_EQ(rgw_->purge_done_buckets(), 1);
  auto head = [&](const std::string& bucket) {
    return run(rgw_->curl_s3() + "-o /dev/null -w '%{http_code}' -I " + rgw_->endpoint() + "/" +
               bucket)
        .out;
  };
  EXPECT_TRUE(eventually([&] { return head(made) == "404"; }, std::chrono::seconds(10)))
      << head(made);
  EXPECT_EQ(head(kept), "200");
  // Nothing of it waits for the garbage collector.
  auto gc = run("radosgw-admin -c '" + rgw_->dir() + "/ceph.conf' gc list --include-all");
  EXPECT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(trimmed(gc.out), "[]") << gc.out;
  EXPECT_EQ(rgw_->purge_done_buckets(), 0);  // each once
}

}  // namespace
}  // namespace berth::test
