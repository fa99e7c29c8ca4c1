// SPDX-License-Identifier: Apache-2.0
// COPY and ADD: --chown, collecting sources from a view, and the copy layer step.

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

}  // namespace berth::builder::executor_detail
