// SPDX-License-Identifier: Apache-2.0
// The OCI bundle's config.json (runtime spec 1.0.2) and what goes into it: the process user
// from the image's /etc/passwd and /etc/group, the environment, the overlay options.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>

#include "common/json.h"
#include "runtime/internal.h"
#include "runtime/seccomp.h"

namespace berth::runtime::detail {

namespace {

// Reads rootfs/rel with every symlink resolved inside rootfs (an image's /etc/passwd may be
// a symlink; it must never reach the host's files). nullopt when absent.
std::optional<std::string> read_in_root(const std::string& rootfs, const std::string& rel) {
  int root = ::open(rootfs.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (root < 0) {
    return std::nullopt;
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
  ::close(root);
  if (fd < 0) {
    return std::nullopt;
  }
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < (8u << 20)) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::vector<std::vector<std::string>> parse_colon_file(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> f;
    size_t s = 0;
    for (;;) {
      size_t c = line.find(':', s);
      f.push_back(line.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) {
        break;
      }
      s = c + 1;
    }
    rows.push_back(std::move(f));
  }
  return rows;
}

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  unsigned long v = std::stoul(s);
  if (v > 0xFFFFFFFEul) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

}  // namespace

Result<ProcessUser> resolve_user(const std::string& rootfs, const std::string& user) {
  ProcessUser u;
  if (user.empty() || user == "root" || user == "0" || user == "0:0" || user == "root:root") {
    u.home = "/root";
    return u;
  }
  std::string uname = user, gname;
  if (size_t c = user.find(':'); c != std::string::npos) {
    uname = user.substr(0, c);
    gname = user.substr(c + 1);
  }
  auto passwd_text = read_in_root(rootfs, "/etc/passwd");
  auto passwd = parse_colon_file(passwd_text.value_or(""));
  std::string login;  // the user's name, for supplementary groups
  bool have_primary = false;
  auto uid_num = parse_id(uname);
  for (const auto& row : passwd) {
    if (row.size() < 4) {
      continue;
    }
    bool match = uid_num ? parse_id(row[2]) == uid_num : row[0] == uname;
    if (!match) {
      continue;
    }
    auto id = parse_id(row[2]);
    auto gid = parse_id(row[3]);
    if (!id || !gid) {
      continue;
    }
    u.uid = *id;
    u.gid = *gid;
    u.home = row.size() > 5 ? row[5] : "";
    login = row[0];
    have_primary = true;
    break;
  }
  if (!have_primary) {
    if (!uid_num) {
      return Error(Errc::InvalidArgument,
                   "user \"" + uname + "\" is not in the image's /etc/passwd" +
                       (passwd_text ? "" : " (the image has no /etc/passwd)") +
                       ": use a numeric uid or add the user in the image");
    }
    u.uid = *uid_num;
    u.gid = 0;
    u.home.assign(1, '/');  // not = "/": GCC 12 -O3 reports a false -Wrestrict
  }
  auto group_text = read_in_root(rootfs, "/etc/group");
  auto groups = parse_colon_file(group_text.value_or(""));
  if (!gname.empty()) {
    auto gid_num = parse_id(gname);
    if (gid_num) {
      u.gid = *gid_num;
    } else {
      bool found = false;
      for (const auto& row : groups) {
        if (row.size() >= 3 && row[0] == gname) {
          if (auto g = parse_id(row[2])) {
            u.gid = *g;
            found = true;
            break;
          }
        }
      }
      if (!found) {
        return Error(Errc::InvalidArgument, "group \"" + gname +
                                                "\" is not in the image's /etc/group: use a "
                                                "numeric gid or add the group in the image");
      }
    }
  } else if (!login.empty()) {
    for (const auto& row : groups) {
      if (row.size() < 4 || row[3].empty()) {
        continue;
      }
      auto g = parse_id(row[2]);
      if (!g || *g == u.gid) {
        continue;
      }
      size_t s = 0;
      const std::string& members = row[3];
      for (;;) {
        size_t c = members.find(',', s);
        if (members.substr(s, c == std::string::npos ? std::string::npos : c - s) == login) {
          u.additional_gids.push_back(*g);
          break;
        }
        if (c == std::string::npos) {
          break;
        }
        s = c + 1;
      }
    }
  }
  return u;
}

std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::vector<std::string>& spec_env,
                                   const std::string& hostname, const std::string& home) {
  std::vector<std::string> out;
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  auto set = [&](const std::string& kv) {
    std::string k = key_of(kv);
    for (auto& e : out) {
      if (key_of(e) == k) {
        e = kv;
        return;
      }
    }
    out.push_back(kv);
  };
  auto has = [&](const std::string& k) {
    for (const auto& e : out) {
      if (key_of(e) == k) {
        return true;
      }
    }
    return false;
  };
  for (const auto& e : image_env) {
    set(e);
  }
  for (const auto& e : spec_env) {
    set(e);
  }
  if (!has("PATH")) {
    out.insert(out.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  }
  if (!has("HOSTNAME")) {
    out.push_back("HOSTNAME=" + hostname);
  }
  if (!has("HOME")) {
    out.push_back("HOME=" + (home.empty() ? std::string("/") : home));
  }
  return out;
}

std::string overlay_options(const std::vector<std::string>& lower_top_first,
                            const std::string& upper, const std::string& work) {
  std::string o = "lowerdir=";
  for (size_t i = 0; i < lower_top_first.size(); ++i) {
    if (i) {
      o += ':';
    }
    o += lower_top_first[i];
  }
  o += ",upperdir=" + upper + ",workdir=" + work;
  return o;
}

namespace {

Json mount(const char* dest, const char* type, const char* source,
           std::vector<std::string> options) {
  Json m = Json::object();
  m["destination"] = dest;
  m["type"] = type;
  m["source"] = source;
  m["options"] = std::move(options);
  return m;
}

Json bind_mount(const std::string& dest, const std::string& source) {
  Json m = Json::object();
  m["destination"] = dest;
  m["type"] = "bind";
  m["source"] = source;
  m["options"] = std::vector<std::string>{"rbind", "ro", "nosuid", "nodev", "noexec"};
  return m;
}

}  // namespace

std::string make_config_json(const BundleParams& p) {
  // Docker's default capability set.
  const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  Json j = Json::object();
  j["ociVersion"] = "1.0.2";

  Json proc = Json::object();
  proc["terminal"] = false;
  Json user = Json::object();
  user["uid"] = p.user.uid;
  user["gid"] = p.user.gid;
  if (!p.user.additional_gids.empty()) {
    user["additionalGids"] = p.user.additional_gids;
  }
  proc["user"] = user;
  proc["args"] = p.args;
  proc["env"] = p.env;
  proc["cwd"] = p.cwd.empty() ? "/" : p.cwd;
  Json capj = Json::object();
  capj["bounding"] = caps;
  capj["effective"] = caps;
  capj["permitted"] = caps;
  proc["capabilities"] = capj;
  Json rl = Json::object();
  rl["type"] = "RLIMIT_NOFILE";
  rl["hard"] = p.nofile;
  rl["soft"] = p.nofile;
  proc["rlimits"] = Json::array({rl});
  proc["noNewPrivileges"] = true;
  j["process"] = proc;

  Json root = Json::object();
  root["path"] = "rootfs";
  root["readonly"] = p.confinement.read_only_rootfs;
  j["root"] = root;
  j["hostname"] = p.id;

  Json mounts = Json::array();
  mounts.push_back(mount("/proc", "proc", "proc", {}));
  mounts.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push_back(
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  mounts.push_back(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  mounts.push_back(
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  if (p.confinement.read_only_rootfs) {
    // Scratch space for programs that need some (lock files, sockets, temp files); as Docker's
    // --read-only --tmpfs /tmp, it is lost when the container stops.
    mounts.push_back(
        mount("/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777", "size=65536k"}));
  }
  if (!p.hosts_file.empty()) {
    mounts.push_back(bind_mount("/etc/hosts", p.hosts_file));
  }
  if (!p.hostname_file.empty()) {
    mounts.push_back(bind_mount("/etc/hostname", p.hostname_file));
  }
  if (!p.resolv_file.empty()) {
    mounts.push_back(bind_mount("/etc/resolv.conf", p.resolv_file));
  }
  for (const auto& b : p.binds) {
    // No noexec: a build step runs scripts and binaries from its source checkout.
    Json m = Json::object();
    m["destination"] = b.destination;
    m["type"] = "bind";
    m["source"] = b.source;
    m["options"] = std::vector<std::string>{"rbind", b.read_only ? "ro" : "rw", "nosuid", "nodev"};
    mounts.push_back(std::move(m));
  }
  j["mounts"] = mounts;

  Json linux = Json::object();
  Json res = Json::object();
  Json dev = Json::object();
  dev["allow"] = false;
  dev["access"] = "rwm";
  res["devices"] = Json::array({dev});
  if (p.memory_bytes > 0) {
    Json mem = Json::object();
    mem["limit"] = p.memory_bytes;
    res["memory"] = mem;
  }
  if (p.cpus > 0) {
    Json cpu = Json::object();
    constexpr int64_t kPeriod = 100000;
    cpu["period"] = kPeriod;
    cpu["quota"] = std::max<int64_t>(1000, std::llround(p.cpus * kPeriod));
    res["cpu"] = cpu;
  }
  if (p.confinement.pids_limit > 0) {
    // A fork bomb hits this (fork fails with EAGAIN) instead of the host's pid space.
    Json pids = Json::object();
    pids["limit"] = p.confinement.pids_limit;
    res["pids"] = pids;
  }
  linux["resources"] = res;
  if (!p.cgroups_path.empty()) {
    linux["cgroupsPath"] = p.cgroups_path;
  }
  Json ns = Json::array();
  if (p.userns) {
    Json n = Json::object();
    n["type"] = "user";
    ns.push_back(n);
    Json m = Json::object();
    m["containerID"] = 0;
    m["hostID"] = kUsernsHostBase;
    m["size"] = kUsernsSize;
    linux["uidMappings"] = Json::array({m});
    linux["gidMappings"] = Json::array({m});
  }
  for (const char* t : {"pid", "network", "ipc", "uts", "mount"}) {
    if (p.host_network && std::string_view(t) == "network") {
      continue;  // the host's network (a build step fetching packages)
    }
    Json n = Json::object();
    n["type"] = t;
    ns.push_back(n);
  }
  linux["namespaces"] = ns;
  linux["maskedPaths"] = std::vector<std::string>{
      "/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/sys/firmware",       "/proc/scsi"};
  linux["readonlyPaths"] = std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq",
                                                    "/proc/sys", "/proc/sysrq-trigger"};
  if (p.confinement.seccomp) {
    linux["seccomp"] = default_seccomp_profile();
  }
  j["linux"] = linux;
  return j.dump();
}

}  // namespace berth::runtime::detail
