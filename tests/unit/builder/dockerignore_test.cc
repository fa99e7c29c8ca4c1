// SPDX-License-Identifier: Apache-2.0
// .dockerignore rules, path globs and path cleaning (pure).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "builder/dockerfile.h"

namespace berth::builder {
namespace {

using ::testing::HasSubstr;

DockerIgnore ignore(std::string_view text) {
  auto r = DockerIgnore::parse(text);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : DockerIgnore{};
}

bool match(std::string_view pattern, std::string_view path, bool double_star = false) {
  auto r = path_match(pattern, path, double_star);
  EXPECT_TRUE(r) << pattern << ": " << r.error().message();
  return r && *r;
}

TEST(DockerignoreCleanTest, CleansLikeGo) {
  EXPECT_EQ(clean_path(""), ".");
  EXPECT_EQ(clean_path("."), ".");
  EXPECT_EQ(clean_path("./a//b/"), "a/b");
  EXPECT_EQ(clean_path("a/./b/../c"), "a/c");
  EXPECT_EQ(clean_path("/abs/path"), "abs/path");
  EXPECT_EQ(clean_path("/../x"), "x");
  EXPECT_EQ(clean_path("../x"), "../x");
  EXPECT_EQ(clean_path("a/../../b"), "../b");
  EXPECT_EQ(clean_path("/"), ".");
}

TEST(DockerignorePathMatchTest, GoFilepathMatch) {
  EXPECT_TRUE(match("*.go", "main.go"));
  EXPECT_FALSE(match("*.go", "cmd/main.go"));  // '*' stops at '/'
  EXPECT_TRUE(match("*/*.go", "cmd/main.go"));
  EXPECT_TRUE(match("a?c", "abc"));
  EXPECT_FALSE(match("a?c", "a/c"));
  EXPECT_TRUE(match("[a-c]x", "bx"));
  EXPECT_FALSE(match("[a-c]x", "dx"));
  EXPECT_TRUE(match("[^a-c]x", "dx"));
  EXPECT_FALSE(match("[^a-c]x", "ax"));
  EXPECT_TRUE(match("[]]", "]"));
  EXPECT_TRUE(match("\\*", "*"));
  EXPECT_FALSE(match("\\*", "x"));
  EXPECT_TRUE(match("**", "x"));  // without double_star, "**" is just '*' twice
  EXPECT_FALSE(match("**", "x/y"));
  EXPECT_TRUE(match("", ""));
}

TEST(DockerignorePathMatchTest, DoubleStar) {
  EXPECT_TRUE(match("**/*.go", "main.go", true));
  EXPECT_TRUE(match("**/*.go", "a/b/main.go", true));
  EXPECT_TRUE(match("a/**/b", "a/b", true));
  EXPECT_TRUE(match("a/**/b", "a/x/y/b", true));
  EXPECT_FALSE(match("a/**/b", "a/xb", true));
  EXPECT_TRUE(match("a/**", "a/x/y", true));
  EXPECT_FALSE(match("a/**", "a", true));
  EXPECT_TRUE(match("**", "anything/at/all", true));
}

TEST(DockerignorePathMatchTest, BadPatterns) {
  auto r = path_match("[abc", "a");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("unterminated [ character class"));
  EXPECT_FALSE(path_match("abc\\", "abc"));
  EXPECT_FALSE(path_match("[z-a]", "b"));
}

TEST(DockerignoreTest, CommentsBlankLinesAndTrimming) {
  DockerIgnore di = ignore(
      "# build output\n"
      "\n"
      "   node_modules   \n"
      "*.log\r\n"
      " # not a comment: '#' only counts in the first column\n");
  ASSERT_EQ(di.rules().size(), 3u);
  EXPECT_EQ(di.rules()[0].pattern, "node_modules");
  EXPECT_EQ(di.rules()[0].line, 3);
  EXPECT_EQ(di.rules()[1].pattern, "*.log");
  EXPECT_EQ(di.rules()[2].pattern, "# not a comment: '#' only counts in the first column");
  EXPECT_TRUE(di.excluded("node_modules"));
  EXPECT_TRUE(di.excluded("node_modules/left-pad/index.js"));  // a parent dir matches
  EXPECT_TRUE(di.excluded("debug.log"));
  EXPECT_FALSE(di.excluded("logs/debug.log"));  // '*' does not cross '/'
  EXPECT_FALSE(di.excluded("src/node_modules"));
  EXPECT_FALSE(di.excluded("main.go"));
}

TEST(DockerignoreTest, EmptyFileExcludesNothing) {
  DockerIgnore di = ignore("");
  EXPECT_TRUE(di.empty());
  EXPECT_FALSE(di.excluded("anything"));
}

TEST(DockerignoreTest, ExceptionsAndLastRuleWins) {
  DockerIgnore di = ignore("*.md\n!README.md\nREADME-secret.md\n");
  EXPECT_TRUE(di.excluded("CHANGELOG.md"));
  EXPECT_FALSE(di.excluded("README.md"));
  EXPECT_TRUE(di.excluded("README-secret.md"));

  // Order matters: a later exclusion beats an earlier exception.
  DockerIgnore later = ignore("!README.md\n*.md\n");
  EXPECT_TRUE(later.excluded("README.md"));
  EXPECT_TRUE(later.rules()[0].exception);
  EXPECT_EQ(later.rules()[0].pattern, "README.md");
}

TEST(DockerignoreTest, DoubleStarAnyDepth) {
  DockerIgnore di = ignore("**/*.pyc\n**/__pycache__\n");
  EXPECT_TRUE(di.excluded("x.pyc"));
  EXPECT_TRUE(di.excluded("a/b/c/x.pyc"));
  EXPECT_TRUE(di.excluded("pkg/__pycache__"));
  EXPECT_TRUE(di.excluded("pkg/__pycache__/mod.cpython-311.pyc"));
  EXPECT_TRUE(di.excluded("pkg/__pycache__/data.txt"));
  EXPECT_FALSE(di.excluded("pkg/mod.py"));
}

TEST(DockerignoreTest, LeadingSlashAndDotDotAreCleaned) {
  DockerIgnore di = ignore("/secrets\n./build/../dist\n!/secrets/public.pem\n");
  EXPECT_EQ(di.rules()[0].pattern, "secrets");
  EXPECT_EQ(di.rules()[1].pattern, "dist");
  EXPECT_EQ(di.rules()[2].pattern, "secrets/public.pem");
  EXPECT_TRUE(di.excluded("secrets/key.pem"));
  EXPECT_FALSE(di.excluded("secrets/public.pem"));
  EXPECT_TRUE(di.excluded("dist/app.js"));
  EXPECT_FALSE(di.excluded("build/app.js"));
  // The path asked about is cleaned too.
  EXPECT_TRUE(di.excluded("./secrets//key.pem"));
  EXPECT_TRUE(di.excluded("/dist"));
  EXPECT_FALSE(di.excluded("."));
  EXPECT_FALSE(di.excluded(""));
}

TEST(DockerignoreTest, ExcludeEverythingButSome) {
  // A common pattern: ignore everything, then re-include what the build needs.
  DockerIgnore di = ignore("*\n!src\n!package.json\nsrc/**/*.test.js\n");
  EXPECT_TRUE(di.excluded("README.md"));
  EXPECT_TRUE(di.excluded("node_modules/x/index.js"));
  EXPECT_FALSE(di.excluded("package.json"));
  EXPECT_FALSE(di.excluded("src"));
  EXPECT_FALSE(di.excluded("src/app/index.js"));
  EXPECT_TRUE(di.excluded("src/app/index.test.js"));
  EXPECT_TRUE(di.excluded("src/index.test.js"));
}

TEST(DockerignoreTest, ExceptionInsideExcludedDirectory) {
  DockerIgnore di = ignore("docs\n!docs/api/*.yaml\n");
  EXPECT_TRUE(di.excluded("docs"));
  EXPECT_TRUE(di.excluded("docs/index.md"));
  EXPECT_TRUE(di.excluded("docs/api"));
  EXPECT_FALSE(di.excluded("docs/api/openapi.yaml"));
  EXPECT_TRUE(di.excluded("docs/api/openapi.json"));
  // The walker may not prune docs/ or docs/api/: an exception reaches below them.
  EXPECT_TRUE(di.may_reinclude_below("docs"));
  EXPECT_TRUE(di.may_reinclude_below("docs/api"));
  EXPECT_FALSE(di.may_reinclude_below("docs/guide"));
  EXPECT_FALSE(di.may_reinclude_below("docs/api/v1"));
  EXPECT_FALSE(di.may_reinclude_below("other"));
}

TEST(DockerignoreTest, MayReincludeBelow) {
  EXPECT_FALSE(ignore("build\n").may_reinclude_below("build"));  // no exceptions at all
  DockerIgnore star = ignore("vendor\n!**/LICENSE\n");
  EXPECT_TRUE(star.may_reinclude_below("vendor"));
  EXPECT_TRUE(star.may_reinclude_below("vendor/a/b"));
  DockerIgnore glob = ignore("*\n!*/keep/*\n");
  EXPECT_TRUE(glob.may_reinclude_below("x"));
  EXPECT_TRUE(glob.may_reinclude_below("x/keep"));
  EXPECT_FALSE(glob.may_reinclude_below("x/other"));
  EXPECT_TRUE(glob.may_reinclude_below("."));  // the root: anything may be re-included
  // An exception for the directory itself (or a parent) does not reach *below* it.
  EXPECT_FALSE(ignore("a/b\n!a\n").may_reinclude_below("a/b"));
}

TEST(DockerignoreTest, BadPatternHasItsLine) {
  auto r = DockerIgnore::parse("ok\n# fine\n\nbad[\n", ".dockerignore");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(r.error().message(),
            ".dockerignore:4: bad pattern \"bad[\": unterminated [ character class");
}

TEST(DockerignoreTest, LoneBangAndByteOrderMark) {
  DockerIgnore di = ignore("\xEF\xBB\xBF*.tmp\n!\n!  \n");
  ASSERT_EQ(di.rules().size(), 1u);
  EXPECT_TRUE(di.excluded("a.tmp"));
}

TEST(DockerignoreTest, FromPatternsForCopyExclude) {
  auto r = DockerIgnore::from_patterns({"*.md", "!KEEP.md", "tmp/"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->excluded("a.md"));
  EXPECT_FALSE(r->excluded("KEEP.md"));
  EXPECT_TRUE(r->excluded("tmp/x"));
  EXPECT_EQ(r->rules()[2].pattern, "tmp");
  EXPECT_EQ(r->rules()[2].line, 3);
}

}  // namespace
}  // namespace berth::builder
