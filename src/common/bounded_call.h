// SPDX-License-Identifier: Apache-2.0
// bounded_call(): a blocking call that no deadline of ours can reach (libpq resolves a server's
// host name with a plain getaddrinfo, which waits as long as the resolver likes) run on a thread
// of its own, so that its caller waits at most until the deadline. Past it the caller gets
// nothing and goes on; the thread finishes the call by itself and hands the late result to
// `discard`, which releases whatever it holds (closes a connection).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

namespace berth {

/// call() -> T, run on a new thread; its result if it came by `deadline`, else nullopt (and
/// discard(T) runs on that thread once call() returns). Without a thread to be had, call()
/// runs here, unbounded. `call` and `discard` must own what they use: they may outlive the
/// caller.
template <class T, class Call, class Discard>
std::optional<T> bounded_call(Call call, Discard discard,
                              std::chrono::steady_clock::time_point deadline) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<T> result;
    bool abandoned = false;
  };
  auto st = std::make_shared<State>();
  auto job = std::make_shared<std::function<void()>>();
  *job = [st, call = std::move(call), discard = std::move(discard)]() mutable {
    T r = call();
    std::unique_lock lock(st->mu);
    if (st->abandoned) {
      lock.unlock();
      discard(std::move(r));
      return;
    }
    st->result = std::move(r);
    st->cv.notify_one();
  };
  try {
    std::thread([job] { (*job)(); }).detach();
  } catch (const std::system_error&) {
    (*job)();  // no thread to be had (a process at its limit): as the call would have run anyway
    return std::move(st->result);
  }
  std::unique_lock lock(st->mu);
  if (!st->cv.wait_until(lock, deadline, [&st] { return st->result.has_value(); })) {
    st->abandoned = true;
    return std::nullopt;
  }
  return std::move(st->result);
}

}  // namespace berth
