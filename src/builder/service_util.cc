// SPDX-License-Identifier: Apache-2.0
// The build service's helpers: times and durations, references, paths inside a checkout,
// the build views, and stopping git children.
#include "builder/service_internal.h"

namespace berth::builder {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

std::string iso_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string duration_text(std::chrono::seconds d) {
  int64_t s = d.count();
  if (s > 0 && s % 3600 == 0) {
    return cat(std::to_string(s / 3600), "h");
  }
  if (s > 0 && s % 60 == 0) {
    return cat(std::to_string(s / 60), "m");
  }
  return cat(std::to_string(s), "s");
}

std::string seconds_text(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string short_commit(const std::string& c) { return c.substr(0, 7); }

bool is_glob(const std::string& branch) { return branch.find_first_of("*?") != std::string::npos; }

void kill_git_children(const std::vector<std::string>& dirs) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) {
    return;
  }
  pid_t self_group = ::getpgrp();
  while (dirent* e = ::readdir(d)) {
    std::string pid_s = e->d_name;
    if (pid_s.empty() || pid_s.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream cmdline(cat("/proc/", pid_s, "/cmdline"), std::ios::binary);
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    bool git = args.rfind("git", 0) == 0 || args.find("/git") != std::string::npos;
    bool mentions = false;
    size_t start = 0;
    while (start < args.size()) {
      size_t end = args.find('\0', start);
      if (end == std::string::npos) {
        end = args.size();
      }
      for (const std::string& dir : dirs) {
        if (!dir.empty() && args.compare(start, end - start, dir) == 0) {
          mentions = true;
        }
      }
      if (mentions) {
        break;
      }
      start = end + 1;
    }
    if (!git || !mentions) {
      continue;
    }
    pid_t pid = static_cast<pid_t>(std::stol(pid_s));
    pid_t group = ::getpgid(pid);
    if (group > 1 && group != self_group) {
      ::kill(-group, SIGKILL);
    } else {
      ::kill(pid, SIGKILL);
    }
  }
  ::closedir(d);
}

Json phase_ms_json(const std::map<std::string, int64_t>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) {
    j[k] = v;
  }
  return j;
}

Json steps_json(const std::vector<StepTiming>& steps) {
  Json a = Json::array();
  for (const auto& s : steps) {
    a.push_back(Json{{"line", s.line}, {"text", s.text}, {"cached", s.cached}, {"ms", s.ms}});
  }
  return a;
}

BuildView to_view(const store::BuildRecord& r) {
  BuildView v;
  v.id = r.id;
  v.project = r.project;
  v.status = r.status;
  v.phase = r.phase;
  v.reason = r.reason;
  v.commit = r.commit_id;
  v.branch = r.branch;
  v.trigger = r.trigger;
  v.source = r.source;
  v.image = r.image;
  v.tags = r.tags;
  v.image_digest = r.digest;
  Json pm = Json::parse(r.phase_ms.empty() ? "{}" : r.phase_ms, nullptr, false);
  if (pm.is_object()) {
    for (const auto& [k, val] : pm.items()) {
      if (val.is_number_integer()) {
        v.phase_ms[k] = val.get<int64_t>();
      }
    }
  }
  Json st = Json::parse(r.steps.empty() ? "[]" : r.steps, nullptr, false);
  if (st.is_array()) {
    for (const auto& s : st) {
      if (!s.is_object()) {
        continue;
      }
      BuildStep step;
      step.line = s.value("line", 0);
      step.text = s.value("text", std::string());
      step.cached = s.value("cached", false);
      step.ms = s.value("ms", int64_t{0});
      v.steps.push_back(std::move(step));
    }
  }
  v.created_at = r.created_at;
  v.started_at = r.started_at;
  v.finished_at = r.finished_at;
  return v;
}

std::pair<std::string, std::string> split_reference(const std::string& ref) {
  auto at = ref.find('@');
  if (at != std::string::npos) {
    return {ref.substr(0, at), ref.substr(at + 1)};
  }
  auto colon = ref.rfind(':');
  auto slash = ref.rfind('/');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return {ref, "latest"};
  }
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

Status validate_ref(const std::string& ref) {
  bool bad = ref.empty() || ref.size() > 255 || ref.front() == '-' ||
             ref.find_first_of(" \t\n\r~^:\\[*?") != std::string::npos ||
             ref.find("..") != std::string::npos;
  if (bad) {
    return Error(Errc::InvalidArgument, cat("ref: '", ref, "' is not a branch, tag or commit"));
  }
  return ok();
}

Result<std::string> inside(const std::string& root, const std::string& rel,
                           const std::string& field) {
  std::error_code ec;
  stdfs::path base = stdfs::weakly_canonical(root, ec);
  stdfs::path p = stdfs::weakly_canonical(stdfs::path(root) / rel, ec);
  if (ec) {
    return Error(Errc::InvalidArgument, cat(field, ": ", rel, ": ", ec.message()));
  }
  std::string b = base.string();
  std::string s = p.string();
  if (s != b && s.rfind(b + "/", 0) != 0) {
    return Error(Errc::InvalidArgument,
                 cat(field, ": ", rel, " leads outside the repository (a symlink?)"));
  }
  return s;
}

}  // namespace berth::builder
