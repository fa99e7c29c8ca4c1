// SPDX-License-Identifier: Apache-2.0
// Process-wide counters. Small on purpose until the admin listener lands.
#pragma once

#include <atomic>
#include <cstdint>

namespace berth::metrics {

/// Handled-but-impossible branches and escaped exceptions.
std::atomic<uint64_t>& bugs_total();

}  // namespace berth::metrics
