// SPDX-License-Identifier: Apache-2.0
#include "storage/fs_blob_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/fs.h"
#include "common/sha256.h"

namespace berth::storage {

namespace stdfs = std::filesystem;

namespace {
Result<std::string> hash_fd(int fd, const std::string& path) {
  Sha256 h;
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fs::errno_error("read", path);
    }
    if (n == 0) {
      break;
    }
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.hex();
}

}  // namespace

Result<std::string> hash_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fs::errno_error("open", path);
  }
  auto r = hash_fd(fd, path);
  ::close(fd);
  return r;
}

class FsBlobStorage::Building {
 public:
  Building(FsBlobStorage& store, std::string id) : store_(store), id_(std::move(id)) {
    std::lock_guard lock(store_.building_mu_);
    store_.building_.insert(id_);
  }
  ~Building() {
    std::lock_guard lock(store_.building_mu_);
    store_.building_.erase(id_);
  }
  Building(const Building&) = delete;
  Building& operator=(const Building&) = delete;

 private:
  FsBlobStorage& store_;
  std::string id_;
};

Status FsBlobStorage::init() {
  std::string sha = root_ + "/blobs/sha256";
  BERTH_TRY(fs::make_dirs(sha));
  BERTH_TRY(fs::make_dirs(root_ + "/uploads"));
  // All 256 prefix directories, made once and made durable here, so that a commit never makes
  // one: a new directory's own entry would need an fsync of sha256/ as well, and on ext4 each
  // new directory costs a search for recently freed inodes.
  static constexpr char kHex[] = "0123456789abcdef";
  bool made = false;
  for (char a : std::string_view(kHex)) {
    for (char b : std::string_view(kHex)) {
      std::string dir = sha + "/" + a + b;
      if (::mkdir(dir.c_str(), 0755) == 0) {
        made = true;
      } else if (errno != EEXIST) {
        return fs::errno_error("mkdir", dir);
      }
    }
  }
  if (made && fsync_) {
    BERTH_TRY(fs::fsync_path(sha));
  }
  return ok();
}

std::string blob_key(const std::string& hex) {
  return "blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
}

BlobStoragePtr make_fs_blob_storage(std::string root, bool fsync) {
  return std::make_shared<FsBlobStorage>(std::move(root), fsync);
}

std::string FsBlobStorage::blob_path(const std::string& hex) const {
  return root_ + "/" + blob_key(hex);
}

namespace {
bool transient(const std::string& id) { return id.ends_with(kTransientUpload); }
}  // namespace

std::string FsBlobStorage::upload_data_path(const std::string& id) const {
  return transient(id) ? root_ + "/uploads/" + id : root_ + "/uploads/" + id + "/data";
}

Result<int> FsBlobStorage::create_upload(const std::string& id, const std::string& repo) {
  if (transient(id)) {
    // One file: a directory costs a mkdir (ext4 scans for recently freed inodes each time), a
    // repo file and a recursive removal, ~20% of berthd's CPU for a small blob pulled through.
    std::string data = upload_data_path(id);
    int fd = ::open(data.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return fs::errno_error("create", data);
    }
    return fd;
  }
  Building building(*this, id);
  std::string dir = root_ + "/uploads/" + id;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    return fs::errno_error("mkdir", dir);
  }
  // A directory without its files is of no use to anyone: never leave one behind.
  auto fail = [&](Error e) -> Error {
    remove_upload(id);
    return e;
  };
  std::string repo_file = dir + "/repo";
  int rfd = ::open(repo_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (rfd < 0) {
    return fail(fs::errno_error("create", repo_file));
  }
  ssize_t n = ::write(rfd, repo.data(), repo.size());
  if (n != static_cast<ssize_t>(repo.size())) {
    if (n >= 0) {
      errno = ENOSPC;  // a short write of a few bytes: the disk filled up
    }
    Error e = fs::errno_error("write", repo_file);
    ::close(rfd);
    return fail(e);
  }
  if (::close(rfd) != 0) {
    return fail(fs::errno_error("close", repo_file));
  }
  std::string data = dir + "/data";
  int fd = ::open(data.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return fail(fs::errno_error("create", data));
  }
  return fd;
}

Result<int> FsBlobStorage::reopen_upload(const std::string& id, std::string& repo, uint64_t& size) {
  std::string dir = root_ + "/uploads/" + id;
  auto r = fs::read_file(dir + "/repo");
  if (!r) {
    return Error(Errc::NotFound, "upload " + id + " unknown");
  }
  repo = *r;
  std::string data = dir + "/data";
  int fd = ::open(data.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    return fs::errno_error("open", data);
  }
  struct stat st {};
  ::fstat(fd, &st);
  size = static_cast<uint64_t>(st.st_size);
  return fd;
}

Status FsBlobStorage::commit_upload(const std::string& id, const std::string& hex) {
  std::string data = upload_data_path(id);
  if (fsync_) {
    BERTH_TRY(fs::fsync_path(data));
  }
  std::string dst = blob_path(hex);
  std::string dst_dir = root_ + "/blobs/sha256/" + hex.substr(0, 2);
  // Same digest, same bytes: renaming over an existing blob is harmless and atomic. The prefix
  // directory is init()'s; should someone have removed it since, it is made again.
  int r = ::rename(data.c_str(), dst.c_str());
  if (r != 0 && errno == ENOENT && ::access(data.c_str(), F_OK) == 0) {
    if (::mkdir(dst_dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return fs::errno_error("mkdir", dst_dir);
    }
    if (fsync_) {
      BERTH_TRY(fs::fsync_path(root_ + "/blobs/sha256"));
    }
    r = ::rename(data.c_str(), dst.c_str());
  }
  if (r != 0) {
    return fs::errno_error("rename", data);
  }
  if (fsync_) {
    BERTH_TRY(fs::fsync_path(dst_dir));
  }
  remove_upload(id);
  return ok();
}

void FsBlobStorage::remove_upload(const std::string& id) {
  std::error_code ec;
  stdfs::remove_all(root_ + "/uploads/" + id, ec);
}

bool FsBlobStorage::remove_upload_if_broken(const std::string& id) {
  std::lock_guard lock(building_mu_);
  if (building_.count(id) != 0) {
    return false;
  }
  struct stat st {};
  if (::lstat(upload_data_path(id).c_str(), &st) == 0) {
    return false;
  }
  remove_upload(id);
  return true;
}

Result<std::string> FsBlobStorage::hash_upload(const std::string& id) {
  return hash_path(upload_data_path(id));
}

Result<bool> FsBlobStorage::stage_file(const std::string& id, const std::string& path,
                                       const std::string& hex, int64_t size) {
  Building building(*this, id);
  std::string dir = root_ + "/uploads/" + id;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    return fs::errno_error("mkdir", dir);
  }
  std::string data = dir + "/data";
  auto fail = [&](Error e) -> Error {
    remove_upload(id);
    return e;
  };
  bool linked = ::link(path.c_str(), data.c_str()) == 0;
  Sha256 h;
  int64_t total = 0;
  if (linked) {
    int fd = ::open(data.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return fail(fs::errno_error("open", data));
    }
    struct stat st {};
    ::fstat(fd, &st);
    total = st.st_size;
    auto r = hash_fd(fd, data);
    ::close(fd);
    if (!r) {
      return fail(r.error());
    }
    if (*r != hex || total != size) {
      return fail(Error(Errc::InvalidArgument, path + " holds sha256:" + *r + " (" +
                                                   std::to_string(total) + " bytes), not sha256:" +
                                                   hex + " (" + std::to_string(size) + " bytes)"));
    }
    return true;
  }
  if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
    return fail(fs::errno_error("link", path));
  }
  // Another filesystem (or links refused): copy while hashing.
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return fail(fs::errno_error("open", path));
  }
  int out = ::open(data.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    Error e = fs::errno_error("create", data);
    ::close(in);
    return fail(e);
  }
  std::string buf(1 << 20, '\0');
  std::optional<Error> failed;
  while (!failed) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      failed = fs::errno_error("read", path);
      break;
    }
    if (n == 0) {
      break;
    }
    h.update(buf.data(), static_cast<size_t>(n));
    total += n;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        failed = fs::errno_error("write", data);
        break;
      }
      off += w;
    }
  }
  ::close(in);
  ::close(out);
  if (failed) {
    return fail(*failed);
  }
  std::string got = h.hex();
  if (got != hex || total != size) {
    return fail(Error(Errc::InvalidArgument,
                      path + " holds sha256:" + got + " (" + std::to_string(total) +
                          " bytes), not sha256:" + hex + " (" + std::to_string(size) + " bytes)"));
  }
  return false;
}

Result<int64_t> FsBlobStorage::blob_size(const std::string& hex) {
  std::string p = blob_path(hex);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    return fs::errno_error("stat", p);
  }
  return static_cast<int64_t>(st.st_size);
}

Result<std::string> FsBlobStorage::local_file(const std::string& hex) {
  std::string p = blob_path(hex);
  if (::access(p.c_str(), R_OK) != 0) {
    return fs::errno_error("access", p);
  }
  return p;
}

Result<int> FsBlobStorage::open_blob(const std::string& hex) {
  std::string p = blob_path(hex);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fs::errno_error("open", p);
  }
  return fd;
}

Status FsBlobStorage::remove_blob(const std::string& hex) {
  std::string p = blob_path(hex);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    return fs::errno_error("unlink", p);
  }
  return ok();
}

std::vector<BlobEntry> FsBlobStorage::list_uploads() const {
  std::vector<BlobEntry> out;
  std::error_code ec;
  for (auto& e : stdfs::directory_iterator(root_ + "/uploads", ec)) {
    struct stat st {};
    std::string p = e.path().string();
    std::string data = upload_data_path(e.path().filename().string());
    // The data file's mtime is the last activity; fall back to the directory's.
    bool has_data = ::stat(data.c_str(), &st) == 0;
    if (!has_data && ::stat(p.c_str(), &st) != 0) {
      continue;
    }
    out.push_back({e.path().filename().string(), st.st_mtime, st.st_size, has_data});
  }
  return out;
}

Result<std::vector<BlobEntry>> FsBlobStorage::list_blobs() { return list_blob_files(); }

std::vector<BlobEntry> FsBlobStorage::list_blob_files() const {
  std::vector<BlobEntry> out;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(root_ + "/blobs/sha256", ec);
       it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      break;
    }
    if (!it->is_regular_file(ec)) {
      continue;
    }
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) {
      continue;
    }
    out.push_back({it->path().filename().string(), st.st_mtime, st.st_size});
  }
  return out;
}

Result<std::string> FsBlobStorage::hash_blob(const std::string& hex) {
  return hash_path(blob_path(hex));
}

Result<std::string> FsBlobStorage::presigned_url(const std::string& /*hex*/,
                                                 std::chrono::seconds /*ttl*/) {
  return Error(Errc::Unsupported, "the fs blob storage has no URLs to redirect to");
}

}  // namespace berth::storage
