// SPDX-License-Identifier: Apache-2.0
// The build service with real parts: a SQLite store in a temp dir, the registry, runc through
// runtime::Runtime, the image preparer, the enforcing PolicyAuthorizer, and git repositories
// made with the git CLI (file:// remotes, build.allow_file_remotes on). Covers a build from
// commit to pushed tags, the persistent queue across restarts, supersede, stop, timeout,
// webhooks, berth's own git remote, role denials, masked secrets and buildspec.yml.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "builder/build.h"
#include "builder/executor.h"
#include "builder/webhook.h"
#include "common/asio.h"
#include "common/async.h"
#include "common/events.h"
#include "common/json.h"
#include "common/secret_box.h"
#include "iam/iam.h"
#include "registry/registry.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

namespace stdfs = std::filesystem;
using test::git;
using test::run;
using test::TempDir;
using test::trimmed;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPullOnly = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":"registry:Pull","Resource":"repository/*"}]})";
constexpr const char* kPushWeb = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":["registry:Pull","registry:Push"],"Resource":"repository/web/*"}]})";
constexpr const char* kToken = "t0k3n-v4lue-9f8e";

std::string why_skip() {
  if (::geteuid() != 0) {
    return "needs root (overlay mounts, runc)";
  }
  for (const char* tool : {"runc", "git"}) {
    if (!test::have(tool)) {
      return std::string(tool) + " is not installed";
    }
  }
  if (!stdfs::exists("/bin/busybox")) {
    return "busybox-static is not installed (/bin/busybox)";
  }
  return "";
}

// Image content for the preparer: manifests from the store, blobs from the registry's files.
class RegistrySource final : public runtime::ImageSource {
 public:
  RegistrySource(store::MetadataStore& store, registry::Registry& reg) : store_(store), reg_(reg) {}
  Result<std::pair<std::string, std::string>> manifest(const std::string& repository,
                                                       const std::string& digest) override {
    BERTH_ASSIGN_OR_RETURN(auto repo, store_.get_repository(repository));
    BERTH_ASSIGN_OR_RETURN(auto m, store_.get_manifest(repo.id, digest));
    return std::make_pair(m.content, m.media_type);
  }
  Result<std::string> blob_path(const std::string& digest) override {
    return reg_.blob_file(digest);
  }

 private:
  store::MetadataStore& store_;
  registry::Registry& reg_;
};

class BuildServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = why_skip();
    if (!why.empty()) {
      GTEST_SKIP() << why;
    }
    auto st = store::open_sqlite(data_ / "berth.db");
    ASSERT_TRUE(st) << st.error().message();
    store_ = std::move(*st);
    add_role("puller", kPullOnly);
    add_role("pusher", kPushWeb);
    authz_ = std::make_shared<iam::PolicyAuthorizer>(*store_);
    ASSERT_TRUE(authz_->reload());
    registry::Options o;
    o.data_dir = data_.path();
    o.auto_create_repositories = true;
    o.fsync = false;
    reg_ = std::make_unique<registry::Registry>(o, *store_, pool_, authz_, bus_);
    ASSERT_TRUE(reg_->init());
    source_ = std::make_unique<RegistrySource>(*store_, *reg_);
    preparer_ = std::make_unique<runtime::ImagePreparer>(data_ / "runtime", *source_);
    runtime::RuntimeOptions ro;
    ro.root = data_ / "runtime";
    rt_ = std::make_unique<runtime::Runtime>(ro, ioc_);
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        ioc_.get_executor());
    io_thread_ = std::thread([this] { ioc_.run(); });
    auto box = SecretBox::load_or_create(data_ / "secrets.key");
    ASSERT_TRUE(box) << box.error().message();
    box_ = *box;
    push_base_image();
    make_source_repo();
  }

  void TearDown() override {
    svc_.reset();
    if (io_thread_.joinable()) {
      work_.reset();
      ioc_.stop();
      io_thread_.join();
    }
    pool_.join();
  }

  void add_role(const std::string& name, const std::string& policy) {
    ASSERT_TRUE(store_->create_principal(store::Principal{"role", name, 1}));
    ASSERT_TRUE(store_->put_policy(store::AttachedPolicy{"role", name, "p", policy, 1}));
  }

  // web/base:1 = busybox with its applets linked into /bin, built by an executor of its own
  // and pushed as berth itself.
  void push_base_image() {
    TempDir ctx;
    std::error_code ec;
    stdfs::copy_file("/bin/busybox", ctx / "busybox", ec);
    ASSERT_FALSE(ec) << ec.message();
    test::write_file(ctx / "Dockerfile",
                     "FROM scratch\nCOPY busybox /bin/busybox\n"
                     "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
    ExecutorOptions eo;
    eo.root = data_ / "base-build";
    eo.runtime = rt_.get();
    eo.preparer = preparer_.get();
    Executor ex(eo);
    BuildInput in;
    in.id = "base";
    in.context_dir = ctx.path();
    in.dockerfile = ctx / "Dockerfile";
    in.log = [](std::string_view) {};
    auto built = ex.build(in);
    ASSERT_TRUE(built) << built.error().message();
    registry::LocalImage img;
    img.repository = "web/base";
    img.tags = {"1"};
    img.blobs.push_back(built->config);
    for (const auto& l : built->layers) {
      img.blobs.push_back(l);
    }
    img.manifest = built->manifest;
    img.media_type = built->media_type;
    auto pushed = reg_->push_local("system:build", img);
    ASSERT_TRUE(pushed) << pushed.error().message();
  }

  // src/: main has one commit with a Dockerfile that uses a (secret) build arg.
  void make_source_repo() {
    ASSERT_EQ(git(src_.path(), "init -q").code, 0);
    commit_files({{"Dockerfile",
                   "FROM web/base:1\nARG TOKEN\nCOPY hello.txt /hello.txt\n"
                   "RUN echo \"token is $TOKEN\" && cat /hello.txt\n"},
                  {"hello.txt", "hello from git\n"}},
                 "first");
  }

  // Writes files, commits them on the current branch; returns the commit id.
  std::string commit_files(const std::vector<std::pair<std::string, std::string>>& files,
                           const std::string& message) {
    for (const auto& [path, content] : files) {
      test::write_file(src_ / path, content);
    }
    auto r = git(src_.path(),
                 "add -A && git -c user.name=t -c user.email=t@x commit -qm '" + message + "'");
    EXPECT_EQ(r.code, 0) << r.all();
    return trimmed(git(src_.path(), "rev-parse HEAD").out);
  }

  ServiceDeps deps(std::chrono::seconds timeout = std::chrono::seconds(120),
                   std::string builder_image = "") {
    return ServiceDeps{*store_,      *reg_, rt_.get(), preparer_.get(),          authz_.get(), box_,
                       data_.path(), 2,     true,      std::move(builder_image), timeout,      ""};
  }

  void start_service(ServiceDeps d) {
    svc_ = std::make_unique<Service>(std::move(d));
    auto st = svc_->start();
    ASSERT_TRUE(st) << st.error().message();
  }

  ProjectCreated create(Json extra = Json::object()) {
    Json body = {{"name", "web"},
                 {"git", "file://" + src_.path()},
                 {"repository", "web/app"},
                 {"secret_build_args", {{"TOKEN", kToken}}}};
    for (auto& [k, v] : extra.items()) {
      body[k] = v;
    }
    auto spec = project_from_request(body, ProjectSpec{}, true);
    EXPECT_TRUE(spec) << spec.error().message();
    auto created = svc_->create_project(*spec);
    EXPECT_TRUE(created) << created.error().message();
    return created ? *created : ProjectCreated{};
  }

  // Polls until the build leaves QUEUED/IN_PROGRESS (60 s at most).
  BuildView wait_done(int64_t id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto b = svc_->get_build(id);
      EXPECT_TRUE(b);
      if (b && b->status != "QUEUED" && b->status != "IN_PROGRESS") {
        return *b;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "build " << id << " did not finish";
    return svc_->get_build(id).value_or(BuildView{});
  }

  // Polls until pred(log text) or 60 s.
  template <class Pred>
  bool wait_log(int64_t id, Pred pred) {
    auto path = svc_->log_path(id);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (path && std::chrono::steady_clock::now() < deadline) {
      if (pred(test::read_file(*path))) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string log_of(int64_t id) {
    auto path = svc_->log_path(id);
    EXPECT_TRUE(path);
    return path ? test::read_file(*path) : "";
  }

  std::string tag_digest(const std::string& repo, const std::string& tag) {
    auto r = store_->get_repository(repo);
    if (!r) {
      return "";
    }
    auto m = store_->get_manifest(r->id, tag);
    return m ? m->digest : "";
  }

  std::string failure_context(int64_t id) { return "log:\n" + log_of(id); }

  TempDir data_;
  TempDir src_;
  store::MetadataStorePtr store_;
  std::shared_ptr<iam::PolicyAuthorizer> authz_;
  BlockingPool pool_{2};
  EventBus bus_;
  std::unique_ptr<registry::Registry> reg_;
  std::unique_ptr<RegistrySource> source_;
  std::unique_ptr<runtime::ImagePreparer> preparer_;
  asio::io_context ioc_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<runtime::Runtime> rt_;
  std::shared_ptr<SecretBox> box_;
  std::unique_ptr<Service> svc_;
};

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

TEST_F(BuildServiceTest, Webhooks) {
  svc_ = std::make_unique<Service>(deps());
  auto created = create();
  std::string secret = created.webhook_secret;
  std::string sha = std::string(40, 'a');
  std::string push_main =
      R"({"ref":"refs/heads/main","before":")" + std::string(40, '0') + R"(","after":")" + sha +
      R"(","repository":{"full_name":"o/a","clone_url":"https://example.com/o/a.git"}})";
  std::string push_dev = push_main;
  push_dev.replace(push_dev.find("main"), 4, "dev");

  auto missing =
      svc_->github_webhook("nope", "push", github_signature(secret, push_main), push_main);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404u);

  auto bad = svc_->github_webhook("web", "push", github_signature("wrong", push_main), push_main);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401u);
  EXPECT_EQ(bad->message, "signature does not match");
  auto unsigned_hook = svc_->github_webhook("web", "push", "", push_main);
  ASSERT_TRUE(unsigned_hook);
  EXPECT_EQ(unsigned_hook->status, 401u);
  EXPECT_EQ(unsigned_hook->message, "X-Hub-Signature-256 header is missing");
  auto none = svc_->list_builds("web", 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  std::string ping = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  auto p = svc_->github_webhook("web", "ping", github_signature(secret, ping), ping);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200u);
  EXPECT_EQ(p->build_id, 0);

  auto ignored = svc_->github_webhook("web", "push", github_signature(secret, push_dev), push_dev);
  ASSERT_TRUE(ignored);
  EXPECT_EQ(ignored->status, 202u);
  EXPECT_EQ(ignored->message, "branch dev does not match main");
  EXPECT_EQ(ignored->build_id, 0);

  auto malformed = svc_->github_webhook("web", "push", github_signature(secret, "{}"), "{}");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400u);

  auto t0 = std::chrono::steady_clock::now();
  auto queued = svc_->github_webhook("web", "push", github_signature(secret, push_main), push_main);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(queued) << queued.error().message();
  EXPECT_EQ(queued->status, 202u);
  EXPECT_GT(queued->build_id, 0);
  EXPECT_EQ(queued->message,
            "push to main at aaaaaaa: build " + std::to_string(queued->build_id) + " queued");
  EXPECT_LT(took, std::chrono::milliseconds(100));
  auto b = svc_->get_build(queued->build_id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, "QUEUED");
  EXPECT_EQ(b->commit, sha);
  EXPECT_EQ(b->trigger, "webhook push to main");
  // The webhook secret never reaches a log.
  EXPECT_THAT(log_of(queued->build_id), Not(HasSubstr(secret)));
}

TEST_F(BuildServiceTest, DeniedPushFailsWithTheAccessDeniedSentence) {
  start_service(deps());
  create(Json{{"role", "puller"}});
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.phase, "PUSH");
  EXPECT_EQ(done.reason, "AccessDenied: role puller may not registry:Push on repository web/app")
      << failure_context(b->id);
  EXPECT_THAT(log_of(b->id),
              HasSubstr("FAILED: AccessDenied: role puller may not registry:Push on repository "
                        "web/app"));
  EXPECT_EQ(tag_digest("web/app", "latest"), "");

  // A role that may push to web/* builds the same project.
  auto upd = project_from_request(Json{{"role", "pusher"}}, svc_->get_project("web")->spec, true);
  ASSERT_TRUE(upd);
  ASSERT_TRUE(svc_->update_project("web", *upd));
  auto ok_build = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(ok_build);
  BuildView good = wait_done(ok_build->id);
  EXPECT_EQ(good.status, "SUCCEEDED") << good.reason << "\n" << failure_context(ok_build->id);
}

TEST_F(BuildServiceTest, RoleWithoutPullOnTheBaseImage) {
  ASSERT_TRUE(store_->create_principal(store::Principal{"role", "nobody", 1}));
  ASSERT_TRUE(authz_->reload());
  start_service(deps());
  create(Json{{"role", "nobody"}});
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_THAT(done.reason,
              HasSubstr("AccessDenied: role nobody may not registry:Pull on repository web/base"));
}

TEST_F(BuildServiceTest, BuildspecGeneratesAFileTheDockerfileCopies) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  commit_files({{"buildspec.yml",
                 "version: 0.2\n"
                 "env:\n  variables:\n    GREETING: generated-by-buildspec\n"
                 "phases:\n"
                 "  install:\n    commands:\n      - echo tool > /tool.txt\n"
                 "  build:\n    commands:\n"
                 "      - cat /tool.txt\n"
                 "      - echo \"$GREETING\" > gen.txt\n"},
                {"Dockerfile", "FROM web/base:1\nCOPY gen.txt /gen.txt\nRUN cat /gen.txt\n"}},
               "buildspec");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  ASSERT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(b->id);
  std::string text = log_of(b->id);
  EXPECT_THAT(text, HasSubstr("buildspec.yml: phase build"));
  EXPECT_THAT(text, HasSubstr("$ echo \"$GREETING\" > gen.txt"));
  EXPECT_THAT(text, HasSubstr(" tool\n"));  // the install phase's change is seen by build
  // Once by the echo in RUN cat: the generated file made it into the image.
  EXPECT_THAT(text.substr(text.find("Step 3/3")), HasSubstr("generated-by-buildspec"));
}

TEST_F(BuildServiceTest, BuildspecFailures) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  commit_files({{"buildspec.yml",
                 "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n"
                 "      - exit 2\n"}},
               "failing");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml: phases.build: `exit 2` exited with code 2")
      << failure_context(b->id);

  commit_files({{"buildspec.yml", "version: 0.2\nphases:\n  build:\n    commands: make\n"}},
               "malformed");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml: phases.build.commands: expected a list of strings");

  // Without a builder image a buildspec cannot run.
  svc_.reset();
  start_service(deps());
  commit_files({{"buildspec.yml", "version: 0.2\nphases:\n  build:\n    commands: [true]\n"}},
               "fine");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml needs build.builder_image to be set");
}

// A commit controls buildspec.yml and .dockerignore: as symlinks they could make berthd read
// any host file (and echo it back in the error), or block on a FIFO. Both are refused.
TEST_F(BuildServiceTest, SymlinkedBuildInputsAreRefusedAndHostFilesStayUnread) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  std::string host_secret = data_ / "host-secret.txt";
  test::write_file(host_secret, "HOST_SECRET_abc123\n");
  ASSERT_EQ(::symlink(host_secret.c_str(), (src_ / "buildspec.yml").c_str()), 0);
  commit_files({}, "buildspec link");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml is a symlink; it must be a regular file")
      << failure_context(b->id);
  EXPECT_EQ(log_of(b->id).find("HOST_SECRET"), std::string::npos);

  ASSERT_EQ(::unlink((src_ / "buildspec.yml").c_str()), 0);
  ASSERT_EQ(::symlink(host_secret.c_str(), (src_ / ".dockerignore").c_str()), 0);
  commit_files({}, "dockerignore link");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, ".dockerignore is a symlink; it must be a regular file")
      << failure_context(b->id);
  EXPECT_EQ(log_of(b->id).find("HOST_SECRET"), std::string::npos);
}

TEST_F(BuildServiceTest, GitPushToBerthsRemoteQueuesMatchingBranches) {
  start_service(deps());
  create(Json{{"git", ""}});
  auto before = svc_->git_refs("web");
  ASSERT_TRUE(before) << before.error().message();
  EXPECT_TRUE(before->empty());
  std::string remote = "file://" + svc_->git_root() + "/web.git";
  ASSERT_EQ(git(src_.path(), "push -q " + remote + " main main:dev").code, 0);
  auto ids = svc_->git_pushed("web", *before, "user/alice");
  ASSERT_TRUE(ids) << ids.error().message();
  ASSERT_EQ(ids->size(), 1u);  // dev does not match the filter "main"
  BuildView done = wait_done((*ids)[0]);
  EXPECT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(done.id);
  EXPECT_EQ(done.trigger, "git push to main by user/alice");
  EXPECT_EQ(done.source, "/git/web.git");
  EXPECT_EQ(done.branch, "main");

  // Nothing moved: nothing queued.
  auto now = svc_->git_refs("web");
  ASSERT_TRUE(now);
  auto again = svc_->git_pushed("web", *now, "user/alice");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

TEST_F(BuildServiceTest, FileRemotesNeedTheSetting) {
  auto d = deps();
  d.allow_file_remotes = false;
  start_service(std::move(d));
  create();  // stored while allowed (the request parse above allowed it)
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "git: file:// remotes are disabled (build.allow_file_remotes)");
}

TEST_F(BuildServiceTest, ProjectsCreateUpdateDelete) {
  svc_ = std::make_unique<Service>(deps());
  create();
  auto dup = svc_->create_project(svc_->get_project("web")->spec);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  auto list = svc_->list_projects();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].spec.secret_build_args.at("TOKEN"), kToken);
  auto stored = store_->get_build_project("web");
  ASSERT_TRUE(stored);
  EXPECT_THAT(stored->spec, Not(HasSubstr(kToken)));

  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  auto log = svc_->log_path(b->id);
  ASSERT_TRUE(log);
  EXPECT_TRUE(stdfs::exists(*log));
  ASSERT_TRUE(svc_->delete_project("web"));
  EXPECT_EQ(svc_->get_project("web").error().code(), Errc::NotFound);
  EXPECT_EQ(svc_->get_build(b->id).error().code(), Errc::NotFound);
  EXPECT_FALSE(stdfs::exists(*log));
  EXPECT_FALSE(stdfs::exists(svc_->git_root() + "/web.git"));
  EXPECT_EQ(svc_->delete_project("web").error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace berth::builder
