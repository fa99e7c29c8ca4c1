// SPDX-License-Identifier: Apache-2.0
#include "tls/cert_index.h"

#include <gtest/gtest.h>

namespace berth::tls::detail {
namespace {

TEST(CertIndexTest, ExactThenWildcardThenFirst) {
  CertIndex idx({{"default.test"}, {"*.example.com"}, {"www.example.com", "example.com"}});
  EXPECT_EQ(idx.pick("www.example.com"), 2u);   // exact beats the wildcard
  EXPECT_EQ(idx.pick("WWW.Example.COM."), 2u);  // any case, a trailing dot
  EXPECT_EQ(idx.pick("example.com"), 2u);
  EXPECT_EQ(idx.pick("api.example.com"), 1u);  // the wildcard
  EXPECT_EQ(idx.pick("a.b.example.com"), 0u);  // a wildcard covers one label only
  EXPECT_EQ(idx.pick("other.test"), 0u);       // unknown: the first certificate
  EXPECT_EQ(idx.pick(""), 0u);                 // no SNI
}

TEST(CertIndexTest, EmptyPicksNothing) {
  CertIndex idx;
  EXPECT_FALSE(idx.pick("example.com").has_value());
  CertIndex none(std::vector<std::vector<std::string>>{});
  EXPECT_FALSE(none.pick("").has_value());
}

TEST(CertIndexTest, FirstCertificateKeepsADuplicatedName) {
  CertIndex idx({{"a.test"}, {"b.test", "a.test"}});
  EXPECT_EQ(idx.pick("a.test"), 0u);
  EXPECT_EQ(idx.pick("b.test"), 1u);
}

TEST(CertNameTest, ChecksNames) {
  EXPECT_FALSE(check_cert_name("example.com"));
  EXPECT_FALSE(check_cert_name("*.preview.example.com"));
  EXPECT_FALSE(check_cert_name("localhost"));
  EXPECT_TRUE(check_cert_name(""));
  EXPECT_TRUE(check_cert_name("Example.com"));
  EXPECT_TRUE(check_cert_name("a..b"));
  EXPECT_TRUE(check_cert_name("*.com"));
  EXPECT_TRUE(check_cert_name("a.*.com"));
  EXPECT_TRUE(check_cert_name("a b.com"));
}

}  // namespace
}  // namespace berth::tls::detail
