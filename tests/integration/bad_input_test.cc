// SPDX-License-Identifier: Apache-2.0
// The /v2/ API under bad input: wrong or malformed digests, bodies cut short, manifests that
// are malformed, too big or reference what is not there, invalid names and tags, bad ranges.
// Every refusal uses the OCI error body and leaves nothing visible behind.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/registry_client.h"
#include "storage/s3.h"
#include "support/blob_backend.h"
#include "support/harness.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

// On every deployment (support/blob_backend.h): the local files, an S3 bucket, and S3 with the
// metadata in PostgreSQL.
class BadInputTest : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto r = d.cli("repo create web/app");
    ASSERT_EQ(r.code, 0) << r.all();
  }

  std::string start_upload() {
    auto r = c.request("POST", "/v2/web/app/blobs/uploads/");
    EXPECT_EQ(r.status, 202) << r.describe();
    return r.header("Location");
  }

  // Nothing under DATA/uploads and no stored blob for the digest.
  void expect_no_trace(const std::string& digest) {
    auto ls = run("ls -A " + d.data_dir() + "/uploads");
    EXPECT_EQ(ls.out, "") << "uploads left behind";
    std::string hex = digest.substr(digest.find(':') + 1);
    EXPECT_EQ(home_.read_blob(d.data_dir(), hex), "") << "blob " << digest << " is stored";
    auto h = c.head("/v2/web/app/blobs/" + digest);
    EXPECT_EQ(h.status, 404) << h.describe();
  }

  BlobHome home_{GetParam()};
  TestDaemon d{[this](config::Config& cfg) { home_.apply(cfg); }};
  RegistryClient c{d.port(), d.admin().basic_header()};
};

TEST_P(BadInputTest, PutWithWrongDigestIsRefusedAndLeavesNothing) {
  std::string blob = "the real content";
  std::string claimed = sha256_digest("something else");
  std::string loc = start_upload();
  auto put = c.request("PUT", with_digest(loc, claimed), blob);
  EXPECT_EQ(put.status, 400) << put.describe();
  EXPECT_EQ(put.oci_code(), "DIGEST_INVALID");
  expect_no_trace(claimed);
  expect_no_trace(sha256_digest(blob));
  // The failed finish ends the session.
  auto st = c.get(loc);
  EXPECT_EQ(st.status, 404) << st.describe();
  EXPECT_EQ(st.oci_code(), "BLOB_UPLOAD_UNKNOWN");
}

// 12 MiB sent in PATCHes: on S3 the first 10 MiB left as a multipart part while the client was
// still sending. A wrong digest at the PUT must leave no part, no upload and no temporary
// object in the bucket, not only nothing under DATA.
TEST_P(BadInputTest, AWrongDigestAfterPartsWentOutLeavesNoPartsBehind) {
  std::string blob(12 << 20, '\0');
  for (size_t i = 0; i < blob.size(); ++i) {
    blob[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  std::string claimed = sha256_digest("something else");
  std::string loc = start_upload();
  const size_t half = blob.size() / 2;
  auto p1 = c.request("PATCH", loc, blob.substr(0, half),
                      {{"Content-Range", "0-" + std::to_string(half - 1)}});
  ASSERT_EQ(p1.status, 202) << p1.describe();
  loc = p1.header("Location");
  auto p2 =
      c.request("PATCH", loc, blob.substr(half),
                {{"Content-Range", std::to_string(half) + "-" + std::to_string(blob.size() - 1)}});
  ASSERT_EQ(p2.status, 202) << p2.describe();
  loc = p2.header("Location");
  std::unique_ptr<storage::S3Client> s3;
  if (home_.on_s3()) {
    // A part is in the bucket already (it may still be on its way): the case under test.
    s3 = std::make_unique<storage::S3Client>(RgwServer::shared()->client_options(home_.bucket()));
    ASSERT_EQ(wait_for_multipart_uploads(*s3, "uploads/"), 1u)
        << "no multipart upload while the client was still sending";
  }
  auto put = c.request("PUT", with_digest(loc, claimed), "");
  EXPECT_EQ(put.status, 400) << put.describe();
  EXPECT_EQ(put.oci_code(), "DIGEST_INVALID");
  expect_no_trace(claimed);
  expect_no_trace(sha256_digest(blob));
  if (s3) {
    auto parts = s3->list_multipart_uploads("");
    ASSERT_TRUE(parts) << parts.error().message();
    EXPECT_TRUE(parts->empty()) << parts->size() << " multipart upload(s) left";
    auto temps = s3->list_objects("uploads/");
    ASSERT_TRUE(temps) << temps.error().message();
    EXPECT_TRUE(temps->empty()) << (*temps)[0].key;
  }
}

TEST_P(BadInputTest, MonolithicWithWrongOrMalformedDigest) {
  std::string blob = "monolithic content";
  std::string claimed = sha256_digest("not it");
  auto r = c.request("POST", "/v2/web/app/blobs/uploads/?digest=" + claimed, blob);
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(r.oci_code(), "DIGEST_INVALID");
  expect_no_trace(claimed);
  expect_no_trace(sha256_digest(blob));

  for (const std::string& bad :
       {std::string("sha256:xyz"), std::string("sha256:"),
        std::string("sha256:" + std::string(64, 'A')), std::string("nocolon")}) {
    auto m = c.request("POST", "/v2/web/app/blobs/uploads/?digest=" + bad, blob);
    EXPECT_EQ(m.status, 400) << bad << "\n" << m.describe();
    EXPECT_EQ(m.oci_code(), "DIGEST_INVALID") << bad;
  }
  // Another algorithm is refused, not stored.
  auto other =
      c.request("POST", "/v2/web/app/blobs/uploads/?digest=sha512:" + std::string(128, 'a'), blob);
  EXPECT_EQ(other.status, 400) << other.describe();
  EXPECT_EQ(other.oci_code(), "DIGEST_INVALID") << other.body;
  expect_no_trace(sha256_digest(blob));
  // PUT without any digest.
  std::string loc = start_upload();
  auto nodigest = c.request("PUT", loc, blob);
  EXPECT_EQ(nodigest.status, 400) << nodigest.describe();
  EXPECT_EQ(nodigest.oci_code(), "DIGEST_INVALID");
  EXPECT_EQ(c.head("/v2/web/app/blobs/" + sha256_digest(blob)).status, 404);
}

TEST_P(BadInputTest, TruncatedMonolithicBodyLeavesNothingVisible) {
  // The client promises 1000 bytes, sends 10 and goes away. The digest is that of the 10
  // bytes, so only the length check can stop them becoming a blob.
  std::string sent = "0123456789";
  std::string dg = sha256_digest(sent);
  auto r = c.request("POST", "/v2/web/app/blobs/uploads/?digest=" + dg, sent, {}, 1000);
  EXPECT_NE(r.status, 201) << r.describe();
  expect_no_trace(dg);
  EXPECT_EQ(c.get("/v2/").status, 200);
}

TEST_P(BadInputTest, TruncatedPutBodyLeavesNothingVisible) {
  std::string sent = "partial final chunk";
  std::string dg = sha256_digest(sent);
  std::string loc = start_upload();
  auto r = c.request("PUT", with_digest(loc, dg), sent, {}, 4096);
  EXPECT_NE(r.status, 201) << r.describe();
  expect_no_trace(dg);
  auto st = c.get(loc);
  EXPECT_EQ(st.status, 404) << st.describe();
}

TEST_P(BadInputTest, TruncatedPatchLeavesAResumableSession) {
  std::string blob = "abcdefghijklmnopqrstuvwxyz0123";
  std::string loc = start_upload();
  auto cut = c.request("PATCH", loc, blob.substr(0, 10), {}, 100);
  EXPECT_NE(cut.status, 202) << cut.describe();
  // The session survives and reports a consistent offset to resume from.
  auto st = c.get(loc);
  ASSERT_EQ(st.status, 204) << st.describe();
  std::string range = st.header("Range");
  ASSERT_TRUE(range == "0-0" || range == "0-9") << range;
  size_t offset = range == "0-9" ? 10 : 0;
  auto rest = c.request(
      "PATCH", loc, blob.substr(offset),
      {{"Content-Range", std::to_string(offset) + "-" + std::to_string(blob.size() - 1)}});
  ASSERT_EQ(rest.status, 202) << rest.describe();
  std::string dg = sha256_digest(blob);
  auto put = c.request("PUT", with_digest(loc, dg));
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(c.get("/v2/web/app/blobs/" + dg).body, blob);
}

TEST_P(BadInputTest, MalformedContentRangeIsRefused) {
  std::string loc = start_upload();
  for (const std::string& cr :
       {std::string("abc"), std::string("5-2"), std::string("-5"), std::string("bytes=0-4")}) {
    auto p = c.request("PATCH", loc, "12345", {{"Content-Range", cr}});
    EXPECT_EQ(p.status, 416) << cr << "\n" << p.describe();
    EXPECT_EQ(p.header("Range"), "0-0") << cr;
  }
  auto st = c.get(loc);
  EXPECT_EQ(st.status, 204);
  EXPECT_EQ(st.header("Range"), "0-0");
}

TEST_P(BadInputTest, BadBlobRangesAre416) {
  std::string blob(50, 'q');
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  std::string path = "/v2/web/app/blobs/" + sha256_digest(blob);
  for (const std::string& range :
       {std::string("bytes=50-"), std::string("bytes=9-3"), std::string("items=0-1"),
        std::string("bytes=0-1,3-4"), std::string("bytes=-0"), std::string("bytes=x-y")}) {
    auto r = c.get(path, {{"Range", range}});
    EXPECT_EQ(r.status, 416) << range << "\n" << r.describe();
    EXPECT_EQ(r.header("Content-Range"), "bytes */50") << range;
  }
  // An end past the size is clamped (RFC 9110), not refused.
  auto clamp = c.get(path, {{"Range", "bytes=40-999"}});
  EXPECT_EQ(clamp.status, 206) << clamp.describe();
  EXPECT_EQ(clamp.header("Content-Range"), "bytes 40-49/50");
  EXPECT_EQ(clamp.body, blob.substr(40));
}

TEST_P(BadInputTest, ManifestReferencingMissingBlobIsNotStored) {
  std::string config = image_config();
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  std::string m = image_manifest(config, {"layer that was never pushed"});
  auto put = c.put_manifest("web/app", "v1", m, kOciManifestType);
  EXPECT_EQ(put.status, 400) << put.describe();
  EXPECT_EQ(put.oci_code(), "MANIFEST_BLOB_UNKNOWN");
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(m)).status, 404);
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array());

  // A blob pushed to another repository does not count either.
  ASSERT_EQ(d.cli("repo create web/other").code, 0);
  std::string layer = "layer in the other repository";
  ASSERT_EQ(c.push_blob("web/other", layer).status, 201);
  std::string m2 = image_manifest(config, {layer});
  auto put2 = c.put_manifest("web/app", "v1", m2, kOciManifestType);
  EXPECT_EQ(put2.status, 400) << put2.describe();
  EXPECT_EQ(put2.oci_code(), "MANIFEST_BLOB_UNKNOWN");
  // Missing config blob.
  std::string m3 = image_manifest(image_config("amd64", "unpushed"), {});
  auto put3 = c.put_manifest("web/app", "v1", m3, kOciManifestType);
  EXPECT_EQ(put3.status, 400) << put3.describe();
  EXPECT_EQ(put3.oci_code(), "MANIFEST_BLOB_UNKNOWN");
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
}

TEST_P(BadInputTest, IndexReferencingMissingManifestIsNotStored) {
  Json idx = Json::object();
  idx["schemaVersion"] = 2;
  idx["mediaType"] = kOciIndexType;
  idx["manifests"] =
      Json::array({descriptor(kOciManifestType, image_manifest(image_config(), {}))});
  std::string body = idx.dump();
  auto put = c.put_manifest("web/app", "multi", body, kOciIndexType);
  EXPECT_EQ(put.status, 400) << put.describe();
  EXPECT_EQ(put.oci_code(), "MANIFEST_BLOB_UNKNOWN");
  EXPECT_EQ(c.get("/v2/web/app/manifests/multi").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(body)).status, 404);
}

TEST_P(BadInputTest, MalformedManifestsAreManifestInvalid) {
  std::string config = image_config();
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  Json no_config =
      Json{{"schemaVersion", 2}, {"mediaType", kOciManifestType}, {"layers", Json::array()}};
  Json layers_not_array = Json::parse(image_manifest(config, {}));
  layers_not_array["layers"] = "nope";
  Json bad_digest = Json::parse(image_manifest(config, {}));
  bad_digest["config"]["digest"] = "sha256:nothex";
  for (const std::string& body :
       {std::string("{"), std::string("not json at all"), std::string("[1,2,3]"), std::string(""),
        no_config.dump(), layers_not_array.dump(), bad_digest.dump()}) {
    auto put = c.put_manifest("web/app", "v1", body, kOciManifestType);
    EXPECT_EQ(put.status, 400) << body << "\n" << put.describe();
    EXPECT_EQ(put.oci_code(), "MANIFEST_INVALID") << body;
  }
  // mediaType in the body contradicting Content-Type.
  std::string m = image_manifest(config, {});
  auto mismatch = c.put_manifest("web/app", "v1", m, kDockerManifestType);
  EXPECT_EQ(mismatch.status, 400) << mismatch.describe();
  EXPECT_EQ(mismatch.oci_code(), "MANIFEST_INVALID");
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
  // Pushed by a digest that is not the body's.
  auto wrong = c.put_manifest("web/app", sha256_digest("other"), m, kOciManifestType);
  EXPECT_EQ(wrong.status, 400) << wrong.describe();
  EXPECT_EQ(wrong.oci_code(), "DIGEST_INVALID");
  EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(m)).status, 404);
}

// The distribution spec: a digest that is invalid or of an unsupported algorithm is 400. One
// answer everywhere (before, GET said 400 DIGEST_INVALID and an upload's digest 415).
TEST_P(BadInputTest, UnsupportedDigestAlgorithmIsDigestInvalidEverywhere) {
  std::string blob = "content under an odd digest";
  std::string loc = start_upload();
  for (const std::string& dg : {"sha999:" + std::string(64, 'a'), "sha512:" + std::string(128, 'b'),
                                std::string("sha999:")}) {
    std::vector<HttpResponse> answers = {
        c.get("/v2/web/app/manifests/" + dg),
        c.head("/v2/web/app/manifests/" + dg),
        c.put_manifest("web/app", dg, image_manifest(image_config(), {}), kOciManifestType),
        c.del("/v2/web/app/manifests/" + dg),
        c.get("/v2/web/app/blobs/" + dg),
        c.del("/v2/web/app/blobs/" + dg),
        c.get("/v2/web/app/referrers/" + dg),
        c.request("POST", "/v2/web/app/blobs/uploads/?digest=" + dg, blob),
        c.request("PUT", with_digest(start_upload(), dg), blob),
    };
    for (size_t i = 0; i < answers.size(); ++i) {
      const auto& r = answers[i];
      EXPECT_EQ(r.status, 400) << dg << " request " << i << "\n" << r.describe();
      if (i != 1) {  // HEAD has no body
        EXPECT_EQ(r.oci_code(), "DIGEST_INVALID") << dg << " request " << i << "\n" << r.body;
      }
    }
  }
  EXPECT_EQ(c.request("DELETE", loc).status, 204);
  expect_no_trace(sha256_digest(blob));
  // The control API agrees: a bad argument, not "not implemented".
  auto api = run("curl -s -o /dev/null -w '%{http_code}' -X DELETE" + d.curl_auth() + d.url() +
                 "/api/v1/repositories/web/app/images/sha999:" + std::string(64, 'a'));
  EXPECT_EQ(api.out, "400") << api.all();
}

// The image spec: a descriptor's size is the size of what it names.
TEST_P(BadInputTest, DescriptorSizeThatDiffersFromTheContentIsSizeInvalid) {
  std::string config = image_config();
  std::string layer = "a layer of some bytes";
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  ASSERT_EQ(c.push_blob("web/app", layer).status, 201);
  std::string good = image_manifest(config, {layer});
  struct Case {
    std::string field;
    Json manifest;
  };
  Json bigger_layer = Json::parse(good);
  bigger_layer["layers"][0]["size"] = layer.size() + 1;
  Json smaller_layer = Json::parse(good);
  smaller_layer["layers"][0]["size"] = layer.size() - 1;
  Json wrong_config = Json::parse(good);
  wrong_config["config"]["size"] = 3;
  for (const auto& [field, m] : std::vector<Case>{{"layers[0].size", bigger_layer},
                                                  {"layers[0].size", smaller_layer},
                                                  {"config.size", wrong_config}}) {
    auto put = c.put_manifest("web/app", "v1", m.dump(), kOciManifestType);
    EXPECT_EQ(put.status, 400) << field << "\n" << put.describe();
    EXPECT_EQ(put.oci_code(), "SIZE_INVALID") << put.body;
    EXPECT_NE(put.oci_message().find(field), std::string::npos) << put.body;
    EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
    EXPECT_EQ(c.get("/v2/web/app/manifests/" + sha256_digest(m.dump())).status, 404);
  }
  // An index child whose size is not its manifest's.
  ASSERT_EQ(c.put_manifest("web/app", "v1", good, kOciManifestType).status, 201);
  Json idx = Json{{"schemaVersion", 2},
                  {"mediaType", kOciIndexType},
                  {"manifests", Json::array({descriptor(kOciManifestType, good)})}};
  idx["manifests"][0]["size"] = good.size() + 10;
  auto put = c.put_manifest("web/app", "multi", idx.dump(), kOciIndexType);
  EXPECT_EQ(put.status, 400) << put.describe();
  EXPECT_EQ(put.oci_code(), "SIZE_INVALID") << put.body;
  EXPECT_NE(put.oci_message().find("manifests[0].size"), std::string::npos) << put.body;
  EXPECT_EQ(c.get("/v2/web/app/manifests/multi").status, 404);
  // The right sizes are still fine.
  idx["manifests"][0]["size"] = good.size();
  EXPECT_EQ(c.put_manifest("web/app", "multi", idx.dump(), kOciIndexType).status, 201);
}

// RFC 6838 type/subtype, as the image spec requires of every descriptor's mediaType.
TEST_P(BadInputTest, DescriptorMediaTypeThatIsNotAMediaTypeIsManifestInvalid) {
  std::string config = image_config();
  std::string layer = "layer bytes";
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  ASSERT_EQ(c.push_blob("web/app", layer).status, 201);
  Json bad_layer = Json::parse(image_manifest(config, {layer}));
  bad_layer["layers"][0]["mediaType"] = "../../etc/passwd";
  Json bad_config = Json::parse(image_manifest(config, {layer}));
  bad_config["config"]["mediaType"] = "no-slash-at-all";
  for (const auto& [field, m] : std::vector<std::pair<std::string, Json>>{
           {"layers[0].mediaType", bad_layer}, {"config.mediaType", bad_config}}) {
    auto put = c.put_manifest("web/app", "v1", m.dump(), kOciManifestType);
    EXPECT_EQ(put.status, 400) << field << "\n" << put.describe();
    EXPECT_EQ(put.oci_code(), "MANIFEST_INVALID") << put.body;
    EXPECT_NE(put.oci_message().find(field), std::string::npos) << put.body;
    EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404);
  }
}

// The spec: a manifest with a mediaType is pushed with that Content-Type. Before, a
// Content-Type that was no manifest type at all was let through and the manifest was then
// served under the body's type.
TEST_P(BadInputTest, ContentTypeThatDisagreesWithTheBodyIsManifestInvalid) {
  std::string config = image_config();
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  std::string m = image_manifest(config, {});
  for (const std::string& ct :
       {std::string("application/json"), std::string("application/octet-stream"),
        std::string(kOciIndexType), std::string("text/plain; charset=utf-8")}) {
    auto put = c.put_manifest("web/app", "v1", m, ct);
    EXPECT_EQ(put.status, 400) << ct << "\n" << put.describe();
    EXPECT_EQ(put.oci_code(), "MANIFEST_INVALID") << put.body;
    EXPECT_NE(put.oci_message().find("mediaType"), std::string::npos) << put.body;
    EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 404) << ct;
  }
  // The declared type with parameters is the same type.
  auto same = c.put_manifest("web/app", "v1", m, std::string(kOciManifestType) + "; charset=utf-8");
  EXPECT_EQ(same.status, 201) << same.describe();
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").header("Content-Type"), kOciManifestType);
}

TEST_P(BadInputTest, ManifestOverFourMiBIs413) {
  std::string config = image_config();
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  Json m = Json::parse(image_manifest(config, {}));
  m["annotations"] = Json{{"pad", std::string(4 * 1024 * 1024, 'p')}};
  std::string body = m.dump();
  ASSERT_GT(body.size(), 4u * 1024 * 1024);
  auto put = c.put_manifest("web/app", "big", body, kOciManifestType);
  EXPECT_EQ(put.status, 413) << put.describe();
  EXPECT_FALSE(put.oci_code().empty()) << put.body;
  EXPECT_EQ(c.get("/v2/web/app/manifests/big").status, 404);
  EXPECT_EQ(c.get("/v2/").status, 200);
}

TEST_P(BadInputTest, InvalidRepositoryNamesAreNameInvalid) {
  for (const std::string& name :
       {std::string("../x"), std::string("Upper/Case"), std::string("web/App"),
        std::string("web//app"), std::string("-web/app"), std::string("web/app-"),
        std::string("%2e%2e/x")}) {
    for (const std::string& path : {"/v2/" + name + "/manifests/v1", "/v2/" + name + "/tags/list",
                                    "/v2/" + name + "/blobs/" + sha256_digest("x")}) {
      auto r = c.get(path);
      EXPECT_EQ(r.status, 400) << path << "\n" << r.describe();
      EXPECT_EQ(r.oci_code(), "NAME_INVALID") << path;
    }
    auto post = c.request("POST", "/v2/" + name + "/blobs/uploads/");
    EXPECT_EQ(post.status, 400) << name << "\n" << post.describe();
    EXPECT_EQ(post.oci_code(), "NAME_INVALID") << name;
  }
  auto cli = d.cli("repo create Upper/Case");
  EXPECT_NE(cli.code, 0);
  EXPECT_NE(cli.err.find("invalid repository name"), std::string::npos) << cli.all();
  EXPECT_EQ(c.get("/v2/_catalog").json()["repositories"], Json::array({"web/app"}));
}

// PUT refuses a bad tag as TAG_INVALID; GET and HEAD answer 404 MANIFEST_UNKNOWN, as
// distribution does (a reference that is neither a tag nor a digest names nothing).
TEST_P(BadInputTest, InvalidTagsAreTagInvalid) {
  std::string config = image_config();
  ASSERT_EQ(c.push_blob("web/app", config).status, 201);
  std::string m = image_manifest(config, {});
  for (const std::string& tag :
       {std::string("-leading-dash"), std::string(".dot"), std::string(129, 't'),
        std::string("a+b"), std::string("%20space")}) {
    auto put = c.put_manifest("web/app", tag, m, kOciManifestType);
    EXPECT_EQ(put.status, 400) << tag << "\n" << put.describe();
    EXPECT_EQ(put.oci_code(), "TAG_INVALID") << tag;
    auto get = c.get("/v2/web/app/manifests/" + tag);
    EXPECT_EQ(get.status, 404) << tag << "\n" << get.describe();
    EXPECT_EQ(get.oci_code(), "MANIFEST_UNKNOWN") << tag;
  }
  // 128 characters is the limit, and allowed.
  std::string longest(128, 't');
  EXPECT_EQ(c.put_manifest("web/app", longest, m, kOciManifestType).status, 201);
  EXPECT_EQ(c.get("/v2/web/app/tags/list").json()["tags"], Json::array({longest}));
}

TEST_P(BadInputTest, UnsupportedMethodsAre405) {
  auto r = c.request("PATCH", "/v2/web/app/manifests/v1", "{}");
  EXPECT_EQ(r.status, 405) << r.describe();
  EXPECT_EQ(r.oci_code(), "UNSUPPORTED");
  auto cat = c.request("DELETE", "/v2/_catalog");
  EXPECT_EQ(cat.status, 405) << cat.describe();
  auto tags = c.request("PUT", "/v2/web/app/tags/list", "");
  EXPECT_EQ(tags.status, 405) << tags.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, BadInputTest, all_registry_backends(), BlobBackendName());

}  // namespace
}  // namespace berth::test
