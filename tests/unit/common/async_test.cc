// SPDX-License-Identifier: Apache-2.0
// run_blocking(): the work runs on the blocking pool and the caller resumes on its own strand.
#include "common/async.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/asio.h"
#include "common/result.h"

namespace berth {
namespace {

struct Observed {
  bool before_on_strand = false;
  bool job_on_strand = true;
  bool job_on_caller_thread = true;
  bool after_on_strand = false;
  int value = 0;
  bool rethrown = false;
  bool after_throw_on_strand = false;
  bool result_ok = false;
  std::string result_message;
  bool done = false;
};

using Strand = asio::strand<asio::io_context::executor_type>;

awaitable<void> resumes_on_strand(Strand strand, BlockingPool& pool, Observed& o) {
  o.before_on_strand = strand.running_in_this_thread();
  std::thread::id caller = std::this_thread::get_id();

  auto job = [&o, strand, caller]() {
    o.job_on_strand = strand.running_in_this_thread();
    o.job_on_caller_thread = std::this_thread::get_id() == caller;
    return 42;
  };
  o.value = co_await run_blocking(pool, std::move(job));
  o.after_on_strand = strand.running_in_this_thread();

  auto thrower = []() -> int { throw std::runtime_error("boom"); };
  try {
    (void)co_await run_blocking(pool, std::move(thrower));
  } catch (const std::runtime_error& e) {
    o.rethrown = std::string(e.what()) == "boom";
  }
  o.after_throw_on_strand = strand.running_in_this_thread();

  auto fails = []() -> Result<std::string> { return Error(Errc::Unavailable, "db busy"); };
  Result<std::string> r = co_await run_blocking(pool, std::move(fails));
  o.result_ok = r.has_value();
  o.result_message = r ? std::string() : r.error().message();
  o.done = true;
}

TEST(RunBlockingTest, CallerResumesOnItsStrand) {
  asio::io_context ioc;
  BlockingPool pool(2);
  Strand strand = asio::make_strand(ioc);
  Observed o;
  std::exception_ptr escaped;
  asio::co_spawn(strand, resumes_on_strand(strand, pool, o),
                 [&escaped](std::exception_ptr e) { escaped = e; });
  // Two I/O threads, so "resumed on some io_context thread" is not enough to pass.
  std::thread second([&ioc] { ioc.run(); });
  ioc.run();
  second.join();
  pool.join();

  EXPECT_FALSE(escaped);
  ASSERT_TRUE(o.done);
  EXPECT_TRUE(o.before_on_strand);
  EXPECT_FALSE(o.job_on_strand);
  EXPECT_FALSE(o.job_on_caller_thread);
  EXPECT_EQ(o.value, 42);
  EXPECT_TRUE(o.after_on_strand);
  EXPECT_TRUE(o.rethrown);
  EXPECT_TRUE(o.after_throw_on_strand);
  EXPECT_FALSE(o.result_ok);
  EXPECT_EQ(o.result_message, "db busy");
}

awaitable<void> strand_counter(Strand strand, BlockingPool& pool, int& counter,
                               std::atomic<int>& violations) {
  for (int i = 0; i < 20; ++i) {
    auto job = [] { return 1; };
    int add = co_await run_blocking(pool, std::move(job));
    if (!strand.running_in_this_thread()) {
      ++violations;
    }
    // Unsynchronized on purpose: safe only because every resumption is on the strand.
    int seen = counter;
    std::this_thread::yield();
    counter = seen + add;
  }
}

TEST(RunBlockingTest, ManyCoroutinesOnOneStrandStaySerialized) {
  asio::io_context ioc;
  BlockingPool pool(4);
  Strand strand = asio::make_strand(ioc);
  int counter = 0;
  std::atomic<int> violations{0};
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(strand, strand_counter(strand, pool, counter, violations), asio::detached);
  }
  std::thread second([&ioc] { ioc.run(); });
  ioc.run();
  second.join();
  pool.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(counter, 8 * 20);
}

}  // namespace
}  // namespace berth
