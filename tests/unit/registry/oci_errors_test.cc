// SPDX-License-Identifier: Apache-2.0
// What registry and API clients are told when the metadata store or blob storage is away: a
// 503 that says which, never the host, port, bucket or key the error itself names.
#include "registry/oci_errors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "storage/s3.h"
#include "store/store.h"
#include "support/harness.h"

namespace berth::registry {
namespace {

// A real error from the PostgreSQL store: nothing listens on the port, so it is refused at
// once, and libpq's text names the host and the port.
Error refused_postgres_error(uint16_t port) {
  store::PostgresOptions o{"host=127.0.0.1 port=" + std::to_string(port) + " dbname=berth", "", 1,
                           std::chrono::milliseconds(100)};
  auto s = store::open_postgres(o);
  EXPECT_FALSE(s);
  return s ? Error(Errc::Internal, "opened") : s.error();
}

TEST(OciErrorsTest, AnAbsentMetadataStoreIsUnavailableWithoutItsAddress) {
  uint16_t port = test::free_port();
  Error e = refused_postgres_error(port).with_context("put manifest web/app:v1");
  ASSERT_EQ(e.code(), Errc::Unavailable) << e.message();
  EXPECT_EQ(e.origin(), ErrorOrigin::MetadataStore);
  ASSERT_NE(e.message().find(std::to_string(port)), std::string::npos) << e.message();

  OciFailure f = from_error(e);
  EXPECT_EQ(f.code, Oci::Unavailable);
  EXPECT_EQ(f.message, kStoreUnavailableMessage);
  http::Response res = oci_error_response(f);
  EXPECT_EQ(res.status, 503u);
  EXPECT_NE(res.body.find("\"UNAVAILABLE\""), std::string::npos) << res.body;
  EXPECT_EQ(res.body.find(std::to_string(port)), std::string::npos) << res.body;
  EXPECT_EQ(res.body.find("127.0.0.1"), std::string::npos) << res.body;
}

TEST(OciErrorsTest, AnAbsentBucketIsUnavailableWithoutItsNameOrKey) {
  // A real error from the S3 client: nothing listens on the port.
  uint16_t port = test::free_port();
  storage::S3Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port);
  o.bucket = "secret-bucket";
  o.access_key_id = "id";
  o.secret_access_key = "secret";
  storage::S3Client s3(o);
  auto head = s3.head_object("uploads/0123");
  ASSERT_FALSE(head);
  Error e = Error(std::move(head).error()).with_context("commit blob sha256:abc");
  ASSERT_EQ(e.code(), Errc::Unavailable) << e.message();
  EXPECT_EQ(e.origin(), ErrorOrigin::BlobStorage);
  OciFailure f = from_error(e);
  EXPECT_EQ(f.code, Oci::Unavailable);
  EXPECT_EQ(f.message, kBlobStorageUnavailableMessage);
  http::Response res = oci_error_response(f);
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(res.body.find("secret-bucket"), std::string::npos) << res.body;
  EXPECT_EQ(res.body.find(std::to_string(port)), std::string::npos) << res.body;
}

TEST(OciErrorsTest, OtherErrorsKeepTheirText) {
  // Unavailable for a reason of the registry's own: the client may read it.
  Error gc(Errc::Unavailable, "blob sha256:abc was garbage-collected meanwhile: retry");
  EXPECT_EQ(from_error(gc).message, gc.message());
  // What an error says does not make it a backend's: only where it began does (an upstream's
  // or a repository's text may read like one).
  for (const char* text : {"postgres: connection lost", "upstream docker.io: s3 GET: 503",
                           "sqlite: database is locked"}) {
    Error lookalike(Errc::Unavailable, text);
    EXPECT_EQ(backend_unavailable_message(lookalike), nullptr) << text;
    EXPECT_EQ(from_error(lookalike).message, text);
  }
  // Another code is not an outage, wherever it began.
  Error conflict = Error(Errc::Conflict, "postgres: duplicate key value (SQLSTATE 23505)")
                       .with_origin(ErrorOrigin::MetadataStore);
  EXPECT_EQ(from_error(conflict).message, conflict.message());
  // The origin survives the context the layers above add.
  Error store = Error(Errc::Unavailable, "sqlite: database is locked")
                    .with_origin(ErrorOrigin::MetadataStore)
                    .with_context("put manifest web/app:v1");
  EXPECT_STREQ(backend_unavailable_message(store), kStoreUnavailableMessage);
}

}  // namespace
}  // namespace berth::registry
