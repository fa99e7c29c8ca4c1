// SPDX-License-Identifier: Apache-2.0
// Runtime pieces that need no container: layer unpacking (safety, whiteouts, compression),
// platform selection, log sinks, exit descriptions.
#include "runtime/runtime.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/json.h"
#include "oci/oci.h"
#include "support/harness.h"

namespace berth::runtime {
namespace {

using test::TempDir;

struct TarEntry {
  std::string path;
  char type = 'f';   // f file, d dir, l symlink, h hardlink, c char device
  std::string data;  // file content or link target
  int mode = 0644;
};

enum class Filter { None, Gzip, Zstd };

std::string make_tar(const std::vector<TarEntry>& entries, Filter filter) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter == Filter::Gzip) {
    archive_write_add_filter_gzip(a);
  } else if (filter == Filter::Zstd) {
    archive_write_add_filter_zstd(a);
  }
  std::vector<char> buf(1 << 20);
  size_t used = 0;
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  for (const auto& e : entries) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.path.c_str());
    archive_entry_set_perm(en, e.mode);
    archive_entry_set_mtime(en, 1700000000, 0);
    switch (e.type) {
      case 'd':
        archive_entry_set_filetype(en, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(en, AE_IFLNK);
        archive_entry_set_symlink(en, e.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_hardlink(en, e.data.c_str());
        break;
      case 'c':
        archive_entry_set_filetype(en, AE_IFCHR);
        archive_entry_set_rdev(en, makedev(1, 3));
        break;
      default:
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_size(en, static_cast<la_int64_t>(e.data.size()));
    }
    archive_write_header(a, en);
    if (e.type == 'f') {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(en);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

const char* layer_media_type(Filter f) {
  switch (f) {
    case Filter::Gzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Filter::Zstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    default:
      return "application/vnd.oci.image.layer.v1.tar";
  }
}

// An ImageSource over files in a temp dir and manifests in memory.
class FakeSource : public ImageSource {
 public:
  explicit FakeSource(std::string dir) : dir_(std::move(dir)) {}

  Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                       const std::string& digest) override {
    auto it = manifests_.find(digest);
    if (it == manifests_.end()) {
      return Error(Errc::NotFound, "manifest unknown " + digest);
    }
    return it->second;
  }
  Result<std::string> blob_path(const std::string& digest) override {
    ++blob_reads;
    std::string p = dir_ + "/" + digest;
    if (!std::filesystem::exists(p)) {
      return Error(Errc::NotFound, "blob unknown " + digest);
    }
    return p;
  }

  std::string add_blob(const std::string& bytes) {
    std::string d = oci::Digest::sha256_of(bytes).str();
    std::ofstream(dir_ + "/" + d, std::ios::binary) << bytes;
    return d;
  }
  std::string add_manifest(const std::string& bytes, const std::string& mt) {
    std::string d = oci::Digest::sha256_of(bytes).str();
    manifests_[d] = {bytes, mt};
    return d;
  }

  // An image manifest over layers (each a tar with its filter) with a config for os/arch.
  std::string add_image(const std::vector<std::pair<std::string, Filter>>& layers,
                        const std::string& arch = "amd64", Json config = Json::object()) {
    Json cfg = Json::object();
    cfg["os"] = "linux";
    cfg["architecture"] = arch;
    cfg["config"] = config;
    std::string cfg_bytes = cfg.dump();
    Json m = Json::object();
    m["schemaVersion"] = 2;
    m["mediaType"] = std::string(oci::kOciManifest);
    Json c = Json::object();
    c["mediaType"] = "application/vnd.oci.image.config.v1+json";
    c["digest"] = add_blob(cfg_bytes);
    c["size"] = cfg_bytes.size();
    m["config"] = c;
    m["layers"] = Json::array();
    for (const auto& [tar, f] : layers) {
      Json l = Json::object();
      l["mediaType"] = layer_media_type(f);
      l["digest"] = add_blob(tar);
      l["size"] = tar.size();
      m["layers"].push_back(l);
    }
    return add_manifest(m.dump(), std::string(oci::kOciManifest));
  }

  std::string add_index(const std::vector<std::pair<std::string, std::string>>& entries) {
    Json idx = Json::object();
    idx["schemaVersion"] = 2;
    idx["mediaType"] = std::string(oci::kOciIndex);
    idx["manifests"] = Json::array();
    for (const auto& [digest, arch] : entries) {
      Json d = Json::object();
      d["mediaType"] = std::string(oci::kOciManifest);
      d["digest"] = digest;
      d["size"] = manifests_[digest].first.size();
      Json p = Json::object();
      p["os"] = "linux";
      p["architecture"] = arch;
      d["platform"] = p;
      idx["manifests"].push_back(d);
    }
    return add_manifest(idx.dump(), std::string(oci::kOciIndex));
  }

  std::atomic<int> blob_reads{0};

 private:
  std::string dir_;
  std::map<std::string, std::pair<std::string, std::string>> manifests_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class RuntimeLayerTest : public ::testing::Test {
 protected:
  TempDir blobs_;
  TempDir root_;
  FakeSource src_{blobs_.path()};
  ImagePreparer prep_{root_.path(), src_};

  Result<PreparedImage> prepare_one(const std::vector<TarEntry>& entries, Filter f = Filter::None) {
    std::string m = src_.add_image({{make_tar(entries, f), f}});
    return prep_.prepare("web/app", m);
  }
};

TEST_F(RuntimeLayerTest, UnpacksPlainGzipAndZstd) {
  for (Filter f : {Filter::None, Filter::Gzip, Filter::Zstd}) {
    std::string tag = std::to_string(static_cast<int>(f));
    auto img = prepare_one({{"./etc/", 'd', "", 0755},
                            {"etc/motd", 'f', "hello " + tag, 0640},
                            {"bin/tool", 'f', "#!x", 04755},
                            {"bin/alias", 'l', "tool"},
                            {"bin/abs", 'l', "/bin/tool"},
                            {"bin/hard", 'h', "bin/tool"}},
                           f);
    ASSERT_TRUE(img) << img.error().message();
    ASSERT_EQ(img->layer_dirs.size(), 1u);
    std::string dir = img->layer_dirs[0];
    EXPECT_EQ(slurp(dir + "/etc/motd"), "hello " + tag);
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/etc/motd").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_mtime, 1700000000);
    ASSERT_EQ(::stat((dir + "/bin/tool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
    EXPECT_EQ(st.st_nlink, 2u);  // bin/hard
    EXPECT_EQ(std::filesystem::read_symlink(dir + "/bin/alias"), "tool");
    EXPECT_EQ(std::filesystem::read_symlink(dir + "/bin/abs"), "/bin/tool");
    EXPECT_EQ(img->platform.str(), "linux/amd64");
  }
}

TEST_F(RuntimeLayerTest, RefusesUnsafeEntries) {
  TempDir outside;
  std::string victim = outside / "victim";
  struct Case {
    std::vector<TarEntry> entries;
    std::string entry;
    std::string why;
  };
  std::vector<Case> cases = {
      {{{"../evil", 'f', "x"}}, "../evil", "'..'"},
      {{{"a/../../evil", 'f', "x"}}, "a/../../evil", "'..'"},
      {{{"/etc/evil", 'f', "x"}}, "/etc/evil", "absolute"},
      // The link itself is fine (it resolves inside the container's root); writing through it
      // is not.
      {{{"a", 'd', ""}, {"a/link", 'l', "../../escape"}, {"a/link/f", 'f', "x"}},
       "a/link/f",
       "parent"},
      {{{"up", 'l', "../../../.."}, {"up/etc/evil", 'f', "x"}}, "up/etc/evil", "parent"},
      {{{"out", 'l', outside.path()}, {"out/victim", 'f', "pwned"}}, "out/victim", "parent"},
      {{{"h", 'h', "../etc/passwd"}}, "h", "escapes"},
      {{{"h", 'h', "nothing/here"}}, "h", "not inside the layer"},
  };
  for (const auto& c : cases) {
    std::string tar = make_tar(c.entries, Filter::None);
    std::string m = src_.add_image({{tar, Filter::None}});
    auto img = prep_.prepare("web/app", m);
    ASSERT_FALSE(img) << c.entry;
    EXPECT_EQ(img.error().code(), Errc::InvalidArgument) << img.error().message();
    std::string layer = oci::Digest::sha256_of(tar).str();
    EXPECT_NE(img.error().message().find("layer " + layer), std::string::npos)
        << img.error().message();
    EXPECT_NE(img.error().message().find("\"" + c.entry + "\""), std::string::npos)
        << img.error().message();
    EXPECT_NE(img.error().message().find(c.why), std::string::npos) << img.error().message();
    EXPECT_FALSE(std::filesystem::exists(root_ / ("layers/" + oci::Digest::sha256_of(tar).hex)));
  }
  EXPECT_FALSE(std::filesystem::exists(victim));
  // Nothing half-unpacked is left behind.
  for (const auto& e : std::filesystem::directory_iterator(root_ / "layers")) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

TEST_F(RuntimeLayerTest, KeepsSymlinksThatClimbAboveTheLayerRoot) {
  // docker and containerd accept both kinds: at run time a target resolves inside the
  // container's root, where ".." at "/" stays at "/". Real images carry such links
  // (usr/lib/os-release -> ../../etc/os-release style, deeper than they need to be).
  TempDir outside;
  auto img = prepare_one({{"usr/lib/", 'd', "", 0755},
                          {"usr/lib/os-release", 'l', "../../../../etc/os-release"},
                          {"usr/bin/top", 'l', "../../../../../../../.."},
                          {"abs", 'l', "/etc/os-release"},
                          {"host", 'l', outside.path() + "/x"},
                          {"etc/os-release", 'f', "ID=test"}});
  ASSERT_TRUE(img) << img.error().message();
  std::string dir = img->layer_dirs[0];
  // Stored verbatim, never followed while unpacking.
  EXPECT_EQ(std::filesystem::read_symlink(dir + "/usr/lib/os-release"),
            "../../../../etc/os-release");
  EXPECT_EQ(std::filesystem::read_symlink(dir + "/usr/bin/top"), "../../../../../../../..");
  EXPECT_EQ(std::filesystem::read_symlink(dir + "/abs"), "/etc/os-release");
  EXPECT_EQ(std::filesystem::read_symlink(dir + "/host"), outside.path() + "/x");
  EXPECT_FALSE(std::filesystem::exists(outside / "x"));
  EXPECT_EQ(slurp(dir + "/etc/os-release"), "ID=test");
}

TEST_F(RuntimeLayerTest, SkipsDeviceNodes) {
  auto img = prepare_one({{"dev/null", 'c', ""}, {"ok", 'f', "fine"}});
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_FALSE(std::filesystem::exists(img->layer_dirs[0] + "/dev/null"));
  EXPECT_EQ(slurp(img->layer_dirs[0] + "/ok"), "fine");
}

TEST_F(RuntimeLayerTest, ConvertsWhiteouts) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "overlay whiteouts need root (mknod, trusted.* xattrs)";
  }
  auto img = prepare_one({{"etc/.wh.gone", 'f', ""},
                          {"var/cache/", 'd', "", 0755},
                          {"var/cache/.wh..wh..opq", 'f', ""},
                          {"var/cache/new", 'f', "n"}},
                         Filter::Gzip);
  ASSERT_TRUE(img) << img.error().message();
  std::string dir = img->layer_dirs[0];
  struct stat st {};
  ASSERT_EQ(::lstat((dir + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(std::filesystem::exists(dir + "/etc/.wh.gone"));
  char v[8] = {};
  ASSERT_EQ(::getxattr((dir + "/var/cache").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(std::filesystem::exists(dir + "/var/cache/.wh..wh..opq"));
  EXPECT_EQ(slurp(dir + "/var/cache/new"), "n");
}

TEST_F(RuntimeLayerTest, ReadsImageConfigAndKeepsLayerOrder) {
  Json cfg = Json::object();
  cfg["Entrypoint"] = {"/bin/app"};
  cfg["Cmd"] = {"serve", "--port=8080"};
  cfg["Env"] = {"A=1", "PATH=/bin"};
  cfg["WorkingDir"] = "/srv";
  cfg["User"] = "app:app";
  cfg["StopSignal"] = "SIGQUIT";
  cfg["ExposedPorts"] = {{"8080/tcp", Json::object()}};
  std::string l1 = make_tar({{"one", 'f', "1"}}, Filter::None);
  std::string l2 = make_tar({{"two", 'f', "2"}}, Filter::Gzip);
  std::string m = src_.add_image({{l1, Filter::None}, {l2, Filter::Gzip}}, "amd64", cfg);
  auto img = prep_.prepare("web/app", m);
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->digest, m);
  EXPECT_EQ(img->config.entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_EQ(img->config.cmd, (std::vector<std::string>{"serve", "--port=8080"}));
  EXPECT_EQ(img->config.env, (std::vector<std::string>{"A=1", "PATH=/bin"}));
  EXPECT_EQ(img->config.working_dir, "/srv");
  EXPECT_EQ(img->config.user, "app:app");
  EXPECT_EQ(img->config.stop_signal, "SIGQUIT");
  EXPECT_EQ(img->config.exposed_ports, std::vector<std::string>{"8080/tcp"});
  ASSERT_EQ(img->layer_digests.size(), 2u);
  EXPECT_EQ(img->layer_digests[0], oci::Digest::sha256_of(l1).str());
  EXPECT_EQ(slurp(img->layer_dirs[0] + "/one"), "1");
  EXPECT_EQ(slurp(img->layer_dirs[1] + "/two"), "2");

  // A second prepare reuses the cache: no blob is reopened but the config.
  int before = src_.blob_reads;
  ASSERT_TRUE(prep_.prepare("web/app", m));
  EXPECT_EQ(src_.blob_reads - before, 1);

  // prune keeps what it is told to keep.
  auto n = prep_.prune({img->layer_digests[1]});
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_FALSE(std::filesystem::exists(img->layer_dirs[0]));
  EXPECT_TRUE(std::filesystem::exists(img->layer_dirs[1]));
}

TEST_F(RuntimeLayerTest, ConcurrentPreparesUnpackOnce) {
  std::vector<TarEntry> entries;
  for (int i = 0; i < 200; ++i) {
    std::string name = "f";  // not "f" + ...: GCC 12 -O3 reports a false -Wrestrict
    name += std::to_string(i);
    entries.push_back({name, 'f', std::string(1000, 'x')});
  }
  std::string m = src_.add_image({{make_tar(entries, Filter::Gzip), Filter::Gzip}});
  std::vector<std::thread> ts;
  std::atomic<int> ok_count{0};
  for (int i = 0; i < 6; ++i) {
    ts.emplace_back([&] {
      if (prep_.prepare("web/app", m)) {
        ++ok_count;
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_EQ(ok_count, 6);
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(root_ / "layers")) {
    dirs += e.is_directory() ? 1 : 0;
  }
  EXPECT_EQ(dirs, 1);
}

TEST_F(RuntimeLayerTest, UnpackLayerFromAFileOnceAndSharesTheCacheWithPrepare) {
  std::string tar = make_tar({{"bin", 'd', "", 0755}, {"bin/tool", 'f', "v1", 0755}}, Filter::Gzip);
  std::string digest = oci::Digest::sha256_of(tar).str();
  std::string file = blobs_ / "built-layer.tar.gz";
  std::ofstream(file, std::ios::binary) << tar;

  auto dir = prep_.unpack_layer(digest, file);
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_EQ(*dir, root_ / ("layers/" + digest.substr(7)));
  EXPECT_EQ(slurp(*dir + "/bin/tool"), "v1");
  // A marker survives a second call: the layer is not unpacked again, and the file is not
  // even looked at.
  std::ofstream(*dir + "/marker") << "x";
  std::filesystem::remove(file);
  auto again = prep_.unpack_layer(digest, file);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *dir);
  EXPECT_TRUE(std::filesystem::exists(*dir + "/marker"));

  // prepare() of an image with that layer uses the same directory without reading the blob.
  int reads_before = src_.blob_reads;
  std::string m = src_.add_image({{tar, Filter::Gzip}});
  auto img = prep_.prepare("web/app", m);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_EQ(img->layer_dirs.size(), 1u);
  EXPECT_EQ(img->layer_dirs[0], *dir);
  EXPECT_EQ(src_.blob_reads - reads_before, 1);  // the config only
  EXPECT_TRUE(std::filesystem::exists(*dir + "/marker"));
}

TEST_F(RuntimeLayerTest, UnpackLayerConcurrentlyUnpacksOnce) {
  std::vector<TarEntry> entries;
  for (int i = 0; i < 200; ++i) {
    std::string name = "f";  // not "f" + ...: GCC 12 -O3 reports a false -Wrestrict
    name += std::to_string(i);
    entries.push_back({name, 'f', std::string(1000, 'y')});
  }
  std::string tar = make_tar(entries, Filter::Zstd);
  std::string digest = oci::Digest::sha256_of(tar).str();
  std::string file = blobs_ / "layer.tar.zst";
  std::ofstream(file, std::ios::binary) << tar;
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<std::string> dirs;
  for (int i = 0; i < 6; ++i) {
    ts.emplace_back([&] {
      auto d = prep_.unpack_layer(digest, file);
      std::lock_guard<std::mutex> g(mu);
      dirs.insert(d ? *d : "error: " + d.error().message());
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(*dirs.begin(), root_ / ("layers/" + digest.substr(7)));
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(root_ / "layers")) {
    n += e.is_directory() ? 1 : 0;
  }
  EXPECT_EQ(n, 1);  // no temp dirs left either
}

TEST_F(RuntimeLayerTest, UnpackLayerRefusesBadInput) {
  auto bad_digest = prep_.unpack_layer("sha256:nothex", blobs_ / "x");
  ASSERT_FALSE(bad_digest);
  EXPECT_EQ(bad_digest.error().code(), Errc::InvalidArgument);

  std::string missing = oci::Digest::sha256_of("nothing").str();
  auto no_file = prep_.unpack_layer(missing, blobs_ / "no-such-file");
  ASSERT_FALSE(no_file);
  EXPECT_EQ(no_file.error().code(), Errc::NotFound);

  // The same safety checks as prepare(): an escaping entry names the layer and the entry.
  std::string tar = make_tar({{"../evil", 'f', "x"}}, Filter::None);
  std::string digest = oci::Digest::sha256_of(tar).str();
  std::string file = blobs_ / "evil.tar";
  std::ofstream(file, std::ios::binary) << tar;
  auto evil = prep_.unpack_layer(digest, file);
  ASSERT_FALSE(evil);
  EXPECT_EQ(evil.error().code(), Errc::InvalidArgument);
  EXPECT_NE(evil.error().message().find(digest), std::string::npos) << evil.error().message();
  EXPECT_FALSE(std::filesystem::exists(root_ / ("layers/" + digest.substr(7))));
}

TEST_F(RuntimeLayerTest, PicksHostPlatformFromIndex) {
  ASSERT_EQ(host_platform().str(), "linux/amd64") << "this test assumes an amd64 host";
  std::string arm =
      src_.add_image({{make_tar({{"arch", 'f', "arm64"}}, Filter::None), Filter::None}}, "arm64");
  std::string amd =
      src_.add_image({{make_tar({{"arch", 'f', "amd64"}}, Filter::None), Filter::None}}, "amd64");
  std::string idx = src_.add_index({{arm, "arm64"}, {amd, "amd64"}});
  auto img = prep_.prepare("web/app", idx);
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->digest, amd);
  EXPECT_EQ(slurp(img->layer_dirs[0] + "/arch"), "amd64");
}

TEST_F(RuntimeLayerTest, RefusesOtherPlatformsWithTheSentence) {
  std::string arm =
      src_.add_image({{make_tar({{"x", 'f', "1"}}, Filter::None), Filter::None}}, "arm64");
  auto img = prep_.prepare("web/app", arm);
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code(), Errc::FailedPrecondition);
  EXPECT_EQ(img.error().message(), "image web/app@" + arm +
                                       " is linux/arm64; this host runs linux/amd64: rebuild it "
                                       "for linux/amd64");
  // No layer was unpacked for it.
  EXPECT_TRUE(std::filesystem::is_empty(root_ / "layers"));

  std::string idx = src_.add_index({{arm, "arm64"}});
  img = prep_.prepare("web/app", idx);
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code(), Errc::FailedPrecondition);
  EXPECT_EQ(img.error().message(), "image web/app@" + idx +
                                       " is linux/arm64; this host runs linux/amd64: rebuild it "
                                       "for linux/amd64");
}

TEST(RuntimeLogTest, RotatesAndReads) {
  TempDir dir;
  std::string path = dir / "svc.log";
  {
    LogSink sink(path, 400, 2);
    for (int i = 0; i < 40; ++i) {
      sink.write(i % 2 ? "web-b" : "web-a", i % 3 ? "stdout" : "stderr",
                 "line " + std::to_string(i));
    }
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  EXPECT_LE(std::filesystem::file_size(path), 400u);

  auto all = read_log(path, 0, "", 0);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().text, "line 39");
  EXPECT_EQ(all.back().instance, "web-b");
  EXPECT_EQ(all.back().stream, "stderr");    // 39 % 3 == 0
  for (size_t i = 1; i < all.size(); ++i) {  // oldest first, nothing out of order
    EXPECT_LT(std::stoi(all[i - 1].text.substr(5)), std::stoi(all[i].text.substr(5)));
  }
  const auto& raw = all.back().raw;
  ASSERT_GE(raw.size(), 25u);
  EXPECT_EQ(raw[10], 'T');
  EXPECT_EQ(raw[23], 'Z');
  EXPECT_EQ(raw.substr(24), " web-b stderr line 39");
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_LE(std::abs(now - all.back().time_ms), 60000);

  auto a = read_log(path, 0, "web-a", 3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].text, "line 34");
  EXPECT_EQ(a[2].text, "line 38");
  EXPECT_TRUE(read_log(path, now + 60000, "", 0).empty());

  // Following: an offset returns only what was appended since.
  uint64_t off = 0;
  auto first = read_log(path, 0, "", 0, &off);
  EXPECT_EQ(first.size(), all.size());
  EXPECT_EQ(off, std::filesystem::file_size(path));
  EXPECT_TRUE(read_log(path, 0, "", 0, &off).empty());
  LogSink again(path, 1 << 20, 2);
  again.write("web-c", "stdout", "new\nline");
  auto more = read_log(path, 0, "", 0, &off);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].instance, "web-c");
  EXPECT_EQ(more[0].text, "new line");
}

TEST(RuntimeExitTest, Describes) {
  InstanceExit e;
  e.exit_code = 1;
  EXPECT_EQ(e.str(), "exited with code 1");
  e.exit_code = 0;
  EXPECT_EQ(e.str(), "exited with code 0");
  e.signal = 9;
  EXPECT_EQ(e.str(), "killed by signal 9 (SIGKILL)");
  e.signal = 15;
  EXPECT_EQ(e.str(), "killed by signal 15 (SIGTERM)");
}

}  // namespace
}  // namespace berth::runtime
