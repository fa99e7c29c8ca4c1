// SPDX-License-Identifier: Apache-2.0
// What the build service's integration tests share (build_service_test.cc: a build from commit
// to pushed tags, the queue, stop, timeout, failures; build_triggers_test.cc: webhooks, berth's
// git remote, buildspec, role denials, projects): the real parts wired together in a fixture.
#pragma once

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

namespace berth::builder::build_test {


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

inline std::string why_skip() {
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

}  // namespace berth::builder::build_test
