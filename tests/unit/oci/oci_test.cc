// SPDX-License-Identifier: Apache-2.0
// Pure OCI values and parsers: digests, names, tags, manifests, config platforms, globs.
#include "oci/oci.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace berth::oci {
namespace {

using ::testing::HasSubstr;

// A well-formed sha256 digest made of one repeated hex character.
std::string dg(char c) { return "sha256:" + std::string(64, c); }

constexpr const char* kConfigType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kLayerType = "application/vnd.oci.image.layer.v1.tar+gzip";

// ---- Digest::parse -------------------------------------------------------------------------

TEST(DigestTest, ParsesValidSha256) {
  const std::string hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  std::string text = "sha256:" + hex;
  auto d = Digest::parse(text);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->algorithm, "sha256");
  EXPECT_EQ(d->hex, hex);
  EXPECT_EQ(d->str(), text);
}

TEST(DigestTest, Sha256OfMatchesKnownVector) {
  Digest d = Digest::sha256_of("abc");
  EXPECT_EQ(d.str(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto parsed = Digest::parse(d.str());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, d);
}

TEST(DigestTest, RejectsUppercaseHex) {
  auto d = Digest::parse("sha256:" + std::string(64, 'A'));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::InvalidArgument);
}

TEST(DigestTest, RejectsWrongLength) {
  for (size_t n : {0u, 1u, 63u, 65u, 128u}) {
    auto d = Digest::parse("sha256:" + std::string(n, 'a'));
    ASSERT_FALSE(d) << n;
    EXPECT_EQ(d.error().code(), Errc::InvalidArgument) << n;
  }
}

TEST(DigestTest, RejectsNonHexCharacters) {
  auto d = Digest::parse("sha256:" + std::string(63, 'a') + "g");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::InvalidArgument);
}

TEST(DigestTest, RejectsMissingColon) {
  for (const std::string& text :
       {std::string("sha256") + std::string(64, 'a'), std::string(64, 'a'), std::string(""),
        std::string(":") + std::string(64, 'a')}) {
    auto d = Digest::parse(text);
    ASSERT_FALSE(d) << text;
    EXPECT_EQ(d.error().code(), Errc::InvalidArgument) << text;
  }
}

TEST(DigestTest, RejectsBadAlgorithmCharacters) {
  auto d = Digest::parse("SHA256:" + std::string(64, 'a'));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::InvalidArgument);
  auto e = Digest::parse("sha 256:" + std::string(64, 'a'));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Errc::InvalidArgument);
}

TEST(DigestTest, Sha512IsUnsupported) {
  auto d = Digest::parse("sha512:" + std::string(128, 'a'));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::Unsupported);
  EXPECT_THAT(d.error().message(), HasSubstr("sha512"));
}

TEST(DigestTest, MalformedSha512IsInvalid) {
  auto d = Digest::parse("sha512:" + std::string(64, 'a'));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::InvalidArgument);
}

TEST(DigestTest, UnknownWellFormedAlgorithmIsUnsupported) {
  auto d = Digest::parse("blake3:" + std::string(64, 'a'));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::Unsupported);
  EXPECT_THAT(d.error().message(), HasSubstr("blake3"));
}

TEST(DigestTest, IsDigestReference) {
  EXPECT_TRUE(is_digest_reference(dg('a')));
  EXPECT_TRUE(is_digest_reference("sha512:abc"));
  EXPECT_FALSE(is_digest_reference("latest"));
  EXPECT_FALSE(is_digest_reference("v1.2.3"));
  EXPECT_FALSE(is_digest_reference(""));
}

// ---- Repository names and tags -------------------------------------------------------------

TEST(RepositoryNameTest, AcceptsSpecGrammar) {
  for (const char* name : {"web", "web/app", "a.b_c__d-e--f/x", "a0/b1/c2", "library/busybox",
                           "x---y", "a.b.c", "0"}) {
    EXPECT_TRUE(validate_repository_name(name)) << name;
  }
}

TEST(RepositoryNameTest, RejectsInvalidNames) {
  for (const char* name :
       {"",   "../x", "Web/App", "web/App", "a//b", "-a",  "a-",  "a/",  "/a",   "a.",
        ".a", "a..b", "a___b",   "a._b",    "a_-b", "a b", "a:b", "a@b", "a/-b", "a/b_"}) {
    auto st = validate_repository_name(name);
    ASSERT_FALSE(st) << "'" << name << "' accepted";
    EXPECT_EQ(st.error().code(), Errc::InvalidArgument) << name;
  }
}

TEST(RepositoryNameTest, EnforcesMaximumLength) {
  // 255 characters in components of 127 + '/' + 127.
  std::string max = std::string(127, 'a') + "/" + std::string(127, 'b');
  ASSERT_EQ(max.size(), 255u);
  EXPECT_TRUE(validate_repository_name(max));
  std::string too_long = max + "c";
  auto st = validate_repository_name(too_long);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("255"));
  EXPECT_FALSE(validate_repository_name(std::string(256, 'a')));
}

TEST(TagTest, AcceptsValidTags) {
  for (const char* tag : {"latest", "v1.2.3", "_hidden", "V1", "1.0-rc.1", "a__b", "A-Z_.z"}) {
    EXPECT_TRUE(validate_tag(tag)) << tag;
  }
  EXPECT_TRUE(validate_tag(std::string(128, 'a')));
}

TEST(TagTest, RejectsInvalidTags) {
  for (const std::string& tag :
       {std::string(""), std::string(129, 'a'), std::string(".hidden"), std::string("-x"),
        std::string("a/b"), std::string("a:b"), std::string("a b"), std::string("sha256:abc"),
        std::string("a+b")}) {
    auto st = validate_tag(tag);
    ASSERT_FALSE(st) << "'" << tag << "' accepted";
    EXPECT_EQ(st.error().code(), Errc::InvalidArgument) << tag;
  }
}

// ---- parse_manifest ------------------------------------------------------------------------

std::string descriptor(const std::string& media_type, const std::string& digest, int64_t size) {
  return R"({"mediaType":")" + media_type + R"(","digest":")" + digest + R"(","size":)" +
         std::to_string(size) + "}";
}

std::string oci_image(const std::string& extra = "") {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":)" +
         descriptor(kConfigType, dg('c'), 123) + R"(,"layers":[)" +
         descriptor(kLayerType, dg('1'), 1000) + "," + descriptor(kLayerType, dg('2'), 2000) + "]" +
         extra + "}";
}

TEST(ParseManifestTest, OciImageManifest) {
  auto m = parse_manifest(oci_image(R"(,"annotations":{"org.example":"x"})"), kOciManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::Image);
  EXPECT_FALSE(m->is_index());
  EXPECT_EQ(m->media_type, kOciManifest);
  EXPECT_EQ(m->artifact_type, "");
  ASSERT_TRUE(m->config.has_value());
  EXPECT_EQ(m->config->media_type, kConfigType);
  EXPECT_EQ(m->config->digest.str(), dg('c'));
  EXPECT_EQ(m->config->size, 123);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest.str(), dg('1'));
  EXPECT_EQ(m->layers[0].size, 1000);
  EXPECT_EQ(m->layers[1].digest.str(), dg('2'));
  EXPECT_EQ(m->layers[1].size, 2000);
  EXPECT_TRUE(m->manifests.empty());
  EXPECT_FALSE(m->subject.has_value());
  EXPECT_THAT(m->annotations_json, HasSubstr("org.example"));
}

TEST(ParseManifestTest, ContentTypeWithParametersIsAccepted) {
  auto m = parse_manifest(oci_image(), std::string(kOciManifest) + "; charset=utf-8");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->media_type, kOciManifest);
}

TEST(ParseManifestTest, MediaTypeFromContentTypeWhenFieldAbsent) {
  std::string body =
      R"({"schemaVersion":2,"config":)" + descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->media_type, kOciManifest);
  // And with neither, the shape decides.
  auto inferred = parse_manifest(body, "");
  ASSERT_TRUE(inferred) << inferred.error().message();
  EXPECT_EQ(inferred->media_type, kOciManifest);
  EXPECT_EQ(inferred->kind, ManifestKind::Image);
}

TEST(ParseManifestTest, OciIndex) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      dg('a') +
      R"(","size":500,"platform":{"os":"linux","architecture":"amd64"}},)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      dg('b') +
      R"(","size":501,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})";
  auto m = parse_manifest(body, kOciIndex);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::Index);
  EXPECT_TRUE(m->is_index());
  EXPECT_EQ(m->media_type, kOciIndex);
  EXPECT_FALSE(m->config.has_value());
  EXPECT_TRUE(m->layers.empty());
  ASSERT_EQ(m->manifests.size(), 2u);
  EXPECT_EQ(m->manifests[0].digest.str(), dg('a'));
  EXPECT_EQ(m->manifests[0].size, 500);
  ASSERT_TRUE(m->manifests[0].platform.has_value());
  EXPECT_EQ(m->manifests[0].platform->str(), "linux/amd64");
  ASSERT_TRUE(m->manifests[1].platform.has_value());
  EXPECT_EQ(m->manifests[1].platform->str(), "linux/arm64/v8");
}

TEST(ParseManifestTest, IndexInferredFromShape) {
  std::string body = R"({"schemaVersion":2,"manifests":[]})";
  auto m = parse_manifest(body, "");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->media_type, kOciIndex);
  EXPECT_TRUE(m->is_index());
}

TEST(ParseManifestTest, DockerSchema2Manifest) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
      R"("config":)" +
      descriptor("application/vnd.docker.container.image.v1+json", dg('c'), 1469) +
      R"(,"layers":[)" +
      descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", dg('d'), 2811969) + "]}";
  auto m = parse_manifest(body, kDockerManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::Image);
  EXPECT_EQ(m->media_type, kDockerManifest);
  EXPECT_EQ(m->artifact_type, "");  // a Docker image config is an image, not an artifact
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 2811969);
}

TEST(ParseManifestTest, DockerSchema2RequiresLayers) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
      R"("config":)" +
      descriptor("application/vnd.docker.container.image.v1+json", dg('c'), 1) + "}";
  auto m = parse_manifest(body, kDockerManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("layers"));
}

TEST(ParseManifestTest, DockerManifestList) {
  std::string body =
      R"({"schemaVersion":2,)"
      R"("mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[)"
      R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" +
      dg('e') + R"(","size":528,"platform":{"architecture":"amd64","os":"linux"}}]})";
  auto m = parse_manifest(body, kDockerManifestList);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::Index);
  EXPECT_EQ(m->media_type, kDockerManifestList);
  ASSERT_EQ(m->manifests.size(), 1u);
  EXPECT_EQ(m->manifests[0].media_type, kDockerManifest);
  EXPECT_EQ(m->manifests[0].digest.str(), dg('e'));
}

TEST(ParseManifestTest, ArtifactWithArtifactType) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("artifactType":"application/vnd.example.sbom.v1","config":)" +
      descriptor(std::string(kOciEmptyJson),
                 "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", 2) +
      R"(,"layers":[)" + descriptor("application/spdx+json", dg('5'), 77) + "]}";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->artifact_type, "application/vnd.example.sbom.v1");
  ASSERT_TRUE(m->config);
  EXPECT_EQ(m->config->media_type, kOciEmptyJson);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].media_type, "application/spdx+json");
}

TEST(ParseManifestTest, ArtifactTypeFromCustomConfigMediaType) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      descriptor("application/vnd.cncf.helm.config.v1+json", dg('c'), 10) + R"(,"layers":[]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->artifact_type, "application/vnd.cncf.helm.config.v1+json");
}

TEST(ParseManifestTest, ArtifactTypeMustBeString) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("artifactType":7,"config":)" +
      descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, SubjectDescriptor) {
  std::string body =
      oci_image(R"(,"subject":)" + descriptor(std::string(kOciManifest), dg('f'), 999));
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->digest.str(), dg('f'));
  EXPECT_EQ(m->subject->media_type, kOciManifest);
  EXPECT_EQ(m->subject->size, 999);
}

TEST(ParseManifestTest, BadSubjectDigestNamesSubject) {
  std::string body =
      oci_image(R"(,"subject":)" + descriptor(std::string(kOciManifest), "sha256:nothex", 1));
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("subject"));
}

TEST(ParseManifestTest, SchemaOneIsUnsupported) {
  std::string body =
      R"({"schemaVersion":1,"name":"library/busybox","tag":"latest","architecture":"amd64",)"
      R"("fsLayers":[{"blobSum":")" +
      dg('a') + R"("}],"history":[],"signatures":[]})";
  auto m = parse_manifest(body, "application/vnd.docker.distribution.manifest.v1+prettyjws");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::Unsupported);
  // Also without Content-Type.
  auto m2 = parse_manifest(body, "");
  ASSERT_FALSE(m2);
  EXPECT_EQ(m2.error().code(), Errc::Unsupported);
}

TEST(ParseManifestTest, SchemaVersionRequiredAndMustBeTwo) {
  auto missing = parse_manifest(R"({"config":{}})", "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::InvalidArgument);
  auto three = parse_manifest(R"({"schemaVersion":3,"manifests":[]})", "");
  ASSERT_FALSE(three);
  EXPECT_EQ(three.error().code(), Errc::InvalidArgument);
  auto str = parse_manifest(R"({"schemaVersion":"2","manifests":[]})", "");
  ASSERT_FALSE(str);
  EXPECT_EQ(str.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, MalformedJson) {
  for (const char* body : {"", "{", "{\"schemaVersion\":2,", "not json", "[1,2", "{'a':1}"}) {
    auto m = parse_manifest(body, kOciManifest);
    ASSERT_FALSE(m) << body;
    EXPECT_EQ(m.error().code(), Errc::InvalidArgument) << body;
  }
}

TEST(ParseManifestTest, NonObjectJson) {
  for (const char* body : {"[]", "2", "\"x\"", "null"}) {
    auto m = parse_manifest(body, kOciManifest);
    ASSERT_FALSE(m) << body;
    EXPECT_EQ(m.error().code(), Errc::InvalidArgument) << body;
  }
}

TEST(ParseManifestTest, MediaTypeContentTypeMismatch) {
  auto m = parse_manifest(oci_image(), kDockerManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("Content-Type"));
  auto idx = parse_manifest(oci_image(), kOciIndex);
  ASSERT_FALSE(idx);
  EXPECT_EQ(idx.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, ContentTypeMustMatchMediaTypeEvenWhenNotAManifestType) {
  // Any Content-Type that is not the body's mediaType is refused (before, only known manifest
  // types were compared, and the body's type was then served back).
  for (const char* ct : {"application/json", "application/octet-stream", "text/plain"}) {
    auto m = parse_manifest(oci_image(), ct);
    ASSERT_FALSE(m) << ct;
    EXPECT_EQ(m.error().code(), Errc::InvalidArgument) << ct;
    EXPECT_THAT(m.error().message(), HasSubstr("mediaType")) << ct;
    EXPECT_THAT(m.error().message(), HasSubstr(ct));
  }
  // Media types compare case-insensitively; parameters are ignored.
  auto upper = parse_manifest(oci_image(), "Application/VND.oci.image.manifest.v1+json; x=y");
  ASSERT_TRUE(upper) << upper.error().message();
  EXPECT_EQ(upper->media_type, kOciManifest);
}

TEST(ParseManifestTest, DescriptorMediaTypeMustBeAMediaType) {
  auto with_layer_type = [](const std::string& layer_type, const std::string& config_type) {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":)" +
           descriptor(config_type, dg('c'), 1) + R"(,"layers":[)" +
           descriptor(kLayerType, dg('1'), 1) + "," + descriptor(layer_type, dg('2'), 1) + "]}";
  };
  auto layer = parse_manifest(with_layer_type("../../etc/passwd", kConfigType), kOciManifest);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(layer.error().message(), HasSubstr("layers[1].mediaType"));
  EXPECT_THAT(layer.error().message(), HasSubstr("../../etc/passwd"));
  auto config = parse_manifest(with_layer_type(kLayerType, "not a type"), kOciManifest);
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message(), HasSubstr("config.mediaType"));
  // Artifacts keep their custom (valid) types.
  auto artifact = parse_manifest(with_layer_type("application/vnd.example.thing.v1+tar",
                                                 "application/vnd.example.config.v1+json"),
                                 kOciManifest);
  ASSERT_TRUE(artifact) << artifact.error().message();
  EXPECT_EQ(artifact->artifact_type, "application/vnd.example.config.v1+json");
  // An index child and an artifactType are media types too.
  std::string idx = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                    R"("manifests":[)" +
                    descriptor("x/../y", dg('a'), 1) + "]}";
  auto bad_child = parse_manifest(idx, kOciIndex);
  ASSERT_FALSE(bad_child);
  EXPECT_THAT(bad_child.error().message(), HasSubstr("manifests[0].mediaType"));
  auto bad_artifact = parse_manifest(oci_image(R"(,"artifactType":"../x")"), kOciManifest);
  ASSERT_FALSE(bad_artifact);
  EXPECT_THAT(bad_artifact.error().message(), HasSubstr("artifactType"));
}

TEST(ParseManifestTest, MediaTypeMustBeString) {
  std::string body = R"({"schemaVersion":2,"mediaType":5,"config":)" +
                     descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[]})";
  auto m = parse_manifest(body, "");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, MissingConfig) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("config"));
}

TEST(ParseManifestTest, BadLayerDigestNamesTheField) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[)" + descriptor(kLayerType, dg('1'), 1) +
      "," + descriptor(kLayerType, "sha256:1234", 1) + "]}";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("layers[1]"));
}

TEST(ParseManifestTest, BadConfigDescriptorNamesConfig) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1},"layers":[]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr("config"));
  EXPECT_THAT(m.error().message(), HasSubstr("digest"));
}

TEST(ParseManifestTest, BadIndexChildNamesTheField) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
      descriptor(std::string(kOciManifest), dg('a'), 1) + "," +
      descriptor(std::string(kOciManifest), dg('b'), 1) + "," +
      descriptor(std::string(kOciManifest), "md5:abc", 1) + "]}";
  auto m = parse_manifest(body, kOciIndex);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message(), HasSubstr("manifests[2]"));
}

TEST(ParseManifestTest, DescriptorSizeMustBeNonNegativeInteger) {
  for (const char* size : {"-1", "1.5", "\"10\"", "null"}) {
    std::string body =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
        descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[{"mediaType":")" + kLayerType +
        R"(","digest":")" + dg('1') + R"(","size":)" + size + "}]}";
    auto m = parse_manifest(body, kOciManifest);
    ASSERT_FALSE(m) << size;
    EXPECT_THAT(m.error().message(), HasSubstr("layers[0]")) << size;
  }
}

TEST(ParseManifestTest, DescriptorMediaTypeRequired) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      descriptor(kConfigType, dg('c'), 1) + R"(,"layers":[{"digest":")" + dg('1') +
      R"(","size":1}]})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message(), HasSubstr("layers[0]"));
  EXPECT_THAT(m.error().message(), HasSubstr("mediaType"));
}

TEST(ParseManifestTest, LayersMustBeArray) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      descriptor(kConfigType, dg('c'), 1) + R"(,"layers":{}})";
  auto m = parse_manifest(body, kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, IndexManifestsMustBeArray) {
  auto m = parse_manifest(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})", kOciIndex);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
}

TEST(ParseManifestTest, UnknownShapeIsUnsupported) {
  auto m = parse_manifest(R"({"schemaVersion":2,"mediaType":"application/x-foo"})", "");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::Unsupported);
}

TEST(MediaTypeTest, IsManifestMediaType) {
  EXPECT_TRUE(is_manifest_media_type(kOciManifest));
  EXPECT_TRUE(is_manifest_media_type(kOciIndex));
  EXPECT_TRUE(is_manifest_media_type(kDockerManifest));
  EXPECT_TRUE(is_manifest_media_type(kDockerManifestList));
  EXPECT_FALSE(is_manifest_media_type("application/json"));
  EXPECT_FALSE(is_manifest_media_type("application/vnd.docker.distribution.manifest.v1+json"));
  EXPECT_FALSE(is_manifest_media_type(""));
}

TEST(MediaTypeTest, ValidatesRfc6838TypeAndSubtype) {
  for (const std::string& ok_type :
       {std::string(kOciManifest), std::string(kLayerType), std::string(kConfigType),
        std::string("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        std::string("application/vnd.cncf.helm.chart.content.v1.tar+gzip"), std::string("a/b"),
        std::string("text/x-c!#$&^_.+-"), std::string(127, 'a') + "/" + std::string(127, 'b')}) {
    EXPECT_TRUE(validate_media_type(ok_type, "f")) << ok_type;
  }
  for (const std::string& bad :
       {std::string("../../etc/passwd"), std::string(""), std::string("application"),
        std::string("application/"), std::string("/json"), std::string("a/b/c"),
        std::string("application/json; charset=utf-8"), std::string("app lication/json"),
        std::string(".hidden/type"), std::string("application/-x"), std::string(128, 'a') + "/b",
        std::string("a/") + std::string(128, 'b'), std::string("application/j\0son", 17)}) {
    auto st = validate_media_type(bad, "layers[3].mediaType");
    ASSERT_FALSE(st) << "'" << bad << "' accepted";
    EXPECT_EQ(st.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(st.error().message(), HasSubstr("layers[3].mediaType"));
  }
}

// ---- parse_config_platform ----------------------------------------------------------------

TEST(ConfigPlatformTest, ReadsOsArchitectureVariant) {
  auto p = parse_config_platform(
      R"({"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers"}})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->os, "linux");
  EXPECT_EQ(p->architecture, "arm64");
  EXPECT_EQ(p->variant, "v8");
  EXPECT_EQ(p->str(), "linux/arm64/v8");
  auto q = parse_config_platform(R"({"architecture":"amd64","os":"linux"})");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->str(), "linux/amd64");
}

TEST(ConfigPlatformTest, NulloptWhenAbsentOrInvalid) {
  EXPECT_FALSE(parse_config_platform("").has_value());
  EXPECT_FALSE(parse_config_platform("{").has_value());
  EXPECT_FALSE(parse_config_platform("[]").has_value());
  EXPECT_FALSE(parse_config_platform("{}").has_value());
  EXPECT_FALSE(parse_config_platform(R"({"os":5,"architecture":[]})").has_value());
}

TEST(ConfigPlatformTest, EmptyPlatformStringIsEmpty) { EXPECT_EQ(Platform{}.str(), ""); }

// ---- glob_match ----------------------------------------------------------------------------

TEST(GlobMatchTest, Star) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("a*c", "abbbc"));
  EXPECT_TRUE(glob_match("a*c", "ac"));
  EXPECT_FALSE(glob_match("a*c", "abcd"));
  EXPECT_TRUE(glob_match("*-dev", "feature-dev"));
  EXPECT_FALSE(glob_match("*-dev", "feature-prod"));
  EXPECT_TRUE(glob_match("**", "x"));
}

TEST(GlobMatchTest, QuestionMark) {
  EXPECT_TRUE(glob_match("v?", "v1"));
  EXPECT_FALSE(glob_match("v?", "v"));
  EXPECT_FALSE(glob_match("v?", "v12"));
  EXPECT_TRUE(glob_match("???", "abc"));
}

TEST(GlobMatchTest, VersionPrefix) {
  EXPECT_TRUE(glob_match("v1.*", "v1.2"));
  EXPECT_TRUE(glob_match("v1.*", "v1.2.3"));
  EXPECT_TRUE(glob_match("v1.*", "v1."));
  EXPECT_FALSE(glob_match("v1.*", "v1"));
  EXPECT_FALSE(glob_match("v1.*", "v2.0"));
  EXPECT_FALSE(glob_match("v1.*", "xv1.0"));
}

TEST(GlobMatchTest, Exact) {
  EXPECT_TRUE(glob_match("latest", "latest"));
  EXPECT_FALSE(glob_match("latest", "latest2"));
  EXPECT_FALSE(glob_match("latest", "latst"));
  EXPECT_FALSE(glob_match("latest", ""));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
}

}  // namespace
}  // namespace berth::oci
