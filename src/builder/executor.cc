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
#include "builder/executor_internal.h"
#include "builder/git.h"
#include "builder/layer.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/sha256.h"
#include "oci/oci.h"

namespace berth::builder::executor_detail {

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

}  // namespace berth::builder::executor_detail

namespace berth::builder {

using namespace executor_detail;

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
