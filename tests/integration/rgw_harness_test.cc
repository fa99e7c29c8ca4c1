// SPDX-License-Identifier: Apache-2.0
// The RGW harness itself: the cluster answers S3 with the user it made, buckets are fresh,
// and radosgw alone can be stopped and started again (the fault tests need that).
#include <gtest/gtest.h>

#include "support/rgw.h"

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
class RgwHarnessOwnTest : public RgwHarnessTest {
 protected:
  void SetUp() override {
    RgwServer::use_own();
    RgwHarnessTest::SetUp();
  }
};

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

}  // namespace
}  // namespace berth::test
