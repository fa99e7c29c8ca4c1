// SPDX-License-Identifier: Apache-2.0
// A service spec's confinement fields (seccomp, pids_limit, read_only): parsing, errors, the
// stored form, and what the runtime gets from them.
#include <gtest/gtest.h>

#include "deploy/deploy.h"
#include "runtime/runtime.h"
#include "support/harness.h"

namespace berth::deploy {
namespace {

Result<ServiceSpec> parse_spec(const std::string& json, ServiceSpec base = {}) {
  return spec_from_request(Json::parse(json), std::move(base));
}

TEST(ServiceConfinement, DefaultsAreTheRuntimes) {
  auto s = parse_spec(R"({"image":"web/app"})");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->seccomp, "default");
  EXPECT_EQ(s->pids_limit, runtime::Confinement::kDefaultPidsLimit);
  EXPECT_FALSE(s->read_only);
  auto c = confinement_of(*s);
  EXPECT_TRUE(c.seccomp);
  EXPECT_EQ(c.pids_limit, 1024);
  EXPECT_FALSE(c.read_only_rootfs);
}

TEST(ServiceConfinement, FieldsParseAndReachTheRuntime) {
  auto s =
      parse_spec(R"({"image":"web/app","seccomp":"unconfined","pids_limit":64,"read_only":true})");
  ASSERT_TRUE(s) << s.error().message();
  auto c = confinement_of(*s);
  EXPECT_FALSE(c.seccomp);
  EXPECT_EQ(c.pids_limit, 64);
  EXPECT_TRUE(c.read_only_rootfs);
  auto none = parse_spec(R"({"pids_limit":0})", *s);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(confinement_of(*none).pids_limit, 0);
}

TEST(ServiceConfinement, ErrorsNameTheField) {
  for (const char* json :
       {R"({"image":"web/app","seccomp":"off"})", R"({"image":"web/app","seccomp":true})",
        R"({"image":"web/app","pids_limit":8})", R"({"image":"web/app","pids_limit":-1})",
        R"({"image":"web/app","pids_limit":"many"})", R"({"image":"web/app","read_only":"yes"})"}) {
    auto s = parse_spec(json);
    ASSERT_FALSE(s) << json;
    EXPECT_EQ(s.error().code(), Errc::InvalidArgument) << json;
    std::string field;  // the one that is not "image"
    Json body = Json::parse(json);
    for (const auto& item : body.items()) {
      if (item.key() != "image") {
        field = item.key();
      }
    }
    EXPECT_EQ(s.error().message().rfind(field + ":", 0), 0u)
        << json << " -> " << s.error().message();
  }
}

TEST(ServiceConfinement, StoredFormKeepsThemAndOldSpecsGetTheDefaults) {
  test::TempDir dir;
  auto box = SecretBox::load_or_create(dir / "secrets.key");
  ASSERT_TRUE(box);
  auto s =
      parse_spec(R"({"image":"web/app","seccomp":"unconfined","pids_limit":99,"read_only":true})");
  ASSERT_TRUE(s);
  auto back = spec_from_store(spec_to_store(*s, **box), **box);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->seccomp, "unconfined");
  EXPECT_EQ(back->pids_limit, 99);
  EXPECT_TRUE(back->read_only);
  // A spec stored before these fields existed.
  auto old = spec_from_store(R"({"image":"web/app:latest","port":8080})", **box);
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ(old->seccomp, "default");
  EXPECT_EQ(old->pids_limit, 1024);
  EXPECT_FALSE(old->read_only);
  EXPECT_EQ(spec_to_view(*s)["seccomp"], "unconfined");
}

}  // namespace
}  // namespace berth::deploy
