// SPDX-License-Identifier: Apache-2.0
// RUN and WORKDIR: the layer steps that run a process or make a directory.

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

}  // namespace berth::builder::executor_detail
