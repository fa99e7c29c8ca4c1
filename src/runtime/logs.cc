// SPDX-License-Identifier: Apache-2.0
// Instance logs: LogSink (append whole lines, size rotation) and read_log; InstanceExit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>

#include "common/log.h"
#include "runtime/runtime.h"

namespace berth::runtime {

namespace {

std::string format_time(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-27T09:40:48.931Z" -> unix ms; -1 when malformed.
int64_t parse_time(std::string_view s) {
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[23] != 'Z') {
    return -1;
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') {
        return -1;
      }
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  tm t{};
  t.tm_year = num(0, 4) - 1900;
  t.tm_mon = num(5, 2) - 1;
  t.tm_mday = num(8, 2);
  t.tm_hour = num(11, 2);
  t.tm_min = num(14, 2);
  t.tm_sec = num(17, 2);
  int ms = num(20, 3);
  if (t.tm_year < 0 || t.tm_mon < 0 || t.tm_mday < 0 || t.tm_hour < 0 || t.tm_min < 0 ||
      t.tm_sec < 0 || ms < 0) {
    return -1;
  }
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

bool parse_line(std::string_view raw, LogLine* out) {
  size_t a = raw.find(' ');
  if (a == std::string_view::npos) {
    return false;
  }
  size_t b = raw.find(' ', a + 1);
  if (b == std::string_view::npos) {
    return false;
  }
  size_t c = raw.find(' ', b + 1);
  int64_t t = parse_time(raw.substr(0, a));
  if (t < 0) {
    return false;
  }
  out->time_ms = t;
  out->instance = std::string(raw.substr(a + 1, b - a - 1));
  if (c == std::string_view::npos) {
    out->stream = std::string(raw.substr(b + 1));
    out->text.clear();
  } else {
    out->stream = std::string(raw.substr(b + 1, c - b - 1));
    out->text = std::string(raw.substr(c + 1));
  }
  out->raw = std::string(raw);
  return true;
}

}  // namespace

LogSink::LogSink(std::string path, uint64_t max_bytes, int keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {}

LogSink::~LogSink() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

namespace {

std::string record(int64_t ms, const std::string& instance, const std::string& stream,
                   std::string_view line) {
  std::string out = format_time(ms);
  out.reserve(out.size() + instance.size() + stream.size() + line.size() + 4);
  out += ' ';
  out += instance;
  out += ' ';
  out += stream;
  out += ' ';
  for (char ch : line) {
    out += (ch == '\n' || ch == '\r') ? ' ' : ch;  // one record per line, always
  }
  out += '\n';
  return out;
}

}  // namespace

void LogSink::write(const std::string& instance, const std::string& stream, std::string_view line) {
  std::string out = record(now_ms(), instance, stream, line);

  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0 && size_ > 0 && size_ + out.size() > max_bytes_) {
    ::close(fd_);
    fd_ = -1;
    if (keep_ <= 0) {
      ::unlink(path_.c_str());
    } else {
      for (int i = keep_ - 1; i >= 1; --i) {
        std::string from = path_ + "." + std::to_string(i);
        std::string to = path_ + "." + std::to_string(i + 1);
        ::rename(from.c_str(), to.c_str());  // ENOENT for rotations not made yet
      }
      ::rename(path_.c_str(), (path_ + ".1").c_str());
    }
  }
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true)) {
        log::get("runtime")->warn("log sink open failed path={} error={}", path_,
                                  std::strerror(errno));
      }
      ++dropped_;
      return;
    }
    struct stat st {};
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  // Lines lost while the disk was full are owned up to, once there is room again, before the
  // next line: the reader sees that a gap is there and why.
  if (dropped_ > 0) {
    std::string what = dropped_ == 1 ? std::string("1 log line was")
                                     : std::to_string(dropped_) + " log lines were";
    std::string gap = record(now_ms(), "berth", "stderr", what + " dropped: the disk was full");
    if (!append_locked(gap)) {
      ++dropped_;
      return;
    }
    log::get("runtime")->info("log writes resumed path={} dropped_lines={}", path_, dropped_);
    dropped_ = 0;
  }
  if (!append_locked(out)) {
    ++dropped_;
  }
}

bool LogSink::append_locked(const std::string& data) {
  // One write per line: O_APPEND keeps concurrent writers' lines whole.
  ssize_t n = ::write(fd_, data.data(), data.size());
  if (n == static_cast<ssize_t>(data.size())) {
    size_ += data.size();
    return true;
  }
  int e = n < 0 ? errno : ENOSPC;  // a short write: the disk filled up mid-line
  if (n > 0) {
    // Never leave half a line: cut the file back to where this line began.
    struct stat st {};
    uint64_t end = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size)
                                          : size_ + static_cast<uint64_t>(n);
    (void)::ftruncate(fd_, static_cast<off_t>(end - static_cast<uint64_t>(n)));
  }
  if (dropped_ == 0) {
    // Once per outage, not once per line.
    log::get("runtime")->error(
        "log write failed, dropping lines until it works again path={} "
        "error={}",
        path_, std::strerror(e));
  }
  return false;
}

std::vector<LogLine> read_log(const std::string& path, int64_t since_ms,
                              const std::string& instance_prefix, size_t limit, uint64_t* offset) {
  std::deque<LogLine> lines;
  auto consider = [&](std::string_view raw) {
    LogLine l;
    if (!parse_line(raw, &l)) {
      return;
    }
    if (l.time_ms < since_ms) {
      return;
    }
    if (!instance_prefix.empty() &&
        l.instance.compare(0, instance_prefix.size(), instance_prefix) != 0) {
      return;
    }
    lines.push_back(std::move(l));
    if (limit > 0 && lines.size() > limit) {
      lines.pop_front();
    }
  };
  // Reads complete lines from `file` starting at `start`; returns the offset after the last one.
  auto read_file = [&](const std::string& file, uint64_t start) -> uint64_t {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return start;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < start) {
      start = 0;  // rotated or truncated since: read it all
    }
    uint64_t pos = start;
    std::string pending;
    char buf[65536];
    for (;;) {
      ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(start));
      if (n <= 0) {
        break;
      }
      start += static_cast<uint64_t>(n);
      pending.append(buf, static_cast<size_t>(n));
      size_t b = 0;
      for (size_t nl; (nl = pending.find('\n', b)) != std::string::npos; b = nl + 1) {
        consider(std::string_view(pending).substr(b, nl - b));
        pos += nl + 1 - b;
      }
      pending.erase(0, b);
    }
    ::close(fd);
    return pos;
  };
  bool history = offset == nullptr || *offset == 0;
  if (history) {
    for (int i = 64; i >= 1; --i) {
      std::string rot = path + "." + std::to_string(i);
      if (::access(rot.c_str(), F_OK) == 0) {
        read_file(rot, 0);
      }
    }
  }
  uint64_t end = read_file(path, offset ? *offset : 0);
  if (offset) {
    *offset = end;
  }
  return {lines.begin(), lines.end()};
}

std::string InstanceExit::str() const {
  if (signal != 0) {
    const char* abbrev = sigabbrev_np(signal);
    std::string name = abbrev ? std::string(" (SIG") + abbrev + ")" : "";
    return "killed by signal " + std::to_string(signal) + name;
  }
  if (exit_code < 0) {
    return "exited with unknown status";
  }
  return "exited with code " + std::to_string(exit_code);
}

}  // namespace berth::runtime
