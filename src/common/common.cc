// SPDX-License-Identifier: Apache-2.0
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "common/async.h"
#include "common/log.h"
#include "common/metrics.h"

namespace berth {

void report_escaped(const std::string& name, std::exception_ptr e) {
  metrics::bugs_total().fetch_add(1);
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::get("bug")->error("escaped exception coroutine={} what={}", name, ex.what());
  } catch (...) {
    log::get("bug")->error("escaped exception coroutine={} what=unknown", name);
  }
}

namespace metrics {
std::atomic<uint64_t>& bugs_total() {
  static std::atomic<uint64_t> v{0};
  return v;
}
}  // namespace metrics

namespace log {
namespace {
std::mutex g_mu;

// Buffered stderr: a flush per line (spdlog's stdout sinks) costs a syscall per request.
// Lines are written when 32 KiB accumulate, on warn and above, and once a second.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buf_.append(formatted.data(), formatted.size());
    if (buf_.size() >= 32 * 1024 || msg.level >= spdlog::level::warn) {
      flush_();
    }
  }
  void flush_() override {
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t n = ::write(2, buf_.data() + off, buf_.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    buf_.clear();
  }

 private:
  std::string buf_;
};
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  if (auto l = spdlog::get(name)) {
    return l;
  }
  std::lock_guard lock(g_mu);
  if (auto l = spdlog::get(name)) {
    return l;
  }
  static auto sink = [] {
    auto s = std::make_shared<BufferedStderrSink>();
    spdlog::flush_every(std::chrono::seconds(1));
    return s;
  }();
  auto l = std::make_shared<spdlog::logger>(name, sink);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%L%$ %n %v", spdlog::pattern_time_type::utc);
  l->set_level(g_level);
  l->flush_on(spdlog::level::warn);
  spdlog::register_logger(l);
  return l;
}

void set_level(const std::string& level) {
  std::lock_guard lock(g_mu);
  g_level = spdlog::level::from_str(level);
  spdlog::set_level(g_level);
}

}  // namespace log
}  // namespace berth
