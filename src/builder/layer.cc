// SPDX-License-Identifier: Apache-2.0
// Layer writer: walk -> libarchive (pax_restricted, to a callback) -> SHA-256 of the tar ->
// zlib deflate with a fixed gzip header -> SHA-256 of the gzip bytes -> temp file -> rename.
#include "builder/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>

#include "common/fs.h"
#include "common/sha256.h"

namespace berth::builder {
namespace {

using Xattrs = std::vector<std::pair<std::string, std::string>>;

Error errno_error(Errc code, const std::string& what) {
  std::string msg = what;
  msg += ": ";
  msg += std::strerror(errno);
  return make_error(code, msg);
}

Error io_error(const std::string& what) {
  return errno_error(errno == ENOENT                      ? Errc::NotFound
                     : errno == ENOSPC || errno == EDQUOT ? Errc::NoSpace
                                                          : Errc::Internal,
                     what);
}

// One tar entry, with where its data comes from.
struct Meta {
  std::string path;  // relative, no leading or trailing slash
  mode_t type = S_IFREG;
  uint32_t perm = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;
  uint64_t size = 0;
  dev_t rdev = 0;
  std::string symlink;
  std::string hardlink;
  Xattrs xattrs;
  std::string data_path;  // regular files with size > 0
  dev_t data_dev = 0;
  ino_t data_ino = 0;
};

int64_t clamp_mtime(int64_t t, const LayerOptions& opts) {
  if (opts.source_date_epoch && t > *opts.source_date_epoch) {
    return *opts.source_date_epoch;
  }
  return t;
}

// All xattrs of path (not following a symlink), sorted by name.
Result<Xattrs> read_xattrs(const std::string& path) {
  Xattrs out;
  std::string names;
  for (int attempt = 0; attempt < 8; ++attempt) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP || errno == ENOSYS) {
        return out;
      }
      return io_error("listxattr " + path);
    }
    if (n == 0) {
      return out;
    }
    names.resize(static_cast<size_t>(n));
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE) {
      return io_error("listxattr " + path);
    }
    names.clear();
  }
  size_t pos = 0;
  while (pos < names.size()) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) {
      continue;
    }
    std::string value;
    for (int attempt = 0; attempt < 8; ++attempt) {
      ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0) {
        break;  // vanished or unreadable: treated as absent
      }
      value.resize(static_cast<size_t>(n));
      n = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        out.emplace_back(name, value);
        break;
      }
      if (errno != ERANGE) {
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool is_overlay_xattr(const std::string& name) {
  return starts_with(name, "trusted.overlay.") || starts_with(name, "user.overlay.");
}

// The layer stream: libarchive writes the tar into on_tar(), which hashes it and feeds
// deflate; the gzip bytes are hashed and written to a temp file beside out_path.
class LayerSink {
 public:
  LayerSink(std::string out_path, const LayerOptions& opts)
      : out_path_(std::move(out_path)), opts_(opts) {}
  ~LayerSink() { abort(); }
  LayerSink(const LayerSink&) = delete;
  LayerSink& operator=(const LayerSink&) = delete;

  Status open() {
    std::string dir = std::filesystem::path(out_path_).parent_path().string();
    if (!dir.empty()) {
      BERTH_TRY(fs::make_dirs(dir));
    }
    tmp_path_ = out_path_;
    tmp_path_ += ".tmp-";
    tmp_path_ += fs::random_hex(8);
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return io_error("create " + tmp_path_);
    }

    // windowBits 15 + 16: a gzip wrapper. The header is pinned so the bytes depend only on
    // the tar: no name, no comment, mtime 0, OS 255 ("unknown", what Go's gzip writes).
    int level = std::clamp(opts_.compression_level, 1, 9);
    if (deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return make_error(Errc::Internal, "deflateInit2 failed");
    }
    z_open_ = true;
    std::memset(&gz_header_, 0, sizeof gz_header_);
    gz_header_.os = 255;
    if (deflateSetHeader(&z_, &gz_header_) != Z_OK) {
      return make_error(Errc::Internal, "deflateSetHeader failed");
    }
    out_buf_.resize(1 << 17);

    a_ = archive_write_new();
    if (a_ == nullptr) {
      return make_error(Errc::Internal, "archive_write_new failed");
    }
    // pax_restricted: ustar headers unless a field does not fit; then a pax header.
    // xattrs only as SCHILY.xattr.* (what GNU tar and Go's archive/tar read and write),
    // not libarchive's own LIBARCHIVE.xattr.* duplicates.
    if (archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_set_format_option(a_, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_format_option(a_, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
        archive_write_add_filter_none(a_) != ARCHIVE_OK ||
        // Blocked writes, but no padding after the end-of-archive blocks.
        archive_write_set_bytes_per_block(a_, 1 << 16) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a_, 1) != ARCHIVE_OK) {
      return archive_failure("configure tar writer");
    }
    if (archive_write_open2(a_, this, nullptr, &LayerSink::write_cb, nullptr, nullptr) !=
        ARCHIVE_OK) {
      return archive_failure("open tar writer");
    }
    entry_ = archive_entry_new();
    return ok();
  }

  Status add(const Meta& m) {
    archive_entry_clear(entry_);
    std::string name = m.path;
    if (m.type == S_IFDIR && m.hardlink.empty()) {
      name += '/';
    }
    archive_entry_copy_pathname(entry_, name.c_str());
    archive_entry_set_filetype(entry_, m.type);
    archive_entry_set_perm(entry_, m.perm & 07777);
    archive_entry_set_uid(entry_, m.uid);
    archive_entry_set_gid(entry_, m.gid);
    archive_entry_set_mtime(entry_, m.mtime, 0);
    if (!m.hardlink.empty()) {
      archive_entry_copy_hardlink(entry_, m.hardlink.c_str());
      archive_entry_set_size(entry_, 0);
    } else if (m.type == S_IFREG) {
      archive_entry_set_size(entry_, static_cast<la_int64_t>(m.size));
    } else {
      archive_entry_set_size(entry_, 0);
    }
    if (m.type == S_IFLNK) {
      archive_entry_copy_symlink(entry_, m.symlink.c_str());
    }
    if (m.type == S_IFCHR || m.type == S_IFBLK) {
      archive_entry_set_rdev(entry_, m.rdev);
    }
    for (const auto& [k, v] : m.xattrs) {
      archive_entry_xattr_add_entry(entry_, k.c_str(), v.data(), v.size());
    }
    if (archive_write_header(a_, entry_) != ARCHIVE_OK) {
      return archive_failure("write header of " + m.path);
    }
    ++entries_;
    if (m.hardlink.empty() && m.type == S_IFREG && m.size > 0) {
      BERTH_TRY(copy_data(m));
    }
    if (archive_write_finish_entry(a_) != ARCHIVE_OK) {
      return archive_failure("finish " + m.path);
    }
    return ok();
  }

  Result<LayerBlob> finish() {
    if (archive_write_close(a_) != ARCHIVE_OK) {
      return archive_failure("close tar writer");
    }
    BERTH_TRY(deflate_some(nullptr, 0, Z_FINISH));
    BERTH_TRY(flush_out());
    LayerBlob blob;
    blob.entries = entries_;
    if (entries_ == 0) {
      blob.empty = true;
      abort();
      return blob;
    }
    if (opts_.fsync && ::fsync(fd_) != 0) {
      return io_error("fsync " + tmp_path_);
    }
    if (::close(fd_) != 0) {
      fd_ = -1;
      return io_error("close " + tmp_path_);
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), out_path_.c_str()) != 0) {
      return io_error("rename " + tmp_path_);
    }
    tmp_path_.clear();
    if (opts_.fsync) {
      std::string dir = std::filesystem::path(out_path_).parent_path().string();
      BERTH_TRY(fs::fsync_path(dir.empty() ? "." : dir));
    }
    blob.digest = "sha256:";
    blob.digest += gz_hash_.hex();
    blob.diff_id = "sha256:";
    blob.diff_id += tar_hash_.hex();
    blob.size = gz_size_;
    return blob;
  }

 private:
  static la_ssize_t write_cb(archive* a, void* self, const void* buf, size_t n) {
    auto* sink = static_cast<LayerSink*>(self);
    if (sink->dead_) {
      return static_cast<la_ssize_t>(n);  // aborting: discard the trailer
    }
    Status st = sink->on_tar(buf, n);
    if (!st) {
      sink->failure_ = st.error();
      archive_set_error(a, EIO, "%s", st.error().message().c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  Status on_tar(const void* buf, size_t n) {
    tar_hash_.update(buf, n);
    return deflate_some(buf, n, Z_NO_FLUSH);
  }

  Status deflate_some(const void* buf, size_t n, int flush) {
    z_.next_in = static_cast<Bytef*>(const_cast<void*>(buf));
    z_.avail_in = static_cast<uInt>(n);
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(out_buf_.data()) + out_len_;
      z_.avail_out = static_cast<uInt>(out_buf_.size() - out_len_);
      int r = deflate(&z_, flush);
      if (r == Z_STREAM_ERROR) {
        return make_error(Errc::Internal, "deflate failed");
      }
      out_len_ = out_buf_.size() - z_.avail_out;
      if (out_len_ == out_buf_.size()) {
        BERTH_TRY(flush_out());
        continue;
      }
      if (flush == Z_FINISH ? r == Z_STREAM_END : z_.avail_in == 0) {
        return ok();
      }
    }
  }

  Status flush_out() {
    gz_hash_.update(out_buf_.data(), out_len_);
    size_t off = 0;
    while (off < out_len_) {
      ssize_t w = ::write(fd_, out_buf_.data() + off, out_len_ - off);
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        return io_error("write " + tmp_path_);
      }
      off += static_cast<size_t>(w);
    }
    gz_size_ += out_len_;
    out_len_ = 0;
    return ok();
  }

  Status copy_data(const Meta& m) {
    int fd = ::open(m.data_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return io_error("open " + m.data_path);
    }
    std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* p) { ::close(*p); });
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return io_error("stat " + m.data_path);
    }
    if (st.st_dev != m.data_dev || st.st_ino != m.data_ino) {
      return make_error(Errc::DataLoss, m.data_path + " was replaced while the layer was written");
    }
    if (read_buf_.empty()) {
      read_buf_.resize(1 << 18);
    }
    uint64_t left = m.size;
    while (left > 0) {
      ssize_t r = ::read(fd, read_buf_.data(), std::min<uint64_t>(left, read_buf_.size()));
      if (r < 0) {
        if (errno == EINTR) {
          continue;
        }
        return io_error("read " + m.data_path);
      }
      if (r == 0) {
        return make_error(Errc::DataLoss, m.data_path + " shrank while the layer was written");
      }
      if (archive_write_data(a_, read_buf_.data(), static_cast<size_t>(r)) != r) {
        return archive_failure("write data of " + m.path);
      }
      left -= static_cast<uint64_t>(r);
    }
    if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != m.size) {
      return make_error(Errc::DataLoss, m.data_path + " changed size while the layer was written");
    }
    return ok();
  }

  Error archive_failure(const std::string& what) {
    if (failure_) {
      return failure_->with_context(what);
    }
    const char* s = a_ != nullptr ? archive_error_string(a_) : nullptr;
    std::string msg = what;
    msg += ": ";
    msg += s != nullptr ? s : "libarchive error";
    return make_error(Errc::Internal, msg);
  }

  void abort() {
    if (entry_ != nullptr) {
      archive_entry_free(entry_);
      entry_ = nullptr;
    }
    if (a_ != nullptr) {
      // Freeing an unclosed writer closes it first, which would write the trailer into a
      // sink that may be broken: stop the callback from doing anything.
      dead_ = true;
      archive_write_free(a_);
      a_ = nullptr;
    }
    if (z_open_) {
      deflateEnd(&z_);
      z_open_ = false;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!tmp_path_.empty()) {
      ::unlink(tmp_path_.c_str());
      tmp_path_.clear();
    }
  }

  std::string out_path_;
  const LayerOptions& opts_;
  std::string tmp_path_;
  int fd_ = -1;
  archive* a_ = nullptr;
  archive_entry* entry_ = nullptr;
  z_stream z_{};
  gz_header gz_header_{};
  bool z_open_ = false;
  bool dead_ = false;
  std::vector<char> out_buf_;
  size_t out_len_ = 0;
  std::vector<char> read_buf_;
  Sha256 tar_hash_;
  Sha256 gz_hash_;
  uint64_t gz_size_ = 0;
  uint64_t entries_ = 0;
  std::optional<Error> failure_;
};

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) {
    return b;
  }
  std::string s = a;
  s += '/';
  s += b;
  return s;
}

// Fills the type-specific fields of m from an lstat result of path.
Status fill_from_stat(Meta& m, const std::string& path, const struct stat& st,
                      const LayerOptions& opts) {
  m.type = st.st_mode & S_IFMT;
  m.perm = st.st_mode & 07777;
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.mtime = clamp_mtime(st.st_mtim.tv_sec, opts);
  if (m.type == S_IFREG) {
    m.size = static_cast<uint64_t>(st.st_size);
    m.data_path = path;
    m.data_dev = st.st_dev;
    m.data_ino = st.st_ino;
  } else if (m.type == S_IFLNK) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) {
      return io_error("readlink " + path);
    }
    target.resize(static_cast<size_t>(n));
    m.symlink = std::move(target);
    m.perm = 0777;
  } else if (m.type == S_IFCHR || m.type == S_IFBLK) {
    m.rdev = st.st_rdev;
  }
  return ok();
}

// Xattrs to carry into the image: everything but the host's SELinux label and overlayfs'
// bookkeeping.
Xattrs keep_xattrs(const Xattrs& all) {
  Xattrs out;
  for (const auto& kv : all) {
    if (kv.first == "security.selinux" || is_overlay_xattr(kv.first)) {
      continue;
    }
    out.push_back(kv);
  }
  return out;
}

class TreeWalker {
 public:
  TreeWalker(LayerSink& sink, const LayerOptions& opts) : sink_(sink), opts_(opts) {}

  Status walk(const std::string& abs, const std::string& rel) {
    struct Child {
      std::string name;     // on disk
      std::string emitted;  // in the tar (".wh.NAME" for a whiteout)
      struct stat st;
      bool whiteout;
    };
    std::vector<Child> children;
    {
      BERTH_ASSIGN_OR_RETURN(auto names, fs::list_dir(abs));
      for (const std::string& name : names) {
        Child c{name, name, {}, false};
        std::string path = join(abs, name);
        if (::lstat(path.c_str(), &c.st) != 0) {
          return io_error("lstat " + path);
        }
        if (S_ISSOCK(c.st.st_mode)) {
          continue;  // tar has no socket type; docker skips them too
        }
        if (opts_.overlay_upper && S_ISCHR(c.st.st_mode) && major(c.st.st_rdev) == 0 &&
            minor(c.st.st_rdev) == 0) {
          c.whiteout = true;
          c.emitted = ".wh.";
          c.emitted += name;
        }
        children.push_back(std::move(c));
      }
    }
    std::sort(children.begin(), children.end(),
              [](const Child& a, const Child& b) { return a.emitted < b.emitted; });

    for (const Child& c : children) {
      std::string path = join(abs, c.name);
      Meta m;
      m.path = join(rel, c.emitted);
      if (c.whiteout) {
        m.type = S_IFREG;
        m.perm = 0600;
        m.uid = c.st.st_uid;
        m.gid = c.st.st_gid;
        m.mtime = clamp_mtime(c.st.st_mtim.tv_sec, opts_);
        BERTH_TRY(sink_.add(m));
        continue;
      }
      BERTH_TRY(fill_from_stat(m, path, c.st, opts_));
      BERTH_ASSIGN_OR_RETURN(Xattrs all, read_xattrs(path));
      bool opaque = false;
      if (opts_.overlay_upper) {
        for (const auto& [k, v] : all) {
          if (!is_overlay_xattr(k)) {
            continue;
          }
          std::string key = k.substr(k.find(".overlay.") + 9);
          if (key == "opaque" && v == "y") {
            opaque = true;
          } else if (key == "metacopy" || key == "redirect") {
            return make_error(Errc::Unsupported,
                              path + " has overlay xattr " + k +
                                  ": mount the build overlay with metacopy=off,redirect_dir=off");
          }
        }
      }
      m.xattrs = keep_xattrs(all);
      if (m.type == S_IFREG && c.st.st_nlink > 1) {
        auto key = std::make_pair(c.st.st_dev, c.st.st_ino);
        auto it = links_.find(key);
        if (it != links_.end()) {
          m.hardlink = it->second;
          m.size = 0;
          m.data_path.clear();
        } else {
          links_.emplace(key, m.path);
        }
      }
      BERTH_TRY(sink_.add(m));
      if (m.type == S_IFDIR) {
        if (opaque && S_ISDIR(c.st.st_mode)) {
          Meta wh;
          wh.path = join(m.path, ".wh..wh..opq");
          wh.type = S_IFREG;
          wh.perm = m.perm & 0777;
          wh.uid = m.uid;
          wh.gid = m.gid;
          wh.mtime = m.mtime;
          BERTH_TRY(sink_.add(wh));
        }
        BERTH_TRY(walk(path, m.path));
      }
    }
    return ok();
  }

 private:
  LayerSink& sink_;
  const LayerOptions& opts_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// ---- COPY layers ----

struct CopyNode {
  bool from_source = false;  // false: an implied parent directory
  std::string source;
  struct stat st {};
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint32_t> mode;
  std::map<std::string, CopyNode> children;  // std::string orders bytewise
};

Result<std::vector<std::string>> split_dest(const std::string& dest) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= dest.size()) {
    size_t j = dest.find('/', i);
    if (j == std::string::npos) {
      j = dest.size();
    }
    std::string part = dest.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      return make_error(Errc::InvalidArgument, "COPY destination " + dest + " contains ..");
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

class CopyLayerBuilder {
 public:
  CopyLayerBuilder(LayerSink& sink, const LayerOptions& opts, const CopyLayerOptions& copy)
      : sink_(sink), opts_(opts), copy_(copy) {}

  Status add(const CopyEntry& e) {
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> parts, split_dest(e.dest));
    struct stat st {};
    if (::lstat(e.source.c_str(), &st) != 0) {
      return io_error("COPY source " + e.source);
    }
    if (parts.empty()) {
      // The image root: only a directory's contents can land there.
      if (!S_ISDIR(st.st_mode)) {
        return make_error(Errc::InvalidArgument, "COPY destination " + e.dest + " is the root");
      }
      return add_children(root_, e.source, "", e);
    }
    CopyNode* node = &root_;
    for (size_t k = 0; k + 1 < parts.size(); ++k) {
      CopyNode& next = node->children[parts[k]];
      if (next.from_source && !S_ISDIR(next.st.st_mode)) {
        return make_error(Errc::InvalidArgument,
                          "COPY destination " + e.dest + " is below a file of this layer");
      }
      if (!next.from_source && !next.uid) {
        next.uid = e.uid.value_or(0);
        next.gid = e.gid.value_or(0);
      }
      node = &next;
    }
    CopyNode& leaf = node->children[parts.back()];
    if (!S_ISDIR(st.st_mode)) {
      leaf.children.clear();
    }
    if (S_ISDIR(st.st_mode) && e.contents_only) {
      if (!leaf.from_source && !leaf.uid) {
        leaf.uid = e.uid.value_or(0);
        leaf.gid = e.gid.value_or(0);
      }
    } else {
      set_source(leaf, e.source, st, e);
    }
    if (S_ISDIR(st.st_mode) && (e.recursive || e.contents_only)) {
      return add_children(leaf, e.source, "", e);
    }
    return ok();
  }

  Status emit() { return emit_children(root_, ""); }

 private:
  static void set_source(CopyNode& n, const std::string& source, const struct stat& st,
                         const CopyEntry& e) {
    n.from_source = true;
    n.source = source;
    n.st = st;
    n.uid = e.uid;
    n.gid = e.gid;
    n.mode = e.mode;
  }

  Status add_children(CopyNode& node, const std::string& dir, const std::string& rel,
                      const CopyEntry& e) {
    BERTH_ASSIGN_OR_RETURN(auto names, fs::list_dir(dir));
    for (const std::string& name : names) {
      std::string sub_rel = join(rel, name);
      if (e.include && !e.include(sub_rel)) {
        continue;
      }
      std::string path = join(dir, name);
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        return io_error("lstat " + path);
      }
      if (S_ISSOCK(st.st_mode)) {
        continue;
      }
      CopyNode& child = node.children[name];
      if (!S_ISDIR(st.st_mode)) {
        child.children.clear();
      }
      set_source(child, path, st, e);
      if (S_ISDIR(st.st_mode)) {
        BERTH_TRY(add_children(child, path, sub_rel, e));
      }
    }
    return ok();
  }

  Status emit_children(const CopyNode& node, const std::string& rel) {
    for (const auto& [name, child] : node.children) {
      std::string path = join(rel, name);
      Meta m;
      m.path = path;
      if (child.from_source) {
        BERTH_TRY(fill_from_stat(m, child.source, child.st, opts_));
        if (child.uid) {
          m.uid = *child.uid;
        }
        if (child.gid) {
          m.gid = *child.gid;
        }
        if (child.mode && m.type != S_IFLNK) {
          m.perm = *child.mode & 07777;
        }
        BERTH_ASSIGN_OR_RETURN(Xattrs all, read_xattrs(child.source));
        m.xattrs = keep_xattrs(all);
      } else {
        BERTH_TRY(parent_meta(m, path, child));
      }
      BERTH_TRY(sink_.add(m));
      BERTH_TRY(emit_children(child, path));
    }
    return ok();
  }

  Status parent_meta(Meta& m, const std::string& path, const CopyNode& n) {
    std::string base;
    if (copy_.base_dir) {
      base = copy_.base_dir(path);
    } else if (!copy_.base_rootfs.empty()) {
      base = join(copy_.base_rootfs, path);
    }
    if (!base.empty()) {
      struct stat st {};
      if (::lstat(base.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        BERTH_TRY(fill_from_stat(m, base, st, opts_));
        BERTH_ASSIGN_OR_RETURN(Xattrs all, read_xattrs(base));
        m.xattrs = keep_xattrs(all);
        return ok();
      }
    }
    m.type = S_IFDIR;
    m.perm = copy_.parent_mode & 07777;
    m.uid = n.uid.value_or(0);
    m.gid = n.gid.value_or(0);
    m.mtime = opts_.source_date_epoch.value_or(0);
    return ok();
  }

  LayerSink& sink_;
  const LayerOptions& opts_;
  const CopyLayerOptions& copy_;
  CopyNode root_;
};

}  // namespace

Result<LayerBlob> write_layer(const std::string& dir, const std::string& out_path,
                              const LayerOptions& opts) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return io_error("layer dir " + dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(Errc::InvalidArgument, "layer dir " + dir + " is not a directory");
  }
  LayerSink sink(out_path, opts);
  BERTH_TRY(sink.open());
  TreeWalker walker(sink, opts);
  BERTH_TRY(walker.walk(dir, ""));
  return sink.finish();
}

Result<LayerBlob> write_copy_layer(const std::vector<CopyEntry>& entries,
                                   const std::string& out_path, const LayerOptions& opts,
                                   const CopyLayerOptions& copy) {
  LayerSink sink(out_path, opts);
  CopyLayerBuilder builder(sink, opts, copy);
  for (const CopyEntry& e : entries) {
    BERTH_TRY(builder.add(e));
  }
  BERTH_TRY(sink.open());
  BERTH_TRY(builder.emit());
  return sink.finish();
}

}  // namespace berth::builder
