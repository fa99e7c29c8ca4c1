// SPDX-License-Identifier: Apache-2.0
// Private to the runtime module: the state shared by runtime.cc (instances) and tasks.cc
// (one-shot tasks), and the helpers both use. Not part of the module's API.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace berth::runtime {

namespace stdfs = std::filesystem;
using detail::Fd;

inline auto logger() { return log::get("runtime"); }

inline constexpr size_t kMaxStartErr = 4096;

bool valid_id(const std::string& id);
int parse_signal(const std::string& s);
Status write_small(const std::string& path, const std::string& content);
/// A bundle's own files, config.json last: /etc/hostname, and /etc/hosts (localhost) and
/// /etc/resolv.conf (`resolv`) where p binds them from inside the bundle (a task on the host's
/// network binds the host's own instead).
Status write_bundle_files(const std::string& bundle, const std::string& id,
                          const detail::BundleParams& p, const std::string& resolv);
bool exists(const std::string& p);

// Mounts the overlay. The option string must fit in a page: with many layers, the mount is
// done from a forked child whose working directory is the layer cache, using relative names.
// extra: more mount options ("redirect_dir=off,..."), appended after a comma when not empty.
Status mount_overlay(const std::vector<std::string>& layers_bottom_first, const std::string& upper,
                     const std::string& work, const std::string& target,
                     const std::string& extra = std::string());
Status unmount(const std::string& target);
void remove_cgroups(const std::string& id);

struct Instance {
  std::string id;
  std::string bundle;
  pid_t pid = 0;
  Fd pidfd;
  int stop_signal = SIGTERM;
  std::atomic<bool> stopping{false};
  std::atomic<bool> exited{false};
  InstanceExit exit;
};

struct RuntimeCore {
  RuntimeOptions opts;
  asio::io_context* ioc = nullptr;
  std::string runc_root;
  std::string instances_dir;
  // Tasks have their own bundle dir and runc state root, so list() and reconcile never see
  // them.
  std::string task_runc_root;
  std::string tasks_dir;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Instance>> instances;
  std::function<void(const std::string&, InstanceExit)> on_exit;

  std::vector<std::string> runc(std::initializer_list<std::string> args) const {
    return runc_at(runc_root, args);
  }
  std::vector<std::string> runc_at(const std::string& root,
                                   std::initializer_list<std::string> args) const {
    std::vector<std::string> v = {opts.oci_runtime, "--root", root};
    v.insert(v.end(), args);
    return v;
  }

  std::shared_ptr<Instance> find(const std::string& id) {
    std::lock_guard<std::mutex> g(mu);
    auto it = instances.find(id);
    return it == instances.end() ? nullptr : it->second;
  }

  void exited(const std::shared_ptr<Instance>& inst, InstanceExit e) {
    inst->exit = e;
    inst->exited = true;
    logger()->info("instance exited id={} status=\"{}\"", inst->id, e.str());
    if (inst->stopping) {
      return;
    }
    std::function<void(const std::string&, InstanceExit)> fn;
    {
      std::lock_guard<std::mutex> g(mu);
      fn = on_exit;
    }
    if (fn) {
      fn(inst->id, e);
    }
  }

  // Full teardown of whatever exists for id; each step tolerates absence.
  Status teardown(const std::string& id) { return teardown_in(runc_root, instances_dir, id); }

  Status teardown_in(const std::string& state_root, const std::string& bundles,
                     const std::string& id) {
    std::string bundle = bundles + "/" + id;
    Status first;
    if (exists(state_root + "/" + id)) {
      auto r = detail::run_process(runc_at(state_root, {"delete", "--force", id}));
      if (r && !r->ok() && exists(state_root + "/" + id)) {
        first = Error(Errc::Internal, "runc delete " + id + ": " + r->describe() + ": " + r->err);
      }
    }
    if (exists(bundle + "/rootfs")) {
      if (auto s = unmount(bundle + "/rootfs"); !s && first) {
        first = s;
      }
    }
    std::error_code ec;
    stdfs::remove_all(bundle, ec);
    if (ec && first) {
      first = Error(Errc::Internal, "remove " + bundle + ": " + ec.message());
    }
    remove_cgroups(id);
    return first;
  }
};

// Removes tasks a crashed berthd left behind (runc state, mount, bundle); skips live ones.
void sweep_stale_tasks(RuntimeCore& st);

struct Runtime::State : RuntimeCore {};

}  // namespace berth::runtime
