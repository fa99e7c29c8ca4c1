// SPDX-License-Identifier: Apache-2.0
// Private to the router: the per-service request metrics, one shard per I/O thread, each
// written by its thread only (no contended atomics); metrics.cc sums them for /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace berth::router {

constexpr std::array<double, 15> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};

struct ServiceMetrics {
  struct alignas(64) Shard {
    std::atomic<uint64_t> classes[5]{};
    std::atomic<uint64_t> buckets[kBuckets.size() + 1]{};
    std::atomic<uint64_t> sum_us{0};
    std::atomic<int64_t> in_flight{0};
  };
  ServiceMetrics(std::string n, size_t shards)
      : name(std::move(n)), shard(std::make_unique<Shard[]>(shards)), nshards(shards) {}
  std::string name;
  std::unique_ptr<Shard[]> shard;
  size_t nshards;
};

template <class T>
void bump(std::atomic<T>& a, T by) {
  a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace berth::router
