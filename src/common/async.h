// SPDX-License-Identifier: Apache-2.0
// Coroutine plumbing shared by every subsystem: run_blocking() moves blocking work (SQLite,
// fsync, hashing whole files) to the bounded blocking pool and resumes the caller on its own
// executor; spawn_logged() starts a coroutine whose escaped exceptions are logged as bugs.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <type_traits>

#include "common/asio.h"

namespace berth {

using BlockingPool = asio::thread_pool;

/// Runs fn() on the pool; the awaiting coroutine resumes on its own executor afterwards.
/// Not a coroutine itself: it initiates a post to the pool whose completion is dispatched back
/// to the caller's executor. R must be default-constructible.
///
/// The function object travels as a raw pointer: Asio 1.74 passes initiation arguments
/// through a coroutine's by-value parameters, which GCC 12 copies bitwise, so a captured
/// std::string would end up pointing into the caller's frame (seen under ASan). The job is
/// destroyed on the pool thread before the caller resumes.
template <class F>
auto run_blocking(BlockingPool& pool, F&& fn) -> awaitable<std::invoke_result_t<F>> {
  using R = std::invoke_result_t<F>;
  using Fn = std::decay_t<F>;
  Fn* job = new Fn(std::forward<F>(fn));
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
      [&pool, job](auto handler) {
        asio::post(pool, [h = std::move(handler), job]() mutable {
          std::unique_ptr<Fn> owned(job);
          std::exception_ptr ep;
          R r{};
          try {
            r = (*owned)();
          } catch (...) {
            ep = std::current_exception();
          }
          owned.reset();
          auto ex = asio::get_associated_executor(h);
          asio::dispatch(
              ex, [h = std::move(h), ep, r = std::move(r)]() mutable { h(ep, std::move(r)); });
        });
      },
      use_awaitable);
}

/// Blocking work started now and awaited later, so a coroutine can overlap its own I/O with
/// it (read the next chunk while the previous one is written and hashed). Start and wait on
/// the same single-threaded executor.
template <class R>
class BlockingJob {
 public:
  template <class F>
  static std::shared_ptr<BlockingJob> start(BlockingPool& pool, asio::any_io_executor ex, F fn) {
    auto job = std::shared_ptr<BlockingJob>(new BlockingJob(ex));
    asio::post(pool, [job, ex, fn = std::move(fn)]() mutable {
      R r{};
      try {
        r = fn();
      } catch (...) {
        job->error_ = std::current_exception();
      }
      asio::post(ex, [job, r = std::move(r)]() mutable {
        job->result_ = std::move(r);
        job->done_ = true;
        job->timer_.cancel();
      });
    });
    return job;
  }

  /// The job's result; rethrows what it threw.
  awaitable<R> wait() {
    if (!done_) {
      beast::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (error_) {
      std::rethrow_exception(error_);
    }
    co_return std::move(result_);
  }

 private:
  explicit BlockingJob(asio::any_io_executor ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer timer_;
  R result_{};
  bool done_ = false;
  std::exception_ptr error_;
};

/// Reports an exception that escaped a top-level coroutine: a bug, counted and logged.
void report_escaped(const std::string& name, std::exception_ptr e);

/// co_spawn with a completion that logs (and counts) anything that escaped.
template <class Executor>
void spawn_logged(Executor ex, awaitable<void> coro, std::string name) {
  asio::co_spawn(std::move(ex), std::move(coro), [name = std::move(name)](std::exception_ptr e) {
    if (e) {
      report_escaped(name, e);
    }
  });
}

}  // namespace berth
