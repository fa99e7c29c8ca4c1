// SPDX-License-Identifier: Apache-2.0
// Registry::push_local: an image a build wrote as local files, stored as a push of each tag
// would store it. A Registry over a SQLite store with the enforcing PolicyAuthorizer, served on
// 127.0.0.1:0 so the result is checked through /v2/ as any client sees it. On both blob
// storages: fs, and S3 (RGW).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/async.h"
#include "common/events.h"
#include "http/http.h"
#include "iam/iam.h"
#include "integration/registry_client.h"
#include "registry/registry.h"
#include "store/store.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

constexpr const char* kPushWeb = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":["registry:Push","registry:Pull"],"Resource":"repository/web/*"}]})";
constexpr const char* kPullOnly = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":"registry:Pull","Resource":"repository/*"}]})";
constexpr const char* kPublic = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":"*","Action":"registry:Pull","Resource":"repository/web/app"}]})";

class RegistryPushLocalTest : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto st = store::open_sqlite(data_ / "meta.db");
    ASSERT_TRUE(st) << st.error().message();
    store_ = std::move(*st);
    add_role("pusher", kPushWeb);
    add_role("builder-web", kPullOnly);
    authz_ = std::make_shared<iam::PolicyAuthorizer>(*store_);
    ASSERT_TRUE(authz_->reload());
    audit_ = std::make_unique<iam::AuditLog>(*store_);
    bus_.subscribe([this](const ImagePushed& e) {
      std::lock_guard<std::mutex> g(mu_);
      events_.push_back(e);
    });
  }

  void TearDown() override {
    if (server_) {
      server_->stop();
    }
    work_.reset();
    ioc_.stop();
    if (io_.joinable()) {
      io_.join();
    }
    pool_.join();
  }

  // The registry with these options, served on 127.0.0.1:0.
  void start(bool auto_create) {
    registry::Options o;
    o.data_dir = data_ / "registry";
    o.blob_storage = home_.open(o.data_dir);
    o.auto_create_repositories = auto_create;
    o.fsync = false;
    o.audit = audit_.get();
    reg_ = std::make_unique<registry::Registry>(o, *store_, pool_, authz_, bus_);
    ASSERT_TRUE(reg_->init());
    auto* reg = reg_.get();
    server_ = std::make_unique<http::Server>(
        std::vector<asio::io_context*>{&ioc_},
        [reg](http::Exchange& ex) { return reg->handle(ex); }, http::ServerOptions{});
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port) << port.error().message();
    server_->start();
    client_ = std::make_unique<RegistryClient>(*port);
    io_ = std::thread([this] { ioc_.run(); });
  }

  void add_role(const std::string& name, const std::string& policy) {
    ASSERT_TRUE(store_->create_principal(store::Principal{"role", name, 1}));
    ASSERT_TRUE(store_->put_policy(store::AttachedPolicy{"role", name, "p", policy, 1}));
  }

  // Anonymous pulls of web/app, so the test's client reads what was stored.
  void make_public() {
    ASSERT_TRUE(store_->set_repository_policy("web/app", kPublic));
    ASSERT_TRUE(authz_->reload());
  }

  // A blob file (in dir) and its LocalBlob.
  registry::LocalBlob blob(const std::string& dir, const std::string& name,
                           const std::string& bytes, const std::string& media_type) {
    std::string path = dir + "/" + name;
    write_file(path, bytes);
    return registry::LocalBlob{sha256_digest(bytes), path, static_cast<int64_t>(bytes.size()),
                               media_type};
  }

  // An image of one config and the given layers, its blobs written under files_.
  registry::LocalImage image(const std::vector<std::string>& layers,
                             std::vector<std::string> tags = {"v1", "latest"}) {
    registry::LocalImage img;
    img.repository = "web/app";
    img.tags = std::move(tags);
    std::string config = image_config("amd64", "local");
    img.blobs.push_back(blob(files_.path(), "config.json", config, kOciConfigType));
    for (size_t i = 0; i < layers.size(); ++i) {
      img.blobs.push_back(
          blob(files_.path(), "layer" + std::to_string(i) + ".tar.gz", layers[i], kOciLayerType));
    }
    img.manifest = image_manifest(config, layers);
    img.media_type = kOciManifestType;
    return img;
  }

  std::vector<std::string> stored_blob_files() {
    std::vector<std::string> v;
    auto listed = home_.open(data_ / "registry")->list_blobs();
    EXPECT_TRUE(listed) << listed.error().message();
    for (const auto& e : listed ? *listed : std::vector<storage::BlobEntry>{}) {
      v.push_back(e.name);
    }
    return v;
  }

  void expect_nothing_stored() {
    auto repo = store_->get_repository("web/app");
    EXPECT_FALSE(repo);
    EXPECT_TRUE(stored_blob_files().empty());
    std::string uploads = data_ / "registry/uploads";
    EXPECT_TRUE(!std::filesystem::exists(uploads) || std::filesystem::is_empty(uploads));
    auto blobs = store_->all_blobs();
    ASSERT_TRUE(blobs);
    EXPECT_TRUE(blobs->empty());
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_TRUE(events_.empty());
  }

  BlobHome home_{GetParam()};
  TempDir data_;
  TempDir files_;
  store::MetadataStorePtr store_;
  std::shared_ptr<iam::PolicyAuthorizer> authz_;
  std::unique_ptr<iam::AuditLog> audit_;
  EventBus bus_;
  BlockingPool pool_{2};
  asio::io_context ioc_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_ =
      std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
          ioc_.get_executor());
  std::thread io_;
  std::unique_ptr<registry::Registry> reg_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<RegistryClient> client_;
  std::mutex mu_;
  std::vector<ImagePushed> events_;
};

TEST_P(RegistryPushLocalTest, StoresTheImageUnderEveryTagAndPublishes) {
  start(true);
  std::string layer = "layer bytes, gzip or not: the registry does not care\n";
  auto img = image({layer});
  // One layer lives on another filesystem (tmpfs), so it is copied rather than linked.
  std::string other_fs_dir;
  if (std::filesystem::exists("/dev/shm")) {
    other_fs_dir = "/dev/shm/berth-push-local-" + std::to_string(::getpid());
    std::filesystem::create_directories(other_fs_dir);
    std::string second = "a second layer, on tmpfs\n";
    img.blobs.push_back(blob(other_fs_dir, "layer1.tar.gz", second, kOciLayerType));
    img.manifest = image_manifest(image_config("amd64", "local"), {layer, second});
  }
  auto digest = reg_->push_local("role/pusher", img);
  if (!other_fs_dir.empty()) {
    std::filesystem::remove_all(other_fs_dir);
  }
  ASSERT_TRUE(digest) << digest.error().message();
  EXPECT_EQ(*digest, sha256_digest(img.manifest));

  make_public();
  for (const char* tag : {"v1", "latest"}) {
    auto r =
        client_->get(std::string("/v2/web/app/manifests/") + tag, {{"Accept", kOciManifestType}});
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.header("Docker-Content-Digest"), *digest);
    EXPECT_EQ(r.body, img.manifest);
  }
  for (const auto& b : img.blobs) {
    auto r = client_->get("/v2/web/app/blobs/" + b.digest);
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(sha256_digest(r.body), b.digest);
  }
  auto tags = client_->get("/v2/web/app/tags/list");
  ASSERT_EQ(tags.status, 200) << tags.describe();
  EXPECT_EQ(tags.json()["tags"], Json({"latest", "v1"}));

  std::string hex = img.blobs[1].digest.substr(7);
  if (GetParam() == BlobBackend::Fs) {
    // Same filesystem: a hard link of the build's file, not a copy.
    struct stat src {
    }, dst{};
    ASSERT_EQ(::stat(img.blobs[1].path.c_str(), &src), 0);
    ASSERT_EQ(::stat((data_ / ("registry/" + storage::blob_key(hex))).c_str(), &dst), 0);
    EXPECT_EQ(src.st_ino, dst.st_ino);
  }
  EXPECT_EQ(home_.read_blob(data_ / "registry", hex), read_file(img.blobs[1].path));

  // The platform came from the config, as for a push.
  auto images = store_->list_images(store_->get_repository("web/app")->id);
  ASSERT_TRUE(images);
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].platform, "linux/amd64");

  {
    std::lock_guard<std::mutex> g(mu_);
    ASSERT_EQ(events_.size(), 2u);
    EXPECT_EQ(events_[0].repository, "web/app");
    EXPECT_EQ(events_[0].tag, "v1");
    EXPECT_EQ(events_[1].tag, "latest");
    EXPECT_EQ(events_[0].digest, *digest);
    EXPECT_EQ(events_[0].media_type, kOciManifestType);
  }
  // Audited as a push.
  ASSERT_TRUE(audit_->flush());
  auto audit = store_->list_audit(0, "role/pusher", 10);
  ASSERT_TRUE(audit);
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ((*audit)[0].action, "registry:Push");
  EXPECT_TRUE((*audit)[0].allowed);

  // Pushing the same image again finds every blob present: nothing to copy, same digest.
  auto again = reg_->push_local("role/pusher", img);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *digest);
}

TEST_P(RegistryPushLocalTest, ARoleWithoutPushIsDeniedWithTheSentenceAndNothingIsStored) {
  start(true);
  auto img = image({"some layer\n"});
  auto r = reg_->push_local("role/builder-web", img);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::PermissionDenied);
  EXPECT_EQ(r.error().message(),
            "AccessDenied: role builder-web may not registry:Push on repository web/app");
  auto u = reg_->push_local("user/x", img);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(),
            "AccessDenied: user x may not registry:Push on repository web/app");
  expect_nothing_stored();
  ASSERT_TRUE(audit_->flush());
  auto audit = store_->list_audit(0, "role/builder-web", 10);
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_FALSE((*audit)[0].allowed);
}

TEST_P(RegistryPushLocalTest, BerthItselfMayAlwaysPush) {
  start(true);
  auto r = reg_->push_local("system:build", image({"layer\n"}, {"main"}));
  ASSERT_TRUE(r) << r.error().message();
  make_public();
  EXPECT_EQ(client_->get("/v2/web/app/manifests/main").status, 200);
}

TEST_P(RegistryPushLocalTest, RefusesABlobWhoseBytesDoNotMatchItsDigest) {
  start(true);
  auto img = image({"the real layer\n", "another layer\n"});
  write_file(img.blobs[2].path, "tampered, but the same length\n");
  auto r = reg_->push_local("role/pusher", img);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_NE(r.error().message().find(img.blobs[2].digest), std::string::npos)
      << r.error().message();
  expect_nothing_stored();

  // A wrong size is refused the same way.
  img = image({"the real layer\n"});
  img.blobs[1].size += 1;
  r = reg_->push_local("role/pusher", img);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  expect_nothing_stored();
}

TEST_P(RegistryPushLocalTest, AMissingRepositoryIsNamedWhenAutoCreateIsOff) {
  start(false);
  auto r = reg_->push_local("role/pusher", image({"layer\n"}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::NotFound);
  EXPECT_EQ(r.error().message(),
            "repository web/app does not exist; create it with: berth repo create web/app");
  expect_nothing_stored();
}

TEST_P(RegistryPushLocalTest, ImmutableTagsAreRefusedAsForAPush) {
  start(false);
  store::Repository repo;
  repo.name = "web/app";
  repo.immutable_tags = true;
  repo.mutable_tag_globs = {"latest"};
  ASSERT_TRUE(store_->create_repository(repo));
  auto first = reg_->push_local("role/pusher", image({"one\n"}));
  ASSERT_TRUE(first) << first.error().message();
  // latest may move; v1 may not.
  auto moved = reg_->push_local("role/pusher", image({"two\n"}, {"latest"}));
  ASSERT_TRUE(moved) << moved.error().message();
  auto refused = reg_->push_local("role/pusher", image({"three\n"}, {"v1"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::PermissionDenied);
  EXPECT_NE(refused.error().message().find("tag v1 is immutable"), std::string::npos)
      << refused.error().message();
  make_public();
  auto v1 = client_->get("/v2/web/app/manifests/v1");
  EXPECT_EQ(v1.header("Docker-Content-Digest"), *first);
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryPushLocalTest, all_registry_backends(),
                         BlobBackendName());

}  // namespace
}  // namespace berth::test
