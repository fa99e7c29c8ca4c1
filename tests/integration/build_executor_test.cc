// SPDX-License-Identifier: Apache-2.0
// The Dockerfile executor with real components: runc (through runtime::Runtime) runs the RUN
// steps, ImagePreparer unpacks the layers, and umoci / tar check what was built.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "builder/executor.h"
#include "common/json.h"
#include "oci/oci.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

namespace stdfs = std::filesystem;
using test::TempDir;

std::string why_skip() {
  if (::geteuid() != 0) {
    return "needs root (overlay mounts, runc)";
  }
  for (const char* tool : {"runc", "umoci", "tar"}) {
    if (!test::have(tool)) {
      return std::string(tool) + " is not installed";
    }
  }
  if (!stdfs::exists("/bin/busybox")) {
    return "busybox-static is not installed (/bin/busybox)";
  }
  return "";
}

// Images the executor built, served back as base images: manifests by digest, blobs from
// the executor's ROOT/blobs.
class BuiltSource : public runtime::ImageSource {
 public:
  explicit BuiltSource(std::string blobs) : blobs_(std::move(blobs)) {}
  Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                       const std::string& digest) override {
    std::lock_guard<std::mutex> g(mu_);
    auto it = manifests_.find(digest);
    if (it == manifests_.end()) {
      return Error(Errc::NotFound, "no manifest " + digest);
    }
    return std::make_pair(it->second, std::string(oci::kOciManifest));
  }
  Result<std::string> blob_path(const std::string& digest) override {
    std::string p = blobs_ + "/" + digest.substr(digest.find(':') + 1);
    if (!stdfs::exists(p)) {
      return Error(Errc::NotFound, "no blob " + digest);
    }
    return p;
  }
  void add(const BuiltImage& img) {
    std::lock_guard<std::mutex> g(mu_);
    manifests_[img.manifest_digest] = img.manifest;
  }

 private:
  std::string blobs_;
  std::mutex mu_;
  std::map<std::string, std::string> manifests_;
};

class BuildExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = why_skip();
    if (!why.empty()) {
      GTEST_SKIP() << why;
    }
    source_ = std::make_unique<BuiltSource>(root_ / "build/blobs");
    preparer_ = std::make_unique<runtime::ImagePreparer>(root_ / "runtime", *source_);
    runtime::RuntimeOptions o;
    o.root = root_ / "runtime";
    rt_ = std::make_unique<runtime::Runtime>(o, ioc_);
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        ioc_.get_executor());
    io_thread_ = std::thread([this] { ioc_.run(); });
    ExecutorOptions eo;
    eo.root = root_ / "build";
    eo.runtime = rt_.get();
    eo.preparer = preparer_.get();
    exec_ = std::make_unique<Executor>(eo);
    ctx_ = ctx_dir_.path();
    std::error_code ec;
    stdfs::copy_file("/bin/busybox", ctx_ + "/busybox", ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  void TearDown() override {
    if (io_thread_.joinable()) {
      work_.reset();
      ioc_.stop();
      io_thread_.join();
    }
  }

  void file(const std::string& rel, const std::string& content) {
    test::write_file(ctx_ + "/" + rel, content);
  }

  Result<BuiltImage> build(const std::string& dockerfile, int64_t epoch = 1700000000,
                           const std::string& target = "") {
    test::write_file(df_dir_ / "Dockerfile", dockerfile);
    BuildInput in;
    in.id = std::to_string(++builds_);
    in.context_dir = ctx_;
    in.dockerfile = df_dir_ / "Dockerfile";
    in.source_date_epoch = epoch;
    in.target = target;
    in.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> g(log_mu_);
      log_ += line;
      log_ += '\n';
    };
    in.base_images = [this](const std::string& ref) -> Result<BaseImage> {
      auto it = bases_.find(ref);
      if (it == bases_.end()) {
        return Error(Errc::NotFound, "base image " + ref + " is not in berth's registry");
      }
      const BuiltImage& img = it->second;
      BERTH_ASSIGN_OR_RETURN(auto prepared, preparer_->prepare("test/base", img.manifest_digest));
      BaseImage b;
      b.reference = ref;
      b.repository = "test/base";
      b.digest = img.manifest_digest;
      b.prepared = prepared;
      b.config_json = test::read_file(img.config.path);
      b.layer_blobs = img.layers;
      return b;
    };
    log_.clear();
    return exec_->build(in);
  }

  void serve_base(const std::string& ref, const BuiltImage& img) {
    source_->add(img);
    bases_[ref] = img;
  }

  // "tar tvzf" of one layer blob.
  static std::string listing(const registry::LocalBlob& b) {
    auto r = test::run("tar tvzf " + b.path);
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }

  static Json config_of(const BuiltImage& img) {
    auto j = parse_json(test::read_file(img.config.path));
    EXPECT_TRUE(j);
    return j ? *j : Json();
  }

  // An OCI image layout with the image under tag "t", unpacked with umoci into bundle.
  std::string umoci_unpack(const BuiltImage& img, const std::string& dir) {
    std::string layout = dir + "/layout";
    stdfs::create_directories(layout + "/blobs/sha256");
    test::write_file(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    auto put = [&](const std::string& digest, const std::string& path) {
      std::error_code ec;
      stdfs::copy_file(path, layout + "/blobs/sha256/" + digest.substr(7),
                       stdfs::copy_options::overwrite_existing, ec);
      EXPECT_FALSE(ec) << path;
    };
    put(img.config.digest, img.config.path);
    for (const auto& l : img.layers) {
      put(l.digest, l.path);
    }
    test::write_file(layout + "/blobs/sha256/" + img.manifest_digest.substr(7), img.manifest);
    Json index = {{"schemaVersion", 2},
                  {"manifests",
                   Json::array({{{"mediaType", img.media_type},
                                 {"digest", img.manifest_digest},
                                 {"size", img.manifest.size()},
                                 {"annotations", {{"org.opencontainers.image.ref.name", "t"}}}}})}};
    test::write_file(layout + "/index.json", index.dump());
    auto r = test::run("umoci unpack --image " + layout + ":t " + dir + "/bundle 2>&1");
    EXPECT_EQ(r.code, 0) << r.all();
    return dir + "/bundle/rootfs";
  }

  TempDir root_;
  TempDir ctx_dir_;
  TempDir df_dir_;
  std::string ctx_;
  asio::io_context ioc_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<BuiltSource> source_;
  std::unique_ptr<runtime::ImagePreparer> preparer_;
  std::unique_ptr<runtime::Runtime> rt_;
  std::unique_ptr<Executor> exec_;
  std::map<std::string, BuiltImage> bases_;
  std::mutex log_mu_;
  std::string log_;
  int builds_ = 0;
};

const char* kBusybox = R"(FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
)";

TEST_F(BuildExecutorTest, BusyboxFromScratchThenCachedRebuild) {
  auto t0 = std::chrono::steady_clock::now();
  auto img = build(kBusybox);
  auto first_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(img) << img.error().message() << "\n" << log_;
  EXPECT_NE(log_.find("Step 1/4 : FROM scratch"), std::string::npos) << log_;
  EXPECT_NE(log_.find("Step 3/4 : RUN"), std::string::npos) << log_;
  EXPECT_NE(log_.find(" ---> Running in build-1-3"), std::string::npos) << log_;
  EXPECT_NE(log_.find("Successfully built " + img->manifest_digest), std::string::npos);
  ASSERT_EQ(img->layers.size(), 2u);
  EXPECT_EQ(img->layer_steps, 2);
  EXPECT_EQ(img->cached_steps, 0);
  EXPECT_NE(listing(img->layers[0]).find("bin/busybox"), std::string::npos);
  std::string run_layer = listing(img->layers[1]);
  EXPECT_NE(run_layer.find("bin/sh -> /bin/busybox"), std::string::npos) << run_layer;
  EXPECT_EQ(run_layer.find(" proc/"), std::string::npos) << run_layer;
  EXPECT_EQ(run_layer.find(" dev/"), std::string::npos) << run_layer;

  Json cfg = config_of(*img);
  EXPECT_EQ(cfg["config"]["Cmd"], Json::array({"/bin/sh"}));
  EXPECT_EQ(cfg["rootfs"]["diff_ids"].size(), 2u);
  EXPECT_EQ(cfg["history"].size(), 3u);
  EXPECT_EQ(cfg["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(cfg["os"], "linux");

  // umoci, a real OCI tool, unpacks it.
  TempDir out;
  std::string rootfs = umoci_unpack(*img, out.path());
  EXPECT_TRUE(stdfs::is_regular_file(rootfs + "/bin/busybox"));
  EXPECT_TRUE(stdfs::is_symlink(rootfs + "/bin/sh"));
  EXPECT_TRUE(stdfs::is_symlink(rootfs + "/bin/ls"));

  // Unchanged: every layer from the cache, the same manifest. How fast is bench/build_bench.sh's
  // to say ("unchanged rebuild" in docs/benchmarks.md), not a timed test's.
  t0 = std::chrono::steady_clock::now();
  auto again = build(kBusybox);
  auto rebuild_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->cached_steps, 2) << log_;
  EXPECT_EQ(again->manifest_digest, img->manifest_digest);
  EXPECT_EQ(again->manifest, img->manifest);
  EXPECT_NE(log_.find(" ---> Using cache"), std::string::npos);
  EXPECT_EQ(log_.find("Running in"), std::string::npos) << log_;
  std::printf("busybox build: first %lld ms, unchanged rebuild %lld ms\n",
              static_cast<long long>(first_ms), static_cast<long long>(rebuild_ms));
  // Scratch dirs are gone.
  EXPECT_FALSE(stdfs::exists(root_ / "build/tmp/1"));
  EXPECT_FALSE(stdfs::exists(root_ / "build/tmp/2"));
}

TEST_F(BuildExecutorTest, ChangedFileRebuildsOnlyFromThatStep) {
  file("a.txt", "one\n");
  const char* df = R"(FROM scratch
COPY busybox /bin/busybox
COPY a.txt /a.txt
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /a.txt > /b.txt"]
)";
  auto first = build(df);
  ASSERT_TRUE(first) << first.error().message() << log_;
  file("a.txt", "two\n");
  auto second = build(df);
  ASSERT_TRUE(second) << second.error().message() << log_;
  ASSERT_EQ(second->steps.size(), 4u);
  EXPECT_TRUE(second->steps[1].cached);
  EXPECT_FALSE(second->steps[2].cached);
  EXPECT_FALSE(second->steps[3].cached);
  EXPECT_EQ(second->cached_steps, 1);
  EXPECT_EQ(second->layers[0].digest, first->layers[0].digest);
  EXPECT_NE(second->layers[2].digest, first->layers[2].digest);
  auto r = test::run("tar xzOf " + second->layers[2].path + " b.txt");
  EXPECT_EQ(r.out, "two\n");
}

TEST_F(BuildExecutorTest, RunRmOfABaseFileIsAWhiteout) {
  file("etc/motd", "hi\n");
  auto img = build(R"(FROM scratch
COPY busybox /bin/busybox
COPY etc /etc
RUN ["/bin/busybox", "rm", "/etc/motd"]
)");
  ASSERT_TRUE(img) << img.error().message() << log_;
  ASSERT_EQ(img->layers.size(), 3u);
  EXPECT_NE(listing(img->layers[2]).find("etc/.wh.motd"), std::string::npos)
      << listing(img->layers[2]);
  TempDir out;
  std::string rootfs = umoci_unpack(*img, out.path());
  EXPECT_TRUE(stdfs::is_directory(rootfs + "/etc"));
  EXPECT_FALSE(stdfs::exists(rootfs + "/etc/motd"));
}

TEST_F(BuildExecutorTest, MultiStageCopiesFromAStageAndSkipsUnusedOnes) {
  auto img = build(R"(FROM scratch AS build
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo built > /out.txt; /bin/busybox mkdir -p /dist/sub; echo x > /dist/sub/x"]

FROM scratch AS unused
COPY busybox /bin/busybox
RUN ["/bin/busybox", "false"]

FROM scratch
COPY --from=build /out.txt /app/out.txt
COPY --from=0 /dist /app/dist
)");
  ASSERT_TRUE(img) << img.error().message() << log_;
  EXPECT_EQ(log_.find("/bin/busybox\", \"false"), std::string::npos) << log_;
  ASSERT_EQ(img->layers.size(), 2u);
  auto r = test::run("tar xzOf " + img->layers[0].path + " app/out.txt");
  EXPECT_EQ(r.out, "built\n");
  EXPECT_NE(listing(img->layers[1]).find("app/dist/sub/x"), std::string::npos);
}

TEST_F(BuildExecutorTest, FailingRunNamesLineAndExitCode) {
  auto img = build(R"(FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo boom-output; exit 3"]
)");
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code(), Errc::FailedPrecondition);
  EXPECT_NE(img.error().message().find("Dockerfile:3: RUN"), std::string::npos)
      << img.error().message();
  EXPECT_NE(img.error().message().find("exited with code 3"), std::string::npos)
      << img.error().message();
  EXPECT_NE(log_.find("boom-output"), std::string::npos) << log_;
  EXPECT_FALSE(stdfs::exists(root_ / "build/tmp/1"));
  // Every cache entry names a blob that exists.
  for (const auto& e : stdfs::directory_iterator(root_ / "build/cache")) {
    auto j = parse_json(test::read_file(e.path()));
    ASSERT_TRUE(j);
    if (!(*j)["empty"].get<bool>()) {
      std::string d = (*j)["digest"];
      EXPECT_TRUE(stdfs::exists(root_ / ("build/blobs/" + d.substr(7))));
    }
  }
}

TEST_F(BuildExecutorTest, ShellFormEnvUserAndWorkdirReachRun) {
  auto img = build(R"DF(FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG GREETING=hello
ENV WHO=world
WORKDIR /srv/app
RUN echo "$GREETING $WHO from $(pwd) as $(id -u)" > out.txt
)DF");
  ASSERT_TRUE(img) << img.error().message() << log_;
  ASSERT_EQ(img->layers.size(), 4u);  // COPY, RUN, WORKDIR, RUN
  auto r = test::run("tar xzOf " + img->layers[3].path + " srv/app/out.txt");
  EXPECT_EQ(r.out, "hello world from /srv/app as 0\n") << listing(img->layers[3]);
  Json cfg = config_of(*img);
  EXPECT_EQ(cfg["config"]["WorkingDir"], "/srv/app");
  EXPECT_EQ(cfg["config"]["Env"], Json::array({"WHO=world"}));
}

TEST_F(BuildExecutorTest, FromABaseImageInheritsLayersAndConfig) {
  auto base = build(R"(FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV BASE=1
CMD ["/bin/sh"]
ONBUILD RUN echo triggered > /onbuild.txt
)");
  ASSERT_TRUE(base) << base.error().message() << log_;
  serve_base("test/base:1", *base);
  auto img = build(R"(FROM test/base:1
RUN echo "$BASE" > /child.txt
)");
  ASSERT_TRUE(img) << img.error().message() << log_;
  ASSERT_EQ(img->layers.size(), 4u);
  EXPECT_EQ(img->layers[0].digest, base->layers[0].digest);
  EXPECT_EQ(img->layers[1].digest, base->layers[1].digest);
  EXPECT_NE(log_.find("Executing 1 build trigger"), std::string::npos) << log_;
  Json cfg = config_of(*img);
  EXPECT_EQ(cfg["config"]["Cmd"], Json::array({"/bin/sh"}));
  EXPECT_FALSE(cfg["config"].contains("OnBuild"));
  EXPECT_EQ(cfg["rootfs"]["diff_ids"].size(), 4u);
  TempDir out;
  std::string rootfs = umoci_unpack(*img, out.path());
  EXPECT_EQ(test::read_file(rootfs + "/child.txt"), "1\n");
  EXPECT_EQ(test::read_file(rootfs + "/onbuild.txt"), "triggered\n");
  EXPECT_TRUE(stdfs::is_symlink(rootfs + "/bin/sh"));

  auto missing = build("FROM test/nope:1\n");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("Dockerfile:1: base image test/nope:1"),
            std::string::npos)
      << missing.error().message();
}

}  // namespace
}  // namespace berth::builder
