// SPDX-License-Identifier: Apache-2.0
// The bundle's config.json: the confinement every container gets by default (Docker's
// seccomp profile, a pids limit) and what a service may change (read-only rootfs, unconfined).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/json.h"
#include "runtime/internal.h"
#include "runtime/seccomp.h"

namespace berth::runtime {
namespace {

Json config_of(const detail::BundleParams& p) {
  auto j = parse_json(detail::make_config_json(p));
  EXPECT_TRUE(j) << j.error().message();
  return j ? *j : Json();
}

detail::BundleParams params() {
  detail::BundleParams p;
  p.id = "web-1-abc123";
  p.args = {"/bin/sh"};
  p.cgroups_path = "/berth/web-1-abc123";
  return p;
}

// The rules whose names include `name`.
std::vector<Json> rules_for(const Json& seccomp, const std::string& name) {
  std::vector<Json> out;
  for (const auto& r : seccomp["syscalls"]) {
    const auto& names = r["names"];
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      out.push_back(r);
    }
  }
  return out;
}

TEST(RuntimeBundleTest, SeccompIsOnByDefaultWithDockersSemantics) {
  Json j = config_of(params());
  ASSERT_TRUE(j["linux"].contains("seccomp"));
  const Json& s = j["linux"]["seccomp"];
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_FALSE(s.contains("defaultErrnoRet"));  // runc's default: EPERM
  ASSERT_TRUE(s["architectures"].is_array());
  EXPECT_FALSE(s["architectures"].empty());
  // Ordinary calls are allowed without conditions.
  for (const char* name : {"read", "write", "execve", "openat", "futex", "exit_group", "wait4"}) {
    auto r = rules_for(s, name);
    ASSERT_EQ(r.size(), 1u) << name;
    EXPECT_EQ(r[0]["action"], "SCMP_ACT_ALLOW") << name;
    EXPECT_FALSE(r[0].contains("args")) << name;
  }
  // What needs CAP_SYS_ADMIN in Docker's profile is not allowed at all: no user namespace
  // through unshare, no joining one through setns, no mounts.
  for (const char* name : {"unshare", "setns", "mount", "umount2", "bpf", "pivot_root",
                           "kexec_load", "init_module", "open_by_handle_at", "keyctl"}) {
    EXPECT_TRUE(rules_for(s, name).empty()) << name;
  }
}

TEST(RuntimeBundleTest, CloneMayNotCreateNamespacesAndClone3FallsBack) {
  Json s = default_seccomp_profile();
  auto clone = rules_for(s, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_EQ(clone[0]["action"], "SCMP_ACT_ALLOW");
  ASSERT_EQ(clone[0]["args"].size(), 1u);
  const Json& a = clone[0]["args"][0];
  EXPECT_EQ(a["op"], "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(a["valueTwo"], 0);  // (flags & mask) == 0
  uint64_t mask = a["value"].get<uint64_t>();
  constexpr uint64_t kCloneNewUser = 0x10000000;
  EXPECT_NE(mask & kCloneNewUser, 0u);
  EXPECT_EQ(mask, 0x7E020000u);  // every CLONE_NEW* flag, as Docker's profile
  auto clone3 = rules_for(s, "clone3");
  ASSERT_EQ(clone3.size(), 1u);
  EXPECT_EQ(clone3[0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(clone3[0]["errnoRet"], 38);  // ENOSYS
}

TEST(RuntimeBundleTest, UnconfinedHasNoSeccomp) {
  auto p = params();
  p.confinement.seccomp = false;
  EXPECT_FALSE(config_of(p)["linux"].contains("seccomp"));
}

TEST(RuntimeBundleTest, PidsLimitDefaultsTo1024AndCanBeChangedOrOff) {
  Json j = config_of(params());
  EXPECT_EQ(j["linux"]["resources"]["pids"]["limit"], 1024);
  auto p = params();
  p.confinement.pids_limit = 64;
  EXPECT_EQ(config_of(p)["linux"]["resources"]["pids"]["limit"], 64);
  p.confinement.pids_limit = 0;
  EXPECT_FALSE(config_of(p)["linux"]["resources"].contains("pids"));
}

TEST(RuntimeBundleTest, ReadOnlyRootfsGetsATmpfsAtTmp) {
  auto has_tmp = [](const Json& j) {
    for (const auto& m : j["mounts"]) {
      if (m["destination"] == "/tmp") {
        EXPECT_EQ(m["type"], "tmpfs");
        return true;
      }
    }
    return false;
  };
  Json rw = config_of(params());
  EXPECT_EQ(rw["root"]["readonly"], false);
  EXPECT_FALSE(has_tmp(rw));
  auto p = params();
  p.confinement.read_only_rootfs = true;
  Json ro = config_of(p);
  EXPECT_EQ(ro["root"]["readonly"], true);
  EXPECT_TRUE(has_tmp(ro));
}

TEST(RuntimeBundleTest, KeepsTheOtherDefences) {
  Json j = config_of(params());
  EXPECT_EQ(j["process"]["noNewPrivileges"], true);
  const auto& caps = j["process"]["capabilities"]["bounding"];
  EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), 0);
  EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_SYS_PTRACE"), 0);
  std::vector<std::string> ns;
  for (const auto& n : j["linux"]["namespaces"]) {
    ns.push_back(n["type"].get<std::string>());
  }
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
}

TEST(RuntimeBundleTest, UserNamespaceOnlyWhenAsked) {
  Json j = config_of(params());
  for (const auto& n : j["linux"]["namespaces"]) {
    EXPECT_NE(n["type"], "user");
  }
  EXPECT_FALSE(j["linux"].contains("uidMappings"));
  EXPECT_FALSE(j["linux"].contains("gidMappings"));
  auto p = params();
  p.userns = true;
  j = config_of(p);
  std::vector<std::string> ns;
  for (const auto& n : j["linux"]["namespaces"]) {
    ns.push_back(n["type"].get<std::string>());
  }
  EXPECT_EQ(ns, (std::vector<std::string>{"user", "pid", "network", "ipc", "uts", "mount"}));
  for (const char* key : {"uidMappings", "gidMappings"}) {
    ASSERT_EQ(j["linux"][key].size(), 1u) << key;
    EXPECT_EQ(j["linux"][key][0]["containerID"], 0) << key;
    EXPECT_EQ(j["linux"][key][0]["hostID"], kUsernsHostBase) << key;
    EXPECT_EQ(j["linux"][key][0]["size"], kUsernsSize) << key;
  }
}

}  // namespace
}  // namespace berth::runtime
