// SPDX-License-Identifier: Apache-2.0
// Upload sessions over plain HTTP (curl) against a berthd process: an abandoned upload expires
// after registry.upload_ttl, and an upload survives a SIGKILL and continues where it stopped
// (also on PostgreSQL + S3, with a part already in the bucket).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/berthd_home.h"
#include "support/harness.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

size_t count_entries(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = stdfs::directory_iterator(dir, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// POST /v2/web/app/blobs/uploads/; returns the Location path ("" on failure, reported).
std::string open_upload(const BerthdProcess& p) {
  auto r = run("curl -si" + p.curl_auth() + "-X POST " + p.url() + "/v2/web/app/blobs/uploads/");
  EXPECT_EQ(status_code(r.out), 202) << r.all();
  std::string loc = header_value(r.out, "Location");
  EXPECT_EQ(loc.rfind("/v2/web/app/blobs/uploads/", 0), 0u) << r.all();
  return loc;
}

// PATCHes a file's bytes; with from >= 0 sends Content-Range from-(from+size-1).
CmdResult patch(const BerthdProcess& p, const std::string& loc, const std::string& file,
                long long from = -1) {
  std::string range;
  if (from >= 0) {
    auto size = static_cast<long long>(stdfs::file_size(file));
    range =
        " -H 'Content-Range: " + std::to_string(from) + "-" + std::to_string(from + size - 1) + "'";
  }
  return run("curl -si" + p.curl_auth() +
             "-X PATCH -H 'Expect:' -H 'Content-Type: application/octet-stream'" + range +
             " --data-binary @" + file + " '" + p.url() + loc + "'");
}

TEST(UploadsTest, AbandonedUploadExpiresAfterTtl) {
  TempDir work, data;
  std::string cfg = work / "berthd.yaml";
  write_file(cfg, "registry:\n  upload_ttl: 2s\n");
  auto check = run(bin("berthd") + " config check " + cfg);
  ASSERT_EQ(check.code, 0) << check.all();

  BerthdProcess p(data.path(), {"--config", cfg});
  ASSERT_NO_FATAL_FAILURE(p.start());
  ASSERT_EQ(berth_cli(p, "repo create web/app").code, 0);

  std::string loc = open_upload(p);
  ASSERT_FALSE(loc.empty());
  auto opened = Clock::now();
  std::string chunk = work / "chunk";
  write_file(chunk, random_bytes(64 * 1024, 3));
  auto pr = patch(p, loc, chunk);
  ASSERT_EQ(status_code(pr.out), 202) << pr.all();
  EXPECT_EQ(header_value(pr.out, "Range"), "0-65535") << pr.out;
  const std::string uploads = data.path() + "/uploads";
  EXPECT_EQ(count_entries(uploads), 1u);
  auto st =
      run("curl -s" + p.curl_auth() + "-o /dev/null -w '%{http_code}' '" + p.url() + loc + "'");
  EXPECT_EQ(st.out, "204") << "upload status while alive";

  // Expiry runs every max(1s, ttl/4): gone after ttl + 1 s; a loaded runner gets slack, short
  // of what a sweep that ran only every few TTLs would need.
  auto deadline = opened + std::chrono::seconds(8);
  while (count_entries(uploads) > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened);
  EXPECT_EQ(count_entries(uploads), 0u) << "upload not expired after " << took.count() << " ms";
  EXPECT_GE(took.count(), 1900) << "upload expired before its TTL";
  st = run("curl -s" + p.curl_auth() + "-o /dev/null -w '%{http_code}' '" + p.url() + loc + "'");
  EXPECT_EQ(st.out, "404") << "upload status after expiry";
  auto put = run("curl -s" + p.curl_auth() + "-o /dev/null -w '%{http_code}' -X PUT '" + p.url() +
                 loc + "?digest=sha256:" + sha256_file(chunk) + "'");
  EXPECT_EQ(put.out, "404") << "completing an expired upload";
  EXPECT_TRUE(p.alive()) << read_file(p.log_path());
  EXPECT_EQ(p.terminate(), 0);
}

// On the embedded default, and on PostgreSQL + S3, where the first 10 MiB went to the bucket as
// a multipart part before the kill: the upload completes all the same, and once the TTL has
// passed no multipart upload is left in the bucket.
class UploadsResumeTest : public ::testing::TestWithParam<StateBackend> {};

TEST_P(UploadsResumeTest, UploadResumesAfterSigkill) {
  BerthdHome home(GetParam());
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  if (home.s3() != nullptr) {
    home.write_config(std::chrono::seconds(15));  // the orphaned part is swept within the test
  }
  TempDir work;
  BerthdProcess p(home.data_dir(), home.berthd_args());
  ASSERT_NO_FATAL_FAILURE(p.start());
  ASSERT_EQ(berth_cli(p, "repo create web/app").code, 0);

  std::string whole = random_bytes(13 * 1024 * 1024 + 123, 11);
  const size_t cut = 11 * 1024 * 1024 + 7;
  write_file(work / "whole", whole);
  write_file(work / "part1", whole.substr(0, cut));
  write_file(work / "part2", whole.substr(cut));
  std::string digest = "sha256:" + sha256_file(work / "whole");

  std::string loc = open_upload(p);
  ASSERT_FALSE(loc.empty());
  auto pr = patch(p, loc, work / "part1", 0);
  ASSERT_EQ(status_code(pr.out), 202) << pr.all();
  EXPECT_EQ(header_value(pr.out, "Range"), "0-" + std::to_string(cut - 1));

  if (auto* s3 = home.s3()) {
    // The first 10 MiB went out as a part while the client was sending.
    ASSERT_EQ(wait_for_multipart_uploads(*s3, "uploads/"), 1u) << "no multipart upload yet";
  }
  p.kill9();
  ASSERT_NO_FATAL_FAILURE(p.start());

  // The session is still there and reports how far it got.
  auto st = run("curl -si" + p.curl_auth() + "'" + p.url() + loc + "'");
  ASSERT_EQ(status_code(st.out), 204) << st.all();
  std::string range = header_value(st.out, "Range");
  ASSERT_EQ(range, "0-" + std::to_string(cut - 1)) << st.out;

  // A chunk that does not continue at the reported offset is refused.
  write_file(work / "junk", "0123456789");
  auto wrong = patch(p, loc, work / "junk", static_cast<long long>(cut) + 10);
  EXPECT_EQ(status_code(wrong.out), 416) << wrong.all();

  pr = patch(p, loc, work / "part2", static_cast<long long>(cut));
  ASSERT_EQ(status_code(pr.out), 202) << pr.all();
  EXPECT_EQ(header_value(pr.out, "Range"), "0-" + std::to_string(whole.size() - 1));
  std::string loc2 = header_value(pr.out, "Location");
  ASSERT_FALSE(loc2.empty());

  auto put = run("curl -si" + p.curl_auth() + "-X PUT '" + p.url() + loc2 +
                 (loc2.find('?') == std::string::npos ? "?" : "&") + "digest=" + digest + "'");
  ASSERT_EQ(status_code(put.out), 201) << put.all() << read_file(p.log_path());
  EXPECT_EQ(header_value(put.out, "Docker-Content-Digest"), digest);

  std::string back = work / "back";
  auto get = run("curl -sf" + p.curl_auth() + "-o " + back + " " + p.url() + "/v2/web/app/blobs/" +
                 digest);
  ASSERT_EQ(get.code, 0) << get.all();
  EXPECT_EQ("sha256:" + sha256_file(back), digest);
  EXPECT_EQ(count_entries(home.data_dir() + "/uploads"), 0u);
  if (auto* s3 = home.s3()) {
    // The part sent before the kill belonged to a multipart upload that berthd no longer
    // knows; the sweep aborts it once the 15 s TTL has passed.
    auto deadline = Clock::now() + std::chrono::seconds(40);
    auto left = s3->list_multipart_uploads("");
    while (left && !left->empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      left = s3->list_multipart_uploads("");
    }
    ASSERT_TRUE(left) << left.error().message();
    EXPECT_TRUE(left->empty()) << left->size() << " multipart upload(s) left after the TTL";
  }
  EXPECT_EQ(p.terminate(), 0);

  auto fsck = home.fsck();
  EXPECT_EQ(fsck.code, 0) << fsck.all();
}

INSTANTIATE_TEST_SUITE_P(Backends, UploadsResumeTest,
                         ::testing::Values(StateBackend::Embedded, StateBackend::PostgresS3),
                         StateBackendName());

}  // namespace
}  // namespace berth::test
