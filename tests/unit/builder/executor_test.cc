// SPDX-License-Identifier: Apache-2.0
// The Dockerfile executor without a container runtime: COPY/ADD, .dockerignore, destination
// rules, --chown/--chmod, config-only instructions, the step cache and its errors. Layers are
// checked with tar; they are unpacked by a real ImagePreparer in a temp root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "builder/executor.h"
#include "common/json.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

namespace stdfs = std::filesystem;
using test::TempDir;

class NoImages : public runtime::ImageSource {
 public:
  Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                       const std::string& d) override {
    return Error(Errc::NotFound, d);
  }
  Result<std::string> blob_path(const std::string& d) override { return Error(Errc::NotFound, d); }
};

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (layer ownership)";
    }
    preparer_ = std::make_unique<runtime::ImagePreparer>(root_ / "runtime", source_);
    ExecutorOptions o;
    o.root = root_ / "build";
    o.preparer = preparer_.get();
    exec_ = std::make_unique<Executor>(o);
  }

  void file(const std::string& rel, const std::string& content) {
    test::write_file(ctx_ / rel, content);
  }

  Result<BuiltImage> build(const std::string& dockerfile, BuildInput in = {}) {
    test::write_file(df_ / "Dockerfile", dockerfile);
    in.id = "u" + std::to_string(++builds_);
    in.context_dir = ctx_.path();
    in.dockerfile = df_ / "Dockerfile";
    if (!in.source_date_epoch) {
      in.source_date_epoch = 1700000000;
    }
    in.log = [this](std::string_view line) {
      log_ += line;
      log_ += '\n';
    };
    log_.clear();
    return exec_->build(in);
  }

  static std::string listing(const registry::LocalBlob& b) {
    auto r = test::run("tar tvzf " + b.path + " --numeric-owner");
    EXPECT_EQ(r.code, 0) << r.all();
    return r.out;
  }
  static std::string names(const registry::LocalBlob& b) {
    return test::run("tar tzf " + b.path).out;
  }
  static std::string cat(const registry::LocalBlob& b, const std::string& path) {
    return test::run("tar xzOf " + b.path + " " + path).out;
  }
  static Json config(const BuiltImage& img) {
    auto j = parse_json(test::read_file(img.config.path));
    EXPECT_TRUE(j);
    return j ? *j : Json();
  }

  TempDir root_;
  TempDir ctx_;
  TempDir df_;
  NoImages source_;
  std::unique_ptr<runtime::ImagePreparer> preparer_;
  std::unique_ptr<Executor> exec_;
  std::string log_;
  int builds_ = 0;
};

TEST_F(ExecutorTest, CopyHonoursDockerignore) {
  file(".dockerignore", "secret.txt\n*.log\nnode_modules\n!node_modules/keep.js\n");
  file("keep.txt", "k\n");
  file("secret.txt", "s\n");
  file("x.log", "l\n");
  file("node_modules/a.js", "a\n");
  file("node_modules/keep.js", "b\n");
  auto img = build("FROM scratch\nCOPY . /app/\n");
  ASSERT_TRUE(img) << img.error().message();
  std::string n = names(img->layers[0]);
  EXPECT_NE(n.find("app/keep.txt"), std::string::npos) << n;
  EXPECT_NE(n.find("app/node_modules/keep.js"), std::string::npos) << n;
  EXPECT_EQ(n.find("secret.txt"), std::string::npos) << n;
  EXPECT_EQ(n.find("x.log"), std::string::npos) << n;
  EXPECT_EQ(n.find("a.js"), std::string::npos) << n;

  auto direct = build("FROM scratch\nCOPY secret.txt /s\n");
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().code(), Errc::NotFound);
  EXPECT_NE(direct.error().message().find("Dockerfile:2: COPY secret.txt"), std::string::npos)
      << direct.error().message();
  EXPECT_NE(direct.error().message().find(".dockerignore"), std::string::npos);
}

TEST_F(ExecutorTest, DestinationRules) {
  file("a.txt", "a\n");
  file("b.txt", "b\n");
  file("dir/sub/c.txt", "c\n");
  auto img = build(R"(FROM scratch
WORKDIR /w
COPY a.txt rel.txt
COPY a.txt /into/
COPY *.txt /many/
COPY dir /contents
COPY ["a.txt", "/spaced name/"]
)");
  ASSERT_TRUE(img) << img.error().message() << log_;
  std::string all;
  for (const auto& l : img->layers) {
    all += names(l);
  }
  EXPECT_NE(all.find("w/rel.txt"), std::string::npos) << all;
  EXPECT_NE(all.find("into/a.txt"), std::string::npos) << all;
  EXPECT_NE(all.find("many/a.txt"), std::string::npos) << all;
  EXPECT_NE(all.find("many/b.txt"), std::string::npos) << all;
  EXPECT_NE(all.find("contents/sub/c.txt"), std::string::npos) << all;
  EXPECT_EQ(all.find("contents/dir"), std::string::npos) << all;
  EXPECT_NE(all.find("spaced name/a.txt"), std::string::npos) << all;

  auto multi = build("FROM scratch\nCOPY a.txt b.txt /nodir\n");
  ASSERT_FALSE(multi);
  EXPECT_NE(multi.error().message().find("must be a directory and end with a /"),
            std::string::npos);

  auto none = build("FROM scratch\nCOPY nothing*.bin /x/\n");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::NotFound);
}

TEST_F(ExecutorTest, SourcesMustStayInTheContext) {
  file("ok.txt", "ok\n");
  stdfs::create_symlink("/etc/passwd", ctx_ / "abs-link");
  stdfs::create_symlink("../../etc/passwd", ctx_ / "rel-link");
  stdfs::create_symlink("ok.txt", ctx_ / "good-link");
  auto up = build("FROM scratch\nCOPY ../outside /x\n");
  ASSERT_FALSE(up);
  EXPECT_NE(up.error().message().find("Dockerfile:2: COPY ../outside"), std::string::npos)
      << up.error().message();
  EXPECT_NE(up.error().message().find("outside the build context"), std::string::npos);
  for (const char* link : {"abs-link", "rel-link"}) {
    auto r = build(std::string("FROM scratch\nCOPY ") + link + " /x\n");
    ASSERT_FALSE(r) << link;
    EXPECT_NE(r.error().message().find("points outside the build context"), std::string::npos)
        << r.error().message();
  }
  // A link inside the context is followed when it is the operand...
  auto good = build("FROM scratch\nCOPY good-link /x\n");
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_EQ(cat(good->layers[0], "x"), "ok\n");
  // ...and copied as a link inside a directory. (The runtime's layer unpacker refuses a
  // relative link that climbs above the layer root, so that one goes first.)
  stdfs::remove(ctx_ / "rel-link");
  auto dir = build("FROM scratch\nCOPY . /c/\n");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_NE(listing(dir->layers[0]).find("c/abs-link -> /etc/passwd"), std::string::npos);
}

TEST_F(ExecutorTest, AddExtractsLocalArchivesAndRefusesUrls) {
  file("src/pkg/readme", "inside\n");
  auto r =
      test::run("cd " + ctx_.path() + "/src && tar czf ../app.tgz pkg && tar cjf ../app.tbz pkg");
  ASSERT_EQ(r.code, 0) << r.all();
  file("plain.gz.txt", "not an archive\n");
  auto img = build("FROM scratch\nADD app.tgz /opt/\nADD app.tbz /bz\nADD plain.gz.txt /p/\n");
  ASSERT_TRUE(img) << img.error().message() << log_;
  EXPECT_EQ(cat(img->layers[0], "opt/pkg/readme"), "inside\n");
  EXPECT_EQ(cat(img->layers[1], "bz/pkg/readme"), "inside\n");
  EXPECT_EQ(cat(img->layers[2], "p/plain.gz.txt"), "not an archive\n");

  auto url = build("FROM scratch\nADD https://example.com/x.tgz /x/\n");
  ASSERT_FALSE(url);
  EXPECT_NE(url.error().message().find("Dockerfile:2: ADD"), std::string::npos)
      << url.error().message();
  EXPECT_NE(url.error().message().find("not supported"), std::string::npos);
}

TEST_F(ExecutorTest, ChownByNameAndChmod) {
  file("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
  file("etc/group", "root:x:0:\nstaff:x:50:\n");
  file("run.sh", "#!/bin/sh\n");
  auto img = build(R"(FROM scratch
COPY etc /etc
COPY --chown=app:staff --chmod=0750 run.sh /home/app/run.sh
COPY --chown=42 run.sh /n/
)");
  ASSERT_TRUE(img) << img.error().message();
  std::string l = listing(img->layers[1]);
  EXPECT_NE(l.find("-rwxr-x--- 1000/50"), std::string::npos) << l;
  EXPECT_NE(listing(img->layers[2]).find("42/42"), std::string::npos);
  auto bad = build("FROM scratch\nCOPY --chown=nobody run.sh /x\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("no user nobody"), std::string::npos);
}

TEST_F(ExecutorTest, ConfigOnlyInstructionsLandInTheConfig) {
  file("f", "x\n");
  BuildInput in;
  in.labels = {{"org.opencontainers.image.revision", "abc"}};
  auto img = build(R"(FROM scratch
ENV A=1 B="two words"
LABEL team=web
EXPOSE 8080 53/udp
USER 1000:1000
WORKDIR /srv
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD ["/bin/check"]
ENTRYPOINT ["/bin/app"]
CMD ["--serve"]
COPY f .
)",
                   in);
  ASSERT_TRUE(img) << img.error().message();
  Json c = config(*img)["config"];
  EXPECT_EQ(c["Env"], Json::array({"A=1", "B=two words"}));
  EXPECT_EQ(c["Labels"]["team"], "web");
  EXPECT_EQ(c["Labels"]["org.opencontainers.image.revision"], "abc");
  EXPECT_TRUE(c["ExposedPorts"].contains("8080/tcp"));
  EXPECT_TRUE(c["ExposedPorts"].contains("53/udp"));
  EXPECT_EQ(c["User"], "1000:1000");
  EXPECT_EQ(c["WorkingDir"], "/srv");
  EXPECT_TRUE(c["Volumes"].contains("/data"));
  EXPECT_EQ(c["StopSignal"], "SIGINT");
  EXPECT_EQ(c["Healthcheck"]["Test"], Json::array({"CMD", "/bin/check"}));
  EXPECT_EQ(c["Healthcheck"]["Interval"], 5000000000LL);
  EXPECT_EQ(c["Entrypoint"], Json::array({"/bin/app"}));
  EXPECT_EQ(c["Cmd"], Json::array({"--serve"}));
  Json cfg = config(*img);
  // WORKDIR made its directory in a layer of its own; COPY f . landed in it.
  ASSERT_EQ(img->layers.size(), 2u);
  EXPECT_NE(names(img->layers[0]).find("srv/"), std::string::npos);
  EXPECT_NE(names(img->layers[1]).find("srv/f"), std::string::npos);
  EXPECT_EQ(cfg["history"].size(), 11u);
  EXPECT_EQ(cfg["history"][0]["empty_layer"], true);
  EXPECT_EQ(cfg["history"][0]["created_by"], "ENV A=1 B=\"two words\"");
  EXPECT_FALSE(cfg["history"][4].contains("empty_layer"));  // WORKDIR

  Json m = *parse_json(img->manifest);
  EXPECT_EQ(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(m["layers"].size(), 2u);
  EXPECT_EQ(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
}

TEST_F(ExecutorTest, CacheReusesLayersAndIsDeterministic) {
  file("a", std::string(1 << 20, 'a'));
  file("b", "b\n");
  const char* df = "FROM scratch\nCOPY a /a\nCOPY b /b\nCMD [\"/a\"]\n";
  auto first = build(df);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->cached_steps, 0);
  auto second = build(df);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->cached_steps, 2);
  EXPECT_EQ(second->manifest_digest, first->manifest_digest);
  EXPECT_NE(log_.find(" ---> Using cache"), std::string::npos);

  // A fresh executor root gives the same bytes (no cache involved).
  TempDir other;
  ExecutorOptions o;
  o.root = other / "build";
  o.preparer = preparer_.get();
  Executor fresh(o);
  BuildInput in;
  in.id = "fresh";
  in.context_dir = ctx_.path();
  in.dockerfile = df_ / "Dockerfile";
  in.source_date_epoch = 1700000000;
  auto third = fresh.build(in);
  ASSERT_TRUE(third) << third.error().message();
  EXPECT_EQ(third->manifest_digest, first->manifest_digest);

  // no_cache rebuilds everything; a changed file rebuilds its step only.
  BuildInput nc;
  nc.no_cache = true;
  auto fourth = build(df, nc);
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->cached_steps, 0);
  file("b", "changed\n");
  auto fifth = build(df);
  ASSERT_TRUE(fifth);
  EXPECT_EQ(fifth->cached_steps, 1);
  EXPECT_NE(fifth->manifest_digest, first->manifest_digest);

  // A cache entry whose blob vanished is a miss, not an error.
  std::error_code ec;
  stdfs::remove(first->layers[0].path, ec);
  auto sixth = build(df);
  ASSERT_TRUE(sixth) << sixth.error().message();
  EXPECT_EQ(sixth->cached_steps, 1);
  EXPECT_TRUE(stdfs::exists(first->layers[0].path));

  auto freed = exec_->prune_cache(std::chrono::seconds(0));
  ASSERT_TRUE(freed);
  EXPECT_GT(*freed, 0u);
}

TEST_F(ExecutorTest, ArgsAndSecretsInTheLog) {
  file("f", "x\n");
  BuildInput in;
  in.build_args = {{"TOKEN", "s3cr3t-value"}, {"UNUSED", "1"}};
  in.secrets = {"s3cr3t-value"};
  auto img = build("FROM scratch\nARG TOKEN\nLABEL t=$TOKEN\nCOPY f /$TOKEN/f\n", in);
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(log_.find("s3cr3t-value"), std::string::npos) << log_;
  EXPECT_NE(log_.find("[UNUSED] were not consumed"), std::string::npos) << log_;
  for (const auto& s : img->steps) {
    EXPECT_EQ(s.text.find("s3cr3t-value"), std::string::npos) << s.text;
  }
  EXPECT_NE(names(img->layers[0]).find("s3cr3t-value/f"), std::string::npos);
}

TEST_F(ExecutorTest, RunWithoutARuntimeFailsClearly) {
  auto img = build("FROM scratch\nRUN true\n");
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code(), Errc::FailedPrecondition);
  EXPECT_NE(img.error().message().find("Dockerfile:2: RUN needs a container runtime"),
            std::string::npos)
      << img.error().message();
  EXPECT_FALSE(stdfs::exists(root_ / "build/tmp/u1"));
}

TEST_F(ExecutorTest, TargetStageAndCancel) {
  file("f", "x\n");
  auto img = build("FROM scratch AS one\nCOPY f /one\nFROM scratch AS two\nCOPY f /two\n", [] {
    BuildInput in;
    in.target = "one";
    return in;
  }());
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_NE(names(img->layers[0]).find("one"), std::string::npos);
  EXPECT_EQ(img->steps.size(), 2u);

  std::atomic<bool> cancel{true};
  BuildInput in;
  in.cancel = &cancel;
  auto c = build("FROM scratch\nCOPY f /f\n", in);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::Cancelled);
}

}  // namespace
}  // namespace berth::builder
