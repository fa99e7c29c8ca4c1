// SPDX-License-Identifier: Apache-2.0
// The runtime with real runc: a busybox image from an OCI layout, unpacked and run as isolated
// instances (own network namespace, cgroup limits, logs, exit codes, clean stops).
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

#include "common/json.h"
#include "support/harness.h"
#include "support/layout_source.h"

namespace berth::runtime {
namespace {

using test::TempDir;

using test::LayoutSource;

std::string why_skip() {
  if (::geteuid() != 0) {
    return "needs root (overlay mounts, runc)";
  }
  if (!test::have("runc")) {
    return "runc is not installed";
  }
  if (!test::have("umoci")) {
    return "umoci is not installed";
  }
  return "";
}

// One busybox image for the whole suite.
struct Image {
  TempDir layout_dir;
  std::string layout;
  std::string error;
  std::string digest;
};
Image* g_image = nullptr;

class RuntimeIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!why_skip().empty()) {
      return;
    }
    g_image = new Image;
    g_image->layout = g_image->layout_dir / "layout";
    g_image->error = test::make_busybox_layout(
        g_image->layout, "v1",
        {{"www/index.html", "hello from berth\n"},
         {"etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"},
         {"etc/group", "root:x:0:\napp:x:1000:\n"}});
    if (g_image->error.empty()) {
      g_image->digest = LayoutSource(g_image->layout).tag_digest("v1");
    }
  }
  static void TearDownTestSuite() {
    delete g_image;
    g_image = nullptr;
  }

  void SetUp() override {
    std::string why = why_skip();
    if (!why.empty()) {
      GTEST_SKIP() << why;
    }
    ASSERT_EQ(g_image->error, "");
    ASSERT_FALSE(g_image->digest.empty());
    source_ = std::make_unique<LayoutSource>(g_image->layout);
    preparer_ = std::make_unique<ImagePreparer>(root_.path(), *source_);
    RuntimeOptions o;
    o.root = root_.path();
    rt_ = std::make_unique<Runtime>(o, ioc_);
    rt_->on_exit([this](const std::string& id, InstanceExit e) {
      std::lock_guard<std::mutex> g(mu_);
      exits_[id] = e;
      cv_.notify_all();
    });
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        ioc_.get_executor());
    io_thread_ = std::thread([this] { ioc_.run(); });
    auto img = preparer_->prepare("web/app", g_image->digest);
    ASSERT_TRUE(img) << img.error().message();
    image_ = *img;
    log_ = std::make_shared<LogSink>(root_ / "svc.log");
  }

  void TearDown() override {
    if (rt_) {
      auto ids = rt_->list();
      if (ids) {
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

  InstanceSpec spec(const std::string& id, std::vector<std::string> cmd) {
    InstanceSpec s;
    s.id = id;
    s.image = image_;
    s.image.config.entrypoint.clear();
    s.image.config.cmd = std::move(cmd);
    s.env = {"PORT=8080"};
    s.log = log_;
    return s;
  }

  InstanceSpec httpd(const std::string& id) {
    return spec(id, {"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"});
  }

  std::optional<InstanceExit> wait_exit(const std::string& id) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, std::chrono::seconds(10), [&] { return exits_.count(id) > 0; })) {
      return std::nullopt;
    }
    return exits_[id];
  }

  // Lines of the log for an instance, waiting (up to 20 s) until `want` shows up.
  std::vector<LogLine> log_until(const std::string& id, const std::string& want) {
    std::vector<LogLine> lines;
    test::eventually(
        [&] {
          lines = read_log(log_->path(), 0, id, 0);
          return std::any_of(lines.begin(), lines.end(), [&](const LogLine& l) {
            return l.text.find(want) != std::string::npos;
          });
        },
        std::chrono::seconds(20), std::chrono::milliseconds(20));
    return lines;
  }

  static bool mounted_under(const std::string& dir) {
    return test::read_file("/proc/self/mountinfo").find(dir) != std::string::npos;
  }

  void expect_gone(const std::string& id) {
    EXPECT_FALSE(mounted_under(root_ / ("instances/" + id)));
    EXPECT_FALSE(std::filesystem::exists(root_ / ("instances/" + id)));
    EXPECT_FALSE(std::filesystem::exists(root_ / ("runc/" + id)));
    EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory/berth/" + id));
    auto ids = rt_->list();
    ASSERT_TRUE(ids);
    EXPECT_EQ(std::count(ids->begin(), ids->end(), id), 0);
  }

  TempDir root_;
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

// GET path from 127.0.0.1:port through an already created socket; "" when nothing answers.
std::string http_get(int fd, uint16_t port) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!test::connect_loopback(fd, port)) {
    ::close(fd);
    return "";
  }
  std::string req = "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return resp;
}

// Retries while the server starts listening (up to 20 s).
std::string get_in(const NetNs& ns, uint16_t port) {
  for (int i = 0; i < 1000; ++i) {
    auto fd = ns.tcp_socket();
    if (!fd) {
      return "socket: " + fd.error().message();
    }
    std::string r = http_get(*fd, port);
    if (!r.empty()) {
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

std::string get_on_host(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  return http_get(fd, port);
}

TEST_F(RuntimeIntegrationTest, ChecksPass) {
  auto s = rt_->check();
  EXPECT_TRUE(s) << s.error().message();
}

TEST_F(RuntimeIntegrationTest, ServesHttpInsideItsOwnNetworkNamespace) {
  auto info = rt_->start(httpd("web-1"));
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->netns);
  EXPECT_GT(info->pid, 0);
  std::string resp = get_in(*info->netns, 8080);
  EXPECT_NE(resp.find("200 OK"), std::string::npos) << resp;
  EXPECT_NE(resp.find("hello from berth"), std::string::npos) << resp;
  // The host's loopback is another namespace: whatever is there, it is not this server.
  EXPECT_EQ(get_on_host(8080).find("hello from berth"), std::string::npos);
  auto ids = rt_->list();
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, std::vector<std::string>{"web-1"});

  ASSERT_TRUE(rt_->stop("web-1", std::chrono::milliseconds(500)));
  expect_gone("web-1");
  // stop() is idempotent and does not report a stop as an exit.
  EXPECT_TRUE(rt_->stop("web-1", std::chrono::milliseconds(500)));
  std::lock_guard<std::mutex> g(mu_);
  EXPECT_EQ(exits_.count("web-1"), 0u);
}

TEST_F(RuntimeIntegrationTest, TwoInstancesListenOnTheSamePort) {
  auto a = rt_->start(httpd("web-a"));
  ASSERT_TRUE(a) << a.error().message();
  auto b = rt_->start(httpd("web-b"));
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_NE(get_in(*a->netns, 8080).find("hello from berth"), std::string::npos);
  EXPECT_NE(get_in(*b->netns, 8080).find("hello from berth"), std::string::npos);
  // Both still listening: each bound 8080 in its own namespace.
  EXPECT_NE(get_in(*a->netns, 8080).find("hello from berth"), std::string::npos);
  EXPECT_TRUE(rt_->stop("web-a", std::chrono::milliseconds(200)));
  EXPECT_TRUE(rt_->stop("web-b", std::chrono::milliseconds(200)));
  expect_gone("web-a");
  expect_gone("web-b");
}

TEST_F(RuntimeIntegrationTest, EnvAndOutputLandInTheLog) {
  auto s = spec("env-1", {"/bin/busybox", "sh", "-c",
                          "/bin/busybox env; echo to-stderr >&2; /bin/busybox hostname"});
  s.image.config.env = {"FROM_IMAGE=yes", "PORT=1"};
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  auto e = wait_exit("env-1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->str(), "exited with code 0");
  auto lines = log_until("env-1", "to-stderr");
  lines = log_until("env-1", "PATH=");
  std::map<std::string, std::string> out;
  bool saw_stderr = false;
  bool saw_hostname = false;
  for (const auto& l : lines) {
    EXPECT_EQ(l.instance, "env-1");
    if (l.stream == "stdout") {
      out[l.text.substr(0, l.text.find('='))] = l.text;
      saw_hostname |= l.text == "env-1";
    }
    saw_stderr |= l.stream == "stderr" && l.text == "to-stderr";
  }
  EXPECT_EQ(out["PORT"], "PORT=8080");  // the service's env wins over the image's
  EXPECT_EQ(out["FROM_IMAGE"], "FROM_IMAGE=yes");
  EXPECT_NE(out["PATH"].find("/bin"), std::string::npos);
  EXPECT_EQ(out["HOME"], "HOME=/root");
  EXPECT_TRUE(saw_stderr);
  EXPECT_TRUE(saw_hostname);
  EXPECT_TRUE(rt_->stop("env-1", std::chrono::milliseconds(100)));
  expect_gone("env-1");
}

TEST_F(RuntimeIntegrationTest, ReportsExitCodesAndCleansUpAfterExit) {
  auto info = rt_->start(spec("exit-3", {"/bin/busybox", "sh", "-c", "exit 3"}));
  ASSERT_TRUE(info) << info.error().message();
  auto e = wait_exit("exit-3");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->exit_code, 3);
  EXPECT_EQ(e->signal, 0);
  EXPECT_EQ(e->str(), "exited with code 3");
  // Still listed (its bundle and state remain) until stop() cleans up.
  auto ids = rt_->list();
  ASSERT_TRUE(ids);
  EXPECT_EQ(std::count(ids->begin(), ids->end(), "exit-3"), 1);
  ASSERT_TRUE(rt_->stop("exit-3", std::chrono::milliseconds(100)));
  expect_gone("exit-3");

  // Killed from outside (as the OOM killer would): pid 1 of a namespace cannot kill itself.
  auto k = rt_->start(spec("kill-9", {"/bin/busybox", "sleep", "30"}));
  ASSERT_TRUE(k) << k.error().message();
  ASSERT_EQ(::kill(k->pid, SIGKILL), 0);
  e = wait_exit("kill-9");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->signal, 9);
  EXPECT_EQ(e->str(), "killed by signal 9 (SIGKILL)");
}

TEST_F(RuntimeIntegrationTest, StopEscalatesToKill) {
  // Handles SIGTERM without exiting: stop() waits out the grace period, then kills.
  auto info = rt_->start(spec("stubborn", {"/bin/busybox", "sh", "-c",
                                           "trap 'echo got-term' TERM; echo trap-set; while :; "
                                           "do /bin/busybox sleep 0.1; done"}));
  ASSERT_TRUE(info) << info.error().message();
  log_until("stubborn", "trap-set");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(rt_->stop("stubborn", std::chrono::milliseconds(300)));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(5));
  expect_gone("stubborn");
  // The shell got the SIGTERM and stayed: the kill was needed.
  auto lines = log_until("stubborn", "got-term");
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                          [](const LogLine& l) { return l.text == "got-term"; }));
}

TEST_F(RuntimeIntegrationTest, StopKillsAtOnceWhatWouldIgnoreTheSignal) {
  // busybox sh as pid 1 has no SIGTERM handler, so the kernel drops the signal: no point in
  // waiting for it.
  auto info =
      rt_->start(spec("deaf", {"/bin/busybox", "sh", "-c", "echo up; while :; do sleep 1; done"}));
  ASSERT_TRUE(info) << info.error().message();
  // Until runc's init has exec'd the shell, pid 1 is runc's (which does handle SIGTERM).
  log_until("deaf", "up");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(rt_->stop("deaf", std::chrono::seconds(10)));
  // Not the 10 s grace: a loaded machine may take a few seconds for runc itself.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  expect_gone("deaf");
}

TEST_F(RuntimeIntegrationTest, AppliesCgroupLimits) {
  auto s = httpd("limited");
  s.memory_bytes = 64 << 20;
  s.cpus = 0.5;
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  std::string mem = "/sys/fs/cgroup/memory/berth/limited/memory.limit_in_bytes";
  if (std::filesystem::exists("/sys/fs/cgroup/memory/berth")) {
    EXPECT_EQ(test::read_file(mem), std::to_string(64 << 20) + "\n");
  }
  std::string quota = "/sys/fs/cgroup/cpu/berth/limited/cpu.cfs_quota_us";
  if (std::filesystem::exists(quota)) {
    EXPECT_EQ(test::read_file(quota), "50000\n");
  }
  ASSERT_TRUE(rt_->stop("limited", std::chrono::milliseconds(100)));
  expect_gone("limited");
}

TEST_F(RuntimeIntegrationTest, ResolvesUsersAndRefusesMissingOnes) {
  auto s = spec("user-ok", {"/bin/busybox", "id"});
  s.image.config.user = "app";
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(wait_exit("user-ok"));
  auto lines = log_until("user-ok", "uid=");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().text.find("uid=1000"), std::string::npos) << lines.back().raw;
  EXPECT_NE(lines.back().text.find("gid=1000"), std::string::npos) << lines.back().raw;
  ASSERT_TRUE(rt_->stop("user-ok", std::chrono::milliseconds(100)));

  s = spec("user-bad", {"/bin/busybox", "id"});
  s.image.config.user = "nobody-here";
  auto bad = rt_->start(s);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  EXPECT_NE(bad.error().message().find("user \"nobody-here\" is not in the image's /etc/passwd"),
            std::string::npos)
      << bad.error().message();
  expect_gone("user-bad");
}

TEST_F(RuntimeIntegrationTest, FailedStartLeavesNothingAndCarriesRuncsError) {
  auto s = spec("no-such-binary", {"/does/not/exist"});
  auto r = rt_->start(s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/does/not/exist"), std::string::npos) << r.error().message();
  expect_gone("no-such-binary");
}

TEST_F(RuntimeIntegrationTest, MountsImagesWithManyLayers) {
  // 50 layers do not fit one page of overlay options with absolute paths: the runtime mounts
  // them with names relative to the layer cache instead.
  auto s = spec("layers-50", {"/bin/busybox", "sh", "-c", "exit 7"});
  for (int i = 0; i < 49; ++i) {
    char hex[65];
    std::snprintf(hex, sizeof hex, "%064x", i + 1);
    std::string dir = root_ / ("layers/" + std::string(hex));
    std::filesystem::create_directories(dir + "/extra");
    s.image.layer_dirs.push_back(dir);
  }
  auto info = rt_->start(s);
  ASSERT_TRUE(info) << info.error().message();
  auto e = wait_exit("layers-50");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->exit_code, 7);
  ASSERT_TRUE(rt_->stop("layers-50", std::chrono::milliseconds(100)));
  expect_gone("layers-50");
}

// Ten instances started and stopped in a row leave nothing behind. Their start latency is
// bench/deploy_bench.sh's to measure ("instance start" in docs/benchmarks.md); the test prints it.
TEST_F(RuntimeIntegrationTest, InstancesStartAndStopInARow) {
  std::vector<double> ms;
  for (int i = 0; i < 10; ++i) {
    std::string id = "lat-" + std::to_string(i);
    auto t0 = std::chrono::steady_clock::now();
    auto info = rt_->start(httpd(id));
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(info) << info.error().message();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    ASSERT_TRUE(rt_->stop(id, std::chrono::milliseconds(0)));
    expect_gone(id);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("runtime start latency: median %.1f ms, min %.1f ms, max %.1f ms\n",
              (ms[4] + ms[5]) / 2, ms.front(), ms.back());
}

// ---- tasks (build RUN steps) ----------------------------------------------------------------

class RuntimeTaskTest : public RuntimeIntegrationTest {
 protected:
  // A task over the busybox image's layers, its changes in a fresh upper dir.
  TaskSpec task(const std::string& id, std::vector<std::string> args) {
    TaskSpec t;
    t.id = id;
    t.lower_dirs = image_.layer_dirs;
    t.upper_dir = scratch_ / (id + "-upper");
    t.work_dir = scratch_ / (id + "-work");
    std::filesystem::create_directories(t.upper_dir);
    std::filesystem::create_directories(t.work_dir);
    t.args = std::move(args);
    t.output = [this](std::string_view stream, std::string_view line) {
      std::lock_guard<std::mutex> g(out_mu_);
      out_.emplace_back(std::string(stream), std::string(line));
    };
    return t;
  }

  std::vector<std::string> lines(const std::string& stream) {
    std::lock_guard<std::mutex> g(out_mu_);
    std::vector<std::string> v;
    for (const auto& [s, l] : out_) {
      if (s == stream) {
        v.push_back(l);
      }
    }
    return v;
  }

  // Every path in dir, relative, sorted.
  static std::vector<std::string> tree(const std::string& dir) {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      v.push_back(e.path().lexically_relative(dir).string());  // no symlink resolution
    }
    std::sort(v.begin(), v.end());
    return v;
  }

  void expect_task_gone(const std::string& id) {
    EXPECT_FALSE(mounted_under(root_ / "tasks")) << test::read_file("/proc/self/mountinfo");
    EXPECT_FALSE(std::filesystem::exists(root_ / ("tasks/" + id)));
    EXPECT_TRUE(std::filesystem::is_empty(root_ / "runc-tasks"));
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup/memory/berth", ec)) {
      EXPECT_NE(e.path().filename().string().rfind("task-" + id + "-", 0), 0u)
          << "cgroup left: " << e.path();
    }
    auto ids = rt_->list();
    ASSERT_TRUE(ids);
    EXPECT_TRUE(ids->empty());
    // No zombie left: the task's process (our child, as subreaper) was reaped.
    siginfo_t info{};
    int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    EXPECT_TRUE(rc != 0 || info.si_pid == 0) << "unreaped child pid " << info.si_pid;
  }

  TempDir scratch_;
  std::mutex out_mu_;
  std::vector<std::pair<std::string, std::string>> out_;
};

TEST_F(RuntimeTaskTest, ReturnsTheExitCodeAndDeliversOutputLines) {
  auto t = task("task-out", {"/bin/busybox", "sh", "-c",
                             "echo one; echo oops >&2; printf 'two\\nthree'; exit 5"});
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 5);
  EXPECT_EQ(r->signal, 0);
  EXPECT_EQ(lines("stdout"), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(lines("stderr"), std::vector<std::string>{"oops"});
  // Tasks are not instances: never reported through on_exit.
  std::lock_guard<std::mutex> g(mu_);
  EXPECT_TRUE(exits_.empty());
}

TEST_F(RuntimeTaskTest, OnlyTheCommandsChangesLandInTheUpperDir) {
  // The image has /etc (passwd, group) but no /proc, /sys, /dev or /etc/hosts: the mount
  // points runc makes for them must not end up in the layer.
  auto t = task("task-fs", {"/bin/busybox", "sh", "-c",
                            "echo hi > /out.txt && /bin/busybox rm /www/index.html && "
                            "/bin/busybox cat /etc/hosts /etc/resolv.conf >/dev/null"});
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->str(), "exited with code 0") << ::testing::PrintToString(out_);
  EXPECT_EQ(tree(t.upper_dir), (std::vector<std::string>{"out.txt", "www", "www/index.html"}));
  EXPECT_EQ(test::read_file(t.upper_dir + "/out.txt"), "hi\n");
  // The deletion is an overlay whiteout: a 0/0 character device.
  struct stat st {};
  ASSERT_EQ(::lstat((t.upper_dir + "/www/index.html").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  expect_task_gone("task-fs");
}

TEST_F(RuntimeTaskTest, AppliesUserAndCreatesTheWorkingDirectory) {
  auto t = task("task-user", {"/bin/busybox", "sh", "-c",
                              "/bin/busybox id -u; /bin/busybox id -g; pwd; echo $HOME"});
  t.user = "app";
  t.cwd = "/work/dir";
  t.env = {"FOO=bar"};
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << ::testing::PrintToString(out_);
  EXPECT_EQ(lines("stdout"), (std::vector<std::string>{"1000", "1000", "/work/dir", "/home/app"}));
  // The working directory is a change of its own, as Docker's WORKDIR makes it.
  EXPECT_EQ(tree(t.upper_dir), (std::vector<std::string>{"work", "work/dir"}));
  struct stat st {};
  ASSERT_EQ(::stat((t.upper_dir + "/work/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);

  auto bad = task("task-nouser", {"/bin/busybox", "true"});
  bad.user = "nobody-here";
  auto b = rt_->run_task(bad);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::InvalidArgument);
  EXPECT_NE(b.error().message().find("nobody-here"), std::string::npos) << b.error().message();
  EXPECT_TRUE(tree(bad.upper_dir).empty());
  expect_task_gone("task-nouser");
}

TEST_F(RuntimeTaskTest, BindsAreVisibleAndLeaveNoMountPoints) {
  TempDir src;
  test::write_file(src / "hello.txt", "from the checkout\n");
  TempDir out;
  auto t = task("task-bind", {"/bin/busybox", "sh", "-c",
                              "/bin/busybox cat /src/hello.txt; echo made > /deep/out/result; "
                              "echo x > /src/nope 2>/dev/null || echo read-only"});
  t.binds.push_back({src.path(), "/src", true});
  t.binds.push_back({out.path(), "/deep/out", false});
  t.cwd = "/src";  // as a buildspec command runs: in its checkout, which is no change
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << ::testing::PrintToString(out_);
  EXPECT_EQ(lines("stdout"), (std::vector<std::string>{"from the checkout", "read-only"}));
  EXPECT_EQ(test::read_file(out / "result"), "made\n");
  EXPECT_FALSE(std::filesystem::exists(src / "nope"));
  EXPECT_TRUE(tree(t.upper_dir).empty()) << ::testing::PrintToString(tree(t.upper_dir));
  expect_task_gone("task-bind");
}

TEST_F(RuntimeTaskTest, HostNetworkOrLoopbackOnly) {
  auto host = task("task-hostnet", {"/bin/busybox", "cat", "/etc/resolv.conf"});
  host.host_network = true;
  auto r = rt_->run_task(host);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0);
  // The host's own file, bound read-only.
  auto seen = lines("stdout");
  std::string host_resolv = test::read_file("/etc/resolv.conf");
  size_t pos = 0;
  while (pos < host_resolv.size()) {
    size_t nl = host_resolv.find('\n', pos);
    std::string line = host_resolv.substr(pos, nl == std::string::npos ? nl : nl - pos);
    pos = nl == std::string::npos ? host_resolv.size() : nl + 1;
    if (!line.empty()) {
      EXPECT_EQ(std::count(seen.begin(), seen.end(), line), 1) << line;
    }
  }
  // Its own namespace: only a loopback interface.
  out_.clear();
  auto own = task("task-ownnet", {"/bin/busybox", "ls", "/sys/class/net"});
  own.host_network = false;
  r = rt_->run_task(own);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(lines("stdout"), std::vector<std::string>{"lo"});
  EXPECT_TRUE(tree(own.upper_dir).empty()) << ::testing::PrintToString(tree(own.upper_dir));
}

TEST_F(RuntimeTaskTest, TimeoutKillsAndLeavesNothing) {
  auto t =
      task("task-slow", {"/bin/busybox", "sh", "-c", "echo started; exec /bin/busybox sleep 30"});
  // The deadline counts from run_task's start, runc create included: room for a loaded runner.
  t.timeout = std::chrono::seconds(3);
  auto t0 = std::chrono::steady_clock::now();
  auto r = rt_->run_task(t);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::DeadlineExceeded) << r.error().message();
  EXPECT_GE(took, std::chrono::seconds(3));
  EXPECT_LT(took, std::chrono::seconds(15)) << "not the task's 30 s: the timeout ended it";
  EXPECT_EQ(lines("stdout"), std::vector<std::string>{"started"});
  EXPECT_TRUE(tree(t.upper_dir).empty()) << ::testing::PrintToString(tree(t.upper_dir));
  expect_task_gone("task-slow");
}

TEST_F(RuntimeTaskTest, CancelKillsAndIsNotListed) {
  std::atomic<bool> cancel{false};
  auto t = task("task-cancel", {"/bin/busybox", "sleep", "30"});
  t.cancel = &cancel;
  std::vector<std::string> listed_while_running;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (auto ids = rt_->list()) {
      listed_while_running = *ids;
    }
    cancel = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = rt_->run_task(t);
  canceller.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Cancelled) << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(listed_while_running.empty());
  expect_task_gone("task-cancel");
}

TEST_F(RuntimeTaskTest, EmptyLowerWithABoundStaticBinary) {
  // FROM scratch: no lower layers at all; busybox comes in through a bind, and a
  // `busybox --install -s /bin` layer holds its symlinks but not the bind's mount point.
  auto t = task("task-scratch", {"/bin/busybox", "sh", "-c",
                                 "/bin/busybox --install -s /bin && /bin/busybox mkdir /made"});
  t.lower_dirs.clear();
  t.binds.push_back({"/bin/busybox", "/bin/busybox", true});
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0) << ::testing::PrintToString(out_);
  auto files = tree(t.upper_dir);
  EXPECT_EQ(std::count(files.begin(), files.end(), "made"), 1);
  EXPECT_EQ(std::count(files.begin(), files.end(), "bin/busybox"), 0);
  EXPECT_EQ(std::count(files.begin(), files.end(), "bin/sh"), 1);
  for (const auto& f : files) {
    EXPECT_TRUE(f == "made" || f == "bin" || f.rfind("bin/", 0) == 0) << f;
  }
  struct stat st {};
  ASSERT_EQ(::lstat((t.upper_dir + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));

  // Nothing bound: only what the command made.
  auto bare = task("task-bare", {"/bin/busybox", "sh", "-c", "echo never"});
  bare.lower_dirs.clear();
  auto b = rt_->run_task(bare);
  ASSERT_FALSE(b);  // nothing to run in an empty rootfs
  EXPECT_EQ(b.error().code(), Errc::Internal);
  EXPECT_NE(b.error().message().find("/bin/busybox"), std::string::npos) << b.error().message();
  EXPECT_TRUE(tree(bare.upper_dir).empty()) << ::testing::PrintToString(tree(bare.upper_dir));
  expect_task_gone("task-bare");
}

TEST_F(RuntimeTaskTest, RefusesBadSpecs) {
  auto t = task("Bad_Id", {"/bin/busybox", "true"});
  EXPECT_EQ(rt_->run_task(t).error().code(), Errc::InvalidArgument);
  t = task("task-noargs", {});
  EXPECT_EQ(rt_->run_task(t).error().code(), Errc::InvalidArgument);
  t = task("task-relcwd", {"/bin/busybox", "true"});
  t.cwd = "relative";
  EXPECT_EQ(rt_->run_task(t).error().code(), Errc::InvalidArgument);
  t = task("task-nobind", {"/bin/busybox", "true"});
  t.binds.push_back({"/does/not/exist", "/x", false});
  EXPECT_EQ(rt_->run_task(t).error().code(), Errc::InvalidArgument);
}

TEST_F(RuntimeTaskTest, ANewRuntimeRemovesTasksACrashLeftBehind) {
  // What a berthd killed mid-task leaves: a bundle whose rootfs is still an overlay mount.
  std::string bundle = root_ / "tasks/task-crashed";
  for (const char* d : {"/rootfs", "/l", "/u", "/w"}) {
    std::filesystem::create_directories(bundle + d);
  }
  auto m = test::run("mount -t overlay overlay -o lowerdir=" + bundle + "/l,upperdir=" + bundle +
                     "/u,workdir=" + bundle + "/w " + bundle + "/rootfs");
  ASSERT_EQ(m.code, 0) << m.all();
  ASSERT_TRUE(mounted_under(bundle));
  RuntimeOptions o;
  o.root = root_.path();
  Runtime again(o, ioc_);
  EXPECT_FALSE(mounted_under(bundle));
  EXPECT_FALSE(std::filesystem::exists(bundle));
}

TEST_F(RuntimeTaskTest, RunsBesideInstances) {
  // An instance exiting while a task runs: each exit goes to its own waiter.
  auto info = rt_->start(
      spec("inst-beside", {"/bin/busybox", "sh", "-c", "/bin/busybox sleep 0.2; exit 4"}));
  ASSERT_TRUE(info) << info.error().message();
  auto t = task("task-beside", {"/bin/busybox", "sh", "-c", "/bin/busybox sleep 0.5; exit 6"});
  auto r = rt_->run_task(t);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 6);
  auto e = wait_exit("inst-beside");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->exit_code, 4);
  ASSERT_TRUE(rt_->stop("inst-beside", std::chrono::milliseconds(0)));
  expect_task_gone("task-beside");
}

}  // namespace
}  // namespace berth::runtime
