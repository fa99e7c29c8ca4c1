// SPDX-License-Identifier: Apache-2.0
// The build service with real parts: a SQLite store in a temp dir, the registry, runc through
// runtime::Runtime, the image preparer, the enforcing PolicyAuthorizer, and git repositories
// made with the git CLI (file:// remotes, build.allow_file_remotes on), in
// build_service_fixture.h. Covers a build from commit to pushed tags, reproducible digests,
// the persistent queue across restarts, supersede, stop, timeout, failing steps and a full
// disk; the triggers and guards are in build_triggers_test.cc.
#include "build_service_fixture.h"

namespace berth::builder {
namespace {

// The fixture's helpers, and its using-declarations (stdfs, test::git, HasSubstr, ...).
using namespace build_test;

TEST_F(BuildServiceTest, BuildsACommitAndPushesBothTags) {
  start_service(deps());
  auto created = create();
  EXPECT_EQ(created.webhook_secret.size(), 64u);
  EXPECT_EQ(created.view.webhook_path, "/hooks/github/web");
  EXPECT_EQ(created.view.git_path, "/git/web.git");
  EXPECT_TRUE(stdfs::exists(svc_->git_root() + "/web.git/HEAD"));
  std::string commit = trimmed(git(src_.path(), "rev-parse HEAD").out);

  auto b = svc_->start_build("web", commit, "manual by user/alice");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->status, "QUEUED");
  EXPECT_EQ(b->image, "web/app:latest");
  BuildView done = wait_done(b->id);
  ASSERT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(b->id);
  EXPECT_EQ(done.commit, commit);
  EXPECT_EQ(done.branch, "main");
  EXPECT_EQ(done.trigger, "manual by user/alice");
  EXPECT_EQ(done.source, "file://" + src_.path());
  EXPECT_EQ(done.phase, "PUSH");
  ASSERT_EQ(done.tags.size(), 2u);
  EXPECT_EQ(done.tags[0], "latest");
  EXPECT_EQ(done.tags[1], commit.substr(0, 7));
  EXPECT_EQ(tag_digest("web/app", "latest"), done.image_digest);
  EXPECT_EQ(tag_digest("web/app", commit.substr(0, 7)), done.image_digest);
  EXPECT_GT(done.phase_ms.count("SOURCE"), 0u);
  EXPECT_GT(done.phase_ms.count("BUILD"), 0u);
  EXPECT_GT(done.phase_ms.count("PUSH"), 0u);
  EXPECT_GE(done.steps.size(), 3u);
  EXPECT_GT(done.finished_at, 0);

  // The image carries the commit and source labels.
  auto repo = store_->get_repository("web/app");
  ASSERT_TRUE(repo);
  auto m = store_->get_manifest(repo->id, "latest");
  ASSERT_TRUE(m);
  auto manifest = parse_json(m->content);
  ASSERT_TRUE(manifest);
  auto cfg_path = reg_->blob_file((*manifest)["config"]["digest"].get<std::string>());
  ASSERT_TRUE(cfg_path);
  auto cfg = parse_json(test::read_file(*cfg_path));
  ASSERT_TRUE(cfg);
  EXPECT_EQ((*cfg)["config"]["Labels"]["org.opencontainers.image.revision"], commit);
  EXPECT_EQ((*cfg)["config"]["Labels"]["org.opencontainers.image.source"], "file://" + src_.path());

  std::string text = log_of(b->id);
  EXPECT_THAT(text, HasSubstr("==> SOURCE"));
  EXPECT_THAT(text, HasSubstr("==> BUILD"));
  EXPECT_THAT(text, HasSubstr("==> PUSH"));
  EXPECT_THAT(text, HasSubstr("Step 4/4 : RUN"));
  EXPECT_THAT(text, HasSubstr("hello from git"));
  EXPECT_THAT(text, HasSubstr("token is ****"));
  EXPECT_THAT(text, Not(HasSubstr(kToken)));
  EXPECT_THAT(text, HasSubstr("SUCCEEDED"));
  // Lines are timestamped.
  EXPECT_EQ(text.substr(4, 1), "-");
  EXPECT_EQ(text.substr(23, 2), "Z ");
  // The checkout is gone.
  EXPECT_FALSE(stdfs::exists(data_ / ("build/work/" + std::to_string(b->id))));

  auto list = svc_->list_builds("web", 10);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, b->id);
}

// SOURCE_DATE_EPOCH as a build arg makes the build reproducible: the image's "created" is it,
// and the same commit built again with an empty layer cache gives the same digest.
TEST_F(BuildServiceTest, SourceDateEpochMakesTheSameDigest) {
  start_service(deps());
  create(Json{{"build_args", {{"SOURCE_DATE_EPOCH", "1700000000"}}}});
  std::string commit = trimmed(git(src_.path(), "rev-parse HEAD").out);
  auto first = svc_->start_build("web", commit, "manual");
  ASSERT_TRUE(first) << first.error().message();
  BuildView a = wait_done(first->id);
  ASSERT_EQ(a.status, "SUCCEEDED") << a.reason << "\n" << failure_context(first->id);
  stdfs::remove_all(data_ / "build/cache");
  auto second = svc_->start_build("web", commit, "manual");
  ASSERT_TRUE(second);
  BuildView b = wait_done(second->id);
  ASSERT_EQ(b.status, "SUCCEEDED") << b.reason;
  EXPECT_EQ(b.image_digest, a.image_digest);
  EXPECT_TRUE(
      std::none_of(b.steps.begin(), b.steps.end(), [](const BuildStep& s) { return s.cached; }));
  auto repo = store_->get_repository("web/app");
  ASSERT_TRUE(repo);
  auto m = store_->get_manifest(repo->id, "latest");
  ASSERT_TRUE(m);
  auto manifest = parse_json(m->content);
  ASSERT_TRUE(manifest);
  auto cfg_path = reg_->blob_file((*manifest)["config"]["digest"].get<std::string>());
  ASSERT_TRUE(cfg_path);
  auto cfg = parse_json(test::read_file(*cfg_path));
  ASSERT_TRUE(cfg);
  EXPECT_EQ((*cfg)["created"], "2023-11-14T22:13:20Z");
  EXPECT_THAT(log_of(second->id), Not(HasSubstr("were not consumed")));
}

TEST_F(BuildServiceTest, QueuePersistsAcrossRestartAndResolvesTheBranch) {
  svc_ = std::make_unique<Service>(deps());  // not started: builds only queue
  create();
  auto b = svc_->start_build("web", "", "manual");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->commit, "");
  EXPECT_EQ(b->branch, "main");
  // A build left IN_PROGRESS by a berthd that died.
  auto other = svc_->start_build("web", "refs/heads/main", "manual");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->branch, "main");
  auto rec = store_->get_build(other->id);
  ASSERT_TRUE(rec);
  rec->status = "IN_PROGRESS";
  ASSERT_TRUE(store_->update_build(*rec));
  svc_.reset();

  start_service(deps());
  BuildView done = wait_done(other->id);
  EXPECT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(other->id);
  EXPECT_EQ(done.commit, trimmed(git(src_.path(), "rev-parse HEAD").out));
  EXPECT_THAT(log_of(other->id), HasSubstr("berthd restarted; build queued again"));
  // The first build was superseded when the second was queued (same branch).
  auto first = svc_->get_build(b->id);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, "STOPPED");
  EXPECT_EQ(first->reason, "superseded by build " + std::to_string(other->id));
}

TEST_F(BuildServiceTest, StopWhileQueuedThenANewServiceRunsIt) {
  start_service(deps());
  create();
  svc_->stop();  // workers gone: the build stays queued
  auto b = svc_->start_build("web", "", "manual");
  ASSERT_TRUE(b);
  svc_.reset();
  start_service(deps());
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(b->id);
}

TEST_F(BuildServiceTest, SupersedeAndStopOfQueuedBuilds) {
  svc_ = std::make_unique<Service>(deps());
  create();
  auto a = svc_->start_build("web", "main", "one");
  auto b = svc_->start_build("web", "main", "two");
  ASSERT_TRUE(a && b);
  auto old = svc_->get_build(a->id);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, "STOPPED");
  EXPECT_EQ(old->reason, "superseded by build " + std::to_string(b->id));
  EXPECT_THAT(log_of(a->id), HasSubstr("superseded by build"));
  auto stopped = svc_->stop_build(b->id);
  ASSERT_TRUE(stopped) << stopped.error().message();
  EXPECT_EQ(stopped->status, "STOPPED");
  auto again = svc_->stop_build(b->id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::FailedPrecondition);
  auto glob = svc_->update_project(
      "web",
      *project_from_request(Json{{"branch", "release/*"}}, svc_->get_project("web")->spec, true));
  ASSERT_TRUE(glob) << glob.error().message();
  auto none = svc_->start_build("web", "", "manual");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::InvalidArgument);
  auto bad_ref = svc_->start_build("web", "--upload-pack=x", "manual");
  ASSERT_FALSE(bad_ref);
  EXPECT_EQ(bad_ref.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(svc_->start_build("nope", "", "x").error().code(), Errc::NotFound);
}

TEST_F(BuildServiceTest, StopOfARunningBuild) {
  start_service(deps());
  create();
  commit_files({{"Dockerfile", "FROM web/base:1\nRUN echo sleeping && sleep 60\n"}}, "slow");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  ASSERT_TRUE(wait_log(b->id, [](const std::string& t) {
    return t.find("sleeping") != std::string::npos;
  })) << failure_context(b->id);
  auto t0 = std::chrono::steady_clock::now();
  auto stopped = svc_->stop_build(b->id);
  ASSERT_TRUE(stopped) << stopped.error().message();
  EXPECT_EQ(stopped->status, "STOPPED");
  EXPECT_EQ(stopped->reason, "stopped by request");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(tag_digest("web/app", "latest"), "");
}

// A fetch from a server that never answers would wait out the whole build timeout; stop
// kills the git child (found by the build's object cache path) at once.
TEST_F(BuildServiceTest, StopKillsAHangingFetch) {
  asio::io_context ioc;
  asio::ip::tcp::acceptor silent(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  start_service(deps());
  create(Json{
      {"git", "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/app.git"}});
  auto b = svc_->start_build("web", std::string(40, 'a'), "manual");
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_TRUE(wait_log(b->id, [](const std::string& t) {
    return t.find(" fetch ") != std::string::npos;
  })) << failure_context(b->id);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // git is connecting
  auto t0 = std::chrono::steady_clock::now();
  auto stopped = svc_->stop_build(b->id);
  ASSERT_TRUE(stopped) << stopped.error().message();
  EXPECT_EQ(stopped->status, "STOPPED");
  EXPECT_EQ(stopped->phase, "SOURCE");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(BuildServiceTest, ServiceStopRequeuesARunningBuild) {
  start_service(deps());
  create();
  commit_files({{"Dockerfile", "FROM web/base:1\nRUN echo sleeping && sleep 60\n"}}, "slow");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  ASSERT_TRUE(wait_log(b->id, [](const std::string& t) {
    return t.find("sleeping") != std::string::npos;
  })) << failure_context(b->id);
  auto t0 = std::chrono::steady_clock::now();
  svc_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  auto after = svc_->get_build(b->id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, "QUEUED");
  EXPECT_EQ(after->started_at, 0);
  EXPECT_THAT(log_of(b->id), HasSubstr("berthd stopping; build queued again"));
  // Not started again here (it would sleep a minute): stop it while queued.
  auto stopped = svc_->stop_build(b->id);
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->status, "STOPPED");
}

TEST_F(BuildServiceTest, TimeoutFailsTheBuild) {
  start_service(deps(std::chrono::seconds(2)));
  create();
  commit_files({{"Dockerfile", "FROM web/base:1\nRUN sleep 60\n"}}, "slow");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "build timed out after 2s") << failure_context(b->id);
}

TEST_F(BuildServiceTest, FailingRunStepFailsWithTheLine) {
  start_service(deps());
  create();
  commit_files({{"Dockerfile", "FROM web/base:1\nRUN true\nRUN false\n"}}, "broken");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.phase, "BUILD");
  EXPECT_EQ(done.reason, "Dockerfile:3: RUN false: exited with code 1") << failure_context(b->id);
  EXPECT_THAT(log_of(b->id), HasSubstr("FAILED: Dockerfile:3: RUN false"));
}

// A build on a full disk: the data dir is a small tmpfs, and the layer of a RUN step that wrote
// 24 MB of random data does not fit beside that data. The build fails with one sentence and no
// server path, nothing partial stays in the registry, and the next build works at once.
class BuildDiskFullTest : public BuildServiceTest {
 protected:
  void SetUp() override {
    if (!why_skip().empty()) {
      GTEST_SKIP() << why_skip();
    }
    auto m = run("mount -t tmpfs -o size=40m berth-build-full '" + data_.path() + "'");
    ASSERT_EQ(m.code, 0) << m.all();
    mounted_ = true;
    BuildServiceTest::SetUp();
  }
  void TearDown() override {
    BuildServiceTest::TearDown();
    if (mounted_) {
      run("umount '" + data_.path() + "' || umount -l '" + data_.path() + "'");
    }
  }
  std::string blob_files() {
    return run("cd '" + data_.path() + "' && find blobs -type f | sort").out;
  }
  bool mounted_ = false;
};

TEST_F(BuildDiskFullTest, FailsWithOneSentenceLeavesNothingAndTheNextBuildWorks) {
  start_service(deps());
  create();
  commit_files({{"Dockerfile",
                 "FROM web/base:1\nRUN dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null\n"}},
               "too big");
  std::string before = blob_files();
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED") << failure_context(b->id);
  EXPECT_EQ(done.reason,
            "the disk under berth's data directory is full: free space, then start the build "
            "again")
      << failure_context(b->id);
  EXPECT_THAT(log_of(b->id), HasSubstr("No space left on device"));
  EXPECT_EQ(blob_files(), before) << "a partial blob stayed";
  EXPECT_EQ(run("ls -A '" + data_.path() + "/uploads' 2>/dev/null").out, "");

  // The failed build's scratch space went with it: the next one runs, without a restart.
  commit_files({{"Dockerfile", "FROM web/base:1\nRUN echo small > /small\n"}}, "fits");
  auto again = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(again);
  EXPECT_EQ(wait_done(again->id).status, "SUCCEEDED") << failure_context(again->id);
}

}  // namespace
}  // namespace berth::builder
