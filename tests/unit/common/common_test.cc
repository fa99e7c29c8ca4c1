// SPDX-License-Identifier: Apache-2.0
// common/: Result and BERTH_TRY, SHA-256, percent-encoding, atomic files, UUIDs, JSON parsing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <string>

#include "common/fs.h"
#include "common/json.h"
#include "common/result.h"
#include "common/sha256.h"
#include "common/url.h"
#include "support/harness.h"

namespace berth {
namespace {

using ::testing::HasSubstr;

// ---- Result / Status / BERTH_TRY ------------------------------------------------------------

Result<int> parse_positive(int v) {
  if (v <= 0) {
    return Error(Errc::InvalidArgument, "not positive: " + std::to_string(v));
  }
  return v;
}

Status check_positive(int v) {
  BERTH_TRY(parse_positive(v));
  return ok();
}

Result<int> doubled(int v, int* reached) {
  BERTH_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *reached = 1;
  return 2 * x;
}

Result<std::string> with_context(int v) {
  auto r = parse_positive(v);
  if (!r) {
    return std::move(r).error().with_context("step " + std::to_string(v));
  }
  return std::string("fine");
}

TEST(ResultTest, ValueAndError) {
  Result<int> good = 5;
  ASSERT_TRUE(good.has_value());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(good.value(), 5);
  EXPECT_EQ(*good, 5);
  EXPECT_EQ(good.value_or(7), 5);

  Result<int> bad = Error(Errc::NotFound, "missing");
  ASSERT_FALSE(bad.has_value());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code(), Errc::NotFound);
  EXPECT_EQ(bad.error().message(), "missing");
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(ResultTest, DefaultConstructedIsInternalError) {
  Result<int> r;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Internal);
  Status s;
  EXPECT_TRUE(s);
}

TEST(ResultTest, ArrowAndMoveOnlyValues) {
  Result<std::string> s = std::string("hello");
  EXPECT_EQ(s->size(), 5u);
  Result<std::unique_ptr<int>> p = std::make_unique<int>(3);
  ASSERT_TRUE(p);
  std::unique_ptr<int> taken = std::move(p).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 3);
}

TEST(ResultTest, TryPropagatesError) {
  EXPECT_TRUE(check_positive(3));
  auto st = check_positive(-2);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(st.error().message(), "not positive: -2");
}

TEST(ResultTest, AssignOrReturn) {
  int reached = 0;
  auto good = doubled(4, &reached);
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 8);
  EXPECT_EQ(reached, 1);
  reached = 0;
  auto bad = doubled(0, &reached);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(reached, 0);  // returned before the rest ran
}

TEST(ResultTest, WithContextPrefixes) {
  auto r = with_context(-1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "step -1: not positive: -1");
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  Error e(Errc::NotFound, "blob unknown");
  Error wrapped = e.with_context("pull web/app");
  EXPECT_EQ(wrapped.message(), "pull web/app: blob unknown");
  EXPECT_EQ(e.message(), "blob unknown");  // the const& overload copies
}

TEST(ResultTest, ErrcNames) {
  EXPECT_STREQ(errc_name(Errc::Ok), "ok");
  EXPECT_STREQ(errc_name(Errc::NotFound), "not_found");
  EXPECT_STREQ(errc_name(Errc::InvalidArgument), "invalid_argument");
  EXPECT_STREQ(errc_name(Errc::PermissionDenied), "permission_denied");
  // Every code has a distinct name.
  std::set<std::string> names;
  for (int c = static_cast<int>(Errc::Ok); c <= static_cast<int>(Errc::Internal); ++c) {
    names.insert(errc_name(static_cast<Errc>(c)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Errc::Internal) + 1);
}

// ---- Sha256 ---------------------------------------------------------------------------------

constexpr const char* kEmptySha =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAbcSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256::hex_of(""), kEmptySha);
  EXPECT_EQ(Sha256::hex_of("abc"), kAbcSha);
  EXPECT_EQ(Sha256::hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256().hex(), kEmptySha);
}

TEST(Sha256Test, StreamingEqualsOneShot) {
  Sha256 h;
  h.update("a");
  h.update(std::string_view("bc"));
  EXPECT_EQ(h.hex(), kAbcSha);
  // hex() does not finalize: the hasher keeps going.
  h.update("d");
  EXPECT_EQ(h.hex(), Sha256::hex_of("abcd"));
}

TEST(Sha256Test, CopyForksState) {
  Sha256 h;
  h.update("ab");
  Sha256 fork = h;
  fork.update("c");
  h.update("x");
  EXPECT_EQ(fork.hex(), kAbcSha);
  EXPECT_EQ(h.hex(), Sha256::hex_of("abx"));
  Sha256 assigned;
  assigned = fork;
  EXPECT_EQ(assigned.hex(), kAbcSha);
  Sha256 moved = std::move(fork);
  EXPECT_EQ(moved.hex(), kAbcSha);
}

TEST(Sha256Test, LargeInputInChunks) {
  std::string big(1 << 20, 'x');
  Sha256 h;
  for (size_t off = 0; off < big.size(); off += 4093) {
    h.update(std::string_view(big).substr(off, 4093));
  }
  EXPECT_EQ(h.hex(), Sha256::hex_of(big));
}

// ---- url ------------------------------------------------------------------------------------

TEST(UrlTest, DecodeEscapes) {
  EXPECT_EQ(url::decode("a%20b", false), "a b");
  EXPECT_EQ(url::decode("web%2Fapp", false), "web/app");
  EXPECT_EQ(url::decode("web%2fapp", false), "web/app");
  EXPECT_EQ(url::decode("sha256%3Aabc", false), "sha256:abc");
  EXPECT_EQ(url::decode("", false), "");
  EXPECT_EQ(url::decode("plain", false), "plain");
  EXPECT_EQ(url::decode("%41", false), "A");
  EXPECT_EQ(url::decode("%00", false), std::string(1, '\0'));
  EXPECT_EQ(url::decode("%ff", false), std::string(1, '\xff'));
}

TEST(UrlTest, DecodePlus) {
  EXPECT_EQ(url::decode("a+b", true), "a b");
  EXPECT_EQ(url::decode("a+b", false), "a+b");
  EXPECT_EQ(url::decode("a%2Bb", true), "a+b");
}

TEST(UrlTest, DecodeRejectsMalformedEscapes) {
  for (const char* in : {"%", "%2", "a%", "a%2", "%zz", "%2g", "%g2", "100%", "%%", "% 2"}) {
    EXPECT_EQ(url::decode(in, false), std::nullopt) << in;
    EXPECT_EQ(url::decode(in, true), std::nullopt) << in;
  }
}

TEST(UrlTest, Encode) {
  EXPECT_EQ(url::encode("web/app:v1"), "web/app:v1");
  EXPECT_EQ(url::encode("a b"), "a%20b");
  EXPECT_EQ(url::encode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(url::encode("a+b&c=d?e#f%"), "a%2Bb%26c%3Dd%3Fe%23f%25");
  EXPECT_EQ(url::encode(std::string("\xff\x01", 2)), "%FF%01");
  EXPECT_EQ(url::encode(""), "");
}

TEST(UrlTest, RoundTrip) {
  std::string all;
  for (int c = 0; c < 256; ++c) {
    all.push_back(static_cast<char>(c));
  }
  auto back = url::decode(url::encode(all), false);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
  auto back_plus = url::decode(url::encode("a+b c"), true);
  ASSERT_TRUE(back_plus.has_value());
  EXPECT_EQ(*back_plus, "a+b c");
}

// ---- fs -------------------------------------------------------------------------------------

TEST(FsTest, WriteAtomicThenReadFile) {
  test::TempDir dir;
  std::string path = dir / "state.json";
  std::string bytes("{\"a\":1}\n\0binary\xff", 16);
  ASSERT_TRUE(fs::write_atomic(path, bytes));
  auto got = fs::read_file(path);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, bytes);
  // Replacing keeps exactly the new content, and no temp files are left behind.
  ASSERT_TRUE(fs::write_atomic(path, "short"));
  EXPECT_EQ(*fs::read_file(path), "short");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(FsTest, WriteAtomicEmptyAndMode) {
  test::TempDir dir;
  std::string path = dir / "empty";
  ASSERT_TRUE(fs::write_atomic(path, "", 0600));
  auto got = fs::read_file(path);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FsTest, WriteAtomicIntoMissingDirectoryFails) {
  test::TempDir dir;
  auto st = fs::write_atomic(dir / "no/such/dir/file", "x");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::NotFound);
}

TEST(FsTest, ReadMissingFileIsNotFound) {
  test::TempDir dir;
  auto got = fs::read_file(dir / "missing");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::NotFound);
  EXPECT_THAT(got.error().message(), HasSubstr("missing"));
}

TEST(FsTest, MakeDirs) {
  test::TempDir dir;
  std::string deep = dir / "a/b/c";
  ASSERT_TRUE(fs::make_dirs(deep));
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  EXPECT_TRUE(fs::make_dirs(deep));  // idempotent
  test::write_file(dir / "file", "x");
  auto st = fs::make_dirs(dir / "file/sub");
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("file/sub"));
}

TEST(FsTest, RandomHex) {
  std::string h = fs::random_hex(16);
  EXPECT_EQ(h.size(), 32u);
  EXPECT_TRUE(std::regex_match(h, std::regex("[0-9a-f]{32}"))) << h;
  EXPECT_NE(fs::random_hex(16), h);
  EXPECT_EQ(fs::random_hex(0), "");
}

TEST(FsTest, RandomUuidFormat) {
  const std::regex v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string u = fs::random_uuid();
    ASSERT_EQ(u.size(), 36u) << u;
    ASSERT_TRUE(std::regex_match(u, v4)) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 200u);
}

// ---- json -----------------------------------------------------------------------------------

TEST(JsonTest, ParseJsonNeverThrows) {
  auto good = parse_json(R"({"a":[1,2]})");
  ASSERT_TRUE(good);
  EXPECT_EQ((*good)["a"][1], 2);
  auto bad = parse_json("{\"a\":", "manifest");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("manifest"));
}

}  // namespace
}  // namespace berth
