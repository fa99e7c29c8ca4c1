// SPDX-License-Identifier: Apache-2.0
// The OCI Distribution API (/v2/) end to end over real HTTP against an in-process berthd:
// uploads (monolithic, POST+PUT, chunked), mounts, blob reads with ranges, manifests of every
// supported media type, tags and catalog pagination, referrers, and the ImagePushed event.
// Every test runs on both blob storages: fs and S3 (RGW).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "integration/registry_client.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

class DistributionApiTest : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home.skip_reason().empty()) {
      GTEST_SKIP() << home.skip_reason();
    }
    auto r = d.cli("repo create web/app");
    ASSERT_EQ(r.code, 0) << r.all();
  }

  // Starts an upload session and returns its Location.
  std::string start_upload(const std::string& repo = "web/app") {
    auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/");
    EXPECT_EQ(r.status, 202) << r.describe();
    return r.header("Location");
  }

  BlobHome home{GetParam()};
  TestDaemon d{[this](config::Config& cfg) { home.apply(cfg); }};
  RegistryClient c{d.port(), d.admin().basic_header()};
};

TEST_P(DistributionApiTest, BaseEndpointAnswersWithApiVersion) {
  auto r = c.get("/v2/");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.header("Docker-Distribution-API-Version"), "registry/2.0");
  EXPECT_TRUE(r.json().is_object()) << r.body;
  auto noslash = c.get("/v2");
  EXPECT_EQ(noslash.status, 200) << noslash.describe();
  // Errors carry the header too.
  auto err = c.get("/v2/web/app/manifests/nope");
  EXPECT_EQ(err.status, 404) << err.describe();
  EXPECT_EQ(err.header("Docker-Distribution-API-Version"), "registry/2.0");
  EXPECT_EQ(err.oci_code(), "MANIFEST_UNKNOWN");
}

TEST_P(DistributionApiTest, MonolithicUploadThenHeadAndGet) {
  std::string blob = "hello, monolithic blob\n";
  std::string dg = sha256_digest(blob);
  auto r = c.push_blob("web/app", blob);
  ASSERT_EQ(r.status, 201) << r.describe();
  EXPECT_EQ(r.header("Location"), "/v2/web/app/blobs/" + dg);
  EXPECT_EQ(r.header("Docker-Content-Digest"), dg);

  auto h = c.head("/v2/web/app/blobs/" + dg);
  EXPECT_EQ(h.status, 200) << h.describe();
  EXPECT_EQ(h.header("Content-Length"), std::to_string(blob.size()));
  EXPECT_EQ(h.header("Docker-Content-Digest"), dg);
  EXPECT_TRUE(h.body.empty());

  auto g = c.get("/v2/web/app/blobs/" + dg);
  EXPECT_EQ(g.status, 200) << g.describe();
  EXPECT_EQ(g.header("Docker-Content-Digest"), dg);
  EXPECT_EQ(g.body, blob);

  // The blob is content-addressed in storage (a file, or an S3 key).
  std::string hex = dg.substr(7);
  EXPECT_EQ(home.read_blob(d.data_dir(), hex), blob);
}

TEST_P(DistributionApiTest, PostThenPutWithBody) {
  auto r = c.request("POST", "/v2/web/app/blobs/uploads/");
  ASSERT_EQ(r.status, 202) << r.describe();
  std::string loc = r.header("Location");
  ASSERT_EQ(loc.rfind("/v2/web/app/blobs/uploads/", 0), 0u) << loc;
  EXPECT_FALSE(r.header("Docker-Upload-UUID").empty());
  EXPECT_NE(loc.find(r.header("Docker-Upload-UUID")), std::string::npos);
  EXPECT_EQ(r.header("Range"), "0-0");

  std::string blob(5000, 'x');
  std::string dg = sha256_digest(blob);
  auto put = c.request("PUT", with_digest(loc, dg), blob);
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(put.header("Docker-Content-Digest"), dg);
  EXPECT_EQ(put.header("Location"), "/v2/web/app/blobs/" + dg);
  EXPECT_EQ(c.get("/v2/web/app/blobs/" + dg).body, blob);

  // The session is finished: it can no longer be used.
  auto again = c.get(loc);
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_EQ(again.oci_code(), "BLOB_UPLOAD_UNKNOWN");
}

TEST_P(DistributionApiTest, ChunkedUploadRejectsOutOfOrderAndOverlappingChunks) {
  std::string blob;
  for (int i = 0; i < 30; ++i) {
    blob += static_cast<char>('a' + i % 26);
  }
  std::string loc = start_upload();
  ASSERT_FALSE(loc.empty());

  auto p1 = c.request("PATCH", loc, blob.substr(0, 10),
                      {{"Content-Range", "0-9"}, {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(p1.status, 202) << p1.describe();
  EXPECT_EQ(p1.header("Range"), "0-9");
  loc = p1.header("Location");

  auto st = c.get(loc);
  EXPECT_EQ(st.status, 204) << st.describe();
  EXPECT_EQ(st.header("Range"), "0-9");
  EXPECT_FALSE(st.header("Docker-Upload-UUID").empty());

  // A gap (starts at 20) and an overlap (starts at 5) are both refused; nothing moves.
  auto gap = c.request("PATCH", loc, blob.substr(20, 10), {{"Content-Range", "20-29"}});
  EXPECT_EQ(gap.status, 416) << gap.describe();
  EXPECT_EQ(gap.header("Range"), "0-9");
  auto overlap = c.request("PATCH", loc, blob.substr(5, 10), {{"Content-Range", "5-14"}});
  EXPECT_EQ(overlap.status, 416) << overlap.describe();
  EXPECT_EQ(overlap.header("Range"), "0-9");
  // A Content-Range that disagrees with the body length is refused too, and so is a repeat of
  // the first chunk (a client retrying after a lost answer).
  auto badlen = c.request("PATCH", loc, blob.substr(10, 5), {{"Content-Range", "10-19"}});
  EXPECT_EQ(badlen.status, 416) << badlen.describe();
  auto repeat = c.request("PATCH", loc, blob.substr(0, 10), {{"Content-Range", "0-9"}});
  EXPECT_EQ(repeat.status, 416) << repeat.describe();
  // The session stays usable: its status says where to go on.
  st = c.get(loc);
  EXPECT_EQ(st.status, 204) << st.describe();
  EXPECT_EQ(st.header("Range"), "0-9");
  EXPECT_EQ(st.header("Location"), loc);

  auto p2 = c.request("PATCH", loc, blob.substr(10, 10), {{"Content-Range", "10-19"}});
  ASSERT_EQ(p2.status, 202) << p2.describe();
  EXPECT_EQ(p2.header("Range"), "0-19");
  // A chunk without Content-Range appends (streamed PATCH).
  auto p3 = c.request("PATCH", p2.header("Location"), blob.substr(20, 5));
  ASSERT_EQ(p3.status, 202) << p3.describe();
  EXPECT_EQ(p3.header("Range"), "0-24");

  // The final PUT carries the last bytes.
  std::string dg = sha256_digest(blob);
  auto put = c.request("PUT", with_digest(p3.header("Location"), dg), blob.substr(25));
  ASSERT_EQ(put.status, 201) << put.describe();
  auto g = c.get("/v2/web/app/blobs/" + dg);
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body, blob);
}

TEST_P(DistributionApiTest, CancelledUploadIsUnknown) {
  std::string loc = start_upload();
  ASSERT_FALSE(loc.empty());
  auto p = c.request("PATCH", loc, "some bytes");
  ASSERT_EQ(p.status, 202) << p.describe();
  auto del = c.del(loc);
  EXPECT_EQ(del.status, 204) << del.describe();
  auto st = c.get(loc);
  EXPECT_EQ(st.status, 404) << st.describe();
  EXPECT_EQ(st.oci_code(), "BLOB_UPLOAD_UNKNOWN");
  auto put = c.request("PUT", with_digest(loc, sha256_digest("some bytes")));
  EXPECT_EQ(put.status, 404) << put.describe();
  EXPECT_EQ(put.oci_code(), "BLOB_UPLOAD_UNKNOWN");
  EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest("some bytes")).status, 404);
  // Nothing left on disk either.
  auto ls = run("ls -A " + d.data_dir() + "/uploads");
  EXPECT_EQ(ls.out, "") << ls.all();
  // An upload id that never existed, and one from another repository.
  auto unknown = c.get("/v2/web/app/blobs/uploads/00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.oci_code(), "BLOB_UPLOAD_UNKNOWN");
  ASSERT_EQ(d.cli("repo create web/other").code, 0);
  std::string other = start_upload();
  std::string id = other.substr(other.rfind('/') + 1);
  auto cross = c.get("/v2/web/other/blobs/uploads/" + id);
  EXPECT_EQ(cross.status, 404) << cross.describe();
  EXPECT_EQ(cross.oci_code(), "BLOB_UPLOAD_UNKNOWN");
}

TEST_P(DistributionApiTest, CrossRepositoryMount) {
  ASSERT_EQ(d.cli("repo create web/other").code, 0);
  std::string blob = "mount me";
  std::string dg = sha256_digest(blob);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  EXPECT_EQ(c.head("/v2/web/other/blobs/" + dg).status, 404);

  auto m = c.request("POST", "/v2/web/other/blobs/uploads/?mount=" + dg + "&from=web/app");
  EXPECT_EQ(m.status, 201) << m.describe();
  EXPECT_EQ(m.header("Location"), "/v2/web/other/blobs/" + dg);
  EXPECT_EQ(m.header("Docker-Content-Digest"), dg);
  auto g = c.get("/v2/web/other/blobs/" + dg);
  EXPECT_EQ(g.status, 200) << g.describe();
  EXPECT_EQ(g.body, blob);

  // The source lacks the blob: a normal upload session instead.
  std::string missing = sha256_digest("not pushed anywhere");
  auto f1 = c.request("POST", "/v2/web/other/blobs/uploads/?mount=" + missing + "&from=web/app");
  EXPECT_EQ(f1.status, 202) << f1.describe();
  EXPECT_EQ(f1.header("Location").rfind("/v2/web/other/blobs/uploads/", 0), 0u)
      << f1.header("Location");
  EXPECT_EQ(c.get(f1.header("Location")).status, 204);
  // The source repository does not exist.
  auto f2 = c.request("POST", "/v2/web/other/blobs/uploads/?mount=" + dg + "&from=no/such");
  EXPECT_EQ(f2.status, 202) << f2.describe();
  EXPECT_EQ(f2.header("Location").rfind("/v2/web/other/blobs/uploads/", 0), 0u);
  // The fallback session works as an upload.
  std::string blob2 = "uploaded after a failed mount";
  auto put = c.request("PUT", with_digest(f2.header("Location"), sha256_digest(blob2)), blob2);
  EXPECT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(c.get("/v2/web/other/blobs/" + sha256_digest(blob2)).body, blob2);
}

TEST_P(DistributionApiTest, BlobRangesAndDelete) {
  std::string blob;
  for (int i = 0; i < 100; ++i) {
    blob += static_cast<char>('0' + i % 10);
  }
  blob[0] = 'A';
  blob[99] = 'Z';
  std::string dg = sha256_digest(blob);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  std::string path = "/v2/web/app/blobs/" + dg;

  auto r = c.get(path, {{"Range", "bytes=0-9"}});
  EXPECT_EQ(r.status, 206) << r.describe();
  EXPECT_EQ(r.header("Content-Range"), "bytes 0-9/100");
  EXPECT_EQ(r.header("Docker-Content-Digest"), dg);
  EXPECT_EQ(r.body, blob.substr(0, 10));

  auto tail = c.get(path, {{"Range", "bytes=90-"}});
  EXPECT_EQ(tail.status, 206) << tail.describe();
  EXPECT_EQ(tail.header("Content-Range"), "bytes 90-99/100");
  EXPECT_EQ(tail.body, blob.substr(90));

  auto suffix = c.get(path, {{"Range", "bytes=-5"}});
  EXPECT_EQ(suffix.status, 206) << suffix.describe();
  EXPECT_EQ(suffix.header("Content-Range"), "bytes 95-99/100");
  EXPECT_EQ(suffix.body, blob.substr(95));

  auto past = c.get(path, {{"Range", "bytes=100-200"}});
  EXPECT_EQ(past.status, 416) << past.describe();
  EXPECT_EQ(past.header("Content-Range"), "bytes */100");

  auto del = c.del(path);
  EXPECT_EQ(del.status, 202) << del.describe();
  auto h = c.head(path);
  EXPECT_EQ(h.status, 404) << h.describe();
  auto g = c.get(path);
  EXPECT_EQ(g.status, 404);
  EXPECT_EQ(g.oci_code(), "BLOB_UNKNOWN");
  auto again = c.del(path);
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_EQ(again.oci_code(), "BLOB_UNKNOWN");
}

TEST_P(DistributionApiTest, UnknownBlobIsBlobUnknown) {
  auto g = c.get("/v2/web/app/blobs/" + sha256_digest("never"));
  EXPECT_EQ(g.status, 404) << g.describe();
  EXPECT_EQ(g.oci_code(), "BLOB_UNKNOWN");
  EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest("never")).status, 404);
}

TEST_P(DistributionApiTest, OciManifestByTagAndDigest) {
  std::string config = image_config("amd64", "one");
  std::string layer = "layer one bytes";
  std::string m = push_image(c, "web/app", "v1", config, {layer});
  std::string dg = sha256_digest(m);

  for (const std::string& ref : {std::string("v1"), dg}) {
    auto g = c.get("/v2/web/app/manifests/" + ref, {{"Accept", kOciManifestType}});
    EXPECT_EQ(g.status, 200) << ref << "\n" << g.describe();
    EXPECT_EQ(g.header("Content-Type"), kOciManifestType);
    EXPECT_EQ(g.header("Docker-Content-Digest"), dg);
    EXPECT_EQ(g.body, m);
    auto h = c.head("/v2/web/app/manifests/" + ref);
    EXPECT_EQ(h.status, 200) << ref << "\n" << h.describe();
    EXPECT_EQ(h.header("Content-Type"), kOciManifestType);
    EXPECT_EQ(h.header("Docker-Content-Digest"), dg);
    EXPECT_EQ(h.header("Content-Length"), std::to_string(m.size()));
    EXPECT_TRUE(h.body.empty());
  }

  // By digest: the Location names the digest; no tag appears.
  std::string config2 = image_config("amd64", "two");
  ASSERT_EQ(c.push_blob("web/app", config2).status, 201);
  std::string m2 = image_manifest(config2, {layer});
  std::string dg2 = sha256_digest(m2);
  auto put = c.put_manifest("web/app", dg2, m2, kOciManifestType);
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(put.header("Location"), "/v2/web/app/manifests/" + dg2);
  EXPECT_EQ(put.header("Docker-Content-Digest"), dg2);
  auto g2 = c.get("/v2/web/app/manifests/" + dg2);
  EXPECT_EQ(g2.status, 200);
  EXPECT_EQ(g2.body, m2);
  auto tags = c.get("/v2/web/app/tags/list").json();
  EXPECT_EQ(tags["tags"], Json::array({"v1"})) << tags.dump();

  // Pushing the same bytes again is idempotent.
  auto again = c.put_manifest("web/app", "v1", m, kOciManifestType);
  EXPECT_EQ(again.status, 201) << again.describe();
  EXPECT_EQ(again.header("Docker-Content-Digest"), dg);
}

TEST_P(DistributionApiTest, DockerSchema2ManifestKeepsItsMediaType) {
  std::string config = image_config("arm64");
  std::string layer = "docker layer";
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  ASSERT_EQ(c.push_blob("web/app", layer).status, 201);
  std::string m = image_manifest(config, {layer}, kDockerManifestType);
  auto put = c.put_manifest("web/app", "docker", m, kDockerManifestType);
  ASSERT_EQ(put.status, 201) << put.describe();
  auto g = c.get("/v2/web/app/manifests/docker");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.header("Content-Type"), kDockerManifestType);
  EXPECT_EQ(g.header("Docker-Content-Digest"), sha256_digest(m));
  EXPECT_EQ(g.body, m);
}

TEST_P(DistributionApiTest, IndexOverPushedManifests) {
  std::string layer = "shared layer";
  std::string amd =
      push_image(c, "web/app", sha256_digest(image_manifest(image_config("amd64"), {layer})),
                 image_config("amd64"), {layer});
  std::string arm = image_manifest(image_config("arm64"), {layer});
  ASSERT_EQ(c.push_blob("web/app", image_config("arm64")).status, 201);
  ASSERT_EQ(c.put_manifest("web/app", sha256_digest(arm), arm, kOciManifestType).status, 201);

  Json idx = Json::object();
  idx["schemaVersion"] = 2;
  idx["mediaType"] = kOciIndexType;
  Json d1 = descriptor(kOciManifestType, amd);
  d1["platform"] = Json{{"os", "linux"}, {"architecture", "amd64"}};
  Json d2 = descriptor(kOciManifestType, arm);
  d2["platform"] = Json{{"os", "linux"}, {"architecture", "arm64"}};
  idx["manifests"] = Json::array({d1, d2});
  std::string body = idx.dump();
  auto put = c.put_manifest("web/app", "multi", body, kOciIndexType);
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(put.header("Docker-Content-Digest"), sha256_digest(body));

  auto g = c.get("/v2/web/app/manifests/multi");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.header("Content-Type"), kOciIndexType);
  EXPECT_EQ(g.body, body);
  // The children stay reachable by digest.
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(arm)).body, arm);
}

TEST_P(DistributionApiTest, DeleteManifestByDigestRemovesItsTags) {
  std::string layer = "delete me";
  std::string m = push_image(c, "web/app", "v1", image_config(), {layer});
  std::string dg = sha256_digest(m);
  ASSERT_EQ(c.put_manifest("web/app", "also", m, kOciManifestType).status, 201);
  ASSERT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array({"also", "v1"}));

  auto del = c.del("/v2/web/app/manifests/" + dg);
  EXPECT_EQ(del.status, 202) << del.describe();
  for (const std::string& ref : {std::string("v1"), std::string("also"), dg}) {
    auto g = c.get("/v2/web/app/manifests/" + ref);
    EXPECT_EQ(g.status, 404) << ref << "\n" << g.describe();
    EXPECT_EQ(g.oci_code(), "MANIFEST_UNKNOWN");
  }
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array());
  auto again = c.del("/v2/web/app/manifests/" + dg);
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_EQ(again.oci_code(), "MANIFEST_UNKNOWN");
}

TEST_P(DistributionApiTest, DeleteManifestByTagKeepsTheManifest) {
  std::string m = push_image(c, "web/app", "v1", image_config(), {"layer"});
  ASSERT_EQ(c.put_manifest("web/app", "v2", m, kOciManifestType).status, 201);
  auto del = c.del("/v2/web/app/manifests/v2");
  EXPECT_EQ(del.status, 202) << del.describe();
  EXPECT_EQ(c.get("/v2/web/app/manifests/v2").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 200);
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(m)).status, 200);
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array({"v1"}));
  auto again = c.del("/v2/web/app/manifests/v2");
  EXPECT_EQ(again.status, 404) << again.describe();
  EXPECT_EQ(again.oci_code(), "MANIFEST_UNKNOWN");
}

TEST_P(DistributionApiTest, TagsListPaginatesWithLink) {
  std::string m = push_image(c, "web/app", "e", image_config(), {"layer"});
  for (const char* t : {"c", "a", "d", "b"}) {
    ASSERT_EQ(c.put_manifest("web/app", t, m, kOciManifestType).status, 201);
  }
  auto all = c.get("/v2/web/app/tags/list");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.header("Content-Type"), "application/json");
  EXPECT_EQ(all.json()["name"], "web/app");
  EXPECT_EQ(all.json()["tags"], Json::array({"a", "b", "c", "d", "e"}));
  EXPECT_FALSE(all.has_header("Link"));

  auto p1 = c.get("/v2/web/app/tags/list?n=2");
  EXPECT_EQ(p1.json()["tags"], Json::array({"a", "b"}));
  EXPECT_EQ(p1.header("Link"), "</v2/web/app/tags/list?n=2&last=b>; rel=\"next\"");
  auto p2 = c.get("/v2/web/app/tags/list?n=2&last=b");
  EXPECT_EQ(p2.json()["tags"], Json::array({"c", "d"}));
  EXPECT_EQ(p2.header("Link"), "</v2/web/app/tags/list?n=2&last=d>; rel=\"next\"");
  auto p3 = c.get("/v2/web/app/tags/list?n=2&last=d");
  EXPECT_EQ(p3.json()["tags"], Json::array({"e"}));
  EXPECT_FALSE(p3.has_header("Link")) << p3.describe();
  // Exactly n left: no Link either.
  auto p4 = c.get("/v2/web/app/tags/list?n=3&last=b");
  EXPECT_EQ(p4.json()["tags"], Json::array({"c", "d", "e"}));
  EXPECT_FALSE(p4.has_header("Link")) << p4.describe();

  auto bad = c.get("/v2/web/app/tags/list?n=two");
  EXPECT_GE(bad.status, 400) << bad.describe();
  EXPECT_FALSE(bad.oci_code().empty()) << bad.body;

  auto missing = c.get("/v2/no/such/tags/list");
  EXPECT_EQ(missing.status, 404) << missing.describe();
  EXPECT_EQ(missing.oci_code(), "NAME_UNKNOWN");
}

TEST_P(DistributionApiTest, CatalogPaginatesWithLink) {
  for (const char* r : {"gamma", "alpha", "beta"}) {
    ASSERT_EQ(d.cli(std::string("repo create ") + r).code, 0);
  }
  auto all = c.get("/v2/_catalog");
  EXPECT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(all.json()["repositories"], Json::array({"alpha", "beta", "gamma", "web/app"}));
  EXPECT_FALSE(all.has_header("Link"));

  auto p1 = c.get("/v2/_catalog?n=2");
  EXPECT_EQ(p1.json()["repositories"], Json::array({"alpha", "beta"}));
  EXPECT_EQ(p1.header("Link"), "</v2/_catalog?n=2&last=beta>; rel=\"next\"");
  auto p2 = c.get("/v2/_catalog?n=2&last=beta");
  EXPECT_EQ(p2.json()["repositories"], Json::array({"gamma", "web/app"}));
  EXPECT_FALSE(p2.has_header("Link")) << p2.describe();

  // Following Links page by page (names with '/' in `last`) visits every repository once.
  ASSERT_EQ(d.cli("repo create web/zzz").code, 0);
  std::vector<std::string> seen;
  std::string next = "/v2/_catalog?n=1";
  for (int i = 0; i < 10 && !next.empty(); ++i) {
    auto p = c.get(next);
    ASSERT_EQ(p.status, 200) << p.describe();
    Json page = p.json();
    for (const auto& n : page["repositories"]) {
      seen.push_back(n.get<std::string>());
    }
    std::string link = p.header("Link");
    next = link.empty() ? "" : link.substr(1, link.find('>') - 1);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"alpha", "beta", "gamma", "web/app", "web/zzz"}));
}

TEST_P(DistributionApiTest, ReferrersListAndFilterByArtifactType) {
  std::string subject = push_image(c, "web/app", "v1", image_config(), {"the image"});
  std::string subject_dg = sha256_digest(subject);
  std::string empty = "{}";
  ASSERT_EQ(c.push_blob("web/app", empty).status, 201);

  auto artifact = [&](const std::string& type, const std::string& payload) {
    EXPECT_EQ(c.push_blob("web/app", payload).status, 201);
    Json m = Json::object();
    m["schemaVersion"] = 2;
    m["mediaType"] = kOciManifestType;
    m["artifactType"] = type;
    m["config"] = descriptor("application/vnd.oci.empty.v1+json", empty);
    m["layers"] = Json::array({descriptor("application/octet-stream", payload)});
    m["subject"] = descriptor(kOciManifestType, subject);
    m["annotations"] = Json{{"org.example.kind", type}};
    return m.dump();
  };
  std::string sbom = artifact("application/vnd.example.sbom", "sbom payload");
  std::string sig = artifact("application/vnd.example.sig", "signature payload");
  for (const auto& a : {sbom, sig}) {
    auto put = c.put_manifest("web/app", sha256_digest(a), a, kOciManifestType);
    ASSERT_EQ(put.status, 201) << put.describe();
    EXPECT_EQ(put.header("OCI-Subject"), subject_dg);
  }
  // A plain image push has no subject header.
  auto plain = c.put_manifest("web/app", "v1", subject, kOciManifestType);
  EXPECT_FALSE(plain.has_header("OCI-Subject")) << plain.describe();

  auto all = c.get("/v2/web/app/referrers/" + subject_dg);
  ASSERT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(all.header("Content-Type"), kOciIndexType);
  EXPECT_FALSE(all.has_header("OCI-Filters-Applied"));
  Json j = all.json();
  EXPECT_EQ(j["schemaVersion"], 2);
  EXPECT_EQ(j["mediaType"], kOciIndexType);
  ASSERT_EQ(j["manifests"].size(), 2u) << j.dump();
  std::vector<std::string> digests;
  for (const auto& m : j["manifests"]) {
    digests.push_back(m["digest"]);
    EXPECT_EQ(m["mediaType"], kOciManifestType);
    EXPECT_EQ(m["annotations"]["org.example.kind"], m["artifactType"]) << m.dump();
    if (m["digest"] == sha256_digest(sbom)) {
      EXPECT_EQ(m["artifactType"], "application/vnd.example.sbom");
      EXPECT_EQ(m["size"], sbom.size());
    }
  }
  std::sort(digests.begin(), digests.end());
  std::vector<std::string> want{sha256_digest(sbom), sha256_digest(sig)};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(digests, want);

  auto f =
      c.get("/v2/web/app/referrers/" + subject_dg + "?artifactType=application/vnd.example.sbom");
  ASSERT_EQ(f.status, 200) << f.describe();
  EXPECT_EQ(f.header("OCI-Filters-Applied"), "artifactType");
  ASSERT_EQ(f.json()["manifests"].size(), 1u) << f.body;
  EXPECT_EQ(f.json()["manifests"][0]["digest"], sha256_digest(sbom));

  auto none = c.get("/v2/web/app/referrers/" + subject_dg + "?artifactType=application/vnd.other");
  ASSERT_EQ(none.status, 200) << none.describe();
  EXPECT_EQ(none.header("OCI-Filters-Applied"), "artifactType");
  EXPECT_EQ(none.json()["manifests"], Json::array());

  // A digest nothing refers to: an empty index, not an error.
  auto empty_list = c.get("/v2/web/app/referrers/" + sha256_digest("nothing"));
  EXPECT_EQ(empty_list.status, 200) << empty_list.describe();
  EXPECT_EQ(empty_list.json()["manifests"], Json::array());
  auto bad = c.get("/v2/web/app/referrers/sha256:xyz");
  EXPECT_EQ(bad.status, 400) << bad.describe();
  EXPECT_EQ(bad.oci_code(), "DIGEST_INVALID");
}

TEST_P(DistributionApiTest, ReferrersUseConfigMediaTypeAndAllowAbsentSubject) {
  // No artifactType: the config's media type stands in. The subject was never pushed, which
  // the spec allows.
  std::string cfg = "{\"kind\":\"example\"}";
  ASSERT_EQ(c.push_blob("web/app", cfg).status, 201);
  std::string ghost = image_manifest(image_config("amd64", "ghost"), {});
  Json m = Json::object();
  m["schemaVersion"] = 2;
  m["mediaType"] = kOciManifestType;
  m["config"] = descriptor("application/vnd.example.config.v1+json", cfg);
  m["layers"] = Json::array();
  m["subject"] = descriptor(kOciManifestType, ghost);
  std::string body = m.dump();
  auto put = c.put_manifest("web/app", sha256_digest(body), body, kOciManifestType);
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(put.header("OCI-Subject"), sha256_digest(ghost));

  auto r = c.get("/v2/web/app/referrers/" + sha256_digest(ghost));
  ASSERT_EQ(r.status, 200) << r.describe();
  Json j = r.json();
  ASSERT_EQ(j["manifests"].size(), 1u) << r.body;
  EXPECT_EQ(j["manifests"][0]["digest"], sha256_digest(body));
  EXPECT_EQ(j["manifests"][0]["artifactType"], "application/vnd.example.config.v1+json");
  auto f = c.get("/v2/web/app/referrers/" + sha256_digest(ghost) +
                 "?artifactType=application/vnd.example.config.v1+json");
  // '+' in a query is a space to form decoders; either way the filter header must be set.
  EXPECT_EQ(f.header("OCI-Filters-Applied"), "artifactType") << f.describe();
  auto f2 = c.get("/v2/web/app/referrers/" + sha256_digest(ghost) +
                  "?artifactType=application/vnd.example.config.v1%2Bjson");
  EXPECT_EQ(f2.json()["manifests"].size(), 1u) << f2.body;
}

TEST_P(DistributionApiTest, ManifestPutPublishesImagePushed) {
  // The callback runs on an I/O thread and may outlive this scope: shared state.
  struct Seen {
    std::mutex mu;
    std::vector<ImagePushed> events;
  };
  auto seen = std::make_shared<Seen>();
  auto on_push = [seen](const ImagePushed& e) {
    std::lock_guard lock(seen->mu);
    seen->events.push_back(e);
  };
  d.daemon().events().subscribe(on_push);

  std::string m = push_image(c, "web/app", "v1", image_config(), {"evented"});
  std::string config2 = image_config("amd64", "2");
  ASSERT_EQ(c.push_blob("web/app", config2).status, 201);
  std::string m2 = image_manifest(config2, {"evented"});
  ASSERT_EQ(c.put_manifest("web/app", sha256_digest(m2), m2, kOciManifestType).status, 201);
  // A refused push publishes nothing.
  EXPECT_EQ(c.put_manifest("web/app", "bad", "{", kOciManifestType).status, 400);

  // The event is published before the response is sent.
  std::lock_guard lock(seen->mu);
  const auto& events = seen->events;
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].repository, "web/app");
  EXPECT_EQ(events[0].tag, "v1");
  EXPECT_EQ(events[0].digest, sha256_digest(m));
  EXPECT_EQ(events[0].media_type, kOciManifestType);
  EXPECT_EQ(events[1].repository, "web/app");
  EXPECT_EQ(events[1].tag, "");
  EXPECT_EQ(events[1].digest, sha256_digest(m2));
}

INSTANTIATE_TEST_SUITE_P(Backends, DistributionApiTest, all_registry_backends(), BlobBackendName());

}  // namespace
}  // namespace berth::test
