// SPDX-License-Identifier: Apache-2.0
// ImagePreparer: platform selection and the layer cache (ROOT/layers/<hex>/), unpacked with
// libarchive into a temp dir and renamed into place. Entries are created relative to directory
// fds opened without following symlinks, so nothing in a layer can write outside it.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "oci/oci.h"
#include "runtime/core.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

namespace berth::runtime {

namespace stdfs = std::filesystem;
using detail::Fd;

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) {
    s += "/" + variant;
  }
  return s;
}

Platform host_platform() {
  static const Platform p = [] {
    Platform h;
    h.os = "linux";
    utsname u{};
    ::uname(&u);
    std::string m = u.machine;
    if (m == "x86_64") {
      h.architecture = "amd64";
    } else if (m == "aarch64" || m == "arm64") {
      h.architecture = "arm64";
    } else if (m == "armv7l") {
      h.architecture = "arm";
      h.variant = "v7";
    } else if (m == "armv6l") {
      h.architecture = "arm";
      h.variant = "v6";
    } else if (m == "i386" || m == "i686") {
      h.architecture = "386";
    } else {
      h.architecture = m;  // ppc64le, s390x, riscv64 keep their names
    }
    return h;
  }();
  return p;
}

namespace {

bool platform_matches(const Platform& host, const std::string& os, const std::string& arch,
                      const std::string& variant) {
  if (os != host.os || arch != host.architecture) {
    return false;
  }
  return variant.empty() || host.variant.empty() || variant == host.variant;
}

std::string platform_str(const oci::Platform& p) {
  std::string s = p.os + "/" + p.architecture;
  if (!p.variant.empty()) {
    s += "/" + p.variant;
  }
  return s;
}

Error wrong_platform(const std::string& repository, const std::string& digest,
                     const std::string& what) {
  std::string host = host_platform().str();
  return Error(Errc::FailedPrecondition, "image " + repository + "@" + digest + " is " + what +
                                             "; this host runs " + host + ": rebuild it for " +
                                             host);
}

bool is_layer_media_type(const std::string& mt) {
  static const char* const kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
  };
  for (const char* t : kTypes) {
    if (mt == t) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> string_array(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      }
    }
  }
  return out;
}

ImageConfig parse_image_config(const Json& root) {
  ImageConfig c;
  auto it = root.find("config");
  if (it == root.end() || !it->is_object()) {
    return c;
  }
  const Json& j = *it;
  c.entrypoint = string_array(j, "Entrypoint");
  c.cmd = string_array(j, "Cmd");
  c.env = string_array(j, "Env");
  if (auto w = j.find("WorkingDir"); w != j.end() && w->is_string()) {
    c.working_dir = w->get<std::string>();
  }
  if (auto u = j.find("User"); u != j.end() && u->is_string()) {
    c.user = u->get<std::string>();
  }
  if (auto s = j.find("StopSignal"); s != j.end() && s->is_string()) {
    c.stop_signal = s->get<std::string>();
  }
  if (auto p = j.find("ExposedPorts"); p != j.end() && p->is_object()) {
    for (auto e = p->begin(); e != p->end(); ++e) {
      c.exposed_ports.push_back(e.key());
    }
  }
  return c;
}

// ---- layer extraction ---------------------------------------------------------------------

int openat2_beneath(int dirfd, const std::string& path, int flags) {
  return detail::open_beneath(dirfd, path, flags);
}

struct DirTimes {
  std::string path;
  timespec times[2];
};

class Extractor {
 public:
  Extractor(int root, std::string layer) : root_(root), layer_(std::move(layer)) {}

  Status run(const std::string& blob) {
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    Status st = extract(a, blob);
    archive_read_free(a);
    if (!st) {
      return st;
    }
    // Directory mtimes last: creating their entries changed them.
    for (auto& d : dir_times_) {
      Fd fd(d.path.empty() ? ::dup(root_) : openat2_beneath(root_, d.path, O_DIRECTORY | O_RDONLY));
      if (fd) {
        ::futimens(fd.get(), d.times);
      }
    }
    return ok();
  }

 private:
  Error bad(const std::string& entry, const std::string& why) {
    return Error(Errc::InvalidArgument, "layer " + layer_ + ": entry \"" + entry + "\": " + why);
  }

  Status extract(archive* a, const std::string& blob) {
    if (archive_read_open_filename(a, blob.c_str(), 1 << 16) != ARCHIVE_OK) {
      return Error(Errc::InvalidArgument,
                   "layer " + layer_ + ": " + safe_str(archive_error_string(a)));
    }
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a, &e);
      if (r == ARCHIVE_EOF) {
        return ok();
      }
      if (r < ARCHIVE_WARN) {
        return Error(Errc::InvalidArgument,
                     "layer " + layer_ + ": " + safe_str(archive_error_string(a)));
      }
      BERTH_TRY(entry(a, e));
    }
  }

  static std::string safe_str(const char* s) { return s ? s : "unreadable archive"; }

  static std::string entry_path(archive_entry* e) {
    const char* p = archive_entry_pathname(e);
    if (!p) {
      p = archive_entry_pathname_utf8(e);
    }
    return p ? p : "";
  }

  // Opens (creating as needed) the directory of parts[0..n) without following symlinks.
  Result<Fd> parent_dir(const std::string& entry, const std::vector<std::string>& parts, size_t n) {
    if (n == 0) {
      return Fd(::dup(root_));
    }
    std::string path = detail::join_entry_path(parts, n);
    int fd = openat2_beneath(root_, path, O_DIRECTORY | O_PATH);
    if (fd >= 0) {
      return Fd(fd);
    }
    if (errno != ENOENT) {
      return bad(entry, "parent \"" + path + "\" is not a directory inside the layer (" +
                            std::strerror(errno) + ")");
    }
    Fd cur(::dup(root_));
    for (size_t i = 0; i < n; ++i) {
      if (::mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return bad(entry,
                   "mkdir " + detail::join_entry_path(parts, i + 1) + ": " + std::strerror(errno));
      }
      int next =
          ::openat(cur.get(), parts[i].c_str(), O_DIRECTORY | O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        return bad(entry, "parent \"" + detail::join_entry_path(parts, i + 1) +
                              "\" is not a directory inside the layer (" + std::strerror(errno) +
                              ")");
      }
      cur.reset(next);
    }
    return cur;
  }

  // Removes whatever is at dir/name unless both it and the new entry are directories.
  static void clear_slot(int dir, const std::string& name, bool new_is_dir) {
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!new_is_dir) {
        ::unlinkat(dir, name.c_str(), AT_REMOVEDIR);
      }
      return;
    }
    ::unlinkat(dir, name.c_str(), 0);
  }

  static void apply_xattrs(int fd, archive_entry* e) {
    if (archive_entry_xattr_reset(e) == 0) {
      return;
    }
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (name && std::strncmp(name, "trusted.overlay.", 16) != 0) {
        ::fsetxattr(fd, name, value, size, 0);
      }
    }
  }

  static void entry_times(archive_entry* e, timespec t[2]) {
    t[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
    t[0].tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : 0;
    t[1].tv_sec = archive_entry_mtime(e);
    t[1].tv_nsec = archive_entry_mtime_nsec(e);
  }

  Status entry(archive* a, archive_entry* e) {
    std::string raw = entry_path(e);
    std::string why;
    auto parts = detail::split_entry_path(raw, &why);
    if (!why.empty()) {
      return bad(raw, why);
    }
    mode_t type = archive_entry_filetype(e);
    if (parts.empty()) {
      if (type == AE_IFDIR) {  // "./": the layer root itself
        ::fchmod(root_, archive_entry_perm(e));
        ::fchown(root_, static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)));
        DirTimes dt;
        entry_times(e, dt.times);
        dir_times_.push_back(dt);
        return ok();
      }
      return bad(raw, "empty path");
    }
    const std::string& name = parts.back();
    BERTH_ASSIGN_OR_RETURN(Fd dir, parent_dir(raw, parts, parts.size() - 1));
    // Reopen the parent as a real fd (O_PATH fds cannot be used for mknod/xattr on itself).
    Fd pdir(::openat(dir.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!pdir) {
      return bad(raw, std::string("open parent: ") + std::strerror(errno));
    }

    // OCI whiteouts -> overlayfs whiteouts.
    if (name.rfind(".wh.", 0) == 0) {
      if (name == ".wh..wh..opq") {
        if (::fsetxattr(pdir.get(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
          return bad(raw, std::string("set opaque xattr: ") + std::strerror(errno));
        }
        return ok();
      }
      std::string target = name.substr(4);
      if (target.empty() || target == "." || target == "..") {
        return bad(raw, "malformed whiteout");
      }
      clear_slot(pdir.get(), target, false);
      if (::mknodat(pdir.get(), target.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
        return bad(raw, std::string("create whiteout: ") + std::strerror(errno));
      }
      return ok();
    }

    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    mode_t perm = archive_entry_perm(e);
    timespec times[2];
    entry_times(e, times);

    if (const char* hl = archive_entry_hardlink(e); hl != nullptr) {
      std::string hwhy;
      auto tparts = detail::split_entry_path(hl, &hwhy);
      if (!hwhy.empty() || tparts.empty()) {
        return bad(raw, std::string("hardlink target \"") + hl + "\" escapes the layer");
      }
      std::string tpath = detail::join_entry_path(tparts, tparts.size());
      Fd tdir(openat2_beneath(
          root_, tparts.size() > 1 ? detail::join_entry_path(tparts, tparts.size() - 1) : ".",
          O_DIRECTORY | O_PATH));
      struct stat st {};
      if (!tdir || ::fstatat(tdir.get(), tparts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return bad(raw, "hardlink target \"" + tpath + "\" is not inside the layer");
      }
      if (S_ISDIR(st.st_mode)) {
        return bad(raw, "hardlink to a directory");
      }
      clear_slot(pdir.get(), name, false);
      if (::linkat(tdir.get(), tparts.back().c_str(), pdir.get(), name.c_str(), 0) != 0) {
        return bad(raw, std::string("link: ") + std::strerror(errno));
      }
      return ok();
    }

    switch (type) {
      case AE_IFDIR: {
        clear_slot(pdir.get(), name, true);
        if (::mkdirat(pdir.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
          return bad(raw, std::string("mkdir: ") + std::strerror(errno));
        }
        Fd d(::openat(pdir.get(), name.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!d) {
          return bad(raw, std::string("open directory: ") + std::strerror(errno));
        }
        ::fchown(d.get(), uid, gid);
        ::fchmod(d.get(), perm);
        apply_xattrs(d.get(), e);
        DirTimes dt;
        dt.path = detail::join_entry_path(parts, parts.size());
        dt.times[0] = times[0];
        dt.times[1] = times[1];
        dir_times_.push_back(dt);
        return ok();
      }
      case AE_IFREG: {
        clear_slot(pdir.get(), name, false);
        Fd f(::openat(pdir.get(), name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f) {
          return bad(raw, std::string("create: ") + std::strerror(errno));
        }
        const void* buf = nullptr;
        size_t size = 0;
        la_int64_t off = 0;
        for (;;) {
          int r = archive_read_data_block(a, &buf, &size, &off);
          if (r == ARCHIVE_EOF) {
            break;
          }
          if (r < ARCHIVE_WARN) {
            return bad(raw, safe_str(archive_error_string(a)));
          }
          const char* p = static_cast<const char*>(buf);
          while (size > 0) {
            ssize_t n = ::pwrite(f.get(), p, size, off);
            if (n < 0) {
              if (errno == EINTR) {
                continue;
              }
              return bad(raw, std::string("write: ") + std::strerror(errno));
            }
            p += n;
            size -= static_cast<size_t>(n);
            off += n;
          }
        }
        // Sparse files: make the size right even if the tail was a hole.
        if (archive_entry_size_is_set(e)) {
          ::ftruncate(f.get(), archive_entry_size(e));
        }
        ::fchown(f.get(), uid, gid);
        ::fchmod(f.get(), perm);  // after chown, which clears set-id bits
        apply_xattrs(f.get(), e);
        ::futimens(f.get(), times);
        return ok();
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target || !*target) {
          return bad(raw, "symlink without a target");
        }
        // The target is stored as it is and never followed here: a later entry below a symlink
        // is refused (parent_dir opens nothing through a link), and at run time every target,
        // absolute or climbing with "..", resolves inside the container's root, as docker and
        // containerd have it. So a target is not checked: refusing "../../lib/x" broke real
        // images while "/lib/x" (the same link) was allowed.
        clear_slot(pdir.get(), name, false);
        if (::symlinkat(target, pdir.get(), name.c_str()) != 0) {
          return bad(raw, std::string("symlink: ") + std::strerror(errno));
        }
        ::fchownat(pdir.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
        ::utimensat(pdir.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return ok();
      }
      case AE_IFIFO: {
        clear_slot(pdir.get(), name, false);
        if (::mknodat(pdir.get(), name.c_str(), S_IFIFO | perm, 0) != 0) {
          return bad(raw, std::string("mkfifo: ") + std::strerror(errno));
        }
        ::fchownat(pdir.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
        ::fchmodat(pdir.get(), name.c_str(), perm, 0);
        ::utimensat(pdir.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return ok();
      }
      case AE_IFCHR:
      case AE_IFBLK:
        logger()->debug("layer device node skipped layer={} entry={}", layer_, raw);
        return ok();
      default:
        logger()->debug("layer entry of unknown type skipped layer={} entry={}", layer_, raw);
        return ok();
    }
  }

  int root_;
  std::string layer_;
  std::vector<DirTimes> dir_times_;
};

Status remove_tree(const std::string& path) {
  std::error_code ec;
  stdfs::remove_all(path, ec);
  if (ec) {
    return Error(Errc::Internal, "remove " + path + ": " + ec.message());
  }
  return ok();
}

}  // namespace

struct ImagePreparer::State {
  std::string root;
  std::string layers;
  ImageSource* source = nullptr;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<std::mutex>> layer_locks;

  std::shared_ptr<std::mutex> lock_for(const std::string& hex) {
    std::lock_guard<std::mutex> g(mu);
    auto& m = layer_locks[hex];
    if (!m) {
      m = std::make_shared<std::mutex>();
    }
    return m;
  }

  // Unpacks one layer into layers/<hex> unless it is there already; blob_path() names the
  // compressed file and is only asked when an unpack is needed. Threads of this process
  // serialise on a per-layer mutex; other processes on an flock of layers/<hex>.lock. Both
  // prepare() and unpack_layer() come through here, so a layer is unpacked once whichever
  // asks first.
  Result<std::string> ensure_layer(const oci::Digest& digest,
                                   const std::function<Result<std::string>()>& blob_path) {
    std::string dir = layers + "/" + digest.hex;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
      return dir;
    }
    auto m = lock_for(digest.hex);
    std::lock_guard<std::mutex> g(*m);
    std::string lock_path = dir + ".lock";
    Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
      return Error(Errc::Internal, "lock " + lock_path + ": " + std::strerror(errno));
    }
    if (::stat(dir.c_str(), &st) == 0) {
      return dir;
    }
    BERTH_ASSIGN_OR_RETURN(std::string blob, blob_path());
    std::string tmp = layers + "/.tmp-" + digest.hex + "-" + fs::random_hex(4);
    if (::mkdir(tmp.c_str(), 0755) != 0) {
      return Error(Errc::Internal, "mkdir " + tmp + ": " + std::strerror(errno));
    }
    Fd tmp_fd(::open(tmp.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    Extractor x(tmp_fd.get(), digest.str());
    Status s = x.run(blob);
    if (s) {
      // Durable before visible: a crash never leaves a half-written layer under its name.
      ::syncfs(tmp_fd.get());
      if (::rename(tmp.c_str(), dir.c_str()) != 0) {
        s = Error(Errc::Internal, "rename " + tmp + ": " + std::strerror(errno));
      } else {
        (void)fs::fsync_path(layers);
      }
    }
    if (!s) {
      (void)remove_tree(tmp);
      return std::move(s).error();
    }
    logger()->info("layer unpacked digest={} dir={}", digest.str(), dir);
    return dir;
  }
};

ImagePreparer::ImagePreparer(std::string root, ImageSource& source)
    : state_(std::make_shared<State>()) {
  state_->root = std::move(root);
  state_->layers = state_->root + "/layers";
  state_->source = &source;
  (void)fs::make_dirs(state_->layers);
  // Leftovers of an unpack interrupted by a crash: ".tmp-<hex>-<rand>" and
  // ".tmp-prune-<hex>-<rand>". One still being written holds its layer's flock; skip those.
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(state_->layers, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(".tmp-", 0) != 0) {
      continue;
    }
    std::string rest = n.substr(5);
    if (rest.rfind("prune-", 0) == 0) {
      rest = rest.substr(6);
    }
    std::string lock_path = state_->layers + "/" + rest.substr(0, 64) + ".lock";
    Fd lock(::open(lock_path.c_str(), O_RDWR | O_CLOEXEC));
    if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      continue;
    }
    (void)remove_tree(e.path().string());
  }
}

Result<PreparedImage> ImagePreparer::prepare(const std::string& repository,
                                             const std::string& digest) {
  State& s = *state_;
  BERTH_ASSIGN_OR_RETURN(auto top, s.source->manifest(repository, digest));
  BERTH_ASSIGN_OR_RETURN(auto m, oci::parse_manifest(top.first, top.second));
  std::string image_digest = digest;
  const Platform host = host_platform();
  if (m.is_index()) {
    const oci::Descriptor* pick = nullptr;
    std::vector<std::string> seen;
    for (const auto& d : m.manifests) {
      if (!d.platform) {
        continue;
      }
      if (platform_matches(host, d.platform->os, d.platform->architecture, d.platform->variant)) {
        pick = &d;
        break;
      }
      if (d.platform->os != "unknown") {  // attestation manifests say unknown/unknown
        std::string p = platform_str(*d.platform);
        if (std::find(seen.begin(), seen.end(), p) == seen.end()) {
          seen.push_back(p);
        }
      }
    }
    if (!pick) {
      std::string what;
      for (const auto& p : seen) {
        what += (what.empty() ? "" : ", ") + p;
      }
      return wrong_platform(repository, digest, what.empty() ? "for no known platform" : what);
    }
    image_digest = pick->digest.str();
    BERTH_ASSIGN_OR_RETURN(auto child, s.source->manifest(repository, image_digest));
    BERTH_ASSIGN_OR_RETURN(m, oci::parse_manifest(child.first, child.second));
    if (m.is_index()) {
      return Error(Errc::Unsupported,
                   "image " + repository + "@" + digest + ": nested indexes are not supported");
    }
  }
  if (!m.config) {
    return Error(Errc::InvalidArgument,
                 "image " + repository + "@" + image_digest + " has no config");
  }
  BERTH_ASSIGN_OR_RETURN(std::string config_path, s.source->blob_path(m.config->digest.str()));
  BERTH_ASSIGN_OR_RETURN(std::string config_bytes, fs::read_file(config_path));
  BERTH_ASSIGN_OR_RETURN(Json cfg, parse_json(config_bytes, "image config"));
  PreparedImage img;
  img.repository = repository;
  img.digest = image_digest;
  img.config_digest = m.config->digest.str();
  img.platform = host;
  if (auto p = oci::parse_config_platform(config_bytes)) {
    if (!platform_matches(host, p->os, p->architecture, p->variant)) {
      return wrong_platform(repository, image_digest, platform_str(*p));
    }
    img.platform.os = p->os;
    img.platform.architecture = p->architecture;
    img.platform.variant = p->variant;
  }
  img.config = parse_image_config(cfg);
  for (const auto& l : m.layers) {
    if (!is_layer_media_type(l.media_type)) {
      return Error(Errc::Unsupported, "image " + repository + "@" + image_digest + ": layer " +
                                          l.digest.str() + " has unsupported media type " +
                                          l.media_type);
    }
    std::string layer_digest = l.digest.str();
    auto from_source = [&s, &layer_digest] { return s.source->blob_path(layer_digest); };
    BERTH_ASSIGN_OR_RETURN(std::string dir, s.ensure_layer(l.digest, from_source));
    img.layer_dirs.push_back(std::move(dir));
    img.layer_digests.push_back(l.digest.str());
  }
  return img;
}

Result<std::string> ImagePreparer::unpack_layer(const std::string& digest,
                                                const std::string& blob_path) {
  auto d = oci::Digest::parse(digest);
  if (!d) {
    return Error(Errc::InvalidArgument, "layer digest \"" + digest + "\": " + d.error().message());
  }
  auto given = [&blob_path, &digest]() -> Result<std::string> {
    struct stat st {};
    if (::stat(blob_path.c_str(), &st) != 0) {
      return Error(errno == ENOENT ? Errc::NotFound : Errc::Internal,
                   "layer " + digest + ": " + blob_path + ": " + std::strerror(errno));
    }
    return blob_path;
  };
  return state_->ensure_layer(*d, given);
}

Result<size_t> ImagePreparer::prune(const std::set<std::string>& keep) {
  State& s = *state_;
  std::set<std::string> keep_hex;
  for (const auto& k : keep) {
    auto d = oci::Digest::parse(k);
    keep_hex.insert(d ? d->hex : k);
  }
  size_t removed = 0;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : stdfs::directory_iterator(s.layers, ec)) {
    names.push_back(e.path().filename().string());
  }
  for (const auto& n : names) {
    if (n.size() != 64 || n.find_first_not_of("0123456789abcdef") != std::string::npos ||
        keep_hex.count(n)) {
      continue;
    }
    auto m = s.lock_for(n);
    std::lock_guard<std::mutex> g(*m);
    std::string dir = s.layers + "/" + n;
    Fd lock(::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
      continue;
    }
    // Rename first so a half-removed layer is never mistaken for an unpacked one.
    std::string doomed = s.layers + "/.tmp-prune-" + n + "-" + fs::random_hex(4);
    if (::rename(dir.c_str(), doomed.c_str()) != 0) {
      continue;
    }
    // The lock file stays: unlinking it could let two unpackers lock different inodes.
    BERTH_TRY(remove_tree(doomed));
    ++removed;
  }
  return removed;
}

}  // namespace berth::runtime
