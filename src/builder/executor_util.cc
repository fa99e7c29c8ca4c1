// SPDX-License-Identifier: Apache-2.0
// The executor's small helpers: paths, digests, hashing, rendering instructions.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "builder/dockerfile.h"
#include "builder/executor_internal.h"
#include "builder/git.h"
#include "builder/layer.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"
#include "oci/oci.h"

namespace berth::builder::executor_detail {

// ---- small helpers ------------------------------------------------------------------------

Error errno_error(const std::string& what) {
  std::string msg = what;
  msg += ": ";
  msg += std::strerror(errno);
  return make_error(errno == ENOENT ? Errc::NotFound : Errc::Internal, msg);
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) {
    return b;
  }
  if (b.empty()) {
    return a;
  }
  std::string s = a;
  if (s.back() != '/') {
    s += '/';
  }
  s += b;
  return s;
}

std::vector<std::string> split_components(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) {
      j = p.size();
    }
    std::string_view part = p.substr(i, j - i);
    if (!part.empty() && part != ".") {
      out.emplace_back(part);
    }
    i = j + 1;
  }
  return out;
}

std::string join_components(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) {
    if (!s.empty()) {
      s += '/';
    }
    s += p;
  }
  return s;
}

// Lexically cleans an absolute image path into its relative form ("/a/./b/../c" -> "a/c");
// ".." never climbs above the root.
std::string clean_image_path(std::string_view p) {
  std::vector<std::string> out;
  for (std::string& part : split_components(p)) {
    if (part == "..") {
      if (!out.empty()) {
        out.pop_back();
      }
    } else {
      out.push_back(std::move(part));
    }
  }
  return join_components(out);
}

std::string hex_of_digest(const std::string& digest) {
  size_t colon = digest.find(':');
  return colon == std::string::npos ? digest : digest.substr(colon + 1);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Build ids become part of container ids: [a-z0-9-], at most 64 characters.
std::string sanitize_id(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      out += c;
    } else {
      out += '-';
    }
  }
  if (out.size() > 64) {
    out.resize(64);
  }
  return out;
}

Result<std::string> read_link(const std::string& path) {
  std::string target(4096, '\0');
  ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
  if (n < 0) {
    return errno_error("readlink " + path);
  }
  target.resize(static_cast<size_t>(n));
  return target;
}

// Feeds a file's bytes into a hasher.
Status hash_file(Sha256& h, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return errno_error("open " + path);
  }
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* p) { ::close(*p); });
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  static thread_local std::vector<char> buf(1 << 18);
  for (;;) {
    ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_error("read " + path);
    }
    if (r == 0) {
      return ok();
    }
    h.update(buf.data(), static_cast<size_t>(r));
  }
}

// Appends a length-prefixed field, so that concatenations cannot collide.
void hash_field(Sha256& h, std::string_view s) {
  std::string len = std::to_string(s.size());
  len += ':';
  h.update(len);
  h.update(s);
}

std::vector<KeyValue> env_pairs(const Json& config) {
  std::vector<KeyValue> out;
  if (config.contains("Env") && config["Env"].is_array()) {
    for (const Json& e : config["Env"]) {
      if (!e.is_string()) {
        continue;
      }
      std::string s = e.get<std::string>();
      size_t eq = s.find('=');
      if (eq == std::string::npos) {
        out.push_back(KeyValue{s, ""});
      } else {
        out.push_back(KeyValue{s.substr(0, eq), s.substr(eq + 1)});
      }
    }
  }
  return out;
}

std::string json_array_text(const std::vector<std::string>& v) { return Json(v).dump(); }

// An instruction as the log and history show it, with variables substituted.
std::string render(const Instruction& ins) {
  std::string out = instruction_name(ins.kind);
  auto quote = [](const std::string& v) {
    if (v.empty() || v.find_first_of(" \t\"'\\$") != std::string::npos) {
      return Json(v).dump();
    }
    return v;
  };
  switch (ins.kind) {
    case InstructionKind::Env:
    case InstructionKind::Label:
      for (const KeyValue& kv : ins.as<KeyValues>().items) {
        out += ' ';
        out += kv.key;
        out += '=';
        out += quote(kv.value);
      }
      return out;
    case InstructionKind::Arg:
      for (const ArgDecl& d : ins.as<ArgDecls>().items) {
        out += ' ';
        out += d.name;
        if (d.default_value) {
          out += '=';
          out += quote(*d.default_value);
        }
      }
      return out;
    case InstructionKind::Expose:
    case InstructionKind::Volume:
      for (const std::string& w : ins.as<Words>().items) {
        out += ' ';
        out += w;
      }
      return out;
    case InstructionKind::Copy:
    case InstructionKind::Add: {
      const CopySpec& c = ins.as<CopySpec>();
      if (c.from) {
        out += " --from=";
        out += *c.from;
      }
      if (c.chown) {
        out += " --chown=";
        out += *c.chown;
      }
      if (c.chmod) {
        out += " --chmod=";
        out += *c.chmod;
      }
      for (const std::string& e : c.excludes) {
        out += " --exclude=";
        out += e;
      }
      for (const std::string& s : c.sources) {
        out += ' ';
        out += s;
      }
      out += ' ';
      out += c.destination;
      return out;
    }
    case InstructionKind::Workdir:
    case InstructionKind::User:
    case InstructionKind::StopSignal:
      out += ' ';
      out += ins.as<Text>().value;
      return out;
    default:
      return ins.text;
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> split_char(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) {
      j = s.size();
    }
    out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace berth::builder::executor_detail
