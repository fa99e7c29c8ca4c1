// SPDX-License-Identifier: Apache-2.0
// Server-Sent Events: how the console's live views (a service's state, its logs, a build's
// log) reach the browser without polling.
#include "api/internal.h"

namespace berth::api {

namespace {

constexpr std::chrono::seconds kHeartbeat{15};

}  // namespace

std::string sse_event(std::string_view name, const std::string& data) {
  std::string out = "event: ";
  out += name;
  out += "\ndata: ";
  out += data;  // JSON dumps escape newlines, so the data is one line
  out += "\n\n";
  return out;
}

bool wants_sse(http::Exchange& ex) {
  return ex.header(bhttp::field::accept).find("text/event-stream") != std::string::npos;
}

namespace {

// Holds one stream's place under the limits while it is open.
class SseSlot {
 public:
  SseSlot(std::shared_ptr<SseLimits> limits, std::string principal)
      : limits_(std::move(limits)), principal_(std::move(principal)) {
    std::lock_guard lock(limits_->mu);
    size_t& mine = limits_->open[principal_];
    if (mine >= limits_->per_principal || limits_->open_total >= limits_->total) {
      if (mine == 0) {
        limits_->open.erase(principal_);
      }
      return;
    }
    ++mine;
    ++limits_->open_total;
    held_ = true;
  }
  ~SseSlot() {
    if (!held_) {
      return;
    }
    std::lock_guard lock(limits_->mu);
    --limits_->open_total;
    if (--limits_->open[principal_] == 0) {
      limits_->open.erase(principal_);
    }
  }
  SseSlot(const SseSlot&) = delete;
  SseSlot& operator=(const SseSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::shared_ptr<SseLimits> limits_;
  std::string principal_;
  bool held_ = false;
};

http::Response too_many_streams(const SseLimits& limits) {
  http::Response r = error_response(Error(
      Errc::ResourceExhausted, "too many live streams open: at most " +
                                   std::to_string(limits.per_principal) + " per principal and " +
                                   std::to_string(limits.total) + " in all; close some tabs"));
  r.status = 429;
  r.header("Retry-After", "5");
  return r;
}

}  // namespace

awaitable<void> serve_sse(http::Exchange& ex, BlockingPool& pool, std::function<SsePoll()> poll,
                          std::chrono::milliseconds interval,
                          std::shared_ptr<std::atomic<bool>> stopping,
                          std::shared_ptr<SseLimits> limits) {
  SseSlot slot(limits, ex.context().principal);
  if (!slot.held()) {
    co_return co_await ex.send(too_many_streams(*limits));
  }
  auto first_job = [poll] { return poll(); };
  SsePoll first = co_await run_blocking(pool, std::move(first_job));
  if (first.error) {
    co_return co_await ex.send(error_response(*first.error));
  }
  http::Response head;
  head.header("Content-Type", "text/event-stream; charset=utf-8");
  head.header("Cache-Control", "no-store");
  head.header("X-Content-Type-Options", "nosniff");
  if (!co_await ex.send_head(std::move(head))) {
    co_return;
  }
  // The client reconnects after this long if the stream drops (EventSource's retry field).
  std::string events = "retry: 2000\n\n" + first.events;
  bool done = first.done;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto quiet_since = std::chrono::steady_clock::now();
  while (true) {
    if (!events.empty()) {
      if (!co_await ex.write_chunk(std::move(events))) {
        co_return;  // the client went away
      }
      events.clear();
      quiet_since = std::chrono::steady_clock::now();
    }
    if (done || stopping->load()) {
      break;
    }
    timer.expires_after(interval);
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    auto job = [poll] { return poll(); };
    SsePoll p = co_await run_blocking(pool, std::move(job));
    events = std::move(p.events);
    done = p.done || p.error.has_value();
    if (events.empty() && std::chrono::steady_clock::now() - quiet_since >= kHeartbeat) {
      events = ": keep-alive\n\n";
    }
  }
  co_await ex.end_body();
}

}  // namespace berth::api
