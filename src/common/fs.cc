// SPDX-License-Identifier: Apache-2.0
#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace berth::fs {

Error errno_error(const std::string& what, const stdfs::path& p) {
  int e = errno;
  Errc code = e == ENOENT                  ? Errc::NotFound
              : e == ENOSPC || e == EDQUOT ? Errc::NoSpace
                                           : Errc::Internal;
  return Error(code, what + " " + p.string() + ": " + std::strerror(e));
}

Status fsync_path(const stdfs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno_error("open", path);
  }
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) {
    return errno_error("fsync", path);
  }
  return ok();
}

Status write_atomic(const stdfs::path& path, std::string_view bytes, int mode) {
  stdfs::path tmp = path;
  tmp += ".tmp-" + random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return errno_error("create", tmp);
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      auto err = errno_error("write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    auto err = errno_error("fsync", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = errno_error("rename", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  return fsync_path(path.parent_path().empty() ? stdfs::path(".") : path.parent_path());
}

Result<std::string> read_file(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errno_error("open", path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::string> read_regular_file(const std::string& path, uint64_t max_bytes,
                                      const std::string& name) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) {
      return Error(Errc::InvalidArgument, name + " is a symlink; it must be a regular file");
    }
    if (e == ENOENT || e == ENOTDIR) {
      return Error(Errc::NotFound, name + " does not exist");
    }
    return Error(Errc::Internal, "open " + name + ": " + std::strerror(e));
  }
  struct stat st {};
  std::string out;
  Status s = ok();
  if (::fstat(fd, &st) != 0) {
    s = Error(Errc::Internal, "stat " + name + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = Error(Errc::InvalidArgument, name + " is not a regular file");
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    s = Error(Errc::InvalidArgument,
              name + " is larger than " + std::to_string(max_bytes) + " bytes");
  } else {
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < out.size()) {
      ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      got += static_cast<size_t>(n);
    }
    out.resize(got);  // a file that shrank while read: what was there
  }
  ::close(fd);
  if (!s) {
    return std::move(s).error();
  }
  return out;
}

Result<std::vector<std::string>> list_dir(const std::string& dir) {
  auto fail = [&dir](const char* what) {
    std::string msg = what;
    msg += ' ';
    msg += dir;
    msg += ": ";
    msg += std::strerror(errno);
    return Error(errno == ENOENT ? Errc::NotFound : Errc::Internal, std::move(msg));
  };
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return fail("opendir");
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  if (errno != 0) {
    auto e = fail("readdir");
    ::closedir(d);
    return e;
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status make_dirs(const stdfs::path& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) {
    return Error(Errc::Internal, "create directory " + dir.string() + ": " + ec.message());
  }
  return ok();
}

std::string random_hex(size_t n) {
  std::string raw(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string random_uuid() {
  std::string h = random_hex(16);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace berth::fs
