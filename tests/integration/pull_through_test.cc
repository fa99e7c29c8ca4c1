// SPDX-License-Identifier: Apache-2.0
// The pull-through cache against real upstreams: Debian's docker-registry (CNCF distribution),
// once over TLS with htpasswd basic auth and once anonymous, and a second berthd, whose token
// flow is Docker Hub's kind. Clients are skopeo and curl; requests are counted in the
// upstream's own access log.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "common/sha256.h"
#include "support/blob_backend.h"
#include "support/distribution.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// On both blob storage backends: what is pulled through is committed to the local files or to
// the S3 bucket.
class PullThrough : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    if (!Distribution::available()) {
      GTEST_SKIP() << "docker-registry, htpasswd or openssl is not installed";
    }
    for (const char* t : {"skopeo", "umoci", "curl", "jq"}) {
      if (!have(t)) {
        GTEST_SKIP() << t << " is not installed";
      }
    }
    layout_ = work_ / "layout";
    ASSERT_EQ(make_busybox_layout(layout_, "stable"), "");
    d_ = std::make_unique<TestDaemon>([this](config::Config& c) { home_.apply(c); });
  }

  std::unique_ptr<Distribution> upstream(Distribution::Options o) {
    auto u = std::make_unique<Distribution>(o);
    std::string why;
    EXPECT_TRUE(u->start(&why)) << why;
    return u;
  }
  // Copies the busybox layout to an upstream as REPO:TAG.
  void seed(const Distribution& u, const std::string& repo_tag, const std::string& tag = "stable") {
    auto r = run("skopeo copy -q" + u.skopeo_dest_flags() + "oci:" + layout_ + ":" + tag +
                 " docker://" + u.host() + "/" + repo_tag + " 2>&1");
    ASSERT_EQ(r.code, 0) << r.all();
  }
  // skopeo copy of NAME (under berth) into a fresh layout, as `who`.
  CmdResult pull(const std::string& name, const AdminCredentials& who) {
    std::string dest = work_ / ("out" + std::to_string(++pulls_));
    return run("skopeo copy -q --src-tls-verify=false --src-creds '" + who.creds() + "' docker://" +
               d_->host() + "/" + name + " oci:" + dest + ":x 2>&1");
  }
  CmdResult pull(const std::string& name) { return pull(name, d_->admin()); }
  // The manifest digest an upstream (or berth) serves for a reference.
  std::string digest_at(const std::string& ref, const std::string& flags) {
    auto r = run("skopeo inspect --raw " + flags + " docker://" + ref + " | sha256sum");
    return r.out.substr(0, 64);
  }
  CmdResult curl(const std::string& args) {
    return run("curl -s -i -m 30 " + d_->curl_auth() + args);
  }

  BlobHome home_{GetParam()};
  TempDir work_;
  std::string layout_;
  std::unique_ptr<TestDaemon> d_;
  int pulls_ = 0;
};

TEST_P(PullThrough, TlsAndBasicAuthUpstreamIsFetchedOnceThenServedFromTheCache) {
  auto up = upstream({.tls = true, .username = "puller", .password = "s3cret-pw"});
  seed(*up, "library/busybox:stable");
  // The password comes on stdin, so the CLI runs by hand with the admin key in its env.
  auto c = run("echo s3cret-pw | " + d_->admin().env() + bin("berth") + " --server " + d_->url() +
               " registry upstream create hub --url " + up->url() +
               " --prefix docker.io --username puller --password-stdin --ca-file " + up->ca_file() +
               " --default");
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_NE(c.out.find("puller (password set)"), std::string::npos) << c.out;
  auto show = d_->cli("registry upstream show hub --json");
  ASSERT_EQ(show.code, 0) << show.all();
  EXPECT_EQ(jq(show.out, ".password_set"), "true");
  EXPECT_EQ(show.out.find("s3cret-pw"), std::string::npos) << show.out;
  EXPECT_EQ(jq(show.out, "has(\"password\")"), "false");
  // The password is sealed at rest, not stored as typed.
  EXPECT_NE(run("grep -c s3cret-pw " + d_->data_dir() + "/berth.db").out, "1\n");
  auto t = d_->cli("registry upstream test hub");
  EXPECT_EQ(t.code, 0) << t.all();
  EXPECT_NE(t.out.find("auth basic"), std::string::npos) << t.out;

  auto p = pull("docker.io/library/busybox:stable");
  ASSERT_EQ(p.code, 0) << p.all();
  int blobs = up->count_requests("\"GET /v2/library/busybox/blobs/sha256:");
  int manifests = up->count_requests("\"GET /v2/library/busybox/manifests/stable");
  EXPECT_EQ(blobs, 2) << up->log();  // config and layer, once each
  EXPECT_EQ(manifests, 1) << up->log();
  std::string want = digest_at(up->host() + "/library/busybox:stable", up->skopeo_inspect_flags());
  ASSERT_EQ(want.size(), 64u);
  EXPECT_EQ(digest_at(d_->host() + "/docker.io/library/busybox:stable",
                      "--tls-verify=false --creds '" + d_->creds() + "'"),
            want);
  ++manifests;  // (skopeo inspect at the upstream)

  // Again: all from berth.
  ASSERT_EQ(pull("docker.io/library/busybox:stable").code, 0);
  EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/blobs/sha256:"), blobs);
  EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/manifests/stable"), manifests);
  auto images = d_->cli("image ls docker.io/library/busybox");
  EXPECT_NE(images.out.find("stable"), std::string::npos) << images.all();

  // Wrong credentials: test says so, and a pull names the upstream and its answer.
  auto bad =
      run("echo wrong | " + d_->admin().env() + bin("berth") + " --server " + d_->url() +
          " registry upstream create wrong --url " + up->url() +
          " --prefix wrong.io --username puller --password-stdin --ca-file " + up->ca_file());
  ASSERT_EQ(bad.code, 0) << bad.all();
  auto bt = d_->cli("registry upstream test wrong");
  EXPECT_NE(bt.code, 0);
  EXPECT_NE(bt.out.find("401"), std::string::npos) << bt.all();
  auto denied = curl(d_->url() + "/v2/wrong.io/library/busybox/manifests/stable");
  EXPECT_NE(denied.out.find("HTTP/1.1 502"), std::string::npos) << denied.out;
  EXPECT_NE(denied.out.find("upstream wrong"), std::string::npos) << denied.out;
  EXPECT_NE(denied.out.find("401"), std::string::npos) << denied.out;

  // Without the upstream's CA, TLS verification fails and says so.
  auto noca = d_->cli("registry upstream create noca --url " + up->url() + " --prefix noca.io");
  ASSERT_EQ(noca.code, 0) << noca.all();
  auto nt = d_->cli("registry upstream test noca");
  EXPECT_NE(nt.code, 0);
  EXPECT_NE(nt.out.find("certificate verify failed"), std::string::npos) << nt.all();
}

TEST_P(PullThrough, CachedTagsAreServedStaleWhenTheUpstreamIsDown) {
  auto up = upstream({});
  seed(*up, "library/busybox:stable");
  // TTL 0: every tag lookup asks the upstream again.
  auto c =
      d_->cli("registry upstream create hub --url " + up->url() + " --prefix docker.io --ttl 0s");
  ASSERT_EQ(c.code, 0) << c.all();
  ASSERT_EQ(pull("docker.io/library/busybox:stable").code, 0);
  auto fresh = curl(d_->url() + "/v2/docker.io/library/busybox/manifests/stable");
  EXPECT_NE(fresh.out.find("HTTP/1.1 200"), std::string::npos) << fresh.out;
  EXPECT_EQ(fresh.out.find("Warning:"), std::string::npos) << fresh.out;
  // A tag looked up again while the upstream is up: a HEAD, no second GET.
  EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/manifests/stable"), 1) << up->log();
  EXPECT_GE(up->count_requests("\"HEAD /v2/library/busybox/manifests/stable"), 1) << up->log();
  std::string digest =
      "sha256:" + digest_at(up->host() + "/library/busybox:stable", up->skopeo_inspect_flags());

  up->stop();
  auto stale = curl(d_->url() + "/v2/docker.io/library/busybox/manifests/stable");
  EXPECT_NE(stale.out.find("HTTP/1.1 200"), std::string::npos) << stale.out;
  EXPECT_NE(stale.out.find("Warning: 110"), std::string::npos) << stale.out;
  EXPECT_NE(stale.out.find(digest), std::string::npos) << stale.out;
  EXPECT_EQ(pull("docker.io/library/busybox:stable").code, 0);
  EXPECT_EQ(pull("docker.io/library/busybox@" + digest).code, 0);
  // What was never cached cannot be served: a 502 naming the upstream.
  auto missing = curl(d_->url() + "/v2/docker.io/library/nginx/manifests/1.25");
  EXPECT_NE(missing.out.find("HTTP/1.1 502"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("upstream hub"), std::string::npos) << missing.out;
  // An upstream 404 is a 404 naming it.
  std::string why;
  ASSERT_TRUE(up->start(&why)) << why;
  auto unknown = curl(d_->url() + "/v2/docker.io/library/nginx/manifests/1.25");
  EXPECT_NE(unknown.out.find("HTTP/1.1 404"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("MANIFEST_UNKNOWN"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("upstream hub"), std::string::npos) << unknown.out;
}

TEST_P(PullThrough, ConcurrentPullsOfOneBigBlobFetchItOnce) {
  auto up = upstream({});
  // 100 MB of random bytes: gzip cannot shrink it, so the layer is about that big.
  std::string big = work_ / "big";
  ASSERT_EQ(run("head -c 100000000 /dev/urandom > " + big).code, 0);
  std::string layout = work_ / "big-layout";
  ASSERT_EQ(make_busybox_layout(layout, "big", {{"big.bin", read_file(big)}}), "");
  auto r = run("skopeo copy -q --dest-tls-verify=false oci:" + layout + ":big docker://" +
               up->host() + "/library/big:1 2>&1");
  ASSERT_EQ(r.code, 0) << r.all();
  ASSERT_EQ(d_->cli("registry upstream create hub --url " + up->url() + " --prefix docker.io").code,
            0);
  auto m = run("curl -s -m 30 " + d_->curl_auth() +
               "-H 'Accept: application/vnd.oci.image.manifest.v1+json' " + d_->url() +
               "/v2/docker.io/library/big/manifests/1");
  std::string layer = unquote(jq(m.out, "[.layers[] | select(.size > 50000000)][0].digest"));
  ASSERT_EQ(layer.rfind("sha256:", 0), 0u) << m.out;
  std::string url = d_->url() + "/v2/docker.io/library/big/blobs/" + layer;
  auto both = run("curl -sf -m 120 " + d_->curl_auth() + url + " -o " + (work_ / "a") + " & " +
                  "curl -sf -m 120 " + d_->curl_auth() + url + " -o " + (work_ / "b") +
                  " & wait %1 && wait %2; sha256sum " + (work_ / "a") + " " + (work_ / "b"));
  ASSERT_EQ(both.code, 0) << both.all();
  std::string hex = layer.substr(7);
  EXPECT_EQ(both.out.find(hex), 0u) << both.out;
  EXPECT_NE(both.out.find(hex, 64), std::string::npos) << both.out;
  EXPECT_EQ(up->count_requests("\"GET /v2/library/big/blobs/" + layer), 1) << up->log();
  // And a third pull is berth's own file.
  auto third = run("curl -sf -m 60 " + d_->curl_auth() + url + " | sha256sum");
  EXPECT_EQ(third.out.substr(0, 64), hex);
  EXPECT_EQ(up->count_requests("\"GET /v2/library/big/blobs/" + layer), 1);
  // The fetches' files became blobs: nothing is left among the uploads (on S3 the commit, an
  // upload of the spool to the bucket, may still run after the clients got their bytes).
  std::string left = run("ls -A " + d_->data_dir() + "/uploads").out;
  for (int i = 0; i < 300 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = run("ls -A " + d_->data_dir() + "/uploads").out;
  }
  EXPECT_EQ(left, "");
  // ... and the blob is stored whole, where the backend keeps blobs.
  EXPECT_EQ(Sha256::hex_of(home_.read_blob(d_->data_dir(), hex)), hex);
}

TEST_P(PullThrough, TokenFlowOfASecondBerthd) {
  TestDaemon hub;
  ASSERT_EQ(hub.cli("repo create library/busybox").code, 0);
  auto push = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + hub.creds() + "' oci:" +
                  layout_ + ":stable docker://" + hub.host() + "/library/busybox:stable 2>&1");
  ASSERT_EQ(push.code, 0) << push.all();
  auto c = run("echo '" + hub.admin_secret() + "' | " + d_->admin().env() + bin("berth") +
               " --server " + d_->url() + " registry upstream create other --url " + hub.url() +
               " --prefix other.example --username " + hub.admin_key_id() + " --password-stdin");
  ASSERT_EQ(c.code, 0) << c.all();
  auto t = d_->cli("registry upstream test other");
  EXPECT_EQ(t.code, 0) << t.all();
  EXPECT_NE(t.out.find("auth bearer"), std::string::npos) << t.out;
  auto p = pull("other.example/library/busybox:stable");
  ASSERT_EQ(p.code, 0) << p.all();
  EXPECT_EQ(digest_at(d_->host() + "/other.example/library/busybox:stable",
                      "--tls-verify=false --creds '" + d_->creds() + "'"),
            digest_at(hub.host() + "/library/busybox:stable",
                      "--tls-verify=false --creds '" + hub.creds() + "'"));
}

TEST_P(PullThrough, FetchingNeedsPullThroughWhileCachedImagesNeedOnlyPull) {
  auto up = upstream({});
  seed(*up, "library/busybox:stable");
  seed(*up, "library/busybox:other");
  // TTL 0: every tag lookup asks the upstream whether the tag moved.
  ASSERT_EQ(
      d_->cli("registry upstream create hub --url " + up->url() + " --prefix docker.io --ttl 0s")
          .code,
      0);
  ASSERT_EQ(pull("docker.io/library/busybox:stable").code, 0);  // admin fills the cache
  std::string cached = digest_at(d_->host() + "/docker.io/library/busybox:stable",
                                 "--tls-verify=false --creds '" + d_->creds() + "'");
  ASSERT_EQ(d_->cli("iam user create reader").code, 0);
  write_file(work_ / "p.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:Pull","Resource":"repository/docker.io/*"}]})");
  ASSERT_EQ(d_->cli("iam policy put --user reader p --file " + (work_ / "p.json")).code, 0);
  auto k = d_->cli("iam key create reader --json");
  AdminCredentials reader{unquote(jq(k.out, ".access_key_id")),
                          unquote(jq(k.out, ".secret_access_key"))};
  EXPECT_EQ(pull("docker.io/library/busybox:stable", reader).code, 0);
  auto other = run("curl -s -i -m 30 " + reader.curl_auth() + d_->url() +
                   "/v2/docker.io/library/busybox/manifests/other");
  EXPECT_NE(other.out.find("HTTP/1.1 403"), std::string::npos) << other.out;
  EXPECT_NE(other.out.find("registry:PullThrough"), std::string::npos) << other.out;
  EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/manifests/other"), 0);
  // A blob of a repository nothing was cached in: refused, and no repository made for it.
  auto blob = run("curl -s -i -m 30 " + reader.curl_auth() + d_->url() +
                  "/v2/docker.io/library/never/blobs/sha256:" + std::string(64, 'a'));
  EXPECT_NE(blob.out.find("HTTP/1.1 403"), std::string::npos) << blob.out;
  EXPECT_EQ(d_->cli("repo ls").out.find("docker.io/library/never"), std::string::npos);
  // The tag moves upstream: fetching the new image is a pull through, so the reader gets the
  // cached one, marked stale, and the upstream is not asked for the new one.
  ASSERT_EQ(make_busybox_layout(layout_, "v2", {{"etc/v", "2\n"}}), "");
  seed(*up, "library/busybox:stable", "v2");
  int gets = up->count_requests("\"GET /v2/library/busybox/manifests/stable");
  auto moved = run("curl -s -i -m 30 " + reader.curl_auth() + d_->url() +
                   "/v2/docker.io/library/busybox/manifests/stable");
  EXPECT_NE(moved.out.find("HTTP/1.1 200"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("Warning: 110"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("sha256:" + cached), std::string::npos) << moved.out;
  EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/manifests/stable"), gets);
  // The admin may pull through: the new image.
  auto admin = curl(d_->url() + "/v2/docker.io/library/busybox/manifests/stable");
  EXPECT_EQ(admin.out.find("sha256:" + cached), std::string::npos) << admin.out;
  EXPECT_EQ(admin.out.find("Warning:"), std::string::npos) << admin.out;

  // The same holds for a service: its image is fetched for it, so creating one from an
  // uncached tag needs registry:PullThrough too, and nothing is fetched when it is refused.
  write_file(work_ / "s.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:Pull","Resource":"repository/docker.io/*"},{"Effect":"Allow",
    "Action":"service:CreateService","Resource":"service/*"}]})");
  ASSERT_EQ(d_->cli("iam policy put --user reader p --file " + (work_ / "s.json")).code, 0);
  auto refused = d_->cli_as(reader, "service create c1 --image docker.io/library/busybox:other");
  if (refused.all().find("services are not available") == std::string::npos) {
    EXPECT_NE(refused.code, 0);
    EXPECT_NE(refused.all().find("registry:PullThrough"), std::string::npos) << refused.all();
    EXPECT_EQ(up->count_requests("\"GET /v2/library/busybox/manifests/other"), 0);
    EXPECT_EQ(d_->cli("service show c1").code, 3) << "a refused service was created";
  }
}

TEST_P(PullThrough, BadUpstreamsAreRefusedNamingTheProblemAndNothingChanges) {
  ASSERT_EQ(d_->cli("registry upstream create hub --url http://127.0.0.1:1 --prefix docker.io "
                    "--default")
                .code,
            0);
  struct Case {
    std::string args;
    std::string says;
  };
  const Case cases[] = {
      {"x --url ftp://example --prefix a.io", "must start with https:// or http://"},
      {"x --url http://127.0.0.1:1/v2/ --prefix a.io", "not a path"},
      {"Bad_Name --url http://127.0.0.1:1 --prefix a.io", "upstream name"},
      {"x --url http://127.0.0.1:1 --prefix Docker.IO", "prefix"},
      {"x --url http://127.0.0.1:1 --prefix docker.io/library", "overlaps upstream hub"},
      {"x --url http://127.0.0.1:1 --prefix a.io --default", "already the default"},
      {"hub --url http://127.0.0.1:1 --prefix b.io", "already exists"},
      {"x --url https://127.0.0.1:1 --prefix a.io --ca-file /nonexistent.pem", "/nonexistent.pem"},
      {"x --url http://127.0.0.1:1 --prefix a.io --ttl 5x", "invalid duration"},
  };
  for (const auto& c : cases) {
    auto r = d_->cli("registry upstream create " + c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.all();
  }
  auto ls = d_->cli("registry upstream ls --json");
  EXPECT_EQ(jq(ls.out, ".upstreams | length"), "1") << ls.out;
  EXPECT_NE(d_->cli("registry upstream rm nope").code, 0);
  EXPECT_EQ(d_->cli("registry upstream rm hub").code, 0);
  EXPECT_EQ(jq(d_->cli("registry upstream ls --json").out, ".upstreams | length"), "0");
}

INSTANTIATE_TEST_SUITE_P(Backends, PullThrough, all_registry_backends(), BlobBackendName());

}  // namespace
}  // namespace berth::test
