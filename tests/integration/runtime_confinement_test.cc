// SPDX-License-Identifier: Apache-2.0
// Confinement with real runc: what a process inside an instance can no longer do. Instances
// started through Runtime::start() get the defaults (seccomp, pids limit); what a service may
// change (read-only rootfs, another pids limit, unconfined) is checked by running the
// bundle's config.json with runc directly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/json.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"
#include "support/harness.h"
#include "support/layout_source.h"

namespace berth::runtime {
namespace {

using test::TempDir;

using test::LayoutSource;

class RuntimeConfinementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || !test::have("runc") || !test::have("umoci")) {
      GTEST_SKIP() << "needs root, runc and umoci";
    }
    std::string layout = layout_dir_ / "layout";
    ASSERT_EQ(test::make_busybox_layout(layout, "v1"), "");
    source_ = std::make_unique<LayoutSource>(layout);
    preparer_ = std::make_unique<ImagePreparer>(root_.path(), *source_);
    auto img = preparer_->prepare("web/app", source_->digest_of_only_manifest());
    ASSERT_TRUE(img) << img.error().message();
    image_ = *img;
    if (userns_) {
      // The mapped root (an unprivileged uid on the host) must reach the bundles and layers.
      ASSERT_EQ(::chmod(root_.path().c_str(), 0711), 0);
    }
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.path(), "runc", userns_}, ioc_);
    rt_->on_exit([this](const std::string& id, InstanceExit e) {
      std::lock_guard<std::mutex> g(mu_);
      exits_[id] = e;
      cv_.notify_all();
    });
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        ioc_.get_executor());
    io_thread_ = std::thread([this] { ioc_.run(); });
    log_ = std::make_shared<LogSink>(root_ / "svc.log");
  }

  void TearDown() override {
    if (rt_) {
      if (auto ids = rt_->list()) {
        for (const auto& id : *ids) {
          (void)rt_->stop(id, std::chrono::milliseconds(0));
        }
      }
    }
    if (io_thread_.joinable()) {
      work_.reset();
      ioc_.stop();
      io_thread_.join();
    }
  }

  // Runs `script` with busybox sh as an instance and returns its output once it exited.
  std::string run_instance(const std::string& id, const std::string& script) {
    InstanceSpec s;
    s.id = id;
    s.image = image_;
    s.image.config.entrypoint.clear();
    s.image.config.cmd = {"/bin/busybox", "sh", "-c", script + "; echo END"};
    s.log = log_;
    auto info = rt_->start(s);
    EXPECT_TRUE(info) << info.error().message();
    std::unique_lock<std::mutex> l(mu_);
    EXPECT_TRUE(cv_.wait_for(l, std::chrono::seconds(60), [&] { return exits_.count(id) > 0; }));
    l.unlock();
    std::string out;
    for (int i = 0; i < 1000 && out.find("END") == std::string::npos; ++i) {
      out.clear();
      for (const auto& line : read_log(log_->path(), 0, id, 0)) {
        out += line.text + "\n";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    (void)rt_->stop(id, std::chrono::milliseconds(0));
    return out;
  }

  // Runs `script` in a bundle made by make_config_json with `c`, through `runc run` directly,
  // over a copy of the busybox layer; returns stdout and stderr.
  test::CmdResult run_bundle(const std::string& id, const Confinement& c,
                             const std::string& script) {
    std::string bundle = scratch_ / id;
    std::filesystem::create_directories(bundle + "/rootfs");
    auto cp = test::run("cp -a " + image_.layer_dirs.at(0) + "/. " + bundle + "/rootfs/");
    EXPECT_EQ(cp.code, 0) << cp.all();
    detail::BundleParams p;
    p.id = id;
    p.args = {"/bin/busybox", "sh", "-c", script};
    p.env = {"PATH=/bin"};
    p.cgroups_path = "/berth/test-" + id;
    p.confinement = c;
    rlimit nofile{};  // runc may not raise the hard limit past ours (as Runtime::start)
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max < p.nofile) {
      p.nofile = nofile.rlim_max;
    }
    test::write_file(bundle + "/config.json", detail::make_config_json(p));
    return test::run("runc --root " + (scratch_ / "runc") + " run --bundle " + bundle + " " + id +
                     " </dev/null");
  }

  bool userns_ = false;  // set by a subclass's constructor: RuntimeOptions::userns
  TempDir layout_dir_, root_, scratch_;
  asio::io_context ioc_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<LayoutSource> source_;
  std::unique_ptr<ImagePreparer> preparer_;
  std::unique_ptr<Runtime> rt_;
  PreparedImage image_;
  std::shared_ptr<LogSink> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, InstanceExit> exits_;
};

// What probing found before: Seccomp 0, and an unprivileged user namespace let the instance
// mount (a step towards kernel attack surface that root-only code guards).
const char* const kUnshareMount =
    "/bin/busybox grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; "
    "/bin/busybox mkdir -p /tmp/m; "
    "if /bin/busybox unshare -Urm /bin/busybox sh -c '/bin/busybox mount -t tmpfs none /tmp/m'; "
    "then echo UNSHARE-MOUNTED; else echo UNSHARE-REFUSED; fi";

TEST_F(RuntimeConfinementTest, InstancesRunUnderSeccompAndCannotCreateUserNamespaces) {
  // Also the other per-process defences: no_new_privileges and the capability set.
  std::string out = run_instance("seccomp-1", kUnshareMount);
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  // Docker's default capabilities, nothing more (no CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...).
  EXPECT_NE(out.find("CapEff:\t00000000a80425fb"), std::string::npos) << out;
  EXPECT_NE(out.find("UNSHARE-REFUSED"), std::string::npos) << out;
  EXPECT_EQ(out.find("UNSHARE-MOUNTED"), std::string::npos) << out;
  // Ordinary work still runs: processes, threads of busybox, files.
  std::string ok = run_instance("seccomp-2",
                                "/bin/busybox echo hi > /f && /bin/busybox cat /f && "
                                "/bin/busybox sh -c 'exit 0' && echo FORK-OK");
  EXPECT_NE(ok.find("hi\n"), std::string::npos) << ok;
  EXPECT_NE(ok.find("FORK-OK"), std::string::npos) << ok;
}

TEST_F(RuntimeConfinementTest, UnconfinedBundleHasNoSeccomp) {
  Confinement c;
  c.seccomp = false;
  auto r = run_bundle("unconfined", c, "/bin/busybox grep Seccomp: /proc/self/status");
  EXPECT_EQ(r.code, 0) << r.all();
  // no_new_privileges alone leaves seccomp off (0).
  EXPECT_NE(r.out.find("Seccomp:\t0"), std::string::npos) << r.all();
}

TEST_F(RuntimeConfinementTest, AForkBombStaysInsideItsPidsLimit) {
  // The default limit (1024) through Runtime::start: the shell cannot fork past it.
  std::string out = run_instance(
      "forkbomb-1",
      "/bin/busybox cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; i=0; "
      "while [ $i -lt 1500 ]; do /bin/busybox sleep 30 & i=$((i+1)); done; echo SPAWNED $i");
  EXPECT_TRUE(out.find("can't fork") != std::string::npos ||
              out.find("Resource temporarily unavailable") != std::string::npos)
      << out;
  EXPECT_EQ(out.find("SPAWNED 1500"), std::string::npos) << out;
  // The host is fine: it still forks.
  EXPECT_EQ(test::run("true").code, 0);
  // A lower limit, as --pids-limit sets it.
  Confinement c;
  c.pids_limit = 32;
  auto r = run_bundle("forkbomb-2", c,
                      "i=0; while [ $i -lt 100 ]; do /bin/busybox sleep 30 & i=$((i+1)); done; "
                      "echo SPAWNED $i");
  EXPECT_NE(r.all().find("can't fork"), std::string::npos) << r.all();
  EXPECT_EQ(r.all().find("SPAWNED 100"), std::string::npos) << r.all();
  EXPECT_EQ(test::run("true").code, 0);
}

TEST_F(RuntimeConfinementTest, ReadOnlyRootfsKeepsATmpfsAtTmp) {
  Confinement c;
  c.read_only_rootfs = true;
  auto r = run_bundle("readonly", c,
                      "if echo x > /written 2>/dev/null; then echo ROOT-WRITABLE; "
                      "else echo ROOT-READONLY; fi; echo y > /tmp/ok && /bin/busybox cat /tmp/ok");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("ROOT-READONLY"), std::string::npos) << r.all();
  EXPECT_NE(r.out.find("y\n"), std::string::npos) << r.all();
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "readonly/rootfs/written"));
}

}  // namespace
}  // namespace berth::runtime

namespace berth::runtime {
namespace {

class RuntimeUsernsTest : public RuntimeConfinementTest {
 protected:
  RuntimeUsernsTest() { userns_ = true; }
};

TEST_F(RuntimeUsernsTest, CheckPassesWhenTheKernelAllowsUserNamespaces) {
  auto st = rt_->check();
  EXPECT_TRUE(st) << st.error().message();
  std::ifstream f("/proc/sys/user/max_user_namespaces");
  long long max = 0;
  ASSERT_TRUE(f >> max);
  ASSERT_GT(max, 0) << "this host allows no user namespaces";
}

TEST_F(RuntimeUsernsTest, CheckRefusesARootOthersCannotSearch) {
  ASSERT_EQ(::chmod(root_.path().c_str(), 0700), 0);
  auto st = rt_->check();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("o+x"), std::string::npos) << st.error().message();
  ASSERT_EQ(::chmod(root_.path().c_str(), 0711), 0);
}

TEST_F(RuntimeUsernsTest, RootInsideIsTheMappedUidOnTheHost) {
  InstanceSpec s;
  s.id = "userns-1";
  s.image = image_;
  s.image.config.entrypoint.clear();
  s.image.config.cmd = {"/bin/busybox", "sh", "-c",
                        "/bin/busybox cat /proc/self/uid_map; echo UID=$(/bin/busybox id -u); "
                        "echo hello > /probe && echo WROTE; echo END; exec /bin/busybox sleep 60"};
  s.log = log_;
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  std::string out;
  for (int i = 0; i < 1000 && out.find("END") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out.clear();
    for (const auto& line : read_log(log_->path(), 0, s.id, 0)) {
      out += line.text + "\n";
    }
  }
  // The file as the host sees it, in the instance's upper dir, before stop() removes it.
  struct stat st {};
  int stat_rc = ::stat((root_ / "instances/userns-1/upper/probe").c_str(), &st);
  int stat_errno = errno;
  (void)rt_->stop(s.id, std::chrono::milliseconds(0));
  ASSERT_NE(out.find("END"), std::string::npos) << out;
  EXPECT_NE(out.find("UID=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("WROTE"), std::string::npos) << out;
  // "0 100000 65536", not the initial namespace's "0 0 4294967295".
  EXPECT_EQ(out.find("4294967295"), std::string::npos) << out;
  std::istringstream map(out);
  uint64_t inside = 1, host = 0, size = 0;
  map >> inside >> host >> size;
  EXPECT_EQ(inside, 0u) << out;
  EXPECT_EQ(host, kUsernsHostBase) << out;
  EXPECT_EQ(size, kUsernsSize) << out;
  ASSERT_EQ(stat_rc, 0) << std::strerror(stat_errno);
  EXPECT_EQ(st.st_uid, kUsernsHostBase);
  EXPECT_EQ(st.st_gid, kUsernsHostBase);
}

// The router and health checks reach an instance through a socket opened in its network
// namespace; that namespace now belongs to the instance's user namespace.
TEST_F(RuntimeUsernsTest, ServesInsideItsNetworkNamespace) {
  InstanceSpec s;
  s.id = "userns-web";
  s.image = image_;
  s.image.config.entrypoint.clear();
  s.image.config.cmd = {"/bin/busybox", "sh", "-c",
                        "echo hello-userns > /index.html && "
                        "exec /bin/busybox httpd -f -p 8080 -h /"};
  s.log = log_;
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->netns);
  std::string resp;
  for (int i = 0; i < 1000 && resp.find("hello-userns") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto fd = info->netns->tcp_socket();
    ASSERT_TRUE(fd) << fd.error().message();
    int flags = ::fcntl(*fd, F_GETFL);
    ::fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
    if (test::connect_loopback(*fd, 8080)) {
      std::string req = "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n";
      (void)::write(*fd, req.data(), req.size());
      char buf[4096];
      ssize_t n;
      while ((n = ::read(*fd, buf, sizeof buf)) > 0) {
        resp.append(buf, static_cast<size_t>(n));
      }
    }
    ::close(*fd);
  }
  (void)rt_->stop(s.id, std::chrono::milliseconds(0));
  EXPECT_NE(resp.find("hello-userns"), std::string::npos) << resp;
}

}  // namespace
}  // namespace berth::runtime
