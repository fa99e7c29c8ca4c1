// SPDX-License-Identifier: Apache-2.0
// The Dockerfile executor: stages in dependency order, one layer per RUN/COPY/ADD (and per
// WORKDIR that has to create its directory), a content-addressed step cache, and the OCI
// config and manifest at the end. Filesystem views (the context, a stack of unpacked layers)
// resolve COPY sources the way overlayfs would show them, without mounting anything.
#include "builder/executor.h"

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
#include "builder/git.h"
#include "builder/layer.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"
#include "oci/oci.h"

namespace berth::builder {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* kConfigMediaType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kCacheVersion = "berth-build-cache-v1";
constexpr int kMaxSymlinkHops = 40;
// Dockerfile, .dockerignore, /etc/passwd and /etc/group of a stage: text a commit controls.
constexpr uint64_t kMaxInputFile = 4 << 20;

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

// ---- filesystem views ---------------------------------------------------------------------

struct Node {
  std::string host;  // the file on disk ("" for the root of an empty view)
  struct stat st {};
};

// A read-only tree COPY reads from: the build context, or a stage's or image's layers.
class View {
 public:
  virtual ~View() = default;
  /// The entry at rel ("" = the root), not following a final symlink; nullopt when absent.
  virtual Result<std::optional<Node>> lstat(const std::string& rel) const = 0;
  /// The names in directory rel, sorted bytewise.
  virtual Result<std::vector<std::string>> list(const std::string& rel) const = 0;
  /// True when symlinks may not leave the root (the build context); false: resolved inside
  /// the root like a chroot (absolute targets start at the root, ".." stops there).
  virtual bool confined() const = 0;
  /// "the build context", "stage build", "image web/base:1".
  virtual std::string where() const = 0;
};

class DirView : public View {
 public:
  DirView(std::string root, bool confined, std::string where)
      : root_(std::move(root)), confined_(confined), where_(std::move(where)) {}

  Result<std::optional<Node>> lstat(const std::string& rel) const override {
    Node n;
    n.host = join_path(root_, rel);
    if (::lstat(n.host.c_str(), &n.st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        return std::optional<Node>();
      }
      return errno_error("lstat " + n.host);
    }
    return std::optional<Node>(std::move(n));
  }
  Result<std::vector<std::string>> list(const std::string& rel) const override {
    return fs::list_dir(join_path(root_, rel));
  }
  bool confined() const override { return confined_; }
  std::string where() const override { return where_; }

 private:
  std::string root_;
  bool confined_;
  std::string where_;
};

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

bool is_opaque(const std::string& path) {
  char v[4];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') {
      return true;
    }
  }
  return false;
}

// The merged view overlayfs would give of unpacked layer dirs (bottom first): the topmost
// layer that has a path wins; overlay whiteouts (0/0 character devices) delete it, an opaque
// directory hides what lower layers have below it, a non-directory hides lower directories.
class LayersView : public View {
 public:
  LayersView(std::vector<std::string> dirs, std::string where)
      : dirs_(std::move(dirs)), where_(std::move(where)) {}

  Result<std::optional<Node>> lstat(const std::string& rel) const override {
    std::vector<std::string> comps = split_components(rel);
    if (comps.empty()) {
      Node n;
      if (dirs_.empty()) {
        n.st.st_mode = S_IFDIR | 0755;
        return std::optional<Node>(n);
      }
      n.host = dirs_.back();
      if (::lstat(n.host.c_str(), &n.st) != 0) {
        return errno_error("lstat " + n.host);
      }
      return std::optional<Node>(n);
    }
    for (size_t i = dirs_.size(); i-- > 0;) {
      std::string cur = dirs_[i];
      bool hides_lower = false;
      for (size_t k = 0; k < comps.size(); ++k) {
        cur += '/';
        cur += comps[k];
        struct stat st {};
        if (::lstat(cur.c_str(), &st) != 0) {
          if (errno != ENOENT && errno != ENOTDIR) {
            return errno_error("lstat " + cur);
          }
          if (hides_lower) {
            return std::optional<Node>();
          }
          break;  // this layer says nothing about the rest: look below
        }
        if (is_whiteout(st)) {
          return std::optional<Node>();
        }
        if (k + 1 == comps.size()) {
          return std::optional<Node>(Node{cur, st});
        }
        if (!S_ISDIR(st.st_mode)) {
          return std::optional<Node>();
        }
        if (is_opaque(cur)) {
          hides_lower = true;
        }
      }
    }
    return std::optional<Node>();
  }

  Result<std::vector<std::string>> list(const std::string& rel) const override {
    std::set<std::string> candidates;
    for (const std::string& d : dirs_) {
      std::string path = join_path(d, rel);
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        BERTH_ASSIGN_OR_RETURN(auto names, fs::list_dir(path));
        candidates.insert(names.begin(), names.end());
      }
    }
    std::vector<std::string> out;
    for (const std::string& name : candidates) {
      BERTH_ASSIGN_OR_RETURN(auto n, lstat(join_path(rel, name)));
      if (n) {
        out.push_back(name);
      }
    }
    return out;
  }
  bool confined() const override { return false; }
  std::string where() const override { return where_; }

 private:
  std::vector<std::string> dirs_;
  std::string where_;
};

struct Resolved {
  std::string rel;  // the path with symlinks resolved (missing components kept literally)
  std::optional<Node> node;
};

// Resolves path inside the view, following symlinks in every component (and the last one
// when follow_final). In a confined view a link or ".." that leaves the root is an error
// naming `what`.
Result<Resolved> resolve(const View& v, const std::string& path, bool follow_final,
                         const std::string& what) {
  std::deque<std::string> todo;
  for (std::string& c : split_components(path)) {
    todo.push_back(std::move(c));
  }
  std::vector<std::string> done;
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == "..") {
      if (done.empty()) {
        if (v.confined()) {
          return make_error(Errc::InvalidArgument,
                            what + ": the path leaves " + v.where() + " (..)");
        }
        continue;
      }
      done.pop_back();
      continue;
    }
    done.push_back(c);
    std::string rel = join_components(done);
    BERTH_ASSIGN_OR_RETURN(std::optional<Node> node, v.lstat(rel));
    if (!node) {
      for (std::string& rest : todo) {
        done.push_back(std::move(rest));
      }
      return Resolved{join_components(done), std::nullopt};
    }
    if (S_ISLNK(node->st.st_mode) && (!todo.empty() || follow_final)) {
      if (++hops > kMaxSymlinkHops) {
        return make_error(Errc::InvalidArgument, what + ": too many levels of symbolic links");
      }
      BERTH_ASSIGN_OR_RETURN(std::string target, read_link(node->host));
      if (!target.empty() && target[0] == '/') {
        if (v.confined()) {
          return make_error(Errc::InvalidArgument, what + ": symlink " + rel + " -> " + target +
                                                       " points outside " + v.where());
        }
        done.clear();
      } else {
        done.pop_back();
        // A relative target that climbs out of the root is refused in a confined view.
        if (v.confined()) {
          size_t depth = done.size();
          for (const std::string& t : split_components(target)) {
            if (t == "..") {
              if (depth == 0) {
                return make_error(
                    Errc::InvalidArgument,
                    what + ": symlink " + rel + " -> " + target + " points outside " + v.where());
              }
              --depth;
            } else {
              ++depth;
            }
          }
        }
      }
      std::vector<std::string> tc = split_components(target);
      todo.insert(todo.begin(), tc.begin(), tc.end());
      continue;
    }
    if (!todo.empty() && !S_ISDIR(node->st.st_mode)) {
      for (std::string& rest : todo) {
        done.push_back(std::move(rest));
      }
      return Resolved{join_components(done), std::nullopt};
    }
    if (todo.empty()) {
      return Resolved{rel, std::move(node)};
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::optional<Node> root, v.lstat(""));
  return Resolved{"", std::move(root)};
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// ---- archives (ADD) -----------------------------------------------------------------------

struct ArchiveReader {
  archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
  ArchiveReader() {
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
  }
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;
};

// A tar (plain, gzip, bzip2 or xz), recognised by its content as Docker does.
bool is_tar_archive(const std::string& path) {
  ArchiveReader r;
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return false;
  }
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(r.a, &e);
  return rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
}

// Rewrites an archive member path into dest (relative, no "..").
std::optional<std::string> member_path(const char* name, const std::string& dest) {
  if (name == nullptr) {
    return std::nullopt;
  }
  std::vector<std::string> parts = split_components(name);
  for (const std::string& p : parts) {
    if (p == "..") {
      return std::nullopt;
    }
  }
  if (parts.empty()) {
    return std::nullopt;
  }
  return join_path(dest, join_components(parts));
}

Status extract_archive(const std::string& path, const std::string& dest, const std::string& what) {
  ArchiveReader r;
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
  }
  archive* w = archive_write_disk_new();
  std::unique_ptr<archive, int (*)(archive*)> wguard(w, archive_write_free);
  archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                        ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR |
                                        ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                        ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  archive_write_disk_set_standard_lookup(w);
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK) {
      continue;  // device nodes do not come from a context
    }
    auto name = member_path(archive_entry_pathname(e), dest);
    if (!name) {
      std::string n = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
      if (split_components(n).empty()) {
        continue;  // "./" itself
      }
      return make_error(Errc::InvalidArgument, what + ": archive member " + n + " escapes");
    }
    archive_entry_copy_pathname(e, name->c_str());
    if (const char* hl = archive_entry_hardlink(e)) {
      auto target = member_path(hl, dest);
      if (!target) {
        return make_error(Errc::InvalidArgument,
                          what + ": archive hardlink " + std::string(hl) + " escapes");
      }
      archive_entry_copy_hardlink(e, target->c_str());
    }
    if (archive_write_header(w, e) != ARCHIVE_OK) {
      return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(w));
    }
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
      int d = archive_read_data_block(r.a, &buf, &size, &offset);
      if (d == ARCHIVE_EOF) {
        break;
      }
      if (d != ARCHIVE_OK && d != ARCHIVE_WARN) {
        return make_error(Errc::InvalidArgument, what + ": " + archive_error_string(r.a));
      }
      if (archive_write_data_block(w, buf, size, offset) != ARCHIVE_OK) {
        return make_error(Errc::Internal, what + ": " + archive_error_string(w));
      }
    }
    if (archive_write_finish_entry(w) != ARCHIVE_OK) {
      return make_error(Errc::Internal, what + ": " + archive_error_string(w));
    }
  }
  if (archive_write_close(w) != ARCHIVE_OK) {
    return make_error(Errc::Internal, what + ": " + archive_error_string(w));
  }
  return ok();
}

// ---- build state --------------------------------------------------------------------------

struct StageState {
  Json config = Json::object();  // the image config's "config" object
  Json history = Json::array();
  std::vector<std::string> diff_ids;
  std::vector<registry::LocalBlob> blobs;  // parallel to diff_ids
  std::vector<std::string> layer_dirs;     // parallel to diff_ids
  std::string base;                        // "scratch" or "image <digest>": the cache chain root
  std::string author;
  std::vector<std::string> shell = default_shell();
  bool cmd_set = false;  // CMD given in this stage: a later ENTRYPOINT keeps it
  bool built = false;
};

// What one COPY/ADD copies: a file, link or directory from a view to a path in the image.
struct CopyItem {
  std::string host;
  std::string dest;  // image path, relative ("app/server.js")
  struct stat st {};
};

struct ArchiveItem {
  std::string host;
  std::string dest;  // directory in the image, relative
};

struct CacheEntry {
  std::string digest;
  std::string diff_id;
  int64_t size = 0;
  bool empty = false;
};

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

struct Passwd {
  std::map<std::string, std::pair<uint32_t, uint32_t>> users;  // name -> uid, gid
  std::map<std::string, uint32_t> groups;
};

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

// ---- the build ----------------------------------------------------------------------------

class Build {
 public:
  Build(const ExecutorOptions& opts, const BuildInput& in) : opts_(opts), in_(in) {}

  ~Build() {
    std::error_code ec;
    if (!tmp_.empty()) {
      stdfs::remove_all(tmp_, ec);
    }
  }
  Build(const Build&) = delete;
  Build& operator=(const Build&) = delete;

  Result<BuiltImage> run();

 private:
  void log(std::string_view line) {
    if (in_.log) {
      if (in_.secrets.empty()) {
        in_.log(line);
      } else {
        in_.log(mask_secrets(line, in_.secrets));
      }
    }
  }
  std::string mask(const std::string& s) const {
    return in_.secrets.empty() ? s : mask_secrets(s, in_.secrets);
  }
  Error step_error(const Instruction& ins, const Error& e) const {
    std::string prefix = file_name_;
    prefix += ':';
    prefix += std::to_string(ins.line);
    prefix += ": ";
    if (e.message().rfind(prefix, 0) == 0) {
      return Error(e.code(), mask(e.message()));
    }
    return Error(e.code(), mask(prefix + e.message()));
  }
  Status check_cancel() const {
    if (in_.cancel != nullptr && in_.cancel->load()) {
      return make_error(Errc::Cancelled, "build cancelled");
    }
    return ok();
  }

  Status prepare();
  Result<std::vector<size_t>> needed_stages(size_t target);
  Status run_stage(size_t index);
  Status begin_from(size_t index, StageState& st, BuildVars& vars);
  Status run_instruction(StageState& st, BuildVars& vars, const Instruction& raw,
                         const std::string& task_suffix);
  Result<const BaseImage*> base_image(const std::string& ref);
  void add_history(StageState& st, const std::string& created_by, bool empty);

  // Layer steps.
  Status run_step(StageState& st, BuildVars& vars, const Instruction& ins,
                  const std::string& task_suffix);
  Status copy_step(StageState& st, BuildVars& vars, const Instruction& ins);
  Status workdir_step(StageState& st, const std::string& dir);
  using MakeLayer = std::function<Result<LayerBlob>(const std::string& out_path)>;
  Status layer_step(StageState& st, const std::string& key_material, const MakeLayer& make,
                    const std::string& created_by);
  Result<std::optional<CacheEntry>> cache_lookup(const std::string& key);
  Status cache_store(const std::string& key, const CacheEntry& e);

  // COPY helpers.
  Result<std::pair<uint32_t, uint32_t>> resolve_chown(const StageState& st,
                                                      const std::string& chown);
  Status collect_dir(const View& v, const std::string& rel, const std::string& logical,
                     const std::string& excl_rel, const std::string& dest,
                     const DockerIgnore* excludes, std::vector<CopyItem>& out);
  bool ignored(const View& v, const std::string& logical) const {
    return ignore_ && &v == context_view_.get() && ignore_->excluded(logical);
  }
  bool may_reinclude(const View& v, const std::string& logical) const {
    return ignore_ && &v == context_view_.get() && ignore_->may_reinclude_below(logical);
  }

  std::string blob_path(const std::string& digest) const {
    return join_path(opts_.root, "blobs/" + hex_of_digest(digest));
  }

  const ExecutorOptions& opts_;
  const BuildInput& in_;
  std::string tmp_;
  std::string file_name_ = "Dockerfile";
  Dockerfile df_;
  std::optional<DockerIgnore> ignore_;
  std::unique_ptr<View> context_view_;
  std::map<std::string, BaseImage> bases_;
  std::vector<StageState> states_;
  std::unique_ptr<BuildVars> globals_;
  runtime::Platform platform_;
  std::string created_;
  size_t current_stage_ = 0;
  int step_ = 0;
  int total_ = 0;
  int tmp_seq_ = 0;
  StepTiming* current_ = nullptr;
  BuiltImage out_;
};

Status Build::prepare() {
  if (opts_.root.empty()) {
    return make_error(Errc::InvalidArgument, "executor root is not set");
  }
  if (in_.id.empty()) {
    return make_error(Errc::InvalidArgument, "build id is empty");
  }
  for (const char* sub : {"blobs", "cache", "tmp"}) {
    BERTH_TRY(fs::make_dirs(join_path(opts_.root, sub)));
  }
  tmp_ = join_path(opts_.root, "tmp/" + sanitize_id(in_.id));
  std::error_code ec;
  stdfs::remove_all(tmp_, ec);
  BERTH_TRY(fs::make_dirs(tmp_));

  platform_ = runtime::host_platform();
  int64_t now = in_.source_date_epoch.value_or(static_cast<int64_t>(std::time(nullptr)));
  created_ = rfc3339(now);

  file_name_ = stdfs::path(in_.dockerfile).filename().string();
  if (file_name_.empty()) {
    file_name_ = "Dockerfile";
  }
  auto text = fs::read_regular_file(in_.dockerfile, kMaxInputFile, file_name_);
  if (!text) {
    return text.error();
  }
  ParseOptions po;
  po.file_name = file_name_;
  BERTH_ASSIGN_OR_RETURN(df_, parse_dockerfile(*text, po));
  for (const Warning& w : df_.warnings) {
    log("[Warning] " + w.message);
  }

  struct stat st {};
  if (in_.context_dir.empty() || ::stat(in_.context_dir.c_str(), &st) != 0 ||
      !S_ISDIR(st.st_mode)) {
    return make_error(Errc::NotFound, "build context " + in_.context_dir + " is not a directory");
  }
  context_view_ = std::make_unique<DirView>(in_.context_dir, true, "the build context");
  std::string ignore_path = join_path(in_.context_dir, ".dockerignore");
  if (::lstat(ignore_path.c_str(), &st) == 0) {
    BERTH_ASSIGN_OR_RETURN(std::string itext,
                           fs::read_regular_file(ignore_path, kMaxInputFile, ".dockerignore"));
    BERTH_ASSIGN_OR_RETURN(ignore_, DockerIgnore::parse(itext));
  }

  std::set<std::string> unused = unused_build_args(df_, in_.build_args);
  if (!unused.empty()) {
    std::string m = "[Warning] One or more build-args [";
    bool first = true;
    for (const std::string& a : unused) {
      m += first ? "" : " ";
      m += a;
      first = false;
    }
    m += "] were not consumed";
    log(m);
  }

  globals_ = std::make_unique<BuildVars>(
      in_.build_args, platform_args(platform_.os, platform_.architecture, platform_.variant,
                                    platform_.os, platform_.architecture, platform_.variant));
  for (const Instruction& ins : df_.global_args) {
    BERTH_ASSIGN_OR_RETURN(Instruction exp, expand_instruction(ins, globals_->global_lookup(),
                                                               df_.directives.escape, file_name_));
    for (const ArgDecl& d : exp.as<ArgDecls>().items) {
      globals_->declare_global(d);
    }
  }
  states_.resize(df_.stages.size());
  return ok();
}

Result<std::vector<size_t>> Build::needed_stages(size_t target) {
  std::set<size_t> seen;
  std::vector<size_t> todo{target};
  while (!todo.empty()) {
    size_t i = todo.back();
    todo.pop_back();
    if (!seen.insert(i).second) {
      continue;
    }
    const Stage& s = df_.stages[i];
    BERTH_ASSIGN_OR_RETURN(FromSpec from, expand_from(s, globals_->global_lookup(),
                                                      df_.directives.escape, file_name_));
    StageRef ref = resolve_base(df_, i, from.image);
    if (ref.stage) {
      todo.push_back(*ref.stage);
    }
    for (const Instruction& ins : s.instructions) {
      if (ins.kind == InstructionKind::Copy && ins.as<CopySpec>().from) {
        BERTH_ASSIGN_OR_RETURN(StageRef r, resolve_copy_from(df_, i, *ins.as<CopySpec>().from));
        if (r.stage) {
          todo.push_back(*r.stage);
        }
      }
    }
  }
  return std::vector<size_t>(seen.begin(), seen.end());
}

Result<const BaseImage*> Build::base_image(const std::string& ref) {
  if (auto it = bases_.find(ref); it != bases_.end()) {
    return &it->second;
  }
  if (!in_.base_images) {
    return make_error(Errc::FailedPrecondition,
                      "base image " + ref + ": this build cannot pull images");
  }
  BERTH_ASSIGN_OR_RETURN(BaseImage img, in_.base_images(ref));
  if (img.layer_blobs.size() != img.prepared.layer_dirs.size()) {
    return make_error(Errc::Internal,
                      "base image " + ref + ": " + std::to_string(img.prepared.layer_dirs.size()) +
                          " layer dirs but " + std::to_string(img.layer_blobs.size()) + " blobs");
  }
  auto [it, _] = bases_.emplace(ref, std::move(img));
  return &it->second;
}

void Build::add_history(StageState& st, const std::string& created_by, bool empty) {
  Json h = Json::object();
  h["created"] = created_;
  h["created_by"] = mask(created_by);
  if (empty) {
    h["empty_layer"] = true;
  }
  st.history.push_back(std::move(h));
}

Status Build::begin_from(size_t index, StageState& st, BuildVars& vars) {
  const Stage& stage = df_.stages[index];
  BERTH_ASSIGN_OR_RETURN(FromSpec from, expand_from(stage, globals_->global_lookup(),
                                                    df_.directives.escape, file_name_));
  if (!from.platform.empty() && from.platform != platform_.str() &&
      from.platform != platform_.os + "/" + platform_.architecture) {
    return step_error(stage.from,
                      make_error(Errc::Unsupported, "FROM --platform=" + from.platform +
                                                        ": berth builds for this host's platform " +
                                                        platform_.str() + " only"));
  }
  StageRef ref = resolve_base(df_, index, from.image);
  if (ref.stage) {
    st = states_[*ref.stage];
    st.cmd_set = false;
  } else if (ref.scratch) {
    st = StageState{};
    st.base = "scratch";
  } else {
    auto base = base_image(from.image);
    if (!base) {
      return step_error(stage.from, base.error());
    }
    const BaseImage& b = **base;
    st = StageState{};
    st.base = "image ";
    st.base += b.digest;
    auto cfg = parse_json(b.config_json, "base image config");
    if (!cfg || !cfg->is_object()) {
      return step_error(
          stage.from, make_error(Errc::InvalidArgument,
                                 "base image " + from.image + ": its config is not a JSON object"));
    }
    if (cfg->contains("config") && (*cfg)["config"].is_object()) {
      st.config = (*cfg)["config"];
    }
    if (cfg->contains("history") && (*cfg)["history"].is_array()) {
      st.history = (*cfg)["history"];
    }
    if (cfg->contains("author") && (*cfg)["author"].is_string()) {
      st.author = (*cfg)["author"].get<std::string>();
    }
    const Json* rootfs = cfg->contains("rootfs") ? &(*cfg)["rootfs"] : nullptr;
    if (rootfs != nullptr && rootfs->contains("diff_ids") && (*rootfs)["diff_ids"].is_array()) {
      for (const Json& d : (*rootfs)["diff_ids"]) {
        st.diff_ids.push_back(d.is_string() ? d.get<std::string>() : "");
      }
    }
    if (st.diff_ids.size() != b.prepared.layer_dirs.size()) {
      return step_error(stage.from,
                        make_error(Errc::InvalidArgument,
                                   "base image " + from.image + ": its config lists " +
                                       std::to_string(st.diff_ids.size()) + " diff_ids for " +
                                       std::to_string(b.prepared.layer_dirs.size()) + " layers"));
    }
    st.layer_dirs = b.prepared.layer_dirs;
    st.blobs = b.layer_blobs;
    for (registry::LocalBlob& lb : st.blobs) {
      if (lb.media_type.empty() || lb.media_type == oci::kDockerManifest ||
          lb.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip") {
        lb.media_type = kLayerMediaType;
      }
    }
  }
  if (st.config.contains("Shell") && st.config["Shell"].is_array()) {
    st.shell = st.config["Shell"].get<std::vector<std::string>>();
  } else {
    st.shell = default_shell();
  }
  vars = *globals_;
  vars.begin_stage(env_pairs(st.config));
  return ok();
}

Status Build::run_stage(size_t index) {
  const Stage& stage = df_.stages[index];
  current_stage_ = index;
  StageState st;
  BuildVars vars = *globals_;

  auto started = std::chrono::steady_clock::now();
  ++step_;
  std::string header = "Step ";
  header += std::to_string(step_);
  header += '/';
  header += std::to_string(total_);
  header += " : ";
  header += stage.from.text;
  log(header);
  out_.steps.push_back(StepTiming{stage.from.line, mask(stage.from.text), false, 0});
  BERTH_TRY(begin_from(index, st, vars));
  out_.steps.back().ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();

  // ONBUILD triggers of the base run right after FROM, and are not inherited further.
  if (st.config.contains("OnBuild") && st.config["OnBuild"].is_array() &&
      !st.config["OnBuild"].empty()) {
    std::vector<std::string> triggers;
    for (const Json& t : st.config["OnBuild"]) {
      if (t.is_string()) {
        triggers.push_back(t.get<std::string>());
      }
    }
    st.config.erase("OnBuild");
    log("# Executing " + std::to_string(triggers.size()) + " build trigger" +
        (triggers.size() == 1 ? "" : "s"));
    int k = 0;
    for (const std::string& t : triggers) {
      ++k;
      auto ins = parse_instruction(t, stage.from.line, df_.directives.escape, file_name_);
      if (!ins) {
        return step_error(stage.from, ins.error().with_context("ONBUILD trigger"));
      }
      log(" ---> ONBUILD " + t);
      BERTH_TRY(run_instruction(st, vars, *ins, "-onbuild-" + std::to_string(k)));
    }
  }

  for (const Instruction& ins : stage.instructions) {
    BERTH_TRY(check_cancel());
    started = std::chrono::steady_clock::now();
    ++step_;
    header = "Step ";
    header += std::to_string(step_);
    header += '/';
    header += std::to_string(total_);
    header += " : ";
    header += ins.text;
    log(header);
    out_.steps.push_back(StepTiming{ins.line, mask(ins.text), false, 0});
    current_ = &out_.steps.back();
    BERTH_TRY(run_instruction(st, vars, ins, ""));
    current_ = nullptr;
    out_.steps.back().ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
  }
  st.built = true;
  states_[index] = std::move(st);
  return ok();
}

Status Build::run_instruction(StageState& st, BuildVars& vars, const Instruction& raw,
                              const std::string& task_suffix) {
  auto exp_r = expand_instruction(raw, vars.lookup(), df_.directives.escape, file_name_);
  if (!exp_r) {
    return step_error(raw, exp_r.error());
  }
  const Instruction& ins = *exp_r;
  if (current_ != nullptr && substitutes_variables(ins.kind)) {
    current_->text = mask(render(ins));
  }
  Json& cfg = st.config;
  switch (ins.kind) {
    case InstructionKind::From:
      return step_error(ins, make_error(Errc::InvalidArgument, "FROM is not allowed here"));
    case InstructionKind::Run: {
      Status s = run_step(st, vars, ins, task_suffix);
      return s ? s : step_error(ins, s.error());
    }
    case InstructionKind::Copy:
    case InstructionKind::Add: {
      Status s = copy_step(st, vars, ins);
      return s ? s : step_error(ins, s.error());
    }
    case InstructionKind::Env: {
      for (const KeyValue& kv : ins.as<KeyValues>().items) {
        vars.set_env(kv.key, kv.value);
      }
      Json env = Json::array();
      for (const KeyValue& kv : vars.env()) {
        env.push_back(kv.key + "=" + kv.value);
      }
      cfg["Env"] = std::move(env);
      break;
    }
    case InstructionKind::Arg:
      for (const ArgDecl& d : ins.as<ArgDecls>().items) {
        vars.declare_arg(d);
      }
      break;
    case InstructionKind::Label:
      if (!cfg.contains("Labels") || !cfg["Labels"].is_object()) {
        cfg["Labels"] = Json::object();
      }
      for (const KeyValue& kv : ins.as<KeyValues>().items) {
        cfg["Labels"][kv.key] = kv.value;
      }
      break;
    case InstructionKind::Expose:
      if (!cfg.contains("ExposedPorts") || !cfg["ExposedPorts"].is_object()) {
        cfg["ExposedPorts"] = Json::object();
      }
      for (const std::string& p : ins.as<Words>().items) {
        cfg["ExposedPorts"][p] = Json::object();
      }
      break;
    case InstructionKind::Volume:
      if (!cfg.contains("Volumes") || !cfg["Volumes"].is_object()) {
        cfg["Volumes"] = Json::object();
      }
      for (const std::string& v : ins.as<Words>().items) {
        cfg["Volumes"][v] = Json::object();
      }
      break;
    case InstructionKind::Cmd:
      cfg["Cmd"] = ins.as<Command>().argv(st.shell);
      st.cmd_set = true;
      break;
    case InstructionKind::Entrypoint:
      cfg["Entrypoint"] = ins.as<Command>().argv(st.shell);
      if (!st.cmd_set) {
        cfg.erase("Cmd");  // Docker: an inherited CMD does not survive a new ENTRYPOINT
      }
      break;
    case InstructionKind::Workdir: {
      std::string dir = ins.as<Text>().value;
      std::string base = cfg.value("WorkingDir", std::string("/"));
      std::string abs = dir[0] == '/' ? dir : join_path(base.empty() ? "/" : base, dir);
      std::string clean = "/";
      clean += clean_image_path(abs);
      cfg["WorkingDir"] = clean;
      Status s = workdir_step(st, clean);
      if (!s) {
        return step_error(ins, s.error());
      }
      return ok();  // workdir_step wrote the history entry
    }
    case InstructionKind::User:
      cfg["User"] = ins.as<Text>().value;
      break;
    case InstructionKind::StopSignal:
      cfg["StopSignal"] = ins.as<Text>().value;
      break;
    case InstructionKind::Healthcheck: {
      const Healthcheck& hc = ins.as<Healthcheck>();
      Json h = Json::object();
      h["Test"] = hc.test();
      if (hc.interval_ns != 0) {
        h["Interval"] = hc.interval_ns;
      }
      if (hc.timeout_ns != 0) {
        h["Timeout"] = hc.timeout_ns;
      }
      if (hc.start_period_ns != 0) {
        h["StartPeriod"] = hc.start_period_ns;
      }
      if (hc.start_interval_ns != 0) {
        h["StartInterval"] = hc.start_interval_ns;
      }
      if (hc.retries != 0) {
        h["Retries"] = hc.retries;
      }
      cfg["Healthcheck"] = std::move(h);
      break;
    }
    case InstructionKind::Shell:
      st.shell = ins.as<Command>().exec;
      cfg["Shell"] = st.shell;
      break;
    case InstructionKind::Onbuild:
      if (!cfg.contains("OnBuild") || !cfg["OnBuild"].is_array()) {
        cfg["OnBuild"] = Json::array();
      }
      cfg["OnBuild"].push_back(ins.as<OnBuild>().trigger);
      break;
    case InstructionKind::Maintainer:
      st.author = ins.as<Text>().value;
      break;
  }
  add_history(st, render(ins), true);
  return ok();
}

// ---- the layer cache ----------------------------------------------------------------------

Result<std::optional<CacheEntry>> Build::cache_lookup(const std::string& key) {
  std::string path = join_path(opts_.root, "cache/" + key + ".json");
  auto text = fs::read_file(path);
  if (!text) {
    return std::optional<CacheEntry>();
  }
  auto j = parse_json(*text, "cache entry");
  if (!j || !j->is_object()) {
    return std::optional<CacheEntry>();
  }
  CacheEntry e;
  e.digest = j->value("digest", "");
  e.diff_id = j->value("diff_id", "");
  e.size = j->value("size", int64_t{0});
  e.empty = j->value("empty", false);
  if (!e.empty) {
    struct stat st {};
    if (e.digest.empty() || ::stat(blob_path(e.digest).c_str(), &st) != 0 || st.st_size != e.size) {
      return std::optional<CacheEntry>();  // the blob is gone: rebuild the step
    }
  }
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // last use, for prune_cache
  return std::optional<CacheEntry>(e);
}

Status Build::cache_store(const std::string& key, const CacheEntry& e) {
  Json j = Json::object();
  j["digest"] = e.digest;
  j["diff_id"] = e.diff_id;
  j["size"] = e.size;
  j["empty"] = e.empty;
  return fs::write_atomic(join_path(opts_.root, "cache/" + key + ".json"), j.dump());
}

Status Build::layer_step(StageState& st, const std::string& key_material, const MakeLayer& make,
                         const std::string& created_by) {
  Sha256 h;
  hash_field(h, kCacheVersion);
  hash_field(h, platform_.str());
  hash_field(h, st.base);
  for (const std::string& d : st.diff_ids) {
    hash_field(h, d);
  }
  hash_field(h, key_material);
  std::string key = h.hex();

  ++out_.layer_steps;
  std::optional<CacheEntry> hit;
  if (!in_.no_cache) {
    BERTH_ASSIGN_OR_RETURN(hit, cache_lookup(key));
  }
  CacheEntry entry;
  if (hit) {
    entry = *hit;
    log(" ---> Using cache");
    ++out_.cached_steps;
    if (current_ != nullptr) {
      current_->cached = true;
    }
  } else {
    std::string out_path = join_path(tmp_, "layer-" + std::to_string(++tmp_seq_) + ".tar.gz");
    BERTH_ASSIGN_OR_RETURN(LayerBlob blob, make(out_path));
    entry.empty = blob.empty;
    if (!blob.empty) {
      entry.digest = blob.digest;
      entry.diff_id = blob.diff_id;
      entry.size = static_cast<int64_t>(blob.size);
      std::string final_path = blob_path(blob.digest);
      if (::rename(out_path.c_str(), final_path.c_str()) != 0) {
        return errno_error("rename " + out_path);
      }
      BERTH_TRY(fs::fsync_path(join_path(opts_.root, "blobs")));
    }
    // The blob is in place before the entry that names it.
    BERTH_TRY(cache_store(key, entry));
  }
  if (entry.empty) {
    log(" ---> (no changes)");
    add_history(st, created_by, true);
    return ok();
  }
  std::string path = blob_path(entry.digest);
  if (opts_.preparer == nullptr) {
    return make_error(Errc::FailedPrecondition, "the build has no layer cache (preparer)");
  }
  BERTH_ASSIGN_OR_RETURN(std::string dir, opts_.preparer->unpack_layer(entry.digest, path));
  st.layer_dirs.push_back(std::move(dir));
  st.diff_ids.push_back(entry.diff_id);
  st.blobs.push_back(registry::LocalBlob{entry.digest, path, entry.size, kLayerMediaType});
  add_history(st, created_by, false);
  log(" ---> " + hex_of_digest(entry.digest).substr(0, 12));
  return ok();
}

Status Build::run_step(StageState& st, BuildVars& vars, const Instruction& ins,
                       const std::string& task_suffix) {
  const Command& cmd = ins.as<Command>();
  std::vector<std::string> argv = cmd.argv(st.shell);
  std::vector<std::string> env = vars.run_env();
  std::string cwd = st.config.value("WorkingDir", std::string());
  if (cwd.empty()) {
    cwd = "/";
  }
  std::string user = st.config.value("User", std::string());
  bool host_network = ins.flag("network").value_or("default") != "none";

  Json key = Json::object();
  key["kind"] = "RUN";
  key["argv"] = argv;
  key["env"] = env;
  key["cwd"] = cwd;
  key["user"] = user;
  key["network"] = host_network ? "host" : "none";

  std::string created_by = "RUN ";
  created_by += cmd.exec_form ? json_array_text(cmd.exec) : cmd.shell;

  std::string task_id = "build-";
  task_id += sanitize_id(in_.id);
  task_id += '-';
  task_id += std::to_string(step_);
  task_id += task_suffix;
  task_id = sanitize_id(task_id);

  MakeLayer make = [&](const std::string& out_path) -> Result<LayerBlob> {
    if (opts_.runtime == nullptr) {
      return make_error(Errc::FailedPrecondition, "RUN needs a container runtime");
    }
    std::string dir = join_path(tmp_, "run-" + std::to_string(++tmp_seq_));
    runtime::TaskSpec spec;
    spec.id = task_id;
    spec.lower_dirs = st.layer_dirs;
    spec.upper_dir = join_path(dir, "upper");
    spec.work_dir = join_path(dir, "work");
    BERTH_TRY(fs::make_dirs(spec.upper_dir));
    BERTH_TRY(fs::make_dirs(spec.work_dir));
    spec.args = argv;
    spec.env = env;
    spec.cwd = cwd;
    spec.user = user;
    spec.host_network = host_network;
    spec.cancel = in_.cancel;
    spec.output = [this](std::string_view, std::string_view line) { log(line); };
    log(" ---> Running in " + task_id);
    BERTH_ASSIGN_OR_RETURN(runtime::InstanceExit exit, opts_.runtime->run_task(spec));
    if (exit.signal != 0 || exit.exit_code != 0) {
      std::string m = "RUN ";
      m += ins.args;
      m += ": ";
      m += exit.str();
      return make_error(Errc::FailedPrecondition, m);
    }
    LayerOptions lo;
    lo.source_date_epoch = in_.source_date_epoch;
    lo.overlay_upper = true;
    auto blob = write_layer(spec.upper_dir, out_path, lo);
    std::error_code ec;
    stdfs::remove_all(dir, ec);
    return blob;
  };
  return layer_step(st, key.dump(), make, created_by);
}

Status Build::workdir_step(StageState& st, const std::string& dir) {
  std::string created_by = "WORKDIR ";
  created_by += dir;
  LayersView view(st.layer_dirs, "the image");
  BERTH_ASSIGN_OR_RETURN(Resolved r, resolve(view, dir, true, "WORKDIR " + dir));
  if (r.node && S_ISDIR(r.node->st.st_mode)) {
    add_history(st, created_by, true);
    return ok();
  }
  if (r.node) {
    return make_error(Errc::FailedPrecondition,
                      "WORKDIR " + dir + ": exists in the image and is not a directory");
  }
  // Docker creates a missing WORKDIR: here in a small layer of its own (root-owned, 0755).
  std::string target = r.rel;
  MakeLayer make = [&](const std::string& out_path) -> Result<LayerBlob> {
    std::string empty = join_path(tmp_, "empty-" + std::to_string(++tmp_seq_));
    BERTH_TRY(fs::make_dirs(empty));
    CopyEntry e;
    e.source = empty;
    e.dest = "/" + target;
    e.contents_only = true;
    CopyLayerOptions co;
    co.base_dir = [&view](const std::string& rel) -> std::string {
      auto n = view.lstat(rel);
      return n && *n && S_ISDIR((*n)->st.st_mode) ? (*n)->host : std::string();
    };
    LayerOptions lo;
    lo.source_date_epoch = in_.source_date_epoch;
    return write_copy_layer({e}, out_path, lo, co);
  };
  Json key = Json::object();
  key["kind"] = "WORKDIR";
  key["dir"] = target;
  return layer_step(st, key.dump(), make, created_by);
}

Result<std::pair<uint32_t, uint32_t>> Build::resolve_chown(const StageState& st,
                                                           const std::string& chown) {
  std::vector<std::string> parts = split_char(chown, ':');
  if (parts.size() > 2 || parts[0].empty()) {
    return make_error(Errc::InvalidArgument, "--chown=" + chown + ": use user[:group]");
  }
  std::optional<Passwd> db;
  auto load = [&]() -> Result<const Passwd*> {
    if (db) {
      return &*db;
    }
    db.emplace();
    LayersView view(st.layer_dirs, "the image");
    for (const char* file : {"etc/passwd", "etc/group"}) {
      BERTH_ASSIGN_OR_RETURN(Resolved r, resolve(view, file, true, file));
      if (!r.node || !S_ISREG(r.node->st.st_mode)) {
        continue;
      }
      BERTH_ASSIGN_OR_RETURN(std::string text,
                             fs::read_regular_file(r.node->host, kMaxInputFile, file));
      for (const std::string& line : split_char(text, '\n')) {
        std::vector<std::string> f = split_char(line, ':');
        if (std::string(file) == "etc/passwd" && f.size() >= 4 && all_digits(f[2]) &&
            all_digits(f[3])) {
          db->users.emplace(f[0], std::make_pair(static_cast<uint32_t>(std::stoul(f[2])),
                                                 static_cast<uint32_t>(std::stoul(f[3]))));
        } else if (std::string(file) == "etc/group" && f.size() >= 3 && all_digits(f[2])) {
          db->groups.emplace(f[0], static_cast<uint32_t>(std::stoul(f[2])));
        }
      }
    }
    return &*db;
  };
  uint32_t uid = 0;
  uint32_t gid = 0;
  if (all_digits(parts[0])) {
    uid = static_cast<uint32_t>(std::stoul(parts[0]));
    gid = uid;
  } else {
    BERTH_ASSIGN_OR_RETURN(const Passwd* p, load());
    auto it = p->users.find(parts[0]);
    if (it == p->users.end()) {
      return make_error(Errc::InvalidArgument, "--chown=" + chown + ": no user " + parts[0] +
                                                   " in the image's /etc/passwd");
    }
    uid = it->second.first;
    auto g = p->groups.find(parts[0]);
    gid = g != p->groups.end() ? g->second : it->second.second;
  }
  if (parts.size() == 2) {
    if (all_digits(parts[1])) {
      gid = static_cast<uint32_t>(std::stoul(parts[1]));
    } else {
      BERTH_ASSIGN_OR_RETURN(const Passwd* p, load());
      auto g = p->groups.find(parts[1]);
      if (g == p->groups.end()) {
        return make_error(Errc::InvalidArgument, "--chown=" + chown + ": no group " + parts[1] +
                                                     " in the image's /etc/group");
      }
      gid = g->second;
    }
  }
  return std::make_pair(uid, gid);
}

Status Build::collect_dir(const View& v, const std::string& rel, const std::string& logical,
                          const std::string& excl_rel, const std::string& dest,
                          const DockerIgnore* excludes, std::vector<CopyItem>& out) {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, v.list(rel));
  for (const std::string& name : names) {
    std::string child_rel = join_path(rel, name);
    std::string child_logical = join_path(logical, name);
    std::string child_excl = join_path(excl_rel, name);
    BERTH_ASSIGN_OR_RETURN(std::optional<Node> node, v.lstat(child_rel));
    if (!node || S_ISSOCK(node->st.st_mode)) {
      continue;
    }
    bool is_dir = S_ISDIR(node->st.st_mode);
    bool excluded =
        ignored(v, child_logical) || (excludes != nullptr && excludes->excluded(child_excl));
    if (excluded) {
      // An excluded directory is still walked when a later "!" rule may re-include
      // something below it; it then comes in only as a parent of what is included.
      bool reinclude = may_reinclude(v, child_logical) ||
                       (excludes != nullptr && excludes->may_reinclude_below(child_excl));
      if (is_dir && reinclude) {
        BERTH_TRY(collect_dir(v, child_rel, child_logical, child_excl, join_path(dest, name),
                              excludes, out));
      }
      continue;
    }
    out.push_back(CopyItem{node->host, join_path(dest, name), node->st});
    if (is_dir) {
      BERTH_TRY(collect_dir(v, child_rel, child_logical, child_excl, join_path(dest, name),
                            excludes, out));
    }
  }
  return ok();
}

Status Build::copy_step(StageState& st, BuildVars& vars, const Instruction& ins) {
  (void)vars;
  const CopySpec& spec = ins.as<CopySpec>();
  const bool is_add = ins.kind == InstructionKind::Add;
  const char* kw = instruction_name(ins.kind);

  // Where the sources come from.
  const View* view = context_view_.get();
  std::unique_ptr<View> from_view;
  std::string from_id = "context";
  if (spec.from) {
    BERTH_ASSIGN_OR_RETURN(StageRef ref, resolve_copy_from(df_, current_stage_, *spec.from));
    if (ref.stage) {
      size_t i = *ref.stage;
      std::string where = "stage ";
      where += df_.stages[i].name.empty() ? std::to_string(i) : df_.stages[i].name;
      from_view = std::make_unique<LayersView>(states_[i].layer_dirs, where);
      from_id = "stage";
    } else if (ref.scratch) {
      from_view = std::make_unique<LayersView>(std::vector<std::string>{}, "scratch");
      from_id = "scratch";
    } else {
      BERTH_ASSIGN_OR_RETURN(const BaseImage* b, base_image(ref.image));
      from_view = std::make_unique<LayersView>(b->prepared.layer_dirs, "image " + ref.image);
      from_id = "image ";
      from_id += b->digest;
    }
    view = from_view.get();
  }
  const bool from_context = view == context_view_.get();

  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  if (spec.chown) {
    BERTH_ASSIGN_OR_RETURN(auto ids, resolve_chown(st, *spec.chown));
    uid = ids.first;
    gid = ids.second;
  } else if (from_context) {
    uid = 0;  // files from the context belong to root, whoever owns the checkout
    gid = 0;
  }
  std::optional<uint32_t> mode;
  if (spec.chmod) {
    mode = static_cast<uint32_t>(std::stoul(*spec.chmod, nullptr, 8));
  }
  std::optional<DockerIgnore> excludes;
  if (!spec.excludes.empty()) {
    BERTH_ASSIGN_OR_RETURN(excludes, DockerIgnore::from_patterns(spec.excludes));
  }
  const DockerIgnore* excl = excludes ? &*excludes : nullptr;

  // The destination, in the image.
  std::string dest = spec.destination;
  bool dest_dir_syntax = ends_with(dest, "/") || dest == "." || ends_with(dest, "/.") ||
                         dest == ".." || ends_with(dest, "/..");
  if (dest[0] != '/') {
    std::string wd = st.config.value("WorkingDir", std::string("/"));
    dest = join_path(wd.empty() ? "/" : wd, dest);
  }
  LayersView image(st.layer_dirs, "the image");
  BERTH_ASSIGN_OR_RETURN(Resolved dest_r, resolve(image, clean_image_path(dest), true, kw));
  bool dest_is_dir = dest_dir_syntax || (dest_r.node && S_ISDIR(dest_r.node->st.st_mode));

  // The sources: globs expanded against the view.
  std::vector<std::pair<std::string, std::string>> matches;  // (operand, matched path)
  for (const std::string& src : spec.sources) {
    std::string what = kw;
    what += ' ';
    what += src;
    std::string clean = from_context ? clean_path(src) : clean_image_path(src);
    if (from_context) {
      // clean_path drops a leading "/" and resolves ".." lexically; refuse a climb out.
      std::vector<std::string> comps = split_components(src);
      int depth = 0;
      for (const std::string& c : comps) {
        depth += c == ".." ? -1 : 1;
        if (depth < 0) {
          return make_error(Errc::InvalidArgument,
                            what + ": the path is outside the build context");
        }
      }
    }
    if (clean == ".") {
      clean.clear();
    }
    if (!has_glob(clean)) {
      matches.emplace_back(src, clean);
      continue;
    }
    std::vector<std::string> paths{""};
    for (const std::string& comp : split_components(clean)) {
      std::vector<std::string> next;
      for (const std::string& p : paths) {
        if (!has_glob(comp)) {
          next.push_back(join_path(p, comp));
          continue;
        }
        BERTH_ASSIGN_OR_RETURN(Resolved r, resolve(*view, p, true, what));
        if (!r.node || !S_ISDIR(r.node->st.st_mode)) {
          continue;
        }
        BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, view->list(r.rel));
        for (const std::string& name : names) {
          BERTH_ASSIGN_OR_RETURN(bool m, path_match(comp, name));
          std::string cand = join_path(p, name);
          if (m && !(ignored(*view, cand) && !may_reinclude(*view, cand))) {
            next.push_back(cand);
          }
        }
      }
      paths = std::move(next);
    }
    if (paths.empty()) {
      return make_error(Errc::NotFound, what + ": no source files were specified (nothing in " +
                                            view->where() + " matches)");
    }
    std::sort(paths.begin(), paths.end());
    for (std::string& p : paths) {
      matches.emplace_back(src, std::move(p));
    }
  }
  if (matches.size() > 1 && !dest_is_dir) {
    std::string m = "When using ";
    m += kw;
    m += " with more than one source file, the destination must be a directory and end with "
         "a /";
    return make_error(Errc::InvalidArgument, m);
  }

  std::vector<CopyItem> items;
  std::vector<ArchiveItem> archives;
  std::vector<std::pair<size_t, size_t>> spans;  // item ranges per match, for the key
  for (const auto& [operand, path] : matches) {
    std::string what = kw;
    what += ' ';
    what += operand;
    BERTH_ASSIGN_OR_RETURN(Resolved r, resolve(*view, path, true, what));
    bool excluded = from_context && !path.empty() &&
                    ((ignored(*view, path) && !may_reinclude(*view, path)) ||
                     (ignored(*view, r.rel) && !may_reinclude(*view, r.rel)));
    if (!r.node || excluded) {
      std::string m = what;
      m += ": file not found in ";
      m += view->where();
      if (excluded) {
        m += " (excluded by .dockerignore)";
      }
      return make_error(Errc::NotFound, m);
    }
    std::string dest_rel = dest_r.rel;
    if (S_ISDIR(r.node->st.st_mode)) {
      // Docker copies a directory's contents, not the directory itself.
      BERTH_TRY(collect_dir(*view, r.rel, path, "", dest_rel, excl, items));
      continue;
    }
    std::string base = stdfs::path(path).filename().string();
    if (excl != nullptr && excl->excluded(base)) {
      continue;
    }
    if (is_add && S_ISREG(r.node->st.st_mode) && is_tar_archive(r.node->host)) {
      archives.push_back(ArchiveItem{r.node->host, dest_rel});
      continue;
    }
    std::string target = dest_rel;
    if (dest_is_dir) {
      target = join_path(dest_rel, base);
    } else {
      // dest names the file: resolve its parent through the image's symlinks.
      std::string parent = stdfs::path("/" + clean_image_path(dest)).parent_path().string();
      BERTH_ASSIGN_OR_RETURN(Resolved pr, resolve(image, parent, true, kw));
      target = join_path(pr.rel, stdfs::path(dest).filename().string());
    }
    items.push_back(CopyItem{r.node->host, target, r.node->st});
  }

  // The step's key: everything the layer is made of.
  Sha256 key;
  hash_field(key, kw);
  hash_field(key, from_id);
  hash_field(key, uid ? std::to_string(*uid) : "-");
  hash_field(key, gid ? std::to_string(*gid) : "-");
  hash_field(key, mode ? std::to_string(*mode) : "-");
  for (const CopyItem& it : items) {
    hash_field(key, it.dest);
    std::string meta = std::to_string(it.st.st_mode);
    meta += ' ';
    meta += std::to_string(it.st.st_uid);
    meta += ' ';
    meta += std::to_string(it.st.st_gid);
    meta += ' ';
    meta += std::to_string(it.st.st_size);
    hash_field(key, meta);
    if (S_ISREG(it.st.st_mode)) {
      BERTH_TRY(hash_file(key, it.host));
    } else if (S_ISLNK(it.st.st_mode)) {
      BERTH_ASSIGN_OR_RETURN(std::string target, read_link(it.host));
      hash_field(key, target);
    } else if (S_ISCHR(it.st.st_mode) || S_ISBLK(it.st.st_mode)) {
      hash_field(key, std::to_string(it.st.st_rdev));
    }
  }
  for (const ArchiveItem& a : archives) {
    hash_field(key, "archive");
    hash_field(key, a.dest);
    BERTH_TRY(hash_file(key, a.host));
  }

  std::string created_by = render(ins);
  MakeLayer make = [&](const std::string& out_path) -> Result<LayerBlob> {
    std::vector<CopyItem> all = items;
    for (const ArchiveItem& a : archives) {
      std::string dir = join_path(tmp_, "add-" + std::to_string(++tmp_seq_));
      BERTH_TRY(fs::make_dirs(dir));
      std::error_code ec;
      std::string canon = stdfs::canonical(dir, ec).string();
      BERTH_TRY(extract_archive(a.host, ec ? dir : canon, std::string(kw) + " " + a.host));
      DirView extracted(dir, false, "the archive");
      BERTH_TRY(collect_dir(extracted, "", "", "", a.dest, nullptr, all));
    }
    std::vector<CopyEntry> entries;
    entries.reserve(all.size());
    for (const CopyItem& it : all) {
      CopyEntry e;
      e.source = it.host;
      e.dest = "/" + it.dest;
      e.recursive = false;
      e.uid = uid;
      e.gid = gid;
      e.mode = mode;
      entries.push_back(std::move(e));
    }
    CopyLayerOptions co;
    co.base_dir = [&image](const std::string& rel) -> std::string {
      auto n = image.lstat(rel);
      return n && *n && S_ISDIR((*n)->st.st_mode) ? (*n)->host : std::string();
    };
    LayerOptions lo;
    lo.source_date_epoch = in_.source_date_epoch;
    return write_copy_layer(entries, out_path, lo, co);
  };
  return layer_step(st, key.hex(), make, created_by);
}

Result<BuiltImage> Build::run() {
  auto started = std::chrono::steady_clock::now();
  BERTH_TRY(prepare());
  BERTH_ASSIGN_OR_RETURN(size_t target, df_.find_stage(in_.target));
  BERTH_ASSIGN_OR_RETURN(std::vector<size_t> stages, needed_stages(target));
  for (size_t i : stages) {
    total_ += 1 + static_cast<int>(df_.stages[i].instructions.size());
  }
  for (size_t i : stages) {
    BERTH_TRY(check_cancel());
    BERTH_TRY(run_stage(i));
  }
  BERTH_TRY(check_cancel());

  StageState& st = states_[target];
  Json cfg = st.config;
  if (!in_.labels.empty()) {
    if (!cfg.contains("Labels") || !cfg["Labels"].is_object()) {
      cfg["Labels"] = Json::object();
    }
    for (const auto& [k, v] : in_.labels) {
      cfg["Labels"][k] = v;
    }
  }
  Json image = Json::object();
  image["architecture"] = platform_.architecture;
  image["os"] = platform_.os;
  if (!platform_.variant.empty()) {
    image["variant"] = platform_.variant;
  }
  image["created"] = created_;
  if (!st.author.empty()) {
    image["author"] = st.author;
  }
  image["config"] = std::move(cfg);
  image["rootfs"] = Json{{"type", "layers"}, {"diff_ids", st.diff_ids}};
  image["history"] = st.history;
  std::string config_bytes = image.dump();
  std::string config_digest = "sha256:";
  config_digest += Sha256::hex_of(config_bytes);
  std::string config_path = blob_path(config_digest);
  struct stat cst {};
  if (::stat(config_path.c_str(), &cst) != 0 ||
      cst.st_size != static_cast<off_t>(config_bytes.size())) {
    BERTH_TRY(fs::write_atomic(config_path, config_bytes));
  }
  out_.config = registry::LocalBlob{config_digest, config_path,
                                    static_cast<int64_t>(config_bytes.size()), kConfigMediaType};
  out_.layers = st.blobs;

  Json manifest = Json::object();
  manifest["schemaVersion"] = 2;
  manifest["mediaType"] = std::string(oci::kOciManifest);
  manifest["config"] = Json{{"mediaType", kConfigMediaType},
                            {"digest", config_digest},
                            {"size", static_cast<int64_t>(config_bytes.size())}};
  Json layers = Json::array();
  for (const registry::LocalBlob& b : st.blobs) {
    layers.push_back(Json{{"mediaType", b.media_type}, {"digest", b.digest}, {"size", b.size}});
  }
  manifest["layers"] = std::move(layers);
  out_.manifest = manifest.dump();
  out_.manifest_digest = "sha256:";
  out_.manifest_digest += Sha256::hex_of(out_.manifest);
  out_.media_type = std::string(oci::kOciManifest);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  log("Successfully built " + out_.manifest_digest + " (" + std::to_string(out_.cached_steps) +
      "/" + std::to_string(out_.layer_steps) + " layers from cache, " + std::to_string(ms) +
      " ms)");
  return std::move(out_);
}

}  // namespace

Executor::Executor(ExecutorOptions opts) : opts_(std::move(opts)) {}

Result<BuiltImage> Executor::build(const BuildInput& input) {
  Build b(opts_, input);
  return b.run();
}

Result<uint64_t> Executor::prune_cache(std::chrono::seconds older_than) {
  auto cutoff = std::chrono::system_clock::now() - older_than;
  auto old = [&](const stdfs::path& p) {
    std::error_code ec;
    auto t = stdfs::last_write_time(p, ec);
    if (ec) {
      return false;
    }
    auto sys = std::chrono::file_clock::to_sys(t);
    return sys < cutoff;
  };
  uint64_t freed = 0;
  std::set<std::string> keep;
  std::error_code ec;
  stdfs::path cache = join_path(opts_.root, "cache");
  stdfs::path blobs = join_path(opts_.root, "blobs");
  if (stdfs::is_directory(cache, ec)) {
    for (const auto& e : stdfs::directory_iterator(cache, ec)) {
      if (!ends_with(e.path().filename().string(), ".json")) {
        continue;
      }
      if (old(e.path())) {
        uint64_t size = e.file_size(ec);
        if (stdfs::remove(e.path(), ec)) {
          freed += ec ? 0 : size;
        }
        continue;
      }
      auto text = fs::read_file(e.path());
      auto j = text ? parse_json(*text, "cache entry") : Result<Json>(Error(Errc::NotFound, ""));
      if (j && j->is_object()) {
        keep.insert(hex_of_digest(j->value("digest", "")));
      }
    }
  }
  if (stdfs::is_directory(blobs, ec)) {
    for (const auto& e : stdfs::directory_iterator(blobs, ec)) {
      std::string name = e.path().filename().string();
      if (keep.count(name) || !old(e.path())) {
        continue;
      }
      uint64_t size = e.file_size(ec);
      if (!ec && stdfs::remove(e.path(), ec)) {
        freed += size;
      }
    }
  }
  return freed;
}

}  // namespace berth::builder
