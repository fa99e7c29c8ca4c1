// SPDX-License-Identifier: Apache-2.0
// The S3 client's pure parts: presigned URLs (AWS's published example), S3's URI encoding, and
// the XML of S3's answers. The requests themselves are tested against RGW
// (tests/integration/s3_client_test.cc).
#include "storage/s3.h"

#include <gtest/gtest.h>

#include "storage/s3_xml.h"

namespace berth::storage {
namespace {

TEST(S3PresignTest, MatchesAwsExample) {
  // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", the example
  // GET of examplebucket/test.txt at 20130524T000000Z valid for 86400 s.
  S3Options o;
  o.endpoint = "https://s3.amazonaws.com";
  o.region = "us-east-1";
  o.bucket = "examplebucket";
  o.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  o.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  o.path_style = false;
  S3Client c(o);
  std::string url = c.presign_get("test.txt", std::chrono::seconds(86400), 1369353600);
  EXPECT_EQ(url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(S3PresignTest, PathStyleKeepsPortAndEncodesKey) {
  S3Options o;
  o.endpoint = "http://127.0.0.1:7480/";
  o.bucket = "berth";
  o.access_key_id = "AK";
  o.secret_access_key = "SK";
  S3Client c(o);
  std::string url = c.presign_get("blobs/a b+c", std::chrono::seconds(60), 1369353600);
  EXPECT_EQ(url.rfind("http://127.0.0.1:7480/berth/blobs/a%20b%2Bc?X-Amz-Algorithm=", 0), 0u)
      << url;
  // At most SigV4's 7 days, whatever was asked.
  EXPECT_NE(c.presign_get("k", std::chrono::hours(24 * 30), 0).find("X-Amz-Expires=604800&"),
            std::string::npos);
}

TEST(S3UriEncodeTest, OnlyUnreservedStay) {
  EXPECT_EQ(s3_uri_encode("aZ09-_.~", false), "aZ09-_.~");
  EXPECT_EQ(s3_uri_encode("a/b c=d&e", false), "a%2Fb%20c%3Dd%26e");
  EXPECT_EQ(s3_uri_encode("a/b", true), "a/b");
  EXPECT_EQ(s3_uri_encode("\xc3\xa9", true), "%C3%A9");
}

TEST(S3XmlTest, ParsesListingWithNamespaceAndEntities) {
  auto doc = parse_xml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
      "<IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key><Size>6</Size>"
      "<ETag>&quot;e1&quot;</ETag></Contents><Contents><Key>c</Key></Contents>"
      "<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>");
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ(doc->name, "ListBucketResult");
  EXPECT_EQ(doc->child_text("IsTruncated"), "true");
  EXPECT_EQ(doc->child_text("NextContinuationToken"), "tok/+=");
  ASSERT_EQ(doc->children.size(), 5u);
  EXPECT_EQ(doc->children[2].child_text("Key"), "a&b");
  EXPECT_EQ(doc->children[2].child_text("ETag"), "\"e1\"");
  EXPECT_EQ(doc->child_text("Missing"), "");
}

TEST(S3XmlTest, RefusesMalformedAndTooDeep) {
  EXPECT_FALSE(parse_xml("<a><b></a>"));
  EXPECT_FALSE(parse_xml(""));
  EXPECT_FALSE(parse_xml("not xml"));
  std::string deep;
  for (int i = 0; i < 40; ++i) {
    deep += "<a>";
  }
  for (int i = 0; i < 40; ++i) {
    deep += "</a>";
  }
  auto r = parse_xml(deep);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("deeper"), std::string::npos);
  // S3 never sends a DTD, and entities that expand are an attack: any DOCTYPE is refused.
  auto dtd = parse_xml("<!DOCTYPE a [<!ENTITY x \"xx\">]><a>&x;</a>");
  ASSERT_FALSE(dtd);
  EXPECT_NE(dtd.error().message().find("DOCTYPE"), std::string::npos);
}

TEST(S3XmlTest, Iso8601) {
  EXPECT_EQ(parse_iso8601("2013-05-24T00:00:00.000Z"), 1369353600);
  EXPECT_EQ(parse_iso8601("2013-05-24T00:00:00Z"), 1369353600);
  EXPECT_EQ(parse_iso8601("yesterday"), 0);
}

}  // namespace
}  // namespace berth::storage
