// SPDX-License-Identifier: Apache-2.0
// The default seccomp profile (see seccomp.h). The allow-list holds the system call names of
// Docker's default profile for the capability set bundle.cc grants (Docker's defaults: no
// CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE, ...; CAP_SYS_CHROOT is granted, so chroot is
// allowed).
#include "runtime/seccomp.h"

#include <cstdint>
#include <string>
#include <vector>

namespace berth::runtime {

namespace {

// Allowed without conditions. Names of other architectures' calls (chown32, mmap2, ...) are
// kept: they are real calls of the x86 and arm ABIs a 64-bit kernel also runs.
const char* const kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Allowed on kernels since 4.8, where seccomp can no longer be bypassed with ptrace.
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    // CAP_SYS_CHROOT is in the granted set.
    "chroot",
#if defined(__x86_64__)
    "arch_prctl",
    "modify_ldt",
#elif defined(__aarch64__)
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
#endif
};

// clone(2) flags that create namespaces: CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS,
// CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
constexpr uint64_t kNamespaceFlags =
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
constexpr int kAfVsock = 40;
constexpr int kEnosys = 38;

Json arg(int index, uint64_t value, uint64_t value_two, const char* op) {
  Json a = Json::object();
  a["index"] = index;
  a["value"] = value;
  a["valueTwo"] = value_two;
  a["op"] = op;
  return a;
}

Json rule(std::vector<std::string> names, const char* action, Json args = Json::array()) {
  Json r = Json::object();
  r["names"] = std::move(names);
  r["action"] = action;
  if (!args.empty()) {
    r["args"] = std::move(args);
  }
  return r;
}

}  // namespace

Json default_seccomp_profile() {
  Json p = Json::object();
  // No errnoRet: runc answers EPERM, as Docker's profile does.
  p["defaultAction"] = "SCMP_ACT_ERRNO";
#if defined(__x86_64__)
  p["architectures"] =
      std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  p["architectures"] = std::vector<std::string>{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#endif
  Json rules = Json::array();
  rules.push_back(
      rule(std::vector<std::string>(std::begin(kAllowed), std::end(kAllowed)), "SCMP_ACT_ALLOW"));
  // Any socket but AF_VSOCK (which reaches the host from a VM's guest).
  rules.push_back(
      rule({"socket"}, "SCMP_ACT_ALLOW", Json::array({arg(0, kAfVsock, 0, "SCMP_CMP_NE")})));
  // personality(2) only for the harmless personas: PER_LINUX, PER_LINUX32, UNAME26 with
  // either, and the query 0xffffffff.
  for (uint64_t persona : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    rules.push_back(
        rule({"personality"}, "SCMP_ACT_ALLOW", Json::array({arg(0, persona, 0, "SCMP_CMP_EQ")})));
  }
  // clone(2) for threads and processes, never with a namespace flag: (flags & mask) == 0.
  // On s390 the flags are the second argument; elsewhere the first.
#if defined(__s390x__)
  constexpr int kCloneFlagsArg = 1;
#else
  constexpr int kCloneFlagsArg = 0;
#endif
  rules.push_back(
      rule({"clone"}, "SCMP_ACT_ALLOW",
           Json::array({arg(kCloneFlagsArg, kNamespaceFlags, 0, "SCMP_CMP_MASKED_EQ")})));
  // clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes libc fall back
  // to clone, which the rule above checks.
  Json clone3 = rule({"clone3"}, "SCMP_ACT_ERRNO");
  clone3["errnoRet"] = kEnosys;
  rules.push_back(std::move(clone3));
  p["syscalls"] = std::move(rules);
  return p;
}

}  // namespace berth::runtime
