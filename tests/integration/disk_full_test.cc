// SPDX-License-Identifier: Apache-2.0
// The registry on a full disk, for real: berthd's data dir is a small tmpfs that the test fills
// up. A full disk is the server's problem, so clients hear 507 Insufficient Storage (never 400,
// never 429 as if rate-limited, never 413), with no server path in the message; the operator
// gets one error line naming ENOSPC and the data dir; nothing partial stays behind; and
// everything works again as soon as space is freed, without a restart.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "integration/registry_client.h"
#include "runtime/runtime.h"
#include "support/harness.h"

namespace berth::test {
namespace {

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "mounting a tmpfs needs root";
    }
    data_ = base_ / "data";
    auto m = run("mkdir -p '" + data_ +
                 "' && mount -t tmpfs -o size=16m,mode=0755 berth-disk-full '" + data_ + "'");
    ASSERT_EQ(m.code, 0) << m.all();
    mounted_ = true;
    berthd_ = std::make_unique<BerthdProcess>(data_);
    berthd_->start();
    ASSERT_FALSE(HasFatalFailure());
    c_ = std::make_unique<RegistryClient>(berthd_->port(), berthd_->admin().basic_header());
    auto r = berthd_->cli("repo create web/app");
    ASSERT_EQ(r.code, 0) << r.all();
  }

  void TearDown() override {
    if (berthd_) {
      berthd_->terminate();
    }
    if (mounted_) {
      run("umount '" + data_ + "' || umount -l '" + data_ + "'");
    }
  }

  std::string filler() const { return data_ + "/filler"; }

  // Grows a file until the filesystem refuses another byte.
  void fill() {
    run("dd if=/dev/zero of='" + filler() + "' bs=64k 2>/dev/null");
    auto df = run("df --output=avail -B1 '" + data_ + "' | tail -1");
    ASSERT_EQ(std::stoll(df.out), 0) << "the tmpfs is not full: " << df.all();
  }

  void free_space() { ASSERT_EQ(::unlink(filler().c_str()), 0); }

  // The answer a client must get for a full disk.
  void expect_insufficient_storage(const HttpResponse& r, const std::string& what) {
    EXPECT_EQ(r.status, 507) << what << "\n" << r.describe();
    EXPECT_NE(r.oci_message().find("insufficient storage"), std::string::npos) << what << "\n"
                                                                               << r.body;
    EXPECT_EQ(r.body.find(data_), std::string::npos) << what << ": server path in " << r.body;
    EXPECT_EQ(r.body.find("uploads/"), std::string::npos) << what << ": " << r.body;
  }

  std::string uploads() { return run("ls -A '" + data_ + "/uploads'").out; }

  TempDir base_;
  std::string data_;
  bool mounted_ = false;
  std::unique_ptr<BerthdProcess> berthd_;
  std::unique_ptr<RegistryClient> c_;
};

TEST_F(DiskFullTest, UploadsAnswer507LeaveNothingAndResumeOnceSpaceIsFreed) {
  std::string blob(512 * 1024, 'b');
  for (size_t i = 0; i < blob.size(); i += 7) {
    blob[i] = static_cast<char>('a' + i % 26);
  }
  std::string dg = sha256_digest(blob);
  auto started = c_->request("POST", "/v2/web/app/blobs/uploads/");
  ASSERT_EQ(started.status, 202) << started.describe();
  std::string loc = started.header("Location");
  std::string id = started.header("Docker-Upload-UUID");
  ASSERT_FALSE(id.empty());
  fill();

  // A chunk: 507, and the session keeps no part of it.
  auto patch =
      c_->request("PATCH", loc, blob, {{"Content-Range", "0-" + std::to_string(blob.size() - 1)}});
  expect_insufficient_storage(patch, "PATCH");
  auto st = c_->get(loc);
  EXPECT_EQ(st.status, 204) << st.describe();
  EXPECT_EQ(st.header("Range"), "0-0");
  struct stat sb {};
  ASSERT_EQ(::stat((data_ + "/uploads/" + id + "/data").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_size, 0) << "a partial chunk stayed in the upload";

  // Starting an upload: 507 (not 429), and no uploads/<id>/ directory is left behind.
  auto post = c_->request("POST", "/v2/web/app/blobs/uploads/");
  expect_insufficient_storage(post, "POST");
  auto mono = c_->request("POST", "/v2/web/app/blobs/uploads/?digest=" + dg, blob);
  expect_insufficient_storage(mono, "monolithic POST");
  EXPECT_EQ(uploads(), id + "\n") << "a failed start left a directory";
  EXPECT_EQ(c_->head("/v2/web/app/blobs/" + dg).status, 404);
  EXPECT_NE(
      run("ls '" + data_ + "/blobs/sha256/" + dg.substr(7, 2) + "/" + dg.substr(7) + "'").code, 0)
      << "a blob file exists";

  // The operator is told what to do.
  std::string log = read_file(berthd_->log_path());
  EXPECT_NE(log.find("ENOSPC"), std::string::npos) << log;
  EXPECT_NE(log.find("data_dir=" + data_), std::string::npos) << log;

  // Space comes back: the same session resumes, and new uploads work, with no restart.
  free_space();
  auto again =
      c_->request("PATCH", loc, blob, {{"Content-Range", "0-" + std::to_string(blob.size() - 1)}});
  ASSERT_EQ(again.status, 202) << again.describe();
  auto put = c_->request("PUT", with_digest(loc, dg));
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(c_->get("/v2/web/app/blobs/" + dg).body, blob);
  EXPECT_EQ(c_->push_blob("web/app", "after the disk was freed").status, 201);
  EXPECT_TRUE(berthd_->alive());
}

TEST_F(DiskFullTest, ManifestsAndTheControlApiAnswer507AndWriteNoHalfRow) {
  std::string config = image_config();
  std::string layer(64 * 1024, 'l');
  ASSERT_EQ(c_->push_blob("web/app", config).status, 201);
  ASSERT_EQ(c_->push_blob("web/app", layer).status, 201);
  fill();

  // SQLite may still have room in pages it already owns: push until a write needs more.
  std::string failed_tag;
  HttpResponse failed;
  for (int i = 0; i < 200 && failed_tag.empty(); ++i) {
    Json m = Json::parse(image_manifest(config, {layer}));
    m["annotations"] =
        Json{{"n", std::string(2048, static_cast<char>('a' + i % 26)) + std::to_string(i)}};
    std::string tag = std::string("t").append(std::to_string(i));
    auto r = c_->put_manifest("web/app", tag, m.dump(), kOciManifestType);
    if (r.status != 201) {
      failed_tag = tag;
      failed = r;
    }
  }
  ASSERT_FALSE(failed_tag.empty()) << "every manifest was stored on a full disk";
  expect_insufficient_storage(failed, "manifest PUT");
  EXPECT_EQ(c_->get("/v2/web/app/manifests/" + failed_tag).status, 404) << "half-written row";

  // The control API: 507 with a JSON error, never 413.
  std::string api_status, api_body;
  for (int i = 0; i < 200; ++i) {
    std::string body = std::string("{\"name\":\"web/r").append(std::to_string(i)).append("\"}");
    auto r = run("curl -s -w '\\n%{http_code}' -X POST" + berthd_->curl_auth() + berthd_->url() +
                 "/api/v1/repositories -d '" + body + "'");
    api_status = r.out.substr(r.out.rfind('\n') + 1);
    api_body = r.out.substr(0, r.out.rfind('\n'));
    if (api_status != "201") {
      break;
    }
  }
  EXPECT_EQ(api_status, "507") << api_body;
  EXPECT_NE(api_body.find("\"no_space\""), std::string::npos) << api_body;
  EXPECT_EQ(api_body.find(data_), std::string::npos) << api_body;

  free_space();
  Json m = Json::parse(image_manifest(config, {layer}));
  auto put = c_->put_manifest("web/app", failed_tag, m.dump(), kOciManifestType);
  EXPECT_EQ(put.status, 201) << put.describe();
  auto repo = berthd_->cli("repo create web/after");
  EXPECT_EQ(repo.code, 0) << repo.all();
  EXPECT_TRUE(berthd_->alive());

  // Nothing inconsistent on disk: every row has its bytes.
  ASSERT_EQ(berthd_->terminate(), 0);
  auto fsck = run(bin("berthd") + " fsck --data '" + data_ + "'");
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  berthd_.reset();
}

// A start that failed half-way (on a full disk, or a crash) leaves uploads/<id>/ without its
// data file. Nothing can resume it, so gc removes it at once, not after upload_ttl.
TEST_F(DiskFullTest, GcRemovesUploadDirectoriesAFailedStartLeftBehind) {
  auto live = c_->request("POST", "/v2/web/app/blobs/uploads/");
  ASSERT_EQ(live.status, 202) << live.describe();
  std::string live_id = live.header("Docker-Upload-UUID");
  std::string empty = "0b7e5d3c-1111-4222-8333-944455556666";
  std::string repo_only = "0b7e5d3c-1111-4222-8333-944455557777";
  ASSERT_EQ(run("mkdir '" + data_ + "/uploads/" + empty + "' '" + data_ + "/uploads/" + repo_only +
                "' && : > '" + data_ + "/uploads/" + repo_only + "/repo'")
                .code,
            0);
  auto gc = berthd_->cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".uploads_removed"), "2") << gc.out;
  EXPECT_EQ(uploads(), live_id + "\n");
  // The live session is untouched.
  std::string blob = "still uploading";
  auto patch = c_->request("PATCH", live.header("Location"), blob);
  EXPECT_EQ(patch.status, 202) << patch.describe();
  auto put = c_->request("PUT", with_digest(live.header("Location"), sha256_digest(blob)));
  EXPECT_EQ(put.status, 201) << put.describe();
}

}  // namespace
}  // namespace berth::test

namespace berth::test {
namespace {

// Service logs on a full disk: a line that does not fit is dropped whole (a short write is cut
// back, so the file never holds half a line), and the first line written once there is room
// again says how many were lost.
TEST(LogSinkDiskFull, DropsWholeLinesAndSaysSoOnceThereIsRoom) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting a tmpfs needs root";
  }
  TempDir base;
  std::string dir = base / "logs";
  auto m = run("mkdir -p '" + dir + "' && mount -t tmpfs -o size=1m berth-log-full '" + dir + "'");
  ASSERT_EQ(m.code, 0) << m.all();
  std::string file = dir + "/web.log";
  {
    runtime::LogSink sink(file);
    sink.write("web-1", "stdout", "before");
    run("dd if=/dev/zero of='" + dir + "/filler' bs=4k 2>/dev/null");
    // Longer than the room left in the file's last page: written in part, then cut back.
    std::string big(6000, 'x');
    sink.write("web-1", "stdout", big);
    std::string text = read_file(file);
    EXPECT_EQ(text.find("xxx"), std::string::npos) << "half a line stayed: " << text.size();
    EXPECT_EQ(runtime::read_log(file, 0, "", 0).size(), 1u);
    ASSERT_EQ(::unlink((dir + "/filler").c_str()), 0);
    sink.write("web-1", "stdout", "after");
  }
  auto lines = runtime::read_log(file, 0, "", 0);
  run("umount '" + dir + "' || umount -l '" + dir + "'");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "before");
  EXPECT_EQ(lines[1].instance, "berth");
  EXPECT_EQ(lines[1].text, "1 log line was dropped: the disk was full");
  EXPECT_EQ(lines[2].text, "after");
}

}  // namespace
}  // namespace berth::test
