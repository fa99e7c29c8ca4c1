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

awaitable<void> serve_sse(http::Exchange& ex, BlockingPool& pool, std::function<SsePoll()> poll,
                          std::chrono::milliseconds interval,
                          std::shared_ptr<std::atomic<bool>> stopping) {
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
