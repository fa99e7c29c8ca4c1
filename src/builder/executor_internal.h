// SPDX-License-Identifier: Apache-2.0
// Private to the builder module: what the executor's files (executor*.cc) share — the small
// helpers, the filesystem views COPY reads from, the build state and class Build, whose
// methods live in executor.cc (stages, instructions, the build), executor_cache.cc (the layer
// cache), executor_run.cc (RUN and WORKDIR layers) and executor_copy.cc (COPY and ADD).
#pragma once

#include <archive.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/dockerfile.h"
#include "builder/executor.h"
#include "builder/git.h"
#include "builder/layer.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/result.h"
#include "common/sha256.h"

namespace berth::builder::executor_detail {

namespace stdfs = std::filesystem;

inline constexpr const char* kConfigMediaType = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kCacheVersion = "berth-build-cache-v1";
inline constexpr int kMaxSymlinkHops = 40;
// Dockerfile, .dockerignore, /etc/passwd and /etc/group of a stage: text a commit controls.
inline constexpr uint64_t kMaxInputFile = 4 << 20;

// ---- small helpers (executor_util.cc) -------------------------------------------------------

Error errno_error(const std::string& what);
std::string join_path(const std::string& a, const std::string& b);
std::vector<std::string> split_components(std::string_view p);
std::string join_components(const std::vector<std::string>& parts);
std::string clean_image_path(std::string_view p);
std::string hex_of_digest(const std::string& digest);
bool ends_with(std::string_view s, std::string_view suffix);
std::string rfc3339(int64_t t);
std::string sanitize_id(std::string_view s);
Result<std::string> read_link(const std::string& path);
Status hash_file(Sha256& h, const std::string& path);
void hash_field(Sha256& h, std::string_view s);
std::vector<KeyValue> env_pairs(const Json& config);
std::string json_array_text(const std::vector<std::string>& v);
std::string render(const Instruction& ins);
bool all_digits(std::string_view s);
std::vector<std::string> split_char(std::string_view s, char sep);

// ---- filesystem views (executor_fs.cc) ------------------------------------------------------

bool is_whiteout(const struct stat& st);
bool is_opaque(const std::string& path);

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
                         const std::string& what);

bool has_glob(std::string_view s);

// ---- archives (ADD, executor_fs.cc) --------------------------------------------------------

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
bool is_tar_archive(const std::string& path);
// Rewrites an archive member path into dest (relative, no "..").
std::optional<std::string> member_path(const char* name, const std::string& dest);
Status extract_archive(const std::string& path, const std::string& dest, const std::string& what);

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

struct Passwd {
  std::map<std::string, std::pair<uint32_t, uint32_t>> users;  // name -> uid, gid
  std::map<std::string, uint32_t> groups;
};

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

}  // namespace berth::builder::executor_detail
