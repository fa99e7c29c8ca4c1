// SPDX-License-Identifier: Apache-2.0
// Console sessions, one-time codes, the cookie parser and the file server's path rules.
#include "console/console.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace berth::console {
namespace {

TEST(ConsoleSessions, CreateFindRemove) {
  Sessions s(std::chrono::seconds(3600));
  auto [id, session] = s.create("user/admin");
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(session.csrf_token.size(), 64u);
  EXPECT_NE(id, session.csrf_token);
  auto found = s.find(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->principal, "user/admin");
  EXPECT_FALSE(s.find(id + "x"));
  EXPECT_FALSE(s.find(""));
  s.remove(id);
  EXPECT_FALSE(s.find(id));
}

TEST(ConsoleSessions, ExpiredSessionsAreGone) {
  Sessions s(std::chrono::seconds(0));
  auto [id, session] = s.create("user/admin");
  EXPECT_FALSE(s.find(id));
}

TEST(ConsoleSessions, TheCapDropsTheOldest) {
  Sessions s(std::chrono::seconds(3600), 2);
  auto a = s.create("user/a").first;
  auto b = s.create("user/b").first;
  auto c = s.create("user/c").first;
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.find(c));
  EXPECT_TRUE(s.find(a) || s.find(b));
}

TEST(ConsoleSessions, CodesWorkOnceAndCarryTheirKey) {
  Sessions s(std::chrono::seconds(3600));
  auto code = s.create_code("user/ci", "BKEY", std::chrono::seconds(60));
  auto who = s.redeem_code(code);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->first, "user/ci");
  EXPECT_EQ(who->second, "BKEY");
  EXPECT_FALSE(s.redeem_code(code));
  EXPECT_FALSE(s.redeem_code(""));
  auto stale = s.create_code("user/ci", "BKEY", std::chrono::seconds(0));
  EXPECT_FALSE(s.redeem_code(stale));
}

TEST(ConsoleSessions, OnePrincipalSigningInInALoopCannotSignOthersOut) {
  Sessions s(std::chrono::seconds(3600), 30);
  auto alice = s.create("user/alice").first;
  std::vector<std::string> mallory;
  for (int i = 0; i < 100; ++i) {
    mallory.push_back(s.create("user/mallory").first);
  }
  EXPECT_TRUE(s.find(alice));
  EXPECT_EQ(s.size(), 1 + Sessions::kPerPrincipal);
  EXPECT_FALSE(s.find(mallory.front()));  // mallory's oldest went, not alice's
  EXPECT_TRUE(s.find(mallory.back()));
}

TEST(ConsoleCookies, ValueByName) {
  EXPECT_EQ(cookie_value("berth_session=abc", kCookie), "abc");
  EXPECT_EQ(cookie_value("a=1; berth_session=abc; b=2", kCookie), "abc");
  EXPECT_EQ(cookie_value("xberth_session=abc", kCookie), std::nullopt);
  EXPECT_EQ(cookie_value("a=1;b=2", kCookie), std::nullopt);
  EXPECT_EQ(cookie_value("", kCookie), std::nullopt);
  std::string c = session_cookie("abc", std::chrono::seconds(60), true);
  EXPECT_NE(c.find("HttpOnly"), std::string::npos);
  EXPECT_NE(c.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(c.find("Secure"), std::string::npos);
  EXPECT_NE(c.find("Max-Age=60"), std::string::npos);
  EXPECT_NE(clear_cookie(false).find("Max-Age=0"), std::string::npos);
}

TEST(ConsoleFiles, DevDirectoryNeverLeavesItself) {
  ::setenv("BERTH_CONSOLE_DIR", BERTH_SOURCE_DIR "/src/console/web", 1);
  auto ok = serve("/console/app.js", bhttp::verb::get, "");
  EXPECT_EQ(ok.status, 200u);
  // Files outside web/ are never read: a file type of the console's is refused, any other
  // path is a page (index.html).
  for (const char* p : {"/console/../../CMakeLists.js", "/console/pages/../../embed.css",
                        "/console//etc/passwd.js", "/console/a\\b.js"}) {
    EXPECT_EQ(serve(p, bhttp::verb::get, "").status, 404u) << p;
  }
  auto index = serve("/console/", bhttp::verb::get, "");
  auto outside = serve("/console/../console.h", bhttp::verb::get, "");
  EXPECT_EQ(outside.body, index.body);
  EXPECT_EQ(outside.body.find("#pragma once"), std::string::npos);
  ::unsetenv("BERTH_CONSOLE_DIR");
  auto embedded = serve("/console/app.js", bhttp::verb::get, "");
  EXPECT_EQ(embedded.status, 200u);
  EXPECT_EQ(embedded.body, ok.body) << "the embedded copy is stale: rebuild";
  auto head = serve("/console/app.js", bhttp::verb::head, "");
  EXPECT_TRUE(head.head_only);
  EXPECT_EQ(head.content_length, ok.body.size());
}

}  // namespace
}  // namespace berth::console
