// SPDX-License-Identifier: Apache-2.0
#include <spdlog/sinks/stdout_sinks.h>

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
  static auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
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
