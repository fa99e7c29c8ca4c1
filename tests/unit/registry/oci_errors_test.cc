// SPDX-License-Identifier: Apache-2.0
// What registry and API clients are told when the metadata store or blob storage is away: a
// 503 that says which, never the host, port, bucket or key the error itself names.
#include "registry/oci_errors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

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
  Error e = Error(Errc::Unavailable,
                  "s3 PUT secret-bucket/uploads/0123: Failed to connect to 10.1.2.3 port 7480 "
                  "after 0 ms: Couldn't connect to server")
                .with_context("commit blob sha256:abc");
  OciFailure f = from_error(e);
  EXPECT_EQ(f.code, Oci::Unavailable);
  EXPECT_EQ(f.message, kBlobStorageUnavailableMessage);
  Error init = Error(Errc::Unavailable, "s3 HEAD secret-bucket: 503 SlowDown")
                   .with_context("S3 bucket secret-bucket at http://10.1.2.3:7480");
  EXPECT_EQ(from_error(init).message, kBlobStorageUnavailableMessage);
  http::Response res = oci_error_response(from_error(e));
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(res.body.find("secret-bucket"), std::string::npos) << res.body;
  EXPECT_EQ(res.body.find("7480"), std::string::npos) << res.body;
}

TEST(OciErrorsTest, OtherErrorsKeepTheirText) {
  // Unavailable for a reason of the registry's own: the client may read it.
  Error gc(Errc::Unavailable, "blob sha256:abc was garbage-collected meanwhile: retry");
  EXPECT_EQ(from_error(gc).message, gc.message());
  EXPECT_STREQ(backend_unavailable_message("repository postgres/app: no such tag"), nullptr);
  EXPECT_STREQ(backend_unavailable_message("upstream docker.io: 503 from the registry"), nullptr);
  // Another code is not an outage, whatever the text.
  Error conflict(Errc::Conflict, "postgres: duplicate key value (SQLSTATE 23505)");
  EXPECT_EQ(from_error(conflict).message, conflict.message());
  // The store's other beginnings.
  EXPECT_STREQ(backend_unavailable_message("sqlite: database is locked"), kStoreUnavailableMessage);
  EXPECT_STREQ(backend_unavailable_message("x: open metadata store /var/lib/berth/berth.db: busy"),
               kStoreUnavailableMessage);
}

}  // namespace
}  // namespace berth::registry
