// SPDX-License-Identifier: Apache-2.0
// The pause before an operation runs again after the database rolled it back for a conflict
// (sql_store.h, with_conn).
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "store/sql/sql_store.h"

namespace berth::store::sql {

void pause_after_conflict(int n) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  int top = 5 << std::clamp(n - 1, 0, 6);
  std::uniform_int_distribution<int> pick(top / 2, top);
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng)));
}

}  // namespace berth::store::sql
