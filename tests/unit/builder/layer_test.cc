// SPDX-License-Identifier: Apache-2.0
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/layer.h"
#include "common/sha256.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

using test::have;
using test::run;
using test::TempDir;
using test::write_file;

struct TarEntry {
  std::string path;
  mode_t type = 0;
  uint32_t perm = 0;
  int64_t uid = -1;
  int64_t gid = -1;
  int64_t mtime = 0;
  int64_t size = 0;
  std::string symlink;
  std::string hardlink;
  std::string uname;
  std::string gname;
  bool atime = false;
  bool ctime = false;
  dev_t rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::string data;
};

// Reads a layer back with libarchive (an independent reader of the same bytes).
std::vector<TarEntry> read_layer(const std::string& blob) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, blob.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t;
    t.path = archive_entry_pathname(e);
    t.type = archive_entry_filetype(e);
    t.perm = archive_entry_perm(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.mtime = archive_entry_mtime(e);
    t.size = archive_entry_size(e);
    t.symlink = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
    t.hardlink = archive_entry_hardlink(e) ? archive_entry_hardlink(e) : "";
    t.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
    t.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
    t.atime = archive_entry_atime_is_set(e);
    t.ctime = archive_entry_ctime_is_set(e);
    t.rdev = archive_entry_rdev(e);
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      t.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
    char buf[4096];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
      t.data.append(buf, static_cast<size_t>(n));
    }
    out.push_back(std::move(t));
  }
  archive_read_free(a);
  return out;
}

std::vector<std::string> paths(const std::vector<TarEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    out.push_back(e.path);
  }
  return out;
}

const TarEntry* find(const std::vector<TarEntry>& entries, const std::string& path) {
  for (const auto& e : entries) {
    if (e.path == path) {
      return &e;
    }
  }
  return nullptr;
}

void set_mtime(const std::string& path, int64_t t) {
  timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Sets every mtime under dir (dir included) to t.
void set_all_mtimes(const std::string& dir, int64_t t) {
  for (const auto& p : std::filesystem::recursive_directory_iterator(dir)) {
    set_mtime(p.path().string(), t);
  }
  set_mtime(dir, t);
}

std::string sha256_file(const std::string& cmd_producing_bytes) {
  auto r = run(cmd_producing_bytes + " | sha256sum");
  EXPECT_EQ(r.code, 0) << r.all();
  return "sha256:" + r.out.substr(0, 64);
}

bool is_root() { return ::geteuid() == 0; }

// A tree with a bit of everything (no root needed).
void make_tree(const std::string& root) {
  write_file(root + "/etc/hostname", "berth\n");
  write_file(root + "/bin/tool", std::string(300000, 'x'));
  write_file(root + "/a.txt", "a");
  write_file(root + "/a-c", "ac");
  write_file(root + "/a/b", "ab");
  write_file(root + "/B", "B");
  ::chmod((root + "/bin/tool").c_str(), 04755);
  ::symlink("../etc/hostname", (root + "/bin/host").c_str());
  ::link((root + "/a.txt").c_str(), (root + "/z-hardlink").c_str());
  ::mkdir((root + "/empty").c_str(), 0700);
  ::mkfifo((root + "/fifo").c_str(), 0640);
  set_all_mtimes(root, 1700000000);
}

LayerOptions fast() {
  LayerOptions o;
  o.fsync = false;
  return o;
}

TEST(BuildLayerTest, SameTreeGivesSameBlobAndHashesMatchTheBytes) {
  TempDir t;
  make_tree(t / "root");
  auto a = write_layer(t / "root", t / "out/a.tar.gz", fast());
  ASSERT_TRUE(a) << a.error().message();
  auto b = write_layer(t / "root", t / "out/b.tar.gz", fast());
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_FALSE(a->empty);
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->diff_id, b->diff_id);
  EXPECT_EQ(a->media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(run("cmp " + t / "out/a.tar.gz" + " " + t / "out/b.tar.gz").code, 0);
  EXPECT_EQ(a->digest, sha256_file("cat " + t / "out/a.tar.gz"));
  EXPECT_EQ(a->diff_id, sha256_file("gzip -dc " + t / "out/a.tar.gz"));
  EXPECT_EQ(a->size, std::filesystem::file_size(t / "out/a.tar.gz"));
  EXPECT_NE(a->digest, a->diff_id);
  // Nothing else is left in the output directory (temp files renamed away).
  EXPECT_EQ(run("ls " + t / "out" + " | wc -l").out, "2\n");

  // The gzip header is fixed: magic, deflate, no flags, mtime 0, XFL, OS 255.
  auto head = run("head -c 10 " + t / "out/a.tar.gz" + " | od -An -tx1 | tr -d ' \\n'");
  EXPECT_EQ(head.out.substr(0, 16), "1f8b080000000000");
  EXPECT_EQ(head.out.substr(18, 2), "ff");

  // Same content in a different directory, another inode order: same bytes.
  ASSERT_EQ(run("cp -a " + t / "root" + " " + t / "copy").code, 0);
  auto c = write_layer(t / "copy", t / "out/c.tar.gz", fast());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->digest, a->digest);
}

TEST(BuildLayerTest, SourceDateEpochClampsMtimes) {
  TempDir t;
  make_tree(t / "one");
  ASSERT_EQ(run("cp -a " + t / "one" + " " + t / "two").code, 0);
  set_all_mtimes(t / "two", 1800000000);
  LayerOptions opts = fast();
  auto plain1 = write_layer(t / "one", t / "p1.tgz", opts);
  auto plain2 = write_layer(t / "two", t / "p2.tgz", opts);
  ASSERT_TRUE(plain1 && plain2);
  EXPECT_NE(plain1->digest, plain2->digest);

  opts.source_date_epoch = 1600000000;
  auto one = write_layer(t / "one", t / "one.tgz", opts);
  auto two = write_layer(t / "two", t / "two.tgz", opts);
  ASSERT_TRUE(one && two);
  EXPECT_EQ(one->digest, two->digest);
  EXPECT_EQ(one->diff_id, two->diff_id);
  for (const auto& e : read_layer(t / "one.tgz")) {
    EXPECT_EQ(e.mtime, 1600000000) << e.path;
  }
  // Older mtimes are kept.
  opts.source_date_epoch = 1750000000;
  auto three = write_layer(t / "one", t / "three.tgz", opts);
  ASSERT_TRUE(three);
  EXPECT_EQ(three->digest, plain1->digest);
}

TEST(BuildLayerTest, EntriesAreSortedParentsFirst) {
  TempDir t;
  make_tree(t / "root");
  auto blob = write_layer(t / "root", t / "l.tgz", fast());
  ASSERT_TRUE(blob) << blob.error().message();
  // Depth-first, each directory's children in bytewise order of their names: "a" < "a-c"
  // < "a.txt", and a directory's subtree follows the directory itself.
  std::vector<std::string> want = {
      "B",        "a/",     "a/b",  "a-c",          "a.txt", "bin/",      "bin/host",
      "bin/tool", "empty/", "etc/", "etc/hostname", "fifo",  "z-hardlink"};
  EXPECT_EQ(paths(read_layer(t / "l.tgz")), want);
  EXPECT_EQ(blob->entries, want.size());
  // GNU tar reads it and lists the same order.
  auto r = run("tar -tzf " + t / "l.tgz");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string joined;
  for (const auto& p : want) {
    joined += p + "\n";
  }
  EXPECT_EQ(r.out, joined);
}

TEST(BuildLayerTest, NamesAreRawBytesWhateverTheLocale) {
  TempDir t;
  std::string root = t / "root";
  write_file(root + "/h\xc3\xa9llo", "utf-8");
  write_file(root + "/bad\xff", "not utf-8");
  ASSERT_EQ(::symlink("t\xfe", (root + "/lnk").c_str()), 0);
  write_file(root + "/" + std::string(150, 'n'), "long");
  auto blob = write_layer(root, t / "l.tgz", fast());
  ASSERT_TRUE(blob) << blob.error().message();
  std::vector<std::string> want = {"bad\xff", "h\xc3\xa9llo", "lnk", std::string(150, 'n')};
  auto got = read_layer(t / "l.tgz");
  EXPECT_EQ(paths(got), want);
  EXPECT_EQ(got[2].symlink, "t\xfe");
  EXPECT_EQ(run("LC_ALL=C tar -tzf " + t / "l.tgz" + " >/dev/null 2>&1").code, 0);
}

TEST(BuildLayerTest, KeepsTypesModesLinksAndDropsNamesAndTimes) {
  TempDir t;
  make_tree(t / "root");
  auto blob = write_layer(t / "root", t / "l.tgz", fast());
  ASSERT_TRUE(blob) << blob.error().message();
  auto entries = read_layer(t / "l.tgz");
  for (const auto& e : entries) {
    EXPECT_EQ(e.uname, "") << e.path;
    EXPECT_EQ(e.gname, "") << e.path;
    EXPECT_FALSE(e.atime) << e.path;
    EXPECT_FALSE(e.ctime) << e.path;
    EXPECT_EQ(e.mtime, 1700000000) << e.path;
  }
  const TarEntry* tool = find(entries, "bin/tool");
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ(tool->perm, 04755u);
  EXPECT_EQ(tool->size, 300000);
  EXPECT_EQ(tool->data, std::string(300000, 'x'));
  const TarEntry* host = find(entries, "bin/host");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->type, AE_IFLNK);
  EXPECT_EQ(host->symlink, "../etc/hostname");
  const TarEntry* empty = find(entries, "empty/");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->type, AE_IFDIR);
  EXPECT_EQ(empty->perm, 0700u);
  const TarEntry* fifo = find(entries, "fifo");
  ASSERT_NE(fifo, nullptr);
  EXPECT_EQ(fifo->type, AE_IFIFO);
  EXPECT_EQ(fifo->perm, 0640u);
  // The first path in walk order carries the data; the later one links to it.
  const TarEntry* a = find(entries, "a.txt");
  const TarEntry* link = find(entries, "z-hardlink");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(a->data, "a");
  EXPECT_EQ(link->hardlink, "a.txt");
  EXPECT_EQ(link->size, 0);

  auto r = run("tar --numeric-owner -tvzf " + t / "l.tgz");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("bin/host -> ../etc/hostname"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("z-hardlink link to a.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-rwsr-xr-x"), std::string::npos) << r.out;
}

TEST(BuildLayerTest, OwnersDevicesAndCapabilitiesNeedRoot) {
  if (!is_root()) {
    GTEST_SKIP() << "chown, mknod and security.capability need root";
  }
  TempDir t;
  std::string root = t / "root";
  write_file(root + "/owned", "x");
  write_file(root + "/bigid", "y");
  write_file(root + "/ping", "elf");
  ASSERT_EQ(::chown((root + "/owned").c_str(), 1234, 5678), 0);
  ASSERT_EQ(::chown((root + "/bigid").c_str(), 3000000, 4000000), 0);  // > 7 octal digits
  ASSERT_EQ(::mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW (13).
  const uint32_t cap[5] = {0x02000001, 1u << 13, 0, 0, 0};
  ASSERT_EQ(::setxattr((root + "/ping").c_str(), "security.capability", cap, sizeof cap, 0), 0);
  ASSERT_EQ(::setxattr((root + "/ping").c_str(), "user.note", "hi", 2, 0), 0);
  set_all_mtimes(root, 1700000000);

  LayerOptions opts = fast();
  auto blob = write_layer(root, t / "l.tgz", opts);
  ASSERT_TRUE(blob) << blob.error().message();
  auto entries = read_layer(t / "l.tgz");
  const TarEntry* owned = find(entries, "owned");
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(owned->uid, 1234);
  EXPECT_EQ(owned->gid, 5678);
  const TarEntry* big = find(entries, "bigid");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->uid, 3000000);
  EXPECT_EQ(big->gid, 4000000);
  const TarEntry* null = find(entries, "null");
  ASSERT_NE(null, nullptr);
  EXPECT_EQ(null->type, AE_IFCHR);
  EXPECT_EQ(null->rdev, makedev(1, 3));
  const TarEntry* ping = find(entries, "ping");
  ASSERT_NE(ping, nullptr);
  std::vector<std::pair<std::string, std::string>> want = {
      {"security.capability", std::string(reinterpret_cast<const char*>(cap), sizeof cap)},
      {"user.note", "hi"}};
  auto got = ping->xattrs;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  // Written once, as SCHILY.xattr (no LIBARCHIVE.xattr duplicate).
  auto raw = run("gzip -dc " + t / "l.tgz" + " | grep -a -c 'xattr.security.capability'");
  EXPECT_EQ(raw.out, "1\n");
  EXPECT_EQ(run("gzip -dc " + t / "l.tgz" + " | grep -a -c LIBARCHIVE").out, "0\n");

  auto r = run("tar --numeric-owner -tvzf " + t / "l.tgz");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("1234/5678"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3000000/4000000"), std::string::npos) << r.out;
  // GNU tar restores the capability.
  ASSERT_EQ(run("mkdir " + t / "x" + " && tar --xattrs --xattrs-include='*' -C " + t / "x" +
                " -xzf " + t / "l.tgz")
                .code,
            0);
  uint32_t back[5] = {};
  ASSERT_EQ(::getxattr((t / "x/ping").c_str(), "security.capability", back, sizeof back),
            static_cast<ssize_t>(sizeof back));
  EXPECT_EQ(std::memcmp(back, cap, sizeof cap), 0);
}

// Builds an OCI layout with the given layers (blob path, diff_id) under tag "t".
void make_layout(const std::string& dir, const std::vector<LayerBlob>& layers,
                 const std::vector<std::string>& blob_paths) {
  ASSERT_EQ(run("mkdir -p " + dir + "/blobs/sha256").code, 0);
  write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  std::string diff_ids;
  std::string descs;
  for (size_t i = 0; i < layers.size(); ++i) {
    ASSERT_EQ(
        run("cp " + blob_paths[i] + " " + dir + "/blobs/sha256/" + layers[i].digest.substr(7)).code,
        0);
    if (i > 0) {
      diff_ids += ",";
      descs += ",";
    }
    diff_ids += "\"";
    diff_ids += layers[i].diff_id;
    diff_ids += "\"";
    descs += R"({"mediaType":")";
    descs += layers[i].media_type;
    descs += R"(","digest":")";
    descs += layers[i].digest;
    descs += R"(","size":)";
    descs += std::to_string(layers[i].size);
    descs += "}";
  }
  std::string config = R"({"architecture":"amd64","os":"linux","config":{},)"
                       R"("rootfs":{"type":"layers","diff_ids":[)" +
                       diff_ids + "]}}";
  std::string config_hex = Sha256::hex_of(config);
  write_file(dir + "/blobs/sha256/" + config_hex, config);
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
      config_hex + R"(","size":)" + std::to_string(config.size()) + R"(},"layers":[)" + descs +
      "]}";
  std::string manifest_hex = Sha256::hex_of(manifest);
  write_file(dir + "/blobs/sha256/" + manifest_hex, manifest);
  write_file(dir + "/index.json",
             R"({"schemaVersion":2,"manifests":[{"mediaType":)"
             R"("application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                 manifest_hex + R"(","size":)" + std::to_string(manifest.size()) +
                 R"(,"annotations":{"org.opencontainers.image.ref.name":"t"}}]})");
}

TEST(BuildLayerTest, OverlayUpperBecomesWhiteoutsAndUmociAppliesThem) {
  if (!is_root()) {
    GTEST_SKIP() << "mknod of a whiteout and trusted.* xattrs need root";
  }
  TempDir t;
  // Lower layer: keep, gone, d/old, d/sub/deep.
  std::string lower = t / "lower";
  write_file(lower + "/keep", "k");
  write_file(lower + "/gone", "g");
  write_file(lower + "/d/old", "o");
  write_file(lower + "/d/sub/deep", "s");
  // Upper dir as overlayfs leaves it: gone deleted, d replaced by a new directory.
  std::string upper = t / "upper";
  ASSERT_EQ(run("mkdir -p " + upper + "/d").code, 0);
  ASSERT_EQ(::mknod((upper + "/gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  ASSERT_EQ(::setxattr((upper + "/d").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(::setxattr((upper + "/d").c_str(), "trusted.overlay.origin", "zz", 2, 0), 0);
  ASSERT_EQ(::chmod((upper + "/d").c_str(), 0750), 0);
  write_file(upper + "/d/new", "n");
  set_all_mtimes(upper, 1700000000);

  LayerOptions opts = fast();
  auto l1 = write_layer(lower, t / "l1.tgz", opts);
  ASSERT_TRUE(l1) << l1.error().message();
  opts.overlay_upper = true;
  auto l2 = write_layer(upper, t / "l2.tgz", opts);
  ASSERT_TRUE(l2) << l2.error().message();

  auto entries = read_layer(t / "l2.tgz");
  std::vector<std::string> want = {".wh.gone", "d/", "d/.wh..wh..opq", "d/new"};
  EXPECT_EQ(paths(entries), want);
  EXPECT_EQ(entries[0].type, AE_IFREG);
  EXPECT_EQ(entries[0].size, 0);
  EXPECT_EQ(entries[0].perm, 0600u);
  EXPECT_EQ(entries[2].type, AE_IFREG);
  EXPECT_EQ(entries[2].perm, 0750u);
  EXPECT_TRUE(entries[1].xattrs.empty());
  EXPECT_EQ(run("gzip -dc " + t / "l2.tgz" + " | grep -a -c overlay").out, "0\n");

  if (!have("umoci")) {
    GTEST_SKIP() << "umoci not installed";
  }
  make_layout(t / "layout", {*l1, *l2}, {t / "l1.tgz", t / "l2.tgz"});
  auto r = run("umoci unpack --image " + t / "layout" + ":t " + t / "bundle");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string rootfs = t / "bundle/rootfs";
  EXPECT_TRUE(std::filesystem::exists(rootfs + "/keep"));
  EXPECT_FALSE(std::filesystem::exists(rootfs + "/gone"));
  EXPECT_FALSE(std::filesystem::exists(rootfs + "/d/old"));
  EXPECT_FALSE(std::filesystem::exists(rootfs + "/d/sub"));
  EXPECT_EQ(test::read_file(rootfs + "/d/new"), "n");
  EXPECT_FALSE(std::filesystem::exists(rootfs + "/d/.wh..wh..opq"));
}

TEST(BuildLayerTest, OverlayMetacopyIsRefused) {
  if (!is_root()) {
    GTEST_SKIP() << "trusted.* xattrs need root";
  }
  TempDir t;
  write_file(t / "upper/f", "");
  ASSERT_EQ(::setxattr((t / "upper/f").c_str(), "trusted.overlay.metacopy", "", 0, 0), 0);
  LayerOptions opts = fast();
  opts.overlay_upper = true;
  auto blob = write_layer(t / "upper", t / "out/l.tgz", opts);
  ASSERT_FALSE(blob);
  EXPECT_EQ(blob.error().code(), Errc::Unsupported);
  EXPECT_NE(blob.error().message().find("metacopy"), std::string::npos);
  EXPECT_EQ(run("ls -A " + t / "out" + " | wc -l").out, "0\n");  // no temp file left
}

TEST(BuildLayerTest, UmociUnpacksAPlainLayer) {
  if (!have("umoci") || !is_root()) {
    GTEST_SKIP() << "needs umoci and root";
  }
  TempDir t;
  make_tree(t / "root");
  auto blob = write_layer(t / "root", t / "l.tgz", fast());
  ASSERT_TRUE(blob) << blob.error().message();
  make_layout(t / "layout", {*blob}, {t / "l.tgz"});
  auto r = run("umoci unpack --image " + t / "layout" + ":t " + t / "bundle");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string rootfs = t / "bundle/rootfs";
  EXPECT_EQ(test::read_file(rootfs + "/etc/hostname"), "berth\n");
  EXPECT_EQ(std::filesystem::read_symlink(rootfs + "/bin/host").string(), "../etc/hostname");
  struct stat a {};
  struct stat b {};
  ASSERT_EQ(::stat((rootfs + "/a.txt").c_str(), &a), 0);
  ASSERT_EQ(::stat((rootfs + "/z-hardlink").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  struct stat tool {};
  ASSERT_EQ(::stat((rootfs + "/bin/tool").c_str(), &tool), 0);
  EXPECT_EQ(tool.st_mode & 07777, 04755u);
}

TEST(BuildLayerTest, EmptyTreeIsAnEmptyLayerWithNoBlob) {
  TempDir t;
  ASSERT_EQ(::mkdir((t / "root").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((t / "out").c_str(), 0755), 0);
  auto blob = write_layer(t / "root", t / "out/l.tgz", fast());
  ASSERT_TRUE(blob) << blob.error().message();
  EXPECT_TRUE(blob->empty);
  EXPECT_EQ(blob->entries, 0u);
  EXPECT_EQ(blob->digest, "");
  EXPECT_EQ(run("ls -A " + t / "out" + " | wc -l").out, "0\n");
}

TEST(BuildLayerTest, MissingDirIsNotFound) {
  TempDir t;
  auto blob = write_layer(t / "nope", t / "l.tgz", fast());
  ASSERT_FALSE(blob);
  EXPECT_EQ(blob.error().code(), Errc::NotFound);
}

TEST(BuildLayerTest, CopyLayerWithChownChmodAndParents) {
  TempDir t;
  std::string ctx = t / "ctx";
  write_file(ctx + "/server.js", "js");
  write_file(ctx + "/static/index.html", "<p>");
  write_file(ctx + "/static/img/logo.png", "png");
  write_file(ctx + "/static/secret.key", "no");
  ::chmod((ctx + "/server.js").c_str(), 0600);
  ::symlink("index.html", (ctx + "/static/home.html").c_str());
  set_all_mtimes(ctx, 1900000000);
  // The base image has /app (0750, mtime 12345) but no /app/bin.
  std::string base = t / "base";
  ASSERT_EQ(run("mkdir -p " + base + "/app").code, 0);
  ::chmod((base + "/app").c_str(), 0750);
  set_mtime(base + "/app", 12345);

  std::vector<CopyEntry> entries(2);
  entries[0].source = ctx + "/server.js";
  entries[0].dest = "/app/bin/server.js";
  entries[0].uid = 1000;
  entries[0].gid = 1001;
  entries[0].mode = 0755;
  entries[1].source = ctx + "/static";
  entries[1].dest = "app//www/./";
  entries[1].contents_only = true;
  entries[1].uid = 33;
  entries[1].include = [](const std::string& rel) { return rel != "secret.key"; };

  LayerOptions opts = fast();
  opts.source_date_epoch = 1800000000;
  CopyLayerOptions copy;
  copy.base_rootfs = base;
  auto blob = write_copy_layer(entries, t / "copy.tgz", opts, copy);
  ASSERT_TRUE(blob) << blob.error().message();
  auto got = read_layer(t / "copy.tgz");
  std::vector<std::string> want = {"app/",
                                   "app/bin/",
                                   "app/bin/server.js",
                                   "app/www/",
                                   "app/www/home.html",
                                   "app/www/img/",
                                   "app/www/img/logo.png",
                                   "app/www/index.html"};
  EXPECT_EQ(paths(got), want);
  const TarEntry* app = find(got, "app/");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->perm, 0750u);  // from the base image, unchanged
  EXPECT_EQ(app->mtime, 12345);
  const TarEntry* bin = find(got, "app/bin/");
  ASSERT_NE(bin, nullptr);
  EXPECT_EQ(bin->perm, 0755u);  // created, owned by the --chown of the entry needing it
  EXPECT_EQ(bin->uid, 1000);
  EXPECT_EQ(bin->gid, 1001);
  EXPECT_EQ(bin->mtime, 1800000000);
  const TarEntry* js = find(got, "app/bin/server.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->perm, 0755u);
  EXPECT_EQ(js->uid, 1000);
  EXPECT_EQ(js->gid, 1001);
  EXPECT_EQ(js->mtime, 1800000000);
  EXPECT_EQ(js->data, "js");
  const TarEntry* www = find(got, "app/www/");
  ASSERT_NE(www, nullptr);
  EXPECT_EQ(www->uid, 33);
  EXPECT_EQ(www->gid, 0);
  const TarEntry* logo = find(got, "app/www/img/logo.png");
  ASSERT_NE(logo, nullptr);
  EXPECT_EQ(logo->uid, 33);
  EXPECT_EQ(logo->gid, ::getegid());
  EXPECT_EQ(logo->data, "png");
  const TarEntry* home = find(got, "app/www/home.html");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(home->symlink, "index.html");

  auto again = write_copy_layer(entries, t / "again.tgz", opts, copy);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->digest, blob->digest);
  EXPECT_EQ(blob->diff_id, sha256_file("gzip -dc " + t / "copy.tgz"));
  auto r = run("tar --numeric-owner -tvzf " + t / "copy.tgz");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("-rwxr-xr-x 1000/1001"), std::string::npos) << r.out;

  // A bad destination and a missing source are errors.
  std::vector<CopyEntry> bad(1);
  bad[0].source = ctx + "/server.js";
  bad[0].dest = "/app/../etc/x";
  auto b1 = write_copy_layer(bad, t / "bad.tgz", opts);
  ASSERT_FALSE(b1);
  EXPECT_EQ(b1.error().code(), Errc::InvalidArgument);
  bad[0].source = ctx + "/missing";
  bad[0].dest = "/x";
  auto b2 = write_copy_layer(bad, t / "bad.tgz", opts);
  ASSERT_FALSE(b2);
  EXPECT_EQ(b2.error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace berth::builder
