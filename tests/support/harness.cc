// SPDX-License-Identifier: Apache-2.0
#include "support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/url.h"

namespace berth::test {

namespace stdfs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/berth-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  stdfs::remove_all(path_, ec);
  if (ec) {
    // Mounts or root-owned files from container tools: try harder.
    std::string cmd = "rm -rf '" + path_ + "' 2>/dev/null";
    (void)std::system(cmd.c_str());
  }
}

CmdResult run(const std::string& cmd) {
  TempDir tmp;
  std::string out = tmp / "out", err = tmp / "err";
  std::string full = "bash -c '" +
                     [&] {
                       std::string q;
                       for (char c : cmd) {
                         if (c == '\'') {
                           q += "'\\''";
                         } else {
                           q += c;
                         }
                       }
                       return q;
                     }() +
                     "' </dev/null >" + out + " 2>" + err;
  int status = std::system(full.c_str());
  CmdResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

CmdResult git(const std::string& dir, const std::string& args) {
  return run("cd '" + dir +
             "' && GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 "
             "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main "
             "-c advice.detachedHead=false " +
             args + " 2>&1");
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

bool have(const std::string& tool) { return run("command -v " + tool).code == 0; }

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit,
                std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(every);
  }
  return cond();
}

bool stop_child(pid_t& pid, std::chrono::milliseconds grace, int sig) {
  if (pid <= 0) {
    return true;
  }
  ::kill(pid, sig);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  bool in_time = true;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      in_time = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid = -1;
  return in_time;
}

std::string wait_started(pid_t& pid, std::string_view name, const std::function<bool()>& ready,
                         std::chrono::milliseconds limit, std::chrono::milliseconds every) {
  if (pid <= 0) {
    return std::string(name) + " could not be spawned";
  }
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return std::string(name) + " exited";
    }
    if (ready()) {
      return {};
    }
    if (std::chrono::steady_clock::now() > deadline) {
      auto ms = limit.count();
      return std::string(name) + " was not ready within " +
             (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms");
    }
    std::this_thread::sleep_for(every);
  }
}

namespace {

// Runs jobs on one thread that lives as long as the process. A parent-death signal follows the
// thread that forked, not the process: a server started from a test's short-lived thread (a
// restart while a call waits) would die with that thread.
class SpawnThread {
 public:
  SpawnThread() {
    std::thread([this] { loop(); }).detach();
  }

  pid_t run(const std::function<pid_t()>& job) {
    std::lock_guard one(call_mu_);  // one job at a time
    std::unique_lock lock(mu_);
    job_ = &job;
    cv_.notify_all();
    cv_.wait(lock, [&] { return job_ == nullptr; });
    return result_;
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr; });
      result_ = (*job_)();
      job_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<pid_t()>* job_ = nullptr;
  pid_t result_ = -1;
};

// This process's spawner thread, made at first use. A process forked from a test has none
// (fork copies only the calling thread), so it makes its own.
SpawnThread& spawn_thread() {
  static std::mutex mu;
  static SpawnThread* thread = nullptr;  // never destroyed: it outlives every server
  static pid_t owner = 0;
  std::lock_guard lock(mu);
  if (thread == nullptr || owner != ::getpid()) {
    thread = new SpawnThread();  // in a forked child the parent's is lost with its thread
    owner = ::getpid();
  }
  return *thread;
}

}  // namespace

pid_t spawn_server(const std::vector<std::string>& argv, const std::string& log,
                   const SpawnOptions& opts) {
  // Everything the child uses is made before fork: the test process may have threads, so
  // between fork and exec the child makes system calls only.
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : opts.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  // This process's environment, less what opts.env sets: with a name twice, programs differ
  // in which one they take (bash the last, getenv the first).
  auto overridden = [&](const char* e) {
    std::string_view name(e, std::strcspn(e, "="));
    return std::any_of(opts.env.begin(), opts.env.end(), [&](const std::string& o) {
      return o.size() > name.size() && o.compare(0, name.size(), name) == 0 &&
             o[name.size()] == '=';
    });
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) {
      envp.push_back(*e);
    }
  }
  envp.push_back(nullptr);
  bool change_user = !opts.user.empty() && ::geteuid() == 0;
  uid_t uid = 0;
  gid_t gid = 0;
  if (change_user) {
    passwd pwd{};
    passwd* pw = nullptr;
    std::array<char, 4096> buf{};
    if (::getpwnam_r(opts.user.c_str(), &pwd, buf.data(), buf.size(), &pw) != 0 || pw == nullptr) {
      return -1;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  pid_t parent = ::getpid();
  // The child runs on the spawner thread (fork copies only the thread that calls it) and never
  // returns from the job.
  auto child = [&] {
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
      ::_exit(126);
    }
    // Nothing of the test's own: its other descriptors, its blocked signals, and the
    // signals it ignores (std::system ignores SIGINT and SIGQUIT while a command runs).
    ::close_range(3, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for SIGKILL, SIGSTOP and the unused
    }
    if (opts.new_session) {
      ::setsid();
    }
    if (change_user && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
      ::_exit(126);
    }
    // After the change of user, which clears it; then make sure the parent is still there to
    // die (it may have gone before the prctl).
    ::prctl(PR_SET_PDEATHSIG, opts.death_signal);
    if (::getppid() != parent) {
      ::_exit(1);
    }
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  };
  return spawn_thread().run([&] {
    pid_t pid = ::fork();
    if (pid == 0) {
      child();
    }
    return pid;
  });
}

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// The lowest port of the kernel's ephemeral range (net.ipv4.ip_local_port_range).
uint16_t ephemeral_low() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned lo = 0, hi = 0;
  if (f >> lo >> hi && lo > 11000 && lo <= 65535) {
    return static_cast<uint16_t>(lo);
  }
  return 32768;
}

// Binds a socket to 127.0.0.1:`port` (0: any) and closes it again: the port it got, or 0 when
// something holds that one (a listener, a connection, a TIME_WAIT).
uint16_t bind_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(port);
  socklen_t len = sizeof a;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

}  // namespace

void server_missing(const std::string& why) {
  const char* required = std::getenv("BERTH_TEST_REQUIRE_SERVERS");
  if (required != nullptr && std::string(required) == "1") {
    ADD_FAILURE() << why << " (BERTH_TEST_REQUIRE_SERVERS=1: this run needs it)";
  }
}

bool connect_loopback(int fd, uint16_t port) {
  sockaddr_in a = loopback(port);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

int connect_loopback(uint16_t port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!connect_loopback(fd, port)) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

int listen_loopback(uint16_t& port, int backlog) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

bool can_bind(const std::string& ip, uint16_t port) {
  bool v6 = ip.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  int rc = -1;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr) == 1) {
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) == 1) {
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
  }
  ::close(fd);
  return rc == 0;
}

std::string served_serial(uint16_t port, const std::string& name) {
  auto r = run("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
               " -servername " + name + " 2>/dev/null | openssl x509 -noout -serial");
  std::string s = trimmed(r.out);
  if (s.rfind("serial=", 0) != 0) {
    return "no certificate: " + r.all();
  }
  s = s.substr(7);
  s.erase(0, std::min(s.find_first_not_of('0'), s.size() - 1));
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string random_text(const std::string& alphabet, size_t n) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += alphabet[rng() % alphabet.size()];
  }
  return out;
}

// A port for a server a test is about to start, chosen at random below the kernel's ephemeral
// range: a port that bind(0) hands out lies in that range, where any process's next outgoing
// connection may take it as its local port before the server binds it (seen: a restarted
// berthd failing with "Address already in use" while other tests ran). And this process never
// hands out a port twice (the kernel may give the same one to two calls in a row; seen:
// pebble's two listeners). Other test processes choose at random too, and the server's own
// bind is the final word (BerthdProcess starts again on new ports when it loses one).
uint16_t free_port() {
  static std::mutex mu;
  static std::set<uint16_t> given;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  std::lock_guard lock(mu);
  const uint16_t low = 10000, high = ephemeral_low();
  std::uniform_int_distribution<unsigned> pick(low, high - 1u);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<uint16_t>(pick(rng));
    if (given.count(port) == 0 && bind_loopback(port) == port) {
      given.insert(port);
      return port;
    }
  }
  return bind_loopback(0);  // nearly every port below the range in use: the kernel's pick
}

std::string bin(const std::string& name) { return std::string(BERTH_BIN_DIR) + "/" + name; }

void write_file(const std::string& path, const std::string& content) {
  stdfs::create_directories(stdfs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string unquote(const std::string& s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' ? s.substr(1, s.size() - 2) : s;
}

std::string jq(const std::string& json, const std::string& filter) {
  TempDir t;
  write_file(t / "in.json", json);
  auto r = run("jq -c '" + filter + "' " + (t / "in.json"));
  EXPECT_EQ(r.code, 0) << filter << "\n" << r.all() << "\n" << json;
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string base64(const std::string& bytes) { return b64::encode(bytes); }

AdminCredentials AdminCredentials::read(const std::string& data_dir) {
  AdminCredentials c;
  std::istringstream in(read_file(data_dir + "/admin.credentials"));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "BERTH_ACCESS_KEY_ID") {
      c.key_id = v;
    } else if (k == "BERTH_SECRET_ACCESS_KEY") {
      c.secret = v;
    }
  }
  return c;
}

CmdResult berth_as(const std::string& server, const AdminCredentials& who,
                   const std::string& args) {
  TempDir home;
  return run("env -u BERTH_ACCESS_KEY_ID -u BERTH_SECRET_ACCESS_KEY -u BERTH_SERVER HOME='" +
             home.path() + "' " + (who.key_id.empty() ? "" : who.env()) + bin("berth") +
             " --server " + server + " " + args);
}

TestDaemon::TestDaemon(std::function<void(config::Config&)> tweak) {
  config::Config cfg;
  cfg.data_dir = data_.path();
  cfg.listen = "127.0.0.1:0";
  cfg.router_listen = {"127.0.0.1:0"};
  cfg.router_tls_listen = {"127.0.0.1:0"};  // never the shared default 8443
  cfg.dns.listen = {"127.0.0.1:0"};
  cfg.dns.udp_threads = 1;
  cfg.log_level = "warn";
  cfg.storage.fsync = false;  // tests exercise logic, not the disk
  cfg.tls.dns_check = false;  // never ask the machine's resolver, which is off this host
  if (tweak) {
    tweak(cfg);
  }
  auto d = daemon::Daemon::create(cfg);
  if (!d) {
    throw std::runtime_error("berthd create: " + d.error().message());
  }
  d_ = std::move(*d);
  auto p = d_->start();
  if (!p) {
    throw std::runtime_error("berthd start: " + p.error().message());
  }
  port_ = *p;
  admin_ = AdminCredentials::read(data_.path());
  if (admin_.key_id.empty() || admin_.secret.empty()) {
    throw std::runtime_error("berthd wrote no admin credentials in " + data_.path() +
                             "/admin.credentials");
  }
}

TestDaemon::~TestDaemon() { d_->stop(); }

uint16_t TestDaemon::dns_port() const {
  auto a = d_->dns_addresses();
  if (a.empty()) {
    return 0;
  }
  return static_cast<uint16_t>(std::stoi(a.front().substr(a.front().rfind(':') + 1)));
}

std::string TestDaemon::host() const { return "127.0.0.1:" + std::to_string(port_); }
std::string TestDaemon::url() const { return "http://" + host(); }

CmdResult TestDaemon::cli(const std::string& args) const { return berth_as(url(), admin_, args); }

CmdResult TestDaemon::cli_as(const AdminCredentials& who, const std::string& args) const {
  return berth_as(url(), who, args);
}

CmdResult BerthdProcess::cli(const std::string& args) const {
  return berth_as(url(), admin_, args);
}

BerthdProcess::BerthdProcess(std::string data_dir, std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)), extra_(std::move(extra_args)) {
  log_ = data_dir_ + ".log";
}

BerthdProcess::~BerthdProcess() {
  if (pid_ > 0) {
    kill9();
  }
  std::error_code ec;
  stdfs::remove(log_, ec);  // lives next to (not in) the data dir
}

std::string BerthdProcess::host() const { return listen_address_ + ":" + std::to_string(port_); }
std::string BerthdProcess::url() const { return "http://" + host(); }

void BerthdProcess::start() {
  // Ports are picked free and bound by berthd a moment later: a test running beside this one
  // may take one in between. berthd then exits naming the address in use, and is started
  // again on other ports (twice at most).
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    router_port_ = free_port();
    router_tls_port_ = free_port();
    dns_port_ = free_port();
    std::vector<std::string> args = {bin("berthd"),
                                     "--data",
                                     data_dir_,
                                     "--listen",
                                     host(),
                                     "--router-listen",
                                     "127.0.0.1:" + std::to_string(router_port_),
                                     "--router-tls-listen",
                                     "127.0.0.1:" + std::to_string(router_tls_port_),
                                     "--dns-listen",
                                     "127.0.0.1:" + std::to_string(dns_port_)};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::error_code size_ec;
    auto log_before = stdfs::file_size(log_, size_ec);
    if (size_ec) {
      log_before = 0;
    }
    // SIGTERM if the test dies first: berthd stops its instances on the way out.
    SpawnOptions opts;
    opts.death_signal = SIGTERM;
    pid_ = spawn_server(args, log_, opts);
    std::string why = wait_started(
        pid_, "berthd", [&] { return run("curl -sf " + url() + "/healthz").code == 0; },
        std::chrono::seconds(15));
    if (why.empty()) {
      admin_ = AdminCredentials::read(data_dir_);
      if (admin_.key_id.empty() || admin_.secret.empty()) {
        FAIL() << "berthd wrote no admin credentials in " << data_dir_
               << "/admin.credentials: " << read_file(log_);
      }
      return;
    }
    std::string log = read_file(log_);
    std::string this_run = log.size() > log_before ? log.substr(log_before) : log;
    if (pid_ > 0 || attempt == 3 || this_run.find("Address already in use") == std::string::npos) {
      FAIL() << why << ": " << log;
    }
  }
}

void BerthdProcess::kill9() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

bool BerthdProcess::alive() {
  if (pid_ <= 0) {
    return false;
  }
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int BerthdProcess::terminate() {
  if (pid_ <= 0) {
    return -1;
  }
  ::kill(pid_, SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Dockerd::Dockerd() = default;

Dockerd::~Dockerd() {
  stop_child(pid_, std::chrono::seconds(10));
  // dockerd leaves mounts under its data root; unmount before the temp dir goes.
  run("grep -o ' " + dir_.path() + "[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l");
}

void Dockerd::private_etc(std::string etc_docker, std::string hosts) {
  etc_docker_ = std::move(etc_docker);
  hosts_ = std::move(hosts);
}

bool Dockerd::start(std::string* why) {
  if (!have("dockerd")) {
    *why = "dockerd is not installed (scripts/setup --test installs docker.io)";
    return false;
  }
  std::string sock = dir_ / "docker.sock";
  std::string cmd =
      "exec dockerd --iptables=false --ip6tables=false --bridge=none "
      "--data-root " +
      dir_ / "root" + " --exec-root " + dir_ / "exec" + " --pidfile " + dir_ / "docker.pid" +
      " -H unix://" + sock +
      " --containerd-namespace berth-test --containerd-plugins-namespace berth-test-plugins";
  if (!etc_docker_.empty()) {
    // unshare without --fork execs in place: pid_ stays dockerd's.
    cmd = "exec unshare -m --propagation private bash -c 'mount --bind " + etc_docker_ +
          " /etc/docker && mount --bind " + hosts_ + " /etc/hosts && " + cmd + "'";
  }
  // SIGTERM if the test dies first: dockerd then stops its containers.
  SpawnOptions opts;
  opts.death_signal = SIGTERM;
  opts.new_session = true;
  pid_ = spawn_server({"/bin/bash", "-c", cmd}, dir_ / "dockerd.log", opts);
  *why = wait_started(
      pid_, "dockerd",
      [&] { return run(docker_cmd() + " version --format '{{.Server.Version}}'").code == 0; },
      std::chrono::seconds(60), std::chrono::milliseconds(200));
  if (!why->empty()) {
    *why += ": " + read_file(dir_ / "dockerd.log");
  }
  return why->empty();
}

std::string Dockerd::docker_cmd() const {
  return "docker -H unix://" + dir_ / "docker.sock" + " --config " + dir_ / "client";
}

std::string make_busybox_layout(
    const std::string& dir, const std::string& tag,
    const std::vector<std::pair<std::string, std::string>>& extra_files) {
  TempDir work;
  std::string bundle = work / "bundle";
  std::string img = dir + ":" + tag;
  std::string cmd = "set -e; [ -d " + dir + " ] || umoci init --layout " + dir +
                    "; umoci new --image " + img + "; umoci unpack --rootless --image " + img +
                    " " + bundle + " >/dev/null; mkdir -p " + bundle +
                    "/rootfs/bin; cp /bin/busybox " + bundle + "/rootfs/bin/busybox";
  auto r = run(cmd);
  if (r.code != 0) {
    return r.all();
  }
  for (const auto& [path, content] : extra_files) {
    write_file(bundle + "/rootfs/" + path, content);
  }
  r = run("set -e; umoci repack --image " + img + " " + bundle + "; umoci config --image " + img +
          " --os linux --architecture amd64 --config.cmd /bin/busybox --config.cmd sh");
  return r.code == 0 ? "" : r.all();
}

}  // namespace berth::test
