// SPDX-License-Identifier: Apache-2.0
// berth_test_servers: starts and stops the servers one ctest run shares (support/
// shared_servers.h). ctest runs it as the fixture `test_servers`:
//
//   berth_test_servers up FILE     starts a holder process that runs Ceph + radosgw and
//                                  PostgreSQL, and returns once FILE says where they are
//   berth_test_servers down FILE   stops the holder, and with it every server
//
// The holder leaves ctest's session and pipes, so ctest does not wait for it; it stops by
// itself when ctest exits without running `down` (an interrupted run; checked once the servers
// are up), and after twelve hours at most; the servers are its children and get a signal when
// it dies, even by SIGKILL (spawn_server in harness.h). A server that does not start is written as
// "error NAME WHY" and the tests start their own, as they do without the fixture; `up` always
// succeeds so that a missing server shows in the tests that need it, with its reason.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/postgres.h"
#include "support/rgw.h"
#include "support/shared_servers.h"

namespace {

using namespace berth::test;
using Clock = std::chrono::steady_clock;

// Longer than any run; the holder stops earlier when ctest goes away without `down`.
constexpr auto kLifetime = std::chrono::hours(12);

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

bool gone(pid_t pid) { return pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH); }

// The holder a servers file names, 0 when none.
pid_t holder_of(const std::string& file) {
  pid_t holder = 0;
  if (std::sscanf(read_file(file).c_str(), "holder %d", &holder) != 1) {
    return 0;
  }
  return holder;
}

// Whether pid is a berth_test_servers process (not a stranger that took a dead holder's pid).
bool is_holder(pid_t pid) {
  std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.find("berth_test_servers") != std::string::npos;
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return s;
}

// The holder: the servers live as long as it does (they are its children and die with it).
// Meanwhile it deletes the buckets of tests that have ended.
[[noreturn]] void hold(const std::string& file, pid_t ctest) {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGHUP, SIG_IGN);
  auto started = Clock::now();
  std::string text = "holder " + std::to_string(::getpid()) + "\n";
  {
    PostgresServer pg;
    RgwServer rgw;
    if (pg.running()) {
      text += format_servers_line(SharedPostgres{pg.port(), pg.bin()});
    } else {
      text += "error postgres " + one_line(pg.error()) + "\n";
    }
    if (rgw.running()) {
      text += format_servers_line(
          SharedRgw{rgw.port(), rgw.access_key(), rgw.secret_key(), rgw.region(), rgw.dir()});
    } else {
      text += "error rgw " + one_line(rgw.error()) + "\n";
    }
    write_file(file + ".tmp", text);
    ::rename((file + ".tmp").c_str(), file.c_str());
    std::fprintf(stderr, "%s", text.c_str());
    int purged = 0;
    auto last_purge = Clock::now();
    while (g_stop == 0 && !gone(ctest) && Clock::now() - started < kLifetime) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (rgw.running() && Clock::now() - last_purge > std::chrono::seconds(5)) {
        purged += rgw.purge_done_buckets();
        last_purge = Clock::now();
      }
    }
    std::fprintf(stderr, "stopping (%s); %d buckets of ended tests deleted\n",
                 g_stop != 0 ? "asked" : "ctest is gone or the lifetime passed", purged);
  }
  // Only while it is still ours: a later run in the same build tree may have written its own.
  if (holder_of(file) == ::getpid()) {
    ::unlink(file.c_str());
  }
  std::exit(0);
}

int up(const std::string& file) {
  ::unlink(file.c_str());
  pid_t ctest = ::getppid();
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    return 0;
  }
  if (pid == 0) {
    ::setsid();
    // Never ctest's pipes: ctest would wait for the holder to close them.
    int in = ::open("/dev/null", O_RDWR);
    int log = ::open((file + ".log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(log >= 0 ? log : in, 1);
    ::dup2(log >= 0 ? log : in, 2);
    for (int fd = 3; fd < 1024; ++fd) {
      ::close(fd);
    }
    hold(file, ctest);
  }
  auto deadline = Clock::now() + std::chrono::minutes(3);
  while (::access(file.c_str(), F_OK) != 0) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid || Clock::now() > deadline) {
      ::kill(pid, SIGKILL);  // still starting: its Ceph daemons go with it
      std::printf("the shared servers did not start (log: %s.log); tests start their own\n",
                  file.c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("%s", read_file(file).c_str());
  return 0;
}

int down(const std::string& file) {
  pid_t holder = holder_of(file);
  if (holder == 0) {
    std::printf("no holder in %s: nothing to stop\n", file.c_str());
    return 0;
  }
  if (gone(holder) || !is_holder(holder)) {
    std::printf("holder %d is gone: nothing to stop\n", holder);
    ::unlink(file.c_str());
    return 0;
  }
  ::kill(holder, SIGTERM);
  // The holder removes the file when its servers are stopped; waiting for that, not for the
  // pid, also works when nobody reaps the holder (a container whose pid 1 does not).
  auto deadline = Clock::now() + std::chrono::minutes(3);
  while (holder_of(file) == holder && !gone(holder) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (holder_of(file) == holder && !gone(holder)) {
    std::printf("holder %d still there after 3 min; killing it\n", holder);
    ::kill(holder, SIGKILL);
    return 1;
  }
  std::printf("stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "up") {
    return up(argv[2]);
  }
  if (argc == 3 && std::string(argv[1]) == "down") {
    return down(argv[2]);
  }
  std::fprintf(stderr, "usage: berth_test_servers up|down FILE\n");
  return 2;
}
